//! `projector`: the long-running batch projector. It only wires the process to the
//! library: the environment (`.env`), logging, the command line and the shutdown
//! signal; what each command does is in [`ticketing_projector::commands`].

use clap::Parser;
use ticketing_projector::commands::{execute, Cli};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before anything reads the environment; a variable already set wins.
    ticketing_store::load_env_file()?;
    // Structured JSON by default: the projector runs unattended and its logs go to a
    // collector. LOG_FORMAT=text for a terminal.
    let _telemetry = ticketing_telemetry::init(ticketing_telemetry::Logging {
        service: "ticketing-projector".into(),
        default_level: "info",
        json_by_default: true,
        lambda: false,
    });
    let cli = Cli::parse();
    execute(cli, ticketing_telemetry::shutdown_signal()).await
}
