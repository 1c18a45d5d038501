//! Tasks: plain async functions registered by name, and the [`TaskError`] through which a
//! handler says what should happen after a failure.

use crate::context::{JobContext, State};
use crate::error::{Error, Result};
use crate::job::Payload;
use crate::keys::validate_name;
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Why a job failed, and what to do next: retry (after the backoff, or after a given delay) or
/// fail for good. Any `std::error::Error` converts into a retryable `TaskError`, so `?` works
/// in handlers.
///
/// ```
/// use std::time::Duration;
/// use streamworker::TaskError;
///
/// async fn charge(amount: u64) -> Result<(), TaskError> {
///     if amount == 0 {
///         return Err(TaskError::fatal("amount must be positive")); // no retry
///     }
///     let _n: u32 = "42".parse()?; // a parse error is retried
///     Err(TaskError::retry_after("rate limited", Duration::from_secs(30)))
/// }
/// ```
#[derive(Debug)]
pub struct TaskError {
    message: String,
    kind: FailureKind,
}

/// What a [`TaskError`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// Retry after the worker's backoff, if attempts are left.
    Retry,
    /// Retry after this delay, if attempts are left.
    RetryAfter(Duration),
    /// Do not retry: straight to the dead stream.
    Fatal,
    /// The handler did not run: straight to the dead stream with the message as the reason.
    #[cfg(feature = "postgres")]
    NotRun,
}

impl TaskError {
    /// A failure retried after the backoff while attempts are left.
    pub fn retry(message: impl fmt::Display) -> TaskError {
        TaskError {
            message: message.to_string(),
            kind: FailureKind::Retry,
        }
    }

    /// A failure retried after `delay` (instead of the backoff) while attempts are left.
    pub fn retry_after(message: impl fmt::Display, delay: Duration) -> TaskError {
        TaskError {
            message: message.to_string(),
            kind: FailureKind::RetryAfter(delay),
        }
    }

    /// A failure that must not be retried: the job goes to the dead stream now.
    pub fn fatal(message: impl fmt::Display) -> TaskError {
        TaskError {
            message: message.to_string(),
            kind: FailureKind::Fatal,
        }
    }

    /// The job cannot run (its row argument is gone): dead with `message` as the reason.
    #[cfg(feature = "postgres")]
    pub(crate) fn not_run(message: impl fmt::Display) -> TaskError {
        TaskError {
            message: message.to_string(),
            kind: FailureKind::NotRun,
        }
    }

    /// The failure's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn kind(&self) -> FailureKind {
        self.kind
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for TaskError {
    fn from(e: E) -> TaskError {
        TaskError::retry(e)
    }
}

/// A handler's successful output, already encoded (JSON for Rust handlers). Stored only for
/// jobs that asked to keep their result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output(pub Vec<u8>);

/// The result of running one job through its handler and middleware.
pub type JobResult = std::result::Result<Output, TaskError>;

/// A value a handler may return on success: anything serde can write as JSON.
pub trait IntoOutput {
    /// Encodes the value.
    fn into_output(self) -> JobResult;
}

impl<T: Serialize> IntoOutput for T {
    fn into_output(self) -> JobResult {
        serde_json::to_vec(&self)
            .map(Output)
            .map_err(|e| TaskError::fatal(format!("result does not serialize: {e}")))
    }
}

/// An async function that can handle a task. Implemented for `async fn`s of these shapes,
/// where `A` is the arguments' serde type and `S` the worker's state:
///
/// - `async fn(A) -> Result<R, E>`
/// - `async fn(A, JobContext) -> Result<R, E>`
/// - `async fn(A, State<S>) -> Result<R, E>`
/// - `async fn(A, JobContext, State<S>) -> Result<R, E>`
///
/// with `R: Serialize` (the result) and `E: Into<TaskError>`. With the `postgres` feature, the
/// same four shapes with `Loaded<A>` first have `A`'s row arguments loaded before they run.
pub trait Handler<S, Marker>: Clone + Send + Sync + 'static {
    /// Decodes `payload` and runs the function.
    fn call(&self, payload: &Payload, ctx: JobContext, state: &S) -> BoxFuture<'static, JobResult>;
}

pub(crate) fn decode<A: DeserializeOwned>(payload: &Payload) -> std::result::Result<A, TaskError> {
    payload.decode::<A>().map_err(|e| {
        TaskError::fatal(format!(
            "args do not decode as {}: {e}",
            std::any::type_name::<A>()
        ))
    })
}

/// Marker types that tell the [`Handler`] impls apart; never named by users.
#[doc(hidden)]
#[derive(Debug)]
pub struct Marker<T>(std::marker::PhantomData<T>);

pub(crate) fn finish<R: IntoOutput, E: Into<TaskError>>(
    res: std::result::Result<R, E>,
) -> JobResult {
    match res {
        Ok(r) => r.into_output(),
        Err(e) => Err(e.into()),
    }
}

impl<F, Fut, A, R, E, S> Handler<S, Marker<(A,)>> for F
where
    F: Fn(A) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<R, E>> + Send + 'static,
    A: DeserializeOwned + Send + 'static,
    R: IntoOutput,
    E: Into<TaskError>,
{
    fn call(&self, payload: &Payload, _: JobContext, _: &S) -> BoxFuture<'static, JobResult> {
        let args = decode::<A>(payload);
        let f = self.clone();
        Box::pin(async move { finish(f(args?).await) })
    }
}

impl<F, Fut, A, R, E, S> Handler<S, Marker<(A, JobContext)>> for F
where
    F: Fn(A, JobContext) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<R, E>> + Send + 'static,
    A: DeserializeOwned + Send + 'static,
    R: IntoOutput,
    E: Into<TaskError>,
{
    fn call(&self, payload: &Payload, ctx: JobContext, _: &S) -> BoxFuture<'static, JobResult> {
        let args = decode::<A>(payload);
        let f = self.clone();
        Box::pin(async move { finish(f(args?, ctx).await) })
    }
}

impl<F, Fut, A, R, E, S> Handler<S, Marker<(A, State<S>)>> for F
where
    F: Fn(A, State<S>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<R, E>> + Send + 'static,
    A: DeserializeOwned + Send + 'static,
    R: IntoOutput,
    E: Into<TaskError>,
    S: Clone + Send + Sync + 'static,
{
    fn call(&self, payload: &Payload, _: JobContext, state: &S) -> BoxFuture<'static, JobResult> {
        let args = decode::<A>(payload);
        let f = self.clone();
        let state = State(state.clone());
        Box::pin(async move { finish(f(args?, state).await) })
    }
}

impl<F, Fut, A, R, E, S> Handler<S, Marker<(A, JobContext, State<S>)>> for F
where
    F: Fn(A, JobContext, State<S>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<R, E>> + Send + 'static,
    A: DeserializeOwned + Send + 'static,
    R: IntoOutput,
    E: Into<TaskError>,
    S: Clone + Send + Sync + 'static,
{
    fn call(&self, payload: &Payload, ctx: JobContext, state: &S) -> BoxFuture<'static, JobResult> {
        let args = decode::<A>(payload);
        let f = self.clone();
        let state = State(state.clone());
        Box::pin(async move { finish(f(args?, ctx, state).await) })
    }
}

/// A handler with its types erased, as the registry keeps it.
pub(crate) type ErasedHandler<S> =
    Arc<dyn Fn(&Payload, JobContext, &S) -> BoxFuture<'static, JobResult> + Send + Sync>;

/// Defaults of one task for the jobs that do not set their own: retry limit and timeout.
///
/// ```
/// use std::time::Duration;
/// use streamworker::TaskOptions;
///
/// let options = TaskOptions::new().max_retries(10).timeout(Duration::from_secs(120));
/// assert_eq!(options.retries(), Some(10));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskOptions {
    max_retries: Option<u32>,
    timeout: Option<Duration>,
    /// Missing and changed row arguments (`src/row/`).
    #[cfg(feature = "postgres")]
    pub(crate) rows: crate::row::RowPolicy,
}

impl TaskOptions {
    /// Options that set nothing: the worker's defaults apply.
    pub fn new() -> TaskOptions {
        TaskOptions::default()
    }

    /// How many times a failed attempt of this task is retried, unless the job says otherwise.
    pub fn max_retries(mut self, retries: u32) -> TaskOptions {
        self.max_retries = Some(retries);
        self
    }

    /// How long one attempt of this task may run, unless the job says otherwise.
    pub fn timeout(mut self, timeout: Duration) -> TaskOptions {
        self.timeout = Some(timeout);
        self
    }

    /// The retry limit set here, if any.
    pub fn retries(&self) -> Option<u32> {
        self.max_retries
    }

    /// The timeout set here, if any.
    pub fn attempt_timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

/// Task name → handler, built by the worker builder; duplicates are refused.
pub(crate) struct Registry<S> {
    handlers: HashMap<String, (ErasedHandler<S>, &'static str)>,
    /// Per-task defaults, by task name.
    options: HashMap<String, TaskOptions>,
    fallback: Option<ErasedHandler<S>>,
    /// The first duplicate registration, reported by `build()`.
    duplicate: Option<Error>,
}

impl<S> Default for Registry<S> {
    fn default() -> Self {
        Registry {
            handlers: HashMap::new(),
            options: HashMap::new(),
            fallback: None,
            duplicate: None,
        }
    }
}

impl<S> fmt::Debug for Registry<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.handlers.keys().collect();
        names.sort();
        f.debug_struct("Registry")
            .field("tasks", &names)
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl<S: Clone + Send + Sync + 'static> Registry<S> {
    pub(crate) fn add<H, M>(&mut self, name: &str, handler: H)
    where
        H: Handler<S, M>,
    {
        let type_name = std::any::type_name::<H>();
        if let Err(e) = validate_name("task", name) {
            self.duplicate.get_or_insert(e);
            return;
        }
        if let Some((_, first)) = self.handlers.get(name) {
            self.duplicate.get_or_insert(Error::DuplicateTask {
                task: name.to_string(),
                first: first.to_string(),
                second: type_name.to_string(),
            });
            return;
        }
        let erased: ErasedHandler<S> = Arc::new(move |p, c, s| handler.call(p, c, s));
        self.handlers.insert(name.to_string(), (erased, type_name));
    }

    pub(crate) fn set_options(&mut self, name: &str, options: TaskOptions) {
        self.options.insert(name.to_string(), options);
    }

    /// The defaults registered for task `name` (none set when it has none).
    pub(crate) fn options(&self, name: &str) -> TaskOptions {
        self.options.get(name).copied().unwrap_or_default()
    }

    pub(crate) fn set_fallback(&mut self, handler: ErasedHandler<S>) {
        self.fallback = Some(handler);
    }

    /// The first registration error, if any.
    pub(crate) fn check(&mut self) -> Result<()> {
        match self.duplicate.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&ErasedHandler<S>> {
        self.handlers
            .get(name)
            .map(|(h, _)| h)
            .or(self.fallback.as_ref())
    }

    /// The registered task names, sorted; `*` stands for the fallback.
    pub(crate) fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.handlers.keys().map(String::as_str).collect();
        names.sort();
        if self.fallback.is_some() {
            names.push("*");
        }
        names
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.handlers.is_empty() && self.fallback.is_none()
    }
}
