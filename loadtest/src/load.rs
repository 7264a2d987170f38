//! The load: `buyers` tasks in a closed loop, each sending its next hold as soon as
//! the previous one is answered, until the duration ends, the section sells out, or
//! Ctrl-C. Each buyer keeps its own [`Tally`]; they are merged at the end, so that no
//! lock is shared on the hot path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use uuid::Uuid;

use crate::api::Api;
use crate::args::StopRule;
use crate::report::{StopReason, Tally};

/// How long a buyer waits after a request got no answer at all: a server that is down
/// refuses connections at once, and retrying in a tight loop would only burn the CPU
/// the server needs.
const PAUSE_AFTER_TRANSPORT_ERROR: Duration = Duration::from_millis(50);

/// What every buyer asks for.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub show_id: Uuid,
    pub section: String,
    pub quantity: u32,
    pub stop: StopRule,
    /// One token per buyer, or one shared by all (buyer `i` uses `i % len`).
    pub customer_tokens: Vec<String>,
    pub buyers: u32,
    /// Pay for each granted hold right after it.
    pub pay: bool,
}

/// The merged counts and how the load ended.
#[derive(Debug)]
pub struct LoadOutcome {
    pub tally: Tally,
    pub elapsed: Duration,
    pub stop_reason: StopReason,
}

/// What the buyers share: when to stop, and why.
struct Shared {
    started: Instant,
    deadline: Instant,
    stop: AtomicBool,
    sold_out: AtomicBool,
    interrupted: AtomicBool,
}

/// Runs the load and returns its merged tally.
///
/// # Errors
/// When a buyer task panics.
pub async fn run(api: &Api, plan: &LoadPlan) -> anyhow::Result<LoadOutcome> {
    let limit = match plan.stop {
        StopRule::After(duration) => duration,
        StopRule::UntilSoldOut { at_most } => at_most,
    };
    let started = Instant::now();
    let shared = Arc::new(Shared {
        started,
        deadline: started + limit,
        stop: AtomicBool::new(false),
        sold_out: AtomicBool::new(false),
        interrupted: AtomicBool::new(false),
    });

    let on_ctrl_c = {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: finishing the requests in flight, then reporting");
                shared.interrupted.store(true, Ordering::Relaxed);
                shared.stop.store(true, Ordering::Relaxed);
            }
        })
    };

    let until_sold_out = matches!(plan.stop, StopRule::UntilSoldOut { .. });
    let buyers: Vec<_> = (0..plan.buyers as usize)
        .map(|index| {
            let api = api.clone();
            let shared = Arc::clone(&shared);
            let token = plan.customer_tokens[index % plan.customer_tokens.len()].clone();
            let order = Order {
                show_id: plan.show_id,
                section: plan.section.clone(),
                quantity: plan.quantity,
                pay: plan.pay,
            };
            tokio::spawn(async move { buyer(&api, &shared, &token, order, until_sold_out).await })
        })
        .collect();

    let mut tally = Tally::default();
    for buyer in buyers {
        tally.merge(buyer.await.context("a buyer task failed")?);
    }
    let elapsed = started.elapsed();
    on_ctrl_c.abort();

    let stop_reason = if shared.sold_out.load(Ordering::Relaxed) {
        StopReason::SoldOut
    } else if shared.interrupted.load(Ordering::Relaxed) {
        StopReason::Interrupted
    } else if until_sold_out {
        StopReason::MaxDurationReached
    } else {
        StopReason::DurationElapsed
    };
    Ok(LoadOutcome {
        tally,
        elapsed,
        stop_reason,
    })
}

/// What one buyer asks for, again and again.
struct Order {
    show_id: Uuid,
    section: String,
    quantity: u32,
    pay: bool,
}

/// One buyer's closed loop.
async fn buyer(
    api: &Api,
    shared: &Shared,
    token: &str,
    order: Order,
    until_sold_out: bool,
) -> Tally {
    let mut tally = Tally::default();
    let mut quantity = order.quantity;
    while !shared.stop.load(Ordering::Relaxed) && Instant::now() < shared.deadline {
        let sent = Instant::now();
        match api
            .hold(token, order.show_id, &order.section, quantity)
            .await
        {
            Ok(answer) => {
                let answered = Instant::now();
                tally.record_answer(
                    answered - sent,
                    answer.status,
                    answer.problem_type.as_deref(),
                    answer.granted_seats,
                    answered - shared.started,
                );
                if let (true, Some(reservation_id)) = (order.pay, &answer.reservation_id) {
                    let paying = Instant::now();
                    match api.pay(token, reservation_id).await {
                        Ok(status) => tally.record_payment(paying.elapsed(), status),
                        Err(error) => tally.record_transport_error(transport_error_kind(&error)),
                    }
                }
                if until_sold_out && answer.is_sold_out() {
                    if quantity == 1 {
                        shared.sold_out.store(true, Ordering::Relaxed);
                        shared.stop.store(true, Ordering::Relaxed);
                    } else {
                        // Fewer seats than asked may remain: settle for one, so that
                        // the sale ends only when not a single seat is left.
                        quantity = 1;
                    }
                }
            }
            Err(error) => {
                tally.record_transport_error(transport_error_kind(&error));
                tokio::time::sleep(PAUSE_AFTER_TRANSPORT_ERROR).await;
            }
        }
    }
    tally
}

fn transport_error_kind(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "request"
    }
}
