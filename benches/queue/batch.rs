//! Batch: the cost of a batch's bookkeeping per job. 20k no-op jobs drained by one worker
//! process at concurrency 256, as plain jobs and as the children of one batch (plus its
//! `on_complete` callback) in the same run; the plain drain is the row's floor, so the ratio is
//! what the counting in the finishing scripts (and the one-script creation) leaves of it.

use crate::child::{Stamp, Work};
use crate::drain::{load, worker};
use crate::report::{Row, Target, median};
use crate::{Ctx, GROUP};
use std::time::Duration;
use streamworker::{Batch, Job};

const JOBS: u64 = 20_000;
const CONCURRENCY: usize = 256;

pub async fn run(ctx: &Ctx) -> Vec<Row> {
    let (mut plain, mut batched) = (Vec::new(), Vec::new());
    for _ in 0..ctx.runs {
        ctx.server.flush().await;
        load(ctx, JOBS).await;
        let report = worker(ctx, CONCURRENCY, JOBS, Work::Noop).report().await;
        plain.push(JOBS as f64 / secs(report.acked_ns - report.started_ns));

        ctx.server.flush().await;
        let children = (0..JOBS).map(|t| Job::new(GROUP, "bench", &Stamp { t }).expect("job"));
        let callback = Job::new(GROUP, "bench", &Stamp { t: JOBS }).expect("job");
        let batch = Batch::new(GROUP)
            .expect("batch")
            .jobs(children)
            .on_complete(callback);
        ctx.client
            .enqueue_batch(batch)
            .await
            .expect("enqueue_batch");
        // The children and the callback, which the last child's finish adds.
        let report = worker(ctx, CONCURRENCY, JOBS + 1, Work::Noop)
            .report()
            .await;
        batched.push(JOBS as f64 / secs(report.acked_ns - report.started_ns));
    }
    vec![
        Row::new(
            format!(
                "batch of {}k children drained, concurrency {CONCURRENCY}",
                JOBS / 1000
            ),
            "jobs/s",
            batched,
        )
        .floor(median(&plain))
        .target(Target::RatioAtLeast(0.7)),
    ]
}

fn secs(ns: u64) -> f64 {
    Duration::from_nanos(ns).as_secs_f64()
}
