//! Property tests of ingest on a real SQLite file: for random event histories
//! of a few objects, delivered in random order with duplicates,
//! (a) the stored state is the one of delivering them sorted by version,
//! (b) a full replay rebuilds byte-identical derived tables,
//! (c) each landlord message is queued at most once per object and state,
//!     and only for states the object really reached.

use std::time::Duration;

use casapay_recon::casapay::event;
use casapay_recon::domain::Mode;
use casapay_recon::ingest::{self, IngestPolicy};
use casapay_recon::notify::MailPolicy;
use casapay_recon::store::{self, Storage};
use proptest::prelude::*;
use rusqlite::Connection;

const ROLL: &str = "property_id,landlord_id,period,amount,currency,landlord_email
prop_0,ll_0,2025-03,1000,eur,a@example.com
prop_1,ll_1,2025-03,1000,eur,b@example.com
";

const STATUSES: [&str; 5] = ["pending", "processing", "succeeded", "failed", "cancelled"];

/// One event: object, status, and its `created` (unique per object).
#[derive(Debug, Clone)]
struct Step {
    object: usize,
    status: &'static str,
    created: i64,
    retrying: bool,
}

fn body(step: &Step, n: usize) -> String {
    let kind = if step.retrying {
        "payment_request.retrying"
    } else {
        match step.status {
            "pending" => "payment_request.created",
            other => match other {
                "processing" => "payment_request.processing",
                "succeeded" => "payment_request.succeeded",
                "failed" => "payment_request.failed",
                _ => "payment_request.cancelled",
            },
        }
    };
    format!(
        r#"{{"id":"evt_{n}","type":"{kind}","created":{},"livemode":true,"data":{{"object":{{"id":"preq_{}","amount":1000,"currency":"eur","status":"{}","attempts":{},"metadata":{{"property_id":"prop_{}","period":"2025-03"}}}}}}}}"#,
        step.created,
        step.object,
        step.status,
        step.created,
        step.object % 2,
    )
}

fn history() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((0_usize..3, 0_usize..5, any::<bool>()), 1..12).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (object, status, retrying))| {
                let status = STATUSES[status];
                Step {
                    object,
                    status,
                    // Distinct per object: no two events of an object share a version.
                    created: 1_741_000_000 + i as i64 * 60,
                    retrying: retrying && matches!(status, "pending" | "processing"),
                }
            })
            .collect()
    })
}

fn database(dir: &tempfile::TempDir, name: &str) -> Connection {
    let mut conn = store::open_writer(&dir.path().join(name), Duration::from_secs(5)).unwrap();
    store::migrate(&mut conn).unwrap();
    let roll = casapay_recon::rent_roll::parse(ROLL.as_bytes()).unwrap();
    conn.import_rent_roll(&roll).unwrap().unwrap();
    conn
}

fn policy() -> IngestPolicy {
    IngestPolicy {
        mode: Mode::Live,
        mail: MailPolicy {
            report_to: vec!["ops@example.com".into()],
            timezone: jiff::tz::TimeZone::UTC,
        },
    }
}

fn deliver(conn: &Connection, bodies: &[String]) {
    for body in bodies {
        let event = event::parse(body.as_bytes()).unwrap();
        ingest::apply_event(conn, &event, 0, &policy()).unwrap();
    }
}

fn rows(conn: &Connection, sql: &str) -> Vec<String> {
    let mut statement = conn.prepare(sql).unwrap();
    let width = statement.column_count();
    let mut query = statement.query([]).unwrap();
    let mut rows = Vec::new();
    while let Some(row) = query.next().unwrap() {
        let cells: Vec<String> = (0..width)
            .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
            .collect();
        rows.push(cells.join("|"));
    }
    rows
}

fn objects(conn: &Connection) -> Vec<String> {
    rows(
        conn,
        "SELECT id, status, attempts, event_created, status_rank, last_event_id, last_event_type
         FROM payment_requests ORDER BY id",
    )
}

fn derived(conn: &Connection) -> Vec<String> {
    let mut all = rows(conn, "SELECT * FROM payment_requests ORDER BY id");
    all.extend(rows(
        conn,
        "SELECT id, state, reason FROM events ORDER BY seq",
    ));
    all.extend(rows(
        conn,
        "SELECT cause, recipient FROM outbox ORDER BY id",
    ));
    all
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_delivery_order_with_duplicates_gives_one_state_and_one_mail_per_state(
        steps in history(),
        order in any::<prop::sample::Index>(),
        repeats in prop::collection::vec(0_usize..3, 12),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let bodies: Vec<String> = steps.iter().enumerate().map(|(n, s)| body(s, n)).collect();

        // Sorted by version: the reference.
        let sorted_conn = database(&dir, "sorted.db");
        let mut by_version: Vec<(i64, usize)> = steps.iter().enumerate().map(|(n, s)| (s.created, n)).collect();
        by_version.sort();
        deliver(&sorted_conn, &by_version.iter().map(|&(_, n)| bodies[n].clone()).collect::<Vec<_>>());

        // Shuffled (a rotation, then each event repeated 1 to 3 times, interleaved).
        let shuffled_conn = database(&dir, "shuffled.db");
        let mut shuffled = bodies.clone();
        shuffled.rotate_left(order.index(bodies.len()));
        shuffled.reverse();
        let mut delivered = Vec::new();
        for (i, body) in shuffled.iter().enumerate() {
            for _ in 0..=repeats[i % repeats.len()] {
                delivered.push(body.clone());
            }
        }
        delivered.extend(shuffled.iter().step_by(2).cloned());
        deliver(&shuffled_conn, &delivered);

        // (a)
        prop_assert_eq!(objects(&shuffled_conn), objects(&sorted_conn));

        // (c) each (cause, recipient) once, and only states the object reached.
        let causes: Vec<(String, i64)> = shuffled_conn
            .prepare("SELECT cause, count(*) FROM outbox GROUP BY cause, recipient")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // The newest state is always applied when it arrives: a final success is always announced.
        for object in 0..3 {
            let newest = steps.iter().filter(|s| s.object == object).max_by_key(|s| s.created);
            if newest.is_some_and(|s| s.status == "succeeded") {
                let cause = format!("preq_{object}:succeeded");
                prop_assert!(causes.iter().any(|(c, _)| *c == cause), "no mail for {}", cause);
            }
        }
        for (cause, count) in &causes {
            prop_assert_eq!(*count, 1, "{} queued twice", cause);
            let mut parts = cause.split(':');
            let object: usize = parts.next().unwrap().trim_start_matches("preq_").parse().unwrap();
            let state = parts.next().unwrap();
            let reached = steps.iter().any(|s| s.object == object && match state {
                "retrying" => s.retrying,
                other => s.status == other,
            });
            prop_assert!(reached, "mail for a state never reached: {}", cause);
        }

        // (b)
        let before = derived(&shuffled_conn);
        let summary = ingest::replay(&shuffled_conn, false, &policy(), 0).unwrap();
        prop_assert_eq!(summary.mails_queued, 0);
        prop_assert_eq!(derived(&shuffled_conn), before);
    }
}
