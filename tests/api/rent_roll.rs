//! SPEC §4 through `POST /api/rent-roll`: upsert, every error with its line, atomicity.

use serde_json::Value;

use crate::helpers::{TestApp, expect_json, spawn_app};

const GOOD: &str =
    "property_id,landlord_id,period,amount,currency,landlord_email,property_name,payment_agreement
prop_1,ll_1,2025-01..2025-03,120000,eur,owner@example.com,12 Oak St,pa_1
prop_2,ll_1,2025-03,95000,eur,owner@example.com,3 Elm Rd,pa_2
";

/// Every row of every rent-roll table, to prove a rejected import changed nothing.
fn snapshot(app: &TestApp) -> Vec<String> {
    ["landlords", "properties", "expected_rent"]
        .into_iter()
        .flat_map(|table| app.rows(&format!("SELECT * FROM {table} ORDER BY 1, 2")))
        .collect()
}

#[tokio::test]
async fn imports_and_upserts_by_property_and_period() {
    let app = spawn_app().await;
    let summary = expect_json(app.import_rent_roll(GOOD).await, 200).await;
    assert_eq!(summary["lines"], 4);
    assert_eq!(summary["properties"], 2);
    assert_eq!(summary["landlords"], 1);
    let changed = "property_id,landlord_id,period,amount,currency\nprop_2,ll_1,2025-03,99000,eur\n";
    expect_json(app.import_rent_roll(changed).await, 200).await;
    assert_eq!(app.count("SELECT count(*) FROM expected_rent"), 4);
    assert_eq!(
        app.count("SELECT amount FROM expected_rent WHERE property_id = 'prop_2'"),
        99000
    );
    assert_eq!(
        app.count("SELECT count(*) FROM properties WHERE id = 'prop_2' AND name = '3 Elm Rd' AND payment_agreement = 'pa_2'"),
        1,
        "columns left out keep their stored values"
    );
}

#[tokio::test]
async fn a_file_with_bad_rows_is_rejected_whole_with_every_error() {
    let app = spawn_app().await;
    expect_json(app.import_rent_roll(GOOD).await, 200).await;
    let before = snapshot(&app);
    let bad = "property_id,landlord_id,period,amount,currency,landlord_email
prop_1,ll_1,2025-04,130000,eur,
prop_3,ll_2,2025-04,1200.00,eur,
prop_4,ll_2,2025-13,1000,eur,
prop_5,ll_2,2025-04,1000,zzz,
prop_6,ll_3,2025-04,-10,eur,
prop_7,ll_4,2025-04,1000,eur,not-an-email
prop_1,ll_1,2025-04,130000,eur,
";
    let response = app.import_rent_roll(bad).await;
    let error = expect_json(response, 422).await;
    assert_eq!(error["error"]["type"], "invalid_rent_roll");
    let errors = error["error"]["errors"].as_array().unwrap();
    let at = |line: i64, column: &str| {
        errors.iter().any(|e| {
            e["line"] == line
                && e["column"] == column
                && e["message"].as_str().is_some_and(|m| !m.is_empty())
        })
    };
    assert!(at(3, "amount"), "{errors:?}");
    assert!(at(4, "period"), "{errors:?}");
    assert!(at(5, "currency"), "{errors:?}");
    assert!(at(6, "amount"), "{errors:?}");
    assert!(at(7, "landlord_email"), "{errors:?}");
    assert!(at(8, "period"), "duplicate (property, period): {errors:?}");
    assert_eq!(errors.len(), 6, "{errors:?}");
    assert_eq!(snapshot(&app), before, "a rejected import changes nothing");

    let missing_column = expect_json(
        app.import_rent_roll("property_id,landlord_id,period,amount\np,l,2025-01,1\n")
            .await,
        422,
    )
    .await;
    assert_eq!(missing_column["error"]["errors"][0]["column"], "currency");
    assert_eq!(
        expect_json(app.import_rent_roll("").await, 422).await["error"]["errors"][0]["line"],
        1
    );
    assert_eq!(snapshot(&app), before);
}

#[tokio::test]
async fn an_agreement_already_stored_for_another_property_is_rejected() {
    let app = spawn_app().await;
    expect_json(app.import_rent_roll(GOOD).await, 200).await;
    let before = snapshot(&app);
    let clash = "property_id,landlord_id,period,amount,currency,payment_agreement\nprop_9,ll_1,2025-03,1000,eur,pa_1\n";
    let error = expect_json(app.import_rent_roll(clash).await, 422).await;
    let message = error["error"]["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("prop_1"), "{message}");
    assert_eq!(snapshot(&app), before);
    // Moving the agreement in the same file is fine.
    let moved = "property_id,landlord_id,period,amount,currency,payment_agreement\nprop_9,ll_1,2025-03,1000,eur,pa_1\nprop_1,ll_1,2025-03,120000,eur,pa_new\n";
    expect_json(app.import_rent_roll(moved).await, 200).await;
}

#[tokio::test]
async fn the_admin_token_is_required() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/api/rent-roll", app.address))
        .body(GOOD)
        .send()
        .await
        .unwrap();
    let error: Value = expect_json(response, 401).await;
    assert_eq!(error["error"]["type"], "unauthorized");
    assert_eq!(app.count("SELECT count(*) FROM expected_rent"), 0);
}
