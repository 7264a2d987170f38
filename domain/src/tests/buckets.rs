//! Over random interleavings of holds (split across buckets when no single bucket has
//! the seats), payments, cancellations, expiries and rebalancing, a section split into
//! escrow buckets is never oversold, keeps its capacity, and every hold ends sold or
//! released in the buckets that held it.

use proptest::prelude::*;

use super::*;
use crate::inventory::InventoryCommand as I;
use crate::reservation::{BucketShare, ReservationCommand as R};

#[derive(Debug, Clone)]
enum Step {
    /// Seats wanted, and the bucket a buyer tries first.
    Hold(u32, usize),
    Pay {
        pick: usize,
        card_ok: bool,
    },
    Cancel(usize),
    Advance(i64),
    Sweep,
    Rebalance,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (1u32..=5, any::<usize>()).prop_map(|(n, first)| Step::Hold(n, first)),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(pick, card_ok)| Step::Pay { pick, card_ok }),
        1 => any::<usize>().prop_map(Step::Cancel),
        2 => (1i64..=12).prop_map(Step::Advance),
        1 => Just(Step::Sweep),
        1 => Just(Step::Rebalance),
    ]
}

/// A section's buckets and its reservations, driven the way the command layer drives
/// them: a change to several buckets is decided on all of them before any is applied,
/// as one append would be.
struct Buckets {
    now: Timestamp,
    buckets: Vec<Inventory>,
    reservations: Vec<Reservation>,
}

impl Buckets {
    fn available(&self, bucket: usize) -> u32 {
        self.buckets[bucket].0.as_ref().unwrap().available(self.now)
    }

    /// Decides one command per bucket, and applies them all only if every one passes.
    fn on_buckets(&mut self, commands: Vec<(usize, I)>) -> Result<(), DomainError> {
        let mut decided = Vec::new();
        for (bucket, command) in commands {
            decided.push((bucket, self.buckets[bucket].decide(command, self.now)?));
        }
        for (bucket, events) in decided {
            let state = std::mem::take(&mut self.buckets[bucket]);
            self.buckets[bucket] = state.fold(&events);
        }
        Ok(())
    }

    fn reservation(&mut self, i: usize, command: R) -> Result<(), DomainError> {
        let events = self.reservations[i].decide(command, self.now)?;
        let state = std::mem::take(&mut self.reservations[i]);
        self.reservations[i] = state.fold(&events);
        Ok(())
    }

    fn details(&self, i: usize) -> crate::reservation::ReservationDetails {
        self.reservations[i].0.clone().unwrap()
    }

    fn release(&mut self, i: usize, reason: ReleaseReason) {
        let d = self.details(i);
        let commands = d
            .shares()
            .into_iter()
            .map(|s| {
                let release = I::Release {
                    reservation_id: d.reservation_id,
                    quantity: s.quantity,
                    expires_at: d.expires_at,
                    reason,
                };
                (s.bucket as usize, release)
            })
            .collect();
        self.on_buckets(commands).unwrap();
    }

    fn hold(&mut self, quantity: u32, first: usize) {
        let reservation_id = ReservationId::new();
        let expires_at = self.now + minutes(10);
        let hold = |n| I::Hold {
            reservation_id,
            quantity: qty(n),
            expires_at,
            sales: SalesStatus::OnSale,
        };
        let count = self.buckets.len();
        let whole = (0..count)
            .map(|i| (first + i) % count)
            .find(|b| self.available(*b) >= quantity);
        let shares: Vec<BucketShare> = match whole {
            Some(bucket) => vec![BucketShare {
                bucket: u32::try_from(bucket).unwrap(),
                quantity,
            }],
            None => {
                let mut wanted = quantity;
                let mut shares = Vec::new();
                for bucket in 0..count {
                    let part = self.available(bucket).min(wanted);
                    if part > 0 {
                        shares.push(BucketShare {
                            bucket: u32::try_from(bucket).unwrap(),
                            quantity: part,
                        });
                        wanted -= part;
                    }
                }
                if wanted > 0 {
                    return; // sold out for this request
                }
                shares
            }
        };
        let commands = shares
            .iter()
            .map(|s| (s.bucket as usize, hold(s.quantity)))
            .collect();
        self.on_buckets(commands).unwrap();
        let place = R::Place {
            reservation_id,
            show_id: ShowId::new(),
            section: section("Floor"),
            customer_id: CustomerId::parse("c").unwrap(),
            quantity: qty(quantity),
            unit_price: eur(100),
            expires_at,
            buckets: shares,
        };
        let reservation = Reservation::default();
        let events = reservation.decide(place, self.now).unwrap();
        self.reservations.push(reservation.fold(&events));
    }

    fn pay(&mut self, i: usize, card_ok: bool) {
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
        let d = self.details(i);
        let confirm = d
            .shares()
            .into_iter()
            .map(|s| {
                let command = I::Confirm {
                    reservation_id: d.reservation_id,
                    quantity: s.quantity,
                    expires_at: d.expires_at,
                };
                (s.bucket as usize, command)
            })
            .collect();
        match self.on_buckets(confirm) {
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

    fn rebalance(&mut self) {
        let free: Vec<u32> = (0..self.buckets.len()).map(|b| self.available(b)).collect();
        // Even out the free seats, as `Ticketing::rebalance_section` does.
        let total: u32 = free.iter().sum();
        let count = u32::try_from(free.len()).unwrap();
        let target = |b: u32| total / count + u32::from(b < total % count);
        let mut commands = Vec::new();
        let mut takers: Vec<(u32, u32)> = (0..count)
            .filter(|b| free[*b as usize] < target(*b))
            .map(|b| (b, target(b) - free[b as usize]))
            .collect();
        for giver in 0..count {
            let mut surplus = free[giver as usize].saturating_sub(target(giver));
            while surplus > 0 {
                let Some(taker) = takers.iter_mut().find(|(_, want)| *want > 0) else {
                    break;
                };
                let seats = surplus.min(taker.1);
                commands.push((
                    giver as usize,
                    I::GiveSeats {
                        seats,
                        to_bucket: taker.0,
                    },
                ));
                commands.push((
                    taker.0 as usize,
                    I::TakeSeats {
                        seats,
                        from_bucket: giver,
                    },
                ));
                taker.1 -= seats;
                surplus -= seats;
            }
        }
        // Each bucket gives or takes, never both: decided one command at a time.
        for command in commands {
            self.on_buckets(vec![command]).unwrap();
        }
    }

    fn apply(&mut self, step: Step) {
        let count = self.reservations.len();
        match step {
            Step::Hold(n, first) => self.hold(n, first % self.buckets.len()),
            Step::Pay { pick, card_ok } if count > 0 => self.pay(pick % count, card_ok),
            Step::Cancel(pick) if count > 0 => {
                let i = pick % count;
                if self.reservation(i, R::Cancel { refund: None }).is_ok() {
                    self.release(i, ReleaseReason::CancelledByCustomer);
                }
            }
            Step::Advance(m) => self.now += minutes(m),
            Step::Sweep => {
                for i in 0..count {
                    if self.reservation(i, R::Expire).is_ok() {
                        self.release(i, ReleaseReason::Expired);
                    }
                }
            }
            Step::Rebalance => self.rebalance(),
            Step::Pay { .. } | Step::Cancel(_) => {}
        }
    }

    fn sections(&self) -> Vec<&crate::inventory::SectionInventory> {
        self.buckets.iter().map(|b| b.0.as_ref().unwrap()).collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_split_section_is_never_oversold_and_every_hold_ends_in_its_buckets(
        capacity in 1u32..=16,
        buckets in 1u32..=4,
        steps in prop::collection::vec(step(), 1..80),
    ) {
        let buckets = buckets.min(capacity);
        let spec = crate::show::SectionSpec {
            name: section("Floor"),
            capacity,
            unit_price: eur(100),
            buckets,
        };
        let show_id = ShowId::new();
        let mut world = Buckets {
            now: t0(),
            buckets: spec
                .bucket_capacities()
                .into_iter()
                .map(|share| given::<Inventory>(&[super::inventory::initialized(show_id, share)]))
                .collect(),
            reservations: vec![],
        };
        for step in steps {
            world.apply(step);
            let now = world.now;
            let sections = world.sections();
            prop_assert_eq!(sections.iter().map(|s| s.capacity).sum::<u32>(), capacity);
            for s in &sections {
                prop_assert!(s.sold_count() + s.held_count(now) <= s.capacity);
            }
        }
        world.apply(Step::Advance(11));
        world.apply(Step::Sweep);
        let mut sold = 0;
        for i in 0..world.reservations.len() {
            let d = world.details(i);
            prop_assert!(d.status == ReservationStatus::Confirmed || d.status.is_final(), "{:?}", d.status);
            if d.status == ReservationStatus::Confirmed {
                sold += d.quantity;
            }
        }
        let now = world.now;
        let sections = world.sections();
        prop_assert!(sections.iter().all(|s| s.tracked_entries() == 0));
        prop_assert_eq!(sections.iter().map(|s| s.sold_count()).sum::<u32>(), sold);
        prop_assert_eq!(sections.iter().map(|s| s.available(now)).sum::<u32>(), capacity - sold);
    }
}
