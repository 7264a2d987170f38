//! `ticketing`: the command-line entry point. It only wires configuration to the
//! library crates.
//!
//! - `ticketing demo`: the purchase end to end, then the failure paths.
//! - `ticketing migrate`: applies the database migrations.

use ticketing_cli::demo;

use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ticketing_store::StoreConfig;
use tracing_subscriber::EnvFilter;

/// A serverless, event-sourced ticketing backend.
#[derive(Debug, Parser)]
#[command(name = "ticketing", version, about)]
struct Cli {
    /// The event store: a `postgres://` or `sqlite:` URL. Without one, an embedded
    /// SQLite file `ticketing.db` in the working directory.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a purchase end to end (create a show, hold 2 seats, pay, confirm) and the
    /// failure paths (declined card, expired hold, sold out), printing every step.
    Demo,
    /// Applies the event store's migrations to the configured database.
    Migrate,
}

fn init_logging() {
    // Warnings only by default, so that the demo's own output stays readable;
    // RUST_LOG=info (or finer) for more, LOG_FORMAT=json for structured logs.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let cli = Cli::parse();
    let config = StoreConfig {
        database_url: cli.database_url.filter(|url| !url.trim().is_empty()),
        ..StoreConfig::from_env().context("reading the store configuration")?
    };
    match cli.command {
        Command::Migrate => {
            ticketing_store::migrate(&config)
                .await
                .context("applying the migrations")?;
            println!("migrations applied to {}", describe(&config));
        }
        Command::Demo => {
            ticketing_store::migrate(&config)
                .await
                .context("applying the migrations")?;
            let store = ticketing_store::connect(&config)
                .await
                .with_context(|| format!("connecting to {}", describe(&config)))?;
            demo::run(
                Arc::clone(&store),
                &describe(&config),
                &mut std::io::stdout(),
            )
            .await?;
        }
    }
    Ok(())
}

/// Where the events are kept, without any password.
fn describe(config: &StoreConfig) -> String {
    config.redacted_url().unwrap_or_else(|| {
        format!(
            "the embedded store ({})",
            ticketing_store::config::DEFAULT_SQLITE_PATH
        )
    })
}
