//! The daily report as text, JSON, CSV (its exceptions) or one HTML page, and as a mail.

use askama::Template;

use super::{DailyReport, Exception};
use crate::notify::{MailDraft, MailKind};
use crate::recon::render::{self, Format, HtmlLine, html_lines, money, neutralise};

pub fn render_report(report: &DailyReport, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(report).expect("a report serialises"),
        Format::Csv => csv(&report.exceptions),
        Format::Text => text(report),
        Format::Html => html(report),
    }
}

fn amount(exception: &Exception) -> String {
    match (exception.amount, exception.currency) {
        (Some(amount), Some(currency)) => money(amount, currency),
        _ => String::new(),
    }
}

fn csv(exceptions: &[Exception]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record([
            "kind",
            "property_id",
            "landlord_id",
            "period",
            "amount",
            "amount_display",
            "currency",
            "detail",
        ])
        .expect("writing to memory");
    for e in exceptions {
        let row = [
            e.kind.clone(),
            e.property_id.clone().unwrap_or_default(),
            e.landlord_id.clone().unwrap_or_default(),
            e.period.clone().unwrap_or_default(),
            e.amount.map(|a| a.to_string()).unwrap_or_default(),
            amount(e),
            e.currency.map(|c| c.code()).unwrap_or_default(),
            e.detail.clone(),
        ];
        writer
            .write_record(row.iter().map(|c| neutralise(c)))
            .expect("writing to memory");
    }
    String::from_utf8(writer.into_inner().expect("flushing to memory"))
        .expect("CSV of UTF-8 strings")
}

fn text(report: &DailyReport) -> String {
    let mut out = format!("Daily reconciliation report {}\n\n", report.date);
    out.push_str(&format!("Events received: {}\n", report.events.received));
    for (kind, count) in &report.events.by_type {
        out.push_str(&format!("  {kind:<28} {count}\n"));
    }
    out.push_str(&format!("\nExceptions: {}\n", report.exceptions.len()));
    for e in &report.exceptions {
        let subject = [
            e.property_id.as_deref(),
            e.landlord_id.as_deref(),
            e.period.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        out.push_str(&format!(
            "  {:<19} {:<28} {:>14}  {}\n",
            e.kind,
            subject,
            amount(e),
            e.detail
        ));
    }
    for period in &report.periods {
        out.push('\n');
        out.push_str(&render::render(period, Format::Text));
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

struct ExceptionView {
    kind: String,
    subject: String,
    amount: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage<'a> {
    report: &'a DailyReport,
    exceptions: Vec<ExceptionView>,
    periods: Vec<PeriodView>,
    totals: Vec<Vec<String>>,
}

fn html(report: &DailyReport) -> String {
    let page = ReportPage {
        report,
        exceptions: report
            .exceptions
            .iter()
            .map(|e| ExceptionView {
                kind: e.kind.clone(),
                subject: [
                    e.property_id.as_deref(),
                    e.landlord_id.as_deref(),
                    e.period.as_deref(),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · "),
                amount: amount(e),
                detail: e.detail.clone(),
            })
            .collect(),
        periods: report
            .periods
            .iter()
            .map(|p| PeriodView {
                period: p.period.clone(),
                lines: html_lines(&p.lines),
            })
            .collect(),
        totals: report
            .totals
            .iter()
            .map(|t| {
                vec![
                    t.currency.code(),
                    money(t.expected, t.currency),
                    money(t.collected, t.currency),
                    money(t.outstanding, t.currency),
                    money(t.paid_out, t.currency),
                ]
            })
            .collect(),
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
