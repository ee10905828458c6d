//! SPEC §5 through the real endpoint: one case per line status and per payout
//! status, each built from the events that produce it.

use casapay_recon::domain::Clock;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, event_with, expect_json, line, payout, request, spawn_app, spawn_app_with,
};

const LINES_ROLL: &str =
    "property_id,landlord_id,period,amount,currency,due_date,payment_agreement,commission_bps
prop_paid,ll_lines,2025-03,120000,eur,1,,
prop_over,ll_lines,2025-03,120000,eur,1,,
prop_cur,ll_lines,2025-03,120000,eur,1,,
prop_cur2,ll_lines,2025-03,120000,eur,1,,
prop_retry,ll_lines,2025-03,120000,eur,1,,
prop_pend,ll_lines,2025-03,120000,eur,1,,
prop_part,ll_lines,2025-03,120000,eur,1,,
prop_fail,ll_lines,2025-03,120000,eur,1,,
prop_canc,ll_lines,2025-03,120000,eur,1,,
prop_overdue,ll_lines,2025-03,120000,eur,1,,
prop_unpaid,ll_lines,2025-03,120000,eur,25,,
prop_agree,ll_lines,2025-03,120000,eur,1,pa_agree,
prop_d,ll_disb,2025-03,100000,eur,1,,800
prop_o,ll_over,2025-03,100000,eur,1,,800
prop_t,ll_transit,2025-03,100000,eur,1,,800
prop_f,ll_pfail,2025-03,100000,eur,1,,800
prop_p,ll_partial,2025-03,100000,eur,1,,800
prop_n,ll_none,2025-03,100000,eur,1,,800
prop_r,ll_round,2025-03,12345,eur,1,,800
";

fn with(mut object: Value, patch: Value) -> Value {
    for (key, value) in patch.as_object().unwrap() {
        object[key] = value.clone();
    }
    object
}

fn payout_line<'a>(reconciliation: &'a Value, landlord: &str) -> &'a Value {
    reconciliation["payouts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["landlord_id"] == landlord)
        .unwrap_or_else(|| panic!("no payout line for {landlord}"))
}

async fn reconciliation(app: &TestApp, query: &str) -> Value {
    expect_json(
        app.get_admin(&format!("/api/reconciliation?{query}")).await,
        200,
    )
    .await
}

async fn populated_app() -> TestApp {
    let app = spawn_app().await;
    expect_json(app.import_rent_roll(LINES_ROLL).await, 200).await;
    let succeeded = "payment_request.succeeded";
    let mut events = vec![
        event_with(
            "e1",
            succeeded,
            10,
            request("preq_paid", "prop_paid", 120000, "eur", "succeeded"),
        ),
        event_with(
            "e2",
            succeeded,
            10,
            request("preq_over1", "prop_over", 120000, "eur", "succeeded"),
        ),
        event_with(
            "e3",
            succeeded,
            11,
            request("preq_over2", "prop_over", 120000, "eur", "succeeded"),
        ),
        event_with(
            "e4",
            succeeded,
            10,
            request("preq_cur", "prop_cur", 120000, "gbp", "succeeded"),
        ),
        event_with(
            "e5",
            succeeded,
            10,
            request("preq_cur2a", "prop_cur2", 60000, "eur", "succeeded"),
        ),
        event_with(
            "e6",
            succeeded,
            10,
            request("preq_cur2b", "prop_cur2", 60000, "gbp", "succeeded"),
        ),
        event_with(
            "e7",
            succeeded,
            10,
            request("preq_retry1", "prop_retry", 60000, "eur", "succeeded"),
        ),
        event_with(
            "e8",
            "payment_request.retrying",
            10,
            with(
                request("preq_retry2", "prop_retry", 60000, "eur", "processing"),
                json!({"next_retry_at": 1_742_500_000, "failure_reason": "insufficient_funds", "attempts": 1}),
            ),
        ),
        event_with(
            "e9",
            "payment_request.created",
            10,
            request("preq_pend", "prop_pend", 120000, "eur", "pending"),
        ),
        event_with(
            "e10",
            succeeded,
            10,
            request("preq_part", "prop_part", 50000, "eur", "succeeded"),
        ),
        event_with(
            "e11",
            "payment_request.failed",
            10,
            with(
                request("preq_fail", "prop_fail", 120000, "eur", "failed"),
                json!({"failure_reason": "account_closed"}),
            ),
        ),
        event_with(
            "e12",
            "payment_request.failed",
            10,
            with(
                request("preq_canc1", "prop_canc", 120000, "eur", "failed"),
                json!({"created": 100}),
            ),
        ),
        event_with(
            "e13",
            "payment_request.cancelled",
            20,
            with(
                request("preq_canc2", "prop_canc", 120000, "eur", "cancelled"),
                json!({"created": 200}),
            ),
        ),
        // Wrong property id, right agreement: the fallback match.
        event_with(
            "e14",
            succeeded,
            10,
            with(
                request("preq_agree", "prop_wrong", 120000, "eur", "succeeded"),
                json!({"payment_agreement": "pa_agree"}),
            ),
        ),
        event_with(
            "e15",
            succeeded,
            10,
            request("preq_x", "prop_zzz", 5000, "eur", "succeeded"),
        ),
    ];
    for (i, property) in ["prop_d", "prop_o", "prop_t", "prop_f", "prop_p", "prop_n"]
        .iter()
        .enumerate()
    {
        events.push(event_with(
            &format!("ep{i}"),
            succeeded,
            10,
            request(
                &format!("preq_{property}"),
                property,
                100000,
                "eur",
                "succeeded",
            ),
        ));
    }
    events.push(event_with(
        "epr",
        succeeded,
        10,
        request("preq_r", "prop_r", 12345, "eur", "succeeded"),
    ));
    events.extend([
        event_with(
            "po1",
            "payout.paid",
            30,
            payout("po_d", "ll_disb", 92000, "paid"),
        ),
        event_with(
            "po2",
            "payout.paid",
            30,
            payout("po_o", "ll_over", 95000, "paid"),
        ),
        event_with(
            "po3",
            "payout.created",
            30,
            payout("po_t", "ll_transit", 92000, "pending"),
        ),
        event_with(
            "po4",
            "payout.failed",
            30,
            payout("po_f", "ll_pfail", 92000, "failed"),
        ),
        event_with(
            "po5",
            "payout.paid",
            30,
            payout("po_p", "ll_partial", 50000, "paid"),
        ),
    ]);
    app.send_all(&events).await;
    app
}

#[tokio::test]
async fn every_line_and_payout_status_from_real_events() {
    let app = populated_app().await;
    let r = reconciliation(&app, "period=2025-03&as_of=2025-03-20").await;
    assert_eq!(r["object"], "reconciliation");
    assert_eq!(r["period"], "2025-03");
    assert_eq!(r["as_of"], "2025-03-20");

    let cases = [
        ("prop_paid", "paid", 120000, 0),
        ("prop_over", "overpaid", 240000, 0),
        ("prop_cur", "currency_mismatch", 0, 120000),
        ("prop_cur2", "currency_mismatch", 60000, 60000),
        ("prop_retry", "retrying", 60000, 60000),
        ("prop_pend", "pending", 0, 120000),
        ("prop_part", "partial", 50000, 70000),
        ("prop_fail", "failed", 0, 120000),
        ("prop_canc", "cancelled", 0, 120000),
        ("prop_overdue", "overdue", 0, 120000),
        ("prop_unpaid", "unpaid", 0, 120000),
        ("prop_agree", "paid", 120000, 0),
    ];
    for (property, status, collected, outstanding) in cases {
        let l = line(&r, property);
        assert_eq!(l["status"], status, "{property}: {l}");
        assert_eq!(l["collected"], collected, "{property}");
        assert_eq!(l["outstanding"], outstanding, "{property}");
        assert_eq!(l["expected"], 120000, "{property}");
        assert_eq!(l["currency"], "eur");
    }
    assert_eq!(
        line(&r, "prop_over")["payment_requests"],
        json!(["preq_over1", "preq_over2"])
    );
    assert_eq!(
        line(&r, "prop_agree")["payment_requests"],
        json!(["preq_agree"])
    );
    assert_eq!(line(&r, "prop_retry")["next_retry_at"], 1_742_500_000);
    assert_eq!(
        line(&r, "prop_retry")["failure_reason"],
        "insufficient_funds"
    );
    assert_eq!(line(&r, "prop_fail")["failure_reason"], "account_closed");
    assert_eq!(line(&r, "prop_paid")["next_retry_at"], Value::Null);

    assert_eq!(
        r["unmatched"],
        json!([{"payment_request": "preq_x", "amount": 5000, "currency": "eur", "status": "succeeded", "property_id": "prop_zzz", "period": "2025-03"}])
    );

    let payouts = [
        ("ll_disb", "disbursed", 92000, 0, 0),
        ("ll_over", "over_disbursed", 95000, 0, 0),
        ("ll_transit", "in_transit", 0, 92000, 0),
        ("ll_pfail", "payout_failed", 0, 0, 92000),
        ("ll_partial", "partially_disbursed", 50000, 0, 0),
        ("ll_none", "not_disbursed", 0, 0, 0),
    ];
    for (landlord, status, paid_out, in_transit, failed) in payouts {
        let p = payout_line(&r, landlord);
        assert_eq!(p["status"], status, "{landlord}: {p}");
        assert_eq!(
            (p["collected"].as_i64(), p["due"].as_i64()),
            (Some(100000), Some(92000)),
            "{landlord}"
        );
        assert_eq!(p["paid_out"], paid_out, "{landlord}");
        assert_eq!(p["in_transit"], in_transit, "{landlord}");
        assert_eq!(p["failed"], failed, "{landlord}");
    }
    assert_eq!(payout_line(&r, "ll_disb")["payouts"], json!(["po_d"]));
    let round = payout_line(&r, "ll_round");
    assert_eq!(
        round["due"],
        12345 - 988,
        "8% of 123.45 is 9.876, rounded half up to 9.88"
    );

    let totals = r["totals"].as_array().unwrap();
    assert_eq!(totals.len(), 1);
    let lines = r["lines"].as_array().unwrap();
    let sum = |field: &str| {
        lines
            .iter()
            .map(|l| l[field].as_i64().unwrap())
            .sum::<i64>()
    };
    assert_eq!(totals[0]["currency"], "eur");
    assert_eq!(totals[0]["expected"], sum("expected"));
    assert_eq!(totals[0]["collected"], sum("collected"));
    assert_eq!(totals[0]["outstanding"], sum("outstanding"));
    assert_eq!(totals[0]["paid_out"], 92000 + 95000 + 50000);
}

#[tokio::test]
async fn landlord_filter_and_csv() {
    let app = populated_app().await;
    let r = reconciliation(&app, "period=2025-03&as_of=2025-03-20&landlord_id=ll_disb").await;
    assert_eq!(r["lines"].as_array().unwrap().len(), 1);
    assert_eq!(r["payouts"].as_array().unwrap().len(), 1);
    assert_eq!(r["unmatched"], json!([]));

    let csv = app
        .get_admin("/api/reconciliation?period=2025-03&as_of=2025-03-20&format=csv")
        .await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    let mut rows = text.lines();
    assert!(rows.next().unwrap().starts_with(
        "property_id,property_name,landlord_id,period,currency,expected,expected_display"
    ));
    assert_eq!(rows.count(), 19);
    assert!(
        text.contains(
            "prop_paid,,ll_lines,2025-03,eur,120000,\"€1,200.00\",120000,\"€1,200.00\",0,€0.00,paid"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn bad_queries_are_clear_errors() {
    let app = spawn_app().await;
    for (query, named) in [
        ("period=2025-13", "2025-13"),
        ("", "period"),
        ("period=2025-03&format=xml", "xml"),
        ("period=2025-03&as_of=yesterday", "yesterday"),
    ] {
        let error = expect_json(
            app.get_admin(&format!("/api/reconciliation?{query}")).await,
            400,
        )
        .await;
        assert_eq!(error["error"]["type"], "invalid_request", "{query}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(named),
            "{query}: `{message}` does not name {named}"
        );
    }
    let anonymous = app
        .client
        .get(format!("{}/api/reconciliation?period=2025-03", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
}

#[tokio::test]
async fn periods_and_due_dates_follow_the_configured_time_zone() {
    // 2025-03-01 12:00 UTC is already 2025-03-02 01:00 in Auckland (UTC+13).
    let now = "2025-03-01T12:00:00Z".parse().unwrap();
    let auckland = spawn_app_with(
        |s| s.timezone = jiff::tz::TimeZone::get("Pacific/Auckland").unwrap(),
        Clock::Fixed(now),
    )
    .await;
    let utc = spawn_app_with(|_| {}, Clock::Fixed(now)).await;
    let roll = "property_id,landlord_id,period,amount,currency\nprop_1,ll_1,2025-03,1000,eur\n";
    // No metadata.period, created 2025-02-28 12:00 UTC = 2025-03-01 01:00 in Auckland.
    let undated = event_with(
        "evt_undated",
        "payment_request.succeeded",
        1_740_744_000,
        json!({"id": "preq_u", "amount": 700, "currency": "eur", "status": "succeeded", "created": 1_740_744_000}),
    );
    for app in [&auckland, &utc] {
        expect_json(app.import_rent_roll(roll).await, 200).await;
        app.send_all(std::slice::from_ref(&undated)).await;
    }
    let nz = reconciliation(&auckland, "period=2025-03").await;
    assert_eq!(nz["as_of"], "2025-03-02");
    assert_eq!(
        line(&nz, "prop_1")["status"],
        "overdue",
        "due 2025-03-01 has passed in Auckland"
    );
    assert_eq!(
        nz["unmatched"][0]["payment_request"], "preq_u",
        "created in March, Auckland time"
    );

    let u = reconciliation(&utc, "period=2025-03").await;
    assert_eq!(u["as_of"], "2025-03-01");
    assert_eq!(
        line(&u, "prop_1")["status"],
        "unpaid",
        "due today in UTC, not yet overdue"
    );
    assert_eq!(u["unmatched"], json!([]), "created in February, UTC");
    let feb = reconciliation(&utc, "period=2025-02").await;
    assert_eq!(feb["unmatched"][0]["payment_request"], "preq_u");
}

#[tokio::test]
async fn lines_filter_by_status_landlord_and_property_and_page_like_events() {
    let app = spawn_app().await;
    let mut roll = String::from("property_id,landlord_id,period,amount,currency\n");
    for p in 0..5 {
        roll.push_str(&format!("prop_{p},ll_{},2025-03,1000,eur\n", p % 2));
    }
    expect_json(app.import_rent_roll(&roll).await, 200).await;
    app.send_all(&[event_with(
        "evt_p",
        "payment_request.succeeded",
        10,
        request("preq_p", "prop_3", 1000, "eur", "succeeded"),
    )])
    .await;
    let base = "/api/reconciliation?period=2025-03&as_of=2025-03-20";
    let properties = |body: &Value, list: &str| -> Vec<String> {
        body[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["property_id"].as_str().unwrap().to_string())
            .collect()
    };
    let overdue = expect_json(app.get_admin(&format!("{base}&status=overdue")).await, 200).await;
    assert_eq!(
        properties(&overdue, "lines"),
        ["prop_0", "prop_2", "prop_4", "prop_1"]
    );
    let paid = expect_json(
        app.get_admin(&format!("{base}&status=paid&landlord_id=ll_1"))
            .await,
        200,
    )
    .await;
    assert_eq!(properties(&paid, "lines"), ["prop_3"]);
    let one = expect_json(
        app.get_admin(&format!("{base}&property_id=prop_2")).await,
        200,
    )
    .await;
    assert_eq!(properties(&one, "lines"), ["prop_2"]);

    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = expect_json(app.get_admin(&format!("{base}&limit=2{after}")).await, 200).await;
        assert_eq!(page["object"], "list");
        let ids = properties(&page, "data");
        assert!(ids.len() <= 2);
        seen.extend(ids.clone());
        if page["has_more"] == false {
            break;
        }
        after = format!("&starting_after={}", ids.last().unwrap());
    }
    assert_eq!(
        seen,
        ["prop_0", "prop_2", "prop_4", "prop_1", "prop_3"],
        "every line once, in order"
    );

    let error = expect_json(app.get_admin(&format!("{base}&status=late")).await, 400).await;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("status"),
        "{error}"
    );
}

#[tokio::test]
async fn a_whole_period_export_streams_every_line_in_csv_and_json() {
    let app = spawn_app().await;
    let mut roll = String::from("property_id,landlord_id,period,amount,currency\n");
    for p in 0..3000 {
        roll.push_str(&format!("prop_{p:04},ll_{},2025-03,120000,eur\n", p % 50));
    }
    expect_json(app.import_rent_roll(&roll).await, 200).await;
    // Several 64 KB chunks: the body is sent as it is written.
    let csv = app
        .get_admin("/api/reconciliation?period=2025-03&as_of=2025-03-20&format=csv")
        .await;
    assert_eq!(csv.status().as_u16(), 200);
    let csv = csv.text().await.unwrap();
    assert!(csv.len() > 3 * 64 * 1024, "{} bytes", csv.len());
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3001, "a header and every line");
    assert!(lines[3000].starts_with("prop_"), "{}", lines[3000]);
    let ids: std::collections::BTreeSet<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(ids.len(), 3000, "each property once");
    let json = expect_json(
        app.get_admin("/api/reconciliation?period=2025-03&as_of=2025-03-20")
            .await,
        200,
    )
    .await;
    assert_eq!(json["lines"].as_array().unwrap().len(), 3000);
    assert_eq!(json["totals"][0]["expected"], 3000 * 120000);
}
