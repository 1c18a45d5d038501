//! `streamworker --group G [--exec CMD]`: builds a worker from the flags and runs it until
//! SIGTERM or SIGINT.

use super::WorkArgs;
use super::exec::ExecHandler;
use crate::backoff::Backoff;
use crate::error::{Error, Result};
use crate::worker::config::RETRY_BACKOFF_CAP;
use crate::worker::{Worker, WorkerBuilder};
use std::sync::Arc;

pub(super) async fn run<S, F>(redis: &str, args: WorkArgs, configure: F) -> Result<()>
where
    S: Clone + Send + Sync + 'static,
    F: FnOnce(WorkerBuilder<()>) -> WorkerBuilder<S>,
{
    let mut builder = Worker::builder(redis)
        .concurrency(args.concurrency)
        .prefetch(args.prefetch)
        .shutdown_grace(*args.shutdown_grace)
        .visibility_timeout(*args.visibility_timeout)
        .max_deliveries(args.max_deliveries)
        .max_retries(args.max_retries)
        .max_payload_bytes(args.max_payload_bytes)
        .dead_max_len(args.dead_max_len)
        .dead_max_age(*args.dead_max_age)
        .timeout(*args.timeout)
        .backoff(Backoff::new(*args.retry_backoff, RETRY_BACKOFF_CAP));
    for g in &args.groups {
        builder = builder.group(g);
    }
    if let Some(addr) = args.metrics_addr {
        builder = builder.metrics_addr(addr);
    }
    #[cfg(feature = "postgres")]
    let outbox = match &args.outbox {
        Some(url) => {
            let pool = super::outbox::connect(url).await?;
            // A missing table fails the start, not the relay later.
            crate::outbox::status(&pool).await?;
            let metrics = args.metrics_addr.map(|_| crate::metrics::Metrics::new());
            if let Some(m) = &metrics {
                builder = builder.metrics(m.clone());
            }
            Some((pool, metrics))
        }
        None => None,
    };
    let only_group = match args.groups.as_slice() {
        [g] => Some(g.as_str()),
        _ => None,
    };
    for spec in &args.schedules {
        builder = builder.schedule(super::schedule::parse_spec(spec, only_group)?);
    }
    let mut builder = configure(builder);
    if let Some(cmd) = &args.exec {
        let exec = Arc::new(ExecHandler::new(cmd, args.exec_mode, args.concurrency)?);
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
    let signal = shutdown_signal()?;
    #[cfg(feature = "postgres")]
    if let Some((pool, metrics)) = outbox {
        let stop = tokio_util::sync::CancellationToken::new();
        let relay = tokio::spawn({
            let (redis, relay_args, stop) =
                (redis.to_string(), args.outbox_relay.clone(), stop.clone());
            async move { super::outbox::relay(&redis, pool, &relay_args, metrics, stop).await }
        });
        let ran = worker
            .run(async move {
                signal.await;
                stop.cancel();
            })
            .await;
        let relayed = relay
            .await
            .map_err(|e| Error::Config(format!("the outbox relay panicked: {e}")))?;
        return ran.and(relayed);
    }
    worker.run(signal).await
}

/// Installs the SIGINT and SIGTERM handlers at once (so a signal during start-up already
/// means "stop cleanly") and returns a future that completes on the first of them.
pub(super) fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send> {
    use tokio::signal::unix::{SignalKind, signal};
    let install = |kind| {
        signal(kind).map_err(|e| Error::Config(format!("cannot install signal handlers: {e}")))
    };
    let mut int = install(SignalKind::interrupt())?;
    let mut term = install(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT received"),
            _ = term.recv() => tracing::info!("SIGTERM received"),
        }
    })
}
