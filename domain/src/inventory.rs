//! The inventory aggregate (stream `inventory-<show_id>-<section>`): one section's seats.
//!
//! A section is the unit of contention: every hold of the section is decided against
//! its version, so it can never be oversold, while sections of the same show are
//! independent. A hold counts against availability only until its expiry instant: an
//! expired hold is free at decision time whether or not its expiry was recorded.

use std::collections::BTreeMap;

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
    /// Turn a paid reservation's hold into sold seats. An expired hold can still be
    /// confirmed while enough seats are free.
    Confirm { reservation_id: ReservationId },
    /// Put a hold's seats back on sale.
    Release {
        reservation_id: ReservationId,
        reason: ReleaseReason,
    },
    /// Put a refunded purchase's seats back on sale.
    ReturnSold { reservation_id: ReservationId },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionInitialized {
    pub show_id: ShowId,
    pub section: SectionName,
    pub capacity: u32,
    pub unit_price: Money,
    pub max_per_order: u32,
}

/// Schema version 2: v1 stored `seats`, `held_at` and `hold_seconds`; see
/// [`crate::schema`] for the upcaster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeatsHeld {
    pub reservation_id: ReservationId,
    pub quantity: u32,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatsConfirmed {
    pub reservation_id: ReservationId,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatsReleased {
    pub reservation_id: ReservationId,
    pub quantity: u32,
    pub reason: ReleaseReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatsReturned {
    pub reservation_id: ReservationId,
    pub quantity: u32,
}

/// The events of a section's stream. Variant names are the stored event types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum InventoryEvent {
    SectionInitialized(SectionInitialized),
    SeatsHeld(SeatsHeld),
    SeatsConfirmed(SeatsConfirmed),
    SeatsReleased(SeatsReleased),
    SeatsReturned(SeatsReturned),
}

/// Seats held for one reservation until an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub quantity: u32,
    pub expires_at: Timestamp,
}

impl Hold {
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.expires_at > now
    }
}

/// A section's seats as its events describe them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionInventory {
    pub show_id: ShowId,
    pub section: SectionName,
    pub capacity: u32,
    pub unit_price: Money,
    pub max_per_order: u32,
    /// Holds not yet confirmed or released, whether or not they have expired.
    pub holds: BTreeMap<ReservationId, Hold>,
    /// Seats sold, per reservation, so that a refund returns exactly those seats.
    pub sold: BTreeMap<ReservationId, u32>,
}

impl SectionInventory {
    pub fn sold_count(&self) -> u32 {
        self.sold.values().sum()
    }

    /// Seats held by holds that have not expired at `now`.
    pub fn held_count(&self, now: Timestamp) -> u32 {
        self.holds
            .values()
            .filter(|h| h.is_active(now))
            .map(|h| h.quantity)
            .sum()
    }

    /// Capacity minus sold seats minus holds that have not expired at `now`.
    pub fn available(&self, now: Timestamp) -> u32 {
        self.capacity
            .saturating_sub(self.sold_count())
            .saturating_sub(self.held_count(now))
    }
}

/// The inventory aggregate's state: `None` until initialized.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory(pub Option<SectionInventory>);

impl Aggregate for Inventory {
    type Command = InventoryCommand;
    type Event = InventoryEvent;
    const KIND: &'static str = "inventory";
    const SNAPSHOT_VERSION: u32 = 1;

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
            if !(1..=crate::show::MAX_CAPACITY).contains(&capacity) {
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
                if inventory.holds.contains_key(&reservation_id)
                    || inventory.sold.contains_key(&reservation_id)
                {
                    return Err(DomainError::ReservationAlreadyExists);
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
                })])
            }
            InventoryCommand::Confirm { reservation_id } => {
                let hold = inventory
                    .holds
                    .get(&reservation_id)
                    .ok_or(DomainError::HoldNotFound)?;
                // An expired hold's seats are already counted as free: it can be
                // confirmed only if they still are.
                if !hold.is_active(now) && hold.quantity > inventory.available(now) {
                    return Err(DomainError::HoldExpired);
                }
                Ok(vec![InventoryEvent::SeatsConfirmed(SeatsConfirmed {
                    reservation_id,
                    quantity: hold.quantity,
                })])
            }
            InventoryCommand::Release {
                reservation_id,
                reason,
            } => {
                let hold = inventory
                    .holds
                    .get(&reservation_id)
                    .ok_or(DomainError::HoldNotFound)?;
                Ok(vec![InventoryEvent::SeatsReleased(SeatsReleased {
                    reservation_id,
                    quantity: hold.quantity,
                    reason,
                })])
            }
            InventoryCommand::ReturnSold { reservation_id } => {
                let quantity = *inventory
                    .sold
                    .get(&reservation_id)
                    .ok_or(DomainError::NotPaid)?;
                Ok(vec![InventoryEvent::SeatsReturned(SeatsReturned {
                    reservation_id,
                    quantity,
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
                    holds: BTreeMap::new(),
                    sold: BTreeMap::new(),
                }))
            }
            (None, _) => return Inventory(None),
            (Some(inventory), _) => inventory,
        };
        match event {
            InventoryEvent::SectionInitialized(_) => {}
            InventoryEvent::SeatsHeld(e) => {
                inventory.holds.insert(
                    e.reservation_id,
                    Hold {
                        quantity: e.quantity,
                        expires_at: e.expires_at,
                    },
                );
            }
            InventoryEvent::SeatsConfirmed(e) => {
                inventory.holds.remove(&e.reservation_id);
                *inventory.sold.entry(e.reservation_id).or_default() += e.quantity;
            }
            InventoryEvent::SeatsReleased(e) => {
                inventory.holds.remove(&e.reservation_id);
            }
            InventoryEvent::SeatsReturned(e) => {
                inventory.sold.remove(&e.reservation_id);
            }
        }
        Inventory(Some(inventory))
    }
}

/// The stream id of a section's inventory. Section names are compared case-insensitively,
/// so the stream id uses the lower-case name.
pub fn inventory_stream(show_id: ShowId, section: &SectionName) -> String {
    format!("inventory-{show_id}-{}", section.as_str().to_lowercase())
}
