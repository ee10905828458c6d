//! `GET /metrics`: Prometheus text format.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};

use crate::domain::{ExceptionKind, Period};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::{self, StoreError};
use crate::{metrics, recon};

pub async fn get_metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (pool, timezone) = (state.reads.clone(), state.timezone.clone());
    let today = state.clock.now().to_zoned(timezone.clone()).date();
    web::block(move || -> Result<(), ApiError> {
        let conn = pool.get().map_err(StoreError::from)?;
        let depth = store::outbox_depth(&conn)?;
        let quarantined = store::count_quarantined(&conn)?;
        let last = store::last_daily_report(&conn)?.and_then(|d| d.parse().ok());
        let current =
            recon::reconcile_stored(&conn, Period::of_date(today), today, &timezone, None)?;
        // Every kind, so a kind that went back to zero reads 0, not its last value.
        let mut counts: BTreeMap<ExceptionKind, usize> =
            ExceptionKind::ALL.iter().map(|k| (*k, 0)).collect();
        for exception in recon::exceptions_of(&current) {
            *counts.entry(exception.kind).or_default() += 1;
        }
        let counts: Vec<_> = counts.into_iter().map(|(k, n)| (k.as_str(), n)).collect();
        metrics::set_state(depth, quarantined, last, &counts);
        Ok(())
    })
    .await??;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics::handle().render()))
}
