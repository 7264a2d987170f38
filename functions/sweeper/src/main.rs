//! `sweeper`: the scheduled Lambda function's binary. It only wires the environment
//! to [`ticketing_fn_sweeper::handle`].

use lambda_runtime::{service_fn, tracing, Error, LambdaEvent};
use ticketing_fn_sweeper::{handle, ScheduledEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // A `.env` file, for local runs; a variable already set wins.
    ticketing_store::load_env_file()?;
    ticketing_fn_support::init_logging();
    ticketing_fn_support::init_metrics();
    // Built once per cold start and shared by every invocation.
    let ticketing = ticketing_fn_sweeper::ticketing_from_env()
        .await
        .inspect_err(|e| tracing::error!(error.cause_chain = ?e, "cannot start"))?;
    let ticketing = &ticketing;
    let limits = ticketing_fn_sweeper::sweep_limits_from_env()
        .inspect_err(|e| tracing::error!(error.cause_chain = ?e, "cannot start"))?;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ScheduledEvent>| async move {
            let swept = handle(ticketing, limits, event).await;
            ticketing_fn_support::flush_telemetry();
            swept
        },
    ))
    .await
}
