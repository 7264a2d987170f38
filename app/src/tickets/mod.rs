//! Tickets (streams: `ticket-…`, one per seat; reading `reservation-…` and `show-…`):
//! issued with a purchase's confirmation, shown as signed codes, admitted once at the
//! door, transferred to another customer (ADR 18).
//!
//! A confirmation issues its tickets in the same append (the reservation's
//! `TicketsIssued` and each ticket's `TicketIssued`), when a signing key is configured.
//! Without one, or for a purchase confirmed before tickets existed, they are issued
//! the first time they are asked for. A ticket is valid while its purchase is
//! confirmed: a refund or a cancellation revokes it with nothing written to it.

pub mod codes;

use serde::{Deserialize, Serialize};
use ticketing_domain::reservation::ReservationDetails;
use ticketing_domain::ticket::{Admission, Scan, TicketDetails};
use ticketing_domain::*;

use crate::execution::{CommandContext, Decision, Idempotency};
use crate::repository::{Change, Loaded};
use crate::{AppError, Ticketing};
use codes::{TicketClaims, TicketKeys};

/// How far in the future a scan's instant may be (scanners' clocks drift).
pub const MAX_SCAN_CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Where a ticket stands, for whoever looks at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TicketState {
    /// It admits its holder once.
    Valid,
    Admitted {
        scanned_at: Timestamp,
        gate: Option<String>,
    },
    Revoked {
        reason: Revocation,
    },
}

/// A ticket as its holder (or its buyer, or an admin) sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketView {
    pub ticket_id: TicketId,
    pub reservation_id: ReservationId,
    pub show_id: ShowId,
    pub section: SectionName,
    pub holder: CustomerId,
    pub generation: u32,
    /// The code to show at the door; `None` for whoever is not its holder (a buyer
    /// whose ticket was transferred).
    pub code: Option<String>,
    pub state: TicketState,
}

/// Who is scanning: an organizer's staff only scan that organizer's shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanScope {
    Organizer(OrganizerId),
    /// An admin.
    AnyShow,
}

impl ScanScope {
    /// Whether this scope reaches the shows of `organizer`.
    pub fn covers(&self, organizer: &OrganizerId) -> bool {
        match self {
            Self::Organizer(own) => own == organizer,
            Self::AnyShow => true,
        }
    }
}

/// One scan of a code at the door.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckIn {
    pub code: String,
    /// The show being let in, when the scanner knows it: a ticket for another show
    /// is refused.
    pub show_id: Option<ShowId>,
    pub gate: Option<String>,
    /// When it was scanned; now when not given (a scanner online).
    pub scanned_at: Option<Timestamp>,
}

/// A ticket let in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admitted {
    pub ticket_id: TicketId,
    pub show_id: ShowId,
    pub section: SectionName,
    pub scanned_at: Timestamp,
    pub gate: Option<String>,
    /// An earlier admission recorded before this scan, which this one (earlier still,
    /// uploaded late) replaced: that one was the duplicate.
    pub superseded: Option<Admission>,
}

/// A ticket given to another customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transferred {
    pub ticket_id: TicketId,
    pub to: CustomerId,
    pub generation: u32,
    pub transferred_at: Timestamp,
}

/// A ticket and the state of its purchase.
struct LoadedTicket {
    loaded: Loaded<Ticket>,
    details: TicketDetails,
    purchase: ReservationStatus,
}

impl Ticketing {
    /// Signs ticket codes with `keys` (the first signs, all verify). Without keys no
    /// ticket is issued, and codes cannot be checked.
    pub fn with_ticket_keys(mut self, keys: TicketKeys) -> Self {
        self.ticket_keys = Some(std::sync::Arc::new(keys));
        self
    }

    pub fn ticket_keys(&self) -> Option<&TicketKeys> {
        self.ticket_keys.as_deref()
    }

    fn keys(&self) -> Result<&TicketKeys, AppError> {
        self.ticket_keys().ok_or(AppError::TicketsNotConfigured)
    }

    /// The changes that issue the tickets of a purchase just confirmed (its state after
    /// the confirmation in `reservation`): the reservation's `TicketsIssued` and one
    /// new ticket stream per seat. Nothing without signing keys, or when issued before.
    pub(crate) fn issue_tickets(
        &self,
        reservation: &Reservation,
        now: Timestamp,
    ) -> Result<(Vec<ReservationEvent>, Vec<Change>), AppError> {
        let (Some(keys), Some(details)) = (self.ticket_keys(), reservation.0.as_ref()) else {
            return Ok((Vec::new(), Vec::new()));
        };
        if details.status != ReservationStatus::Confirmed || !details.tickets.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let ticket_ids: Vec<TicketId> = (0..details.quantity).map(|_| TicketId::new()).collect();
        let issued = reservation.decide(
            ReservationCommand::IssueTickets {
                tickets: ticket_ids.clone(),
            },
            now,
        )?;
        let mut changes = Vec::with_capacity(ticket_ids.len());
        for ticket_id in ticket_ids {
            let ticket = Loaded::<Ticket>::empty(ticket_stream(ticket_id));
            let code = keys.sign(TicketClaims {
                ticket_id,
                show_id: details.show_id,
                generation: 0,
            });
            let events = ticket.state.decide(
                TicketCommand::Issue {
                    ticket_id,
                    reservation_id: details.reservation_id,
                    show_id: details.show_id,
                    section: details.section.clone(),
                    holder: details.customer_id.clone(),
                    code,
                },
                now,
            )?;
            changes.push(ticket.change(events));
        }
        Ok((issued, changes))
    }

    /// The tickets of a purchase, in seat order, issuing them first if the purchase is
    /// confirmed and has none yet (confirmed while no key was configured, or before
    /// tickets existed). Whoever asks is checked by the caller against the
    /// reservation's customer; codes are shown only to each ticket's holder.
    ///
    /// # Errors
    /// [`DomainError::ReservationNotFound`]; [`AppError::TicketsNotConfigured`] when
    /// they must be issued and no key is configured.
    pub async fn reservation_tickets(
        &self,
        ctx: &CommandContext,
        reservation_id: ReservationId,
    ) -> Result<(ReservationDetails, Vec<TicketView>), AppError> {
        let (_, mut details) = self.load_existing_reservation(reservation_id).await?;
        if details.status == ReservationStatus::Confirmed && details.tickets.is_empty() {
            self.keys()?;
            details = self
                .execute(ctx, None, move || async move {
                    let (reservation, details) =
                        self.load_existing_reservation(reservation_id).await?;
                    let (events, mut changes) =
                        self.issue_tickets(&reservation.state, self.clock.now())?;
                    // Issued by a concurrent listing: nothing new, and `details` has them.
                    let issued = reservation.state.clone().fold(&events).0.unwrap_or(details);
                    changes.push(reservation.change(events));
                    Ok(Decision {
                        completes: true,
                        changes,
                        outcome: issued,
                    })
                })
                .await?;
        }
        let mut views = Vec::with_capacity(details.tickets.len());
        for ticket_id in &details.tickets {
            let (loaded, ticket) = self.load_existing_ticket(*ticket_id).await?;
            let ticket = LoadedTicket {
                loaded,
                details: ticket,
                purchase: details.status,
            };
            let shown_to_buyer = ticket.details.holder == details.customer_id;
            views.push(view(&ticket, shown_to_buyer));
        }
        Ok((details, views))
    }

    /// One ticket, as its holder sees it (with its code). The caller checks that the
    /// asker is [`TicketView::holder`] (or an admin).
    ///
    /// # Errors
    /// [`DomainError::TicketNotFound`].
    pub async fn ticket(&self, ticket_id: TicketId) -> Result<TicketView, AppError> {
        let ticket = self.load_ticket(ticket_id).await?;
        Ok(view(&ticket, true))
    }

    /// A ticket and the state of its purchase, read from the purchase's stream.
    async fn load_ticket(&self, ticket_id: TicketId) -> Result<LoadedTicket, AppError> {
        let (loaded, details) = self.load_existing_ticket(ticket_id).await?;
        let (_, purchase) = self
            .load_existing_reservation(details.reservation_id)
            .await?;
        Ok(LoadedTicket {
            loaded,
            details,
            purchase: purchase.status,
        })
    }

    async fn load_existing_ticket(
        &self,
        ticket_id: TicketId,
    ) -> Result<(Loaded<Ticket>, TicketDetails), AppError> {
        let loaded = self.load::<Ticket>(&ticket_stream(ticket_id)).await?;
        let details = loaded.state.0.clone().ok_or(DomainError::TicketNotFound)?;
        Ok((loaded, details))
    }

    /// Lets a ticket in, once: the code's signature is checked, then the scanner's
    /// right to the show, then the ticket. Concurrent scans of one ticket at several
    /// gates admit it exactly once; the others are told when and where it was.
    ///
    /// # Errors
    /// [`AppError::InvalidTicketCode`]; [`DomainError::TicketForAnotherShow`],
    /// [`DomainError::NotTheShowsOrganizer`], [`DomainError::TicketNotFound`],
    /// [`DomainError::TicketAlreadyAdmitted`], [`DomainError::TicketRevoked`];
    /// [`DomainError::InvalidScanTime`] for a scan instant in the future.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor))]
    pub async fn check_in(
        &self,
        ctx: &CommandContext,
        scope: &ScanScope,
        request: CheckIn,
    ) -> Result<Admitted, AppError> {
        let answer = self.try_check_in(ctx, scope, request).await;
        crate::metrics::checked_in(&answer);
        answer
    }

    async fn try_check_in(
        &self,
        ctx: &CommandContext,
        scope: &ScanScope,
        request: CheckIn,
    ) -> Result<Admitted, AppError> {
        let claims = self.keys()?.verify(&request.code)?;
        if request.show_id.is_some_and(|show| show != claims.show_id) {
            return Err(DomainError::TicketForAnotherShow.into());
        }
        let now = self.clock.now();
        let scanned_at = request.scanned_at.unwrap_or(now);
        if scanned_at > now + MAX_SCAN_CLOCK_SKEW {
            return Err(DomainError::InvalidScanTime.into());
        }
        let (_, show) = self.load_existing_show(claims.show_id).await?;
        if !scope.covers(&show.organizer_id) {
            return Err(DomainError::NotTheShowsOrganizer.into());
        }
        let scan = Scan {
            generation: claims.generation,
            scanned_at,
            gate: request.gate.clone().filter(|gate| !gate.trim().is_empty()),
        };
        // A retried scan with its key answers as the first did, even though "now" moved.
        let idempotency = Idempotency::of(ctx, "check_in", &request);
        self.once(
            idempotency.as_ref(),
            self.admit(ctx, idempotency.as_ref(), claims, scan),
        )
        .await
    }

    async fn admit(
        &self,
        ctx: &CommandContext,
        idempotency: Option<&Idempotency>,
        claims: TicketClaims,
        scan: Scan,
    ) -> Result<Admitted, AppError> {
        self.execute(ctx, idempotency, || {
            let scan = scan.clone();
            async move {
                let ticket = self.load_ticket(claims.ticket_id).await?;
                if ticket.details.show_id != claims.show_id {
                    return Err(AppError::InvalidTicketCode(codes::CodeError::BadSignature));
                }
                let before = ticket.details.admission.clone();
                let events = ticket.loaded.state.decide(
                    TicketCommand::Admit {
                        scan,
                        purchase: ticket.purchase,
                    },
                    self.clock.now(),
                )?;
                let after = ticket.loaded.state.clone().fold(&events);
                let admission = after
                    .0
                    .as_ref()
                    .and_then(|t| t.admission.clone())
                    .ok_or(DomainError::TicketNotFound)?;
                let superseded = before.filter(|b| *b != admission);
                Ok(Decision {
                    completes: true,
                    changes: vec![ticket.loaded.change(events)],
                    outcome: Admitted {
                        ticket_id: ticket.details.ticket_id,
                        show_id: ticket.details.show_id,
                        section: ticket.details.section.clone(),
                        scanned_at: admission.scanned_at,
                        gate: admission.gate,
                        superseded,
                    },
                })
            }
        })
        .await
    }

    /// Scans collected offline, uploaded together: taken in the order they were
    /// scanned, so that the earliest scan of a ticket admits it and every later one is
    /// reported as its duplicate, whatever order they come in. Uploading the same
    /// scans again changes nothing and answers the same (each scan is recognised by
    /// its instant and gate; `ctx` carries no idempotency key, or every scan would
    /// claim the same one). One answer per scan, in the order given.
    pub async fn check_in_batch(
        &self,
        ctx: &CommandContext,
        scope: &ScanScope,
        scans: Vec<CheckIn>,
    ) -> Vec<Result<Admitted, AppError>> {
        let mut order: Vec<usize> = (0..scans.len()).collect();
        let now = self.clock.now();
        order.sort_by_key(|index| scans[*index].scanned_at.unwrap_or(now));
        let mut answers: Vec<Option<Result<Admitted, AppError>>> =
            (0..scans.len()).map(|_| None).collect();
        for index in order {
            let answer = self.check_in(ctx, scope, scans[index].clone()).await;
            answers[index] = Some(answer);
        }
        answers.into_iter().flatten().collect()
    }

    /// Gives a ticket to another customer: a new code is issued to them and the old
    /// one stops admitting, in one append. Only its holder can, before it is used.
    ///
    /// # Errors
    /// [`DomainError::TicketNotFound`] (also for a caller who is not its holder, when
    /// the caller says so: see the API), [`DomainError::NotTicketHolder`],
    /// [`DomainError::TicketAlreadyAdmitted`], [`DomainError::TicketRevoked`],
    /// [`DomainError::TransferToHolder`].
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor, %ticket_id))]
    pub async fn transfer_ticket(
        &self,
        ctx: &CommandContext,
        by: CustomerId,
        ticket_id: TicketId,
        to: CustomerId,
    ) -> Result<Transferred, AppError> {
        let keys = self.keys()?;
        let idempotency = Idempotency::of(ctx, "transfer_ticket", &(&by, &ticket_id, &to));
        self.once(idempotency.as_ref(), async {
            self.execute(ctx, idempotency.as_ref(), || {
                let (by, to) = (by.clone(), to.clone());
                async move {
                    let ticket = self.load_ticket(ticket_id).await?;
                    let generation = ticket.details.generation + 1;
                    let code = keys.sign(TicketClaims {
                        ticket_id,
                        show_id: ticket.details.show_id,
                        generation,
                    });
                    let now = self.clock.now();
                    let events = ticket.loaded.state.decide(
                        TicketCommand::Transfer {
                            by,
                            to: to.clone(),
                            code,
                            generation,
                            purchase: ticket.purchase,
                        },
                        now,
                    )?;
                    Ok(Decision {
                        completes: true,
                        changes: vec![ticket.loaded.change(events)],
                        outcome: Transferred {
                            ticket_id,
                            to,
                            generation,
                            transferred_at: now,
                        },
                    })
                }
            })
            .await
        })
        .await
    }
}

fn view(ticket: &LoadedTicket, show_code: bool) -> TicketView {
    let details = &ticket.details;
    let state = match (Revocation::of_purchase(ticket.purchase), &details.admission) {
        (_, Some(admission)) => TicketState::Admitted {
            scanned_at: admission.scanned_at,
            gate: admission.gate.clone(),
        },
        (Some(reason), None) => TicketState::Revoked { reason },
        (None, None) => TicketState::Valid,
    };
    TicketView {
        ticket_id: details.ticket_id,
        reservation_id: details.reservation_id,
        show_id: details.show_id,
        section: details.section.clone(),
        holder: details.holder.clone(),
        generation: details.generation,
        code: show_code.then(|| details.code.clone()),
        state,
    }
}
