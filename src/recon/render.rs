//! A reconciliation as text (a terminal table), JSON, CSV or one HTML page.

use askama::Template;
use serde::Deserialize;

use super::{Line, PayoutLine, Reconciliation, Total};
use crate::domain::{Currency, Money};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Text,
    Json,
    Csv,
    Html,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; charset=utf-8",
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
        }
    }
}

/// `€1,200.00`; amounts in stored data are always valid `Money`.
pub fn money(minor: i64, currency: Currency) -> String {
    Money::new(minor, currency).map_or_else(|_| format!("{minor} {currency}"), |m| m.to_string())
}

pub fn render(reconciliation: &Reconciliation, format: Format) -> String {
    match format {
        Format::Json => {
            serde_json::to_string_pretty(reconciliation).expect("a reconciliation serialises")
        }
        Format::Csv => csv(&reconciliation.lines),
        Format::Text => text(reconciliation),
        Format::Html => html(reconciliation),
    }
}

/// Spreadsheets run cells that begin with = + - @ (or a tab or CR) as formulas:
/// such cells get a leading apostrophe.
pub fn neutralise(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

const CSV_HEADER: [&str; 16] = [
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
];

/// One row per expected line; money in minor units plus a formatted column.
pub fn csv(lines: &[Line]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(CSV_HEADER).expect("writing to memory");
    for line in lines {
        let row = [
            line.property_id.clone(),
            line.property_name.clone().unwrap_or_default(),
            line.landlord_id.clone(),
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
        ];
        writer
            .write_record(row.iter().map(|cell| neutralise(cell)))
            .expect("writing to memory");
    }
    String::from_utf8(writer.into_inner().expect("flushing to memory"))
        .expect("CSV of UTF-8 strings")
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
        p.landlord_id.clone(),
        money(p.collected, p.currency),
        money(p.due, p.currency),
        money(p.paid_out, p.currency),
        money(p.in_transit, p.currency),
        money(p.failed, p.currency),
        p.status.as_str().to_string(),
    ]
}

/// Columns padded to their widest cell; `right` columns are right-aligned.
fn table(headers: &[&str], right: &[usize], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let pad = " ".repeat(widths[i] - cell.chars().count());
                if right.contains(&i) {
                    format!("{pad}{cell}")
                } else {
                    format!("{cell}{pad}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn detail(line: &Line) -> String {
    let mut parts = Vec::new();
    if let Some(reason) = &line.failure_reason {
        parts.push(reason.clone());
    }
    if let Some(at) = line
        .next_retry_at
        .and_then(|t| jiff::Timestamp::from_second(t).ok())
    {
        parts.push(format!("retry {}", at.strftime("%Y-%m-%d %H:%M UTC")));
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
                    l.property_id.clone(),
                    l.landlord_id.clone(),
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
                    u.property_id.clone().unwrap_or_else(|| "-".into()),
                    u.period.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        out.push_str(&table(
            &["PAYMENT REQUEST", "AMOUNT", "PROPERTY", "PERIOD"],
            &[1],
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

#[derive(Template)]
#[template(path = "reconciliation.html")]
struct ReconciliationPage<'a> {
    r: &'a Reconciliation,
    lines: Vec<HtmlLine>,
    unmatched: Vec<HtmlRow>,
    payouts: Vec<HtmlRow>,
    totals: Vec<HtmlRow>,
}

pub fn html_lines(lines: &[Line]) -> Vec<HtmlLine> {
    lines
        .iter()
        .map(|l| HtmlLine {
            property: match &l.property_name {
                Some(name) => format!("{name} ({})", l.property_id),
                None => l.property_id.clone(),
            },
            landlord_id: l.landlord_id.clone(),
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
                        u.property_id.clone().unwrap_or_default(),
                        u.period.clone().unwrap_or_default(),
                    ],
                    "unmatched",
                )
            })
            .collect(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        for cell in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx"] {
            assert!(neutralise(cell).starts_with('\''), "{cell}");
        }
        assert_eq!(neutralise("prop_1"), "prop_1");
    }

    #[test]
    fn tables_align_columns() {
        let out = table(
            &["A", "AMOUNT"],
            &[1],
            &[vec!["long value".into(), "€1.00".into()]],
        );
        assert_eq!(out, "A           AMOUNT\nlong value   €1.00\n");
    }
}
