//! Middleware: code that wraps every job's execution (timing, metrics, a database
//! transaction, extra tracing fields).
//!
//! Layers run outside-in in the order they were added: the first `layer(..)` sees the job
//! first and its result last. Every job also runs inside a `job` tracing span carrying
//! `group`, `task`, `job_id` and `attempt`, outside all layers.

use crate::context::JobContext;
use crate::task::JobResult;
use futures_util::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;

/// A layer around every job. Implemented for any
/// `Fn(JobContext, Next) -> impl Future<Output = JobResult>`.
///
/// ```
/// use streamworker::{JobContext, Next};
///
/// async fn timed(ctx: JobContext, next: Next) -> streamworker::JobResult {
///     let start = std::time::Instant::now();
///     let result = next.run(ctx.clone()).await;
///     tracing::info!(task = ctx.task(), ms = start.elapsed().as_millis() as u64, ok = result.is_ok(), "job done");
///     result
/// }
/// ```
pub trait Middleware: Send + Sync + 'static {
    /// Runs the job through `next`, doing whatever comes before and after.
    fn call(&self, ctx: JobContext, next: Next) -> BoxFuture<'static, JobResult>;
}

impl<F, Fut> Middleware for F
where
    F: Fn(JobContext, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = JobResult> + Send + 'static,
{
    fn call(&self, ctx: JobContext, next: Next) -> BoxFuture<'static, JobResult> {
        Box::pin(self(ctx, next))
    }
}

/// The rest of the chain: the remaining layers, then the handler.
pub struct Next {
    layers: Arc<[Arc<dyn Middleware>]>,
    position: usize,
    handler: BoxFuture<'static, JobResult>,
}

impl std::fmt::Debug for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("layers_left", &(self.layers.len() - self.position))
            .finish()
    }
}

impl Next {
    pub(crate) fn new(
        layers: Arc<[Arc<dyn Middleware>]>,
        handler: BoxFuture<'static, JobResult>,
    ) -> Next {
        Next {
            layers,
            position: 0,
            handler,
        }
    }

    /// Runs the remaining layers and the handler.
    pub fn run(self, ctx: JobContext) -> BoxFuture<'static, JobResult> {
        match self.layers.get(self.position).cloned() {
            Some(layer) => layer.call(
                ctx,
                Next {
                    layers: self.layers,
                    position: self.position + 1,
                    handler: self.handler,
                },
            ),
            None => self.handler,
        }
    }
}
