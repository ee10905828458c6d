//! Applying a verified event: store it once, and let it change the stored
//! PaymentRequest or Payout only if it is newer than what is stored.
//!
//! Runs inside one writer transaction (see `store::Writer`), so the event, its
//! effect and the mails it causes commit together or not at all.

use rusqlite::Connection;

use crate::domain::StatusRank;
use crate::notify::{self, MailKind, MailPolicy};
use crate::store::{self, StoreError, StoredVersion};
use crate::webhook::event::{Effect, Event};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// First delivery. `applied` is false for a late, older event or a type
    /// with no effect; `mails` is how many mails it queued.
    Stored { applied: bool, mails: usize },
    /// This event id was already stored; nothing was repeated.
    Duplicate,
}

/// SPEC §3 "Order": the event with the greatest `created` wins; on a tie, the
/// later status. An equal version changes nothing (it is the same state again).
pub fn supersedes(stored: Option<StoredVersion>, event_created: i64, rank: StatusRank) -> bool {
    stored.is_none_or(|stored| (event_created, rank) > (stored.event_created, stored.rank))
}

pub fn apply_event(
    conn: &Connection,
    event: &Event,
    received_at_ms: i64,
    policy: &MailPolicy,
) -> Result<Outcome, StoreError> {
    let applied = match &event.effect {
        None => false,
        Some(effect) => {
            let stored = match effect {
                Effect::PaymentRequest(_, pr) => store::payment_request_version(conn, &pr.id)?,
                Effect::Payout(_, po) => store::payout_version(conn, &po.id)?,
            };
            supersedes(stored, event.created, effect.status_rank())
        }
    };
    if !store::insert_event(conn, event, applied, received_at_ms)? {
        return Ok(Outcome::Duplicate);
    }
    let (true, Some(effect)) = (applied, &event.effect) else {
        return Ok(Outcome::Stored { applied, mails: 0 });
    };
    match effect {
        Effect::PaymentRequest(_, pr) => {
            store::save_payment_request(conn, pr, &event.id, event.created)?
        }
        Effect::Payout(_, po) => store::save_payout(conn, po, &event.id, event.created)?,
    }
    let mut mails = 0;
    if MailKind::of(effect).is_some() {
        let contact = match effect {
            Effect::PaymentRequest(_, pr) => store::landlord_of_property(
                conn,
                pr.property_id.as_deref(),
                pr.payment_agreement.as_deref(),
            )?,
            Effect::Payout(_, po) => match &po.landlord_id {
                Some(id) => store::landlord_by_id(conn, id)?,
                None => None,
            },
        };
        for draft in notify::drafts_for_event(effect, contact.as_ref(), policy) {
            mails += usize::from(store::queue_mail(conn, &event.id, &draft, received_at_ms)?);
        }
    }
    Ok(Outcome::Stored { applied, mails })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(event_created: i64, rank: u8) -> Option<StoredVersion> {
        Some(StoredVersion {
            event_created,
            rank: StatusRank(rank),
        })
    }

    #[test]
    fn newer_events_win_and_ties_go_to_the_later_status() {
        assert!(supersedes(None, 5, StatusRank(0)));
        assert!(
            supersedes(version(5, 3), 6, StatusRank(0)),
            "newer created wins even with a lower status"
        );
        assert!(
            !supersedes(version(6, 0), 5, StatusRank(3)),
            "older created never wins"
        );
        assert!(
            supersedes(version(5, 1), 5, StatusRank(3)),
            "tie: later status wins"
        );
        assert!(
            !supersedes(version(5, 3), 5, StatusRank(1)),
            "tie: earlier status loses"
        );
        assert!(
            !supersedes(version(5, 3), 5, StatusRank(3)),
            "same version changes nothing"
        );
    }
}
