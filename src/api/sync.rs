//! `POST /api/sync[?since=YYYY-MM-DD]`: one sync from CasaPay's API now;
//! answers its summary.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::{Admin, DateParam};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::sync::{self, SyncError};

#[derive(Debug, Deserialize)]
pub struct SyncQuery {
    /// Objects created since this date (in `CASAPAY_TIMEZONE`) [default: 35 days ago].
    since: Option<DateParam>,
}

pub async fn run_sync(
    _admin: Admin,
    query: web::Query<SyncQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let syncer = state.sync.clone().ok_or_else(|| {
        ApiError::InvalidRequest("sync needs CASAPAY_API_KEY (and CASAPAY_API_BASE)".into())
    })?;
    let since = match query.since {
        Some(DateParam(date)) => date
            .to_zoned(state.timezone.clone())
            .map_err(|e| ApiError::InvalidRequest(format!("since: {e}")))?
            .timestamp()
            .as_second(),
        None => state.clock.now().as_second() - sync::DEFAULT_DAYS_BACK * 86_400,
    };
    let summary = syncer
        .run(since, false, &indicatif::ProgressBar::hidden())
        .await
        .map_err(|error| match error {
            SyncError::Api(api) => ApiError::SyncFailed(api.to_string()),
            SyncError::Store(store) => store.into(),
        })?;
    if summary.mails_queued > 0 {
        state.mail_wake.notify_one();
    }
    Ok(HttpResponse::Ok().json(summary))
}
