//! Cancellation requests for running jobs: `cancel` publishes a job id on the group's cancel
//! channel; every worker of the group receives it, and the one running the job fires its
//! token. A request can arrive just before the job is registered as running (it is delivered
//! but still being prepared), so unmatched requests are kept for [`REQUEST_TTL`] and checked
//! when a job starts.
//!
//! Lock order: `Shared::running` before `Shared::cancel_requests`, in both paths, so a request
//! and a start never miss each other.

use super::Shared;
use super::executor::Running;
use crate::keys::GroupName;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a request that matched no running job is remembered.
const REQUEST_TTL: Duration = Duration::from_secs(60);

/// Registers a job as running and fires its cancellation at once if it was already requested.
pub(crate) fn start_running<S>(shared: &Shared<S>, key: (GroupName, String), running: Running) {
    let mut map = shared.running.lock().expect("running map");
    let mut requests = shared.cancel_requests.lock().expect("cancel requests");
    let requested = requests
        .remove(&(key.0.clone(), running.entry.job_id.clone()))
        .is_some();
    if requested {
        running.by_request.store(true, Ordering::SeqCst);
        running.cancel.cancel();
    }
    map.insert(key, running);
}

/// Handles a cancel message for job `job_id` of `group`: fires the job's token if it runs
/// here, or remembers the request for a job about to start.
pub(crate) fn request<S>(shared: &Shared<S>, group: &GroupName, job_id: &str) {
    let map = shared.running.lock().expect("running map");
    if let Some(running) = map
        .iter()
        .find(|((g, _), r)| g == group && r.entry.job_id == job_id)
        .map(|(_, r)| r)
    {
        tracing::info!(group = %group, job_id, "cancel requested: stopping the job");
        running.by_request.store(true, Ordering::SeqCst);
        running.cancel.cancel();
        return;
    }
    let mut requests = shared.cancel_requests.lock().expect("cancel requests");
    let now = Instant::now();
    requests.retain(|_, at| now.duration_since(*at) < REQUEST_TTL);
    requests.insert((group.clone(), job_id.to_string()), now);
}
