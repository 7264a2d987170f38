//! `webhooks`: the Lambda function's binary. It only wires the environment to
//! [`ticketing_fn_webhooks::app`].

use lambda_http::{tracing, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // A `.env` file, for local runs; a variable already set wins.
    ticketing_store::load_env_file()?;
    ticketing_fn_support::init_logging();
    ticketing_fn_support::init_metrics();
    // Built once per cold start and shared by every invocation; the PostgreSQL pool's
    // first connection checks the schema and then serves the first request.
    let state = ticketing_api::config::state_from_env()
        .await
        .inspect_err(|e| tracing::error!(error.cause_chain = ?e, "cannot start"))?;
    lambda_http::run(ticketing_fn_support::flushing_telemetry(
        ticketing_fn_webhooks::app(state),
    ))
    .await
}
