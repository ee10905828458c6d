//! Applying an event: store it once with its state, let it change its object
//! only if it is of this deployment's mode, appliable and newer than what is
//! stored, and queue the mails the state it reached announces.
//!
//! Runs inside one writer transaction (see `store::Writer`), so the event, its
//! effect and its mails commit together or not at all. `replay` rebuilds the
//! same derived state from the stored log.

use serde::Serialize;

use crate::casapay::event as wire;
use crate::domain::{
    Content, Event, EventState, LandlordContact, MailDraft, MailMessage, Mode, Object,
    PaymentRequest, Payout, Period, PropertyKey, PropertyRent, RETRYING_EVENT_TYPE, StoredRequest,
    Version,
};
use crate::matching;
use crate::notify::{self, MailPolicy, Reached};
use crate::store::{SetBy, Storage, StoreError};

/// How this deployment applies events.
#[derive(Debug, Clone)]
pub struct IngestPolicy {
    pub mode: Mode,
    pub mail: MailPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// First delivery, stored in `state`; `mails` is how many mails it queued.
    Stored { state: EventState, mails: usize },
    /// This event id was already stored; nothing was repeated.
    Duplicate,
}

/// What an event does (pure), given the stored version of its object:
/// another mode's events and unappliable ones change nothing; an object
/// applies only if newer than what is stored (SPEC §3 Order).
pub fn decide(event: &Event, stored: Option<Version>, mode: Mode) -> EventState {
    if !mode.accepts(event) {
        return EventState::OtherMode;
    }
    match &event.content {
        Content::NoEffect => EventState::Recorded,
        Content::Unappliable(reason) => EventState::Quarantined(reason.clone()),
        Content::Object(object) if version_of(event, object).supersedes(stored) => {
            EventState::Applied
        }
        Content::Object(_) => EventState::Superseded,
    }
}

fn version_of(event: &Event, object: &Object) -> Version {
    Version {
        created: event.created.unwrap_or_default(),
        rank: object.status_rank(),
    }
}

fn stored_version(
    store: &dyn Storage,
    event: &Event,
    mode: Mode,
) -> Result<Option<Version>, StoreError> {
    match &event.content {
        Content::Object(object) if mode.accepts(event) => store.object_version(object),
        _ => Ok(None),
    }
}

pub fn apply_event(
    store: &dyn Storage,
    event: &Event,
    received_at_ms: i64,
    policy: &IngestPolicy,
) -> Result<Outcome, StoreError> {
    let state = decide(
        event,
        stored_version(store, event, policy.mode)?,
        policy.mode,
    );
    store_decided(store, event, state, received_at_ms, policy)
}

/// Stores an event whose state the caller already decided (sync compares the
/// stored object first), with its effect and mails when it applies.
pub fn store_decided(
    store: &dyn Storage,
    event: &Event,
    state: EventState,
    received_at_ms: i64,
    policy: &IngestPolicy,
) -> Result<Outcome, StoreError> {
    if !store.insert_event(event, &state, received_at_ms)? {
        return Ok(Outcome::Duplicate);
    }
    let mails = match (&state, &event.content) {
        (EventState::Applied, Content::Object(object)) => {
            reach(store, event, object, &policy.mail, received_at_ms)?
        }
        _ => 0,
    };
    Ok(Outcome::Stored { state, mails })
}

/// Stores the state an applied event carries and queues the mails it announces.
fn reach(
    store: &dyn Storage,
    event: &Event,
    object: &Object,
    policy: &MailPolicy,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let version = version_of(event, object);
    store.save_object(
        object,
        SetBy {
            event_id: &event.id,
            event_type: &event.kind,
            version,
        },
    )?;
    match object {
        Object::PaymentRequest(pr) => {
            let stored = StoredRequest {
                request: pr.clone(),
                version,
                set_by_retrying_event: event.kind == RETRYING_EVENT_TYPE,
            };
            queue_request_mails(store, &stored, policy, now_ms)
        }
        Object::Payout(po) => queue_payout_mails(store, po, policy, now_ms),
    }
}

fn queue_all(
    store: &dyn Storage,
    cause: &str,
    drafts: &[MailDraft],
    now_ms: i64,
) -> Result<usize, StoreError> {
    let mut queued = 0;
    for draft in drafts {
        queued += usize::from(store.queue_mail(cause, draft, now_ms)?);
    }
    Ok(queued)
}

/// The line a request matched (by the one matching rule), with its landlord.
fn matched_line(
    store: &dyn Storage,
    request: &PaymentRequest,
    timezone: &jiff::tz::TimeZone,
) -> Result<Option<(String, Period, Option<LandlordContact>)>, StoreError> {
    // Both candidates in one query; the rule picks, then its due dates are read.
    let (by_id, by_agreement) = store.property_candidates(
        request.property_id.as_deref(),
        request.payment_agreement.as_deref(),
    )?;
    let Some(property) = matching::property_of(request, |key| match key {
        PropertyKey::Id(_) => by_id.clone(),
        PropertyKey::Agreement(_) => by_agreement.clone(),
    }) else {
        return Ok(None);
    };
    let property = PropertyRent {
        due_dates: store.due_dates(&property.property_id, None)?,
        ..property
    };
    let found = matching::period_of(request, &property.due_dates, timezone)
        .map(|period| (property, period));
    // A mail names only a line reconciliation shows: the property must expect rent that month.
    let Some((property, period)) =
        found.filter(|(property, period)| property.due_dates.iter().any(|(p, _)| p == period))
    else {
        return Ok(None);
    };
    let contact = store.landlord_contact(&property.landlord_id)?;
    let shown = property
        .property_name
        .clone()
        .unwrap_or_else(|| property.property_id.to_string());
    Ok(Some((shown, period, contact)))
}

fn queue_request_mails(
    store: &dyn Storage,
    stored: &StoredRequest,
    policy: &MailPolicy,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let Some(intent) = notify::intent_for(Reached::Request(stored)) else {
        return Ok(0);
    };
    let line = matched_line(store, &stored.request, &policy.timezone)?;
    let (line, contact) = match line {
        Some((shown, period, contact)) => (Some((shown, period)), contact),
        None => (None, None),
    };
    let facts = notify::request_facts(stored, line);
    let drafts = notify::drafts(intent.kind, contact.as_ref(), policy, |greet| {
        MailMessage::Request {
            facts: facts.clone(),
            greet,
        }
    });
    queue_all(store, &intent.cause, &drafts, now_ms)
}

fn queue_payout_mails(
    store: &dyn Storage,
    payout: &Payout,
    policy: &MailPolicy,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let Some(intent) = notify::intent_for(Reached::Payout(payout)) else {
        return Ok(0);
    };
    // Payouts mail rarely (paid, failed): the bank account's landlord is read up front.
    let by_bank_account = match &payout.destination {
        Some(account) => store.landlord_by_bank_account(account)?,
        None => None,
    };
    let landlord = matching::landlord_of(payout, |_| by_bank_account);
    let contact = match &landlord {
        Some(id) => store.landlord_contact(id)?,
        None => None,
    };
    let facts = notify::payout_facts(payout);
    let drafts = notify::drafts(intent.kind, contact.as_ref(), policy, |greet| {
        MailMessage::Payout {
            facts: facts.clone(),
            greet,
        }
    });
    queue_all(store, &intent.cause, &drafts, now_ms)
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplaySummary {
    pub events: usize,
    pub applied: usize,
    pub superseded: usize,
    pub recorded: usize,
    pub quarantined: usize,
    pub other_mode: usize,
    pub mails_queued: usize,
}

impl ReplaySummary {
    fn count(&mut self, state: &EventState) {
        self.events += 1;
        *match state {
            EventState::Applied => &mut self.applied,
            EventState::Superseded => &mut self.superseded,
            EventState::Recorded => &mut self.recorded,
            EventState::Quarantined(_) => &mut self.quarantined,
            EventState::OtherMode => &mut self.other_mode,
        } += 1;
    }
}

/// Replay reads the log in pages of this many events.
const REPLAY_PAGE: usize = 1000;

/// Re-applies stored events with today's rules, in arrival order, inside the
/// caller's transaction. With `quarantined_only`, only quarantined events are
/// retried (as late arrivals: the order rule still decides); otherwise every
/// derived table is rebuilt from the log and comes out as incremental ingest
/// built it. Mail goes only for states no mail has announced yet.
pub fn replay(
    store: &dyn Storage,
    quarantined_only: bool,
    policy: &IngestPolicy,
    now_ms: i64,
) -> Result<ReplaySummary, StoreError> {
    replay_with(store, quarantined_only, policy, now_ms, wire::parse)
}

/// [`replay`] with the event rules given: what a newer version of the
/// service would read the stored bodies as (tests simulate an upgrade so).
pub fn replay_with(
    store: &dyn Storage,
    quarantined_only: bool,
    policy: &IngestPolicy,
    now_ms: i64,
    parse: impl Fn(&[u8]) -> Result<Event, wire::InvalidEvent>,
) -> Result<ReplaySummary, StoreError> {
    if !quarantined_only {
        store.clear_objects()?;
    }
    let mut summary = ReplaySummary::default();
    let mut after = 0;
    loop {
        let page = store.events_after(after, quarantined_only, REPLAY_PAGE)?;
        let Some(&(last, _)) = page.last() else {
            break;
        };
        after = last;
        for (_, body) in page {
            let event = match parse(body.as_bytes()) {
                Ok(event) => event,
                // Stored because it once parsed; a rule that now refuses it leaves it as it was.
                Err(_) => continue,
            };
            let state = decide(
                &event,
                stored_version(store, &event, policy.mode)?,
                policy.mode,
            );
            store.set_event_state(&event.id, &state)?;
            if let (EventState::Applied, Content::Object(object)) = (&state, &event.content) {
                summary.mails_queued += reach(store, &event, object, &policy.mail, now_ms)?;
            }
            summary.count(&state);
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(livemode: Option<bool>, status: &str, created: i64) -> Event {
        let livemode = livemode
            .map(|l| format!(r#""livemode":{l},"#))
            .unwrap_or_default();
        let body = format!(
            r#"{{"id":"evt_1","type":"payment_request.succeeded",{livemode}"created":{created},"data":{{"object":{{"id":"preq_1","amount":100,"currency":"eur","status":"{status}"}}}}}}"#
        );
        wire::parse(body.as_bytes()).unwrap()
    }

    fn version(created: i64, status: &str) -> Option<Version> {
        let Content::Object(object) = event(None, status, created).content else {
            unreachable!()
        };
        Some(version_of(&event(None, status, created), &object))
    }

    #[test]
    fn mode_quarantine_and_order_decide_the_state() {
        let live = event(Some(true), "succeeded", 10);
        let test = event(Some(false), "succeeded", 10);
        let unsaid = event(None, "succeeded", 10);
        assert_eq!(decide(&live, None, Mode::Live), EventState::Applied);
        assert_eq!(
            decide(&unsaid, None, Mode::Live),
            EventState::Applied,
            "no livemode is live"
        );
        assert_eq!(decide(&test, None, Mode::Live), EventState::OtherMode);
        assert_eq!(decide(&live, None, Mode::Test), EventState::OtherMode);
        assert_eq!(decide(&test, None, Mode::Test), EventState::Applied);
        assert_eq!(decide(&test, None, Mode::Any), EventState::Applied);
        assert_eq!(
            decide(&live, version(20, "pending"), Mode::Live),
            EventState::Superseded
        );
        assert_eq!(
            decide(&live, version(10, "processing"), Mode::Live),
            EventState::Applied,
            "a tie goes to the later status"
        );
        let unknown = event(Some(true), "refunded", 10);
        assert!(matches!(
            decide(&unknown, None, Mode::Live),
            EventState::Quarantined(reason) if reason.contains("data.object.status")
        ));
        let other = wire::parse(
            br#"{"id":"e","type":"customer.created","created":1,"data":{"object":{}}}"#,
        )
        .unwrap();
        assert_eq!(decide(&other, None, Mode::Live), EventState::Recorded);
    }
}
