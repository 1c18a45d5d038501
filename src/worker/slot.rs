//! [`Slot`]: what a running job holds until its handler returns.

use super::room::Ticket;
use tokio::sync::OwnedSemaphorePermit;

/// What a running job holds until its handler is done: one of the worker's job slots and,
/// for an entry its group's fetcher read, its place in that group's read-ahead room.
#[derive(Debug)]
pub(crate) struct Slot {
    /// The job slot.
    pub(crate) run: OwnedSemaphorePermit,
    /// The place in the fetcher's room; `None` for an entry the reaper took over.
    pub(crate) ticket: Option<Ticket>,
}

impl Slot {
    /// Releases the slot after a handler that ran for `took`, which paces the read-ahead.
    pub(crate) fn finished(self, took: std::time::Duration) {
        drop(self.run);
        if let Some(ticket) = self.ticket {
            ticket.finished(took);
        }
    }
}
