//! A CasaPay event, parsed from JSON into types that cannot hold invalid values.
//!
//! Pure: bytes in, `Event` or a message naming the field out.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::domain::{Currency, Money, PaymentRequestStatus, PayoutStatus, StatusRank};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidEvent(pub String);

/// What the event does to the object it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentRequestAction {
    Created,
    Processing,
    Retrying,
    Succeeded,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutAction {
    Created,
    Paid,
    Failed,
    Canceled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    pub id: String,
    pub payment_agreement: Option<String>,
    pub amount: Money,
    pub status: PaymentRequestStatus,
    pub failure_reason: Option<String>,
    pub attempts: Option<i64>,
    pub next_retry_at: Option<i64>,
    pub property_id: Option<String>,
    pub period: Option<String>,
    pub description: Option<String>,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payout {
    pub id: String,
    pub amount: Money,
    pub status: PayoutStatus,
    pub destination: Option<String>,
    pub arrival_date: Option<i64>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub landlord_id: Option<String>,
    pub period: Option<String>,
    pub description: Option<String>,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    PaymentRequest(PaymentRequestAction, PaymentRequest),
    Payout(PayoutAction, Payout),
}

impl Effect {
    pub fn object_id(&self) -> &str {
        match self {
            Effect::PaymentRequest(_, pr) => &pr.id,
            Effect::Payout(_, po) => &po.id,
        }
    }

    pub fn status_rank(&self) -> StatusRank {
        match self {
            Effect::PaymentRequest(_, pr) => pr.status.rank(),
            Effect::Payout(_, po) => po.status.rank(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub kind: String,
    pub created: i64,
    pub livemode: bool,
    pub object_id: Option<String>,
    /// `None` for types with no effect: stored, nothing else.
    pub effect: Option<Effect>,
    /// The body exactly as received.
    pub body: String,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    #[serde(default)]
    livemode: bool,
    #[serde(borrow)]
    data: Data<'a>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow)]
    object: &'a RawValue,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Metadata {
    property_id: Option<String>,
    landlord_id: Option<String>,
    period: Option<String>,
}

#[derive(Deserialize)]
struct PaymentRequestWire {
    id: String,
    object: Option<String>,
    payment_agreement: Option<String>,
    amount: i64,
    currency: String,
    status: PaymentRequestStatus,
    failure_reason: Option<String>,
    attempts: Option<i64>,
    next_retry_at: Option<i64>,
    metadata: Option<Metadata>,
    description: Option<String>,
    created: Option<i64>,
}

#[derive(Deserialize)]
struct PayoutWire {
    id: String,
    object: Option<String>,
    amount: i64,
    currency: String,
    status: PayoutStatus,
    destination: Option<String>,
    arrival_date: Option<i64>,
    failure_code: Option<String>,
    failure_message: Option<String>,
    metadata: Option<Metadata>,
    description: Option<String>,
    created: Option<i64>,
}

#[derive(Deserialize)]
struct AnyObject {
    id: Option<serde_json::Value>,
}

const MAX_ID_LEN: usize = 255;
/// Deeper JSON is refused: no CasaPay object needs it, and every later reader
/// of the stored body (API clients included) is spared a recursion bomb.
const MAX_DEPTH: usize = 64;

/// Nesting depth of a JSON text, counting brackets outside strings.
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0_usize, 0, false, false);
    for byte in text.bytes() {
        match (in_string, escaped, byte) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, false, _) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'{' | b'[') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, b'}' | b']') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn invalid(message: impl Into<String>) -> InvalidEvent {
    InvalidEvent(message.into())
}

fn check_id(field: &str, id: &str) -> Result<(), InvalidEvent> {
    if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{field} must be 1 to {MAX_ID_LEN} printable characters"
        )));
    }
    Ok(())
}

fn money(amount: i64, currency: &str) -> Result<Money, InvalidEvent> {
    let currency =
        Currency::parse(currency).map_err(|e| invalid(format!("data.object.currency: {e}")))?;
    Money::new(amount, currency).map_err(|e| invalid(format!("data.object.amount: {e}")))
}

fn check_object_kind(found: Option<&str>, expected: &str) -> Result<(), InvalidEvent> {
    match found {
        Some(kind) if kind != expected => Err(invalid(format!(
            "data.object.object is `{kind}`, expected `{expected}` for this event type"
        ))),
        _ => Ok(()),
    }
}

fn parse_payment_request(
    raw: &RawValue,
    event_created: i64,
) -> Result<PaymentRequest, InvalidEvent> {
    let wire: PaymentRequestWire =
        serde_json::from_str(raw.get()).map_err(|e| invalid(format!("data.object: {e}")))?;
    check_id("data.object.id", &wire.id)?;
    check_object_kind(wire.object.as_deref(), "payment_request")?;
    let metadata = wire.metadata.unwrap_or_default();
    Ok(PaymentRequest {
        amount: money(wire.amount, &wire.currency)?,
        id: wire.id,
        payment_agreement: wire.payment_agreement,
        status: wire.status,
        failure_reason: wire.failure_reason,
        attempts: wire.attempts,
        next_retry_at: wire.next_retry_at,
        property_id: metadata.property_id,
        period: metadata.period,
        description: wire.description,
        created: wire.created.unwrap_or(event_created),
    })
}

fn parse_payout(raw: &RawValue, event_created: i64) -> Result<Payout, InvalidEvent> {
    let wire: PayoutWire =
        serde_json::from_str(raw.get()).map_err(|e| invalid(format!("data.object: {e}")))?;
    check_id("data.object.id", &wire.id)?;
    check_object_kind(wire.object.as_deref(), "payout")?;
    let metadata = wire.metadata.unwrap_or_default();
    Ok(Payout {
        amount: money(wire.amount, &wire.currency)?,
        id: wire.id,
        status: wire.status,
        destination: wire.destination,
        arrival_date: wire.arrival_date,
        failure_code: wire.failure_code,
        failure_message: wire.failure_message,
        landlord_id: metadata.landlord_id,
        period: metadata.period,
        description: wire.description,
        created: wire.created.unwrap_or(event_created),
    })
}

fn effect_of(kind: &str, object: &RawValue, created: i64) -> Result<Option<Effect>, InvalidEvent> {
    use PaymentRequestAction as Pr;
    use PayoutAction as Po;
    let pr_action = match kind {
        "payment_request.created" => Some(Pr::Created),
        "payment_request.processing" => Some(Pr::Processing),
        "payment_request.retrying" => Some(Pr::Retrying),
        "payment_request.succeeded" => Some(Pr::Succeeded),
        "payment_request.failed" => Some(Pr::Failed),
        "payment_request.cancelled" => Some(Pr::Cancelled),
        _ => None,
    };
    if let Some(action) = pr_action {
        return Ok(Some(Effect::PaymentRequest(
            action,
            parse_payment_request(object, created)?,
        )));
    }
    let po_action = match kind {
        "payout.created" => Some(Po::Created),
        "payout.paid" => Some(Po::Paid),
        "payout.failed" => Some(Po::Failed),
        "payout.canceled" => Some(Po::Canceled),
        _ => None,
    };
    match po_action {
        Some(action) => Ok(Some(Effect::Payout(action, parse_payout(object, created)?))),
        None => Ok(None),
    }
}

/// Parses a verified body. Unknown fields are kept (in `body`), never an error.
pub fn parse(body: &[u8]) -> Result<Event, InvalidEvent> {
    let text = std::str::from_utf8(body).map_err(|e| invalid(format!("body is not UTF-8: {e}")))?;
    if nesting_depth(text) > MAX_DEPTH {
        return Err(invalid(format!(
            "JSON nested deeper than {MAX_DEPTH} levels"
        )));
    }
    let envelope: Envelope<'_> =
        serde_json::from_str(text).map_err(|e| invalid(format!("not a CasaPay event: {e}")))?;
    check_id("id", &envelope.id)?;
    check_id("type", &envelope.kind)?;
    if !envelope.data.object.get().starts_with('{') {
        return Err(invalid("data.object must be a JSON object"));
    }
    let effect = effect_of(&envelope.kind, envelope.data.object, envelope.created)?;
    let object_id = match &effect {
        Some(effect) => Some(effect.object_id().to_string()),
        None => serde_json::from_str::<AnyObject>(envelope.data.object.get())
            .ok()
            .and_then(|o| o.id)
            .and_then(|id| id.as_str().map(str::to_string)),
    };
    Ok(Event {
        id: envelope.id,
        kind: envelope.kind,
        created: envelope.created,
        livemode: envelope.livemode,
        object_id,
        effect,
        body: text.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn succeeded(extra: &str) -> String {
        format!(
            r#"{{"id":"evt_1","object":"event","type":"payment_request.succeeded","created":1700000000,
            "data":{{"object":{{"id":"preq_1","object":"payment_request","amount":120000,"currency":"eur",
            "status":"succeeded","payment_agreement":"pa_1","metadata":{{"property_id":"prop_1","period":"2025-03"}}{extra}}}}}}}"#
        )
    }

    #[test]
    fn parses_a_payment_request_event_and_keeps_the_raw_body() {
        let body = succeeded(r#","future_field":{"x":[1,2]}"#);
        let event = parse(body.as_bytes()).unwrap();
        assert_eq!(event.id, "evt_1");
        assert_eq!(event.body, body);
        let Some(Effect::PaymentRequest(PaymentRequestAction::Succeeded, pr)) = event.effect else {
            panic!("no payment request effect");
        };
        assert_eq!(pr.amount.minor(), 120000);
        assert_eq!(pr.property_id.as_deref(), Some("prop_1"));
        assert_eq!(
            pr.created, 1700000000,
            "object created falls back to the event's"
        );
    }

    #[test]
    fn nesting_counts_brackets_outside_strings_only() {
        assert_eq!(nesting_depth(r#"{"a":"[[[{{{\"]]]","b":[1,{"c":[]}]}"#), 4);
        assert_eq!(nesting_depth("[]"), 1);
        assert_eq!(nesting_depth("1"), 0);
    }

    #[test]
    fn unknown_types_have_no_effect_but_keep_their_object_id() {
        let event = parse(br#"{"id":"evt_2","type":"customer.updated","created":1,"data":{"object":{"id":"cus_1"}}}"#).unwrap();
        assert_eq!(event.effect, None);
        assert_eq!(event.object_id.as_deref(), Some("cus_1"));
    }

    #[test]
    fn invalid_events_name_the_problem() {
        let cases: &[(&[u8], &str)] = &[
            (b"not json", "not a CasaPay event"),
            (
                br#"{"type":"x","created":1,"data":{"object":{}}}"#,
                "missing field `id`",
            ),
            (
                br#"{"id":"evt","created":1,"data":{"object":{}}}"#,
                "missing field `type`",
            ),
            (
                br#"{"id":"evt","type":"x","created":1,"data":{}}"#,
                "missing field `object`",
            ),
            (
                br#"{"id":"evt","type":"x","created":1,"data":{"object":[]}}"#,
                "must be a JSON object",
            ),
            (
                br#"{"id":"","type":"x","created":1,"data":{"object":{}}}"#,
                "id must be",
            ),
            (b"\xff\xfe", "not UTF-8"),
            (br#"{"id":"e","type":"x","created":1,"data":{"object":{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}}"#, "nested deeper"),
        ];
        for (body, expected) in cases {
            let err = parse(body).unwrap_err();
            assert!(
                err.0.contains(expected),
                "{err} does not contain {expected}"
            );
        }
        let negative = succeeded("").replace("120000", "-5");
        assert!(
            parse(negative.as_bytes())
                .unwrap_err()
                .0
                .contains("data.object.amount")
        );
        let fractional = succeeded("").replace("120000", "1200.50");
        assert!(
            parse(fractional.as_bytes())
                .unwrap_err()
                .0
                .contains("data.object")
        );
        let currency = succeeded("").replace("\"eur\"", "\"EUR\"");
        assert!(
            parse(currency.as_bytes())
                .unwrap_err()
                .0
                .contains("data.object.currency")
        );
        let status = succeeded("").replace("\"succeeded\",", "\"refunded\",");
        assert!(
            parse(status.as_bytes())
                .unwrap_err()
                .0
                .contains("unknown variant")
        );
    }
}
