//! Latency: an idle worker, 2,000 jobs enqueued one by one at 500/s, each carrying its enqueue
//! time: enqueue→start. Delayed: 500 jobs due at random within the next 3 s: start − due.

use crate::child::{Stamp, Work, unix_ns};
use crate::drain::{wait_idle, worker};
use crate::report::{Row, Target, quantile};
use crate::{Ctx, GROUP, floor};
use std::time::{Duration, UNIX_EPOCH};
use streamworker::Job;

const JOBS: u64 = 2_000;
const RATE: u64 = 500;
const DELAYED: u64 = 500;
const WITHIN_MS: u64 = 3_000;

fn ms_rows(
    what: &str,
    ours: &mut [i64],
    floor: Option<&mut [i64]>,
    p99_target: Target,
) -> Vec<Row> {
    let ms = |us: i64| us as f64 / 1000.0;
    let mut floor = floor;
    ["p50", "p99", "max"]
        .into_iter()
        .zip([0.5, 0.99, 1.0])
        .map(|(name, q)| {
            let mut row = Row::new(format!("{what} {name}"), "ms", vec![ms(quantile(ours, q))]);
            if let Some(f) = floor.as_deref_mut() {
                row = row.floor(ms(quantile(f, q)));
            }
            if name == "p99" {
                row = row.target(p99_target);
            }
            row
        })
        .collect()
}

pub async fn latency(ctx: &Ctx) -> Vec<Row> {
    ctx.server.flush().await;
    let mut conn = ctx.server.conn().await;
    floor::create_group(&mut conn).await;
    let mut floor_lags = floor::latency(&mut conn, ctx.server.conn().await, JOBS, RATE).await;

    ctx.server.flush().await;
    let child = worker(ctx, 16, JOBS, Work::Lag);
    wait_idle(ctx).await;
    floor::paced(JOBS, RATE, || async {
        let job = Job::new(GROUP, "bench", &Stamp { t: unix_ns() }).expect("job");
        ctx.client.enqueue(job).await.expect("enqueue");
    })
    .await;
    let mut ours = child.report().await.lags_us;
    ms_rows(
        "latency at 500/s, enqueue→start",
        &mut ours,
        Some(&mut floor_lags),
        Target::FloorPlus(0.2),
    )
}

pub async fn delayed(ctx: &Ctx) -> Vec<Row> {
    ctx.server.flush().await;
    let child = worker(ctx, 64, DELAYED, Work::Lag);
    wait_idle(ctx).await;
    let now_ms = unix_ns() / 1_000_000;
    let jobs: Vec<Job> = (0..DELAYED)
        .map(|_| {
            let due_ms = now_ms + 50 + rand::random_range(0..WITHIN_MS);
            Job::new(
                GROUP,
                "bench",
                &Stamp {
                    t: due_ms * 1_000_000,
                },
            )
            .expect("job")
            .at(UNIX_EPOCH + Duration::from_millis(due_ms))
        })
        .collect();
    ctx.client.enqueue_many(jobs).await.expect("enqueue_many");
    let mut ours = child.report().await.lags_us;
    let earliest = ours.iter().copied().min().unwrap_or(0);
    let mut rows = ms_rows(
        "delayed 500 within 3 s, lateness",
        &mut ours,
        None,
        Target::AtMost(3.0),
    );
    // A job must never start before its due time.
    rows.push(
        Row::new(
            "delayed 500 within 3 s, earliest start",
            "ms",
            vec![earliest as f64 / 1000.0],
        )
        .target(Target::AtLeast(0.0)),
    );
    rows
}
