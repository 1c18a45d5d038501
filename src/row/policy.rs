//! What a task does when a row argument cannot be used as it was enqueued: the per-task
//! choices that [`TaskOptions`](crate::TaskOptions) keeps and the loader reads. A leaf module:
//! it imports nothing from the crate, so the job context can carry a policy.

/// What happens to a job whose row is not in its table when the job runs (deleted since, or
/// never committed by its producer). Set per task with
/// [`TaskOptions::missing_row`](crate::TaskOptions::missing_row).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MissingRow {
    /// The default: to the dead stream at once with the reason `row users/42 not found`; the
    /// handler does not run and no retry is spent on it.
    #[default]
    Dead,
    /// A retryable failure: retried after the backoff while attempts are left, then dead with
    /// `failed after N attempts: row users/42 not found`. For rows read from a replica that may
    /// lag behind the producer's commit.
    Retry,
}

/// What happens to a job whose row's version (from
/// [`TableRow::version`](crate::TableRow::version)) differs from the one captured at enqueue.
/// Set per task with [`TaskOptions::changed_row`](crate::TaskOptions::changed_row). Rows
/// enqueued without a version, and types without a version, are never "changed".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChangedRow {
    /// The default: the handler runs with the row as it is now.
    #[default]
    Run,
    /// To the dead stream at once with the reason
    /// `row orders/7 changed: version 3 at enqueue, 4 now`; the handler does not run.
    Dead,
}

/// Both choices of one task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RowPolicy {
    pub(crate) missing: MissingRow,
    pub(crate) changed: ChangedRow,
}
