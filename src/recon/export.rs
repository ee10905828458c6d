//! A period's reconciliation written as it is computed. JSON and CSV hold
//! one line at a time, whatever the size of the period; text and HTML (read
//! by people, laid out as a whole) are rendered from the whole reconciliation.

use std::io::{self, Write};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;

use super::render::{self, CSV_HEADER, csv_row};
use super::{
    Line, LineFilter, PayoutLine, Piece, Summary, Total, UnallocatedPayout, UnmatchedPayout,
    reconcile_pieces, reconcile_stored,
};
use crate::domain::Period;
use crate::format::{CsvRows, Format};
use crate::store::{Storage, StoreError};

/// Which period, as of when, and which lines.
pub struct Export {
    pub period: Period,
    pub as_of: Date,
    pub timezone: TimeZone,
    /// Only this landlord's lines and payouts.
    pub landlord: Option<String>,
    /// The lines written (the totals count every line).
    pub filter: LineFilter,
}

impl Export {
    /// Writes the reconciliation to `out`; the same bytes as
    /// [`render::write`] of the whole reconciliation.
    pub fn write(
        &self,
        store: &dyn Storage,
        format: Format,
        out: &mut (dyn Write + Send),
    ) -> io::Result<()> {
        match format {
            Format::Json => self.json(store, out)?,
            Format::Csv => self.csv(store, out)?,
            Format::Text | Format::Html => {
                let mut whole = reconcile_stored(
                    store,
                    self.period,
                    self.as_of,
                    &self.timezone,
                    self.landlord.as_deref(),
                )
                .map_err(io::Error::other)?;
                whole.retain_lines(&self.filter);
                render::write(&whole, format, &mut *out)?;
            }
        }
        out.flush()
    }

    /// A page of the lines in their order (landlord, property), after the
    /// line of `starting_after` (a property id), and whether more follow;
    /// `None` if no line is `starting_after`'s. Holds at most `limit + 1` lines.
    pub fn page(
        &self,
        store: &dyn Storage,
        limit: usize,
        starting_after: Option<&str>,
    ) -> Result<Option<(Vec<Line>, bool)>, StoreError> {
        let mut found = starting_after.is_none();
        let mut page = Vec::new();
        self.filtered(store, &mut |piece| {
            let Piece::Line(line) = piece else {
                return Ok(());
            };
            if !found {
                found = starting_after.is_some_and(|after| line.property_id == after);
            } else if page.len() <= limit {
                page.push(line);
            }
            Ok(())
        })?;
        let has_more = page.len() > limit;
        page.truncate(limit);
        Ok(found.then_some((page, has_more)))
    }

    fn csv(&self, store: &dyn Storage, out: &mut dyn Write) -> io::Result<()> {
        let mut rows = CsvRows::new(&mut *out, &CSV_HEADER)?;
        self.each_line(store, |line| rows.row(csv_row(&line)))?;
        rows.finish()
    }

    /// The document `serde_json::to_writer_pretty` makes of the whole
    /// reconciliation, put together from its pieces: each piece is
    /// serialised alone and indented to its depth.
    fn json(&self, store: &dyn Storage, out: &mut dyn Write) -> io::Result<()> {
        #[derive(Serialize)]
        struct Head<'a> {
            object: &'static str,
            period: String,
            as_of: String,
            lines: &'a [Line],
        }
        let head = serde_json::to_string_pretty(&Head {
            object: "reconciliation",
            period: self.period.to_string(),
            as_of: self.as_of.to_string(),
            lines: &[],
        })?;
        // `…"lines": []\n}`: open the array and write the lines into it.
        let head = head
            .strip_suffix("[]\n}")
            .expect("the head ends with its empty lines");
        out.write_all(head.as_bytes())?;
        out.write_all(b"[")?;
        // The lines, then (once the first unmatched request comes) the unmatched.
        let mut in_lines = true;
        let mut first = true;
        let mut json = Vec::new();
        let summary = self.each_piece(store, |piece| {
            if in_lines && matches!(piece, Piece::Unmatched(_)) {
                close_array(out, first)?;
                out.write_all(b",\n  \"unmatched\": [")?;
                (in_lines, first) = (false, true);
            }
            out.write_all(if first { b"\n" } else { b",\n" })?;
            first = false;
            json.clear();
            match &piece {
                Piece::Line(line) => serde_json::to_writer_pretty(&mut json, line)?,
                Piece::Unmatched(request) => serde_json::to_writer_pretty(&mut json, request)?,
            }
            // At depth two: four spaces before each of its lines (JSON
            // strings hold no raw newline).
            for piece in json.split_inclusive(|&b| b == b'\n') {
                out.write_all(b"    ")?;
                out.write_all(piece)?;
            }
            Ok(())
        })?;
        if in_lines {
            close_array(out, first)?;
            out.write_all(b",\n  \"unmatched\": [")?;
            first = true;
        }
        close_array(out, first)?;
        #[derive(Serialize)]
        struct Tail<'a> {
            payouts: &'a [PayoutLine],
            unallocated_payouts: &'a [UnallocatedPayout],
            unmatched_payouts: &'a [UnmatchedPayout],
            totals: &'a [Total],
        }
        let tail = serde_json::to_string_pretty(&Tail {
            payouts: &summary.payouts,
            unallocated_payouts: &summary.unallocated_payouts,
            unmatched_payouts: &summary.unmatched_payouts,
            totals: &summary.totals,
        })?;
        let tail = tail.strip_prefix("{").expect("the tail is an object");
        out.write_all(b",")?;
        out.write_all(tail.as_bytes())
    }

    /// Hands each line that passes the filter, then each unmatched request,
    /// to `write`; what follows them.
    fn each_piece(
        &self,
        store: &dyn Storage,
        mut write: impl FnMut(Piece) -> io::Result<()>,
    ) -> io::Result<Summary> {
        let mut failed = None;
        let result = self.filtered(store, &mut |piece| {
            write(piece).map_err(|error| {
                failed = Some(error);
                StoreError::Io(io::Error::other("the output could not be written"))
            })
        });
        match (result, failed) {
            (_, Some(error)) => Err(error),
            (Ok(summary), None) => Ok(summary),
            (Err(error), None) => Err(io::Error::other(error)),
        }
    }

    /// Hands each line that passes the filter to `write`; what follows the lines.
    fn each_line(
        &self,
        store: &dyn Storage,
        mut write: impl FnMut(Line) -> io::Result<()>,
    ) -> io::Result<Summary> {
        self.each_piece(store, |piece| match piece {
            Piece::Line(line) => write(line),
            Piece::Unmatched(_) => Ok(()),
        })
    }

    /// Reconciles the period, handing `on` each line that passes the filter
    /// and each unmatched request.
    fn filtered(
        &self,
        store: &dyn Storage,
        on: &mut dyn FnMut(Piece) -> Result<(), StoreError>,
    ) -> Result<Summary, StoreError> {
        let (timezone, landlord) = (&self.timezone, self.landlord.as_deref());
        reconcile_pieces(
            store,
            self.period,
            self.as_of,
            timezone,
            landlord,
            &mut |piece| match &piece {
                Piece::Line(line) if !self.filter.keeps(line) => Ok(()),
                _ => on(piece),
            },
        )
    }
}

/// Ends a JSON array at depth one: `[]` if nothing was written into it.
fn close_array(out: &mut dyn Write, empty: bool) -> io::Result<()> {
    out.write_all(if empty { b"]" } else { b"\n  ]" })
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::domain::{
        Currency, LineStatus, Money, Object, PaymentRequest, PaymentRequestStatus, PropertyId,
        StatusRank, Version,
    };
    use crate::recon::render::render;
    use crate::store::{SetBy, migrate};

    /// 2025-03-02T00:00:00Z.
    const MARCH_2: i64 = 1_740_873_600;

    fn request(
        id: &str,
        property: Option<&str>,
        agreement: Option<&str>,
        period: Option<&str>,
        amount: i64,
    ) -> Object {
        Object::PaymentRequest(PaymentRequest {
            id: id.into(),
            payment_agreement: agreement.map(str::to_string),
            amount: Money::new(amount, Currency::parse("eur").unwrap()).unwrap(),
            status: PaymentRequestStatus::Succeeded,
            failure_reason: None,
            attempts: None,
            next_retry_at: None,
            payment_method_used: None,
            property_id: property.map(|p| PropertyId::parse(p).unwrap()),
            period: period.map(str::to_string),
            description: None,
            created: MARCH_2,
        })
    }

    /// Three landlords' March lines (ll_b's first in the file), a February
    /// line, and requests matched by metadata, by agreement and undated, for
    /// a property without a March line, for no property, for February, and
    /// one at a line whose due date is too far from it.
    fn books() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let roll = crate::rent_roll::parse(
            b"property_id,landlord_id,period,amount,currency,payment_agreement,property_name,due_date
p_1,ll_b,2025-03,100000,eur,pa_1,\"Flat 1, \"\"top\"\"\",2025-03-01
p_2,ll_a,2025-03,50000,eur,,,2025-03-05
p_3,ll_a,2025-02,50000,eur,pa_3,,2025-02-05
p_4,ll_c,2025-03,50000,eur,,,2025-05-20
",
        )
        .unwrap();
        conn.import_rent_roll(&roll).unwrap().unwrap();
        for object in [
            request("preq_1", Some("p_1"), None, Some("2025-03"), 60000),
            request("preq_2", None, Some("pa_1"), None, 40000),
            request("preq_3", Some("p_3"), None, Some("2025-03"), 50000),
            request("preq_4", Some("p_nowhere"), None, None, 10),
            request("preq_5", Some("p_2"), None, Some("2025-02"), 50000),
            // Due 79 days after it was created: its line's, but no period matches.
            request("preq_35", Some("p_4"), None, None, 50000),
        ] {
            let version = Version {
                created: MARCH_2,
                rank: StatusRank(3),
            };
            let set_by = SetBy {
                event_id: "evt_1",
                event_type: "payment_request.succeeded",
                version,
            };
            conn.save_object(&object, set_by).unwrap();
        }
        conn
    }

    fn export(landlord: Option<&str>, filter: LineFilter) -> Export {
        Export {
            period: "2025-03".parse().unwrap(),
            as_of: "2025-03-20".parse().unwrap(),
            timezone: TimeZone::UTC,
            landlord: landlord.map(str::to_string),
            filter,
        }
    }

    #[test]
    fn a_period_written_as_computed_is_the_whole_reconciliation_rendered() {
        let conn = books();
        let paid = LineFilter {
            status: Some(LineStatus::Paid),
            ..LineFilter::default()
        };
        for (landlord, filter) in [
            (None, LineFilter::default()),
            (Some("ll_a"), LineFilter::default()),
            (None, paid),
        ] {
            let export = export(landlord, filter);
            let mut whole =
                reconcile_stored(&conn, export.period, export.as_of, &TimeZone::UTC, landlord)
                    .unwrap();
            whole.retain_lines(&export.filter);
            for format in [Format::Json, Format::Csv] {
                let mut out = Vec::new();
                export.write(&conn, format, &mut out).unwrap();
                assert_eq!(String::from_utf8(out).unwrap(), render(&whole, format));
            }
        }
    }

    #[test]
    fn requests_reach_their_lines_in_landlord_then_property_order() {
        let conn = books();
        let export = export(None, LineFilter::default());
        let r = reconcile_stored(&conn, export.period, export.as_of, &TimeZone::UTC, None).unwrap();
        let lines: Vec<_> = r
            .lines
            .iter()
            .map(|l| {
                (
                    l.property_id.as_str(),
                    l.payment_requests.join("+"),
                    l.status,
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                ("p_2", String::new(), LineStatus::Overdue),
                ("p_1", "preq_1+preq_2".to_string(), LineStatus::Paid),
                ("p_4", String::new(), LineStatus::Unpaid),
            ]
        );
        let unmatched: Vec<_> = r
            .unmatched
            .iter()
            .map(|u| u.payment_request.as_str())
            .collect();
        assert_eq!(
            unmatched,
            ["preq_3", "preq_35", "preq_4"],
            "by id, wherever found"
        );
    }

    #[test]
    fn a_page_holds_its_lines_and_says_whether_more_follow() {
        let conn = books();
        let export = export(None, LineFilter::default());
        let ids = |page: Option<(Vec<Line>, bool)>| {
            page.map(|(lines, more)| {
                let ids: Vec<String> = lines.iter().map(|l| l.property_id.to_string()).collect();
                (ids, more)
            })
        };
        assert_eq!(
            ids(export.page(&conn, 1, None).unwrap()),
            Some((vec!["p_2".into()], true))
        );
        assert_eq!(
            ids(export.page(&conn, 1, Some("p_2")).unwrap()),
            Some((vec!["p_1".into()], true))
        );
        assert_eq!(
            ids(export.page(&conn, 5, Some("p_1")).unwrap()),
            Some((vec!["p_4".into()], false))
        );
        assert_eq!(
            ids(export.page(&conn, 5, Some("p_4")).unwrap()),
            Some((vec![], false))
        );
        assert_eq!(ids(export.page(&conn, 5, Some("p_9")).unwrap()), None);
    }
}
