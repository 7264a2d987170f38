//! The show aggregate (stream `show-<show_id>`): what is on sale, by whom, and whether
//! sales are open.

use serde::{Deserialize, Serialize};

use crate::{Aggregate, Currency, DomainError, Money, OrganizerId, SectionName, ShowId, Timestamp};

/// The most sections one show may have.
pub const MAX_SECTIONS: usize = 50;
/// The most seats one section may have.
pub const MAX_CAPACITY: u32 = 100_000;
/// The most characters of a show's title or venue.
pub const MAX_SHOW_TEXT_LEN: usize = 200;
/// The per-order limit when the organizer sets none.
pub const DEFAULT_MAX_PER_ORDER: u32 = 10;

/// The most escrow buckets a section can be split into.
pub const MAX_BUCKETS: u32 = 64;
/// When the organizer does not choose, a section gets one bucket per this many seats
/// (at least one, at most [`MAX_DEFAULT_BUCKETS`]).
pub const SEATS_PER_DEFAULT_BUCKET: u32 = 5_000;
/// The most buckets a section gets without the organizer asking for more.
pub const MAX_DEFAULT_BUCKETS: u32 = 16;

/// One section as the organizer defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionSpec {
    pub name: SectionName,
    pub capacity: u32,
    pub unit_price: Money,
    /// How many escrow buckets share the section's seats: each bucket is an inventory
    /// stream of its own with a share of the capacity, so that holds in different
    /// buckets do not wait for each other. Shows created before buckets have one.
    #[serde(default = "one_bucket")]
    pub buckets: u32,
}

fn one_bucket() -> u32 {
    1
}

/// How many buckets a section of `capacity` seats gets when the organizer does not say.
pub fn default_buckets(capacity: u32) -> u32 {
    (capacity / SEATS_PER_DEFAULT_BUCKET).clamp(1, MAX_DEFAULT_BUCKETS)
}

impl SectionSpec {
    /// A section split into the default number of buckets for its capacity.
    pub fn new(name: SectionName, capacity: u32, unit_price: Money) -> Self {
        Self {
            name,
            capacity,
            unit_price,
            buckets: default_buckets(capacity),
        }
    }

    /// Each bucket's share of the capacity, in bucket order: as even as can be, the
    /// first buckets taking one seat more.
    pub fn bucket_capacities(&self) -> Vec<u32> {
        let buckets = self.buckets.max(1);
        let (share, rest) = (self.capacity / buckets, self.capacity % buckets);
        (0..buckets).map(|b| share + u32::from(b < rest)).collect()
    }
}

/// A checked description of a new show: building one is the only way to create a show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowPlan {
    pub title: String,
    pub venue: String,
    pub starts_at: Timestamp,
    pub sections: Vec<SectionSpec>,
    pub max_per_order: u32,
}

impl ShowPlan {
    /// # Errors
    /// A validation [`DomainError`] for an empty or overlong title or venue, no or too
    /// many sections, a capacity out of range, a repeated section name, sections in
    /// different currencies, or a per-order limit out of range.
    pub fn new(
        title: impl Into<String>,
        venue: impl Into<String>,
        starts_at: Timestamp,
        sections: Vec<SectionSpec>,
        max_per_order: u32,
    ) -> Result<Self, DomainError> {
        let (title, venue) = (title.into(), venue.into());
        // The length counts every character sent, surrounding spaces included, so the
        // limit is the one a client can check (and the API documents) before sending.
        let text_ok = |s: &str| {
            !s.trim().is_empty()
                && s.chars().count() <= MAX_SHOW_TEXT_LEN
                && !s.chars().any(char::is_control)
        };
        if !text_ok(&title) || !text_ok(&venue) {
            return Err(DomainError::InvalidShowText);
        }
        if sections.is_empty() || sections.len() > MAX_SECTIONS {
            return Err(DomainError::InvalidSectionCount { max: MAX_SECTIONS });
        }
        if !(1..=crate::Quantity::MAX).contains(&max_per_order) {
            return Err(DomainError::InvalidPerOrderLimit(max_per_order));
        }
        let currency = sections[0].unit_price.currency;
        for (i, section) in sections.iter().enumerate() {
            if !(1..=MAX_CAPACITY).contains(&section.capacity) {
                return Err(DomainError::InvalidCapacity(section.capacity));
            }
            if !(1..=MAX_BUCKETS.min(section.capacity)).contains(&section.buckets) {
                return Err(DomainError::InvalidBucketCount {
                    buckets: section.buckets,
                    capacity: section.capacity,
                });
            }
            if section.unit_price.currency != currency {
                return Err(DomainError::MixedCurrencies);
            }
            if sections[..i].iter().any(|s| s.name.same_as(&section.name)) {
                return Err(DomainError::DuplicateSection(section.name.to_string()));
            }
        }
        Ok(Self {
            title: title.trim().to_owned(),
            venue: venue.trim().to_owned(),
            starts_at,
            sections,
            max_per_order,
        })
    }

    pub fn currency(&self) -> Currency {
        self.sections[0].unit_price.currency
    }
}

/// Whether tickets of a show can be bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SalesStatus {
    /// Created; sales not opened yet.
    Scheduled,
    OnSale,
    Closed,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShowCommand {
    Create {
        show_id: ShowId,
        organizer_id: OrganizerId,
        plan: ShowPlan,
    },
    OpenSales,
    CloseSales,
    Cancel {
        reason: String,
    },
    /// Splits a section into more escrow buckets, on sale or not: the new buckets start
    /// empty and the command layer moves free seats into them.
    SplitSection {
        section: SectionName,
        buckets: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowCreated {
    pub show_id: ShowId,
    pub organizer_id: OrganizerId,
    pub title: String,
    pub venue: String,
    pub starts_at: Timestamp,
    pub sections: Vec<SectionSpec>,
    pub max_per_order: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesOpened {
    pub show_id: ShowId,
    pub opened_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesClosed {
    pub show_id: ShowId,
    pub closed_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowCancelled {
    pub show_id: ShowId,
    pub reason: String,
    pub cancelled_at: Timestamp,
}

/// A section now has more buckets; `buckets` is the new count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionSplit {
    pub show_id: ShowId,
    pub section: SectionName,
    pub buckets: u32,
    pub split_at: Timestamp,
}

/// The events of a show's stream. Variant names are the stored event types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ShowEvent {
    ShowCreated(ShowCreated),
    SalesOpened(SalesOpened),
    SalesClosed(SalesClosed),
    ShowCancelled(ShowCancelled),
    SectionSplit(SectionSplit),
}

/// A show as its events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowDetails {
    pub show_id: ShowId,
    pub organizer_id: OrganizerId,
    pub title: String,
    pub venue: String,
    pub starts_at: Timestamp,
    pub sections: Vec<SectionSpec>,
    pub max_per_order: u32,
    pub status: SalesStatus,
}

impl ShowDetails {
    /// The section of this show called `name` (case-insensitively).
    pub fn section(&self, name: &SectionName) -> Option<&SectionSpec> {
        self.sections.iter().find(|s| s.name.same_as(name))
    }
}

/// The show aggregate's state: `None` until created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Show(pub Option<ShowDetails>);

impl Aggregate for Show {
    type Command = ShowCommand;
    type Event = ShowEvent;
    const KIND: &'static str = "show";
    const SNAPSHOT_VERSION: u32 = 1;

    fn decide(&self, command: ShowCommand, now: Timestamp) -> Result<Vec<ShowEvent>, DomainError> {
        if let ShowCommand::Create {
            show_id,
            organizer_id,
            plan,
        } = command
        {
            if self.0.is_some() {
                return Err(DomainError::ShowAlreadyExists);
            }
            if plan.starts_at <= now {
                return Err(DomainError::ShowStartsInPast);
            }
            return Ok(vec![ShowEvent::ShowCreated(ShowCreated {
                show_id,
                organizer_id,
                title: plan.title,
                venue: plan.venue,
                starts_at: plan.starts_at,
                sections: plan.sections,
                max_per_order: plan.max_per_order,
            })]);
        }
        let show = self.0.as_ref().ok_or(DomainError::ShowNotFound)?;
        let show_id = show.show_id;
        match (show.status, command) {
            (SalesStatus::Cancelled, _) => Err(DomainError::ShowCancelled),
            (SalesStatus::OnSale, ShowCommand::OpenSales) => Err(DomainError::SalesAlreadyOpen),
            (_, ShowCommand::OpenSales) => Ok(vec![ShowEvent::SalesOpened(SalesOpened {
                show_id,
                opened_at: now,
            })]),
            (SalesStatus::OnSale, ShowCommand::CloseSales) => {
                Ok(vec![ShowEvent::SalesClosed(SalesClosed {
                    show_id,
                    closed_at: now,
                })])
            }
            (_, ShowCommand::CloseSales) => Err(DomainError::SalesNotOpen),
            (_, ShowCommand::Cancel { reason }) => {
                Ok(vec![ShowEvent::ShowCancelled(ShowCancelled {
                    show_id,
                    reason: reason.chars().take(500).collect(),
                    cancelled_at: now,
                })])
            }
            (_, ShowCommand::Create { .. }) => Err(DomainError::ShowAlreadyExists),
            (_, ShowCommand::SplitSection { section, buckets }) => {
                let spec = show.section(&section).ok_or(DomainError::UnknownSection)?;
                if buckets <= spec.buckets {
                    return Err(DomainError::BucketsNotRaised {
                        current: spec.buckets,
                    });
                }
                if buckets > MAX_BUCKETS.min(spec.capacity) {
                    return Err(DomainError::InvalidBucketCount {
                        buckets,
                        capacity: spec.capacity,
                    });
                }
                Ok(vec![ShowEvent::SectionSplit(SectionSplit {
                    show_id,
                    section: spec.name.clone(),
                    buckets,
                    split_at: now,
                })])
            }
        }
    }

    fn evolve(self, event: &ShowEvent) -> Self {
        match (self.0, event) {
            (_, ShowEvent::ShowCreated(e)) => Show(Some(ShowDetails {
                show_id: e.show_id,
                organizer_id: e.organizer_id.clone(),
                title: e.title.clone(),
                venue: e.venue.clone(),
                starts_at: e.starts_at,
                sections: e.sections.clone(),
                max_per_order: e.max_per_order,
                status: SalesStatus::Scheduled,
            })),
            (Some(mut show), ShowEvent::SalesOpened(_)) => {
                show.status = SalesStatus::OnSale;
                Show(Some(show))
            }
            (Some(mut show), ShowEvent::SalesClosed(_)) => {
                show.status = SalesStatus::Closed;
                Show(Some(show))
            }
            (Some(mut show), ShowEvent::ShowCancelled(_)) => {
                show.status = SalesStatus::Cancelled;
                Show(Some(show))
            }
            (Some(mut show), ShowEvent::SectionSplit(e)) => {
                if let Some(spec) = show
                    .sections
                    .iter_mut()
                    .find(|s| s.name.same_as(&e.section))
                {
                    spec.buckets = e.buckets;
                }
                Show(Some(show))
            }
            // An event before creation cannot be decided; a stream that holds one is
            // folded as if it were absent rather than invented.
            (None, _) => Show(None),
        }
    }
}

/// The stream id of a show.
pub fn show_stream(show_id: ShowId) -> String {
    format!("show-{show_id}")
}
