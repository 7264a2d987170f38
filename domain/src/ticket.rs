//! The ticket aggregate (stream `ticket-<ticket_id>`): one seat's right of entry, from
//! its issue with the purchase's confirmation to the door, and its transfers.
//!
//! ```text
//! issued ──admitted──> admitted (an earlier scan uploaded later backdates it)
//!   │
//!   └─transferred──> issued again to the new holder, with a new code (generation + 1)
//! ```
//!
//! A ticket carries no copy of its purchase's state: whether the purchase still stands
//! (not refunded, not cancelled) is read from the reservation when the ticket is used,
//! and given to the decision. So a refund revokes the tickets without touching them.
//!
//! The code a ticket is shown as is signed by the application (the domain holds no
//! keys); the domain keeps the code it was given and the generation it is valid for.

use serde::{Deserialize, Serialize};

use crate::{
    Aggregate, CustomerId, DomainError, ReservationId, ReservationStatus, SectionName, ShowId,
    TicketId, Timestamp,
};

/// The longest gate name kept with a scan.
pub const MAX_GATE_LEN: usize = 64;

/// Why a ticket no longer admits anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Revocation {
    /// Its purchase was refunded (by the organizer, or with the show's cancellation).
    Refunded,
    /// Its purchase was cancelled.
    Cancelled,
    /// The code shown was replaced when the ticket was transferred.
    Transferred,
}

impl std::fmt::Display for Revocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Refunded => "refunded",
            Self::Cancelled => "cancelled",
            Self::Transferred => "transferred",
        })
    }
}

impl Revocation {
    /// Why a ticket of a purchase in `status` is revoked; `None` while it is confirmed.
    pub fn of_purchase(status: ReservationStatus) -> Option<Self> {
        match status {
            ReservationStatus::Confirmed => None,
            ReservationStatus::Cancelled => Some(Self::Cancelled),
            // A ticket exists only once its purchase was confirmed; any other ending
            // took the money back.
            _ => Some(Self::Refunded),
        }
    }
}

/// A scan at the door, as the scanner saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scan {
    /// The generation of the code shown (see [`TicketDetails::generation`]).
    pub generation: u32,
    /// When the ticket was scanned (a scanner offline uploads its scans later).
    pub scanned_at: Timestamp,
    pub gate: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketCommand {
    Issue {
        ticket_id: TicketId,
        reservation_id: ReservationId,
        show_id: ShowId,
        section: SectionName,
        holder: CustomerId,
        code: String,
    },
    /// Let the holder in, once. `purchase` is the reservation's status now.
    Admit {
        scan: Scan,
        purchase: ReservationStatus,
    },
    /// Give the ticket to another customer with a new code (generation + 1): the old
    /// code stops admitting.
    Transfer {
        by: CustomerId,
        to: CustomerId,
        code: String,
        generation: u32,
        purchase: ReservationStatus,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketIssued {
    pub ticket_id: TicketId,
    pub reservation_id: ReservationId,
    pub show_id: ShowId,
    pub section: SectionName,
    pub holder: CustomerId,
    pub generation: u32,
    pub code: String,
    pub issued_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketAdmitted {
    pub ticket_id: TicketId,
    pub show_id: ShowId,
    pub section: SectionName,
    pub generation: u32,
    pub scanned_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    pub recorded_at: Timestamp,
}

/// A scan uploaded late turned out to be earlier than the admission recorded: the
/// earliest scan is the admission, the one recorded before is a duplicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketAdmissionBackdated {
    pub ticket_id: TicketId,
    pub scanned_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    pub superseded_scanned_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_gate: Option<String>,
    pub recorded_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketTransferred {
    pub ticket_id: TicketId,
    pub show_id: ShowId,
    pub from: CustomerId,
    pub to: CustomerId,
    pub generation: u32,
    pub code: String,
    pub transferred_at: Timestamp,
}

/// The events of a ticket's stream. Variant names are the stored event types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum TicketEvent {
    TicketIssued(TicketIssued),
    TicketAdmitted(TicketAdmitted),
    TicketAdmissionBackdated(TicketAdmissionBackdated),
    TicketTransferred(TicketTransferred),
}

/// When and where a ticket was let in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    pub scanned_at: Timestamp,
    pub gate: Option<String>,
}

/// A ticket as its events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketDetails {
    pub ticket_id: TicketId,
    pub reservation_id: ReservationId,
    pub show_id: ShowId,
    pub section: SectionName,
    /// Who may show it: the buyer, or whoever it was last transferred to.
    pub holder: CustomerId,
    /// Counts the codes this ticket had: 0 when issued, one more per transfer. Only a
    /// code of the current generation admits.
    pub generation: u32,
    /// The current code.
    pub code: String,
    pub admission: Option<Admission>,
    /// Everyone who held it before, oldest first.
    pub previous_holders: Vec<CustomerId>,
}

/// The ticket aggregate's state: `None` until issued.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket(pub Option<TicketDetails>);

impl Aggregate for Ticket {
    type Command = TicketCommand;
    type Event = TicketEvent;
    const KIND: &'static str = "ticket";
    const SNAPSHOT_VERSION: u32 = 1;

    fn decide(
        &self,
        command: TicketCommand,
        now: Timestamp,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        if let TicketCommand::Issue {
            ticket_id,
            reservation_id,
            show_id,
            section,
            holder,
            code,
        } = command
        {
            if self.0.is_some() {
                return Err(DomainError::TicketAlreadyIssued);
            }
            return Ok(vec![TicketEvent::TicketIssued(TicketIssued {
                ticket_id,
                reservation_id,
                show_id,
                section,
                holder,
                generation: 0,
                code,
                issued_at: now,
            })]);
        }
        let ticket = self.0.as_ref().ok_or(DomainError::TicketNotFound)?;
        match command {
            TicketCommand::Issue { .. } => Err(DomainError::TicketAlreadyIssued),
            TicketCommand::Admit { scan, purchase } => admit(ticket, scan, purchase, now),
            TicketCommand::Transfer {
                by,
                to,
                code,
                generation,
                purchase,
            } => {
                if by != ticket.holder {
                    return Err(DomainError::NotTicketHolder);
                }
                if let Some(revoked) = Revocation::of_purchase(purchase) {
                    return Err(DomainError::TicketRevoked(revoked));
                }
                if let Some(admission) = &ticket.admission {
                    return Err(DomainError::TicketAlreadyAdmitted {
                        scanned_at: admission.scanned_at,
                        gate: admission.gate.clone(),
                    });
                }
                if to == ticket.holder {
                    return Err(DomainError::TransferToHolder);
                }
                if generation != ticket.generation + 1 {
                    return Err(DomainError::StaleTicketGeneration);
                }
                Ok(vec![TicketEvent::TicketTransferred(TicketTransferred {
                    ticket_id: ticket.ticket_id,
                    show_id: ticket.show_id,
                    from: by,
                    to,
                    generation,
                    code,
                    transferred_at: now,
                })])
            }
        }
    }

    fn evolve(self, event: &TicketEvent) -> Self {
        let mut ticket = match (self.0, event) {
            (_, TicketEvent::TicketIssued(e)) => {
                return Ticket(Some(TicketDetails {
                    ticket_id: e.ticket_id,
                    reservation_id: e.reservation_id,
                    show_id: e.show_id,
                    section: e.section.clone(),
                    holder: e.holder.clone(),
                    generation: e.generation,
                    code: e.code.clone(),
                    admission: None,
                    previous_holders: Vec::new(),
                }))
            }
            (None, _) => return Ticket(None),
            (Some(ticket), _) => ticket,
        };
        match event {
            TicketEvent::TicketIssued(_) => {}
            TicketEvent::TicketAdmitted(e) => {
                ticket.admission = Some(Admission {
                    scanned_at: e.scanned_at,
                    gate: e.gate.clone(),
                });
            }
            TicketEvent::TicketAdmissionBackdated(e) => {
                ticket.admission = Some(Admission {
                    scanned_at: e.scanned_at,
                    gate: e.gate.clone(),
                });
            }
            TicketEvent::TicketTransferred(e) => {
                ticket.previous_holders.push(ticket.holder.clone());
                ticket.holder = e.to.clone();
                ticket.generation = e.generation;
                ticket.code = e.code.clone();
            }
        }
        Ticket(Some(ticket))
    }
}

/// Admits once. The same scan uploaded again is answered as admitted with nothing new
/// recorded; an earlier scan than the one recorded becomes the admission.
fn admit(
    ticket: &TicketDetails,
    scan: Scan,
    purchase: ReservationStatus,
    now: Timestamp,
) -> Result<Vec<TicketEvent>, DomainError> {
    if let Some(revoked) = Revocation::of_purchase(purchase) {
        return Err(DomainError::TicketRevoked(revoked));
    }
    if scan.generation != ticket.generation {
        return Err(if scan.generation < ticket.generation {
            DomainError::TicketRevoked(Revocation::Transferred)
        } else {
            DomainError::StaleTicketGeneration
        });
    }
    let gate = scan
        .gate
        .map(|gate| gate.chars().take(MAX_GATE_LEN).collect::<String>());
    match &ticket.admission {
        None => Ok(vec![TicketEvent::TicketAdmitted(TicketAdmitted {
            ticket_id: ticket.ticket_id,
            show_id: ticket.show_id,
            section: ticket.section.clone(),
            generation: ticket.generation,
            scanned_at: scan.scanned_at,
            gate,
            recorded_at: now,
        })]),
        Some(admission) if admission.scanned_at == scan.scanned_at && admission.gate == gate => {
            Ok(Vec::new())
        }
        Some(admission) if scan.scanned_at < admission.scanned_at => {
            Ok(vec![TicketEvent::TicketAdmissionBackdated(
                TicketAdmissionBackdated {
                    ticket_id: ticket.ticket_id,
                    scanned_at: scan.scanned_at,
                    gate,
                    superseded_scanned_at: admission.scanned_at,
                    superseded_gate: admission.gate.clone(),
                    recorded_at: now,
                },
            )])
        }
        Some(admission) => Err(DomainError::TicketAlreadyAdmitted {
            scanned_at: admission.scanned_at,
            gate: admission.gate.clone(),
        }),
    }
}

/// The stream id of a ticket.
pub fn ticket_stream(ticket_id: TicketId) -> String {
    format!("ticket-{ticket_id}")
}
