//! `ticketing serve`: every route of the API on one local HTTP server, with the
//! timeout sweeper on a timer and the outbox relay, on the embedded default or on
//! PostgreSQL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ticketing_api::{ApiState, RouteGroup};
use ticketing_app::sweeper::SweepLimits;
use ticketing_app::CommandContext;
use ticketing_bus::{run_relay, EventBus, RelaySettings};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How the local server runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub addr: SocketAddr,
    pub sweep_every: Duration,
}

/// Serves until `shutdown` resolves, then stops accepting, lets requests in flight
/// finish, and stops the sweeper and the relay.
///
/// # Errors
/// When the address cannot be bound or the server fails.
pub async fn run(
    state: ApiState,
    bus: Option<Arc<dyn EventBus>>,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(options.addr)
        .await
        .with_context(|| format!("binding {}", options.addr))?;
    serve_on(listener, state, bus, options.sweep_every, shutdown).await
}

/// As [`run`], on a listener the caller bound (tests bind port 0). With a `bus`, the
/// outbox relay publishes whatever the commands could not publish themselves.
///
/// # Errors
/// When the server fails.
pub async fn serve_on(
    listener: TcpListener,
    state: ApiState,
    bus: Option<Arc<dyn EventBus>>,
    sweep_every: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let sweeper = tokio::spawn(sweep_periodically(
        state.clone(),
        sweep_every,
        stopped.clone(),
    ));
    let relay = bus.map(|bus| {
        let store = Arc::clone(state.ticketing.store());
        let mut stopped = stopped;
        tokio::spawn(async move {
            let stop = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            run_relay(store.as_ref(), bus.as_ref(), RelaySettings::default(), stop).await;
        })
    });
    let app = ticketing_api::router(state, &RouteGroup::ALL);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop.send(true);
    let _ = sweeper.await;
    if let Some(relay) = relay {
        let _ = relay.await;
    }
    served.context("serving HTTP")
}

async fn sweep_periodically(state: ApiState, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        match state
            .ticketing
            .sweep(&CommandContext::system(), SweepLimits::default())
            .await
        {
            Ok(report) => tracing::debug!(?report, "sweep done"),
            Err(error) => tracing::warn!(error.cause_chain = ?error, "sweep failed"),
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
