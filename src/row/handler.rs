//! Handlers whose arguments hold rows: [`Loaded<A>`] as the handler's first parameter makes the
//! worker load every [`Row`] in `A` (listed by [`HasRows`]) from the state's pool
//! ([`RowPool`]) before it calls the handler.

use super::TableRow;
use super::arg::{LoadRow, Row};
use super::policy::RowPolicy;
use crate::context::{JobContext, State};
use crate::job::Payload;
use crate::task::{Handler, IntoOutput, JobResult, TaskError, decode, finish};
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// A handler's arguments with their rows loaded. A handler whose first parameter is
/// `Loaded<A>` has `A` decoded from the job, then every row that `A` lists
/// ([`HasRows`]) read from the worker's [`RowPool`], and only then runs. A missing or changed
/// row ends the job as the task's options say ([`MissingRow`](crate::MissingRow),
/// [`ChangedRow`](crate::ChangedRow)); a database error is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded<A>(pub A);

impl<A> Deref for Loaded<A> {
    type Target = A;
    fn deref(&self) -> &A {
        &self.0
    }
}

impl<A> DerefMut for Loaded<A> {
    fn deref_mut(&mut self) -> &mut A {
        &mut self.0
    }
}

/// Arguments that hold row references: lists them for loading, in the order they are read.
/// Implemented for [`Row<T>`], `Option` and `Vec` of such; implement it for your argument
/// struct by listing its row fields (see [`Row`]).
pub trait HasRows: Send {
    /// Every row reference in `self`.
    fn rows_mut(&mut self) -> Vec<&mut dyn LoadRow>;
}

impl<T: TableRow> HasRows for Row<T> {
    fn rows_mut(&mut self) -> Vec<&mut dyn LoadRow> {
        vec![self]
    }
}

impl<R: HasRows> HasRows for Option<R> {
    fn rows_mut(&mut self) -> Vec<&mut dyn LoadRow> {
        self.as_mut().map(R::rows_mut).unwrap_or_default()
    }
}

impl<R: HasRows> HasRows for Vec<R> {
    fn rows_mut(&mut self) -> Vec<&mut dyn LoadRow> {
        self.iter_mut().flat_map(R::rows_mut).collect()
    }
}

/// A worker state that holds the pool rows are read from: `PgPool` itself, or your state type
/// returning its pool (a replica's, if you like; then see
/// [`MissingRow::Retry`](crate::MissingRow::Retry)).
pub trait RowPool {
    /// The pool every row of a job is read from.
    fn row_pool(&self) -> &PgPool;
}

impl RowPool for PgPool {
    fn row_pool(&self) -> &PgPool {
        self
    }
}

impl<P: RowPool + ?Sized> RowPool for Arc<P> {
    fn row_pool(&self) -> &PgPool {
        (**self).row_pool()
    }
}

/// Decodes the arguments and loads their rows, one query each, in [`HasRows`] order; the
/// first row that cannot be used ends the job.
async fn load_args<A: HasRows>(
    args: Result<A, TaskError>,
    pool: PgPool,
    policy: RowPolicy,
) -> Result<Loaded<A>, TaskError> {
    let mut args = args?;
    for row in args.rows_mut() {
        row.load(&pool, policy.missing, policy.changed).await?;
    }
    Ok(Loaded(args))
}

/// Marker types that tell the [`Handler`] impls of `Loaded` handlers apart; never named by
/// users.
#[doc(hidden)]
#[derive(Debug)]
pub struct RowsMarker<T>(std::marker::PhantomData<T>);

impl<F, Fut, A, R, E, S> Handler<S, RowsMarker<(A,)>> for F
where
    F: Fn(Loaded<A>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    A: DeserializeOwned + HasRows + 'static,
    R: IntoOutput,
    E: Into<TaskError>,
    S: RowPool,
{
    fn call(&self, payload: &Payload, ctx: JobContext, state: &S) -> BoxFuture<'static, JobResult> {
        let args = load_args(
            decode::<A>(payload),
            state.row_pool().clone(),
            ctx.row_policy(),
        );
        let f = self.clone();
        Box::pin(async move { finish(f(args.await?).await) })
    }
}

impl<F, Fut, A, R, E, S> Handler<S, RowsMarker<(A, JobContext)>> for F
where
    F: Fn(Loaded<A>, JobContext) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    A: DeserializeOwned + HasRows + 'static,
    R: IntoOutput,
    E: Into<TaskError>,
    S: RowPool,
{
    fn call(&self, payload: &Payload, ctx: JobContext, state: &S) -> BoxFuture<'static, JobResult> {
        let args = load_args(
            decode::<A>(payload),
            state.row_pool().clone(),
            ctx.row_policy(),
        );
        let f = self.clone();
        Box::pin(async move { finish(f(args.await?, ctx).await) })
    }
}

impl<F, Fut, A, R, E, S> Handler<S, RowsMarker<(A, State<S>)>> for F
where
    F: Fn(Loaded<A>, State<S>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    A: DeserializeOwned + HasRows + 'static,
    R: IntoOutput,
    E: Into<TaskError>,
    S: RowPool + Clone + Send + Sync + 'static,
{
    fn call(&self, payload: &Payload, ctx: JobContext, state: &S) -> BoxFuture<'static, JobResult> {
        let args = load_args(
            decode::<A>(payload),
            state.row_pool().clone(),
            ctx.row_policy(),
        );
        let f = self.clone();
        let state = State(state.clone());
        Box::pin(async move { finish(f(args.await?, state).await) })
    }
}

impl<F, Fut, A, R, E, S> Handler<S, RowsMarker<(A, JobContext, State<S>)>> for F
where
    F: Fn(Loaded<A>, JobContext, State<S>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    A: DeserializeOwned + HasRows + 'static,
    R: IntoOutput,
    E: Into<TaskError>,
    S: RowPool + Clone + Send + Sync + 'static,
{
    fn call(&self, payload: &Payload, ctx: JobContext, state: &S) -> BoxFuture<'static, JobResult> {
        let args = load_args(
            decode::<A>(payload),
            state.row_pool().clone(),
            ctx.row_policy(),
        );
        let f = self.clone();
        let state = State(state.clone());
        Box::pin(async move { finish(f(args.await?, ctx, state).await) })
    }
}
