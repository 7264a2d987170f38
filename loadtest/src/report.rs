//! What a run measured, and how it is shown: the buyers' tallies, merged; latency
//! percentiles; the pace of the first and last tenth of the granted seats; the
//! human-readable table and the JSON document (the same figures).
//!
//! Everything here is pure: no clock, no network.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::oversell::Check;

/// The slowest latency a histogram records exactly, in microseconds (one hour); a
/// slower answer is recorded as this.
const LATENCY_CEILING_MICROS: u64 = 3_600_000_000;

/// A new latency histogram in microseconds, to three significant digits.
fn latency_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, LATENCY_CEILING_MICROS, 3).expect("valid histogram bounds")
}

/// Seats granted by one `201` answer, and when the answer arrived (since the load
/// started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub at: Duration,
    pub seats: u32,
}

/// One buyer's counts, or several buyers' merged.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Every answered hold request, whatever its status (microseconds).
    pub latency_all: Histogram<u64>,
    /// The `201` answers only (microseconds).
    pub latency_granted: Histogram<u64>,
    pub statuses: BTreeMap<u16, u64>,
    /// The `type` of problem+json answers.
    pub problem_types: BTreeMap<String, u64>,
    /// Requests that got no HTTP answer, by kind (connect, timeout, ...).
    pub transport_errors: BTreeMap<String, u64>,
    pub grants: Vec<Grant>,
    /// Every answered payment (`--pay`), in microseconds, and its statuses.
    pub latency_payments: Histogram<u64>,
    pub payment_statuses: BTreeMap<u16, u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            latency_all: latency_histogram(),
            latency_granted: latency_histogram(),
            statuses: BTreeMap::new(),
            problem_types: BTreeMap::new(),
            transport_errors: BTreeMap::new(),
            grants: Vec::new(),
            latency_payments: latency_histogram(),
            payment_statuses: BTreeMap::new(),
        }
    }
}

impl Tally {
    /// Counts one HTTP answer. `granted_seats` is set for a `201`.
    pub fn record_answer(
        &mut self,
        latency: Duration,
        status: u16,
        problem_type: Option<&str>,
        granted_seats: Option<u32>,
        at: Duration,
    ) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_all.saturating_record(micros.max(1));
        *self.statuses.entry(status).or_default() += 1;
        if let Some(kind) = problem_type {
            *self.problem_types.entry(kind.to_owned()).or_default() += 1;
        }
        if let Some(seats) = granted_seats {
            self.latency_granted.saturating_record(micros.max(1));
            self.grants.push(Grant { at, seats });
        }
    }

    /// Counts one answered payment.
    pub fn record_payment(&mut self, latency: Duration, status: u16) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_payments.saturating_record(micros.max(1));
        *self.payment_statuses.entry(status).or_default() += 1;
    }

    /// Counts a request that got no HTTP answer.
    pub fn record_transport_error(&mut self, kind: &str) {
        *self.transport_errors.entry(kind.to_owned()).or_default() += 1;
    }

    /// Adds `other`'s counts to these; grants stay in the order they arrived.
    pub fn merge(&mut self, other: Tally) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency_all.add(&other.latency_all);
        let _ = self.latency_granted.add(&other.latency_granted);
        let _ = self.latency_payments.add(&other.latency_payments);
        for (status, n) in other.payment_statuses {
            *self.payment_statuses.entry(status).or_default() += n;
        }
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        for (kind, n) in other.problem_types {
            *self.problem_types.entry(kind).or_default() += n;
        }
        for (kind, n) in other.transport_errors {
            *self.transport_errors.entry(kind).or_default() += n;
        }
        self.grants.extend(other.grants);
        self.grants.sort_by_key(|g| g.at);
    }

    pub fn requests(&self) -> u64 {
        self.latency_all.len() + self.transport_errors.values().sum::<u64>()
    }

    pub fn seats_granted(&self) -> u64 {
        self.grants.iter().map(|g| u64::from(g.seats)).sum()
    }
}

/// Latency percentiles of a set of requests, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    /// `None` for an empty histogram (of microseconds).
    pub fn of(histogram: &Histogram<u64>) -> Option<Self> {
        if histogram.is_empty() {
            return None;
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Some(Self {
            count: histogram.len(),
            mean_ms: histogram.mean() / 1000.0,
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p95_ms: ms(histogram.value_at_quantile(0.95)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        })
    }
}

/// The grants of one stretch of the sale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PaceWindow {
    pub seats: u64,
    pub holds: u64,
    pub seconds: f64,
    pub seats_per_second: f64,
}

/// How fast the first and the last tenth of the granted seats went: on a sellout, a
/// ratio well below 1 says that holds slow down as the section's stream grows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SellingPace {
    /// From the start of the load to the grant that reached a tenth of the seats.
    pub first_tenth: PaceWindow,
    /// From the last grant still within the first nine tenths to the last grant.
    pub last_tenth: PaceWindow,
    /// `last_tenth.seats_per_second / first_tenth.seats_per_second`.
    pub ratio_last_to_first: f64,
}

/// The pace of the first and last tenth of `grants` (in arrival order). `None` with
/// fewer than two grants, or when a window took no measurable time.
pub fn selling_pace(grants: &[Grant]) -> Option<SellingPace> {
    if grants.len() < 2 {
        return None;
    }
    let total: u64 = grants.iter().map(|g| u64::from(g.seats)).sum();
    // A tenth as a fraction, so that 15 seats have a tenth of 1.5 (reached at 2).
    let tenth = total as f64 / 10.0;
    let mut cumulative = Vec::with_capacity(grants.len());
    let mut seats = 0u64;
    for grant in grants {
        seats += u64::from(grant.seats);
        cumulative.push(seats);
    }

    // The first grant whose running total reaches a tenth.
    let first_end = cumulative.iter().position(|&c| c as f64 >= tenth)?;
    let first = window(
        cumulative[first_end],
        first_end as u64 + 1,
        grants[first_end].at,
    )?;

    // The last grant whose running total is still within nine tenths opens the last
    // window; none means the last tenth began with the load.
    let last_start = cumulative
        .iter()
        .rposition(|&c| c as f64 <= total as f64 - tenth);
    let (seats_before, started_at, holds) = match last_start {
        Some(i) => (cumulative[i], grants[i].at, (grants.len() - 1 - i) as u64),
        None => (0, Duration::ZERO, grants.len() as u64),
    };
    let ended_at = grants[grants.len() - 1].at;
    let last = window(
        total - seats_before,
        holds,
        ended_at.saturating_sub(started_at),
    )?;

    Some(SellingPace {
        first_tenth: first,
        last_tenth: last,
        ratio_last_to_first: last.seats_per_second / first.seats_per_second,
    })
}

fn window(seats: u64, holds: u64, took: Duration) -> Option<PaceWindow> {
    let seconds = took.as_secs_f64();
    (seconds > 0.0).then(|| PaceWindow {
        seats,
        holds,
        seconds,
        seats_per_second: seats as f64 / seconds,
    })
}

/// Why the load stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// `--duration` elapsed.
    DurationElapsed,
    /// A request for one seat was answered sold out.
    SoldOut,
    /// `--until-sold-out` reached `--max-duration` first.
    MaxDurationReached,
    /// Ctrl-C.
    Interrupted,
}

impl StopReason {
    fn describe(self) -> &'static str {
        match self {
            Self::DurationElapsed => "duration elapsed",
            Self::SoldOut => "sold out",
            Self::MaxDurationReached => "max duration reached before selling out",
            Self::Interrupted => "interrupted",
        }
    }
}

/// What was run against what.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub reservations_url: String,
    pub show_id: String,
    pub section: String,
    pub capacity: u64,
    pub buyers: u32,
    pub quantity: u32,
    /// `until_sold_out` or `duration`.
    pub mode: &'static str,
    pub stop_reason: StopReason,
    pub elapsed_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub requests: u64,
    pub requests_per_second: f64,
    /// `201` answers.
    pub holds: u64,
    pub holds_per_second: f64,
    pub seats_granted: u64,
    pub seats_per_second: f64,
    pub capacity: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latencies {
    pub all: Option<LatencySummary>,
    pub granted: Option<LatencySummary>,
}

/// The payments of a `--pay` run: one right after each granted hold.
#[derive(Debug, Clone, Serialize)]
pub struct Payments {
    pub answered: u64,
    /// `200` answers: paid and confirmed.
    pub confirmed: u64,
    pub confirmed_per_second: f64,
    pub latency_ms: Option<LatencySummary>,
    pub statuses: BTreeMap<u16, u64>,
}

/// The whole report: printed as a table, written as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run: RunInfo,
    pub throughput: Throughput,
    pub latency_ms: Latencies,
    /// Status code → count (the code as a string in JSON).
    pub statuses: BTreeMap<u16, u64>,
    pub problem_types: BTreeMap<String, u64>,
    pub transport_errors: BTreeMap<String, u64>,
    pub selling_pace: Option<SellingPace>,
    /// The payments of `--pay` runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payments: Option<Payments>,
    pub checks: Vec<Check>,
    /// Every check passed.
    pub passed: bool,
}

impl Report {
    /// Builds the report of a run from the merged tally (grants in arrival order).
    pub fn new(run: RunInfo, tally: &Tally, checks: Vec<Check>) -> Self {
        let per_second = |n: u64| {
            if run.elapsed_seconds > 0.0 {
                n as f64 / run.elapsed_seconds
            } else {
                0.0
            }
        };
        let holds = tally.grants.len() as u64;
        let seats_granted = tally.seats_granted();
        let throughput = Throughput {
            requests: tally.requests(),
            requests_per_second: per_second(tally.requests()),
            holds,
            holds_per_second: per_second(holds),
            seats_granted,
            seats_per_second: per_second(seats_granted),
            capacity: run.capacity,
        };
        let passed = checks.iter().all(|c| c.passed);
        Self {
            throughput,
            latency_ms: Latencies {
                all: LatencySummary::of(&tally.latency_all),
                granted: LatencySummary::of(&tally.latency_granted),
            },
            statuses: tally.statuses.clone(),
            problem_types: tally.problem_types.clone(),
            transport_errors: tally.transport_errors.clone(),
            selling_pace: selling_pace(&tally.grants),
            payments: (!tally.payment_statuses.is_empty()).then(|| {
                let confirmed = tally.payment_statuses.get(&200).copied().unwrap_or(0);
                Payments {
                    answered: tally.latency_payments.len(),
                    confirmed,
                    confirmed_per_second: per_second(confirmed),
                    latency_ms: LatencySummary::of(&tally.latency_payments),
                    statuses: tally.payment_statuses.clone(),
                }
            }),
            checks,
            passed,
            run,
        }
    }

    /// The human-readable table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_table(&mut out);
        out
    }

    fn write_table(&self, out: &mut String) -> std::fmt::Result {
        let run = &self.run;
        let t = &self.throughput;
        writeln!(
            out,
            "flash sale on {}: show {}, section \"{}\", capacity {}",
            run.reservations_url, run.show_id, run.section, run.capacity
        )?;
        writeln!(
            out,
            "{} buyers x {} seat(s), {}; stopped after {:.2} s: {}",
            run.buyers,
            run.quantity,
            run.mode.replace('_', " "),
            run.elapsed_seconds,
            run.stop_reason.describe()
        )?;

        writeln!(
            out,
            "\n{:<22}{:>10}{:>14}",
            "throughput", "count", "per second"
        )?;
        writeln!(
            out,
            "  {:<20}{:>10}{:>14.1}",
            "requests", t.requests, t.requests_per_second
        )?;
        writeln!(
            out,
            "  {:<20}{:>10}{:>14.1}",
            "holds (201)", t.holds, t.holds_per_second
        )?;
        writeln!(
            out,
            "  {:<20}{:>10}{:>14.1}",
            "seats granted", t.seats_granted, t.seats_per_second
        )?;
        let share = if t.capacity > 0 {
            100.0 * t.seats_granted as f64 / t.capacity as f64
        } else {
            0.0
        };
        writeln!(
            out,
            "  {:<20}{:>10}  ({:.1} % of {} seats)",
            "of capacity", t.capacity, share, t.capacity
        )?;

        writeln!(
            out,
            "\n{:<22}{:>8}{:>9}{:>9}{:>9}{:>9}{:>9}",
            "latency (ms)", "count", "mean", "p50", "p95", "p99", "max"
        )?;
        for (name, summary) in [
            ("all answers", &self.latency_ms.all),
            ("granted (201)", &self.latency_ms.granted),
        ] {
            match summary {
                Some(s) => writeln!(
                    out,
                    "  {:<20}{:>8}{:>9.2}{:>9.2}{:>9.2}{:>9.2}{:>9.2}",
                    name, s.count, s.mean_ms, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms
                )?,
                None => writeln!(out, "  {name:<20}{:>8}", 0)?,
            }
        }

        if let Some(payments) = &self.payments {
            writeln!(
                out,
                "\npayments: {} answered, {} confirmed ({:.1} per second), statuses {:?}",
                payments.answered,
                payments.confirmed,
                payments.confirmed_per_second,
                payments.statuses
            )?;
            if let Some(s) = &payments.latency_ms {
                writeln!(
                    out,
                    "  {:<20}{:>8}{:>9.2}{:>9.2}{:>9.2}{:>9.2}{:>9.2}",
                    "payment (ms)", s.count, s.mean_ms, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms
                )?;
            }
        }

        writeln!(out, "\n{:<22}{:>10}", "HTTP status", "count")?;
        for (status, n) in &self.statuses {
            writeln!(out, "  {status:<20}{n:>10}")?;
        }
        for (kind, n) in &self.transport_errors {
            writeln!(out, "  {:<20}{n:>10}", format!("no answer ({kind})"))?;
        }
        if !self.problem_types.is_empty() {
            writeln!(out, "\n{:<42}{:>10}", "problem type", "count")?;
            for (kind, n) in &self.problem_types {
                writeln!(out, "  {kind:<40}{n:>10}")?;
            }
        }

        writeln!(
            out,
            "\n{:<22}{:>10}{:>10}{:>11}{:>12}",
            "selling pace", "seats", "holds", "seconds", "seats/s"
        )?;
        match &self.selling_pace {
            Some(pace) => {
                for (name, w) in [
                    ("first tenth", &pace.first_tenth),
                    ("last tenth", &pace.last_tenth),
                ] {
                    writeln!(
                        out,
                        "  {:<20}{:>10}{:>10}{:>11.3}{:>12.1}",
                        name, w.seats, w.holds, w.seconds, w.seats_per_second
                    )?;
                }
                writeln!(
                    out,
                    "  {:<20}{:>43.2}",
                    "ratio last/first", pace.ratio_last_to_first
                )?;
            }
            None => writeln!(out, "  too few grants to compare")?,
        }

        writeln!(out, "\nchecks")?;
        for check in &self.checks {
            let mark = if check.passed { "PASS" } else { "FAIL" };
            writeln!(out, "  {mark}  {}: {}", check.name, check.detail)?;
        }
        writeln!(
            out,
            "\nresult: {}",
            if self.passed {
                "PASS"
            } else {
                "FAIL (see checks)"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    /// One seat every `step` milliseconds, the first at `step`.
    fn steady(count: u64, step: u64) -> Vec<Grant> {
        (1..=count)
            .map(|i| Grant {
                at: ms(i * step),
                seats: 1,
            })
            .collect()
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut tally = Tally::default();
        for micros in 1..=1000u64 {
            tally.record_answer(
                Duration::from_micros(micros),
                409,
                None,
                None,
                Duration::ZERO,
            );
        }
        let s = LatencySummary::of(&tally.latency_all).unwrap();
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 0.5).abs() < 0.002, "{s:?}");
        assert!((s.p95_ms - 0.95).abs() < 0.002, "{s:?}");
        assert!((s.p99_ms - 0.99).abs() < 0.002, "{s:?}");
        assert!((s.max_ms - 1.0).abs() < 0.002, "{s:?}");
        assert!((s.mean_ms - 0.5005).abs() < 0.002, "{s:?}");
        assert!(LatencySummary::of(&tally.latency_granted).is_none());
    }

    #[test]
    fn a_slow_tail_shows_in_p99_and_max_only() {
        let mut tally = Tally::default();
        for _ in 0..990 {
            tally.record_answer(ms(2), 201, None, Some(1), Duration::ZERO);
        }
        for _ in 0..10 {
            tally.record_answer(ms(400), 201, None, Some(1), Duration::ZERO);
        }
        let s = LatencySummary::of(&tally.latency_granted).unwrap();
        assert!((s.p50_ms - 2.0).abs() < 0.01, "{s:?}");
        assert!((s.p95_ms - 2.0).abs() < 0.01, "{s:?}");
        assert!((s.p99_ms - 2.0).abs() < 0.01, "{s:?}");
        assert!((s.max_ms - 400.0).abs() < 0.5, "{s:?}");
    }

    #[test]
    fn merging_adds_counts_and_orders_grants_by_arrival() {
        let mut a = Tally::default();
        a.record_answer(ms(1), 201, None, Some(2), ms(30));
        a.record_answer(
            ms(1),
            409,
            Some("urn:ticketing:problem:sold-out"),
            None,
            ms(40),
        );
        let mut b = Tally::default();
        b.record_answer(ms(1), 201, None, Some(1), ms(10));
        b.record_answer(
            ms(1),
            409,
            Some("urn:ticketing:problem:sold-out"),
            None,
            ms(50),
        );
        b.record_transport_error("connect");
        a.merge(b);

        assert_eq!(a.statuses, BTreeMap::from([(201, 2), (409, 2)]));
        assert_eq!(a.problem_types["urn:ticketing:problem:sold-out"], 2);
        assert_eq!(a.requests(), 5);
        assert_eq!(a.seats_granted(), 3);
        assert_eq!(a.latency_granted.len(), 2);
        assert_eq!(
            a.grants.iter().map(|g| g.at).collect::<Vec<_>>(),
            [ms(10), ms(30)]
        );
    }

    #[test]
    fn steady_pace_has_a_ratio_of_one() {
        let pace = selling_pace(&steady(500, 2)).unwrap();
        // 50 seats in 100 ms, then the 451st..500th from 900 ms to 1000 ms.
        assert_eq!(pace.first_tenth.seats, 50);
        assert_eq!(pace.first_tenth.holds, 50);
        assert!((pace.first_tenth.seconds - 0.1).abs() < 1e-9);
        assert_eq!(pace.last_tenth.seats, 50);
        assert_eq!(pace.last_tenth.holds, 50);
        assert!((pace.last_tenth.seconds - 0.1).abs() < 1e-9);
        assert!((pace.ratio_last_to_first - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_slowing_sale_has_a_ratio_below_one() {
        // 90 seats 1 ms apart, then 10 seats 4 ms apart.
        let mut grants = steady(90, 1);
        grants.extend((1..=10).map(|i| Grant {
            at: ms(90 + 4 * i),
            seats: 1,
        }));
        let pace = selling_pace(&grants).unwrap();
        assert!((pace.first_tenth.seats_per_second - 1000.0).abs() < 1e-6);
        assert!((pace.last_tenth.seats_per_second - 250.0).abs() < 1e-6);
        assert!((pace.ratio_last_to_first - 0.25).abs() < 1e-9);
    }

    #[test]
    fn multi_seat_grants_close_a_tenth_at_the_grant_that_crosses_it() {
        // 4 seats each, 10 ms apart: 40 seats, a tenth is 4.
        let grants: Vec<Grant> = (1..=10)
            .map(|i| Grant {
                at: ms(10 * i),
                seats: 4,
            })
            .collect();
        let pace = selling_pace(&grants).unwrap();
        assert_eq!(pace.first_tenth.seats, 4);
        assert_eq!(pace.first_tenth.holds, 1);
        assert!((pace.first_tenth.seconds - 0.01).abs() < 1e-9);
        // The 9th grant ends at 36 seats = nine tenths: the last window is the 10th.
        assert_eq!(pace.last_tenth.seats, 4);
        assert_eq!(pace.last_tenth.holds, 1);
        assert!((pace.last_tenth.seconds - 0.01).abs() < 1e-9);

        // 7 seats each: a tenth (7 of 70) is reached by the first grant, and the last
        // window starts after the 9th (63 = nine tenths).
        let grants: Vec<Grant> = (1..=10)
            .map(|i| Grant {
                at: ms(10 * i),
                seats: 7,
            })
            .collect();
        let pace = selling_pace(&grants).unwrap();
        assert_eq!((pace.first_tenth.seats, pace.last_tenth.seats), (7, 7));
    }

    #[test]
    fn a_single_grant_or_an_instant_window_has_no_pace() {
        assert!(selling_pace(&[]).is_none());
        assert!(selling_pace(&steady(1, 5)).is_none());
        // Both grants at the same instant: the last window takes no time.
        let same = [
            Grant {
                at: ms(5),
                seats: 1,
            },
            Grant {
                at: ms(5),
                seats: 1,
            },
        ];
        assert!(selling_pace(&same).is_none());
    }

    fn run(elapsed_seconds: f64) -> RunInfo {
        RunInfo {
            reservations_url: "http://127.0.0.1:8080/v1".into(),
            show_id: "show".into(),
            section: "Floor".into(),
            capacity: 10,
            buyers: 2,
            quantity: 1,
            mode: "until_sold_out",
            stop_reason: StopReason::SoldOut,
            elapsed_seconds,
        }
    }

    #[test]
    fn report_rates_and_verdict() {
        let mut tally = Tally::default();
        for i in 1..=10 {
            tally.record_answer(ms(1), 201, None, Some(1), ms(100 * i));
        }
        tally.record_answer(
            ms(1),
            409,
            Some("urn:ticketing:problem:sold-out"),
            None,
            ms(1000),
        );
        let failing = Check {
            name: "API".into(),
            passed: false,
            detail: "x".into(),
        };
        let report = Report::new(run(2.0), &tally, vec![failing]);
        assert_eq!(report.throughput.requests, 11);
        assert!((report.throughput.holds_per_second - 5.0).abs() < 1e-9);
        assert_eq!(report.throughput.seats_granted, 10);
        assert!(!report.passed);
        let table = report.render();
        assert!(table.contains("FAIL  API: x"), "{table}");
        assert!(table.contains("urn:ticketing:problem:sold-out"), "{table}");

        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["statuses"]["201"], 10);
        assert_eq!(json["run"]["stop_reason"], "sold_out");
        assert_eq!(json["selling_pace"]["first_tenth"]["seats"], 1);

        let passing = Report::new(run(2.0), &tally, vec![]);
        assert!(passing.passed);
    }
}
