//! The daily report as text, JSON, CSV (its exceptions) or one HTML page, and as a mail.

use askama::Template;

use super::DailyReport;
use super::balance::Balance;
use crate::domain::Currency;
use crate::domain::{MailDraft, MailKind};
use crate::format::{self, Format, money, printable};
use crate::recon::Exception;
use crate::recon::render::{self, HtmlLine, html_lines, total_cells};

pub fn render_report(report: &DailyReport, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(report).expect("a report serialises"),
        Format::Csv => csv(&report.exceptions),
        Format::Text => text(report),
        Format::Html => html(report),
    }
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
        ],
        exceptions.iter().map(|e| {
            [
                e.kind.as_str().to_string(),
                e.property_id.clone().unwrap_or_default(),
                e.landlord_id.clone().unwrap_or_default(),
                e.period.clone().unwrap_or_default(),
                e.amount.map(|a| a.to_string()).unwrap_or_default(),
                e.amount_display(),
                e.currency.map(|c| c.code()).unwrap_or_default(),
                e.detail.clone(),
            ]
        }),
    )
}

fn text(report: &DailyReport) -> String {
    let mut out = format!("Daily reconciliation report {}\n\n", report.date);
    out.push_str(&format!("Events received: {}\n", report.events.received));
    for (kind, count) in &report.events.by_type {
        out.push_str(&format!("  {kind:<28} {count}\n"));
    }
    out.push_str(&format!("\nExceptions: {}\n", report.exceptions.len()));
    for e in &report.exceptions {
        let subject = printable(&e.subject(" "));
        out.push_str(&format!(
            "  {:<19} {:<28} {:>14}  {}\n",
            e.kind.as_str(),
            subject,
            e.amount_display(),
            printable(&e.detail)
        ));
    }
    for period in &report.periods {
        out.push('\n');
        out.push_str(&render::render(period, Format::Text));
    }
    match &report.balance {
        Some(Balance::Checked { lines }) => {
            out.push_str("\nCasaPay balance\n");
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
        }
        Some(Balance::Failed { error }) => {
            out.push_str(&format!(
                "\nCasaPay balance: unknown, the call failed: {error}\n"
            ));
        }
        None => {}
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

struct PeriodView {
    period: String,
    lines: Vec<HtmlLine>,
}

/// An exception as a table row shows it.
pub struct ExceptionRow {
    pub kind: String,
    pub subject: String,
    pub amount: String,
    pub detail: String,
}

impl From<&Exception> for ExceptionRow {
    fn from(e: &Exception) -> Self {
        Self {
            kind: e.kind.as_str().to_string(),
            subject: e.subject(" · "),
            amount: e.amount_display(),
            detail: e.detail.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage<'a> {
    report: &'a DailyReport,
    exceptions: Vec<ExceptionRow>,
    periods: Vec<PeriodView>,
    totals: Vec<Vec<String>>,
}

fn html(report: &DailyReport) -> String {
    let page = ReportPage {
        report,
        exceptions: report.exceptions.iter().map(ExceptionRow::from).collect(),
        periods: report
            .periods
            .iter()
            .map(|p| PeriodView {
                period: p.period.clone(),
                lines: html_lines(&p.lines),
            })
            .collect(),
        totals: report.totals.iter().map(total_cells).collect(),
    };
    page.render().expect("the report template renders")
}

/// The report as a mail to one recipient: the text and HTML renderings.
pub fn report_mail(report: &DailyReport, recipient: &str) -> MailDraft {
    let count = report.exceptions.len();
    MailDraft {
        kind: MailKind::DailyReport,
        recipient: recipient.to_string(),
        subject: format!(
            "Daily reconciliation report {}: {count} exception{}",
            report.date,
            if count == 1 { "" } else { "s" }
        ),
        text: text(report),
        html: html(report),
    }
}
