//! The event store contract suite: every behaviour in `behaviours.rs` runs against
//! both backends, each test on a fresh database.
//!
//! Test paths read `sqlite::<behaviour>` and `postgres::<behaviour>`, so
//! `cargo test -p ticketing-store --test contract sqlite::` runs one backend.
//!
//! The binary has no libtest harness (`harness = false`): every test is a
//! `libtest_mimic` trial, named as libtest would name it, so that a PostgreSQL test is
//! reported as skipped (ignored) by name when no server answers and `CI` is not set
//! ([`ticketing_store::testing::postgres_trial`]). A new test function is listed in its
//! module's `trials()`, or in `contract_trials()` for a behaviour.
//!
//! Layout:
//! - `harness.rs`: event builders; fresh databases come from `ticketing_store::testing`.
//! - `behaviours.rs`: the contract, one async function per behaviour.
//! - `outbox.rs`: the outbox's part of the contract (unpublished, mark_published).
//! - `postgres_only.rs`: what only PostgreSQL can show (gap-safe global reads, an
//!   outbox row that commits late), and the stream index migration's backfill.
//! - `turns.rs`: writers taking turns on a stream (`lock_stream`), on both backends
//!   and across processes on PostgreSQL.
//! - `sqlite_only.rs`: writers on one file that do not share the in-process lock, and
//!   the stream index migration's backfill.
//! - `config.rs`: choosing and connecting a backend from configuration.

use ticketing_store::testing::{run_trials, Trial};

mod behaviours;
mod config;
mod harness;
mod outbox;
mod postgres_only;
mod sqlite_only;
mod turns;

fn main() {
    let mut trials = contract_trials();
    trials.extend(config::trials());
    trials.extend(postgres_only::trials());
    trials.extend(sqlite_only::trials());
    trials.extend(turns::trials());
    run_trials(trials);
}

use behaviours::*;
use outbox::*;
use turns::*;

/// The behaviours run on both backends, `sqlite::<name>` and `postgres::<name>`.
fn contract_trials() -> Vec<Trial> {
    ticketing_store::trials_on_both_backends![
        the_provider_ledger_keeps_the_first_entry_of_a_key,
        an_idempotency_key_claim_excludes_duplicates_until_released_or_expired,
        concurrent_claims_of_one_key_let_exactly_one_win,
        an_appended_outcome_finishes_its_claim_and_later_claims_answer_with_it,
        append_to_a_new_stream_numbers_events_from_one_and_reads_them_back_intact,
        recorded_at_is_the_append_instant_to_the_microsecond,
        read_stream_after_a_version_returns_only_later_events,
        an_unknown_stream_reads_as_empty_at_version_zero,
        read_stream_keeps_streams_apart,
        append_to_existing_stream_with_no_stream_expectation_conflicts,
        append_with_a_wrong_exact_version_conflicts_and_reports_the_actual_version,
        append_with_the_current_exact_version_continues_the_stream,
        append_with_any_expectation_appends_after_whatever_is_there,
        multi_stream_append_writes_every_stream_and_reports_versions_in_append_order,
        multi_stream_append_with_a_conflict_on_the_second_stream_writes_nothing,
        a_condition_lets_an_append_commit_only_while_its_stream_is_unchanged,
        retried_append_with_the_same_event_ids_is_recognised_and_writes_nothing,
        append_reusing_some_stored_event_ids_is_refused_as_duplicate,
        idempotency_record_is_stored_with_the_events_and_readable,
        second_append_with_a_taken_idempotency_key_is_refused_and_writes_nothing,
        conflicting_append_with_a_taken_idempotency_key_reports_the_key,
        read_all_returns_every_stream_in_global_order_and_pages_by_position,
        snapshot_is_saved_loaded_and_replaced_by_a_newer_one,
        load_stream_reads_the_snapshot_and_only_the_events_after_it,
        older_snapshot_never_replaces_a_newer_one,
        stream_version_counts_the_events_of_a_stream,
        event_count_is_the_length_of_the_global_order,
        empty_or_malformed_append_is_invalid_and_writes_nothing,
        concurrent_appends_with_the_same_expected_version_let_exactly_one_win,
        concurrent_writers_retrying_on_conflict_leave_contiguous_versions,
        the_stream_index_follows_every_append_including_multi_stream_appends,
        find_streams_filters_by_prefix_and_last_event_type,
        find_streams_returns_the_least_recently_appended_first_up_to_the_limit,
        find_streams_treats_percent_and_underscore_in_a_prefix_literally,
        a_refused_append_leaves_the_stream_index_untouched,
        appended_events_stay_unpublished_until_marked_published,
        a_refused_append_enqueues_nothing,
        unpublished_follows_the_global_order_and_stops_at_the_limit,
        unpublished_older_than_leaves_fresh_events_out,
        marking_published_twice_or_unknown_positions_is_harmless,
        outbox_status_counts_the_backlog_and_dates_its_oldest_event,
        writers_taking_turns_all_append_in_order_without_a_conflict,
        a_writer_that_waits_too_long_for_its_turn_is_told_the_stream_is_busy,
        an_append_in_a_turn_still_refuses_a_stale_expected_version,
        a_turn_loads_the_stream_it_will_append_to,
        a_turn_loads_only_what_is_newer_than_a_known_version,
        a_turn_extended_to_another_stream_holds_both,
        a_turn_appends_several_commands_records_together_or_none,
    ]
}
