//! One period's reconciliation read, for every engine: the engine runs two
//! ordered queries (the period's lines; its requests, each sorted under the
//! line of the property it is for, then those placed at no line) and this
//! merges them, handing on one line and its requests at a time, so memory
//! does not grow with the period.

use jiff::tz::TimeZone;

use super::records::UNDATED_MARGIN_DAYS;
use super::{PeriodItem, PlacedRequest, StoreError};
use crate::domain::{ExpectedRent, LandlordId, Period, PropertyId};

/// What a period's read selects.
pub(super) struct PeriodWindow {
    pub period: Period,
    /// Undated requests created in [from, until) (unix seconds) are read.
    pub undated_created: (i64, i64),
    /// The months whose due dates an undated request may match (inclusive).
    pub due_months: (Period, Period),
}

impl PeriodWindow {
    pub fn new(period: Period, timezone: &TimeZone) -> Self {
        let margin = UNDATED_MARGIN_DAYS * 86_400;
        let (start, end) = (period.start_in(timezone), period.next().start_in(timezone));
        Self {
            period,
            undated_created: (start - margin, end + margin),
            due_months: (period.shifted(-3), period.shifted(3)),
        }
    }
}

/// A request as the engine reads it: with the (landlord, property) of the
/// period's line it sorts under, if its property has one.
pub(super) struct PlacedRow {
    pub line: Option<(LandlordId, PropertyId)>,
    pub request: PlacedRequest,
}

/// Merges lines and requests, both sorted by (landlord, property), the
/// requests without a line after the others, by id (reconciliation lists
/// them after the lines, in that order).
pub(super) fn merge(
    lines: impl Iterator<Item = Result<ExpectedRent, StoreError>>,
    requests: impl Iterator<Item = Result<PlacedRow, StoreError>>,
    visit: &mut dyn FnMut(PeriodItem) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut requests = requests.peekable();
    for line in lines {
        let line = line?;
        let key = (&line.landlord_id, &line.property_id);
        let mut placed = Vec::new();
        while let Some(next) = requests.next_if(|next| {
            next.as_ref().map_or(true, |row| {
                row.line.as_ref().is_some_and(|(l, p)| (l, p) <= key)
            })
        }) {
            let row = next?;
            match &row.line {
                Some((l, p)) if (l, p) == key => placed.push(row.request),
                _ => return Err(out_of_order()),
            }
        }
        visit(PeriodItem::Line(line, placed))?;
    }
    for row in requests {
        let row = row?;
        if row.line.is_some() {
            return Err(out_of_order());
        }
        visit(PeriodItem::Unplaced(row.request))?;
    }
    Ok(())
}

/// `columns` (comma-separated) each prefixed by `table.`.
pub(super) fn qualified(table: &str, columns: &str) -> String {
    columns
        .split(',')
        .map(|column| format!("{table}.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A request sorted under a line the line query did not return: the two
/// queries disagree (a bug; they read one snapshot).
fn out_of_order() -> StoreError {
    StoreError::Corrupt("a period's requests and lines were read in different orders".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        Currency, Money, PaymentRequest, PaymentRequestStatus, StatusRank, StoredRequest, Version,
    };

    fn line(landlord: &str, property: &str) -> ExpectedRent {
        let period: Period = "2025-03".parse().unwrap();
        ExpectedRent {
            property_id: PropertyId::parse(property).unwrap(),
            landlord_id: LandlordId::parse(landlord).unwrap(),
            period,
            amount: Money::new(100, Currency::parse("eur").unwrap()).unwrap(),
            due_date: period.day(1),
            commission_bps: 0,
            payment_agreement: None,
            property_name: None,
        }
    }

    fn row(id: &str, line: Option<(&str, &str)>) -> PlacedRow {
        PlacedRow {
            line: line.map(|(l, p)| (LandlordId::parse(l).unwrap(), PropertyId::parse(p).unwrap())),
            request: PlacedRequest {
                stored: StoredRequest {
                    request: PaymentRequest {
                        id: id.into(),
                        payment_agreement: None,
                        amount: Money::new(100, Currency::parse("eur").unwrap()).unwrap(),
                        status: PaymentRequestStatus::Succeeded,
                        failure_reason: None,
                        attempts: None,
                        next_retry_at: None,
                        payment_method_used: None,
                        property_id: None,
                        period: None,
                        description: None,
                        created: 0,
                    },
                    version: Version {
                        created: 0,
                        rank: StatusRank(0),
                    },
                    set_by_retrying_event: false,
                },
                due_dates: None,
            },
        }
    }

    fn merged(lines: Vec<ExpectedRent>, rows: Vec<PlacedRow>) -> Result<Vec<String>, StoreError> {
        let mut seen = Vec::new();
        merge(
            lines.into_iter().map(Ok),
            rows.into_iter().map(Ok),
            &mut |item| {
                seen.push(match item {
                    PeriodItem::Line(line, requests) => {
                        let ids: Vec<_> = requests
                            .iter()
                            .map(|r| r.stored.request.id.as_str())
                            .collect();
                        format!("{}:{}", line.property_id.as_str(), ids.join("+"))
                    }
                    PeriodItem::Unplaced(r) => format!("unplaced:{}", r.stored.request.id),
                });
                Ok(())
            },
        )?;
        Ok(seen)
    }

    #[test]
    fn each_line_gets_the_requests_sorted_under_it() {
        let seen = merged(
            vec![
                line("ll_1", "p_1"),
                line("ll_1", "p_2"),
                line("ll_2", "p_0"),
            ],
            vec![
                row("a", Some(("ll_1", "p_1"))),
                row("b", Some(("ll_1", "p_1"))),
                row("c", Some(("ll_2", "p_0"))),
                row("orphan", None),
            ],
        )
        .unwrap();
        assert_eq!(seen, ["p_1:a+b", "p_2:", "p_0:c", "unplaced:orphan"]);
    }

    #[test]
    fn requests_without_a_line_come_after_every_line_or_are_an_error() {
        let error = merged(
            vec![line("ll_1", "p_1")],
            vec![row("orphan", None), row("a", Some(("ll_1", "p_1")))],
        )
        .unwrap_err();
        assert!(matches!(error, StoreError::Corrupt(_)), "{error}");
    }

    #[test]
    fn a_request_under_a_line_that_was_not_read_is_an_error() {
        let error = merged(
            vec![line("ll_1", "p_2")],
            vec![row("a", Some(("ll_1", "p_1")))],
        )
        .unwrap_err();
        assert!(matches!(error, StoreError::Corrupt(_)), "{error}");
        assert!(merged(vec![], vec![row("a", Some(("ll_1", "p_1")))]).is_err());
    }
}
