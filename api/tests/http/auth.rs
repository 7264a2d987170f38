use axum::http::StatusCode;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use ticketing_api::auth::Claims;
use ticketing_store::testing::with_sqlite;

use crate::support::*;

fn claims(sub: &str, role: &str, exp_offset_seconds: i64) -> Claims {
    Claims {
        sub: sub.into(),
        exp: chrono::Utc::now().timestamp() + exp_offset_seconds,
        role: Some(role.into()),
        roles: None,
        org: None,
        iss: None,
        aud: None,
    }
}

fn signed(header: Header, claims: &Claims, secret: &[u8]) -> String {
    encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// A token whose header says `alg: none` and that carries no signature.
fn unsigned(claims: &Claims) -> String {
    let part = |value: serde_json::Value| {
        let text = value.to_string();
        // base64url without padding, by hand, to avoid a dependency for one test.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = text.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    };
    format!(
        "{}.{}.",
        part(json!({"alg": "none", "typ": "JWT"})),
        part(serde_json::to_value(claims).unwrap())
    )
}

#[tokio::test]
async fn refused_tokens_answer_401() {
    with_sqlite(|store| async move {
        let api = api(store);
        let path = "/v1/customers/me/reservations";
        let valid = claims("alice", "customer", 600);
        let tokens = [
            (
                "wrong signature",
                signed(
                    Header::new(Algorithm::HS256),
                    &valid,
                    b"another-secret-another-secret-123456",
                ),
            ),
            ("alg none", unsigned(&valid)),
            (
                "another algorithm",
                signed(Header::new(Algorithm::HS512), &valid, SECRET),
            ),
            (
                "expired",
                signed(
                    Header::new(Algorithm::HS256),
                    &claims("alice", "customer", -3600),
                    SECRET,
                ),
            ),
            (
                "unknown role",
                signed(
                    Header::new(Algorithm::HS256),
                    &claims("alice", "superuser", 600),
                    SECRET,
                ),
            ),
            ("garbage", "not.a.token".to_owned()),
        ];
        for (what, token) in tokens {
            let reply = get(path).bearer(&token).send(&api).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{what}: {:?}",
                reply.body
            );
            reply.problem(StatusCode::UNAUTHORIZED, "unauthorized");
        }
        let missing = get(path).send(&api).await;
        missing.problem(StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(missing.headers["www-authenticate"], "Bearer");
        get(path)
            .header("authorization", "Basic YWxpY2U6c2VjcmV0")
            .send(&api)
            .await
            .problem(StatusCode::UNAUTHORIZED, "unauthorized");
        // The same claims, correctly signed, pass.
        let ok = get(path)
            .bearer(&signed(Header::new(Algorithm::HS256), &valid, SECRET))
            .send(&api)
            .await;
        assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    })
    .await;
}

#[tokio::test]
async fn a_customer_cannot_read_pay_or_cancel_another_customers_reservation() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-x", 10).await;
        let alices = hold(&api, &show_id, "alice", 2).await;
        let bob = customer("bob");
        get(&format!("/v1/reservations/{alices}"))
            .bearer(&bob)
            .send(&api)
            .await
            .problem(StatusCode::NOT_FOUND, "not-found");
        pay(&api, &alices, "bob", "tok_visa")
            .await
            .problem(StatusCode::NOT_FOUND, "not-found");
        post(&format!("/v1/reservations/{alices}/cancel"))
            .bearer(&bob)
            .send(&api)
            .await
            .problem(StatusCode::NOT_FOUND, "not-found");
        assert_eq!(api.gateway.captured_count(), 0);
        assert_eq!(seats(&api, &show_id).await, (2, 0, 8));
        // Alice and an admin can.
        let mine = get(&format!("/v1/reservations/{alices}"))
            .bearer(&customer("alice"))
            .send(&api)
            .await;
        assert_eq!(mine.status, StatusCode::OK);
        let admin_view = get(&format!("/v1/reservations/{alices}"))
            .bearer(&admin())
            .send(&api)
            .await;
        assert_eq!(admin_view.status, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn an_organizer_cannot_touch_another_organizers_show() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-x", 10).await;
        let reservation = hold(&api, &show_id, "alice", 1).await;
        let paid = pay(&api, &reservation, "alice", "tok_visa").await;
        let payment_id = paid.body["payment_id"].as_str().unwrap().to_owned();
        let y = organizer("org-y");
        for path in ["close-sales", "open-sales", "cancel"] {
            post(&format!("/v1/shows/{show_id}/{path}"))
                .bearer(&y)
                .send(&api)
                .await
                .problem(StatusCode::FORBIDDEN, "forbidden");
        }
        get(&format!("/v1/shows/{show_id}/sales"))
            .bearer(&y)
            .send(&api)
            .await
            .problem(StatusCode::FORBIDDEN, "forbidden");
        post(&format!("/v1/payments/{payment_id}/refund"))
            .bearer(&y)
            .send(&api)
            .await
            .problem(StatusCode::FORBIDDEN, "forbidden");
        assert_eq!(api.gateway.refund_count(), 0);
        let show = get(&format!("/v1/shows/{show_id}")).send(&api).await;
        assert_eq!(show.body["sales"], "on_sale");
        // An admin may.
        let sales = get(&format!("/v1/shows/{show_id}/sales"))
            .bearer(&admin())
            .send(&api)
            .await;
        assert_eq!(sales.status, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn roles_limit_what_each_caller_can_do() {
    with_sqlite(|store| async move {
        let api = api(store);
        post("/v1/shows")
            .bearer(&customer("alice"))
            .json(new_show(10))
            .send(&api)
            .await
            .problem(StatusCode::FORBIDDEN, "forbidden");
        let show_id = show_on_sale(&api, "org-x", 10).await;
        let as_organizer = post("/v1/reservations")
            .bearer(&organizer("org-x"))
            .json(json!({"show_id": show_id, "section": "Floor", "quantity": 1}))
            .send(&api)
            .await;
        as_organizer.problem(StatusCode::FORBIDDEN, "forbidden");
        get(&format!("/v1/shows/{show_id}/sales"))
            .bearer(&customer("alice"))
            .send(&api)
            .await
            .problem(StatusCode::FORBIDDEN, "forbidden");
        let by_admin = post("/v1/shows")
            .bearer(&admin())
            .json(new_show(5))
            .send(&api)
            .await;
        assert_eq!(by_admin.status, StatusCode::CREATED);
        // Public reads need no token.
        assert_eq!(
            get(&format!("/v1/shows/{show_id}")).send(&api).await.status,
            StatusCode::OK
        );
        assert_eq!(seats(&api, &show_id).await, (0, 0, 10));
    })
    .await;
}

#[tokio::test]
async fn claims_from_the_api_gateway_authorizer_are_trusted_without_a_bearer_token() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-x", 10).await;
        let event = json!({
            "version": "2.0",
            "routeKey": "POST /v1/reservations",
            "rawPath": "/v1/reservations",
            "rawQueryString": "",
            "headers": {"content-type": "application/json"},
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api",
                "domainName": "api.example.com",
                "domainPrefix": "api",
                "http": {"method": "POST", "path": "/v1/reservations", "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "test"},
                "requestId": "id",
                "routeKey": "POST /v1/reservations",
                "stage": "$default",
                "time": "01/Jun/2026:12:00:00 +0000",
                "timeEpoch": 1780315200000u64,
                "authorizer": {"jwt": {"claims": {"sub": "carol", "role": "customer"}, "scopes": null}}
            },
            "body": json!({"show_id": show_id, "section": "Floor", "quantity": 2}).to_string(),
            "isBase64Encoded": false
        });
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let (parts, body) = request.into_parts();
        let body = axum::body::Body::from(body.to_vec());
        let reply = send_request(&api, axum::http::Request::from_parts(parts, body)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        let reservation = reply.body["reservation_id"].as_str().unwrap();
        let view = get(&format!("/v1/reservations/{reservation}")).bearer(&customer("carol")).send(&api).await;
        assert_eq!(view.body["customer_id"], "carol");
    })
    .await;
}

#[test]
fn rs256_tokens_are_verified_with_the_public_key_and_algorithm_confusion_is_refused() {
    use ticketing_api::auth::{AuthConfig, Authenticator, VerificationKey};
    let private = include_str!("../fixtures/rs256-test-private.pem");
    let public = include_str!("../fixtures/rs256-test-public.pem");
    let auth = Authenticator::new(&AuthConfig {
        key: Some(VerificationKey::Rs256PublicKeyPem(public.to_owned())),
        ..AuthConfig::default()
    })
    .unwrap();
    let check = |token: &str| {
        let request = axum::http::Request::builder()
            .header("authorization", format!("Bearer {token}"))
            .body(())
            .unwrap();
        auth.authenticate(&request.into_parts().0)
    };
    let valid = claims("org-1", "organizer", 600);
    let rs256 = encode(
        &Header::new(Algorithm::RS256),
        &valid,
        &EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
    )
    .unwrap();
    let principal = check(&rs256).unwrap();
    assert_eq!(
        (principal.subject.as_str(), principal.roles.as_slice()),
        ("org-1", &[ticketing_api::Role::Organizer][..])
    );
    // The public key used as an HMAC secret: the classic algorithm-confusion forgery.
    let forged = signed(Header::new(Algorithm::HS256), &valid, public.as_bytes());
    assert_eq!(
        check(&forged).unwrap_err().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        check(&unsigned(&valid)).unwrap_err().status(),
        StatusCode::UNAUTHORIZED
    );
    // A gateway-only deployment (no key) refuses bearer tokens it cannot verify.
    let gateway_only = Authenticator::new(&AuthConfig::default()).unwrap();
    let request = axum::http::Request::builder()
        .header("authorization", format!("Bearer {rs256}"))
        .body(())
        .unwrap();
    assert_eq!(
        gateway_only
            .authenticate(&request.into_parts().0)
            .unwrap_err()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Keys too weak to be configured are refused at start-up.
    assert!(Authenticator::new(&AuthConfig {
        key: Some(VerificationKey::Hs256Secret(b"short".to_vec())),
        ..AuthConfig::default()
    })
    .is_err());
    assert!(Authenticator::new(&AuthConfig {
        key: Some(VerificationKey::Rs256PublicKeyPem("not a key".into())),
        ..AuthConfig::default()
    })
    .is_err());
}

#[test]
fn a_configured_issuer_and_audience_are_required() {
    use ticketing_api::auth::{AuthConfig, Authenticator, VerificationKey};
    let auth = Authenticator::new(&AuthConfig {
        key: Some(VerificationKey::Hs256Secret(SECRET.to_vec())),
        issuer: Some("https://idp.example.com".into()),
        audience: Some("ticketing".into()),
    })
    .unwrap();
    let check = |claims: &Claims| {
        let token = signed(Header::new(Algorithm::HS256), claims, SECRET);
        let request = axum::http::Request::builder()
            .header("authorization", format!("Bearer {token}"))
            .body(())
            .unwrap();
        auth.authenticate(&request.into_parts().0)
            .map(|p| p.subject)
    };
    let mut right = claims("alice", "customer", 600);
    right.iss = Some("https://idp.example.com".into());
    right.aud = Some("ticketing".into());
    assert_eq!(check(&right).unwrap(), "alice");
    let mut wrong_issuer = right.clone();
    wrong_issuer.iss = Some("https://evil.example.com".into());
    let mut wrong_audience = right.clone();
    wrong_audience.aud = Some("another-app".into());
    let mut no_issuer = right.clone();
    no_issuer.iss = None;
    for refused in [wrong_issuer, wrong_audience, no_issuer] {
        assert_eq!(
            check(&refused).unwrap_err().status(),
            StatusCode::UNAUTHORIZED,
            "{refused:?}"
        );
    }
}

/// The role is checked before the body is read: a caller who may not use a route is
/// told so (403), whatever it sent, rather than how to fix a body it cannot use.
#[tokio::test]
async fn a_caller_without_the_role_gets_403_even_for_an_invalid_body() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-x", 10).await;
        let reservation = hold(&api, &show_id, "alice", 1).await;
        let invalid = json!({"nonsense": true});
        let cases = [
            ("/v1/shows".to_owned(), customer("alice")),
            (format!("/v1/shows/{show_id}/cancel"), customer("alice")),
            ("/v1/reservations".to_owned(), organizer("org-x")),
            (
                format!("/v1/reservations/{reservation}/payment"),
                organizer("org-x"),
            ),
        ];
        for (path, token) in cases {
            post(&path)
                .bearer(&token)
                .json(invalid.clone())
                .send(&api)
                .await
                .problem(StatusCode::FORBIDDEN, "forbidden");
        }
        // With the role, the same body is refused for what it is.
        post("/v1/shows")
            .bearer(&organizer("org-x"))
            .json(invalid)
            .send(&api)
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    })
    .await;
}
