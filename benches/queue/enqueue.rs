//! Enqueue: 100k jobs in one call, and 10k jobs each awaited, against pipelined and single
//! XADDs of the same payload; for the bulk, the CPU each side spends per job (the bench
//! process, and Redis), which says where the time goes.

use crate::child::Stamp;
use crate::report::{Row, Target, median};
use crate::{Ctx, GROUP, floor};
use std::future::Future;
use std::time::{Duration, Instant};
use streamworker::Job;

const BULK: u64 = 100_000;
const SINGLE: u64 = 10_000;

fn job(t: u64) -> Job {
    Job::new(GROUP, "bench", &Stamp { t }).expect("job")
}

/// CPU time this process has used, user plus system, in seconds (`/proc/self/stat`, in clock
/// ticks of 10 ms: over a bulk of 100k a tick is 0.1 µs per job); 0 where there is no `/proc`.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime: fields 14 and 15 of the line, 12 and 13 after the state.
    (ticks(11) + ticks(12)) / 100.0
}

/// One bulk measure: jobs/s, and the bench process's and Redis's CPU per job in µs.
#[derive(Default)]
struct Bulk {
    rate: Vec<f64>,
    client_us: Vec<f64>,
    redis_us: Vec<f64>,
}

impl Bulk {
    async fn measure<F: Future<Output = Duration>>(&mut self, ctx: &Ctx, send: F) {
        ctx.server.flush().await;
        let (client, redis) = (process_cpu_seconds(), ctx.server.cpu_seconds().await);
        let elapsed = send.await;
        let redis = ctx.server.cpu_seconds().await - redis;
        let client = process_cpu_seconds() - client;
        self.rate.push(BULK as f64 / elapsed.as_secs_f64());
        self.client_us.push(client * 1e6 / BULK as f64);
        self.redis_us.push(redis * 1e6 / BULK as f64);
    }
}

pub async fn run(ctx: &Ctx) -> Vec<Row> {
    let (mut ours_bulk, mut floor_bulk) = (Bulk::default(), Bulk::default());
    let (mut ours_one, mut floor_one) = (vec![], vec![]);
    let mut conn = ctx.server.conn().await;
    for _ in 0..ctx.runs {
        ours_bulk
            .measure(ctx, async {
                let started = Instant::now();
                let jobs: Vec<Job> = (0..BULK).map(job).collect();
                ctx.client.enqueue_many(jobs).await.expect("enqueue_many");
                started.elapsed()
            })
            .await;
        floor_bulk
            .measure(ctx, floor::bulk_enqueue(&mut conn, BULK))
            .await;

        ctx.server.flush().await;
        let started = Instant::now();
        for i in 0..SINGLE {
            ctx.client.enqueue(job(i)).await.expect("enqueue");
        }
        ours_one.push(SINGLE as f64 / started.elapsed().as_secs_f64());

        ctx.server.flush().await;
        floor_one
            .push(SINGLE as f64 / floor::single_enqueue(&mut conn, SINGLE).await.as_secs_f64());
    }
    vec![
        Row::new("enqueue, bulk of 100k", "jobs/s", ours_bulk.rate)
            .floor(median(&floor_bulk.rate))
            .target(Target::RatioAtLeast(0.8)),
        Row::new(
            "enqueue, bulk: bench process CPU per job",
            "µs",
            ours_bulk.client_us,
        )
        .floor(median(&floor_bulk.client_us)),
        Row::new("enqueue, bulk: Redis CPU per job", "µs", ours_bulk.redis_us)
            .floor(median(&floor_bulk.redis_us)),
        Row::new("enqueue, one at a time, 10k", "jobs/s", ours_one)
            .floor(median(&floor_one))
            .target(Target::RatioAtLeast(0.9)),
    ]
}
