//! What a handler receives besides its arguments: the per-job [`JobContext`] and the
//! per-process [`State`].

use crate::broker::{Broker, ProgressTarget};
use crate::error::Result;
use crate::job::headers::Headers;
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

#[derive(Debug, Clone)]
struct ContextInner {
    id: String,
    task: String,
    group: GroupName,
    priority: Priority,
    attempt: u32,
    max_retries: u32,
    deadline: Instant,
    cancel: CancellationToken,
    headers: Headers,
    /// Where [`JobContext::progress`] writes; `None` for a detached context.
    progress: Option<(Broker, ProgressTarget)>,
    batch: Option<String>,
    prev_result: Option<Vec<u8>>,
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
            Headers::default(),
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
        headers: Headers,
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
                headers,
                progress: None,
                batch: None,
                prev_result: None,
            }),
        }
    }

    /// Sets the batch the job is a child of, and the result of the chain step before it.
    pub(crate) fn with_batch(
        mut self,
        batch: Option<String>,
        prev_result: Option<Vec<u8>>,
    ) -> JobContext {
        let inner = Arc::make_mut(&mut self.inner);
        inner.batch = batch;
        inner.prev_result = prev_result;
        self
    }

    /// For a step of a [`Chain`](crate::Chain) after the first: the result the step before it
    /// returned (its output's bytes, e.g. an `--exec` command's stdout).
    pub fn prev_result(&self) -> Option<&[u8]> {
        self.inner.prev_result.as_deref()
    }

    /// The id of the batch this job is a child of, if any: what
    /// [`Client::add_to_batch`](crate::Client::add_to_batch) takes to add children to it
    /// while this job runs.
    pub fn batch_id(&self) -> Option<&str> {
        self.inner.batch.as_deref()
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

    /// Reports how far the job is, 0 to 100 %, with a short message (at most 1 KiB kept):
    /// shown by `streamworker job ID` and [`Client::status`](crate::Client::status) while
    /// the job runs and for a day after the last report. One Redis round trip per call, so
    /// report steps rather than every item of a tight loop. Returns whether it was recorded:
    /// `false` when this worker no longer holds the job (a reaper took it over) or the context
    /// is [detached](Self::detached). Percentages above 100 are stored as 100.
    ///
    /// ```no_run
    /// use streamworker::{JobContext, TaskError};
    ///
    /// async fn resize(images: Vec<String>, ctx: JobContext) -> Result<(), TaskError> {
    ///     for (i, image) in images.iter().enumerate() {
    ///         // ... resize `image` ...
    ///         let percent = ((i + 1) * 100 / images.len()) as u8;
    ///         ctx.progress(percent, format!("resized {image}")).await.ok();
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub async fn progress(&self, percent: u8, message: impl AsRef<str>) -> Result<bool> {
        match &self.inner.progress {
            Some((broker, target)) => {
                broker
                    .report_progress(target, percent, message.as_ref())
                    .await
            }
            None => Ok(false),
        }
    }

    /// This context with where its progress reports go; only while it is not shared yet.
    pub(crate) fn with_progress(mut self, broker: Broker, target: ProgressTarget) -> JobContext {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.progress = Some((broker, target));
        }
        self
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

    /// The value of the job's header `name` (set by the producer with
    /// [`Job::header`](crate::Job::header), or as field `h.<name>` by redis-cli), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner.headers.get(name)
    }

    /// Every header of the job as `(name, value)`, in the order the producer set them.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.inner.headers.iter().map(|h| (h.name(), h.value()))
    }

    /// This context with header `name` set to `value`: for calling a handler directly with a
    /// [`detached`](JobContext::detached) context (clones share the header set before it).
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> JobContext {
        Arc::make_mut(&mut self.inner)
            .headers
            .set(name, value.into());
        self
    }

    /// An absolute URL for `path` on the site whose origin the job carries in its `origin`
    /// header (`scheme://host[:port][/prefix]`, as `RequestOrigin` sets it with the `axum`
    /// feature, or as any producer writes it): `ctx.origin_url("/users/42")` →
    /// `https://example.com/app/users/42`. `None` when the job has no `origin` header.
    ///
    /// ```
    /// use std::time::Instant;
    /// use streamworker::{GroupName, JobContext};
    ///
    /// let ctx = JobContext::detached(GroupName::new("push")?, "notify", "j1", Instant::now())
    ///     .with_header("origin", "https://example.com/app");
    /// assert_eq!(ctx.origin_url("/users/42").as_deref(), Some("https://example.com/app/users/42"));
    /// # Ok::<(), streamworker::Error>(())
    /// ```
    pub fn origin_url(&self, path: &str) -> Option<String> {
        self.header(ORIGIN_HEADER)
            .map(|origin| join_url(origin, path))
    }
}

/// The header that holds the origin of the request that enqueued a job.
pub const ORIGIN_HEADER: &str = "origin";

/// `origin` and `path` joined with exactly one `/` between them.
fn join_url(origin: &str, path: &str) -> String {
    let origin = origin.trim_end_matches('/');
    let path = path.trim_start_matches('/');
    format!("{origin}/{path}")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> JobContext {
        JobContext::detached(GroupName::new("g").unwrap(), "t", "j", Instant::now())
    }

    #[test]
    fn headers_are_read_by_name_and_in_order() {
        let c = ctx().with_header("b", "2").with_header("a", "1");
        assert_eq!(c.header("a"), Some("1"));
        assert_eq!(c.header("zz"), None);
        assert_eq!(c.headers().collect::<Vec<_>>(), [("b", "2"), ("a", "1")]);
        assert_eq!(ctx().headers().count(), 0);
    }

    #[test]
    fn origin_urls_join_with_one_slash() {
        assert_eq!(ctx().origin_url("/x"), None);
        for (origin, path, want) in [
            (
                "https://a.example",
                "/users/42",
                "https://a.example/users/42",
            ),
            (
                "https://a.example/",
                "users/42",
                "https://a.example/users/42",
            ),
            (
                "http://a.example:8080/app",
                "/u?x=1",
                "http://a.example:8080/app/u?x=1",
            ),
            ("https://a.example", "", "https://a.example/"),
        ] {
            let c = ctx().with_header(ORIGIN_HEADER, origin);
            assert_eq!(c.origin_url(path).as_deref(), Some(want));
        }
    }
}
