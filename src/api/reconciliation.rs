//! `GET /api/reconciliation?period=YYYY-MM[&landlord_id=…][&property_id=…][&status=…]
//! [&format=json|csv|html|text][&as_of=YYYY-MM-DD][&limit=N&starting_after=property]`.
//!
//! Without `limit`: the whole reconciliation (its lines filtered). With it: a
//! page of lines, `{"object":"list","data":[line…],"has_more":bool}`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::events::Limit;
use super::stream::streamed;
use super::{Admin, DateParam};
use crate::domain::{LineStatus, Period};
use crate::error::ApiError;
use crate::format::Format;
use crate::recon::export::Export;
use crate::recon::{Line, LineFilter};
use crate::startup::AppState;
use crate::store::StoreError;

/// A line status to filter on; the error names the parameter.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
pub struct StatusFilter(LineStatus);

impl TryFrom<String> for StatusFilter {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        LineStatus::parse(&text).map(StatusFilter).ok_or_else(|| {
            let names: Vec<&str> = LineStatus::ALL.iter().map(|s| s.as_str()).collect();
            format!("status: `{text}` is not one of {}", names.join(", "))
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct ReconciliationQuery {
    period: Period,
    landlord_id: Option<String>,
    property_id: Option<String>,
    status: Option<StatusFilter>,
    format: Option<Format>,
    as_of: Option<DateParam>,
    limit: Option<Limit>,
    starting_after: Option<String>,
}

#[derive(Serialize)]
struct LinePage<'a> {
    object: &'static str,
    data: &'a [Line],
    has_more: bool,
}

pub async fn get_reconciliation(
    _admin: Admin,
    query: web::Query<ReconciliationQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let as_of = query.as_of.map_or_else(
        || state.clock.now().to_zoned(state.timezone.clone()).date(),
        |DateParam(date)| date,
    );
    let format = query.format.unwrap_or(Format::Json);
    let filter = LineFilter {
        status: query.status.map(|StatusFilter(s)| s),
        landlord_id: None,
        property_id: query.property_id,
    };
    let pool = state.reads.clone();
    let export = Export {
        period: query.period,
        as_of,
        timezone: state.timezone.clone(),
        landlord: query.landlord_id,
        filter,
    };
    let Some(Limit(limit)) = query.limit else {
        // Written as computed; a failure part way cuts the response off.
        return streamed(format.content_type(), move |out| {
            pool.read(|store| Ok::<_, StoreError>(export.write(store, format, out)))
                .unwrap_or_else(|error| Err(std::io::Error::other(error)))
        })
        .await;
    };
    let after = query.starting_after;
    let page = web::block(move || pool.read(|store| export.page(store, limit, after.as_deref())))
        .await??;
    let (data, has_more) =
        page.ok_or_else(|| ApiError::InvalidRequest("starting_after: no such line".into()))?;
    Ok(HttpResponse::Ok().json(LinePage {
        object: "list",
        data: &data,
        has_more,
    }))
}
