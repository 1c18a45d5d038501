//! One job's run: decode, find the handler, run it through the middleware under its timeout
//! and a panic guard, and turn what happened into a [`Completion`] for the finisher.

use super::config::DEAD_ARGS_KEPT;
use super::running::Running;
use super::shared::Shared;
use super::slot::Slot;
use crate::broker::{Cancelled, Dead, Delivery, Done, EntryRef, ProgressTarget, Retry};
use crate::context::JobContext;
use crate::job::Envelope;
use crate::keys::Keys;
use crate::metrics::JobTimer;
use crate::middleware::Next;
use crate::task::FailureKind;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How one job ended, addressed to its group.
#[derive(Debug)]
pub(crate) enum Completion {
    Ok(Keys, Done),
    Retry(Keys, Retry),
    Dead(Keys, Dead),
    Cancelled(Keys, Cancelled),
}

/// Runs the job in `delivery` and returns its completion. `slot` is released as soon as the
/// handler is done, before the outcome is written, so the next read can start.
pub(crate) async fn execute<S: Clone + Send + Sync + 'static>(
    shared: Arc<Shared<S>>,
    keys: Keys,
    delivery: Delivery,
    slot: Slot,
) -> Option<Completion> {
    let config = &shared.config;
    let envelope = match Envelope::decode(
        &delivery.entry_id,
        delivery.fields.as_deref(),
        config.max_payload_bytes,
    ) {
        Ok(env) => env,
        Err(bad) => {
            tracing::warn!(group = %keys.group(), entry = %delivery.entry_id, reason = %bad.reason, "job cannot be decoded: moved to dead");
            if let Some(m) = &config.metrics {
                m.job_dead_unrun(keys.group().as_str(), "-");
            }
            return Some(Completion::Dead(
                keys,
                Dead {
                    entry: EntryRef {
                        priority: delivery.priority,
                        entry_id: delivery.entry_id,
                        job_id: bad.id,
                        unique_key: None,
                        batch: bad.batch,
                    },
                    args_kept: bad.too_large.then_some(DEAD_ARGS_KEPT),
                    reason: bad.reason,
                    keep_result: bad.keep_result,
                },
            ));
        }
    };
    let entry = EntryRef {
        priority: delivery.priority,
        entry_id: delivery.entry_id,
        job_id: envelope.id.to_string(),
        unique_key: envelope.unique_key.clone(),
        batch: envelope.batch.clone(),
    };
    let dead = |keys: Keys, reason: String| {
        Some(Completion::Dead(
            keys,
            Dead {
                entry: entry.clone(),
                reason,
                keep_result: envelope.keep_result,
                args_kept: None,
            },
        ))
    };
    if delivery.deliveries > config.max_deliveries {
        let stalled = delivery.deliveries - 1;
        tracing::error!(group = %keys.group(), job_id = %envelope.id, task = %envelope.task, stalled, "job stalled on every delivery (each time its worker died or stopped answering while running it): moved to dead");
        return dead(
            keys,
            format!(
                "stalled {stalled} times: its worker died or stopped answering each time it ran (max deliveries {})",
                config.max_deliveries
            ),
        );
    }
    let Some(handler) = shared.registry.get(&envelope.task).cloned() else {
        let reason = format!(
            "unregistered task {:?}: no handler for it in this worker (registered: {})",
            envelope.task,
            shared.registry.names().join(", ")
        );
        tracing::warn!(group = %keys.group(), job_id = %envelope.id, %reason, "moved to dead");
        if let Some(m) = &config.metrics {
            m.job_dead_unrun(keys.group().as_str(), &envelope.task);
        }
        return dead(keys, reason);
    };

    let options = shared.registry.options(&envelope.task);
    let max_retries = envelope
        .max_retries
        .or(options.retries())
        .unwrap_or(config.max_retries);
    let timeout = envelope
        .timeout
        .or(options.attempt_timeout())
        .unwrap_or(config.timeout);
    let span = tracing::info_span!(
        "job",
        group = %keys.group(),
        task = %envelope.task,
        job_id = %envelope.id,
        attempt = envelope.attempt,
    );
    if let Some(keep) = envelope.keep_result {
        let marked = shared
            .broker
            .mark_running(&keys, &entry, &config.consumer, envelope.attempt, keep)
            .await;
        if let Err(e) = marked {
            tracing::warn!(parent: &span, error = %e, "could not record the running state");
        }
    }
    let timer = JobTimer::start(
        config.metrics.as_ref(),
        keys.group().as_str(),
        &envelope.task,
    );
    let cancel = CancellationToken::new();
    let by_request = Arc::new(AtomicBool::new(false));
    let running_key = (keys.group().clone(), entry.entry_id.clone());
    shared.running.start(
        running_key.clone(),
        Running {
            keys: keys.clone(),
            entry: entry.clone(),
            tracked: envelope.keep_result.is_some(),
            cancel: cancel.clone(),
            by_request: by_request.clone(),
        },
    );

    let ctx = JobContext::new(
        keys.group().clone(),
        &envelope.task,
        envelope.id.as_str(),
        entry.priority,
        envelope.attempt,
        max_retries,
        Instant::now() + timeout,
        cancel.clone(),
        envelope.headers.clone(),
    )
    .with_progress(
        shared.broker.clone(),
        ProgressTarget {
            keys: keys.clone(),
            priority: entry.priority,
            entry_id: entry.entry_id.clone(),
            job_id: envelope.id.as_str().to_string(),
            consumer: shared.config.consumer.clone(),
        },
    )
    .with_batch(envelope.batch.clone(), envelope.prev_result.clone());
    #[cfg(feature = "postgres")]
    let ctx = ctx.with_row_policy(options.rows);
    let handler_future = handler(&envelope.payload, ctx.clone(), &shared.state);
    let chain = Next::new(shared.layers.clone(), handler_future).run(ctx);
    let started = Instant::now();
    let run = tokio::time::timeout(timeout, AssertUnwindSafe(chain).catch_unwind())
        .instrument(span.clone());
    let outcome = tokio::select! {
        outcome = run => outcome,
        () = cancel.cancelled() => {
            if !by_request.load(Ordering::SeqCst) {
                // Handed back at the end of a stop's grace period: drop the handler's future;
                // the entry is already back in its stream.
                return None;
            }
            // Cancelled on request: the handler's future (and an --exec child) is dropped.
            shared.running.finish(&running_key);
            drop(slot);
            tracing::info!(parent: &span, "job cancelled on request while running");
            return Some(Completion::Cancelled(
                keys,
                Cancelled {
                    entry,
                    keep_result: envelope.keep_result,
                },
            ));
        }
    };
    shared.running.finish(&running_key);
    slot.finished(started.elapsed());

    let failure = match outcome {
        Ok(Ok(Ok(output))) => {
            tracing::debug!(parent: &span, ms = started.elapsed().as_millis() as u64, "job succeeded");
            timer.succeeded();
            return Some(Completion::Ok(
                keys,
                Done {
                    entry,
                    chain_result: envelope.chain_step.then(|| output.0.clone()),
                    keep: envelope.keep_result.map(|ttl| (ttl, output.0)),
                },
            ));
        }
        Ok(Ok(Err(e))) => (e.kind(), e.message().to_string()),
        Ok(Err(panic)) => (
            FailureKind::Retry,
            format!("panicked: {}", panic_message(&panic)),
        ),
        Err(_) => (
            FailureKind::Retry,
            format!("timed out after {}", humantime::format_duration(timeout)),
        ),
    };
    let (kind, message) = failure;
    timer.failed();
    let attempts_left = envelope.attempt <= max_retries;
    match kind {
        FailureKind::Retry | FailureKind::RetryAfter(_) if attempts_left => {
            let backoff = match kind {
                FailureKind::RetryAfter(d) => d,
                _ => config.backoff.delay(envelope.attempt),
            };
            tracing::warn!(parent: &span, error = %message, retry_in = %humantime::format_duration(backoff), "job failed; will retry");
            timer.retried();
            Some(Completion::Retry(
                keys,
                Retry {
                    entry,
                    next_attempt: envelope.attempt + 1,
                    backoff,
                    error: message,
                    keep_result: envelope.keep_result,
                },
            ))
        }
        FailureKind::Fatal => {
            tracing::warn!(parent: &span, error = %message, "job failed for good: moved to dead");
            timer.dead();
            dead(keys, format!("failed without retry: {message}"))
        }
        #[cfg(feature = "postgres")]
        FailureKind::NotRun => {
            tracing::warn!(parent: &span, reason = %message, "job not run: moved to dead");
            timer.dead();
            dead(keys, message)
        }
        _ => {
            tracing::warn!(parent: &span, error = %message, "job failed on its last attempt: moved to dead");
            timer.dead();
            let attempts = match envelope.attempt {
                1 => "1 attempt".to_string(),
                n => format!("{n} attempts"),
            };
            dead(keys, format!("failed after {attempts}: {message}"))
        }
    }
}

/// The text a handler panicked with.
fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-text panic payload".into()
    }
}
