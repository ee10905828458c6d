//! `GET /dashboard?period=YYYY-MM[&status=…][&landlord_id=…][&page=N][&exceptions_page=N]`:
//! one server-rendered page for a person, small at any size: the summary first
//! (collected against expected per currency, lines per status), then the
//! exceptions and the lines, each a page at a time, filterable by status and
//! landlord. Plain links and a form: no JavaScript.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::auth::DashboardAdmin;
use crate::domain::{LineStatus, Period};
use crate::error::ApiError;
use crate::format::money;
use crate::recon::render::{HtmlLine, html_lines};
use crate::recon::{self, Reconciliation};
use crate::report::render::ExceptionRow;
use crate::startup::AppState;

/// Lines and exceptions shown a page at a time.
const LINES_PER_PAGE: usize = 100;
const EXCEPTIONS_PER_PAGE: usize = 50;

#[derive(Debug, Deserialize)]
pub struct DashboardQuery {
    period: Option<String>,
    status: Option<String>,
    landlord_id: Option<String>,
    page: Option<usize>,
    exceptions_page: Option<usize>,
}

/// A page of `items` (1-based) and the number of pages.
fn page<T: Clone>(items: &[T], page: usize, per_page: usize) -> (Vec<T>, usize) {
    let pages = items.len().div_ceil(per_page).max(1);
    let page = page.clamp(1, pages);
    let start = (page - 1) * per_page;
    (
        items[start.min(items.len())..(start + per_page).min(items.len())].to_vec(),
        pages,
    )
}

/// A link to another page of the dashboard, keeping the filters.
fn link(period: &str, status: &str, landlord: &str, page: usize, exceptions_page: usize) -> String {
    let mut link =
        format!("/dashboard?period={period}&page={page}&exceptions_page={exceptions_page}");
    if !status.is_empty() {
        link.push_str(&format!("&status={status}"));
    }
    if !landlord.is_empty() {
        link.push_str(&format!("&landlord_id={landlord}"));
    }
    link
}

/// One currency's pair of bars; widths in pixels out of `CHART_WIDTH`.
struct ChartRow {
    y: u32,
    currency: String,
    expected: String,
    collected: String,
    expected_width: u32,
    collected_width: u32,
}

const CHART_WIDTH: u32 = 420;

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    period: String,
    as_of: String,
    chart: Vec<ChartRow>,
    chart_height: u32,
    status_counts: Vec<(&'static str, usize)>,
    statuses: Vec<&'static str>,
    status: String,
    landlord: String,
    exceptions_total: usize,
    exceptions: Vec<ExceptionRow>,
    exceptions_pages: (usize, usize),
    lines_total: usize,
    lines: Vec<HtmlLine>,
    lines_pages: (usize, usize),
    previous_lines: Option<String>,
    next_lines: Option<String>,
    previous_exceptions: Option<String>,
    next_exceptions: Option<String>,
}

fn chart(r: &Reconciliation) -> Vec<ChartRow> {
    r.totals
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let scale = t.expected.max(t.collected).max(1) as f64;
            let width =
                |amount: i64| ((amount as f64 / scale) * f64::from(CHART_WIDTH)).round() as u32;
            ChartRow {
                y: i as u32 * 64,
                currency: t.currency.code().to_uppercase(),
                expected: money(t.expected, t.currency),
                collected: money(t.collected, t.currency),
                expected_width: width(t.expected),
                collected_width: width(t.collected),
            }
        })
        .collect()
}

pub async fn dashboard(
    _admin: DashboardAdmin,
    query: web::Query<DashboardQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let today = state.clock.now().to_zoned(state.timezone.clone()).date();
    let period = match &query.period {
        Some(text) if !text.is_empty() => text
            .parse::<Period>()
            .map_err(|e| ApiError::InvalidRequest(format!("period: {e}")))?,
        _ => Period::of_date(today),
    };
    let (pool, timezone) = (state.reads.clone(), state.timezone.clone());
    let reconciliation = web::block(move || -> Result<Reconciliation, ApiError> {
        Ok(pool.read(|store| recon::reconcile_stored(store, period, today, &timezone, None))?)
    })
    .await??;
    let query = query.into_inner();
    let status = query.status.unwrap_or_default();
    let landlord = query.landlord_id.unwrap_or_default();
    let filter = recon::LineFilter {
        status: LineStatus::parse(&status),
        landlord_id: Some(landlord.clone()).filter(|l| !l.is_empty()),
        property_id: None,
    };
    let status_counts: Vec<(&'static str, usize)> = LineStatus::ALL
        .iter()
        .map(|s| {
            (
                s.as_str(),
                reconciliation
                    .lines
                    .iter()
                    .filter(|l| l.status == *s)
                    .count(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    let exceptions: Vec<ExceptionRow> = recon::exceptions_of(&reconciliation)
        .iter()
        .filter(|e| landlord.is_empty() || e.landlord_id.as_deref() == Some(landlord.as_str()))
        .map(ExceptionRow::from)
        .collect();
    let lines: Vec<_> = reconciliation
        .lines
        .iter()
        .filter(|l| filter.keeps(l))
        .cloned()
        .collect();
    let (line_page, line_pages) = page(&lines, query.page.unwrap_or(1), LINES_PER_PAGE);
    let (exception_page, exception_pages) = page(
        &exceptions,
        query.exceptions_page.unwrap_or(1),
        EXCEPTIONS_PER_PAGE,
    );
    let at_line = query.page.unwrap_or(1).clamp(1, line_pages);
    let at_exception = query.exceptions_page.unwrap_or(1).clamp(1, exception_pages);
    let to = |lines_at: usize, exceptions_at: usize| {
        link(
            &reconciliation.period,
            &status,
            &landlord,
            lines_at,
            exceptions_at,
        )
    };
    let chart = chart(&reconciliation);
    let page = DashboardPage {
        period: reconciliation.period.clone(),
        as_of: reconciliation.as_of.clone(),
        chart_height: (chart.len() as u32 * 64).max(64),
        chart,
        status_counts,
        statuses: LineStatus::ALL.iter().map(|s| s.as_str()).collect(),
        status: status.clone(),
        landlord: landlord.clone(),
        exceptions_total: exceptions.len(),
        exceptions: exception_page,
        exceptions_pages: (at_exception, exception_pages),
        lines_total: lines.len(),
        lines: html_lines(&line_page),
        lines_pages: (at_line, line_pages),
        previous_lines: (at_line > 1).then(|| to(at_line - 1, at_exception)),
        next_lines: (at_line < line_pages).then(|| to(at_line + 1, at_exception)),
        previous_exceptions: (at_exception > 1).then(|| to(at_line, at_exception - 1)),
        next_exceptions: (at_exception < exception_pages).then(|| to(at_line, at_exception + 1)),
    };
    let html = page.render().expect("the dashboard template renders");
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}
