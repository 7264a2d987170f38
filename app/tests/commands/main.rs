//! The command layer end to end on both event store backends, each test on a fresh
//! database: `sqlite::<scenario>` and `postgres::<scenario>`.
//!
//! Layout:
//! - `support.rs`: a `Ticketing` on a manual clock and the simulated provider.
//! - `purchase.rs`: holds, payments, expiry, cancellation and refunds.
//! - `batches.rs`: holds on one bucket decided and committed together.
//! - `buckets.rs`: sections split into escrow buckets.
//! - `retries.rs`: idempotency keys, provider timeouts, concurrency.
//! - `storage.rs`: snapshots and upcasting through the store.
//! - `sweeper.rs`: the timeout sweeper, moving time with the manual clock.
//! - `cancellation.rs`: cancelling a show and its fan-out.
//! - `tickets.rs`: tickets issued on confirmation, check-in races, transfers.
//! - `three_d_secure.rs`: payments that wait for the customer's authentication.
//! - `publishing.rs`: publishing to the bus after commit, and the relay (in-process
//!   bus on both backends; Kafka against librdkafka's mock broker).
//!
//! The binary has no libtest harness (`harness = false`): every test is a
//! `libtest_mimic` trial, named as libtest would name it, so that a PostgreSQL test is
//! reported as skipped (ignored) by name when no server answers and `CI` is not set
//! ([`ticketing_store::testing::postgres_trial`]). A new scenario is listed in
//! `scenario_trials()`, another test function in its module's `trials()`.

use ticketing_store::testing::{run_trials, Trial};

mod batches;
mod buckets;
mod cancellation;
mod provider_reports;
mod publishing;
mod purchase;
mod retries;
mod storage;
mod support;
mod sweeper;
mod three_d_secure;
mod tickets;

fn main() {
    let mut trials = scenario_trials();
    trials.extend(publishing::trials());
    run_trials(trials);
}

/// The behaviours run on both backends, `sqlite::<name>` and `postgres::<name>`.
fn scenario_trials() -> Vec<Trial> {
    ticketing_store::trials_on_both_backends![
        purchase::a_purchase_goes_from_hold_to_paid_to_confirmed,
        purchase::a_declined_card_releases_the_seats,
        purchase::an_expired_hold_is_released_and_its_seats_are_free_again,
        purchase::paying_after_expiry_confirms_while_the_seats_are_still_free,
        purchase::paying_after_expiry_when_the_seats_are_gone_is_refused_without_charging,
        purchase::a_sold_out_section_refuses_a_hold,
        purchase::holds_are_refused_with_typed_errors,
        purchase::paying_twice_is_refused,
        purchase::cancelling_a_held_reservation_releases_its_seats,
        purchase::cancelling_a_confirmed_purchase_refunds_it_and_returns_the_seats,
        purchase::refunding_twice_is_refused,
        purchase::show_sales_can_be_opened_closed_and_cancelled,
        batches::holds_queued_for_one_bucket_are_granted_together,
        batches::a_batch_grants_holds_until_its_bucket_is_empty,
        batches::a_queued_hold_without_a_turn_in_time_is_contention_and_holds_nothing,
        batches::holds_one_at_a_time_still_sell_exactly_the_capacity,
        batches::a_batch_publishes_its_holds_events_together_and_marks_them,
        batches::a_hold_never_goes_by_a_show_another_process_has_changed,
        batches::a_hold_alone_never_goes_by_a_show_another_process_has_changed,
        buckets::a_split_section_reads_as_one_and_a_hold_takes_one_bucket,
        buckets::a_split_section_sells_every_seat_and_only_then_is_sold_out,
        buckets::a_hold_no_bucket_can_serve_alone_is_split_and_ends_in_every_bucket,
        buckets::rebalancing_spreads_the_free_seats_over_the_buckets,
        buckets::two_hundred_buyers_for_fifty_seats_in_four_buckets_get_exactly_fifty,
        buckets::a_section_on_sale_split_into_more_buckets_spreads_its_free_seats_and_sells_them_all,
        retries::a_retried_hold_with_the_same_key_appends_nothing_and_answers_the_same,
        retries::the_same_key_with_another_request_is_refused,
        retries::a_retried_payment_with_the_same_key_charges_once_and_appends_nothing,
        retries::a_provider_timeout_leaves_the_payment_pending_and_a_retry_charges_once,
        retries::concurrent_holds_never_oversell_and_losers_get_a_clear_answer,
        retries::two_hundred_buyers_for_fifty_seats_get_exactly_fifty_and_no_contention,
        retries::an_unreadable_recorded_outcome_is_an_error_and_never_a_second_run,
        retries::a_duplicate_arriving_while_the_first_is_running_is_told_it_is_in_progress,
        retries::a_failed_command_releases_its_key_for_a_retry,
        retries::a_retried_cancellation_that_refunded_answers_the_same,
        retries::a_retried_payment_that_ended_in_a_refund_answers_the_same,
        storage::loading_from_snapshots_gives_the_same_state_as_replaying,
        tickets::a_confirmed_purchase_has_one_ticket_per_seat_and_a_retry_issues_none,
        tickets::twenty_gates_scanning_one_ticket_at_once_admit_it_exactly_once,
        tickets::a_purchase_confirmed_without_a_key_gets_its_tickets_when_first_listed,
        tickets::a_payment_the_sweeper_settles_is_confirmed_with_its_tickets,
        tickets::a_cancelled_show_revokes_its_tickets,
        storage::an_unusable_snapshot_is_ignored,
        storage::a_version_one_event_in_the_store_is_read_in_the_current_shape,
        sweeper::a_sweep_with_nothing_to_do_reports_zeros,
        sweeper::due_holds_are_expired_and_holds_not_yet_due_are_left_alone,
        sweeper::a_payment_whose_answer_was_lost_is_confirmed_after_the_grace_period_and_not_before,
        sweeper::a_charge_whose_answer_one_process_lost_is_found_by_another_s_sweep,
        provider_reports::a_success_reported_before_the_answer_confirms_once_and_the_answer_agrees,
        provider_reports::a_failure_reported_for_a_pending_payment_releases_the_seats_and_a_late_success_is_ignored,
        provider_reports::a_refund_made_at_the_provider_refunds_the_purchase_once,
        provider_reports::a_partial_refund_and_a_dispute_are_recorded_on_the_payment_once,
        provider_reports::a_refund_through_the_api_reported_by_the_provider_changes_nothing,
        sweeper::a_pending_payment_the_provider_never_saw_is_released_as_abandoned_after_the_grace_period,
        sweeper::a_captured_payment_whose_seats_are_gone_is_refunded,
        sweeper::a_captured_purchase_left_unsettled_is_refunded_once_the_provider_answers,
        sweeper::a_captured_purchase_left_unsettled_is_confirmed_when_its_seats_are_free_again,
        sweeper::running_the_sweep_twice_changes_nothing_the_second_time,
        sweeper::a_provider_outage_is_counted_as_failures_and_the_rest_of_the_sweep_goes_on,
        sweeper::a_sweep_acts_on_at_most_max_items_and_leaves_the_rest_for_the_next_run,
        sweeper::the_sweeper_refunds_rather_than_confirms_a_pending_payment_of_a_cancelled_show,
        cancellation::cancelling_a_show_releases_its_holds_refunds_its_purchases_and_a_second_call_changes_nothing,
        cancellation::a_cancellation_cut_short_by_a_provider_outage_is_finished_by_calling_it_again,
        cancellation::paying_for_a_hold_of_a_cancelled_show_is_refused_without_charging,
        cancellation::a_pending_payment_finished_after_its_show_was_cancelled_is_refunded_not_confirmed,
        publishing::a_command_publishes_its_events_after_commit_with_topic_key_and_headers,
        publishing::holds_committed_at_once_are_each_published_once_and_all_marked,
        publishing::with_the_bus_down_commands_succeed_and_the_relay_publishes_the_backlog,
        publishing::events_a_command_died_before_publishing_are_published_by_the_relay_once,
        publishing::relay_outbox_publishes_the_backlog_once_it_is_older_than_the_grace,
        three_d_secure::a_payment_waiting_for_authentication_keeps_its_seats_and_a_reported_success_confirms_it,
        three_d_secure::an_authentication_finished_before_paying_again_confirms_on_the_retry,
        three_d_secure::a_failed_authentication_reported_releases_the_seats,
        three_d_secure::a_success_reported_before_the_answer_that_asked_for_authentication_wins,
        three_d_secure::a_payment_never_authenticated_is_cancelled_when_its_hold_runs_out,
        three_d_secure::an_authentication_finished_before_the_sweep_is_confirmed_not_cancelled,
    ]
}
