//! The dashboard in a real headless browser (Debian's chromium). Ignored by a
//! plain `cargo test` because it needs the browser installed; `.ci/run`
//! installs it and runs `cargo test -- --ignored browser`.

use std::process::Command;

use crate::helpers::{ADMIN_TOKEN, event_with, expect_json, request, spawn_app};

const CHROMIUM: &str = "/usr/bin/chromium";

fn chromium(args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("chromium runs: apt-get install chromium")
}

#[tokio::test]
#[ignore = "needs Debian's chromium; .ci/run runs it"]
async fn browser_renders_the_dashboard_with_its_table_and_chart() {
    let app = spawn_app().await;
    expect_json(
        app.import_rent_roll("property_id,landlord_id,period,amount,currency,property_name\nprop_1,ll_1,2025-03,120000,eur,12 Oak St\nprop_2,ll_1,2025-03,95000,eur,3 Elm Rd\n")
            .await,
        200,
    )
    .await;
    app.send_all(&[event_with(
        "evt_b",
        "payment_request.succeeded",
        10,
        request("preq_b", "prop_1", 120000, "eur", "succeeded"),
    )])
    .await;
    let port = app.address.rsplit(':').next().unwrap().to_string();
    let url = format!("http://admin:{ADMIN_TOKEN}@127.0.0.1:{port}/dashboard?period=2025-03");

    let dom = tokio::task::spawn_blocking({
        let url = url.clone();
        move || chromium(&["--dump-dom", &url])
    })
    .await
    .unwrap();
    let html = String::from_utf8_lossy(&dom.stdout);
    assert!(
        html.contains("Rent reconciliation 2025-03"),
        "{html}\n{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    assert!(
        html.contains("12 Oak St (prop_1)") && html.contains("3 Elm Rd (prop_2)"),
        "{html}"
    );
    assert!(html.contains("<svg id=\"chart\""), "{html}");

    let shots = tempfile::tempdir().unwrap();
    let file = shots.path().join("dashboard.png");
    let screenshot = format!("--screenshot={}", file.display());
    tokio::task::spawn_blocking(move || chromium(&[&screenshot, &url]))
        .await
        .unwrap();
    let png = std::fs::read(&file).expect("a screenshot file");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    assert!(
        png.len() > 10_000,
        "a page with content, not a blank one: {} bytes",
        png.len()
    );
    if let Ok(keep) = std::env::var("CASAPAY_SCREENSHOT") {
        std::fs::write(keep, &png).unwrap();
    }
}

#[tokio::test]
#[ignore = "needs Debian's chromium; .ci/run runs it"]
async fn browser_shows_a_small_complete_first_page_at_ten_thousand_properties() {
    let app = spawn_app().await;
    let mut roll = String::from("property_id,landlord_id,period,amount,currency\n");
    for p in 0..10_000 {
        roll.push_str(&format!("prop_{p},ll_{},2025-03,120000,eur\n", p % 500));
    }
    expect_json(app.import_rent_roll(&roll).await, 200).await;
    let paid: Vec<String> = (0..200)
        .map(|p| {
            event_with(
                &format!("evt_{p}"),
                "payment_request.succeeded",
                10,
                request(
                    &format!("preq_{p}"),
                    &format!("prop_{p}"),
                    120000,
                    "eur",
                    "succeeded",
                ),
            )
        })
        .collect();
    app.send_all(&paid).await;
    let page = app.get_admin("/dashboard?period=2025-03").await;
    assert_eq!(page.status().as_u16(), 200);
    let served = page.bytes().await.unwrap();
    assert!(
        served.len() <= 200 * 1024,
        "the first page is at most 200 KB: {} bytes",
        served.len()
    );
    let port = app.address.rsplit(':').next().unwrap().to_string();
    let url = format!("http://admin:{ADMIN_TOKEN}@127.0.0.1:{port}/dashboard?period=2025-03");
    let dom = tokio::task::spawn_blocking(move || chromium(&["--dump-dom", &url]))
        .await
        .unwrap();
    let html = String::from_utf8_lossy(&dom.stdout);
    // Complete: the summary, both charts, both paged tables and the end of the document.
    for part in [
        "Rent reconciliation 2025-03",
        "<svg id=\"chart\"",
        "id=\"history-EUR\"",
        "id=\"next-lines\"",
        "</html>",
    ] {
        assert!(
            html.contains(part),
            "the page lacks {part}: {} bytes",
            html.len()
        );
    }
    assert!(
        html.contains("Page 1 of 100"),
        "10,000 lines in pages of 100: {}",
        &html[..html.len().min(2000)]
    );
}
