//! What a handler receives besides its arguments: the per-job [`JobContext`] and the
//! per-process [`State`].

use crate::keys::GroupName;
use crate::priority::Priority;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Facts about the job being run, and its cancellation token. Cheap to clone.
#[derive(Debug, Clone)]
pub struct JobContext {
    inner: Arc<ContextInner>,
    /// How the task treats missing and changed row arguments.
    #[cfg(feature = "postgres")]
    rows: crate::row::RowPolicy,
}

#[derive(Debug)]
struct ContextInner {
    id: String,
    task: String,
    group: GroupName,
    priority: Priority,
    attempt: u32,
    max_retries: u32,
    deadline: Instant,
    cancel: CancellationToken,
}

impl JobContext {
    /// A context for calling a handler directly, outside any queue (tests, scripts): attempt 1
    /// of 1, priority default, deadline `deadline`.
    pub fn detached(group: GroupName, task: &str, id: &str, deadline: Instant) -> JobContext {
        JobContext::new(
            group,
            task,
            id,
            Priority::Default,
            1,
            0,
            deadline,
            CancellationToken::new(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        group: GroupName,
        task: &str,
        id: &str,
        priority: Priority,
        attempt: u32,
        max_retries: u32,
        deadline: Instant,
        cancel: CancellationToken,
    ) -> JobContext {
        JobContext {
            #[cfg(feature = "postgres")]
            rows: Default::default(),
            inner: Arc::new(ContextInner {
                id: id.to_string(),
                task: task.to_string(),
                group,
                priority,
                attempt,
                max_retries,
                deadline,
                cancel,
            }),
        }
    }

    /// The job id.
    pub fn job_id(&self) -> &str {
        &self.inner.id
    }

    /// The task name.
    pub fn task(&self) -> &str {
        &self.inner.task
    }

    /// The group the job came from.
    pub fn group(&self) -> &GroupName {
        &self.inner.group
    }

    /// The job's priority.
    pub fn priority(&self) -> Priority {
        self.inner.priority
    }

    /// This attempt's number, from 1.
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// How many retries the job allows after its first attempt.
    pub fn max_retries(&self) -> u32 {
        self.inner.max_retries
    }

    /// Whether a failure now would be final (no attempts left).
    pub fn is_last_attempt(&self) -> bool {
        self.inner.attempt > self.inner.max_retries
    }

    /// When this attempt's timeout expires; the handler's future is dropped then.
    pub fn deadline(&self) -> Instant {
        self.inner.deadline
    }

    /// This context with the task's row policy, for the loader of row arguments.
    #[cfg(feature = "postgres")]
    pub(crate) fn with_row_policy(mut self, rows: crate::row::RowPolicy) -> JobContext {
        self.rows = rows;
        self
    }

    /// How the task treats missing and changed row arguments.
    #[cfg(feature = "postgres")]
    pub(crate) fn row_policy(&self) -> crate::row::RowPolicy {
        self.rows
    }

    /// Fired when the job is cancelled because the worker's stop outlasted the grace period.
    /// The handler's future is dropped at that same moment and the job is handed back to run
    /// again, so put cleanup in `Drop` guards; code that spawns work of its own can pass this
    /// token on to stop it.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.inner.cancel
    }
}

/// Per-process state handed to the worker once and given to every handler that asks for it,
/// typed: a database pool, an HTTP client, configuration.
///
/// ```
/// use streamworker::{State, TaskError};
///
/// #[derive(Clone)]
/// struct App { greeting: String }
///
/// async fn greet(name: String, State(app): State<App>) -> Result<String, TaskError> {
///     Ok(format!("{} {name}", app.greeting))
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct State<S>(pub S);

impl<S> Deref for State<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.0
    }
}
