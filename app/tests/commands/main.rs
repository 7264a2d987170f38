//! The command layer end to end on both event store backends, each test on a fresh
//! database: `sqlite::<scenario>` and `postgres::<scenario>`.
//!
//! Layout:
//! - `support.rs`: a `Ticketing` on a manual clock and the simulated provider.
//! - `purchase.rs`: holds, payments, expiry, cancellation and refunds.
//! - `retries.rs`: idempotency keys, provider timeouts, concurrency.
//! - `storage.rs`: snapshots and upcasting through the store.

mod purchase;
mod retries;
mod storage;
mod support;

macro_rules! on_both_backends {
    ($($module:ident :: $scenario:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    ticketing_store::testing::with_sqlite(|store| crate::$module::$scenario(std::sync::Arc::new(store))).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    ticketing_store::testing::with_postgres(
                        concat!("postgres::", stringify!($scenario)),
                        |store| crate::$module::$scenario(std::sync::Arc::new(store)),
                    )
                    .await;
                }
            )+
        }
    };
}

on_both_backends! {
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
    retries::a_retried_hold_with_the_same_key_appends_nothing_and_answers_the_same,
    retries::the_same_key_with_another_request_is_refused,
    retries::a_retried_payment_with_the_same_key_charges_once_and_appends_nothing,
    retries::a_provider_timeout_leaves_the_payment_pending_and_a_retry_charges_once,
    retries::concurrent_holds_never_oversell_and_losers_get_a_clear_answer,
    storage::loading_from_snapshots_gives_the_same_state_as_replaying,
    storage::an_unusable_snapshot_is_ignored,
    storage::a_version_one_event_in_the_store_is_read_in_the_current_shape,
}
