//! SPEC §8 `GET /api/events`: admin token, newest first, filters and pagination.

use serde_json::Value;

use crate::helpers::{ADMIN_TOKEN, expect_json, payment_request_event, payout_event, spawn_app};

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn requires_the_admin_token() {
    let app = spawn_app().await;
    let url = format!("{}/api/events", app.address);
    let none = app.client.get(&url).send().await.unwrap();
    assert!(none.headers().contains_key("www-authenticate"));
    assert_eq!(
        expect_json(none, 401).await["error"]["type"],
        "unauthorized"
    );
    let wrong = app
        .client
        .get(&url)
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let right = app
        .client
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status().as_u16(), 200);
}

#[tokio::test]
async fn lists_events_as_received_newest_first_with_pages_and_filters() {
    let app = spawn_app().await;
    // Sent out of order: the list follows CasaPay's `created`, not arrival.
    for (id, created) in [
        ("evt_b", 200),
        ("evt_a", 100),
        ("evt_d", 400),
        ("evt_c", 300),
    ] {
        let body = payment_request_event(
            id,
            "payment_request.processing",
            &format!("preq_{id}"),
            "processing",
            created,
        );
        expect_json(app.post_event(&body).await, 200).await;
    }
    expect_json(
        app.post_event(&payout_event("evt_po", "payout.paid", "po_1", "paid", 50))
            .await,
        200,
    )
    .await;

    let all = expect_json(app.get_admin("/api/events").await, 200).await;
    assert_eq!(all["object"], "list");
    assert_eq!(ids(&all), ["evt_d", "evt_c", "evt_b", "evt_a", "evt_po"]);
    assert_eq!(all["has_more"], false);
    assert_eq!(
        all["data"][0]["data"]["object"]["metadata"]["property_id"], "prop_1",
        "the event as received"
    );

    let first = expect_json(app.get_admin("/api/events?limit=2").await, 200).await;
    assert_eq!(ids(&first), ["evt_d", "evt_c"]);
    assert_eq!(first["has_more"], true);
    let next = expect_json(
        app.get_admin("/api/events?limit=2&starting_after=evt_c")
            .await,
        200,
    )
    .await;
    assert_eq!(ids(&next), ["evt_b", "evt_a"]);
    assert_eq!(next["has_more"], true);
    let last = expect_json(
        app.get_admin("/api/events?limit=2&starting_after=evt_a")
            .await,
        200,
    )
    .await;
    assert_eq!(ids(&last), ["evt_po"]);
    assert_eq!(last["has_more"], false);

    let payouts = expect_json(app.get_admin("/api/events?type=payout.paid").await, 200).await;
    assert_eq!(ids(&payouts), ["evt_po"]);
}

#[tokio::test]
async fn bad_list_parameters_are_clear_errors() {
    let app = spawn_app().await;
    for (query, named) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("starting_after=evt_missing", "evt_missing"),
    ] {
        let error = expect_json(app.get_admin(&format!("/api/events?{query}")).await, 400).await;
        assert_eq!(error["error"]["type"], "invalid_request", "{query}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(named),
            "{query}: `{message}` does not name {named}"
        );
    }
}
