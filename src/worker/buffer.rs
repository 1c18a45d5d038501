//! One group's fetched jobs that have not started yet: the fetcher puts in what a read
//! delivered beyond the free slots, its dispatcher takes them out, highest priority first and
//! oldest first within a priority, as slots free up.
//!
//! A buffered entry is pending for this worker in Redis like a running one, but no heartbeat
//! renews it: an entry unstarted after the hold (at most a third of the visibility timeout)
//! goes back to its stream instead, so its lease never lapses, and a slow job here never keeps
//! it from a worker that is free.

use super::room::Ticket;
use crate::broker::Delivery;
use crate::priority::Priority;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;
use tokio::sync::Notify;

/// A fetched entry waiting for a slot.
#[derive(Debug)]
pub(crate) struct Buffered {
    /// What the read delivered.
    pub(crate) delivery: Delivery,
    /// When the read returned: the entry's lease started then.
    pub(crate) fetched: Instant,
    /// Its place in the group's read-ahead room, given back when its handler ends or it is
    /// handed back.
    pub(crate) ticket: Ticket,
}

/// The buffer; see the module doc.
#[derive(Debug, Default)]
pub(crate) struct Buffer {
    /// High, default and low, each oldest first.
    queues: Mutex<[VecDeque<Buffered>; 3]>,
    /// Notified when entries are put in.
    added: Notify,
}

impl Buffer {
    fn lock(&self) -> std::sync::MutexGuard<'_, [VecDeque<Buffered>; 3]> {
        self.queues.lock().expect("fetch buffer")
    }

    /// Puts entries in and wakes the dispatcher.
    pub(crate) fn put(&self, entries: Vec<Buffered>) {
        if entries.is_empty() {
            return;
        }
        {
            let mut queues = self.lock();
            for b in entries {
                queues[b.delivery.priority.index() - 1].push_back(b);
            }
        }
        self.added.notify_one();
    }

    /// Completes when entries have been put in since the last call (or, the first time, ever).
    pub(crate) async fn added(&self) {
        self.added.notified().await;
    }

    /// Takes the next entry to start: the oldest of the highest priority.
    pub(crate) fn next(&self) -> Option<Buffered> {
        self.lock().iter_mut().find_map(VecDeque::pop_front)
    }

    /// Takes every entry fetched before `cutoff`.
    pub(crate) fn take_older_than(&self, cutoff: Instant) -> Vec<Buffered> {
        let mut out = Vec::new();
        for queue in self.lock().iter_mut() {
            while queue.front().is_some_and(|b| b.fetched < cutoff) {
                out.extend(queue.pop_front());
            }
        }
        out
    }

    /// Takes every entry, highest priority first.
    pub(crate) fn take_all(&self) -> Vec<Buffered> {
        self.lock().iter_mut().flat_map(|q| q.drain(..)).collect()
    }

    /// When the oldest entry was fetched; `None` when empty.
    pub(crate) fn oldest(&self) -> Option<Instant> {
        self.lock()
            .iter()
            .filter_map(|q| q.front().map(|b| b.fetched))
            .min()
    }

    /// Entries waiting.
    pub(crate) fn len(&self) -> usize {
        self.lock().iter().map(VecDeque::len).sum()
    }

    /// Whether entry `entry_id` waits here.
    pub(crate) fn contains(&self, priority: Priority, entry_id: &str) -> bool {
        self.lock()[priority.index() - 1]
            .iter()
            .any(|b| b.delivery.entry_id == entry_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::room::Room;
    use std::sync::Arc;
    use std::time::Duration;

    fn buffered(room: &Arc<Room>, priority: Priority, id: &str, at: Instant) -> Buffered {
        Buffered {
            delivery: Delivery {
                priority,
                entry_id: id.into(),
                fields: None,
                deliveries: 1,
            },
            fetched: at,
            ticket: room.ticket(),
        }
    }

    #[test]
    fn the_highest_priority_goes_first_then_the_oldest() {
        let room = Arc::new(Room::default());
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(5);
        let buffer = Buffer::default();
        buffer.put(vec![
            buffered(&room, Priority::Low, "1-0", t0),
            buffered(&room, Priority::Low, "2-0", t0),
        ]);
        buffer.put(vec![buffered(&room, Priority::High, "3-0", t1)]);
        assert_eq!(buffer.len(), 3);
        assert_eq!(room.out(), 3);
        assert!(buffer.contains(Priority::Low, "2-0"));
        assert!(!buffer.contains(Priority::High, "2-0"));
        assert_eq!(buffer.oldest(), Some(t0));
        assert_eq!(buffer.next().unwrap().delivery.entry_id, "3-0");
        let old = buffer.take_older_than(t0 + Duration::from_millis(1));
        let ids: Vec<_> = old.iter().map(|b| b.delivery.entry_id.as_str()).collect();
        assert_eq!(ids, ["1-0", "2-0"]);
        drop(old);
        assert_eq!(room.out(), 0, "room comes back with the entries");
        assert!(buffer.next().is_none() && buffer.oldest().is_none());
    }
}
