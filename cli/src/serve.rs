//! `ticketing serve`: every route of the API on one local HTTP server, with the
//! timeout sweeper on a timer and the outbox relay, on the embedded default or on
//! PostgreSQL. On the in-process bus it also runs the projector, so that the
//! projected reads (availability, sales, history) follow the commands with no other
//! service; on Kafka the separate projector service does that. `GET /metrics` serves
//! the process's metrics for Prometheus.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ticketing_api::{ApiState, RouteGroup};
use ticketing_app::sweeper::SweepLimits;
use ticketing_app::CommandContext;
use ticketing_bus::{run_relay, Bus, InProcessBus, RelaySettings};
use ticketing_projector::{run_live, LiveSettings, Projector, ProjectorMetrics};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How the local server runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub addr: SocketAddr,
    pub sweep_every: Duration,
}

/// Serves until `shutdown` resolves, then stops accepting, lets requests in flight
/// finish, and stops the sweeper, the relay and the projector.
///
/// # Errors
/// When the address cannot be bound or the server fails.
pub async fn run(
    state: ApiState,
    bus: Option<Bus>,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(options.addr)
        .await
        .with_context(|| format!("binding {}", options.addr))?;
    serve_on(listener, state, bus, options.sweep_every, shutdown).await
}

/// As [`run`], on a listener the caller bound (tests bind port 0). With a `bus`, the
/// outbox relay publishes whatever the commands could not publish themselves; with
/// the in-process bus, the projector keeps the read models up to date. `state` should
/// publish to the same `bus`.
///
/// # Errors
/// When the server fails.
pub async fn serve_on(
    listener: TcpListener,
    state: ApiState,
    bus: Option<Bus>,
    sweep_every: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let sweeper = tokio::spawn(sweep_periodically(
        state.clone(),
        sweep_every,
        stopped.clone(),
    ));
    let projector = match &bus {
        Some(Bus::InProcess(bus)) => Some(tokio::spawn(project_live(
            state.clone(),
            bus,
            stopped.clone(),
        ))),
        Some(Bus::Kafka(_)) => {
            tracing::info!(
                "events go to Kafka: the projector service, not this server, updates the read models"
            );
            None
        }
        None => None,
    };
    let relay = bus.map(|bus| {
        let bus = bus.publisher();
        let store = Arc::clone(state.ticketing.store());
        let mut stopped = stopped;
        tokio::spawn(async move {
            let stop = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            run_relay(store.as_ref(), bus.as_ref(), RelaySettings::default(), stop).await;
        })
    });
    let metrics = ticketing_telemetry::prometheus();
    ticketing_api::metrics::register();
    ProjectorMetrics::register();
    let app = ticketing_api::router(state, &RouteGroup::ALL).route(
        "/metrics",
        axum::routing::get(move || {
            let exposition = metrics.render();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    exposition,
                )
            }
        }),
    );
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop.send(true);
    let _ = sweeper.await;
    if let Some(relay) = relay {
        let _ = relay.await;
    }
    if let Some(projector) = projector {
        let _ = projector.await;
    }
    served.context("serving HTTP")
}

/// The projector on the in-process bus: catches up with what was committed while no
/// projector ran (the bus keeps nothing across restarts), then follows the bus until
/// `stop`. The source is subscribed before that catch-up, here, before the server
/// accepts its first command, so nothing falls between the two; what both see is
/// applied once (the projector skips duplicates).
fn project_live(
    state: ApiState,
    bus: &InProcessBus,
    mut stop: watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut source = bus.source();
    async move {
        let projector = Projector::new(Arc::clone(state.ticketing.store()), state.read_models);
        let settings = LiveSettings::default();
        match projector.catch_up(settings.catch_up_batch, |_| {}).await {
            Ok(progress) => tracing::info!(events = progress.events, "read models caught up"),
            Err(error) => tracing::warn!(
                error.cause_chain = ?error,
                "catching the read models up failed; projecting new events only"
            ),
        }
        let shutdown = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        let metrics = ProjectorMetrics::new();
        let report = run_live(&projector, &mut source, &settings, &metrics, shutdown).await;
        tracing::info!(?report, "projector stopped");
    }
}

async fn sweep_periodically(state: ApiState, every: Duration, mut stop: watch::Receiver<bool>) {
    // While what the sweep needs is down, the pause doubles (up to ten minutes) rather
    // than fail on every tick.
    let mut backoff = ticketing_bus::Backoff::new(every, Duration::from_secs(600));
    let mut pause = every;
    loop {
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
        match state
            .ticketing
            .sweep(&CommandContext::system(), SweepLimits::default())
            .await
        {
            Ok(report) => {
                backoff.succeeded();
                pause = every;
                tracing::debug!(?report, "sweep done");
            }
            Err(error) => {
                pause = backoff.failed();
                tracing::warn!(
                    error.cause_chain = ?error,
                    failures = backoff.failures(),
                    retry_in = ?pause,
                    "sweep failed"
                );
            }
        }
    }
}
