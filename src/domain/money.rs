//! Money in integer minor units, with its ISO 4217 currency. Never a float.

use std::fmt;

/// The largest amount accepted anywhere: 10^15 minor units (ten trillion euros).
/// It keeps every sum of up to 9,000 amounts inside an `i64`, and sums are
/// checked anyway.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MoneyError {
    #[error("`{0}` is not a lower-case ISO 4217 currency code")]
    UnknownCurrency(String),
    #[error("`{0}` is not an integer amount in minor units (write 120000 for 1,200.00)")]
    NotAnInteger(String),
    #[error("amount {0} is negative")]
    Negative(i64),
    #[error("amount {0} is larger than {MAX_AMOUNT}")]
    TooLarge(i64),
}

/// A lower-case ISO 4217 code that has minor units (`eur`, `gbp`, `jpy`, `bhd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let unknown = || MoneyError::UnknownCurrency(code.to_string());
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(unknown());
        }
        let iso =
            iso_currency::Currency::from_code(&code.to_ascii_uppercase()).ok_or_else(unknown)?;
        // Funds and metals (XAU, XDR…) have no minor unit: rent is never paid in them.
        iso.exponent().ok_or_else(unknown)?;
        Ok(Self(iso))
    }

    /// Lower-case code, as CasaPay writes it.
    pub fn code(self) -> String {
        self.0.code().to_ascii_lowercase()
    }

    /// Number of decimals of the minor unit (2 for eur, 0 for jpy, 3 for bhd).
    pub fn decimals(self) -> u32 {
        u32::from(self.0.exponent().unwrap_or(0))
    }

    fn symbol(self) -> String {
        let symbol = self.0.symbol().symbol;
        if symbol.is_empty() {
            format!("{} ", self.0.code())
        } else {
            symbol
        }
    }
}

impl serde::Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.code())
    }
}

impl<'de> serde::Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code())
    }
}

/// A non-negative amount in minor units of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if minor < 0 {
            return Err(MoneyError::Negative(minor));
        }
        if minor > MAX_AMOUNT {
            return Err(MoneyError::TooLarge(minor));
        }
        Ok(Self { minor, currency })
    }

    /// Parses an amount cell: digits only. `1200.00` is an error, never 1200 or 120000.
    pub fn parse_minor(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let trimmed = text.trim();
        if let Some(rest) = trimmed.strip_prefix('-')
            && !rest.is_empty()
            && rest.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(MoneyError::Negative(trimmed.parse().unwrap_or(i64::MIN)));
        }
        if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MoneyError::NotAnInteger(text.to_string()));
        }
        let minor = trimmed
            .parse::<i64>()
            .map_err(|_| MoneyError::TooLarge(i64::MAX))?;
        Self::new(minor, currency)
    }

    pub fn minor(self) -> i64 {
        self.minor
    }

    pub fn currency(self) -> Currency {
        self.currency
    }
}

/// Kept (in a queued mail) as `[minor, "currency"]`, checked again when read.
impl serde::Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (self.minor, self.currency).serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (minor, currency) = <(i64, Currency)>::deserialize(deserializer)?;
        Money::new(minor, currency).map_err(serde::de::Error::custom)
    }
}

/// `€1,200.00`, `£11,500.00`, `¥1,200`, `.د.ب1.500`: symbol, grouped major units,
/// then the currency's own number of decimals.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decimals = self.currency.decimals();
        let scale = 10_i64.pow(decimals);
        let major = self.minor / scale;
        let fraction = self.minor % scale;
        let digits = major.to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        write!(f, "{}{grouped}", self.currency.symbol())?;
        if decimals > 0 {
            write!(f, ".{fraction:0width$}", width = decimals as usize)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(minor: i64, code: &str) -> Money {
        Money::new(minor, Currency::parse(code).unwrap()).unwrap()
    }

    #[test]
    fn displays_with_the_currencys_own_symbol_and_decimals() {
        assert_eq!(money(120000, "eur").to_string(), "€1,200.00");
        assert_eq!(money(1150000, "gbp").to_string(), "£11,500.00");
        assert_eq!(money(1200, "jpy").to_string(), "¥1,200");
        assert_eq!(money(1500, "bhd").to_string(), ".د.ب1.500");
        assert_eq!(money(5, "eur").to_string(), "€0.05");
        assert_eq!(money(0, "usd").to_string(), "$0.00");
        assert_eq!(money(100_000_000, "usd").to_string(), "$1,000,000.00");
    }

    #[test]
    fn currency_codes_are_lower_case_iso_4217_with_minor_units() {
        assert_eq!(Currency::parse("eur").unwrap().code(), "eur");
        assert_eq!(Currency::parse("jpy").unwrap().decimals(), 0);
        assert_eq!(Currency::parse("kwd").unwrap().decimals(), 3);
        for bad in ["EUR", "eu", "euro", "xyz", "xau", "", "€"] {
            assert!(Currency::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn amounts_are_integers_in_minor_units() {
        let eur = Currency::parse("eur").unwrap();
        assert_eq!(Money::parse_minor("120000", eur).unwrap().minor(), 120000);
        assert_eq!(Money::parse_minor(" 7 ", eur).unwrap().minor(), 7);
        assert!(matches!(
            Money::parse_minor("1200.00", eur),
            Err(MoneyError::NotAnInteger(_))
        ));
        assert!(matches!(
            Money::parse_minor("-5", eur),
            Err(MoneyError::Negative(-5))
        ));
        assert!(matches!(
            Money::parse_minor("99999999999999999999", eur),
            Err(MoneyError::TooLarge(_))
        ));
        assert!(Money::parse_minor("1e5", eur).is_err());
        assert!(Money::parse_minor("", eur).is_err());
    }
}
