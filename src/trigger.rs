//! `casapay-recon trigger TYPE`: a correctly signed sample event, as a developer
//! sends one to try an endpoint.

use serde_json::{Value, json};

use crate::casapay::signature;
use crate::domain::{Mode, Money, Period, Secret};

/// What the sample event is about.
#[derive(Debug, Clone)]
pub struct Sample {
    pub event_type: String,
    pub property_id: String,
    pub landlord_id: String,
    pub period: Period,
    pub amount: Money,
    pub object_id: Option<String>,
    pub payment_agreement: Option<String>,
    /// Live events for a live deployment; test events otherwise (SPEC §3 Mode).
    pub livemode: bool,
}

impl Sample {
    /// The `livemode` a deployment in `mode` reconciles.
    pub fn livemode_for(mode: Mode) -> bool {
        mode == Mode::Live
    }
}

fn random_id(prefix: &str) -> String {
    let mut bytes = [0_u8; 12];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    format!("{prefix}{}", hex::encode(bytes))
}

impl Sample {
    /// The event body, created at `now` (unix seconds).
    pub fn to_json(&self, now: i64) -> String {
        let amount = self.amount.minor();
        let currency = self.amount.currency().code();
        let object = if let Some(action) = self.event_type.strip_prefix("payment_request.") {
            let status = match action {
                "created" => "pending",
                "processing" | "retrying" => "processing",
                "succeeded" => "succeeded",
                "failed" => "failed",
                "cancelled" => "cancelled",
                _ => "pending",
            };
            let retrying = action == "retrying";
            let failed = retrying || action == "failed";
            let mut object = json!({
                "id": self.object_id.clone().unwrap_or_else(|| random_id("preq_")),
                "object": "payment_request",
                "payment_agreement": self.payment_agreement.clone().unwrap_or_else(|| format!("pa_{}", self.property_id)),
                "amount": amount,
                "currency": currency,
                "description": format!("Rent {} {}", self.property_id, self.period),
                "status": status,
                "payment_method_used": "direct_debit",
                "attempts": match action { "created" => 0, "failed" => 3, _ => 1 },
                "next_retry_at": Value::Null,
                "metadata": {"property_id": self.property_id, "period": self.period.to_string()},
                "created": now,
                "livemode": self.livemode,
            });
            if failed {
                object["failure_reason"] = json!("insufficient_funds");
            }
            if retrying {
                // CasaPay's schedule: attempt 2 comes 24 h after the first failure.
                object["next_retry_at"] = json!(now + 86_400);
            }
            object
        } else if let Some(action) = self.event_type.strip_prefix("payout.") {
            let status = match action {
                "paid" => "paid",
                "failed" => "failed",
                "canceled" => "canceled",
                _ => "pending",
            };
            let failed = status == "failed";
            json!({
                "id": self.object_id.clone().unwrap_or_else(|| random_id("po_")),
                "object": "payout",
                "amount": amount,
                "currency": currency,
                "status": status,
                "destination": "ba_sample",
                "arrival_date": now + 86_400,
                "description": format!("Payout {} {}", self.landlord_id, self.period),
                "failure_code": if failed { json!("account_closed") } else { Value::Null },
                "failure_message": if failed { json!("The bank account has been closed.") } else { Value::Null },
                "metadata": {"landlord_id": self.landlord_id, "period": self.period.to_string()},
                "created": now,
                "livemode": self.livemode,
            })
        } else {
            json!({"id": self.object_id.clone().unwrap_or_else(|| random_id("obj_"))})
        };
        json!({
            "id": random_id("evt_"),
            "object": "event",
            "type": self.event_type,
            "created": now,
            "livemode": self.livemode,
            "api_version": "2025-01-01",
            "data": {"object": object},
        })
        .to_string()
    }
}

/// Signs `body` with `secret` at `now` and posts it. Returns status and body.
pub async fn send(
    client: &reqwest::Client,
    url: &str,
    secret: &Secret,
    body: String,
    now: i64,
) -> Result<(u16, String), reqwest::Error> {
    let header = signature::sign(secret, now, body.as_bytes());
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header(signature::HEADER, header)
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::casapay::event;
    use crate::domain::Currency;
    use crate::domain::{Content, Object};

    fn sample(event_type: &str) -> Sample {
        Sample {
            event_type: event_type.into(),
            property_id: "prop_1".into(),
            landlord_id: "ll_1".into(),
            period: "2025-03".parse().unwrap(),
            amount: Money::new(120000, Currency::parse("eur").unwrap()).unwrap(),
            object_id: None,
            payment_agreement: None,
            livemode: true,
        }
    }

    #[test]
    fn every_sample_is_a_valid_event_of_its_type() {
        for kind in [
            "payment_request.created",
            "payment_request.processing",
            "payment_request.retrying",
            "payment_request.succeeded",
            "payment_request.failed",
            "payment_request.cancelled",
            "payout.created",
            "payout.paid",
            "payout.failed",
            "payout.canceled",
        ] {
            let parsed = event::parse(sample(kind).to_json(1_700_000_000).as_bytes()).unwrap();
            assert_eq!(parsed.kind, kind);
            assert!(
                matches!(parsed.content, Content::Object(_)),
                "{kind} has no effect"
            );
            assert!(
                !event::type_disagrees(&parsed),
                "{kind} says what it carries"
            );
            assert_eq!(parsed.livemode, Some(true));
        }
        let retrying =
            event::parse(sample("payment_request.retrying").to_json(10).as_bytes()).unwrap();
        let Content::Object(object) = retrying.content else {
            panic!()
        };
        let Object::PaymentRequest(pr) = *object else {
            panic!()
        };
        assert_eq!(pr.next_retry_at, Some(10 + 86_400));
        assert_eq!(pr.attempts, Some(1));
        assert_eq!(pr.failure_reason.as_deref(), Some("insufficient_funds"));
        let succeeded =
            event::parse(sample("payment_request.succeeded").to_json(10).as_bytes()).unwrap();
        assert!(
            !succeeded.body.contains("failure_reason"),
            "failure_reason only on failure"
        );
        let other = event::parse(sample("customer.updated").to_json(10).as_bytes()).unwrap();
        assert_eq!(other.content, Content::NoEffect);
    }
}
