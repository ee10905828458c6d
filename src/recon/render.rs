//! A reconciliation as text (a terminal table), JSON, CSV or one HTML page.

use askama::Template;

use super::arrears::{Arrears, ArrearsLine, ArrearsTotals};
use super::{Line, PayoutLine, Reconciliation, Total};
use crate::format::{self, Format, money, table, timestamp};

pub fn render(reconciliation: &Reconciliation, format: Format) -> String {
    let mut bytes = Vec::new();
    write(reconciliation, format, &mut bytes).expect("writing to memory");
    String::from_utf8(bytes).expect("renderings are UTF-8")
}

/// [`render`] written to `out` as it is produced: JSON and CSV, the formats a
/// whole period is exported in, are never held whole.
pub fn write(
    reconciliation: &Reconciliation,
    format: Format,
    mut out: impl std::io::Write,
) -> std::io::Result<()> {
    match format {
        Format::Json => serde_json::to_writer_pretty(&mut out, reconciliation)?,
        Format::Csv => format::write_csv(&mut out, &CSV_HEADER, csv_rows(&reconciliation.lines))?,
        Format::Text => out.write_all(text(reconciliation).as_bytes())?,
        Format::Html => out.write_all(html(reconciliation).as_bytes())?,
    }
    out.flush()
}

pub(super) const CSV_HEADER: [&str; 20] = [
    "property_id",
    "property_name",
    "landlord_id",
    "period",
    "currency",
    "expected",
    "expected_display",
    "collected",
    "collected_display",
    "outstanding",
    "outstanding_display",
    "status",
    "due_date",
    "payment_requests",
    "next_retry_at",
    "failure_reason",
    "next_retry_estimated",
    "retry_stalled",
    "attempts",
    "payment_method_used",
];

/// One row per expected line; money in minor units plus a formatted column.
fn csv_rows(lines: &[Line]) -> impl Iterator<Item = [String; 20]> + '_ {
    lines.iter().map(csv_row)
}

/// One line's CSV cells, in [`CSV_HEADER`] order.
pub(super) fn csv_row(line: &Line) -> [String; 20] {
    [
        line.property_id.to_string(),
        line.property_name.clone().unwrap_or_default(),
        line.landlord_id.to_string(),
        line.period.clone(),
        line.currency.code(),
        line.expected.to_string(),
        money(line.expected, line.currency),
        line.collected.to_string(),
        money(line.collected, line.currency),
        line.outstanding.to_string(),
        money(line.outstanding, line.currency),
        line.status.as_str().to_string(),
        line.due_date.to_string(),
        line.payment_requests.join(" "),
        line.next_retry_at
            .map(|t| t.to_string())
            .unwrap_or_default(),
        line.failure_reason.clone().unwrap_or_default(),
        line.next_retry_estimated.to_string(),
        line.retry_stalled.to_string(),
        line.attempts.map(|a| a.to_string()).unwrap_or_default(),
        line.payment_method_used.clone().unwrap_or_default(),
    ]
}

/// A totals row: currency, expected, collected, outstanding, paid out.
pub fn total_cells(t: &Total) -> Vec<String> {
    vec![
        t.currency.code(),
        money(t.expected, t.currency),
        money(t.collected, t.currency),
        money(t.outstanding, t.currency),
        money(t.paid_out, t.currency),
    ]
}

/// A payouts row: landlord, collected, due, paid out, in transit, failed, status.
fn payout_cells(p: &PayoutLine) -> Vec<String> {
    vec![
        p.landlord_id.to_string(),
        money(p.collected, p.currency),
        money(p.due, p.currency),
        money(p.paid_out, p.currency),
        money(p.in_transit, p.currency),
        money(p.failed, p.currency),
        p.status.as_str().to_string(),
    ]
}

fn detail(line: &Line) -> String {
    let mut parts = Vec::new();
    if let Some(reason) = &line.failure_reason {
        parts.push(reason.clone());
    }
    if let Some(attempts) = line.attempts.filter(|a| *a > 0) {
        parts.push(format!("attempt {attempts} of 3"));
    }
    if let Some(at) = line.next_retry_at {
        let estimated = if line.next_retry_estimated {
            " (estimated)"
        } else {
            ""
        };
        let stalled = if line.retry_stalled { ", stalled" } else { "" };
        parts.push(format!("retry {}{estimated}{stalled}", timestamp(at)));
    }
    if let Some(method) = &line.payment_method_used {
        parts.push(method.clone());
    }
    if !line.payment_requests.is_empty() {
        parts.push(line.payment_requests.join(" "));
    }
    parts.join("; ")
}

fn text(r: &Reconciliation) -> String {
    let mut out = format!("Reconciliation {} (as of {})\n\n", r.period, r.as_of);
    if r.lines.is_empty() {
        out.push_str("No rent expected for this period: import a rent roll first.\n");
    } else {
        let rows: Vec<Vec<String>> = r
            .lines
            .iter()
            .map(|l| {
                vec![
                    l.property_id.to_string(),
                    l.landlord_id.to_string(),
                    l.due_date.to_string(),
                    money(l.expected, l.currency),
                    money(l.collected, l.currency),
                    money(l.outstanding, l.currency),
                    l.status.as_str().to_string(),
                    detail(l),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "PROPERTY",
                "LANDLORD",
                "DUE",
                "EXPECTED",
                "COLLECTED",
                "OUTSTANDING",
                "STATUS",
                "DETAIL",
            ],
            &[3, 4, 5],
            &rows,
        ));
    }
    if !r.unmatched.is_empty() {
        out.push_str("\nUnmatched payments\n");
        let rows: Vec<Vec<String>> = r
            .unmatched
            .iter()
            .map(|u| {
                vec![
                    u.payment_request.clone(),
                    money(u.amount, u.currency),
                    u.status.as_str().to_string(),
                    u.property_id.as_deref().unwrap_or("-").to_string(),
                    u.period.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        out.push_str(&table(
            &["PAYMENT REQUEST", "AMOUNT", "STATUS", "PROPERTY", "PERIOD"],
            &[1],
            &rows,
        ));
    }
    let loose = loose_payout_rows(r);
    if !loose.is_empty() {
        out.push_str("\nPayouts without a period or a landlord\n");
        let rows: Vec<Vec<String>> = loose.into_iter().map(|row| row.0).collect();
        out.push_str(&table(
            &["PAYOUT", "LANDLORD", "AMOUNT", "STATUS", "CREATED", "NOTE"],
            &[2],
            &rows,
        ));
    }
    if !r.payouts.is_empty() {
        out.push_str("\nPayouts\n");
        let rows: Vec<Vec<String>> = r.payouts.iter().map(payout_cells).collect();
        out.push_str(&table(
            &[
                "LANDLORD",
                "COLLECTED",
                "DUE",
                "PAID OUT",
                "IN TRANSIT",
                "FAILED",
                "STATUS",
            ],
            &[1, 2, 3, 4, 5],
            &rows,
        ));
    }
    if !r.totals.is_empty() {
        out.push_str("\nTotals\n");
        let rows: Vec<Vec<String>> = r.totals.iter().map(total_cells).collect();
        out.push_str(&table(
            &[
                "CURRENCY",
                "EXPECTED",
                "COLLECTED",
                "OUTSTANDING",
                "PAID OUT",
            ],
            &[1, 2, 3, 4],
            &rows,
        ));
    }
    out
}

/// A row of the HTML tables, formatted; askama escapes every value.
pub struct HtmlLine {
    pub property: String,
    pub landlord_id: String,
    pub due_date: String,
    pub expected: String,
    pub collected: String,
    pub outstanding: String,
    pub status: &'static str,
    pub detail: String,
}

pub struct HtmlRow(pub Vec<String>, pub &'static str);

/// Unallocated payouts (landlord, no period) and unmatched ones (no landlord).
fn loose_payout_rows(r: &Reconciliation) -> Vec<HtmlRow> {
    let unallocated = r.unallocated_payouts.iter().map(|p| {
        HtmlRow(
            vec![
                p.payout.clone(),
                p.landlord_id.to_string(),
                money(p.amount, p.currency),
                p.status.as_str().to_string(),
                timestamp(p.created),
                "no period".to_string(),
            ],
            "unallocated_payout",
        )
    });
    let unmatched = r.unmatched_payouts.iter().map(|p| {
        HtmlRow(
            vec![
                p.payout.clone(),
                "-".to_string(),
                money(p.amount, p.currency),
                p.status.as_str().to_string(),
                timestamp(p.created),
                match &p.destination {
                    Some(account) => format!("no landlord for {account}"),
                    None => "no landlord".to_string(),
                },
            ],
            "unmatched_payout",
        )
    });
    unallocated.chain(unmatched).collect()
}

#[derive(Template)]
#[template(path = "reconciliation.html")]
struct ReconciliationPage<'a> {
    r: &'a Reconciliation,
    lines: Vec<HtmlLine>,
    unmatched: Vec<HtmlRow>,
    loose_payouts: Vec<HtmlRow>,
    payouts: Vec<HtmlRow>,
    totals: Vec<HtmlRow>,
}

pub fn html_lines(lines: &[Line]) -> Vec<HtmlLine> {
    lines
        .iter()
        .map(|l| HtmlLine {
            property: match &l.property_name {
                Some(name) => format!("{name} ({})", l.property_id),
                None => l.property_id.to_string(),
            },
            landlord_id: l.landlord_id.to_string(),
            due_date: l.due_date.to_string(),
            expected: money(l.expected, l.currency),
            collected: money(l.collected, l.currency),
            outstanding: money(l.outstanding, l.currency),
            status: l.status.as_str(),
            detail: detail(l),
        })
        .collect()
}

fn html(r: &Reconciliation) -> String {
    let page = ReconciliationPage {
        r,
        lines: html_lines(&r.lines),
        unmatched: r
            .unmatched
            .iter()
            .map(|u| {
                HtmlRow(
                    vec![
                        u.payment_request.clone(),
                        money(u.amount, u.currency),
                        u.status.as_str().to_string(),
                        u.property_id.as_deref().unwrap_or_default().to_string(),
                        u.period.clone().unwrap_or_default(),
                    ],
                    "unmatched",
                )
            })
            .collect(),
        loose_payouts: loose_payout_rows(r),
        payouts: r
            .payouts
            .iter()
            .map(|p| HtmlRow(payout_cells(p), p.status.as_str()))
            .collect(),
        totals: r
            .totals
            .iter()
            .map(|t| HtmlRow(total_cells(t), ""))
            .collect(),
    };
    page.render().expect("the reconciliation template renders")
}

/// Buckets in the order they are shown: ages, then what is still being collected.
const ARREARS_COLUMNS: [&str; 5] = ["0-30", "31-60", "61-90", "90+", "in_collection"];

/// Per currency: the outstanding amount of each bucket.
pub fn arrears_total_rows(totals: &ArrearsTotals) -> Vec<Vec<String>> {
    totals
        .iter()
        .map(|(currency, buckets)| {
            std::iter::once(currency.code())
                .chain(ARREARS_COLUMNS.iter().map(|b| {
                    let total = buckets.get(b).cloned().unwrap_or_default();
                    format!("{} ({})", money(total.outstanding, *currency), total.lines)
                }))
                .collect()
        })
        .collect()
}

/// The cells every arrears table starts with, whatever its format.
fn arrears_cells(l: &ArrearsLine) -> Vec<String> {
    vec![
        l.landlord_id.to_string(),
        l.property_id.to_string(),
        l.period.clone(),
        l.due_date.to_string(),
        l.days_past_due.to_string(),
        l.bucket.to_string(),
    ]
}

fn arrears_rows(a: &Arrears) -> Vec<Vec<String>> {
    a.lines
        .iter()
        .map(|l| {
            let mut row = arrears_cells(l);
            row.push(money(l.outstanding, l.currency));
            row
        })
        .collect()
}

#[derive(Template)]
#[template(path = "arrears.html")]
struct ArrearsPage<'a> {
    as_of: &'a str,
    buckets: [&'static str; 5],
    totals: Vec<Vec<String>>,
    lines: Vec<Vec<String>>,
}

/// The arrears' totals as text: one row per currency, one column per bucket.
pub fn arrears_summary(totals: &ArrearsTotals) -> String {
    let mut headers = vec!["CURRENCY"];
    headers.extend(ARREARS_COLUMNS);
    table(&headers, &[1, 2, 3, 4, 5], &arrears_total_rows(totals))
}

pub fn render_arrears(a: &Arrears, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(a).expect("arrears serialise"),
        Format::Csv => format::csv(
            &[
                "landlord_id",
                "property_id",
                "period",
                "due_date",
                "days_past_due",
                "bucket",
                "currency",
                "outstanding",
                "outstanding_display",
            ],
            a.lines.iter().map(|l| {
                let mut row = arrears_cells(l);
                row.extend([
                    l.currency.code(),
                    l.outstanding.to_string(),
                    money(l.outstanding, l.currency),
                ]);
                row
            }),
        ),
        Format::Text => {
            let mut out = format!("Arrears as of {}\n\n", a.as_of);
            out.push_str(&arrears_summary(&a.totals));
            if !a.lines.is_empty() {
                out.push('\n');
                out.push_str(&table(
                    &[
                        "LANDLORD",
                        "PROPERTY",
                        "PERIOD",
                        "DUE",
                        "DAYS",
                        "BUCKET",
                        "OUTSTANDING",
                    ],
                    &[4, 6],
                    &arrears_rows(a),
                ));
            }
            out
        }
        Format::Html => ArrearsPage {
            as_of: &a.as_of,
            buckets: ARREARS_COLUMNS,
            totals: arrears_total_rows(&a.totals),
            lines: arrears_rows(a),
        }
        .render()
        .expect("the arrears template renders"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::{Currency, LandlordId, LineStatus, PropertyId};

    #[test]
    fn arrears_csv_and_text_show_the_same_line() {
        let eur = Currency::parse("eur").unwrap();
        let arrears = Arrears {
            object: "arrears",
            as_of: "2025-03-20".into(),
            totals: BTreeMap::new(),
            lines: vec![ArrearsLine {
                property_id: PropertyId::parse("prop_1").unwrap(),
                landlord_id: LandlordId::parse("ll_1").unwrap(),
                period: "2025-02".into(),
                currency: eur,
                outstanding: 120_000,
                due_date: jiff::civil::date(2025, 2, 1),
                days_past_due: 47,
                bucket: "31-60",
                status: LineStatus::Overdue,
            }],
        };
        let shown = money(120_000, eur);
        let csv = render_arrears(&arrears, Format::Csv);
        // The display amount holds a comma, so CSV quotes it.
        let row = format!("ll_1,prop_1,2025-02,2025-02-01,47,31-60,eur,120000,\"{shown}\"");
        assert_eq!(csv.lines().nth(1), Some(row.as_str()), "{csv}");
        let text = render_arrears(&arrears, Format::Text);
        let line = text.lines().find(|l| l.starts_with("ll_1")).expect(&text);
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            &cells[..6],
            ["ll_1", "prop_1", "2025-02", "2025-02-01", "47", "31-60"]
        );
        assert!(line.ends_with(&shown), "{line}");
    }
}
