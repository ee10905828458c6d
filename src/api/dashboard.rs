//! `GET /dashboard?period=YYYY-MM`: one server-rendered page for a person:
//! collected against expected per currency, the exceptions, every line.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::auth::DashboardAdmin;
use crate::domain::Period;
use crate::error::ApiError;
use crate::format::money;
use crate::recon::render::{HtmlLine, html_lines};
use crate::recon::{self, Reconciliation};
use crate::report::render::ExceptionRow;
use crate::startup::AppState;
use crate::store::StoreError;

#[derive(Debug, Deserialize)]
pub struct DashboardQuery {
    period: Option<String>,
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
    exceptions: Vec<ExceptionRow>,
    lines: Vec<HtmlLine>,
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
        let conn = pool.get().map_err(StoreError::from)?;
        Ok(recon::reconcile_stored(
            &conn, period, today, &timezone, None,
        )?)
    })
    .await??;
    let chart = chart(&reconciliation);
    let page = DashboardPage {
        period: reconciliation.period.clone(),
        as_of: reconciliation.as_of.clone(),
        chart_height: (chart.len() as u32 * 64).max(64),
        chart,
        exceptions: recon::exceptions_of(&reconciliation)
            .iter()
            .map(ExceptionRow::from)
            .collect(),
        lines: html_lines(&reconciliation.lines),
    };
    let html = page.render().expect("the dashboard template renders");
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}
