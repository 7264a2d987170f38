//! `ticketing-loadtest`: a flash-sale load test of the ticketing HTTP API, with an
//! oversell check at the end.
//!
//! 1. Set-up: create a show with one section and open its sales (or reuse one with
//!    `--show-id` and `--section`), with given tokens or tokens minted like
//!    `ticketing token` mints them.
//! 2. Load: `--buyers` concurrent buyers in a closed loop, each posting
//!    `POST /v1/reservations` with a fresh `Idempotency-Key`, for `--duration` seconds
//!    or `--until-sold-out` (at most `--max-duration`).
//! 3. Report: throughput, latency percentiles, statuses and problem types, seats
//!    granted, and the pace of the first and last tenth of the sale, as a table and
//!    with `--json FILE` as JSON.
//! 4. Checks: the seats granted against the API's availability and, with
//!    `--database-url`, against the section's `SeatsHeld` events. Exit status 1 when a
//!    check fails.
//!
//! Layout: [`args`] (command line and its checks), [`tokens`] (bearer tokens),
//! [`api`] (the HTTP calls), [`load`] (the buyers), [`report`] (figures, table,
//! JSON), [`oversell`] (the checks and their SQL). `loadtest/pgbench/` holds the same
//! hold transaction as a pgbench script, and `loadtest/README.md` how to run both.

mod api;
mod args;
mod load;
mod oversell;
mod report;
mod tokens;

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use ticketing_api::Role;
use ticketing_domain::Quantity;
use uuid::Uuid;

use crate::api::Api;
use crate::args::{Args, Settings, ShowChoice, StopRule};
use crate::load::LoadPlan;
use crate::oversell::{ApiSeats, EventStore};
use crate::report::{Report, RunInfo};

/// How often the projected availability is read while waiting for it to settle.
const SETTLE_POLL: Duration = Duration::from_millis(200);

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Args::parse().check() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    match run(settings).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The section under load.
struct Target {
    show_id: Uuid,
    section: String,
    capacity: u64,
    /// The stream prefixes of the show's other sections (see
    /// [`oversell::belongs_to`]).
    other_prefixes: Vec<String>,
}

/// Runs the whole test; `Ok(false)` when a check failed.
async fn run(settings: Settings) -> anyhow::Result<bool> {
    let api = Api::new(
        settings.targets.clone(),
        settings.buyers,
        settings.request_timeout,
    )?;
    // Before the load: a wrong database URL should not cost a whole run.
    let store = match &settings.database_url {
        Some(url) => Some(EventStore::connect(url).await?),
        None => None,
    };
    let mut secret = None;
    let mut signing_secret = || -> anyhow::Result<Vec<u8>> {
        if secret.is_none() {
            secret = Some(tokens::signing_secret(Path::new("."))?);
        }
        Ok(secret.clone().unwrap_or_default())
    };

    let target = set_up(&api, &settings, &mut signing_secret).await?;
    let customer_tokens = match &settings.customer_token {
        Some(token) => vec![token.clone()],
        None => {
            let secret = signing_secret()?;
            (0..settings.buyers)
                .map(|i| tokens::mint(&secret, &tokens::buyer_subject(i), Role::Customer))
                .collect::<anyhow::Result<_>>()?
        }
    };

    let prefix = oversell::stream_prefix(&target.show_id.to_string(), &target.section);
    let api_before = api.section_seats(target.show_id, &target.section).await?;
    let store_before = match &store {
        Some(store) => Some(store.section_seats(&prefix, &target.other_prefixes).await?),
        None => None,
    };

    eprintln!(
        "loading show {} section {:?} ({} seats, {} taken) with {} buyers...",
        target.show_id,
        target.section,
        target.capacity,
        api_before.taken(),
        settings.buyers
    );
    let plan = LoadPlan {
        show_id: target.show_id,
        section: target.section.clone(),
        quantity: settings.quantity,
        stop: settings.stop,
        customer_tokens,
        buyers: settings.buyers,
        pay: settings.pay,
    };
    let outcome = load::run(&api, &plan).await?;
    let granted = outcome.tally.seats_granted();

    eprintln!("load done; waiting for the projected availability to settle...");
    let api_after = settled_seats(&api, &target, api_before, granted, settings.settle_timeout)
        .await
        .context("reading the availability after the load")?;
    let mut checks = oversell::api_checks(granted, api_before, api_after);
    if let (Some(store), Some(before)) = (&store, store_before) {
        let after = store
            .section_seats(&prefix, &target.other_prefixes)
            .await
            .context("reading the section's events")?;
        checks.extend(oversell::store_checks(
            granted,
            target.capacity,
            before,
            after,
        ));
    }

    let run = RunInfo {
        reservations_url: settings.targets.reservations.clone(),
        show_id: target.show_id.to_string(),
        section: target.section.clone(),
        capacity: target.capacity,
        buyers: settings.buyers,
        quantity: settings.quantity,
        mode: match settings.stop {
            StopRule::After(_) => "duration",
            StopRule::UntilSoldOut { .. } => "until_sold_out",
        },
        stop_reason: outcome.stop_reason,
        elapsed_seconds: outcome.elapsed.as_secs_f64(),
    };
    let report = Report::new(run, &outcome.tally, checks);
    print!("{}", report.render());
    if store.is_none() {
        println!("(no --database-url: the SQL checks were skipped)");
    }
    if let Some(path) = &settings.json {
        let json = serde_json::to_string_pretty(&report).context("encoding the report")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report.passed)
}

/// Creates the show and opens its sales, or checks the reused one.
async fn set_up(
    api: &Api,
    settings: &Settings,
    signing_secret: &mut impl FnMut() -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<Target> {
    let (show_id, section) = match &settings.show {
        ShowChoice::Create {
            section,
            capacity,
            buckets,
        } => {
            let token = match &settings.organizer_token {
                Some(token) => token.clone(),
                None => tokens::mint(
                    &signing_secret()?,
                    tokens::ORGANIZER_SUBJECT,
                    Role::Organizer,
                )?,
            };
            // The largest per-order limit the domain allows, so that no --quantity is
            // refused for it.
            let show_id = api
                .create_show(&token, section, *capacity, *buckets, Quantity::MAX)
                .await
                .context("creating the show")?;
            api.open_sales(&token, show_id)
                .await
                .context("opening the show's sales")?;
            let split = buckets.map_or_else(
                || "the server's default buckets".to_owned(),
                |b| format!("{b} bucket(s)"),
            );
            eprintln!(
                "created show {show_id} with section {section:?} of {capacity} seats in {split}, sales open"
            );
            (show_id, section.clone())
        }
        ShowChoice::Reuse { show_id, section } => (*show_id, section.clone()),
    };

    let show = api.show(show_id).await.context("reading the show")?;
    let Some(chosen) = show.section(&section) else {
        let names: Vec<_> = show.sections.iter().map(|s| s.name.as_str()).collect();
        bail!("show {show_id} has no section {section:?} (it has {names:?})");
    };
    if show.sales != "on_sale" {
        bail!(
            "the sales of show {show_id} are {:?}, not on_sale",
            show.sales
        );
    }
    if settings.quantity > show.max_per_order {
        bail!(
            "--quantity {} is above show {show_id}'s limit of {} seats per order",
            settings.quantity,
            show.max_per_order
        );
    }
    let id = show_id.to_string();
    let other_prefixes = show
        .sections
        .iter()
        .filter(|s| s.name.to_lowercase() != section.to_lowercase())
        .map(|s| oversell::stream_prefix(&id, &s.name))
        .collect();
    Ok(Target {
        show_id,
        section: chosen.name.clone(),
        capacity: u64::from(chosen.capacity),
        other_prefixes,
    })
}

/// The section's seats once the projection shows every seat granted, or as they are
/// when `timeout` runs out (the availability trails the commands by a batch).
async fn settled_seats(
    api: &Api,
    target: &Target,
    before: ApiSeats,
    granted: u64,
    timeout: Duration,
) -> anyhow::Result<ApiSeats> {
    let give_up = Instant::now() + timeout;
    loop {
        let seats = api.section_seats(target.show_id, &target.section).await?;
        if seats.taken() == before.taken() + granted || Instant::now() >= give_up {
            return Ok(seats);
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}
