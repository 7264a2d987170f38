use super::*;
use crate::show::*;

fn plan() -> ShowPlan {
    ShowPlan::new(
        "Summer Festival",
        "Main Arena",
        t0() + TimeDelta::days(30),
        vec![
            SectionSpec {
                name: section("Floor"),
                capacity: 100,
                unit_price: eur(4_500),
                buckets: 1,
            },
            SectionSpec {
                name: section("Balcony"),
                capacity: 50,
                unit_price: eur(3_000),
                buckets: 1,
            },
        ],
        DEFAULT_MAX_PER_ORDER,
    )
    .unwrap()
}

fn created(id: ShowId) -> ShowEvent {
    let plan = plan();
    ShowEvent::ShowCreated(ShowCreated {
        show_id: id,
        organizer_id: OrganizerId::parse("org-1").unwrap(),
        title: plan.title,
        venue: plan.venue,
        starts_at: plan.starts_at,
        sections: plan.sections,
        max_per_order: plan.max_per_order,
    })
}

fn create(id: ShowId) -> ShowCommand {
    ShowCommand::Create {
        show_id: id,
        organizer_id: OrganizerId::parse("org-1").unwrap(),
        plan: plan(),
    }
}

#[test]
fn creating_a_show_records_its_sections() {
    let id = ShowId::new();
    let events = given::<Show>(&[]).decide(create(id), t0()).unwrap();
    assert_eq!(events, vec![created(id)]);
    let show = given::<Show>(&events).0.unwrap();
    assert_eq!(show.status, SalesStatus::Scheduled);
    assert_eq!(show.section(&section("floor")).unwrap().capacity, 100);
}

#[test]
fn creating_a_show_twice_is_refused() {
    let id = ShowId::new();
    let err = given::<Show>(&[created(id)])
        .decide(create(id), t0())
        .unwrap_err();
    assert_eq!(err, DomainError::ShowAlreadyExists);
}

#[test]
fn creating_a_show_that_already_started_is_refused() {
    let err = given::<Show>(&[])
        .decide(create(ShowId::new()), t0() + TimeDelta::days(31))
        .unwrap_err();
    assert_eq!(err, DomainError::ShowStartsInPast);
}

#[test]
fn plans_with_bad_sections_are_refused() {
    let at = t0() + TimeDelta::days(1);
    let spec = |name: &str, capacity, price: Money| SectionSpec {
        name: section(name),
        capacity,
        unit_price: price,
        buckets: 1,
    };
    let usd = Money::unit_price(100, Currency::parse("USD").unwrap()).unwrap();
    let cases = [
        (
            vec![],
            DomainError::InvalidSectionCount { max: MAX_SECTIONS },
        ),
        (vec![spec("A", 0, eur(1))], DomainError::InvalidCapacity(0)),
        (
            vec![spec("A", MAX_CAPACITY + 1, eur(1))],
            DomainError::InvalidCapacity(MAX_CAPACITY + 1),
        ),
        (
            vec![spec("A", 1, eur(1)), spec("a", 1, eur(1))],
            DomainError::DuplicateSection("a".into()),
        ),
        (
            vec![spec("A", 1, eur(1)), spec("B", 1, usd)],
            DomainError::MixedCurrencies,
        ),
    ];
    for (sections, expected) in cases {
        assert_eq!(
            ShowPlan::new("T", "V", at, sections, 10).unwrap_err(),
            expected
        );
    }
    let one = vec![spec("A", 1, eur(1))];
    assert_eq!(
        ShowPlan::new(" ", "V", at, one.clone(), 10).unwrap_err(),
        DomainError::InvalidShowText
    );
    let padded = format!(" {} ", "T".repeat(199));
    assert_eq!(
        ShowPlan::new(padded, "V", at, one.clone(), 10).unwrap_err(),
        DomainError::InvalidShowText,
        "the limit counts surrounding spaces"
    );
    assert_eq!(
        ShowPlan::new("T", "V", at, one.clone(), 0).unwrap_err(),
        DomainError::InvalidPerOrderLimit(0)
    );
    assert_eq!(
        ShowPlan::new("T", "V", at, one, 101).unwrap_err(),
        DomainError::InvalidPerOrderLimit(101)
    );
}

#[test]
fn opening_and_closing_sales() {
    let id = ShowId::new();
    let mut history = vec![created(id)];
    let opened = given::<Show>(&history)
        .decide(ShowCommand::OpenSales, t0())
        .unwrap();
    assert!(matches!(opened[..], [ShowEvent::SalesOpened(_)]));
    history.extend(opened);
    assert_eq!(
        given::<Show>(&history)
            .decide(ShowCommand::OpenSales, t0())
            .unwrap_err(),
        DomainError::SalesAlreadyOpen
    );
    let closed = given::<Show>(&history)
        .decide(ShowCommand::CloseSales, t0())
        .unwrap();
    assert!(matches!(closed[..], [ShowEvent::SalesClosed(_)]));
    history.extend(closed);
    assert_eq!(
        given::<Show>(&history).0.unwrap().status,
        SalesStatus::Closed
    );
    assert_eq!(
        given::<Show>(&history)
            .decide(ShowCommand::CloseSales, t0())
            .unwrap_err(),
        DomainError::SalesNotOpen
    );
    // Closed sales can be reopened.
    assert!(given::<Show>(&history)
        .decide(ShowCommand::OpenSales, t0())
        .is_ok());
}

#[test]
fn commands_on_an_unknown_show_are_refused() {
    for command in [
        ShowCommand::OpenSales,
        ShowCommand::CloseSales,
        ShowCommand::Cancel { reason: "x".into() },
    ] {
        assert_eq!(
            given::<Show>(&[]).decide(command, t0()).unwrap_err(),
            DomainError::ShowNotFound
        );
    }
}

#[test]
fn a_cancelled_show_refuses_everything() {
    let id = ShowId::new();
    let mut history = vec![created(id)];
    history.extend(
        given::<Show>(&history)
            .decide(
                ShowCommand::Cancel {
                    reason: "storm".into(),
                },
                t0(),
            )
            .unwrap(),
    );
    assert_eq!(
        given::<Show>(&history).0.unwrap().status,
        SalesStatus::Cancelled
    );
    for command in [
        ShowCommand::OpenSales,
        ShowCommand::CloseSales,
        ShowCommand::Cancel { reason: "x".into() },
        ShowCommand::SplitSection {
            section: section("Floor"),
            buckets: 2,
        },
    ] {
        assert_eq!(
            given::<Show>(&history).decide(command, t0()).unwrap_err(),
            DomainError::ShowCancelled
        );
    }
}

#[test]
fn a_section_is_split_into_more_buckets_only() {
    let id = ShowId::new();
    let history = vec![created(id)];
    let split = |buckets| ShowCommand::SplitSection {
        section: section("floor"),
        buckets,
    };
    let events = given::<Show>(&history).decide(split(4), t0()).unwrap();
    assert_eq!(
        events,
        vec![ShowEvent::SectionSplit(SectionSplit {
            show_id: id,
            section: section("Floor"),
            buckets: 4,
            split_at: t0(),
        })]
    );
    let mut after = history.clone();
    after.extend(events);
    let show = given::<Show>(&after).0.unwrap();
    assert_eq!(show.section(&section("Floor")).unwrap().buckets, 4);
    assert_eq!(
        show.section(&section("Balcony")).unwrap().buckets,
        1,
        "only that section"
    );

    for (buckets, error) in [
        (4, DomainError::BucketsNotRaised { current: 4 }),
        (2, DomainError::BucketsNotRaised { current: 4 }),
        (
            65,
            DomainError::InvalidBucketCount {
                buckets: 65,
                capacity: 100,
            },
        ),
        (
            101,
            DomainError::InvalidBucketCount {
                buckets: 101,
                capacity: 100,
            },
        ),
    ] {
        assert_eq!(
            given::<Show>(&after)
                .decide(split(buckets), t0())
                .unwrap_err(),
            error
        );
    }
    assert_eq!(
        given::<Show>(&after)
            .decide(
                ShowCommand::SplitSection {
                    section: section("Gallery"),
                    buckets: 2
                },
                t0()
            )
            .unwrap_err(),
        DomainError::UnknownSection
    );
}
