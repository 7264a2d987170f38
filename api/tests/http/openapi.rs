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
];

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
