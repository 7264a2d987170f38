//! `ticketing`: the command-line entry point. It only wires configuration to the
//! library crates.
//!
//! - `ticketing demo`: the purchase end to end, then the failure paths.
//! - `ticketing serve`: the HTTP API, the timeout sweeper, the outbox relay and (on
//!   the in-process bus) the projector in one process.
//! - `ticketing token`: a development token for the local server.
//! - `ticketing migrate`: applies the database migrations.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ticketing_api::auth::{mint_hs256, mint_scanner_hs256, VerificationKey};
use ticketing_api::Role;
use ticketing_cli::{demo, dev_secret, serve};
use ticketing_store::StoreConfig;

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

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    Organizer,
    Customer,
    Admin,
    Scanner,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Organizer => Role::Organizer,
            RoleArg::Customer => Role::Customer,
            RoleArg::Admin => Role::Admin,
            RoleArg::Scanner => Role::Scanner,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a purchase end to end (create a show, hold 2 seats, pay, confirm) and the
    /// failure paths (declined card, expired hold, sold out), printing every step.
    Demo,
    /// Serves every route of the API with the timeout sweeper running on a timer.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Seconds between two sweeps of expired holds and unfinished payments.
        #[arg(long, env = "SWEEP_INTERVAL_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
        sweep_every: u64,
        /// Refuse to start on a database that lacks a migration instead of applying
        /// it (for a deployment whose schema changes go through `ticketing migrate`).
        #[arg(long)]
        no_migrate: bool,
    },
    /// Prints a signed development token (HS256) for the local server: with
    /// `JWT_HS256_SECRET` if set, else the development secret of the embedded default.
    Token {
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The subject: the organizer's or customer's id (a scanner's own name).
        #[arg(long)]
        sub: String,
        /// For a scanner: the organizer whose shows it checks tickets in for.
        #[arg(long, required_if_eq("role", "scanner"))]
        org: Option<String>,
        /// How long the token is valid, in minutes.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(i64).range(1..=10080))]
        ttl_minutes: i64,
    },
    /// Applies the event store's migrations to the configured database.
    Migrate,
    /// Prints a new ticket signing key as `TICKET_SIGNING_KEYS` reads it. To rotate,
    /// put the new key first and keep the old one after it until its tickets are used.
    Keygen {
        /// The key id that codes signed with it carry (1-32 of `A-Z a-z 0-9 _ -`).
        #[arg(long, default_value = "k1")]
        kid: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before anything reads the environment; a variable already set wins.
    ticketing_store::load_env_file()?;
    // Warnings only by default, so that the demo's own output stays readable;
    // RUST_LOG=info (or finer) for more, LOG_FORMAT=json for structured logs.
    let _telemetry = ticketing_telemetry::init(ticketing_telemetry::Logging {
        service: "ticketing".into(),
        default_level: "warn",
        json_by_default: false,
        lambda: false,
    });
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
            let (store, read_models) = ticketing_read_models::connect_with_read_models(&config)
                .await
                .with_context(|| format!("connecting to {}", describe(&config)))?;
            demo::run(
                store,
                read_models,
                &describe(&config),
                &mut std::io::stdout(),
            )
            .await?;
        }
        Command::Keygen { kid } => {
            let entry = format!("{kid}={}", ticketing_app::TicketKeys::generate_seed());
            ticketing_app::TicketKeys::parse(&entry).context("--kid")?;
            println!("{entry}");
        }
        Command::Token {
            role,
            sub,
            org,
            ttl_minutes,
        } => {
            ticketing_domain::CustomerId::parse(&sub).context("--sub")?;
            let (secret, _) = dev_secret::signing_secret(Path::new("."))?;
            let valid_for = chrono::TimeDelta::minutes(ttl_minutes);
            let token = match (role, org) {
                (RoleArg::Scanner, Some(org)) => {
                    ticketing_domain::OrganizerId::parse(&org).context("--org")?;
                    mint_scanner_hs256(&secret, &sub, &org, valid_for)
                }
                (role, _) => mint_hs256(&secret, &sub, role.into(), valid_for),
            }
            .context("signing the token")?;
            println!("{token}");
        }
        Command::Serve {
            addr,
            sweep_every,
            no_migrate,
        } => {
            // As `demo` does: a new database just works. With --no-migrate, connecting
            // refuses a database whose schema is behind.
            if !no_migrate {
                ticketing_store::migrate(&config)
                    .await
                    .context("applying the migrations (--no-migrate to refuse instead)")?;
            }
            let (store, read_models) = ticketing_read_models::connect_with_read_models(&config)
                .await
                .with_context(|| format!("connecting to {}", describe(&config)))?;
            let mut auth = ticketing_api::config::auth_from_env()?;
            if auth.key.is_none() {
                let secret = dev_secret::development_secret(Path::new("."))?;
                auth.key = Some(VerificationKey::Hs256Secret(secret));
                eprintln!(
                    "verifying tokens with the development secret in {}; get one with `ticketing token --role customer --sub alice`",
                    dev_secret::DEV_SECRET_FILE
                );
            }
            let settings = ticketing_api::config::settings_from_env()?;
            let ticket_keys = match ticketing_api::config::ticket_keys_from_env()? {
                Some(keys) => keys,
                None => {
                    eprintln!(
                        "signing tickets with a key derived from {}; set TICKET_SIGNING_KEYS for your own (`ticketing keygen`)",
                        dev_secret::DEV_SECRET_FILE
                    );
                    dev_secret::development_ticket_keys(Path::new("."))?
                }
            };
            // KAFKA_BROKERS set: RedPanda/Kafka; unset: an in-process bus, and the server
            // runs the projector itself. Either way the relay publishes what a command
            // could not.
            let bus = ticketing_bus::connect(&ticketing_bus::BusConfig::from_env().await?)
                .context("connecting the event bus")?;
            let state = ticketing_api::config::state_with_bus(
                store,
                read_models,
                Some(bus.publisher()),
                &auth,
                settings,
                Some(ticket_keys),
            )?;
            eprintln!("serving the API on http://{addr}/v1 with {}; OpenAPI at http://{addr}/v1/openapi.json", describe(&config));
            let options = serve::ServeOptions {
                addr,
                sweep_every: Duration::from_secs(sweep_every),
            };
            serve::run(
                state,
                Some(bus),
                options,
                ticketing_telemetry::shutdown_signal(),
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
            ticketing_store::DEFAULT_SQLITE_PATH
        )
    })
}
