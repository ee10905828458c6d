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
