//! CasaPay's side of the world: its PaymentRequests, Payouts, bank accounts
//! and balance, and the event each change produces, on a clock it is given.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landlord_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
}

/// A PaymentRequest as CasaPay's API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Request {
    pub id: String,
    pub object: &'static str,
    pub payment_agreement: String,
    pub amount: i64,
    pub currency: String,
    pub description: String,
    pub status: String,
    pub payment_method_used: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub attempts: i64,
    pub next_retry_at: Option<i64>,
    /// Bulk-created requests have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    pub created: i64,
    pub livemode: bool,
}

/// A Payout as CasaPay's API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Payout {
    pub id: String,
    pub object: &'static str,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub destination: String,
    pub arrival_date: i64,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
    /// The quickstart's payouts have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    pub created: i64,
    pub livemode: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BankAccount {
    pub id: String,
    pub object: &'static str,
    pub metadata: Value,
    pub created: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorldError {
    #[error("no such {0}: {1}")]
    NotFound(&'static str, String),
    #[error("{0}")]
    Invalid(String),
}

/// CasaPay's state. Every change records the event CasaPay sends for it.
#[derive(Debug, Default)]
pub struct World {
    pub requests: BTreeMap<String, Request>,
    pub payouts: BTreeMap<String, Payout>,
    pub bank_accounts: BTreeMap<String, BankAccount>,
    /// Objects in creation order, for newest-first lists.
    request_order: Vec<String>,
    payout_order: Vec<String>,
    /// Every event produced, in the order CasaPay produced them.
    pub events: Vec<Value>,
    next_id: u64,
    /// Part of every id, so that several runs can share one target.
    tag: String,
}

pub const FINAL_REQUEST_STATUSES: [&str; 3] = ["succeeded", "failed", "cancelled"];

impl World {
    /// A world whose ids all carry `tag`.
    pub fn tagged(tag: &str) -> Self {
        Self {
            tag: tag.to_string(),
            ..Self::default()
        }
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}{:06}", self.tag, self.next_id)
    }

    fn emit(&mut self, kind: &str, created: i64, livemode: bool, object: Value) {
        let id = self.id("evt_");
        self.events.push(json!({
            "id": id, "object": "event", "type": kind, "created": created,
            "livemode": livemode, "api_version": "2025-01-01", "data": {"object": object},
        }));
    }

    /// Creates a pending PaymentRequest at `now` (and its `payment_request.created`).
    pub fn create_request(&mut self, mut request: Request, now: i64) -> Request {
        if request.id.is_empty() {
            request.id = self.id("preq_");
        }
        request.status = "pending".into();
        request.created = now;
        self.request_order.push(request.id.clone());
        self.requests.insert(request.id.clone(), request.clone());
        self.emit(
            "payment_request.created",
            now,
            request.livemode,
            json!(request),
        );
        request
    }

    /// Moves a request to `status` at `now`, announced by `kind`.
    pub fn update_request(
        &mut self,
        id: &str,
        kind: &str,
        now: i64,
        change: impl FnOnce(&mut Request),
    ) -> Result<Request, WorldError> {
        let request = self
            .requests
            .get_mut(id)
            .ok_or_else(|| WorldError::NotFound("payment_request", id.to_string()))?;
        change(request);
        let request = request.clone();
        self.emit(kind, now, request.livemode, json!(request));
        Ok(request)
    }

    /// Cancels a request that is not final yet.
    pub fn cancel_request(&mut self, id: &str, now: i64) -> Result<Request, WorldError> {
        let status = &self
            .requests
            .get(id)
            .ok_or_else(|| WorldError::NotFound("payment_request", id.to_string()))?
            .status;
        if FINAL_REQUEST_STATUSES.contains(&status.as_str()) {
            return Err(WorldError::Invalid(format!(
                "payment request {id} is {status}; only a pending or processing request can be cancelled"
            )));
        }
        self.update_request(id, "payment_request.cancelled", now, |r| {
            r.status = "cancelled".into();
            r.next_retry_at = None;
        })
    }

    pub fn create_payout(&mut self, mut payout: Payout, now: i64) -> Payout {
        if payout.id.is_empty() {
            payout.id = self.id("po_");
        }
        payout.status = "pending".into();
        payout.created = now;
        self.payout_order.push(payout.id.clone());
        self.payouts.insert(payout.id.clone(), payout.clone());
        self.emit("payout.created", now, payout.livemode, json!(payout));
        payout
    }

    pub fn update_payout(
        &mut self,
        id: &str,
        kind: &str,
        now: i64,
        change: impl FnOnce(&mut Payout),
    ) -> Result<Payout, WorldError> {
        let payout = self
            .payouts
            .get_mut(id)
            .ok_or_else(|| WorldError::NotFound("payout", id.to_string()))?;
        change(payout);
        let payout = payout.clone();
        self.emit(kind, now, payout.livemode, json!(payout));
        Ok(payout)
    }

    pub fn create_bank_account(&mut self, metadata: Value, now: i64) -> BankAccount {
        let account = BankAccount {
            id: self.id("ba_"),
            object: "bank_account",
            metadata,
            created: now,
        };
        self.bank_accounts
            .insert(account.id.clone(), account.clone());
        account
    }

    /// Requests newest first, after `starting_after`, at most `limit`; and whether more remain.
    pub fn list_requests(
        &self,
        limit: usize,
        starting_after: Option<&str>,
    ) -> Result<(Vec<&Request>, bool), WorldError> {
        page(&self.request_order, &self.requests, limit, starting_after)
    }

    pub fn list_payouts(
        &self,
        limit: usize,
        starting_after: Option<&str>,
    ) -> Result<(Vec<&Payout>, bool), WorldError> {
        page(&self.payout_order, &self.payouts, limit, starting_after)
    }

    /// Available (paid in, not yet paid out) and pending per currency: what
    /// succeeded less what was paid or is on its way out.
    pub fn balance(&self) -> BTreeMap<String, (i64, i64)> {
        let mut balance: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for r in self.requests.values().filter(|r| r.livemode) {
            let entry = balance.entry(r.currency.clone()).or_default();
            match r.status.as_str() {
                "succeeded" => entry.0 += r.amount,
                "pending" | "processing" => entry.1 += r.amount,
                _ => {}
            }
        }
        for p in self.payouts.values().filter(|p| p.livemode) {
            if matches!(p.status.as_str(), "paid" | "pending" | "in_transit") {
                balance.entry(p.currency.clone()).or_default().0 -= p.amount;
            }
        }
        balance
    }
}

fn page<'a, T>(
    order: &[String],
    objects: &'a BTreeMap<String, T>,
    limit: usize,
    starting_after: Option<&str>,
) -> Result<(Vec<&'a T>, bool), WorldError> {
    let newest_first: Vec<&String> = order.iter().rev().collect();
    let start = match starting_after {
        Some(id) => {
            newest_first
                .iter()
                .position(|candidate| *candidate == id)
                .ok_or_else(|| WorldError::Invalid(format!("starting_after: no object `{id}`")))?
                + 1
        }
        None => 0,
    };
    let rest = &newest_first[start.min(newest_first.len())..];
    let items = rest
        .iter()
        .take(limit)
        .filter_map(|id| objects.get(*id))
        .collect();
    Ok((items, rest.len() > limit))
}
