//! `ticketing demo` and `ticketing migrate`, through the library and through the binary.
//!
//! The binary has no libtest harness (`harness = false`): every test is a
//! `libtest_mimic` trial, named as libtest would name it, so that a PostgreSQL test is
//! reported as skipped (ignored) by name when no server answers and `CI` is not set
//! ([`ticketing_store::testing::postgres_trial`]). A new test function is listed in
//! `main`'s `trials!`.

use std::process::Command;
use std::sync::Arc;

use ticketing_cli::demo::{self, DemoReport};
use ticketing_domain::{Currency, DomainError, Money};
use ticketing_read_models::postgres::PostgresReadModels;
use ticketing_read_models::sqlite::SqliteReadModels;
use ticketing_store::testing::{
    async_trial, postgres_trial, run_trials, sync_trial, with_postgres, with_sqlite,
    DEFAULT_TEST_DATABASE_URL,
};

fn main() {
    run_trials(ticketing_store::trials![
        async_trial => the_demo_runs_the_purchase_and_the_failure_paths_on_sqlite;
        postgres_trial =>
            the_demo_runs_on_postgres,
            the_binary_migrates_and_runs_the_demo_on_postgres_from_database_url;
        sync_trial =>
            the_binary_runs_the_demo_on_the_embedded_default_with_no_configuration,
            an_unsupported_database_url_is_refused_with_a_clear_message;
    ])
}

fn assert_demo_outcome(report: &DemoReport) {
    let section = &report.section;
    assert_eq!(
        (
            section.capacity,
            section.held,
            section.sold,
            section.available
        ),
        (100, 0, 2, 98)
    );
    let projected = &report.projected;
    assert_eq!(
        (
            projected.capacity,
            projected.held,
            projected.sold,
            projected.available
        ),
        (100, 0, 2, 98),
        "the read models after the purchase"
    );
    assert_eq!(report.sales.tickets_sold, 2);
    let eur = Currency::parse("EUR").unwrap();
    assert_eq!(report.sales.revenue, Money::unit_price(9_000, eur).unwrap());
    assert!(
        report.declined_released,
        "the declined card's seats were released"
    );
    assert!(report.expired_released, "the expired hold was released");
    assert_eq!(
        report.sold_out_refusal,
        Some(DomainError::SoldOut {
            requested: 1,
            available: 0
        })
    );
    assert_eq!(report.tickets.len(), 2, "one ticket per seat");
    assert!(report.tickets.iter().all(|t| t.code.is_some()));
    let admitted = report.first_scan.as_ref().expect("the first scan admits");
    assert_eq!(admitted.ticket_id, report.tickets[0].ticket_id);
    assert!(matches!(
        report.second_scan,
        Some(DomainError::TicketAlreadyAdmitted { .. })
    ));
}

async fn the_demo_runs_the_purchase_and_the_failure_paths_on_sqlite() {
    with_sqlite(|store| async move {
        let mut out = Vec::new();
        let read_models = Arc::new(SqliteReadModels::new(store.pool().clone()));
        let report = demo::run(Arc::new(store), read_models, "a test store", &mut out)
            .await
            .unwrap();
        assert_demo_outcome(&report);
        let printed = String::from_utf8(out).unwrap();
        assert!(
            printed.contains("capacity 100, held 0, sold 2, available 98"),
            "{printed}"
        );
        assert!(
            printed.contains("2 tickets sold, revenue 90.00 EUR"),
            "{printed}"
        );
        assert!(
            printed.contains("read model: General Admission 98 available, 2 sold"),
            "{printed}"
        );
    })
    .await;
}

async fn the_demo_runs_on_postgres() {
    with_postgres("the_demo_runs_on_postgres", |store| async move {
        let read_models = Arc::new(PostgresReadModels::new(store.pool().clone()));
        let report = demo::run(
            Arc::new(store),
            read_models,
            "a test store",
            &mut Vec::new(),
        )
        .await
        .unwrap();
        assert_demo_outcome(&report);
    })
    .await;
}

fn ticketing() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ticketing"));
    command.env_remove("DATABASE_URL").env_remove("RUST_LOG");
    command
}

fn the_binary_runs_the_demo_on_the_embedded_default_with_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let output = ticketing()
        .arg("demo")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("the embedded store (ticketing.db)"),
        "{stdout}"
    );
    assert!(stdout.contains("sold 2, available 98"), "{stdout}");
    assert!(
        stdout.contains("read model: General Admission 98 available, 2 sold"),
        "{stdout}"
    );
    assert!(dir.path().join("ticketing.db").exists());
    // A second run on the same file works too: every run creates its own shows.
    let again = ticketing()
        .arg("demo")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout)
            .contains("read model: General Admission 98 available, 2 sold"),
        "the second run projects its own show on top of the first's"
    );
}

async fn the_binary_migrates_and_runs_the_demo_on_postgres_from_database_url() {
    with_postgres(
        "the_binary_migrates_and_runs_the_demo_on_postgres",
        |store| async move {
            let database: String = sqlx::query_scalar("select current_database()")
                .fetch_one(store.pool())
                .await
                .unwrap();
            let server = std::env::var("TEST_DATABASE_URL")
                .unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.into());
            let (base, _) = server.rsplit_once('/').unwrap();
            let url = format!("{base}/{database}");
            let migrate = ticketing()
                .arg("migrate")
                .env("DATABASE_URL", &url)
                .output()
                .unwrap();
            assert!(
                migrate.status.success(),
                "{}",
                String::from_utf8_lossy(&migrate.stderr)
            );
            let output = ticketing()
                .arg("demo")
                .env("DATABASE_URL", &url)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(stdout.contains("sold 2, available 98"), "{stdout}");
            assert!(
                stdout.contains("read model: General Admission 98 available"),
                "{stdout}"
            );
            let events: i64 = sqlx::query_scalar("select count(*) from events")
                .fetch_one(store.pool())
                .await
                .unwrap();
            assert!(
                events > 20,
                "the demo's events are in PostgreSQL ({events})"
            );
        },
    )
    .await;
}

fn an_unsupported_database_url_is_refused_with_a_clear_message() {
    let output = ticketing()
        .arg("migrate")
        .env("DATABASE_URL", "mysql://root:secret@localhost/db")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.to_lowercase().contains("mysql"), "{stderr}");
    assert!(
        !stderr.contains("secret"),
        "the password must not be printed: {stderr}"
    );
}
