//! A rent period: one calendar month, `YYYY-MM`.

use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PeriodError {
    #[error("`{0}` is not a period: expected YYYY-MM")]
    Malformed(String),
    #[error("`{0}` is not a period range: expected YYYY-MM..YYYY-MM")]
    MalformedRange(String),
    #[error("period range `{0}` ends before it starts")]
    Backwards(String),
    #[error("period range `{0}` spans more than 120 months")]
    TooLong(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    year: i16,
    month: i8,
}

impl Period {
    pub fn new(year: i16, month: i8) -> Option<Self> {
        ((1..=9999).contains(&year) && (1..=12).contains(&month)).then_some(Self { year, month })
    }

    pub fn of_date(date: Date) -> Self {
        Self {
            year: date.year(),
            month: date.month(),
        }
    }

    pub fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn previous(self) -> Self {
        if self.month == 1 {
            Self {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Self {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// The month `months` after (or, negative, before) this one.
    pub fn shifted(self, months: i32) -> Self {
        let mut period = self;
        for _ in 0..months.unsigned_abs() {
            period = if months > 0 {
                period.next()
            } else {
                period.previous()
            };
        }
        period
    }

    /// Unix seconds when this month starts in `timezone`.
    pub fn start_in(self, timezone: &jiff::tz::TimeZone) -> i64 {
        self.day(1)
            .to_zoned(timezone.clone())
            .map_or(i64::MIN, |z| z.timestamp().as_second())
    }

    /// The month an instant falls in, in `timezone`.
    pub fn of_instant(unix_seconds: i64, timezone: &jiff::tz::TimeZone) -> Option<Self> {
        jiff::Timestamp::from_second(unix_seconds)
            .ok()
            .map(|t| Self::of_date(t.to_zoned(timezone.clone()).date()))
    }

    /// The given day of this month, clamped to its last day.
    pub fn day(self, day: i8) -> Date {
        let first = Date::new(self.year, self.month, 1).expect("a valid period has a first day");
        let day = day.clamp(1, first.days_in_month());
        Date::new(self.year, self.month, day).expect("day clamped into the month")
    }

    /// Expands `YYYY-MM` or `YYYY-MM..YYYY-MM` (inclusive) into months.
    pub fn parse_range(text: &str) -> Result<Vec<Self>, PeriodError> {
        let Some((from, to)) = text.split_once("..") else {
            return Ok(vec![text.parse()?]);
        };
        let bad = || PeriodError::MalformedRange(text.to_string());
        let from: Period = from.parse().map_err(|_| bad())?;
        let to: Period = to.parse().map_err(|_| bad())?;
        if to < from {
            return Err(PeriodError::Backwards(text.to_string()));
        }
        let mut months = vec![from];
        while let Some(&last) = months.last()
            && last < to
        {
            if months.len() == 120 {
                return Err(PeriodError::TooLong(text.to_string()));
            }
            months.push(last.next());
        }
        Ok(months)
    }
}

impl FromStr for Period {
    type Err = PeriodError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || PeriodError::Malformed(text.to_string());
        let (year, month) = text.split_once('-').ok_or_else(bad)?;
        if year.len() != 4
            || month.len() != 2
            || !(year.bytes().chain(month.bytes())).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        Period::new(
            year.parse().map_err(|_| bad())?,
            month.parse().map_err(|_| bad())?,
        )
        .ok_or_else(bad)
    }
}

/// Query parameters and config values parse with the same message as everywhere.
impl<'de> serde::Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_months_and_rejects_the_rest() {
        assert_eq!("2025-03".parse::<Period>().unwrap().to_string(), "2025-03");
        for bad in [
            "2025-13",
            "2025-00",
            "2025-3",
            "25-03",
            "2025/03",
            "",
            "2025-03-01",
            "+025-03",
        ] {
            assert!(bad.parse::<Period>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn expands_ranges_across_years() {
        let months = Period::parse_range("2024-11..2025-02").unwrap();
        let text: Vec<String> = months.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["2024-11", "2024-12", "2025-01", "2025-02"]);
        assert_eq!(Period::parse_range("2025-03").unwrap().len(), 1);
        assert!(matches!(
            Period::parse_range("2025-03..2025-01"),
            Err(PeriodError::Backwards(_))
        ));
        assert!(matches!(
            Period::parse_range("2025-03..x"),
            Err(PeriodError::MalformedRange(_))
        ));
        assert!(matches!(
            Period::parse_range("2000-01..2030-01"),
            Err(PeriodError::TooLong(_))
        ));
    }

    #[test]
    fn day_of_month_is_clamped() {
        let feb: Period = "2025-02".parse().unwrap();
        assert_eq!(feb.day(31).to_string(), "2025-02-28");
        assert_eq!(feb.day(1).to_string(), "2025-02-01");
    }
}
