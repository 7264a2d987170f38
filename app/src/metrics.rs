//! What the command layer counts, through the `metrics` facade: each binary decides
//! where it goes (a Prometheus scrape in `serve`, CloudWatch EMF on Lambda). Names and
//! labels are the contract of the dashboards and alert rules under `ops/`.
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `holds_total` | counter | `outcome`: granted, sold_out, contention, rejected | hold requests answered |
//! | `hold_turn_wait_seconds` | histogram | | time a command waited for its section buckets' turn |
//! | `command_version_conflicts_total` | counter | | commands decided again after another writer appended first |
//! | `bus_publish_total` | counter | `outcome`: published, deferred | commits whose events the command published itself, or left to the relay |
//! | `payments_total` | counter | `outcome`: captured, declined, unavailable, timeout, rejected | charges asked of the provider |
//! | `refunds_total` | counter | `outcome`: refunded, unavailable, timeout, rejected | refunds asked of the provider |
//! | `payment_provider_seconds` | histogram | `call`: charge, refund, find_charge | the provider's answer time |
//! | `checkins_total` | counter | `result`: admitted, already_admitted, revoked, invalid, refused | scans at the door, by answer |
//! | `sweeper_runs_total` | counter | `result`: ok, failed | sweeper runs |
//! | `sweeper_work_total` | counter | `kind` | what the sweeper did (one per [`SweepReport`] field) |

use std::time::Duration;

use ticketing_domain::DomainError;

use crate::{AppError, SweepReport};

/// Registers these metrics with the installed recorder: their descriptions, and every
/// series at zero, so that rates and alerts see them before their first occurrence.
pub fn register() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!("holds_total", "Hold requests answered, by outcome");
    describe_histogram!(
        "hold_turn_wait_seconds",
        Unit::Seconds,
        "Time a command waited for its section buckets' turn"
    );
    describe_counter!(
        "command_version_conflicts_total",
        "Commands decided again after another writer appended to their streams first"
    );
    describe_counter!(
        "bus_publish_total",
        "Commits whose events the command published itself (published) or left to the relay (deferred)"
    );
    describe_counter!(
        "payments_total",
        "Charges asked of the payment provider, by outcome"
    );
    describe_counter!(
        "refunds_total",
        "Refunds asked of the payment provider, by outcome"
    );
    describe_histogram!(
        "payment_provider_seconds",
        Unit::Seconds,
        "The payment provider's answer time, by call"
    );
    describe_counter!("checkins_total", "Scans at the door, by answer");
    describe_counter!("sweeper_runs_total", "Timeout sweeper runs, by result");
    describe_counter!(
        "sweeper_work_total",
        "What the timeout sweeper did, by kind"
    );
    for outcome in ["granted", "sold_out", "contention", "rejected"] {
        metrics::counter!("holds_total", "outcome" => outcome).absolute(0);
    }
    metrics::counter!("command_version_conflicts_total").absolute(0);
    for outcome in ["published", "deferred"] {
        metrics::counter!("bus_publish_total", "outcome" => outcome).absolute(0);
    }
    for outcome in ["captured", "declined", "unavailable", "timeout", "rejected"] {
        metrics::counter!("payments_total", "outcome" => outcome).absolute(0);
    }
    for outcome in ["refunded", "unavailable", "timeout", "rejected"] {
        metrics::counter!("refunds_total", "outcome" => outcome).absolute(0);
    }
    for result in CHECKIN_RESULTS {
        metrics::counter!("checkins_total", "result" => result).absolute(0);
    }
    for result in ["ok", "failed"] {
        metrics::counter!("sweeper_runs_total", "result" => result).absolute(0);
    }
    for kind in SWEEP_KINDS {
        metrics::counter!("sweeper_work_total", "kind" => kind).absolute(0);
    }
    // Histograms are exported, empty, once registered.
    let _ = metrics::histogram!("hold_turn_wait_seconds");
    for call in [
        "charge",
        "refund",
        "find_charge",
        "charge_status",
        "cancel_charge",
        "payment_of",
    ] {
        let _ = metrics::histogram!("payment_provider_seconds", "call" => call);
    }
}

const CHECKIN_RESULTS: [&str; 5] = [
    "admitted",
    "already_admitted",
    "revoked",
    "invalid",
    "refused",
];

/// Counts a scan's answer at the door.
pub(crate) fn checked_in<T>(result: &Result<T, AppError>) {
    let result = match result {
        Ok(_) => "admitted",
        Err(AppError::Domain(DomainError::TicketAlreadyAdmitted { .. })) => "already_admitted",
        Err(AppError::Domain(DomainError::TicketRevoked(_))) => "revoked",
        Err(AppError::InvalidTicketCode(_)) => "invalid",
        Err(_) => "refused",
    };
    metrics::counter!("checkins_total", "result" => result).increment(1);
}

const SWEEP_KINDS: [&str; 7] = [
    "holds_expired",
    "payments_confirmed",
    "payments_declined",
    "payments_abandoned",
    "authentications_cancelled",
    "purchases_refunded",
    "failures",
];

/// Counts a hold request's answer.
pub(crate) fn hold_answered<T>(result: &Result<T, AppError>) {
    let outcome = match result {
        Ok(_) => "granted",
        Err(AppError::Domain(DomainError::SoldOut { .. })) => "sold_out",
        Err(AppError::Contention { .. }) => "contention",
        Err(_) => "rejected",
    };
    metrics::counter!("holds_total", "outcome" => outcome).increment(1);
}

pub(crate) fn turn_waited(waited: Duration) {
    metrics::histogram!("hold_turn_wait_seconds").record(waited.as_secs_f64());
}

/// How many holds one batch decided together (1: a hold alone).
pub(crate) fn hold_batch(holds: usize) {
    metrics::histogram!("hold_batch_size").record(holds as f64);
}

pub(crate) fn version_conflict() {
    metrics::counter!("command_version_conflicts_total").increment(1);
}

/// Counts a commit's publish: by the command within its budget, or left to the relay.
pub(crate) fn published(by_command: bool) {
    let outcome = if by_command { "published" } else { "deferred" };
    metrics::counter!("bus_publish_total", "outcome" => outcome).increment(1);
}

pub(crate) fn swept(result: &Result<SweepReport, AppError>) {
    let Ok(report) = result else {
        metrics::counter!("sweeper_runs_total", "result" => "failed").increment(1);
        return;
    };
    metrics::counter!("sweeper_runs_total", "result" => "ok").increment(1);
    let counts = [
        report.holds_expired,
        report.payments_confirmed,
        report.payments_declined,
        report.payments_abandoned,
        report.authentications_cancelled,
        report.purchases_refunded,
        report.failures,
    ];
    for (kind, count) in SWEEP_KINDS.into_iter().zip(counts) {
        metrics::counter!("sweeper_work_total", "kind" => kind).increment(u64::from(count));
    }
}
