use axum::http::{Method, StatusCode};
use ticketing_store::testing::with_sqlite;

use crate::support::*;

/// Every route of the API, as its users know it.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/shows"),
    ("post", "/v1/shows/{id}/open-sales"),
    ("post", "/v1/shows/{id}/close-sales"),
    ("post", "/v1/shows/{id}/sections/{section}/buckets"),
    ("post", "/v1/shows/{id}/sections/{section}/rebalance"),
    ("post", "/v1/shows/{id}/cancel"),
    ("get", "/v1/shows/{id}"),
    ("get", "/v1/shows/{id}/availability"),
    ("get", "/v1/shows/{id}/sales"),
    ("post", "/v1/reservations"),
    ("post", "/v1/reservations/{id}/payment"),
    ("post", "/v1/reservations/{id}/cancel"),
    ("get", "/v1/reservations/{id}"),
    ("post", "/v1/payments/{id}/refund"),
    ("get", "/v1/customers/me/reservations"),
    ("get", "/v1/reservations/{id}/tickets"),
    ("get", "/v1/tickets/{id}"),
    ("get", "/v1/tickets/{id}/qr.svg"),
    ("get", "/v1/tickets/{id}/qr.png"),
    ("post", "/v1/tickets/{id}/transfer"),
    ("get", "/v1/keys"),
    ("post", "/v1/checkins"),
    ("post", "/v1/checkins/batch"),
    ("get", "/v1/shows/{id}/revoked-tickets"),
    ("get", "/v1/shows/{id}/admissions"),
    ("get", "/v1/customers/me/tickets"),
    ("post", "/v1/webhooks/stripe"),
];

/// Routes that read nothing from the store, and so never answer 503.
const STORELESS: &[&str] = &["/v1/keys"];

/// Routes that speak another party's protocol (Stripe's webhook: its signature, no
/// `Idempotency-Key`, its own body), not this API's request conventions.
const FOREIGN: &[&str] = &["/v1/webhooks/stripe"];

#[tokio::test]
async fn the_openapi_document_is_served_and_documents_every_route() {
    with_sqlite(|store| async move {
        let api = api(store);
        let reply = get("/v1/openapi.json").send(&api).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            reply.body["openapi"].as_str().unwrap().starts_with("3.1"),
            "{}",
            reply.body["openapi"]
        );
        let paths = reply.body["paths"].as_object().unwrap();
        for (method, path) in ROUTES {
            assert!(
                paths.get(*path).and_then(|p| p.get(*method)).is_some(),
                "{method} {path} is missing from the OpenAPI document"
            );
        }
        let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(
            documented,
            ROUTES.len(),
            "the document has routes the API does not list: {:?}",
            paths.keys().collect::<Vec<_>>()
        );
        assert!(reply.body["components"]["securitySchemes"]["bearer"].is_object());

        let history = &paths["/v1/customers/me/reservations"]["get"];
        let params: Vec<&str> = history["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(params, ["limit", "cursor"], "{history}");
        for path in [
            "/v1/shows/{id}/availability",
            "/v1/shows/{id}/sales",
            "/v1/customers/me/reservations",
        ] {
            let description = paths[path]["get"]["description"]
                .as_str()
                .unwrap_or_default();
            assert!(description.contains("Projected"), "{path}: {description}");
        }
    })
    .await;
}

#[tokio::test]
async fn every_documented_route_is_served() {
    with_sqlite(|store| async move {
        let api = api(store);
        let document = ticketing_api::openapi();
        for (path, item) in &document.paths.paths {
            let concrete = path
                .replace("{id}", "01930000-0000-7000-8000-000000000000")
                .replace("{section}", "Floor");
            let methods = [
                (Method::GET, item.get.is_some()),
                (Method::POST, item.post.is_some()),
            ];
            for (method, documented) in methods {
                if !documented {
                    continue;
                }
                let reply = call(method.clone(), &concrete).send(&api).await;
                let unrouted = reply.body["detail"] == "no such route"
                    || reply.status == StatusCode::METHOD_NOT_ALLOWED;
                assert!(!unrouted, "{method} {path} is documented but not routed");
            }
        }
    })
    .await;
}

fn documented(operation: &serde_json::Value) -> Vec<&str> {
    operation["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

/// The statuses that come from how a request is read (its token, its path, its
/// `Idempotency-Key`, its body) and from the store are documented on every route
/// that can answer them, with the headers that come with them.
#[test]
fn every_route_documents_the_statuses_of_its_extractors() {
    let document = serde_json::to_value(ticketing_api::openapi()).unwrap();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let statuses = documented(operation);
            let at = format!("{method} {path}");
            if !STORELESS.contains(&path.as_str()) {
                assert!(statuses.contains(&"503"), "{at}: {statuses:?}");
            }
            let params = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if path.contains("{id}") {
                assert!(statuses.contains(&"400"), "{at}: a malformed id is a 400");
            }
            if operation.get("security").is_some() {
                assert!(statuses.contains(&"401"), "{at}: needs a token, so 401");
                let www = &operation["responses"]["401"]["headers"]["WWW-Authenticate"];
                assert!(www.is_object(), "{at}: 401 carries WWW-Authenticate");
            }
            if FOREIGN.contains(&path.as_str()) {
                assert!(
                    statuses.contains(&"400"),
                    "{at}: refuses what is not signed"
                );
                continue;
            }
            if method == "post" {
                let key = params
                    .iter()
                    .find(|p| p["name"] == "Idempotency-Key")
                    .unwrap_or_else(|| panic!("{at}: every POST takes an Idempotency-Key"));
                assert_eq!(key["in"], "header");
                assert_eq!(key["schema"]["maxLength"], 255, "{at}");
                assert_eq!(key["schema"]["pattern"], "^[!-~]+$", "{at}");
                for status in ["400", "409", "422"] {
                    assert!(statuses.contains(&status), "{at}: {status} (the key)");
                }
            }
            if let Some(body) = operation.get("requestBody") {
                assert!(statuses.contains(&"413"), "{at}: a body can be too large");
                assert!(statuses.contains(&"422"), "{at}: a body can be invalid");
                if body["required"] == true {
                    assert!(statuses.contains(&"415"), "{at}: a body must be JSON");
                }
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        response["content"]["application/problem+json"].is_object(),
                        "{at} {status}: errors are problem+json"
                    );
                }
            }
        }
    }
}

/// The constraints the server enforces on a request are in its schema.
#[test]
fn request_schemas_state_what_the_server_enforces() {
    let document = serde_json::to_value(ticketing_api::openapi()).unwrap();
    let schemas = &document["components"]["schemas"];
    let show = &schemas["NewShow"]["properties"];
    let codes: Vec<&str> = show["currency"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(codes, ticketing_domain::Currency::CODES);
    for field in ["title", "venue"] {
        assert_eq!(show[field]["maxLength"], 200, "{field}");
        assert!(show[field]["pattern"].is_string(), "{field}");
    }
    assert_eq!(show["sections"]["maxItems"], 50);
    assert_eq!(show["max_per_order"]["maximum"], 100);
    let section = &schemas["NewSection"]["properties"];
    assert_eq!(section["capacity"]["maximum"], 100_000);
    assert_eq!(section["unit_price_minor"]["maximum"], 1_000_000_000);
    assert_eq!(section["buckets"]["maximum"], 64);
    assert_eq!(section["name"]["maxLength"], 64);
    let pattern = section["name"]["pattern"].as_str().unwrap();
    assert_eq!(pattern, ticketing_api::dto::section_name_pattern());
    // The spelled-out class against the domain's own check, on a few scripts.
    let class = &pattern["^[".len()..pattern.find("_-]").unwrap()];
    for (name, valid) in [
        ("Floor", true),
        ("Tribüne", true),
        ("बालकनी", true),
        ("Ⓐ", true),
        ("Ｂ席", true),
        ("A.B", false),
        ("€", false),
    ] {
        let accepted = ticketing_domain::SectionName::parse(name).is_ok();
        assert_eq!(accepted, valid, "{name}");
        let listed = name.chars().all(|c| in_class(class, c));
        assert_eq!(listed, valid, "{name}: the pattern's class");
    }
    let hold = &schemas["NewReservation"]["properties"];
    assert_eq!(hold["quantity"]["maximum"], 100);
    assert_eq!(hold["section"]["pattern"], section["name"]["pattern"]);
    let card = &schemas["NewPayment"]["properties"]["card_token"];
    assert_eq!(card["maxLength"], 128);
    assert_eq!(card["pattern"], "^[A-Za-z0-9_]+$");
}

/// Whether `c` is in a character class of single characters and `a-z` ranges.
fn in_class(class: &str, c: char) -> bool {
    let chars: Vec<char> = class.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if i + 2 < chars.len() && chars[i + 1] == '-' {
            if (chars[i]..=chars[i + 2]).contains(&c) {
                return true;
            }
            i += 3;
        } else {
            if chars[i] == c {
                return true;
            }
            i += 1;
        }
    }
    false
}
