//! Enqueue: 100k jobs in one call, and 10k jobs each awaited, against pipelined and single
//! XADDs of the same payload.

use crate::child::Stamp;
use crate::report::{Row, Target, median};
use crate::{Ctx, GROUP, floor};
use std::time::Instant;
use streamworker::Job;

const BULK: u64 = 100_000;
const SINGLE: u64 = 10_000;

fn job(t: u64) -> Job {
    Job::new(GROUP, "bench", &Stamp { t }).expect("job")
}

pub async fn run(ctx: &Ctx) -> Vec<Row> {
    let (mut ours_bulk, mut floor_bulk, mut ours_one, mut floor_one) =
        (vec![], vec![], vec![], vec![]);
    let mut conn = ctx.server.conn().await;
    for _ in 0..ctx.runs {
        ctx.server.flush().await;
        let started = Instant::now();
        let jobs: Vec<Job> = (0..BULK).map(job).collect();
        ctx.client.enqueue_many(jobs).await.expect("enqueue_many");
        ours_bulk.push(BULK as f64 / started.elapsed().as_secs_f64());

        ctx.server.flush().await;
        floor_bulk.push(BULK as f64 / floor::bulk_enqueue(&mut conn, BULK).await.as_secs_f64());

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
        Row::new("enqueue, bulk of 100k", "jobs/s", ours_bulk)
            .floor(median(&floor_bulk))
            .target(Target::RatioAtLeast(0.7)),
        Row::new("enqueue, one at a time, 10k", "jobs/s", ours_one)
            .floor(median(&floor_one))
            .target(Target::RatioAtLeast(0.8)),
    ]
}
