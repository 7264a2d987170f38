//! The `checkin` function, driven by the API Gateway payloads in `fixtures/`: a
//! purchase's tickets listed through `queries`, then scanned at the door.

use ticketing_fn_checkin::app;
use ticketing_fn_support::fixture;
use ticketing_fn_support::testing::{
    call, purchase, show_on_sale, test_ticket_keys, Fixture, TestStore, CUSTOMER, RESERVATION_ID,
};

/// The codes of a confirmed purchase's tickets, as its customer lists them through the
/// `queries` function.
async fn codes(db: &TestStore) -> Vec<String> {
    let state = db.state();
    let show_id = show_on_sale(&state.ticketing).await;
    let (reservation_id, _) = purchase(&state.ticketing, show_id, CUSTOMER).await;
    let listed = call(
        ticketing_fn_queries::app(db.state()),
        Fixture::load(
            &format!("{}/../queries", env!("CARGO_MANIFEST_DIR")),
            "reservation-tickets.json",
        )
        .with(RESERVATION_ID, reservation_id.0)
        .request(),
    )
    .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    listed.body["tickets"]
        .as_array()
        .expect("a list of tickets")
        .iter()
        .map(|t| t["code"].as_str().expect("a code").to_owned())
        .collect()
}

#[tokio::test]
async fn a_ticket_is_admitted_once_and_refused_the_second_time() {
    let db = TestStore::new().await;
    let codes = codes(&db).await;
    assert_eq!(codes.len(), 2);
    let scan = || fixture!("check-in.json").with("TICKET_CODE", &codes[0]);

    let admitted = call(app(db.state()), scan().request()).await;
    assert_eq!(admitted.status, 201, "{}", admitted.body);
    assert_eq!(admitted.text("gate"), "north");

    let again = call(app(db.state()), scan().request()).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.text("type"), "urn:ticketing:problem:already-admitted");
    assert_eq!(again.text("gate"), "north");
}

#[tokio::test]
async fn a_scanner_of_another_organizer_is_refused_and_admits_nothing() {
    let db = TestStore::new().await;
    let codes = codes(&db).await;
    let refused = call(
        app(db.state()),
        fixture!("check-in-other-organizer.json")
            .with("TICKET_CODE", &codes[0])
            .request(),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let admitted = call(
        app(db.state()),
        fixture!("check-in.json")
            .with("TICKET_CODE", &codes[0])
            .request(),
    )
    .await;
    assert_eq!(admitted.status, 201, "{}", admitted.body);
}

#[tokio::test]
async fn an_offline_upload_admits_and_a_second_upload_answers_the_same() {
    let db = TestStore::new().await;
    let codes = codes(&db).await;
    let scanned_at = db.state().ticketing.now() - chrono::TimeDelta::minutes(3);
    let upload = || {
        fixture!("check-in-batch.json")
            .with("TICKET_CODE", &codes[1])
            .with("SCANNED_AT", scanned_at.to_rfc3339())
    };
    let first = call(app(db.state()), upload().request()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["results"][0]["admitted"]["gate"], "south");
    let second = call(app(db.state()), upload().request()).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["results"], first.body["results"]);
}

#[tokio::test]
async fn the_keys_are_public_and_verify_the_codes() {
    let db = TestStore::new().await;
    let keys = call(app(db.state()), fixture!("keys.json").request()).await;
    assert_eq!(keys.status, 200, "{}", keys.body);
    let published = &keys.body["keys"][0];
    let expected = &test_ticket_keys().public_keys()[0];
    assert_eq!(published["kid"], expected.kid.as_str());
    assert_eq!(published["x"], expected.x.as_str());
    assert_eq!(published["crv"], "Ed25519");
}
