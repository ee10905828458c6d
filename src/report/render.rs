//! The daily report as text, JSON, CSV (its exceptions) or one HTML page, and as a mail.

use askama::Template;

use super::DailyReport;
use super::balance::Balance;
use crate::domain::Currency;
use crate::domain::{MailDraft, MailKind, MailMessage};
use crate::format::{self, Format, money, printable};
use crate::recon::Exception;
use crate::recon::render::{self, total_cells};

/// Writes the report as it is rendered: the JSON of a large report (every
/// period's lines) is never one string in memory.
pub fn write_report(
    report: &DailyReport,
    format: Format,
    mut out: impl std::io::Write,
) -> std::io::Result<()> {
    match format {
        Format::Json => serde_json::to_writer_pretty(&mut out, report)?,
        Format::Csv => out.write_all(csv(&report.exceptions).as_bytes())?,
        Format::Text => out.write_all(text(report).as_bytes())?,
        Format::Html => out.write_all(html(report).as_bytes())?,
    }
    out.flush()
}

fn csv(exceptions: &[Exception]) -> String {
    format::csv(
        &[
            "kind",
            "property_id",
            "landlord_id",
            "period",
            "amount",
            "amount_display",
            "currency",
            "detail",
            "since",
        ],
        exceptions.iter().map(|e| {
            [
                e.kind.as_str().to_string(),
                e.property_id.as_deref().unwrap_or_default().to_string(),
                e.landlord_id.as_deref().unwrap_or_default().to_string(),
                e.period.clone().unwrap_or_default(),
                e.amount.map(|a| a.to_string()).unwrap_or_default(),
                e.amount_display(),
                e.currency.map(|c| c.code()).unwrap_or_default(),
                e.detail.clone(),
                e.since.clone().unwrap_or_default(),
            ]
        }),
    )
}

/// Exceptions shown in the text and HTML report (and so in the mail); CSV and
/// JSON list them all.
pub const LISTED: usize = 200;

/// "N more — see …" when the report lists only the first [`LISTED`].
fn more_line(report: &DailyReport) -> Option<String> {
    let more = report
        .exceptions
        .len()
        .checked_sub(LISTED)
        .filter(|n| *n > 0)?;
    Some(format!(
        "{more} more — see `casapay-recon report daily --date {0} --format csv` or GET /api/reports/daily?date={0}&format=csv",
        report.date
    ))
}

fn changes_line(report: &DailyReport) -> String {
    let c = &report.changes;
    match &c.compared_with {
        Some(previous) => format!(
            "Since the report of {previous}: {} new, {} resolved, {} unchanged",
            c.new_count,
            c.resolved.len(),
            c.unchanged
        ),
        None => format!("First report: {} exception(s), all new", c.new_count),
    }
}

fn period_rows(report: &DailyReport) -> Vec<Vec<String>> {
    report
        .period_rows
        .iter()
        .flat_map(|p| {
            p.totals.iter().map(move |t| {
                let mut row = vec![
                    p.period.clone(),
                    p.lines.to_string(),
                    p.exceptions.to_string(),
                ];
                row.extend(total_cells(t));
                row
            })
        })
        .collect()
}

fn balance_text(balance: &Balance) -> String {
    match balance {
        Balance::Checked { lines } => {
            let mut out = String::from("\nCasaPay balance\n");
            for line in lines {
                let shown = |amount: i64| match Currency::parse(&line.currency) {
                    Ok(currency) => money(amount, currency),
                    Err(_) => amount.to_string(),
                };
                out.push_str(&format!(
                    "  {}  available {}  pending {}  due to landlords {}{}\n",
                    line.currency,
                    shown(line.available),
                    shown(line.pending),
                    shown(line.due_to_landlords),
                    if line.short { "  SHORT" } else { "" }
                ));
            }
            out
        }
        Balance::Failed { error } => {
            format!("\nCasaPay balance: unknown, the call failed: {error}\n")
        }
    }
}

fn text(report: &DailyReport) -> String {
    let mut out = format!("Daily reconciliation report {}\n\n", report.date);
    out.push_str(&changes_line(report));
    out.push('\n');
    for resolved in &report.changes.resolved {
        out.push_str(&format!(
            "  resolved {:<19} {}  (since {})\n",
            resolved.kind,
            printable(&resolved.subject),
            resolved.since
        ));
    }
    out.push_str(&format!("\nArrears as of {}\n", report.arrears.as_of));
    out.push_str(&render::arrears_summary(&report.arrears.totals));
    out.push_str(&format!("\nEvents received: {}\n", report.events.received));
    for (kind, count) in &report.events.by_type {
        out.push_str(&format!("  {kind:<28} {count}\n"));
    }
    out.push_str(&format!("\nExceptions: {}\n", report.exceptions.len()));
    for e in report.exceptions.iter().take(LISTED) {
        let subject = printable(&e.subject(" "));
        out.push_str(&format!(
            "  {:<19} {:<28} {:>14}  since {}  {}\n",
            e.kind.as_str(),
            subject,
            e.amount_display(),
            e.since.as_deref().unwrap_or(&report.date),
            printable(&e.detail)
        ));
    }
    if let Some(more) = more_line(report) {
        out.push_str(&format!("  {more}\n"));
    }
    out.push_str("\nPeriods\n");
    out.push_str(&format::table(
        &[
            "PERIOD",
            "LINES",
            "EXCEPTIONS",
            "CURRENCY",
            "EXPECTED",
            "COLLECTED",
            "OUTSTANDING",
            "PAID OUT",
        ],
        &[1, 2, 4, 5, 6, 7],
        &period_rows(report),
    ));
    if let Some(balance) = &report.balance {
        out.push_str(&balance_text(balance));
    }
    out.push_str("\nTotals, all periods above\n");
    for t in &report.totals {
        out.push_str(&format!(
            "  {}  expected {}  collected {}  outstanding {}  paid out {}\n",
            t.currency.code(),
            money(t.expected, t.currency),
            money(t.collected, t.currency),
            money(t.outstanding, t.currency),
            money(t.paid_out, t.currency)
        ));
    }
    out
}

/// An exception as a table row shows it.
#[derive(Clone)]
pub struct ExceptionRow {
    pub kind: String,
    pub subject: String,
    pub amount: String,
    pub detail: String,
    pub since: String,
}

impl From<&Exception> for ExceptionRow {
    fn from(e: &Exception) -> Self {
        Self {
            kind: e.kind.as_str().to_string(),
            subject: e.subject(" · "),
            amount: e.amount_display(),
            detail: e.detail.clone(),
            since: e.since.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage<'a> {
    report: &'a DailyReport,
    changes: String,
    resolved: Vec<Vec<String>>,
    arrears_buckets: [&'static str; 5],
    arrears: Vec<Vec<String>>,
    exceptions: Vec<ExceptionRow>,
    more: Option<String>,
    periods: Vec<Vec<String>>,
    balance: Option<String>,
    totals: Vec<Vec<String>>,
}

fn html(report: &DailyReport) -> String {
    let page = ReportPage {
        report,
        changes: changes_line(report),
        resolved: report
            .changes
            .resolved
            .iter()
            .map(|r| {
                vec![
                    r.kind.clone(),
                    r.subject.clone(),
                    r.detail.clone(),
                    r.since.clone(),
                ]
            })
            .collect(),
        arrears_buckets: ["0-30", "31-60", "61-90", "90+", "in_collection"],
        arrears: render::arrears_total_rows(&report.arrears.totals),
        exceptions: report
            .exceptions
            .iter()
            .take(LISTED)
            .map(ExceptionRow::from)
            .collect(),
        more: more_line(report),
        periods: period_rows(report),
        balance: report.balance.as_ref().map(balance_text),
        totals: report.totals.iter().map(total_cells).collect(),
    };
    page.render().expect("the report template renders")
}

/// The report as a mail to one recipient: the text and HTML renderings of
/// its day, kept as they are when queued.
pub fn report_mail(report: &DailyReport, recipient: &str) -> MailDraft {
    let count = report.exceptions.len();
    MailDraft {
        kind: MailKind::DailyReport,
        recipient: recipient.to_string(),
        message: MailMessage::Rendered {
            subject: format!(
                "Daily reconciliation report {}: {count} exception{}",
                report.date,
                if count == 1 { "" } else { "s" }
            ),
            text: text(report),
            html: html(report),
        },
    }
}
