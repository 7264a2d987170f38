//! `projector-fn`: the Lambda function's binary. It only wires the environment to
//! [`ticketing_fn_projector::Handler`].

use aws_lambda_events::event::kafka::KafkaEvent;
use lambda_runtime::{service_fn, tracing, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // A `.env` file, for local runs; a variable already set wins.
    ticketing_store::load_env_file()?;
    ticketing_fn_support::init_logging();
    ticketing_fn_support::init_metrics();
    // Built once per cold start and shared by every invocation; the PostgreSQL pool
    // and the DynamoDB client connect on first use.
    let handler = ticketing_fn_projector::Handler::from_env()
        .await
        .inspect_err(|e| tracing::error!(error.cause_chain = ?e, "cannot start"))?;
    let handler = &handler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<KafkaEvent>| async move {
            let response = handler.handle(event.payload).await;
            ticketing_fn_support::flush_telemetry();
            Ok::<_, Error>(response)
        },
    ))
    .await
}
