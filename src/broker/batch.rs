//! Batches: creating one with its children and callbacks, adding children to a running one
//! (both one call of `lua/enqueue.lua` with its batch trailer), and reading one back. The
//! counting is done by the finishing scripts (`lua/lib/batch.lua`).

use super::enqueue::{Enqueued, enqueue_call};
use super::{Broker, reply};
use crate::error::{Error, Result};
use crate::job::Job;
use crate::keys::Keys;
use crate::time::duration_ms;
use deadpool_redis::redis::{self, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Whether a call creates a batch or adds children to a running one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchMode {
    /// A new batch: the script refuses an id that exists.
    Create,
    /// More children for a running batch: the script refuses a batch that is not running.
    Add,
}

/// The batch trailer of one `lua/enqueue.lua` call.
#[derive(Debug, Clone)]
pub(crate) struct BatchTrailer<'a> {
    pub(crate) mode: BatchMode,
    pub(crate) id: &'a str,
    /// How long the batch's keys live after it completes.
    pub(crate) ttl: Duration,
    /// `fail` or `ignore`.
    pub(crate) policy: &'a str,
    /// Per callback: its index in the call's jobs and its name (`on_success`, `on_complete`).
    pub(crate) callbacks: crate::batch::Callbacks,
}

/// A batch's hash as stored, with the size of its pending set and its failed ids.
#[derive(Debug, Clone, Default)]
pub(crate) struct BatchRecord {
    pub(crate) fields: HashMap<String, Vec<u8>>,
    pub(crate) pending: u64,
    /// Up to [`PENDING_SAMPLE`] ids of the pending set, sorted.
    pub(crate) pending_sample: Vec<String>,
    pub(crate) failed: Vec<String>,
}

/// Most pending children's ids read back with a batch.
pub(crate) const PENDING_SAMPLE: usize = 20;

impl Broker {
    /// Sends `jobs` (children, and callbacks as `trailer` names them) of one group in one call
    /// of `lua/enqueue.lua` with `trailer`: all stored or none.
    pub(crate) async fn enqueue_batch(
        &self,
        keys: &Keys,
        jobs: &[&Job],
        trailer: &BatchTrailer<'_>,
    ) -> Result<Vec<Enqueued>> {
        const OP: &str = "enqueue batch";
        let mut call = enqueue_call(&self.scripts().enqueue, keys, jobs, true);
        let hash = call.key_index(keys.batch(trailer.id));
        let pending = call.key_index(keys.batch_pending(trailer.id));
        let failed = call.key_index(keys.batch_failed(trailer.id));
        let mode = match trailer.mode {
            BatchMode::Create => "create",
            BatchMode::Add => "add",
        };
        call.arg("batch")
            .arg(mode)
            .arg(hash)
            .arg(pending)
            .arg(failed)
            .arg(trailer.id)
            .arg(duration_ms(trailer.ttl).max(1))
            .arg(trailer.policy)
            .arg(trailer.callbacks.len());
        for (i, name) in &trailer.callbacks {
            call.arg(i + 1).arg(name);
        }
        let mut conn = self.conn().await?;
        let reply: Value = call.invoke(&mut conn, OP).await.map_err(|e| match e {
            Error::Redis { source, .. } if source.to_string().contains("streamworker enqueue") => {
                Error::InvalidBatch(
                    source
                        .to_string()
                        .split("streamworker enqueue: ")
                        .nth(1)
                        .unwrap_or_default()
                        .to_string(),
                )
            }
            e => e,
        })?;
        reply::array(OP, reply)?
            .iter()
            .map(|v| Enqueued::parse(OP, v))
            .collect()
    }

    /// Reads batch `id` of `keys`' group; `None` when it does not exist (never created, or
    /// expired after its completion).
    pub(crate) async fn batch_record(&self, keys: &Keys, id: &str) -> Result<Option<BatchRecord>> {
        let mut conn = self.conn().await?;
        type Replies = (HashMap<String, Vec<u8>>, u64, Vec<String>, Vec<String>);
        let (fields, pending, mut pending_sample, failed): Replies = redis::pipe()
            .cmd("HGETALL")
            .arg(keys.batch(id))
            .cmd("SCARD")
            .arg(keys.batch_pending(id))
            .cmd("SRANDMEMBER")
            .arg(keys.batch_pending(id))
            .arg(PENDING_SAMPLE)
            .cmd("SMEMBERS")
            .arg(keys.batch_failed(id))
            .query_async(&mut conn)
            .await
            .map_err(Error::redis("batch status"))?;
        if fields.is_empty() {
            return Ok(None);
        }
        let mut failed = failed;
        failed.sort();
        pending_sample.sort();
        Ok(Some(BatchRecord {
            fields,
            pending,
            pending_sample,
            failed,
        }))
    }
}
