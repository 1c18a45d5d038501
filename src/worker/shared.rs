//! [`Shared`]: what the job path (launcher, executor, fetchers, reaper) reads while the worker
//! runs, behind one `Arc`.

use super::config::WorkerConfig;
use super::running::RunningJobs;
use super::unwritten::Unwritten;
use crate::broker::Broker;
use crate::middleware::Middleware;
use crate::outage::Connectivity;
use crate::task::Registry;
use std::sync::Arc;

/// What the worker's job path shares.
pub(crate) struct Shared<S> {
    /// Redis access for short commands and scripts.
    pub(crate) broker: Broker,
    /// The worker's settings.
    pub(crate) config: WorkerConfig,
    /// What handlers taking [`State<S>`](crate::State) receive.
    pub(crate) state: S,
    /// The task table.
    pub(crate) registry: Arc<Registry<S>>,
    /// The middleware, outermost first.
    pub(crate) layers: Arc<[Arc<dyn Middleware>]>,
    /// Jobs whose handler is running, and cancel requests waiting for a job to start.
    pub(crate) running: Arc<RunningJobs>,
    /// Whether Redis answers; logs each outage once.
    pub(crate) connectivity: Arc<Connectivity>,
    /// Outcomes sent to the finisher and not written yet; read-ahead jobs wait while too many do.
    pub(crate) unwritten: Arc<Unwritten>,
}
