//! Over random sequences of holds, payments, cancellations and clock advances, a
//! section is never oversold and every hold ends sold or released.

use proptest::prelude::*;

use super::*;
use crate::inventory::InventoryCommand as I;
use crate::reservation::ReservationCommand as R;

#[derive(Debug, Clone)]
enum Step {
    Hold(u32),
    Pay { pick: usize, card_ok: bool },
    Cancel(usize),
    Advance(i64),
    Sweep,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1u32..=4).prop_map(Step::Hold),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(pick, card_ok)| Step::Pay { pick, card_ok }),
        1 => any::<usize>().prop_map(Step::Cancel),
        2 => (1i64..=12).prop_map(Step::Advance),
        1 => Just(Step::Sweep),
    ]
}

/// The section and its reservations, driven the way the command layer drives them.
struct World {
    now: Timestamp,
    inventory: Inventory,
    reservations: Vec<(ReservationId, Reservation)>,
}

impl World {
    fn inventory(&mut self, command: I) -> Result<(), DomainError> {
        let events = self.inventory.decide(command, self.now)?;
        self.inventory = std::mem::take(&mut self.inventory).fold(&events);
        Ok(())
    }

    fn reservation(&mut self, i: usize, command: R) -> Result<(), DomainError> {
        let events = self.reservations[i].1.decide(command, self.now)?;
        let state = std::mem::take(&mut self.reservations[i].1);
        self.reservations[i].1 = state.fold(&events);
        Ok(())
    }

    fn status(&self, i: usize) -> ReservationStatus {
        self.reservations[i].1 .0.as_ref().unwrap().status
    }

    /// The hold as reservation `i` records it: its seats and expiry.
    fn hold_of(&self, i: usize) -> (u32, Timestamp) {
        let details = self.reservations[i].1 .0.as_ref().unwrap();
        (details.quantity, details.expires_at)
    }

    fn release(&mut self, i: usize, reason: ReleaseReason) {
        let (quantity, expires_at) = self.hold_of(i);
        let reservation_id = self.reservations[i].0;
        self.inventory(I::Release {
            reservation_id,
            quantity,
            expires_at,
            reason,
        })
        .unwrap();
    }

    fn apply(&mut self, step: Step) {
        match step {
            Step::Hold(n) => {
                let reservation_id = ReservationId::new();
                let expires_at = self.now + minutes(10);
                let hold = I::Hold {
                    reservation_id,
                    quantity: qty(n),
                    expires_at,
                    sales: SalesStatus::OnSale,
                };
                if self.inventory(hold).is_ok() {
                    let place = R::Place {
                        reservation_id,
                        show_id: ShowId::new(),
                        section: section("Floor"),
                        customer_id: CustomerId::parse("c").unwrap(),
                        quantity: qty(n),
                        unit_price: eur(100),
                        expires_at,
                        buckets: vec![],
                    };
                    let mut reservation = Reservation::default();
                    let events = reservation.decide(place, self.now).unwrap();
                    reservation = reservation.fold(&events);
                    self.reservations.push((reservation_id, reservation));
                }
            }
            Step::Pay { pick, card_ok } if !self.reservations.is_empty() => {
                let i = pick % self.reservations.len();
                let reservation_id = self.reservations[i].0;
                let payment_id = PaymentId::new();
                if self
                    .reservation(i, R::RequestPayment { payment_id })
                    .is_err()
                {
                    return;
                }
                if !card_ok {
                    self.reservation(
                        i,
                        R::RecordPaymentDeclined {
                            payment_id,
                            reason: "declined".into(),
                        },
                    )
                    .unwrap();
                    self.release(i, ReleaseReason::PaymentDeclined);
                    return;
                }
                self.reservation(i, R::RecordPaymentCaptured { payment_id })
                    .unwrap();
                let (quantity, expires_at) = self.hold_of(i);
                let confirm = I::Confirm {
                    reservation_id,
                    quantity,
                    expires_at,
                };
                match self.inventory(confirm) {
                    Ok(()) => self.reservation(i, R::Confirm).unwrap(),
                    Err(DomainError::HoldExpired) => {
                        self.reservation(
                            i,
                            R::Refund {
                                reason: RefundReason::SeatsUnavailable,
                            },
                        )
                        .unwrap();
                        self.release(i, ReleaseReason::Expired);
                    }
                    Err(other) => panic!("unexpected {other:?}"),
                }
            }
            Step::Cancel(pick) if !self.reservations.is_empty() => {
                let i = pick % self.reservations.len();
                if self.reservation(i, R::Cancel { refund: None }).is_ok() {
                    self.release(i, ReleaseReason::CancelledByCustomer);
                }
            }
            Step::Advance(m) => self.now += minutes(m),
            Step::Sweep => {
                for i in 0..self.reservations.len() {
                    if self.reservation(i, R::Expire).is_ok() {
                        self.release(i, ReleaseReason::Expired);
                    }
                }
            }
            Step::Pay { .. } | Step::Cancel(_) => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn a_section_is_never_oversold_and_every_hold_ends_sold_or_released(
        capacity in 1u32..=12,
        steps in prop::collection::vec(step(), 1..80),
    ) {
        let show_id = ShowId::new();
        let mut world = World {
            now: t0(),
            inventory: given::<Inventory>(&[super::inventory::initialized(show_id, capacity)]),
            reservations: vec![],
        };
        for step in steps {
            world.apply(step);
            let section = world.inventory.0.as_ref().unwrap();
            prop_assert!(section.sold_count() + section.held_count(world.now) <= capacity);
        }
        // Let every hold run out and the sweeper record it.
        world.apply(Step::Advance(11));
        world.apply(Step::Sweep);
        let section = world.inventory.0.clone().unwrap();
        prop_assert_eq!(section.tracked_entries(), 0, "holds left: {:?}", section.held_until);
        let mut sold = 0;
        for i in 0..world.reservations.len() {
            let status = world.status(i);
            prop_assert!(status == ReservationStatus::Confirmed || status.is_final(), "{status:?}");
            if status == ReservationStatus::Confirmed {
                sold += world.hold_of(i).0;
            }
        }
        prop_assert_eq!(sold, section.sold_count());
        prop_assert_eq!(section.available(world.now), capacity - sold);
    }
}
