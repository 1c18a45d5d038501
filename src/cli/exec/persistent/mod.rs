//! Persistent mode (`--exec-mode persistent`): one long-lived child per slot, sent jobs as JSON
//! lines on stdin and answering each with a JSON line on stdout ([`protocol`]).
//!
//! - Slots are made as jobs need them, at most the worker's concurrency at once (the worker
//!   never runs more jobs than that), and reused last-in first-out, so a lightly loaded worker
//!   keeps few children. A slot starts its child for its first job, and again for the next job
//!   after the child ended.
//! - One job at a time per child. A reply that is not a protocol line, or names another job, is
//!   a protocol error: the job fails (retryable) saying so, and the child is killed (with its
//!   group) and replaced. A reply over [`protocol::MAX_REPLY`] bytes fails the job without retry
//!   (as an over-long stdout does in per-job mode), and the child is replaced too.
//! - A child that exits before answering fails its job (retryable) with its exit status and
//!   last stderr lines; one found exited between jobs is replaced before the next job is sent.
//!   Both count as failures of the slot ([`restart`]): after the second in a row without an
//!   answer, the next start waits, 100 ms doubling to 10 s, inside the next job (which keeps
//!   its slot and its lease meanwhile); each failure is logged with the count and the delay.
//! - When a job ends before its child answers (timeout, cancel, lost lease, stop past the
//!   grace period), the child and its whole group are killed as the job is dropped, and the
//!   slot's next job starts a fresh one, without delay.
//! - The child's stderr goes to the worker's log, a line at a time, bounded and escaped
//!   ([`stderr`]).
//! - When the worker stops, the idle children are killed with their groups (SIGKILL): a child
//!   must not keep state that needs a clean exit. The watchdog kills them if the worker dies.

mod child;
mod line;
mod protocol;
mod restart;
mod stderr;

use self::child::{Child, Failure};
use self::restart::Failures;
use super::Program;
use super::watchdog::Watchdog;
use crate::context::JobContext;
use crate::task::{JobResult, TaskError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The slots of a worker and their children.
#[derive(Debug)]
pub(crate) struct Pool {
    program: Arc<Program>,
    watchdog: Arc<Watchdog>,
    /// The slots no job holds, the most recently used last.
    idle: Mutex<Vec<Slot>>,
    /// Slots made so far: the number of the next one.
    made: AtomicUsize,
}

/// A slot: its child, if one runs, and its failures in a row.
#[derive(Debug)]
struct Slot {
    /// The slot's number, from 0, in the child's `STREAMWORKER_SLOT`.
    number: usize,
    child: Option<Child>,
    failures: Failures,
}

impl Pool {
    /// A pool for up to `slots` jobs at once, with no child started yet.
    pub(crate) fn new(program: Arc<Program>, watchdog: Arc<Watchdog>, slots: usize) -> Pool {
        Pool {
            program,
            watchdog,
            idle: Mutex::new(Vec::with_capacity(slots)),
            made: AtomicUsize::new(0),
        }
    }

    /// Runs one job (`args`: its JSON) on a slot's child, starting the child first if needed.
    pub(crate) async fn run(&self, args: Vec<u8>, ctx: &JobContext) -> JobResult {
        let request = protocol::request(ctx, &args);
        drop(args);
        let mut lease = self.take();
        let Lease { slot, busy, .. } = &mut lease;
        let slot = slot.as_mut().expect("held until dropped");
        self.replace_if_exited(slot).await;
        if slot.child.is_none() {
            self.start(slot).await?;
        }
        let child = slot.child.as_mut().expect("started above");
        *busy = true;
        let outcome = child.exchange(&request, ctx.job_id()).await;
        *busy = false;
        match outcome {
            Ok(reply) => {
                slot.failures.answered();
                reply.into_result()
            }
            Err(failure) => {
                // Dropped: killed with its group (when still running) and reaped.
                let pid = slot.child.take().expect("it answered nothing").pid();
                let message = failure.message(pid);
                self.failed(slot, &message);
                Err(match failure {
                    Failure::TooLong => TaskError::fatal(message),
                    Failure::Protocol(_) | Failure::Exited(_) => TaskError::retry(message),
                })
            }
        }
    }

    /// Takes an idle slot, or makes one.
    fn take(&self) -> Lease<'_> {
        let slot = self.idle.lock().expect("pool lock").pop();
        let slot = slot.unwrap_or_else(|| Slot {
            number: self.made.fetch_add(1, Ordering::Relaxed),
            child: None,
            failures: Failures::default(),
        });
        Lease {
            pool: self,
            slot: Some(slot),
            busy: false,
        }
    }

    /// Reaps the slot's child if it exited while idle, counting it as a failure.
    async fn replace_if_exited(&self, slot: &mut Slot) {
        let Some(child) = slot.child.as_mut().filter(|c| c.has_exited()) else {
            return;
        };
        let pid = child.pid();
        let how = child.ended("between jobs", &[]).await;
        slot.child = None;
        self.failed(slot, &format!("the --exec child {pid} {how}"));
    }

    /// Starts the slot's child, after the delay its failures in a row call for.
    async fn start(&self, slot: &mut Slot) -> Result<(), TaskError> {
        if let Some(at) = slot.failures.next_start() {
            tokio::time::sleep_until(at.into()).await;
        }
        match Child::start(&self.program, &self.watchdog, slot.number) {
            Ok(child) => {
                slot.child = Some(child);
                Ok(())
            }
            Err(e) => {
                let message = format!("cannot start {:?}: {e}", self.program.name());
                self.failed(slot, &message);
                Err(TaskError::retry(message))
            }
        }
    }

    /// Counts a failure of the slot and logs it with what comes next.
    fn failed(&self, slot: &mut Slot, what: &str) {
        let (count, delay) = slot.failures.failed();
        let number = slot.number;
        if delay.is_zero() {
            tracing::warn!("slot {number}: {what}; the slot's next job starts a new child");
        } else {
            tracing::warn!(
                "slot {number}: {what}; {count} failures in a row without an answer: the next \
                 child starts in {} (the delay doubles up to {})",
                humantime::format_duration(delay),
                humantime::format_duration(restart::MAX_DELAY),
            );
        }
    }
}

/// A slot held by one job; it goes back to the pool when dropped. Dropped while its child is
/// busy with the job (the job ended first: timeout, cancel, lost lease, stop), it kills the
/// child with its group: the slot's next job starts a new one.
struct Lease<'p> {
    pool: &'p Pool,
    /// Always `Some` until dropped.
    slot: Option<Slot>,
    /// The child holds the job's request and owes its reply.
    busy: bool,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(mut slot) = self.slot.take() else {
            return;
        };
        if self.busy
            && let Some(child) = slot.child.take()
        {
            tracing::debug!(
                "slot {}: the job ended before its --exec child {} answered; child killed",
                slot.number,
                child.pid()
            );
        }
        self.pool.idle.lock().expect("pool lock").push(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_documents_the_limits_in_force() {
        let readme = include_str!("../../../../README.md");
        // README wraps lines: compare with every run of whitespace as one space.
        let flat = readme.split_whitespace().collect::<Vec<_>>().join(" ");
        let expected = [
            format!(
                "| `--exec-mode persistent` reply | one line of up to {} MiB per job",
                protocol::MAX_REPLY >> 20
            ),
            format!(
                "up to {} KiB a line; a failure quotes the last {} KiB |",
                stderr::MAX_LINE / 1024,
                stderr::TAIL / 1024
            ),
            format!(
                "then {} ms doubling to {} s while its replacements fail",
                restart::FIRST_DELAY.as_millis(),
                restart::MAX_DELAY.as_secs()
            ),
        ];
        for text in expected {
            assert!(flat.contains(&text), "README.md should say {text:?}");
        }
    }
}
