//! The built binary as a child process: kill -9 under load loses no
//! acknowledged event; the quickstart (generated secret, `trigger`) works;
//! SIGTERM exits 0.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use casapay_recon::casapay::signature;
use casapay_recon::domain::Secret;
use tokio::process::Command;

use crate::helpers::payment_request_event;
use crate::process::{BIN, Service, start_service, start_service_with};

fn generated_secret(service: &Service) -> Option<Secret> {
    service.stderr.lock().unwrap().iter().find_map(|line| {
        line.strip_prefix("Generated CASAPAY_WEBHOOK_SECRETS: ")
            .map(|s| Secret::new(s.trim()))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let service = start_service(dir.path()).await;
    let secret = generated_secret(&service).expect("a secret is generated on first start");
    let url = format!("http://127.0.0.1:{}/webhooks/casapay", service.port);
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let (ack, mut acked) = tokio::sync::mpsc::unbounded_channel();
    let senders: Vec<_> = (0..8)
        .map(|sender| {
            let (url, secret, acknowledged, ack) = (
                url.clone(),
                secret.clone(),
                Arc::clone(&acknowledged),
                ack.clone(),
            );
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for n in 0..100_000 {
                    let id = format!("evt_{sender}_{n}");
                    let body = payment_request_event(
                        &id,
                        "payment_request.succeeded",
                        &format!("preq_{sender}_{n}"),
                        "succeeded",
                        100,
                    );
                    let header = signature::sign(
                        &secret,
                        jiff::Timestamp::now().as_second(),
                        body.as_bytes(),
                    );
                    let sent = client
                        .post(&url)
                        .header(signature::HEADER, header)
                        .body(body)
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status().as_u16() == 200 => {
                            acknowledged.lock().unwrap().push(id);
                            let _ = ack.send(());
                        }
                        Ok(_) => {}
                        Err(_) => return, // the service is gone
                    }
                }
            })
        })
        .collect();
    // Kill in the middle of the load: once a good number were acknowledged.
    let loaded = tokio::time::timeout(Duration::from_secs(60), async {
        for _ in 0..200 {
            acked.recv().await;
        }
    })
    .await;
    assert!(loaded.is_ok(), "200 events acknowledged within 60 s");
    service.kill().await;
    for sender in senders {
        sender.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    let conn = rusqlite::Connection::open(dir.path().join("casapay-recon.db")).unwrap();
    let mut lookup = conn
        .prepare("SELECT count(*) FROM events WHERE id = ?1")
        .unwrap();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| {
            lookup
                .query_row([id.as_str()], |r| r.get::<_, i64>(0))
                .unwrap()
                != 1
        })
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    let stored_effects: i64 = conn
        .query_row("SELECT count(*) FROM payment_requests", [], |r| r.get(0))
        .unwrap();
    let stored_events: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        stored_effects, stored_events,
        "every stored event has its effect, and no more"
    );
}

#[tokio::test]
async fn quickstart_trigger_uses_the_stored_secret_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let first = start_service(dir.path()).await;
    assert!(generated_secret(&first).is_some());
    first.kill().await;

    let mut service = start_service(dir.path()).await;
    assert!(
        generated_secret(&service).is_none(),
        "the secret is generated once, then reused"
    );
    let output = Command::new(BIN)
        .args([
            "trigger",
            "payment_request.succeeded",
            "--property",
            "prop_9",
            "--period",
            "2025-03",
        ])
        .env("CASAPAY_DATABASE", dir.path().join("casapay-recon.db"))
        .env("CASAPAY_BIND", format!("127.0.0.1:{}", service.port))
        .env_remove("CASAPAY_WEBHOOK_SECRETS")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "trigger failed: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with("200 ") && stdout.contains("\"duplicate\":false"),
        "{stdout}"
    );

    let pid = service.child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), service.child.wait())
        .await
        .expect("the service stops within 30 s")
        .unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0");

    let conn = rusqlite::Connection::open(dir.path().join("casapay-recon.db")).unwrap();
    let stored: i64 = conn
        .query_row(
            "SELECT count(*) FROM payment_requests WHERE property_id = 'prop_9'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, 1, "the triggered event was stored with its effect");
}

#[tokio::test]
async fn logs_are_json_lines_that_never_show_a_secret_a_signature_or_a_body() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "whsec_log_secret_value_1234";
    let token = "admin_log_token_5678";
    let service = start_service_with(
        dir.path(),
        &[
            ("CASAPAY_LOG_FORMAT", "json"),
            ("CASAPAY_WEBHOOK_SECRETS", secret),
            ("CASAPAY_ADMIN_TOKEN", token),
        ],
    )
    .await;
    let url = format!("http://127.0.0.1:{}/webhooks/casapay", service.port);
    let body = payment_request_event(
        "evt_log",
        "payment_request.succeeded",
        "preq_log",
        "succeeded",
        100,
    )
    .replace("\"pa_1\"", "\"BODY_MARKER_pa\"");
    let header = signature::sign(
        &Secret::new(secret),
        jiff::Timestamp::now().as_second(),
        body.as_bytes(),
    );
    let tag = header.split("v1=").nth(1).unwrap().to_string();
    let client = reqwest::Client::new();
    let ok = client
        .post(&url)
        .header(signature::HEADER, &header)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let bad = client
        .post(&url)
        .header(signature::HEADER, header.replace(&tag[..8], "00000000"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let events = client
        .get(format!("http://127.0.0.1:{}/api/events", service.port))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status().as_u16(), 200);
    let lines = service.kill().await;
    let logged: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        !logged.is_empty() && logged.len() == lines.len(),
        "every line is JSON: {lines:?}"
    );
    let stored = logged
        .iter()
        .find(|l| l["event_id"] == "evt_log")
        .unwrap_or_else(|| panic!("one line per webhook: {lines:?}"));
    assert_eq!(stored["outcome"], "stored");
    assert_eq!(stored["event_type"], "payment_request.succeeded");
    assert!(stored["latency_us"].is_u64());
    assert!(
        logged.iter().any(|l| l["outcome"] == "invalid_signature"),
        "{lines:?}"
    );
    for line in &lines {
        for secret_text in [secret, token, tag.as_str(), &tag[..16], "BODY_MARKER"] {
            assert!(
                !line.contains(secret_text),
                "a log line shows `{secret_text}`: {line}"
            );
        }
    }
}

#[tokio::test]
async fn a_failed_first_start_keeps_no_credentials_and_the_next_start_shows_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let output = Command::new(BIN)
        .arg("serve")
        .env("CASAPAY_DATABASE", dir.path().join("casapay-recon.db"))
        .env("CASAPAY_BIND", format!("127.0.0.1:{port}"))
        .env("CASAPAY_MAIL_DIR", dir.path().join("mail"))
        .env_remove("CASAPAY_WEBHOOK_SECRETS")
        .env_remove("CASAPAY_ADMIN_TOKEN")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("cannot listen"), "{stderr}");
    assert!(!stderr.contains("Generated"), "nothing shown: {stderr}");
    let kept: i64 = rusqlite::Connection::open(dir.path().join("casapay-recon.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM settings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 0, "nothing kept that nobody saw");
    drop(held);

    let service = start_service(dir.path()).await;
    let lines = service.stderr.lock().unwrap().clone();
    assert!(generated_secret(&service).is_some(), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Generated CASAPAY_ADMIN_TOKEN: ")),
        "{lines:?}"
    );
    service.kill().await;
}

/// Twenty kill -9s under load with landlord mail on: nothing acknowledged is
/// lost, no mail is lost, and a mail is sent twice only in the one documented
/// window (a crash between the SMTP server's acceptance and marking it sent),
/// recognisable by its unchanged Message-ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a stress test of the built binary: .ci/run runs it alone, after the suite"]
async fn kill_9_twenty_times_with_mail_loses_nothing_and_mails_each_state_once() {
    use std::collections::{BTreeSet, HashMap};

    let smtp = crate::smtp::SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let secret = "whsec_kill_with_mail";
    let token = "admin-token-kill-with-mail";
    let smtp_url = smtp.url();
    let env = [
        ("CASAPAY_WEBHOOK_SECRETS", secret),
        ("CASAPAY_ADMIN_TOKEN", token),
        ("CASAPAY_SMTP_URL", smtp_url.as_str()),
        ("CASAPAY_MAIL_RETRY_BASE_MS", "50"),
        ("CASAPAY_MAIL_MAX_ATTEMPTS", "30"),
    ];
    let mut roll = String::from("property_id,landlord_id,period,amount,currency,landlord_email\n");
    for p in 0..50 {
        roll.push_str(&format!(
            "prop_{p},ll_{p},2025-03,120000,eur,ll_{p}@example.com\n"
        ));
    }
    let mut service = start_service_with(dir.path(), &env).await;
    let client = reqwest::Client::new();
    let imported = client
        .post(format!("http://127.0.0.1:{}/api/rent-roll", service.port))
        .bearer_auth(token)
        .body(roll)
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status().as_u16(), 200);

    let acknowledged = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    // Sent but not acknowledged: CasaPay redelivers some of them later.
    let pending = Arc::new(Mutex::new(HashMap::<String, String>::new()));
    let secret_key = Secret::new(secret);
    for cycle in 0..20_u64 {
        let url = format!("http://127.0.0.1:{}/webhooks/casapay", service.port);
        let (ack, mut acked) = tokio::sync::mpsc::unbounded_channel();
        let senders: Vec<_> = (0..8_u64)
            .map(|sender| {
                let (url, secret, acknowledged, pending, ack) = (
                    url.clone(),
                    secret_key.clone(),
                    Arc::clone(&acknowledged),
                    Arc::clone(&pending),
                    ack.clone(),
                );
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    for n in 0.. {
                        // Every third send redelivers something: unacknowledged, or already acknowledged.
                        let redelivery = (n % 3 == 2)
                            .then(|| {
                                pending
                                    .lock()
                                    .unwrap()
                                    .iter()
                                    .next()
                                    .map(|(i, b)| (i.clone(), b.clone()))
                            })
                            .flatten();
                        let (id, body) = redelivery.unwrap_or_else(|| {
                            let id = format!("evt_{cycle}_{sender}_{n}");
                            let body = payment_request_event(
                                &id,
                                "payment_request.succeeded",
                                &format!("preq_{cycle}_{sender}_{n}"),
                                "succeeded",
                                100,
                            )
                            .replace("\"prop_1\"", &format!("\"prop_{}\"", n % 50));
                            (id, body)
                        });
                        pending.lock().unwrap().insert(id.clone(), body.clone());
                        let header = signature::sign(
                            &secret,
                            jiff::Timestamp::now().as_second(),
                            body.as_bytes(),
                        );
                        match client
                            .post(&url)
                            .header(signature::HEADER, header)
                            .body(body)
                            .send()
                            .await
                        {
                            Ok(r) if r.status().as_u16() == 200 => {
                                pending.lock().unwrap().remove(&id);
                                acknowledged.lock().unwrap().insert(id);
                                let _ = ack.send(());
                            }
                            Ok(_) => {}
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        drop(ack);
        // Kill at a different point each cycle: after 10 to 48 acknowledgements.
        let wanted = 10 + (cycle * 7) % 39;
        let loaded = tokio::time::timeout(Duration::from_secs(60), async {
            for _ in 0..wanted {
                acked.recv().await;
            }
        })
        .await;
        assert!(
            loaded.is_ok(),
            "cycle {cycle}: {wanted} acknowledgements within 60 s"
        );
        service.kill().await;
        for sender in senders {
            sender.await.unwrap();
        }
        service = start_service_with(dir.path(), &env).await;
    }

    // The last start delivers what is left in the outbox.
    let db = rusqlite::Connection::open(dir.path().join("casapay-recon.db")).unwrap();
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    let drained = tokio::time::timeout(Duration::from_secs(180), async {
        while count("SELECT count(*) FROM outbox WHERE status IN ('queued', 'sending')") > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let waiting: Vec<String> = db
        .prepare("SELECT status || ' ' || attempts || ' ' || coalesce(last_error, '') FROM outbox WHERE status != 'sent' LIMIT 5")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        drained.is_ok(),
        "the outbox drains within 180 s: {waiting:?}"
    );
    assert_eq!(waiting, Vec::<String>::new(), "every mail sent");
    service.kill().await;

    let acknowledged = acknowledged.lock().unwrap().clone();
    let mut lookup = db
        .prepare("SELECT count(*) FROM events WHERE id = ?1")
        .unwrap();
    for id in &acknowledged {
        let stored: i64 = lookup.query_row([id], |r| r.get(0)).unwrap();
        assert_eq!(stored, 1, "{id} acknowledged and stored once");
    }
    assert_eq!(
        count(
            "SELECT count(*) FROM payment_requests p JOIN events e ON e.id = p.last_event_id WHERE p.status != 'succeeded' OR e.object_id != p.id"
        ),
        0,
        "every object is its newest event's"
    );
    // One mail per stored request, and none for a request never stored.
    let requests = count("SELECT count(*) FROM payment_requests");
    assert_eq!(count("SELECT count(*) FROM outbox"), requests);
    assert_eq!(
        count(
            "SELECT count(*) FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM payment_requests p WHERE o.cause = p.id || ':succeeded')"
        ),
        0
    );
    let received = smtp.received();
    let distinct: BTreeSet<String> = received
        .iter()
        .map(|m| m.parsed().message_id().unwrap_or_default().to_string())
        .collect();
    assert_eq!(distinct.len() as i64, requests, "every mail arrived");
    let doubled = received.len() - distinct.len();
    assert!(
        doubled <= 20,
        "{doubled} mails sent twice, more than one per crash"
    );
    eprintln!(
        "kill -9 with mail: 20 cycles, {} events acknowledged, {requests} requests stored, {} mails received, {doubled} sent twice, 0 lost",
        acknowledged.len(),
        received.len()
    );
}
