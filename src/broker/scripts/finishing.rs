//! The KEYS and ARGV the finishing scripts (`finish_*.lua`, `hand_back.lua`) share: the
//! header, the pieces of the per-job records, and the uniqueness-lock trailer.

use super::{CountSlot, Lua, ScriptCall};
use crate::broker::EntryRef;
use crate::keys::Keys;
use crate::time::duration_ms;
use std::time::Duration;

/// A finishing script's call under construction: KEYS start with the three priority streams,
/// ARGV with the header (group, consumer, [wake channel,] count).
pub(crate) struct Finishing<'a> {
    /// The call; script-specific keys and values go straight to it.
    pub(crate) call: ScriptCall<'a>,
    keys: &'a Keys,
    count: CountSlot,
}

impl<'a> Finishing<'a> {
    /// A call of `lua` for `consumer` of `keys`' group, with the wake-up `channel` when the
    /// script takes one. The header's count is written with [`Finishing::count`].
    pub(crate) fn new(
        lua: &'a Lua,
        keys: &'a Keys,
        consumer: &str,
        channel: Option<&str>,
    ) -> Finishing<'a> {
        let mut call = lua.call();
        call.keys(keys.streams())
            .arg(keys.group().as_str())
            .arg(consumer);
        if let Some(channel) = channel {
            call.arg(channel);
        }
        let count = call.count_slot();
        Finishing { call, keys, count }
    }

    /// Writes the header's count: jobs, or for `finish_ok.lua` streams.
    pub(crate) fn count(&mut self, n: usize) -> &mut Self {
        self.call.fill_count(self.count, n);
        self
    }

    /// Starts a job's record: its priority index and entry id.
    pub(crate) fn entry(&mut self, entry: &EntryRef) -> &mut ScriptCall<'a> {
        self.call.arg(entry.priority.index()).arg(&entry.entry_id)
    }

    /// A job's status hash: its index in KEYS (0 when the job is not tracked) and its TTL in
    /// ms (at least 1; 1 when not tracked). `keep` is the TTL of a tracked job.
    pub(crate) fn status(&mut self, job_id: &str, keep: Option<Duration>) -> &mut ScriptCall<'a> {
        self.status_key(job_id, keep.is_some());
        self.call.arg(keep.map_or(1, duration_ms).max(1))
    }

    /// A job's status hash without TTL: its index in KEYS, 0 when the job is not tracked.
    pub(crate) fn status_key(&mut self, job_id: &str, tracked: bool) -> &mut ScriptCall<'a> {
        let index = self.call.status_index(self.keys, job_id, tracked);
        self.call.arg(index)
    }

    /// Appends the optional trailers of the scripts that end jobs for good: the uniqueness
    /// locks (`lua/lib/lock_trailer.lua`), then the batch children (`lua/lib/batch.lua`).
    /// Per job holding a lock: its number in the call (order of `entries`), the lock's index
    /// in KEYS and the job id, after their count; per job of a batch: its number, the indices
    /// of its batch's hash, pending set and failed set, the job id and its result (a chain
    /// step's, else empty), after their count. Nothing is appended when no job holds a lock or
    /// belongs to a batch.
    pub(crate) fn trailers<'e>(
        &mut self,
        entries: impl Iterator<Item = (&'e EntryRef, &'e [u8])> + Clone,
    ) {
        let children = entries.clone().filter(|(e, _)| e.batch.is_some()).count();
        self.locks(entries.clone().map(|(e, _)| e), children > 0);
        if children == 0 {
            return;
        }
        self.call.arg(children);
        // Each batch's keys go to KEYS once (a call usually finishes children of one batch).
        let mut seen: Vec<(&str, usize)> = Vec::new();
        for (j, (entry, result)) in entries.enumerate() {
            if let Some(batch) = &entry.batch {
                let hash = match seen.iter().find(|(b, _)| *b == batch.as_str()) {
                    Some(&(_, hash)) => hash,
                    None => {
                        let hash = self.call.key_index(self.keys.batch(batch));
                        self.call.key(self.keys.batch_pending(batch));
                        self.call.key(self.keys.batch_failed(batch));
                        seen.push((batch.as_str(), hash));
                        hash
                    }
                };
                let (pending, failed) = (hash + 1, hash + 2);
                self.call
                    .arg(j + 1)
                    .arg(hash)
                    .arg(pending)
                    .arg(failed)
                    .arg(&entry.job_id)
                    .arg(result);
            }
        }
    }

    /// The lock trailer; its count is written even when 0 if `always`.
    fn locks<'e>(&mut self, entries: impl Iterator<Item = &'e EntryRef> + Clone, always: bool) {
        let locks = entries.clone().filter(|e| e.unique_key.is_some()).count();
        if locks == 0 && !always {
            return;
        }
        self.call.arg(locks);
        for (j, entry) in entries.enumerate() {
            if let Some(unique) = &entry.unique_key {
                let index = self.call.key_index(self.keys.unique(unique));
                self.call.arg(j + 1).arg(index).arg(&entry.job_id);
            }
        }
    }
}
