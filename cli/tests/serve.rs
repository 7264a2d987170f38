//! `ticketing serve` over real TCP, and `ticketing token`.
//!
//! The binary has no libtest harness (`harness = false`): every test is a
//! `libtest_mimic` trial, named as libtest would name it, so that the PostgreSQL test
//! is reported as skipped (ignored) by name when no server answers and `CI` is not set
//! ([`ticketing_store::testing::postgres_trial`]). A new test function is listed in
//! `main`'s `trials!`.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use ticketing_api::auth::{AuthConfig, VerificationKey};
use ticketing_cli::{dev_secret, serve};
use ticketing_store::testing::{
    async_trial, postgres_trial, run_trials, sync_trial, with_new_postgres_database, with_sqlite,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() {
    run_trials(ticketing_store::trials![
        async_trial =>
            the_local_server_serves_a_purchase_and_shuts_down_cleanly,
            a_hold_is_one_trace_from_the_request_through_the_append_to_the_projection;
        sync_trial => token_signs_with_the_development_secret_of_the_working_directory;
        postgres_trial => serve_migrates_a_new_database_and_with_no_migrate_refuses_it_by_name;
    ])
}

/// One HTTP/1.1 request on a fresh connection; returns the status and the JSON body.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, payload) = http_text(addr, method, path, token, body).await;
    (
        status,
        serde_json::from_str(&payload).unwrap_or(Value::Null),
    )
}

/// As [`http`], with the body as text.
async fn http_text(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    request(addr, method, path, token, "", body).await
}

/// One request with `extra_headers` (lines ending in CRLF); the status and the body.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    extra_headers: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}{extra_headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let (_, payload) = response.split_once("\r\n\r\n").unwrap();
    (status, payload.to_owned())
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

/// `serve` on a listener of its own, on the embedded store and the in-process bus, with
/// a development secret to mint tokens with.
struct LocalServer {
    addr: SocketAddr,
    secret: Vec<u8>,
    store: Arc<dyn ticketing_store::EventStore>,
    bus: Arc<ticketing_bus::InProcessBus>,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl LocalServer {
    async fn start(store: ticketing_store::sqlite::SqliteStore) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let secret = dev_secret::development_secret(dir.path()).unwrap();
        let auth = AuthConfig {
            key: Some(VerificationKey::Hs256Secret(secret.clone())),
            ..AuthConfig::default()
        };
        let bus = Arc::new(ticketing_bus::InProcessBus::new(
            ticketing_bus::InProcessConfig::default(),
        ));
        let publisher: Arc<dyn ticketing_bus::EventBus> = bus.clone();
        let read_models = Arc::new(ticketing_read_models::sqlite::SqliteReadModels::new(
            store.pool().clone(),
        ));
        let store: Arc<dyn ticketing_store::EventStore> = Arc::new(store);
        let state = ticketing_api::config::state_with_bus(
            Arc::clone(&store),
            read_models,
            Some(publisher),
            &auth,
            ticketing_app::Settings::default(),
            Some(dev_secret::development_ticket_keys(dir.path()).unwrap()),
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(serve::serve_on(
            listener,
            state,
            Some(ticketing_bus::Bus::InProcess(Arc::clone(&bus))),
            Duration::from_millis(50),
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            secret,
            store,
            bus,
            stop,
            served,
            _dir: dir,
        }
    }

    fn token(&self, role: ticketing_api::Role, subject: &str) -> String {
        ticketing_api::auth::mint_hs256(&self.secret, subject, role, chrono::TimeDelta::minutes(5))
            .unwrap()
    }

    /// Creates a show with a 10-seat section `Floor` and opens its sales; its id.
    async fn show_on_sale(&self) -> String {
        let organizer = self.token(ticketing_api::Role::Organizer, "org-1");
        let show = json!({
            "title": "Local", "venue": "Here", "starts_at": (chrono::Utc::now() + chrono::TimeDelta::days(3)).to_rfc3339(),
            "currency": "EUR", "sections": [{"name": "Floor", "capacity": 10, "unit_price_minor": 2500}]
        });
        let (status, created) =
            http(self.addr, "POST", "/v1/shows", Some(&organizer), Some(show)).await;
        assert_eq!(status, 201, "{created}");
        let show_id = created["show_id"].as_str().unwrap().to_owned();
        assert_eq!(
            http(
                self.addr,
                "POST",
                &format!("/v1/shows/{show_id}/open-sales"),
                Some(&organizer),
                None
            )
            .await
            .0,
            200
        );
        show_id
    }

    /// Stops the server and waits until it has.
    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.served)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
}

/// The value of one series (name and labels exactly as exposed), if exported.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

/// The metric names in a Prometheus text exposition, histograms also under their base
/// name.
fn metric_names(exposition: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for line in exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                names.insert(base.to_owned());
            }
        }
        names.insert(name);
    }
    names
}

/// Metrics only the Kafka consumer exports (`projector run`), never `serve`.
const KAFKA_ONLY: [&str; 1] = ["projector_consumer_lag"];

/// The metric names the Grafana dashboards and the Prometheus alert rules under `ops/`
/// read: the identifiers in them that start like this project's metrics.
fn names_used_by_dashboards_and_alerts() -> std::collections::BTreeSet<String> {
    const PREFIXES: [&str; 11] = [
        "http_",
        "holds_",
        "hold_",
        "command_",
        "payments_",
        "payment_",
        "refunds_",
        "bus_",
        "outbox_",
        "relay_",
        "sweeper_",
    ];
    let ops = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops");
    let mut files = vec![ops.join("prometheus/alerts.yml")];
    for entry in std::fs::read_dir(ops.join("grafana/dashboards")).expect("ops/grafana/dashboards")
    {
        files.push(entry.unwrap().path());
    }
    let mut names = std::collections::BTreeSet::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let identifiers =
            text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'));
        for identifier in identifiers {
            if PREFIXES.iter().any(|p| identifier.starts_with(p))
                || identifier.starts_with("projector_")
            {
                names.insert(identifier.to_owned());
            }
        }
    }
    assert!(
        names.len() >= 10,
        "the dashboards and alerts read metrics: {names:?}"
    );
    names
}

async fn the_local_server_serves_a_purchase_and_shuts_down_cleanly() {
    with_sqlite(|store| async move {
        let server = LocalServer::start(store).await;
        let (addr, store, bus) = (server.addr, Arc::clone(&server.store), Arc::clone(&server.bus));
        let alice = server.token(ticketing_api::Role::Customer, "alice");
        let (status, doc) = http(addr, "GET", "/v1/openapi.json", None, None).await;
        assert_eq!((status, doc["openapi"].as_str().map(|v| &v[..3])), (200, Some("3.1")));
        let show_id = &server.show_on_sale().await;
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

        // The purchase shows in the metrics, and every metric the dashboard and the
        // alert rules read is exported.
        let (status, exposition) = http_text(addr, "GET", "/metrics", None, None).await;
        assert_eq!(status, 200);
        for (series, at_least) in [
            ("http_requests_total{method=\"POST\",route=\"/v1/reservations\",status=\"201\"}", 1.0),
            ("http_requests_total{method=\"GET\",route=\"/v1/customers/me/reservations\",status=\"401\"}", 1.0),
            ("http_request_duration_seconds_count{method=\"POST\",route=\"/v1/reservations\"}", 1.0),
            ("holds_total{outcome=\"granted\"}", 1.0),
            ("hold_turn_wait_seconds_count", 1.0),
            ("payments_total{outcome=\"captured\"}", 1.0),
            ("bus_publish_total{outcome=\"published\"}", 4.0),
            ("sweeper_runs_total{result=\"ok\"}", 1.0),
            ("projector_events_applied_total", 6.0),
        ] {
            let value = sample(&exposition, series).unwrap_or_else(|| panic!("{series} missing in:\n{exposition}"));
            assert!(value >= at_least, "{series} is {value}, expected at least {at_least}");
        }
        assert_eq!(sample(&exposition, "outbox_depth"), Some(0.0), "{exposition}");
        assert_eq!(sample(&exposition, "bus_breaker_open"), Some(0.0), "{exposition}");
        let exported = metric_names(&exposition);
        for used in names_used_by_dashboards_and_alerts() {
            assert!(
                exported.contains(&used) || KAFKA_ONLY.contains(&used.as_str()),
                "{used} is read by ops/ but not exported by serve"
            );
        }

        server.stop().await;
        assert!(TcpStream::connect(addr).await.is_err(), "nothing listens after shutdown");
    })
    .await;
}

/// One trace per purchase: a hold sent with a W3C `traceparent` is traced from its
/// request span through the append and the publish to the projection of each of its
/// events, all in the caller's trace (spans collected by the SDK's in-memory
/// exporter).
async fn a_hold_is_one_trace_from_the_request_through_the_append_to_the_projection() {
    use opentelemetry::trace::{SpanId, TraceId};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use tracing_subscriber::layer::SubscriberExt;

    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(ticketing_telemetry::traces::layer(&provider)),
    )
    .expect("no other subscriber in this test process");
    let caller_trace = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    let caller_span = SpanId::from_hex("00f067aa0ba902b7").unwrap();

    with_sqlite(|store| async move {
        let server = LocalServer::start(store).await;
        let show_id = server.show_on_sale().await;
        let alice = server.token(ticketing_api::Role::Customer, "alice");
        let (status, held) = request(
            server.addr,
            "POST",
            "/v1/reservations",
            Some(&alice),
            &format!("traceparent: 00-{caller_trace}-{caller_span}-01\r\n"),
            Some(json!({"show_id": show_id, "section": "Floor", "quantity": 2})),
        )
        .await;
        assert_eq!(status, 201, "{held}");
        let stored = server
            .store
            .read_all(Default::default(), 100)
            .await
            .unwrap();
        let held_events: Vec<_> = stored
            .iter()
            .filter(|e| e.event_type == "SeatsHeld" || e.event_type == "ReservationPlaced")
            .collect();
        assert_eq!(held_events.len(), 2);
        for event in &held_events {
            let traceparent = event
                .metadata
                .traceparent
                .as_deref()
                .expect("the event keeps its request's trace context");
            assert!(
                traceparent.starts_with(&format!("00-{caller_trace}-")),
                "{traceparent}"
            );
        }
        let in_caller_trace = || {
            exporter
                .get_finished_spans()
                .unwrap()
                .into_iter()
                .filter(|span| span.span_context.trace_id() == caller_trace)
                .collect::<Vec<_>>()
        };
        let spans = eventually(|| async {
            let spans = in_caller_trace();
            (spans.iter().filter(|s| s.name == "project").count() == 2).then_some(spans)
        })
        .await;
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        let request_span = spans
            .iter()
            .find(|s| s.name == "POST /v1/reservations")
            .unwrap_or_else(|| panic!("no request span in {names:?}"));
        assert_eq!(
            request_span.parent_span_id, caller_span,
            "the request continues the caller's span"
        );
        for name in ["append", "publish"] {
            assert!(names.contains(&name), "no {name} span in {names:?}");
        }
        server.stop().await;
    })
    .await;
    let _ = provider.shutdown();
}

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
async fn serve_migrates_a_new_database_and_with_no_migrate_refuses_it_by_name() {
    with_new_postgres_database(
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
