//! Types that carry meaning and cannot hold invalid values.

mod money;
mod period;
mod secret;
mod status;

pub use money::{Currency, Money, MoneyError};
pub use period::{Period, PeriodError};
pub use secret::Secret;
pub use status::{PaymentRequestStatus, PayoutStatus, StatusRank};
