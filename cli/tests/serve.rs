//! `ticketing serve` over real TCP, and `ticketing token`.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use ticketing_api::auth::{AuthConfig, VerificationKey};
use ticketing_cli::{dev_secret, serve};
use ticketing_store::testing::with_sqlite;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One HTTP/1.1 request on a fresh connection; returns the status and the JSON body.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let (_, payload) = response.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(payload).unwrap_or(Value::Null))
}

/// Polls `check` until it returns `Some`, for at most five seconds.
async fn eventually<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for the read models"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_server_serves_a_purchase_and_shuts_down_cleanly() {
    with_sqlite(|store| async move {
        let dir = tempfile::tempdir().unwrap();
        let secret = dev_secret::development_secret(dir.path()).unwrap();
        let auth = AuthConfig {
            key: Some(VerificationKey::Hs256Secret(secret.clone())),
            ..AuthConfig::default()
        };
let bus = Arc::new(ticketing_bus::InProcessBus::new(ticketing_bus::InProcessConfig::default()));
        let publisher: Arc<dyn ticketing_bus::EventBus> = bus.clone();
        let read_models = Arc::new(ticketing_projector::sqlite::SqliteReadModels::new(store.pool().clone()));
        let store: Arc<dyn ticketing_store::EventStore> = Arc::new(store);
        let state = ticketing_api::config::state_with_bus(Arc::clone(&store), read_models, Some(Arc::clone(&publisher)), &auth, ticketing_app::Settings::default()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve::serve_on(listener, state, Some(ticketing_bus::Bus::InProcess(Arc::clone(&bus))), Duration::from_millis(50), async {
            let _ = stopped.await;
        }));

        let token = |role, sub: &str| ticketing_api::auth::mint_hs256(&secret, sub, role, chrono::TimeDelta::minutes(5)).unwrap();
        let organizer = token(ticketing_api::Role::Organizer, "org-1");
        let alice = token(ticketing_api::Role::Customer, "alice");
        let (status, doc) = http(addr, "GET", "/v1/openapi.json", None, None).await;
        assert_eq!((status, doc["openapi"].as_str().map(|v| &v[..3])), (200, Some("3.1")));
        let show = json!({
            "title": "Local", "venue": "Here", "starts_at": (chrono::Utc::now() + chrono::TimeDelta::days(3)).to_rfc3339(),
            "currency": "EUR", "sections": [{"name": "Floor", "capacity": 10, "unit_price_minor": 2500}]
        });
        let (status, created) = http(addr, "POST", "/v1/shows", Some(&organizer), Some(show)).await;
        assert_eq!(status, 201, "{created}");
        let show_id = created["show_id"].as_str().unwrap();
        assert_eq!(http(addr, "POST", &format!("/v1/shows/{show_id}/open-sales"), Some(&organizer), None).await.0, 200);
        let (status, held) = http(addr, "POST", "/v1/reservations", Some(&alice), Some(json!({"show_id": show_id, "section": "Floor", "quantity": 2}))).await;
        assert_eq!(status, 201, "{held}");
        let reservation = held["reservation_id"].as_str().unwrap();
        // The server's own projector shows the hold, soon (the read models are
        // eventually consistent).
        let seats = eventually(|| async {
            let (status, seats) = http(addr, "GET", &format!("/v1/shows/{show_id}/availability"), None, None).await;
            assert_eq!(status, 200, "{seats}");
            (seats["sections"][0]["held"] == 2).then_some(seats)
        })
        .await;
        assert_eq!((seats["sections"][0]["available"].as_u64(), seats["sections"][0]["sold"].as_u64()), (Some(8), Some(0)));
        let (status, paid) = http(addr, "POST", &format!("/v1/reservations/{reservation}/payment"), Some(&alice), Some(json!({"card_token": "tok_visa"}))).await;
        assert_eq!((status, paid["status"].as_str()), (200, Some("confirmed")), "{paid}");
        let (status, _) = http(addr, "GET", "/v1/customers/me/reservations", None, None).await;
        assert_eq!(status, 401);
        eventually(|| async {
            let (_, seats) = http(addr, "GET", &format!("/v1/shows/{show_id}/availability"), None, None).await;
            (seats["sections"][0]["sold"] == 2 && seats["sections"][0]["held"] == 0).then_some(())
        })
        .await;

        // Every event the purchase appended went to the bus, and none is left unpublished.
        let published: Vec<String> = bus
            .messages()
            .iter()
            .filter_map(|m| m.header("event-type").map(str::to_owned))
            .collect();
        for expected in ["ShowCreated", "SeatsHeld", "ReservationPlaced", "PaymentCaptured", "SeatsConfirmed", "ReservationConfirmed"] {
            assert!(published.iter().any(|t| t == expected), "{expected} not published: {published:?}");
        }
        assert!(store.unpublished(None, 100).await.unwrap().is_empty());

        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), server).await.expect("the server stops").unwrap().unwrap();
        assert!(TcpStream::connect(addr).await.is_err(), "nothing listens after shutdown");
    })
    .await;
}

#[test]
fn token_signs_with_the_development_secret_of_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .args(["token", "--role", "customer", "--sub", "alice"])
        .env_remove("JWT_HS256_SECRET")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap();
    let secret = dev_secret::development_secret(dir.path()).unwrap();
    let auth = ticketing_api::Authenticator::new(&AuthConfig {
        key: Some(VerificationKey::Hs256Secret(secret)),
        ..AuthConfig::default()
    })
    .unwrap();
    let request = axum::http::Request::builder()
        .header("authorization", format!("Bearer {}", token.trim()))
        .body(())
        .unwrap();
    let (parts, ()) = request.into_parts();
    let principal = auth.authenticate(&parts).unwrap();
    assert_eq!(principal.subject, "alice");
    assert_eq!(principal.roles, vec![ticketing_api::Role::Customer]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(dev_secret::DEV_SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the secret is readable by its owner only");
    }
    let refused = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .args(["token", "--role", "wizard", "--sub", "alice"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
}

/// `serve` on a database nobody has migrated: with `--no-migrate` it refuses at once
/// with a line naming `ticketing migrate`; without, it migrates it and serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_migrates_a_new_database_and_with_no_migrate_refuses_it_by_name() {
    ticketing_store::testing::with_new_postgres_database(
        "serve_migrates_a_new_database_and_with_no_migrate_refuses_it_by_name",
        |url| async move {
            let dir = tempfile::tempdir().unwrap();
            let serve = |extra: &[&str]| {
                let mut command = Command::new(env!("CARGO_BIN_EXE_ticketing"));
                command
                    .args(["serve", "--addr", "127.0.0.1:0"])
                    .args(extra)
                    .env("DATABASE_URL", &url)
                    .env_remove("KAFKA_BROKERS")
                    .env_remove("MSK_CLUSTER_ARN")
                    .current_dir(dir.path());
                command
            };

            let refused = serve(&["--no-migrate"]).output().unwrap();
            assert!(!refused.status.success());
            let said = String::from_utf8_lossy(&refused.stderr);
            assert!(said.contains("ticketing migrate"), "{said}");
            assert!(said.contains("no ticketing schema"), "{said}");

            let mut server = serve(&[])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let stderr = server.stderr.take().unwrap();
            let (lines, said) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    if lines.send(line).is_err() {
                        break;
                    }
                }
            });
            let serving = loop {
                match said.recv_timeout(Duration::from_secs(60)) {
                    Ok(line) if line.contains("serving the API") => break Ok(line),
                    Ok(_) => continue,
                    Err(e) => break Err(e),
                }
            };
            server.kill().unwrap();
            server.wait().unwrap();
            serving.expect("serve starts on a new database");
            let store = ticketing_store::postgres::PostgresStore::connect(&url, 1)
                .await
                .unwrap();
            store.check_schema().await.expect("serve migrated it");
            store.pool().close().await;
        },
    )
    .await;
}
