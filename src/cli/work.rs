//! `streamworker --group G [--exec CMD]`: builds a worker from the flags and runs it until
//! SIGTERM or SIGINT.

use super::WorkArgs;
use super::exec::ExecHandler;
use crate::backoff::Backoff;
use crate::error::{Error, Result};
use crate::worker::{Worker, WorkerBuilder};
use std::sync::Arc;
use std::time::Duration;

pub(super) async fn run<S, F>(redis: &str, args: WorkArgs, configure: F) -> Result<()>
where
    S: Clone + Send + Sync + 'static,
    F: FnOnce(WorkerBuilder<()>) -> WorkerBuilder<S>,
{
    let mut builder = Worker::builder(redis)
        .concurrency(args.concurrency)
        .shutdown_grace(args.shutdown_grace)
        .backoff(Backoff::new(args.retry_backoff, Duration::from_secs(600)));
    for g in &args.groups {
        builder = builder.group(g);
    }
    let mut builder = configure(builder);
    if let Some(cmd) = &args.exec {
        let exec = Arc::new(ExecHandler::new(cmd)?);
        builder = builder.fallback(move |payload, ctx| {
            let exec = exec.clone();
            async move { exec.run(payload, ctx).await }
        });
    }
    let worker = builder.build().map_err(|e| match e {
        Error::Config(msg) if args.exec.is_none() && msg.starts_with("no task") => Error::Config(
            "no task to run: pass --exec 'CMD ARG...' to run a command per job".into(),
        ),
        other => other,
    })?;
    worker.run(shutdown_signal()).await
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}
