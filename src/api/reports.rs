//! `GET /api/reports/daily?date=YYYY-MM-DD&format=json|csv|html|text` (default: yesterday, JSON).

use actix_web::{HttpResponse, web};
use jiff::civil::Date;
use serde::Deserialize;

use super::Admin;
use super::stream::streamed;
use crate::error::ApiError;
use crate::format::Format;
use crate::report::{self, balance, render::write_report};
use crate::startup::AppState;

#[derive(Debug, Deserialize)]
pub struct ReportQuery {
    date: Option<String>,
    format: Option<Format>,
}

pub async fn get_daily_report(
    _admin: Admin,
    query: web::Query<ReportQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let date = match &query.date {
        Some(text) => text.parse::<Date>().map_err(|_| {
            ApiError::InvalidRequest(format!("date: `{text}` is not a date YYYY-MM-DD"))
        })?,
        None => report::yesterday(state.clock.now(), &state.timezone),
    };
    let format = query.format.unwrap_or(Format::Json);
    let fetched = match &state.sync {
        Some(syncer) => Some(balance::fetch(&syncer.client).await),
        None => None,
    };
    let (pool, timezone) = (state.reads.clone(), state.timezone.clone());
    let built = web::block(move || -> Result<_, ApiError> {
        let detail = report::Detail::for_format(format);
        let mut built =
            pool.read(|store| report::build_daily_report(store, date, &timezone, detail))?;
        if let Some(fetched) = fetched {
            balance::check(&mut built, fetched);
        }
        Ok(built)
    })
    .await??;
    streamed(format.content_type(), move |out| {
        write_report(&built, format, out)
    })
    .await
}
