//! A CasaPay event body, parsed into a domain [`Event`].
//!
//! Pure. Only a body that is not an event at all (not UTF-8, not a JSON
//! object, no string `id` and `type`) is refused: anything else signed is
//! stored (SPEC §3 Quarantine). An event of a type with an effect whose
//! object cannot be applied carries [`Content::Unappliable`] with a reason
//! naming the field.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::domain::{
    Content, Currency, Event, LandlordId, Money, Object, PaymentRequest, PaymentRequestStatus,
    Payout, PayoutStatus, PropertyId, check_id,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidEvent(pub String);

/// Types of the snapshots sync stores in the event log (SPEC §9).
pub const SYNCED_REQUEST: &str = "payment_request.synced";
pub const SYNCED_PAYOUT: &str = "payout.synced";

/// Deeper JSON is refused: no CasaPay object needs it, and every later reader
/// of the stored body (API clients included) is spared a recursion bomb.
const MAX_DEPTH: usize = 64;

/// Which object an event type carries, and the statuses its name announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    PaymentRequest,
    Payout,
}

impl ObjectKind {
    fn name(self) -> &'static str {
        match self {
            ObjectKind::PaymentRequest => "payment_request",
            ObjectKind::Payout => "payout",
        }
    }
}

/// The ten types with an effect (SPEC §3), with the object statuses each
/// names, and the snapshots sync stores (`<object>.synced`, any status).
pub fn effect_type(kind: &str) -> Option<(ObjectKind, &'static [&'static str])> {
    use ObjectKind::{PaymentRequest as Pr, Payout as Po};
    Some(match kind {
        SYNCED_REQUEST => (
            Pr,
            &["pending", "processing", "succeeded", "failed", "cancelled"],
        ),
        SYNCED_PAYOUT => (Po, &["pending", "in_transit", "paid", "failed", "canceled"]),
        "payment_request.created" => (Pr, &["pending"]),
        "payment_request.processing" => (Pr, &["processing"]),
        "payment_request.retrying" => (Pr, &["pending", "processing"]),
        "payment_request.succeeded" => (Pr, &["succeeded"]),
        "payment_request.failed" => (Pr, &["failed"]),
        "payment_request.cancelled" => (Pr, &["cancelled"]),
        "payout.created" => (Po, &["pending", "in_transit"]),
        "payout.paid" => (Po, &["paid"]),
        "payout.failed" => (Po, &["failed"]),
        "payout.canceled" => (Po, &["canceled"]),
        _ => return None,
    })
}

/// Whether the type's name disagrees with its object's status (applied by the
/// object all the same, SPEC §3 Type and object).
pub fn type_disagrees(event: &Event) -> bool {
    let (Some((_, statuses)), Content::Object(object)) = (effect_type(&event.kind), &event.content)
    else {
        return false;
    };
    let status = match object.as_ref() {
        Object::PaymentRequest(pr) => pr.status.as_str(),
        Object::Payout(po) => po.status.as_str(),
    };
    !statuses.contains(&status)
}

#[derive(Deserialize)]
struct Envelope<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, borrow)]
    created: Option<&'a RawValue>,
    #[serde(default, borrow)]
    livemode: Option<&'a RawValue>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

/// `data`, with its object left unparsed until its type is known.
#[derive(Deserialize)]
struct Data<'a> {
    #[serde(default, borrow)]
    object: Option<&'a RawValue>,
}

/// Only the id of an object of a type without an effect.
#[derive(Deserialize)]
struct AnyObject {
    id: Option<Value>,
}

fn invalid(message: impl Into<String>) -> InvalidEvent {
    InvalidEvent(message.into())
}

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
    check_id(&envelope.id).map_err(|e| invalid(format!("id {e}")))?;
    check_id(&envelope.kind).map_err(|e| invalid(format!("type {e}")))?;
    let created = envelope
        .created
        .and_then(|raw| serde_json::from_str::<i64>(raw.get()).ok());
    let livemode = envelope
        .livemode
        .and_then(|raw| serde_json::from_str::<Option<bool>>(raw.get()).ok())
        .flatten();
    let raw_object = envelope
        .data
        .and_then(|raw| serde_json::from_str::<Data<'_>>(raw.get()).ok())
        .and_then(|data| data.object);
    let (content, object_id) = match effect_type(&envelope.kind) {
        Some((kind, _)) => {
            let object = raw_object
                .and_then(|raw| serde_json::from_str::<Map<String, Value>>(raw.get()).ok());
            let content = content_of(kind, created, &envelope, object.as_ref());
            let id = object
                .as_ref()
                .and_then(|o| o.get("id"))
                .and_then(Value::as_str)
                .filter(|id| check_id(id).is_ok())
                .map(str::to_string);
            (content, id)
        }
        None => {
            // Only the id is kept of an object the service does not apply.
            let id = raw_object
                .and_then(|raw| serde_json::from_str::<AnyObject>(raw.get()).ok())
                .and_then(|o| o.id)
                .and_then(|id| id.as_str().map(str::to_string))
                .filter(|id| check_id(id).is_ok());
            (Content::NoEffect, id)
        }
    };
    Ok(Event {
        id: envelope.id,
        kind: envelope.kind,
        created,
        livemode,
        object_id,
        content,
        body: text.to_string(),
    })
}

fn content_of(
    kind: ObjectKind,
    created: Option<i64>,
    envelope: &Envelope<'_>,
    object: Option<&Map<String, Value>>,
) -> Content {
    let Some(created) = created else {
        return Content::Unappliable("created: missing or not an integer".into());
    };
    if envelope
        .livemode
        .is_some_and(|raw| serde_json::from_str::<Option<bool>>(raw.get()).is_err())
    {
        return Content::Unappliable("livemode: not true or false".into());
    }
    let Some(object) = object else {
        return Content::Unappliable("data.object: missing or not a JSON object".into());
    };
    let fields = Fields(object);
    let parsed = match kind {
        ObjectKind::PaymentRequest => payment_request(&fields, created).map(Object::PaymentRequest),
        ObjectKind::Payout => payout(&fields, created).map(Object::Payout),
    };
    match parsed {
        Ok(object) => Content::Object(Box::new(object)),
        Err(reason) => Content::Unappliable(reason),
    }
}

/// Reads the fields of `data.object`; every error names its field.
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn required<T>(
        &self,
        name: &str,
        read: impl Fn(&Value) -> Option<T>,
        expected: &str,
    ) -> Result<T, String> {
        match self.0.get(name) {
            None | Some(Value::Null) => Err(format!("data.object.{name}: missing")),
            Some(value) => read(value)
                .ok_or_else(|| format!("data.object.{name}: expected {expected}, found {value}")),
        }
    }

    fn optional<T>(
        &self,
        name: &str,
        read: impl Fn(&Value) -> Option<T>,
        expected: &str,
    ) -> Result<Option<T>, String> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.required(name, read, expected).map(Some),
        }
    }

    fn text(&self, name: &str) -> Result<Option<String>, String> {
        self.optional(name, |v| v.as_str().map(str::to_string), "a string")
    }

    fn integer(&self, name: &str) -> Result<Option<i64>, String> {
        self.optional(name, Value::as_i64, "an integer")
    }

    fn id(&self) -> Result<String, String> {
        let id = self.required("id", |v| v.as_str().map(str::to_string), "a string")?;
        check_id(&id).map_err(|e| format!("data.object.id {e}"))?;
        Ok(id)
    }

    fn kind(&self, expected: ObjectKind) -> Result<(), String> {
        match self.text("object")? {
            Some(found) if found != expected.name() => Err(format!(
                "data.object.object: `{found}`, expected `{}` for this event type",
                expected.name()
            )),
            _ => Ok(()),
        }
    }

    fn money(&self) -> Result<Money, String> {
        let code = self.required("currency", |v| v.as_str().map(str::to_string), "a string")?;
        let currency = Currency::parse(&code).map_err(|e| format!("data.object.currency: {e}"))?;
        let amount = self.required("amount", Value::as_i64, "an integer in minor units")?;
        Money::new(amount, currency).map_err(|e| format!("data.object.amount: {e}"))
    }

    fn status<T>(&self, parse: impl Fn(&str) -> Option<T>) -> Result<T, String> {
        let status = self.required("status", |v| v.as_str().map(str::to_string), "a string")?;
        parse(&status).ok_or_else(|| format!("data.object.status: unknown status `{status}`"))
    }

    /// `metadata.<name>` when it is a string; metadata is free-form, so
    /// anything else is ignored rather than refused.
    fn metadata(&self, name: &str) -> Option<String> {
        self.0
            .get("metadata")
            .and_then(|m| m.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}

fn payment_request(fields: &Fields<'_>, event_created: i64) -> Result<PaymentRequest, String> {
    fields.kind(ObjectKind::PaymentRequest)?;
    Ok(PaymentRequest {
        id: fields.id()?,
        amount: fields.money()?,
        status: fields.status(PaymentRequestStatus::parse)?,
        payment_agreement: fields.text("payment_agreement")?,
        failure_reason: fields.text("failure_reason")?,
        attempts: fields.integer("attempts")?,
        next_retry_at: fields.integer("next_retry_at")?,
        payment_method_used: fields.text("payment_method_used")?,
        property_id: fields
            .metadata("property_id")
            .and_then(|id| PropertyId::parse(id).ok()),
        period: fields.metadata("period"),
        description: fields.text("description")?,
        created: fields.integer("created")?.unwrap_or(event_created),
    })
}

fn payout(fields: &Fields<'_>, event_created: i64) -> Result<Payout, String> {
    fields.kind(ObjectKind::Payout)?;
    Ok(Payout {
        id: fields.id()?,
        amount: fields.money()?,
        status: fields.status(PayoutStatus::parse)?,
        destination: fields.text("destination")?,
        arrival_date: fields.integer("arrival_date")?,
        failure_reason: fields.text("failure_reason")?,
        failure_code: fields.text("failure_code")?,
        failure_message: fields.text("failure_message")?,
        landlord_id: fields
            .metadata("landlord_id")
            .and_then(|id| LandlordId::parse(id).ok()),
        period: fields.metadata("period"),
        description: fields.text("description")?,
        created: fields.integer("created")?.unwrap_or(event_created),
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

    fn reason(body: &str) -> String {
        match parse(body.as_bytes()).unwrap().content {
            Content::Unappliable(reason) => reason,
            other => panic!("not quarantined: {other:?}"),
        }
    }

    #[test]
    fn parses_a_payment_request_event_and_keeps_the_raw_body() {
        let body = succeeded(r#","future_field":{"x":[1,2]}"#);
        let event = parse(body.as_bytes()).unwrap();
        assert_eq!(event.id, "evt_1");
        assert_eq!(event.body, body);
        assert_eq!(event.created, Some(1700000000));
        let Content::Object(object) = event.content else {
            panic!("no object");
        };
        let Object::PaymentRequest(pr) = *object else {
            panic!("no payment request");
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
        assert_eq!(event.content, Content::NoEffect);
        assert_eq!(event.object_id.as_deref(), Some("cus_1"));
        let bare = parse(br#"{"id":"evt_3","type":"ping"}"#).unwrap();
        assert_eq!(bare.content, Content::NoEffect);
        assert_eq!(bare.created, None);
    }

    #[test]
    fn bodies_that_are_not_events_are_refused_with_the_reason() {
        let cases: &[(&[u8], &str)] = &[
            (b"not json", "not a CasaPay event"),
            (b"[1]", "not a CasaPay event"),
            (
                br#"{"type":"x","created":1,"data":{"object":{}}}"#,
                "missing field `id`",
            ),
            (
                br#"{"id":"evt","created":1,"data":{"object":{}}}"#,
                "missing field `type`",
            ),
            (br#"{"id":7,"type":"x"}"#, "not a CasaPay event"),
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
    }

    #[test]
    fn unappliable_objects_are_quarantined_naming_the_field() {
        let cases = [
            (succeeded("").replace("120000", "-5"), "data.object.amount"),
            (
                succeeded("").replace("120000", "1200.50"),
                "data.object.amount",
            ),
            (
                succeeded("").replace("120000", "\"120000\""),
                "data.object.amount",
            ),
            (
                succeeded("").replace("\"eur\"", "\"EUR\""),
                "data.object.currency",
            ),
            (
                succeeded("").replace("\"succeeded\",", "\"refunded\","),
                "data.object.status: unknown status `refunded`",
            ),
            (
                succeeded("").replace("\"created\":1700000000,", ""),
                "created",
            ),
            (
                succeeded("").replace("\"payment_request\",", "\"payout\","),
                "data.object.object",
            ),
            (succeeded(r#","attempts":"two""#), "data.object.attempts"),
            (
                r#"{"id":"e","type":"payout.paid","created":1,"data":{}}"#.to_string(),
                "data.object",
            ),
        ];
        for (body, field) in cases {
            let reason = reason(&body);
            assert!(reason.contains(field), "`{reason}` does not name {field}");
        }
    }

    #[test]
    fn a_type_that_disagrees_with_its_object_is_applied_by_the_object() {
        let body = succeeded("").replace("payment_request.succeeded", "payment_request.retrying");
        let event = parse(body.as_bytes()).unwrap();
        assert!(matches!(
            &event.content,
            Content::Object(object) if matches!(object.as_ref(), Object::PaymentRequest(pr) if pr.status == PaymentRequestStatus::Succeeded)
        ));
        assert!(type_disagrees(&event));
        assert!(!type_disagrees(&parse(succeeded("").as_bytes()).unwrap()));
    }

    #[test]
    fn payouts_without_metadata_keep_destination_and_failure_reason() {
        let body = r#"{"id":"evt_p","type":"payout.failed","created":5,"livemode":true,"data":{"object":{
            "id":"po_1","object":"payout","amount":250000,"currency":"eur","status":"failed",
            "destination":"ba_123","failure_reason":"account_closed"}}}"#;
        let event = parse(body.as_bytes()).unwrap();
        assert_eq!(event.livemode, Some(true));
        let Content::Object(object) = event.content else {
            panic!("no object");
        };
        let Object::Payout(po) = *object else {
            panic!("no payout");
        };
        assert_eq!(po.destination.as_deref(), Some("ba_123"));
        assert_eq!(po.landlord_id, None);
        assert_eq!(po.failure(), Some("account_closed"));
        assert_eq!(po.created, 5);
    }
}
