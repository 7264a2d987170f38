//! Tickets over HTTP: issued on confirmation, listed with their codes, drawn as QR
//! codes that decode to the same code, checked in once, refused after a refund or a
//! transfer, and who may see or scan what.

use axum::http::StatusCode;
use serde_json::{json, Value};
use ticketing_app::tickets::codes::verify_with_public_key;
use ticketing_app::Clock;
use ticketing_store::testing::with_sqlite;

use crate::support::*;

/// A confirmed purchase of `quantity` seats by `buyer` for a show of `owner`:
/// (show id, reservation id).
async fn purchase(api: &TestApi, owner: &str, buyer: &str, quantity: u32) -> (String, String) {
    let show_id = show_on_sale(api, owner, 50).await;
    let reservation_id = hold(api, &show_id, buyer, quantity).await;
    let paid = pay(api, &reservation_id, buyer, "tok_visa").await;
    assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
    (show_id, reservation_id)
}

async fn tickets(api: &TestApi, reservation_id: &str, buyer: &str) -> Vec<Value> {
    let listed = get(&format!("/v1/reservations/{reservation_id}/tickets"))
        .bearer(&customer(buyer))
        .send(api)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    listed.body["tickets"].as_array().unwrap().clone()
}

/// A code in the documented form that no key of the app under test signed.
fn forged_code() -> String {
    ticketing_app::TicketKeys::from_seeds(&[("test", [9; 32])])
        .unwrap()
        .sign(ticketing_app::tickets::codes::TicketClaims {
            ticket_id: ticketing_domain::TicketId::new(),
            show_id: ticketing_domain::ShowId::new(),
            generation: 0,
        })
}

async fn scan(api: &TestApi, token: &str, body: Value) -> Reply {
    post("/v1/checkins")
        .bearer(token)
        .json(body)
        .send(api)
        .await
}

/// Decodes the QR code in a PNG, as a phone's camera would.
fn decode_png(png: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let (width, height) = (info.width as usize, info.height as usize);
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| pixels[y * width + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

#[tokio::test]
async fn a_purchase_ends_with_tickets_whose_qr_codes_check_in_once() {
    with_sqlite(|store| async move {
        let api = api(store);
        let (show_id, reservation_id) = purchase(&api, "org-a", "alice", 2).await;
        let issued = tickets(&api, &reservation_id, "alice").await;
        assert_eq!(issued.len(), 2);
        assert!(issued
            .iter()
            .all(|t| t["status"] == "valid" && t["holder"] == "alice"));
        assert_ne!(issued[0]["code"], issued[1]["code"]);
        let ticket_id = issued[0]["ticket_id"].as_str().unwrap();
        let code = issued[0]["code"].as_str().unwrap();

        // The QR code carries the code, and the published key verifies it offline.
        let png = get(&format!("/v1/tickets/{ticket_id}/qr.png"))
            .bearer(&customer("alice"))
            .send(&api)
            .await;
        assert_eq!(png.status, StatusCode::OK);
        assert_eq!(png.headers["content-type"], "image/png");
        assert_eq!(decode_png(&png.raw), code);
        let svg = get(&format!("/v1/tickets/{ticket_id}/qr.svg"))
            .bearer(&customer("alice"))
            .send(&api)
            .await;
        assert_eq!(svg.headers["content-type"], "image/svg+xml");
        assert!(String::from_utf8_lossy(&svg.raw).contains("<svg"));
        let keys = get("/v1/keys").send(&api).await;
        assert_eq!(keys.status, StatusCode::OK);
        let jwk: ticketing_app::tickets::codes::PublicJwk = ticket_keys().public_keys().remove(0);
        assert_eq!(keys.body["keys"][0]["x"], jwk.x.as_str());
        let claims = verify_with_public_key(code, &jwk).unwrap();
        assert_eq!(claims.ticket_id.to_string(), ticket_id);
        assert_eq!(claims.show_id.to_string(), show_id);

        // The door: admitted once, then told when and where.
        let gate_a = scanner("gate-a", "org-a");
        let admitted = scan(
            &api,
            &gate_a,
            json!({"code": code, "show_id": show_id, "gate": "A"}),
        )
        .await;
        assert_eq!(admitted.status, StatusCode::CREATED, "{:?}", admitted.body);
        assert_eq!(admitted.body["ticket_id"], ticket_id);
        assert_eq!(admitted.body["gate"], "A");
        // The scanner lost the answer and retries with the same key: the same answer.
        let keyed = || {
            post("/v1/checkins")
                .bearer(&gate_a)
                .header("idempotency-key", "scan-1")
                .json(json!({"code": issued[1]["code"], "gate": "A"}))
        };
        let first = keyed().send(&api).await;
        assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
        api.clock.advance(chrono::TimeDelta::seconds(3));
        let retried = keyed().send(&api).await;
        assert_eq!(
            (retried.status, &retried.body),
            (StatusCode::CREATED, &first.body)
        );
        let again = scan(&api, &gate_a, json!({"code": code, "gate": "B"})).await;
        again.problem(StatusCode::CONFLICT, "already-admitted");
        assert_eq!(again.body["gate"], "A");
        assert_eq!(again.body["admitted_at"], admitted.body["scanned_at"]);

        let listed = tickets(&api, &reservation_id, "alice").await;
        assert_eq!(listed[0]["status"], "admitted");
        assert_eq!(listed[0]["gate"], "A");
        assert_eq!(listed[1]["status"], "admitted");
    })
    .await;
}

#[tokio::test]
async fn a_code_altered_forged_or_for_another_show_is_turned_away() {
    with_sqlite(|store| async move {
        let api = api(store);
        let (show_id, reservation_id) = purchase(&api, "org-a", "alice", 1).await;
        let other_show = show_on_sale(&api, "org-a", 10).await;
        let code = tickets(&api, &reservation_id, "alice").await[0]["code"]
            .as_str()
            .unwrap()
            .to_owned();
        let gate = scanner("gate-a", "org-a");
        let mut altered = code.clone().into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        scan(&api, &gate, json!({"code": altered}))
            .await
            .problem(StatusCode::NOT_FOUND, "invalid-ticket-code");
        let forged = ticketing_app::TicketKeys::from_seeds(&[("test", [9; 32])])
            .unwrap()
            .sign(ticketing_app::tickets::codes::TicketClaims {
                ticket_id: ticketing_domain::TicketId::new(),
                show_id: ticketing_domain::ShowId(show_id.parse().unwrap()),
                generation: 0,
            });
        scan(&api, &gate, json!({"code": forged}))
            .await
            .problem(StatusCode::NOT_FOUND, "invalid-ticket-code");
        scan(&api, &gate, json!({"code": "hello"}))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        scan(&api, &gate, json!({"code": code, "show_id": other_show}))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "wrong-show");
        // Nothing was admitted by any of those.
        let listed = tickets(&api, &reservation_id, "alice").await;
        assert_eq!(listed[0]["status"], "valid");
    })
    .await;
}

#[tokio::test]
async fn who_may_scan_and_who_may_see_a_ticket() {
    with_sqlite(|store| async move {
        let api = api(store);
        let (_, reservation_id) = purchase(&api, "org-a", "alice", 1).await;
        let ticket = tickets(&api, &reservation_id, "alice").await.remove(0);
        let (ticket_id, code) = (
            ticket["ticket_id"].as_str().unwrap(),
            ticket["code"].clone(),
        );

        scan(&api, &scanner("gate-x", "org-b"), json!({"code": code}))
            .await
            .problem(StatusCode::FORBIDDEN, "forbidden");
        scan(&api, &organizer("org-b"), json!({"code": code}))
            .await
            .problem(StatusCode::FORBIDDEN, "forbidden");
        scan(&api, &customer("alice"), json!({"code": code}))
            .await
            .problem(StatusCode::FORBIDDEN, "forbidden");
        // A scanner token without its organizer scans nothing.
        scan(
            &api,
            &token(ticketing_api::Role::Scanner, "gate-y"),
            json!({"code": code}),
        )
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
        let unauthenticated = post("/v1/checkins")
            .json(json!({"code": code}))
            .send(&api)
            .await;
        unauthenticated.problem(StatusCode::UNAUTHORIZED, "unauthorized");

        for path in [
            format!("/v1/reservations/{reservation_id}/tickets"),
            format!("/v1/tickets/{ticket_id}"),
            format!("/v1/tickets/{ticket_id}/qr.png"),
            format!("/v1/tickets/{ticket_id}/qr.svg"),
        ] {
            get(&path)
                .bearer(&customer("mallory"))
                .send(&api)
                .await
                .problem(StatusCode::NOT_FOUND, "not-found");
            assert_eq!(
                get(&path).bearer(&admin()).send(&api).await.status,
                StatusCode::OK
            );
        }
        // The organizer itself may scan its own show's tickets.
        let admitted = scan(&api, &organizer("org-a"), json!({"code": code})).await;
        assert_eq!(admitted.status, StatusCode::CREATED, "{:?}", admitted.body);
    })
    .await;
}

#[tokio::test]
async fn a_refund_revokes_the_tickets() {
    with_sqlite(|store| async move {
        let api = api(store);
        let (_, reservation_id) = purchase(&api, "org-a", "alice", 1).await;
        let code = tickets(&api, &reservation_id, "alice").await[0]["code"].clone();
        let reservation = get(&format!("/v1/reservations/{reservation_id}"))
            .bearer(&customer("alice"))
            .send(&api)
            .await;
        let payment_id = reservation.body["payment_id"].as_str().unwrap();
        let refunded = post(&format!("/v1/payments/{payment_id}/refund"))
            .bearer(&organizer("org-a"))
            .send(&api)
            .await;
        assert_eq!(refunded.status, StatusCode::OK, "{:?}", refunded.body);
        let refused = scan(&api, &scanner("gate-a", "org-a"), json!({"code": code})).await;
        refused.problem(StatusCode::CONFLICT, "ticket-revoked");
        assert_eq!(refused.body["reason"], "refunded");
        let listed = tickets(&api, &reservation_id, "alice").await;
        assert_eq!(listed[0]["status"], "revoked");
        assert_eq!(listed[0]["revoked_because"], "refunded");
    })
    .await;
}

#[tokio::test]
async fn a_transfer_gives_a_new_code_and_revokes_the_old_one() {
    with_sqlite(|store| async move {
        let api = api(store);
        let (_, reservation_id) = purchase(&api, "org-a", "alice", 1).await;
        let ticket = tickets(&api, &reservation_id, "alice").await.remove(0);
        let ticket_id = ticket["ticket_id"].as_str().unwrap().to_owned();
        let old_code = ticket["code"].clone();

        let transfer = |who: &str, to: &str| {
            post(&format!("/v1/tickets/{ticket_id}/transfer"))
                .bearer(&customer(who))
                .json(json!({"to_customer_id": to}))
        };
        transfer("mallory", "mallory")
            .send(&api)
            .await
            .problem(StatusCode::NOT_FOUND, "not-found");
        transfer("alice", "alice")
            .send(&api)
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        transfer("alice", "not a customer id")
            .send(&api)
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        let moved = transfer("alice", "bob").send(&api).await;
        assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
        assert_eq!(moved.body["generation"], 1);

        // Bob sees it with a new code; Alice sees it is Bob's, without a code.
        let bobs = get(&format!("/v1/tickets/{ticket_id}"))
            .bearer(&customer("bob"))
            .send(&api)
            .await;
        assert_eq!(bobs.status, StatusCode::OK, "{:?}", bobs.body);
        assert_ne!(bobs.body["code"], old_code);
        let alices = tickets(&api, &reservation_id, "alice").await;
        assert_eq!(alices[0]["holder"], "bob");
        assert!(alices[0].get("code").is_none(), "{alices:?}");
        get(&format!("/v1/tickets/{ticket_id}"))
            .bearer(&customer("alice"))
            .send(&api)
            .await
            .problem(StatusCode::NOT_FOUND, "not-found");
        // Alice can no longer give it away.
        transfer("alice", "carol")
            .send(&api)
            .await
            .problem(StatusCode::NOT_FOUND, "not-found");

        let gate = scanner("gate-a", "org-a");
        let old = scan(&api, &gate, json!({"code": old_code})).await;
        old.problem(StatusCode::CONFLICT, "ticket-revoked");
        assert_eq!(old.body["reason"], "transferred");
        let new = scan(&api, &gate, json!({"code": bobs.body["code"]})).await;
        assert_eq!(new.status, StatusCode::CREATED, "{:?}", new.body);
        // A used ticket stays with whoever used it.
        post(&format!("/v1/tickets/{ticket_id}/transfer"))
            .bearer(&customer("bob"))
            .json(json!({"to_customer_id": "carol"}))
            .send(&api)
            .await
            .problem(StatusCode::CONFLICT, "already-admitted");
    })
    .await;
}

#[tokio::test]
async fn offline_scans_uploaded_late_admit_the_earliest_and_report_every_duplicate() {
    with_sqlite(|store| async move {
        let api = api(store);
        let (_, reservation_id) = purchase(&api, "org-a", "alice", 2).await;
        let listed = tickets(&api, &reservation_id, "alice").await;
        let (first, second) = (listed[0]["code"].clone(), listed[1]["code"].clone());
        let now = api.clock.now();
        let at = |minutes: i64| (now - chrono::TimeDelta::minutes(minutes)).to_rfc3339();
        let gate = scanner("gate-a", "org-a");
        // Online, the first ticket got in 5 minutes ago at the main gate.
        let online = scan(
            &api,
            &gate,
            json!({"code": first, "gate": "main", "scanned_at": at(5)}),
        )
        .await;
        assert_eq!(online.status, StatusCode::CREATED, "{:?}", online.body);

        // A side gate was offline: it scanned the first ticket earlier (20 minutes ago),
        // and the second one twice.
        let upload = json!({"scans": [
            {"code": second, "gate": "side", "scanned_at": at(2)},
            {"code": first, "gate": "side", "scanned_at": at(20)},
            {"code": second, "gate": "side", "scanned_at": at(10)},
            {"code": forged_code(), "gate": "side", "scanned_at": at(1)},
        ]});
        let answered = post("/v1/checkins/batch")
            .bearer(&gate)
            .json(upload.clone())
            .send(&api)
            .await;
        assert_eq!(answered.status, StatusCode::OK, "{:?}", answered.body);
        let results = answered.body["results"].as_array().unwrap().clone();
        assert_eq!(results.len(), 4);
        // The second ticket: the scan 10 minutes ago admitted it, the later one is a
        // duplicate of it.
        assert_eq!(
            results[2]["admitted"]["scanned_at"],
            at(10).replace("+00:00", "Z")
        );
        assert_eq!(
            results[0]["problem"]["type"],
            "urn:ticketing:problem:already-admitted"
        );
        // The first ticket: the offline scan was earlier than the online one, so it is
        // the admission now and the online one its duplicate.
        assert_eq!(results[1]["admitted"]["gate"], "side");
        assert!(results[1]["admitted"]["superseded_scan_at"].is_string());
        assert_eq!(
            results[3]["problem"]["type"],
            "urn:ticketing:problem:invalid-ticket-code"
        );

        // Uploaded again (the scanner never saw the answer): the same answers.
        let again = post("/v1/checkins/batch")
            .bearer(&gate)
            .json(upload)
            .send(&api)
            .await;
        assert_eq!(again.status, StatusCode::OK);
        let again = again.body["results"].as_array().unwrap().clone();
        assert_eq!(
            again[2]["admitted"]["scanned_at"],
            results[2]["admitted"]["scanned_at"]
        );
        assert_eq!(again[1]["admitted"]["gate"], "side");
        assert_eq!(again[0]["problem"]["type"], results[0]["problem"]["type"]);

        let listed = tickets(&api, &reservation_id, "alice").await;
        assert_eq!(listed[0]["gate"], "side");
        assert_eq!(listed[1]["gate"], "side");
    })
    .await;
}

#[tokio::test]
async fn bad_scans_are_refused_with_nothing_changed() {
    with_sqlite(|store| async move {
        let api = api(store);
        let (_, reservation_id) = purchase(&api, "org-a", "alice", 1).await;
        let code = tickets(&api, &reservation_id, "alice").await[0]["code"].clone();
        let gate = scanner("gate-a", "org-a");
        let future = (api.clock.now() + chrono::TimeDelta::hours(1)).to_rfc3339();
        for body in [
            json!({"code": code, "scanned_at": future}),
            json!({"code": code, "gate": ""}),
            json!({"code": code, "gate": "g".repeat(65)}),
            json!({"code": ""}),
            json!({"code": "x".repeat(513)}),
            json!({"code": format!("{}x", code.as_str().unwrap())}),
            json!({"code": code, "unknown": 1}),
        ] {
            scan(&api, &gate, body)
                .await
                .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        }
        let unstamped = json!({"scans": [{"code": code}]});
        for body in [
            json!({"scans": []}),
            json!({"scans": vec![json!({"code": "x"}); 201]}),
            unstamped,
        ] {
            post("/v1/checkins/batch")
                .bearer(&gate)
                .json(body)
                .send(&api)
                .await
                .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        }
        let listed = tickets(&api, &reservation_id, "alice").await;
        assert_eq!(listed[0]["status"], "valid");
    })
    .await;
}

#[tokio::test]
async fn the_door_s_figures_the_revocation_list_and_each_holder_s_tickets_are_projected() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-a", 50).await;
        let bought = |buyer: &'static str, quantity: u32| {
            let (api, show_id) = (&api, &show_id);
            async move {
                let reservation_id = hold(api, show_id, buyer, quantity).await;
                let paid = pay(api, &reservation_id, buyer, "tok_visa").await;
                assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
                (
                    reservation_id,
                    paid.body["payment_id"].as_str().unwrap().to_owned(),
                )
            }
        };
        // A minute between steps: the lists order by instant.
        let minute = || api.clock.advance(chrono::TimeDelta::minutes(1));
        let (pair, _) = bought("alice", 2).await;
        minute();
        let (single, payment_id) = bought("alice", 1).await;
        let pair_tickets = tickets(&api, &pair, "alice").await;
        let refunded_ticket = tickets(&api, &single, "alice").await[0]["ticket_id"].clone();
        let admitted = scan(
            &api,
            &scanner("gate-a", "org-a"),
            json!({"code": pair_tickets[0]["code"], "gate": "A"}),
        )
        .await;
        assert_eq!(admitted.status, StatusCode::CREATED, "{:?}", admitted.body);
        minute();
        let given = pair_tickets[1]["ticket_id"].as_str().unwrap();
        let moved = post(&format!("/v1/tickets/{given}/transfer"))
            .bearer(&customer("alice"))
            .json(json!({"to_customer_id": "bob"}))
            .send(&api)
            .await;
        assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
        minute();
        let refund = post(&format!("/v1/payments/{payment_id}/refund"))
            .bearer(&organizer("org-a"))
            .send(&api)
            .await;
        assert_eq!(refund.status, StatusCode::OK, "{:?}", refund.body);
        api.project().await;

        // The door's figures, for its scanners and its organizer.
        for who in [scanner("gate-b", "org-a"), organizer("org-a"), admin()] {
            let figures = get(&format!("/v1/shows/{show_id}/admissions"))
                .bearer(&who)
                .send(&api)
                .await;
            assert_eq!(figures.status, StatusCode::OK, "{:?}", figures.body);
            assert_eq!(figures.headers["x-read-model"], "projected");
            assert_eq!(
                figures.body["total"],
                json!({"issued": 3, "admitted": 1, "revoked": 1, "remaining": 1})
            );
            assert_eq!(figures.body["sections"][0]["admitted"], 1);
        }

        // What an offline scanner must refuse: the refunded ticket, and the
        // transferred one's codes but its new one.
        let door = scanner("gate-b", "org-a");
        let list = get(&format!("/v1/shows/{show_id}/revoked-tickets"))
            .bearer(&door)
            .send(&api)
            .await;
        assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
        let revoked = list.body["revoked"].as_array().unwrap();
        assert_eq!(revoked.len(), 2, "{revoked:?}");
        assert_eq!(revoked[0]["ticket_id"], given);
        assert_eq!(revoked[0]["reason"], "transferred");
        assert_eq!(revoked[0]["valid_generation"], 1);
        assert_eq!(revoked[1]["ticket_id"], refunded_ticket);
        assert_eq!(revoked[1]["reason"], "refunded");
        assert!(revoked[1].get("valid_generation").is_none());
        let since = revoked[0]["revoked_at"].as_str().unwrap();
        let later = get(&format!(
            "/v1/shows/{show_id}/revoked-tickets?since={}",
            since.replace('+', "%2B")
        ))
        .bearer(&door)
        .send(&api)
        .await;
        assert_eq!(later.status, StatusCode::OK, "{:?}", later.body);
        assert_eq!(later.body["revoked"].as_array().unwrap(), &revoked[1..]);

        // Each holder's tickets, newest first, without codes.
        let mine = |who: &str, query: &str| {
            get(&format!("/v1/customers/me/tickets{query}")).bearer(&customer(who))
        };
        let alices = mine("alice", "").send(&api).await;
        assert_eq!(alices.status, StatusCode::OK, "{:?}", alices.body);
        let statuses: Vec<&str> = alices.body["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["revoked", "admitted"]);
        assert!(alices.body["tickets"][0].get("code").is_none());
        let bobs = mine("bob", "").send(&api).await;
        assert_eq!(bobs.body["tickets"][0]["ticket_id"], given);
        assert_eq!(bobs.body["tickets"][0]["status"], "valid");
        let first = mine("alice", "?limit=1").send(&api).await;
        let cursor = first.body["next_cursor"].as_str().unwrap();
        let second = mine("alice", &format!("?limit=1&cursor={cursor}"))
            .send(&api)
            .await;
        assert_eq!(second.body["tickets"][0], alices.body["tickets"][1]);

        // Who may not, and what is refused.
        for (path, who, status, slug) in [
            (
                "admissions",
                scanner("gate-x", "org-b"),
                StatusCode::FORBIDDEN,
                "forbidden",
            ),
            (
                "admissions",
                organizer("org-b"),
                StatusCode::FORBIDDEN,
                "forbidden",
            ),
            (
                "revoked-tickets",
                customer("alice"),
                StatusCode::FORBIDDEN,
                "forbidden",
            ),
            (
                "revoked-tickets?since=yesterday",
                door.clone(),
                StatusCode::BAD_REQUEST,
                "bad-request",
            ),
            (
                "revoked-tickets?until=2026-01-01T00:00:00Z",
                door.clone(),
                StatusCode::BAD_REQUEST,
                "bad-request",
            ),
        ] {
            get(&format!("/v1/shows/{show_id}/{path}"))
                .bearer(&who)
                .send(&api)
                .await
                .problem(status, slug);
        }
        get(&format!("/v1/shows/{}/admissions", uuid::Uuid::new_v4()))
            .bearer(&admin())
            .send(&api)
            .await
            .problem(StatusCode::NOT_FOUND, "not-found");
        get(&format!("/v1/shows/{show_id}/revoked-tickets"))
            .send(&api)
            .await
            .problem(StatusCode::UNAUTHORIZED, "unauthorized");
        get("/v1/customers/me/tickets")
            .bearer(&organizer("org-a"))
            .send(&api)
            .await
            .problem(StatusCode::FORBIDDEN, "forbidden");
        mine("alice", "?limit=0")
            .send(&api)
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        mine("alice", "?cursor=nonsense")
            .send(&api)
            .await
            .problem(StatusCode::BAD_REQUEST, "bad-request");
    })
    .await;
}
