//! The inventory aggregate (stream `inventory-<show_id>-<section>`): one section's seats.
//!
//! A section is the unit of contention: every hold of the section is decided against
//! its version, so it can never be oversold, while sections of the same show are
//! independent. A hold counts against availability only until its expiry instant: an
//! expired hold is free at decision time whether or not its expiry was recorded.
//!
//! The section's state is bounded whatever the number of reservations: it counts seats
//! sold, and seats held per expiry second, not per reservation. What belongs to one
//! purchase (how many seats, until when, whether they are held, sold or released) lives
//! in its reservation stream, which the command layer appends with the section's events
//! in one transaction and version-checks: that is what stops a hold from being
//! confirmed or released twice. So confirming, releasing and returning seats carry the
//! quantity and the hold's expiry, taken from the reservation.

use std::collections::BTreeMap;

use chrono::{SubsecRound, TimeDelta};
use serde::{Deserialize, Serialize};

use crate::{
    Aggregate, DomainError, Money, Quantity, ReservationId, SalesStatus, SectionName, ShowId,
    Timestamp,
};

/// Why held seats went back on sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    Expired,
    CancelledByCustomer,
    PaymentDeclined,
    ShowCancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InventoryCommand {
    Initialize {
        show_id: ShowId,
        section: SectionName,
        capacity: u32,
        unit_price: Money,
        max_per_order: u32,
    },
    /// Hold seats for a reservation until `expires_at`. `sales` is the show's status,
    /// looked up by the caller: the section does not own it.
    Hold {
        reservation_id: ReservationId,
        quantity: Quantity,
        expires_at: Timestamp,
        sales: SalesStatus,
    },
    /// Turn a paid reservation's hold (`quantity` seats until `expires_at`, as its
    /// reservation records them) into sold seats. An expired hold can still be
    /// confirmed while enough seats are free.
    Confirm {
        reservation_id: ReservationId,
        quantity: u32,
        expires_at: Timestamp,
    },
    /// Put a hold's seats back on sale.
    Release {
        reservation_id: ReservationId,
        quantity: u32,
        expires_at: Timestamp,
        reason: ReleaseReason,
    },
    /// Put a refunded purchase's seats back on sale.
    ReturnSold {
        reservation_id: ReservationId,
        quantity: u32,
    },
    /// Move free seats out of this bucket to another bucket of the section, in the same
    /// append as that bucket's [`InventoryCommand::TakeSeats`] (rebalancing).
    GiveSeats { seats: u32, to_bucket: u32 },
    /// Take in free seats given by another bucket of the section.
    TakeSeats { seats: u32, from_bucket: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionInitialized {
    pub show_id: ShowId,
    pub section: SectionName,
    pub capacity: u32,
    pub unit_price: Money,
    pub max_per_order: u32,
}

/// Schema version 3: v1 stored `seats`, `held_at` and `hold_seconds`; v2 stored
/// neither the decision instant nor anything else; v3 adds `held_at` back, which lets
/// the state forget holds that had expired by then. See [`crate::schema`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeatsHeld {
    pub reservation_id: ReservationId,
    pub quantity: u32,
    pub expires_at: Timestamp,
    /// When the hold was decided; `None` for holds recorded before schema v3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_at: Option<Timestamp>,
}

/// Schema version 2 adds `expires_at`, the hold's expiry, so that the state can take
/// the seats off the right expiry second. `None` in events recorded before v2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatsConfirmed {
    pub reservation_id: ReservationId,
    pub quantity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// Schema version 2 adds `expires_at`, as [`SeatsConfirmed`] does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatsReleased {
    pub reservation_id: ReservationId,
    pub quantity: u32,
    pub reason: ReleaseReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatsReturned {
    pub reservation_id: ReservationId,
    pub quantity: u32,
}

/// Free seats moved to another bucket of the section: this bucket's capacity shrinks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatsMovedOut {
    pub seats: u32,
    pub to_bucket: u32,
}

/// Free seats moved in from another bucket of the section: this bucket's capacity grows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatsMovedIn {
    pub seats: u32,
    pub from_bucket: u32,
}

/// The events of a section's stream (of one of its buckets). Variant names are the
/// stored event types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum InventoryEvent {
    SectionInitialized(SectionInitialized),
    SeatsHeld(SeatsHeld),
    SeatsConfirmed(SeatsConfirmed),
    SeatsReleased(SeatsReleased),
    SeatsReturned(SeatsReturned),
    SeatsMovedOut(SeatsMovedOut),
    SeatsMovedIn(SeatsMovedIn),
}

/// The whole second at which a hold expiring at `expires_at` stops counting: holds
/// are grouped per second so that the state holds at most one entry per second of the
/// hold window, however many buyers there are. Rounding up keeps seats held a fraction
/// of a second longer, never shorter; the command layer gives holds whole-second
/// expiries, so for them it changes nothing.
pub fn expiry_slot(expires_at: Timestamp) -> Timestamp {
    let whole = expires_at.trunc_subsecs(0);
    if whole == expires_at {
        whole
    } else {
        whole + TimeDelta::seconds(1)
    }
}

/// Seats held for one reservation until an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub quantity: u32,
    pub expires_at: Timestamp,
}

/// A section's seats as its events describe them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionInventory {
    pub show_id: ShowId,
    pub section: SectionName,
    pub capacity: u32,
    pub unit_price: Money,
    pub max_per_order: u32,
    /// Seats held by holds not yet confirmed or released, per [`expiry_slot`]. Slots
    /// that had expired when a later hold was decided are dropped: nothing counts them.
    pub held_until: BTreeMap<Timestamp, u32>,
    /// Seats sold and not returned.
    pub sold: u32,
    /// Holds recorded before `SeatsHeld` v3 and not yet ended, by reservation: the
    /// confirmations and releases of that time did not carry the hold's expiry, so
    /// these are found by reservation. Empty in a stream started since, and drained as
    /// those holds end or expire.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub legacy_holds: BTreeMap<ReservationId, Hold>,
}

impl SectionInventory {
    pub fn sold_count(&self) -> u32 {
        self.sold
    }

    /// Seats held by holds that have not expired at `now`.
    pub fn held_count(&self, now: Timestamp) -> u32 {
        self.held_until
            .range((std::ops::Bound::Excluded(now), std::ops::Bound::Unbounded))
            .map(|(_, seats)| *seats)
            .sum()
    }

    /// Capacity minus sold seats minus holds that have not expired at `now`.
    pub fn available(&self, now: Timestamp) -> u32 {
        self.capacity
            .saturating_sub(self.sold)
            .saturating_sub(self.held_count(now))
    }

    /// How many entries the state keeps: at most one per second of the hold window
    /// (plus holds from before `SeatsHeld` v3), whatever the number of reservations.
    pub fn tracked_entries(&self) -> usize {
        self.held_until.len() + self.legacy_holds.len()
    }

    /// A whole section from its buckets: capacities, sold and held seats added up.
    /// `None` without buckets.
    pub fn combined(buckets: impl IntoIterator<Item = SectionInventory>) -> Option<Self> {
        let mut buckets = buckets.into_iter();
        let mut section = buckets.next()?;
        for bucket in buckets {
            section.capacity += bucket.capacity;
            section.sold += bucket.sold;
            for (slot, seats) in bucket.held_until {
                *section.held_until.entry(slot).or_default() += seats;
            }
            section.legacy_holds.extend(bucket.legacy_holds);
        }
        Some(section)
    }

    /// Takes a hold that ended (confirmed or released) off its expiry slot.
    fn end_hold(
        &mut self,
        reservation_id: ReservationId,
        quantity: u32,
        expires_at: Option<Timestamp>,
    ) {
        let (quantity, slot) = match self.legacy_holds.remove(&reservation_id) {
            Some(hold) => (hold.quantity, expiry_slot(hold.expires_at)),
            None => match expires_at {
                Some(expires_at) => (quantity, expiry_slot(expires_at)),
                // Ended before v2 without a v3 hold: nothing of it is counted.
                None => return,
            },
        };
        // A slot that is gone had expired and been dropped: nothing to take off.
        if let Some(seats) = self.held_until.get_mut(&slot) {
            *seats = seats.saturating_sub(quantity);
            if *seats == 0 {
                self.held_until.remove(&slot);
            }
        }
    }

    /// Drops the slots and legacy holds that had expired at `instant`: no decision at
    /// or after it counts them, and a hold ending later finds nothing to take off.
    fn forget_expired(&mut self, instant: Timestamp) {
        self.held_until = self.held_until.split_off(&next_slot_after(instant));
        self.legacy_holds
            .retain(|_, hold| expiry_slot(hold.expires_at) > instant);
    }
}

/// One section's seats at an instant, as readers are shown them: read from the
/// section's events by the command layer, or from the read models, which may lag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionAvailability {
    pub section: SectionName,
    pub capacity: u32,
    /// Seats in holds that have not expired at the reader's instant.
    pub held: u32,
    pub sold: u32,
    pub available: u32,
    pub unit_price: Money,
}

/// The first slot (whole second) strictly after `instant`.
fn next_slot_after(instant: Timestamp) -> Timestamp {
    expiry_slot(instant + TimeDelta::nanoseconds(1))
}

/// The inventory aggregate's state: `None` until initialized.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory(pub Option<SectionInventory>);

impl Aggregate for Inventory {
    type Command = InventoryCommand;
    type Event = InventoryEvent;
    const KIND: &'static str = "inventory";
    // 2: seats held per expiry slot and a count of seats sold, instead of per reservation.
    const SNAPSHOT_VERSION: u32 = 2;

    fn decide(
        &self,
        command: InventoryCommand,
        now: Timestamp,
    ) -> Result<Vec<InventoryEvent>, DomainError> {
        if let InventoryCommand::Initialize {
            show_id,
            section,
            capacity,
            unit_price,
            max_per_order,
        } = command
        {
            if self.0.is_some() {
                return Err(DomainError::SectionAlreadyInitialized);
            }
            // 0: a bucket added to a section on sale starts empty; seats are moved in.
            if capacity > crate::show::MAX_CAPACITY {
                return Err(DomainError::InvalidCapacity(capacity));
            }
            return Ok(vec![InventoryEvent::SectionInitialized(
                SectionInitialized {
                    show_id,
                    section,
                    capacity,
                    unit_price,
                    max_per_order,
                },
            )]);
        }
        let inventory = self.0.as_ref().ok_or(DomainError::UnknownSection)?;
        match command {
            InventoryCommand::Initialize { .. } => Err(DomainError::SectionAlreadyInitialized),
            InventoryCommand::Hold {
                reservation_id,
                quantity,
                expires_at,
                sales,
            } => {
                match sales {
                    SalesStatus::OnSale => {}
                    SalesStatus::Cancelled => return Err(DomainError::ShowCancelled),
                    SalesStatus::Scheduled | SalesStatus::Closed => {
                        return Err(DomainError::SalesNotOpen)
                    }
                }
                if quantity.get() > inventory.max_per_order {
                    return Err(DomainError::QuantityAboveLimit {
                        requested: quantity.get(),
                        limit: inventory.max_per_order,
                    });
                }
                if expires_at <= now {
                    return Err(DomainError::InvalidHoldExpiry);
                }
                let available = inventory.available(now);
                if quantity.get() > available {
                    return Err(DomainError::SoldOut {
                        requested: quantity.get(),
                        available,
                    });
                }
                Ok(vec![InventoryEvent::SeatsHeld(SeatsHeld {
                    reservation_id,
                    quantity: quantity.get(),
                    expires_at,
                    held_at: Some(now),
                })])
            }
            InventoryCommand::Confirm {
                reservation_id,
                quantity,
                expires_at,
            } => {
                // An expired hold's seats are already counted as free: it can be
                // confirmed only if they still are.
                if expiry_slot(expires_at) <= now && quantity > inventory.available(now) {
                    return Err(DomainError::HoldExpired);
                }
                Ok(vec![InventoryEvent::SeatsConfirmed(SeatsConfirmed {
                    reservation_id,
                    quantity,
                    expires_at: Some(expires_at),
                })])
            }
            InventoryCommand::Release {
                reservation_id,
                quantity,
                expires_at,
                reason,
            } => Ok(vec![InventoryEvent::SeatsReleased(SeatsReleased {
                reservation_id,
                quantity,
                reason,
                expires_at: Some(expires_at),
            })]),
            InventoryCommand::ReturnSold {
                reservation_id,
                quantity,
            } => {
                if quantity > inventory.sold {
                    return Err(DomainError::NotPaid);
                }
                Ok(vec![InventoryEvent::SeatsReturned(SeatsReturned {
                    reservation_id,
                    quantity,
                })])
            }
            InventoryCommand::GiveSeats { seats, to_bucket } => {
                let available = inventory.available(now);
                if seats == 0 || seats > available {
                    return Err(DomainError::NotEnoughFreeSeats {
                        requested: seats,
                        available,
                    });
                }
                Ok(vec![InventoryEvent::SeatsMovedOut(SeatsMovedOut {
                    seats,
                    to_bucket,
                })])
            }
            InventoryCommand::TakeSeats { seats, from_bucket } => {
                if inventory.capacity.checked_add(seats).is_none() {
                    return Err(DomainError::InvalidCapacity(u32::MAX));
                }
                Ok(vec![InventoryEvent::SeatsMovedIn(SeatsMovedIn {
                    seats,
                    from_bucket,
                })])
            }
        }
    }

    fn evolve(self, event: &InventoryEvent) -> Self {
        let mut inventory = match (self.0, event) {
            (_, InventoryEvent::SectionInitialized(e)) => {
                return Inventory(Some(SectionInventory {
                    show_id: e.show_id,
                    section: e.section.clone(),
                    capacity: e.capacity,
                    unit_price: e.unit_price,
                    max_per_order: e.max_per_order,
                    held_until: BTreeMap::new(),
                    sold: 0,
                    legacy_holds: BTreeMap::new(),
                }))
            }
            (None, _) => return Inventory(None),
            (Some(inventory), _) => inventory,
        };
        match event {
            InventoryEvent::SectionInitialized(_) => {}
            InventoryEvent::SeatsHeld(e) => {
                match e.held_at {
                    Some(held_at) => inventory.forget_expired(held_at),
                    None => {
                        inventory.legacy_holds.insert(
                            e.reservation_id,
                            Hold {
                                quantity: e.quantity,
                                expires_at: e.expires_at,
                            },
                        );
                    }
                }
                *inventory
                    .held_until
                    .entry(expiry_slot(e.expires_at))
                    .or_default() += e.quantity;
            }
            InventoryEvent::SeatsConfirmed(e) => {
                inventory.end_hold(e.reservation_id, e.quantity, e.expires_at);
                inventory.sold += e.quantity;
            }
            InventoryEvent::SeatsReleased(e) => {
                inventory.end_hold(e.reservation_id, e.quantity, e.expires_at);
            }
            InventoryEvent::SeatsReturned(e) => {
                inventory.sold = inventory.sold.saturating_sub(e.quantity);
            }
            InventoryEvent::SeatsMovedOut(e) => {
                inventory.capacity = inventory.capacity.saturating_sub(e.seats);
            }
            InventoryEvent::SeatsMovedIn(e) => {
                inventory.capacity = inventory.capacity.saturating_add(e.seats);
            }
        }
        Inventory(Some(inventory))
    }
}

/// The stream id of a section's inventory, its first bucket's. Section names are
/// compared case-insensitively, so the stream id uses the lower-case name.
pub fn inventory_stream(show_id: ShowId, section: &SectionName) -> String {
    format!("inventory-{show_id}-{}", section.as_str().to_lowercase())
}

/// The stream id of one bucket of a section: bucket 0 is [`inventory_stream`], so a
/// section of one bucket is the stream it always was; bucket `k` adds `~k` (a
/// character section names cannot hold).
pub fn bucket_stream(show_id: ShowId, section: &SectionName, bucket: u32) -> String {
    let first = inventory_stream(show_id, section);
    if bucket == 0 {
        first
    } else {
        format!("{first}~{bucket}")
    }
}
