//! The centre: the entities and values every other module speaks, holding
//! only valid values. Nothing here uses another module of this crate.

mod clock;
mod event;
mod id;
mod mail;
mod money;
mod object;
mod period;
mod rent;
mod secret;
mod status;

pub use clock::Clock;
pub use event::{Content, Event, EventState, Mode};
pub use id::{LandlordId, PropertyId, check_id};
pub use mail::{MailDraft, MailKind, MailMessage, PayoutFacts, RequestFacts};
pub use money::{Currency, Money, MoneyError};
pub use object::{
    Object, PaymentRequest, Payout, RETRYING_EVENT_TYPE, StoredPayout, StoredRequest, Version,
};
pub use period::{Period, PeriodError};
pub use rent::{ExpectedRent, LandlordContact, PropertyKey, PropertyRent};
pub use secret::Secret;
pub use status::{
    DisbursementStatus, ExceptionKind, LineStatus, PaymentRequestStatus, PayoutStatus, StatusRank,
};
