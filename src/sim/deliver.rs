//! Webhook delivery as CasaPay does it: signed, at least once, retried with
//! backoff on anything but a 2xx, in no promised order — and, on request,
//! duplicated, reordered, delayed, cut off by an outage, or dropped.

use std::time::Duration;

use futures_util::StreamExt;
use indicatif::ProgressBar;
use serde_json::Value;

use super::month::Chaos;
use super::rng::Rng;
use crate::casapay::signature;
use crate::domain::Secret;

/// Attempts per delivery before CasaPay gives up on it.
const MAX_ATTEMPTS: u32 = 12;
/// Deliveries in flight at once.
const IN_FLIGHT: usize = 16;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Events to deliver (after drops).
    pub events: usize,
    /// Deliveries, copies included.
    pub deliveries: usize,
    /// HTTP attempts, retries included.
    pub attempts: usize,
    pub retried: usize,
    /// Deliveries CasaPay gave up on.
    pub given_up: usize,
    /// Ids of events never sent (`drop`).
    pub dropped: Vec<String>,
}

/// One delivery: a body, and whether the target is unreachable on its first try.
struct Send {
    body: String,
    outage: bool,
}

/// Orders and copies `events` as `chaos` says.
fn plan(events: Vec<Value>, chaos: Chaos, rng: &mut Rng, stats: &mut DeliveryStats) -> Vec<Send> {
    let mut sends = Vec::new();
    for event in events {
        if chaos.drop && rng.chance(10) {
            stats
                .dropped
                .push(event["id"].as_str().unwrap_or_default().to_string());
            continue;
        }
        stats.events += 1;
        let copies = if chaos.duplicates {
            1 + rng.below(4)
        } else {
            1
        };
        for _ in 0..copies {
            sends.push(Send {
                body: event.to_string(),
                outage: false,
            });
        }
    }
    if chaos.reorder {
        rng.shuffle(&mut sends);
    }
    if chaos.delay {
        // Some deliveries arrive long after the rest.
        let (mut late, mut on_time): (Vec<Send>, Vec<Send>) =
            sends.into_iter().partition(|_| rng.chance(10));
        on_time.append(&mut late);
        sends = on_time;
    }
    if chaos.outage && !sends.is_empty() {
        let from = rng.below(sends.len() as u64) as usize;
        let length = (sends.len() / 6).max(1);
        for send in sends.iter_mut().skip(from).take(length) {
            send.outage = true;
        }
    }
    sends
}

/// Delivers every event of `events` to `url`, signed with `secret`.
pub async fn deliver(
    client: &reqwest::Client,
    url: &str,
    secret: &Secret,
    events: Vec<Value>,
    chaos: Chaos,
    seed: u64,
    progress: &ProgressBar,
) -> DeliveryStats {
    let mut rng = Rng::new(seed ^ 0xDE11_7E55);
    let mut stats = DeliveryStats::default();
    let sends = plan(events, chaos, &mut rng, &mut stats);
    stats.deliveries = sends.len();
    progress.set_length(sends.len() as u64);
    let results: Vec<(u32, bool)> = futures_util::stream::iter(sends)
        .map(|send| async move {
            let outcome = deliver_one(client, url, secret, &send).await;
            progress.inc(1);
            outcome
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    for (attempts, delivered) in results {
        stats.attempts += attempts as usize;
        stats.retried += usize::from(attempts > 1);
        stats.given_up += usize::from(!delivered);
    }
    stats
}

/// Returns the attempts made and whether a 2xx came back.
async fn deliver_one(
    client: &reqwest::Client,
    url: &str,
    secret: &Secret,
    send: &Send,
) -> (u32, bool) {
    let mut delay = Duration::from_millis(20);
    for attempt in 1..=MAX_ATTEMPTS {
        // During an outage the target cannot be reached: the first try fails.
        let reached = !(send.outage && attempt == 1);
        if reached {
            let now = jiff::Timestamp::now().as_second();
            let header = signature::sign(secret, now, send.body.as_bytes());
            let answer = client
                .post(url)
                .header("content-type", "application/json")
                .header(signature::HEADER, header)
                .body(send.body.clone())
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return (attempt, true);
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
    (MAX_ATTEMPTS, false)
}

/// Delivers, for ever, the events the world produces as its API changes it:
/// each at least once, in the order produced.
pub async fn forward_changes(
    world: std::sync::Arc<std::sync::Mutex<super::world::World>>,
    changed: std::sync::Arc<tokio::sync::Notify>,
    url: String,
    secret: Secret,
) {
    let client = crate::casapay::client::http_client();
    let mut sent = 0;
    loop {
        changed.notified().await;
        let fresh: Vec<Value> = {
            let world = world.lock().expect("world lock");
            world.events[sent..].to_vec()
        };
        sent += fresh.len();
        for event in fresh {
            let send = Send {
                body: event.to_string(),
                outage: false,
            };
            if !deliver_one(&client, &url, &secret, &send).await.1 {
                tracing::warn!(event = %event["id"], "webhook not delivered; CasaPay gives up on it");
            }
        }
    }
}
