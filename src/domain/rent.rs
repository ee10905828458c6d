//! The rent roll as the rest of the program reads it: expected rent per
//! property and period, properties with their landlords, and how to reach them.

use jiff::civil::Date;

use super::{LandlordId, Money, Period, PropertyId};

/// One expected line (property, period) with its property's details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedRent {
    pub property_id: PropertyId,
    pub landlord_id: LandlordId,
    pub period: Period,
    pub amount: Money,
    pub due_date: Date,
    pub commission_bps: u32,
    pub payment_agreement: Option<String>,
    pub property_name: Option<String>,
}

/// A property in the rent roll with the due dates of its expected lines,
/// what matching a PaymentRequest to a line needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyRent {
    pub property_id: PropertyId,
    pub landlord_id: LandlordId,
    pub property_name: Option<String>,
    /// (period, due date) of its lines, at least those near the request being matched.
    pub due_dates: Vec<(Period, Date)>,
}

/// The landlord an object belongs to, from the rent roll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandlordContact {
    pub landlord_id: LandlordId,
    pub name: Option<String>,
    pub email: Option<String>,
    pub notify: bool,
}

/// How a PaymentRequest names its property: `metadata.property_id`, or its
/// payment agreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PropertyKey<'a> {
    Id(&'a str),
    Agreement(&'a str),
}
