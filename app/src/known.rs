//! The shows this process last loaded for holds, each with its stream's version.
//!
//! At an on-sale every hold needs its show (the section's price and buckets, whether
//! sales are open), and the show changes rarely. A hold decides on the show as this
//! process knows it, and never commits on a show that has moved since: a batch checks
//! the show's stream in the bucket's turn (one read for the batch), and a hold that
//! runs alone appends with a condition on the show's stream at that version (no round
//! trip of its own). A hold whose show had moved runs again on the show loaded afresh,
//! and so does a refusal decided on a show that has moved since: no hold is granted or
//! refused on a show older than the one it commits against.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use ticketing_domain::show::ShowDetails;
use ticketing_domain::ShowId;
use ticketing_store::StreamVersion;

/// A show as this process last loaded it.
#[derive(Debug, Clone)]
pub(crate) struct KnownShow {
    pub details: ShowDetails,
    /// The version of the show's stream it was loaded at.
    pub version: StreamVersion,
}

/// Past this many shows known, the process starts over.
const MAX_KNOWN_SHOWS: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct KnownShows {
    shows: Mutex<HashMap<ShowId, KnownShow>>,
}

impl KnownShows {
    pub(crate) fn get(&self, show_id: ShowId) -> Option<KnownShow> {
        self.lock().get(&show_id).cloned()
    }

    /// Keeps `show` unless a later version of it is known already.
    pub(crate) fn remember(&self, show_id: ShowId, show: KnownShow) {
        let mut shows = self.lock();
        if shows.len() >= MAX_KNOWN_SHOWS && !shows.contains_key(&show_id) {
            shows.clear();
        }
        let newer_known = shows
            .get(&show_id)
            .is_some_and(|known| known.version > show.version);
        if !newer_known {
            shows.insert(show_id, show);
        }
    }

    /// Forgets `show_id` as known at `version`: it has moved on since.
    pub(crate) fn forget(&self, show_id: ShowId, version: StreamVersion) {
        let mut shows = self.lock();
        if shows
            .get(&show_id)
            .is_some_and(|known| known.version <= version)
        {
            shows.remove(&show_id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ShowId, KnownShow>> {
        self.shows.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
