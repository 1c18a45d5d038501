//! The jobs running in this worker, and the cancel requests waiting for a job to start.
//!
//! [`RunningJobs`] is the only owner of both: the executor registers a job when its handler
//! starts and forgets it when the handler ends; the pub/sub listener passes cancel requests
//! in; the heartbeat renews the leases of what runs and drops what lost its lease; the reaper
//! asks whether an entry runs here; a stop takes what still runs to hand it back.
//!
//! Cancellation: `cancel` publishes a job id on the group's cancel channel; every worker of
//! the group receives it, and the one running the job fires its token. A request can arrive
//! just before the job is registered as running (it is delivered but still being prepared),
//! so unmatched requests are kept for [`REQUEST_TTL`] and checked when a job starts. Both
//! live under one lock, so a request and a start never miss each other.

use crate::broker::EntryRef;
use crate::keys::{GroupName, Keys};
use crate::priority::Priority;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long a request that matched no running job is remembered.
const REQUEST_TTL: Duration = Duration::from_secs(60);

/// A running job's key: its group and stream entry id.
pub(crate) type RunningKey = (GroupName, String);

/// A job whose handler is running: what a stop needs to hand it back.
#[derive(Debug)]
pub(crate) struct Running {
    /// The keys of the job's group.
    pub(crate) keys: Keys,
    /// The job's entry: priority, entry id, job id.
    pub(crate) entry: EntryRef,
    /// Whether the job has a status record to set back to queued.
    pub(crate) tracked: bool,
    /// Fires to stop the handler: a cancel request, a lost lease or the end of a stop's grace.
    pub(crate) cancel: CancellationToken,
    /// Set before `cancel` fires when a user cancelled the job (rather than a stop handing it
    /// back): the job then ends as cancelled.
    pub(crate) by_request: Arc<AtomicBool>,
}

impl Running {
    /// Marks the job as cancelled by a user and fires its token.
    fn cancel_by_request(&self) {
        self.by_request.store(true, Ordering::SeqCst);
        self.cancel.cancel();
    }
}

/// The running jobs and pending cancel requests; see the module doc.
#[derive(Debug, Default)]
pub(crate) struct RunningJobs {
    inner: Mutex<Inner>,
}

/// What the lock guards.
#[derive(Debug, Default)]
struct Inner {
    /// Jobs whose handler is running, by (group, entry id).
    jobs: HashMap<RunningKey, Running>,
    /// Cancel requests, by (group, job id), that matched no running job yet, with when they
    /// came.
    requests: HashMap<(GroupName, String), Instant>,
}

impl RunningJobs {
    /// Locks the jobs and requests; never held across an await.
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("running jobs")
    }

    /// Registers a job as running and fires its cancellation at once if it was already
    /// requested.
    pub(crate) fn start(&self, key: RunningKey, running: Running) {
        let mut inner = self.lock();
        if !inner.requests.is_empty()
            && inner
                .requests
                .remove(&(key.0.clone(), running.entry.job_id.clone()))
                .is_some()
        {
            running.cancel_by_request();
        }
        inner.jobs.insert(key, running);
    }

    /// Forgets a job that ended here, or whose lease was lost; returns it if it was running.
    pub(crate) fn finish(&self, key: &RunningKey) -> Option<Running> {
        self.lock().jobs.remove(key)
    }

    /// Handles a cancel message for job `job_id` of `group`: fires the job's token if it runs
    /// here, or remembers the request for a job about to start.
    pub(crate) fn request_cancel(&self, group: &GroupName, job_id: &str) {
        let mut inner = self.lock();
        if let Some(running) = inner
            .jobs
            .iter()
            .find(|((g, _), r)| g == group && r.entry.job_id == job_id)
            .map(|(_, r)| r)
        {
            tracing::info!(group = %group, job_id, "cancel requested: stopping the job");
            running.cancel_by_request();
            return;
        }
        let now = Instant::now();
        inner
            .requests
            .retain(|_, at| now.duration_since(*at) < REQUEST_TTL);
        inner
            .requests
            .insert((group.clone(), job_id.to_string()), now);
    }

    /// Whether entry `entry_id` of `group` runs here.
    pub(crate) fn contains(&self, group: &GroupName, entry_id: &str) -> bool {
        self.lock()
            .jobs
            .contains_key(&(group.clone(), entry_id.to_string()))
    }

    /// The running entries, by group: (priority, entry id) each, for renewing their leases.
    pub(crate) fn leases(&self) -> BTreeMap<GroupName, (Keys, Vec<(Priority, String)>)> {
        let mut by_group: BTreeMap<GroupName, (Keys, Vec<(Priority, String)>)> = BTreeMap::new();
        for r in self.lock().jobs.values() {
            by_group
                .entry(r.keys.group().clone())
                .or_insert_with(|| (r.keys.clone(), Vec::new()))
                .1
                .push((r.entry.priority, r.entry.entry_id.clone()));
        }
        by_group
    }

    /// Takes every running job out, for a stop to hand back.
    pub(crate) fn drain(&self) -> Vec<Running> {
        self.lock().jobs.drain().map(|(_, r)| r).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(group: &GroupName, entry_id: &str, job_id: &str) -> (RunningKey, Running) {
        let keys = Keys::new(group);
        let running = Running {
            keys,
            entry: EntryRef {
                priority: Priority::Default,
                entry_id: entry_id.into(),
                job_id: job_id.into(),
                unique_key: None,
                batch: None,
            },
            tracked: false,
            cancel: CancellationToken::new(),
            by_request: Arc::new(AtomicBool::new(false)),
        };
        ((group.clone(), entry_id.into()), running)
    }

    #[test]
    fn a_request_reaches_a_job_before_or_after_it_starts() {
        let group = GroupName::new("g").unwrap();
        let jobs = RunningJobs::default();

        let (key, early) = running(&group, "1-0", "early");
        let (early_token, early_flag) = (early.cancel.clone(), early.by_request.clone());
        jobs.request_cancel(&group, "early");
        jobs.start(key.clone(), early);
        assert!(early_token.is_cancelled() && early_flag.load(Ordering::SeqCst));

        let (key2, late) = running(&group, "2-0", "late");
        let late_token = late.cancel.clone();
        jobs.start(key2.clone(), late);
        assert!(!late_token.is_cancelled());
        jobs.request_cancel(&group, "late");
        assert!(late_token.is_cancelled());

        assert!(jobs.contains(&group, "2-0"));
        assert_eq!(jobs.leases()[&group].1.len(), 2);
        assert!(jobs.finish(&key2).is_some());
        assert!(!jobs.contains(&group, "2-0"));
        assert_eq!(jobs.drain().len(), 1);
        assert!(jobs.finish(&key).is_none());
    }
}
