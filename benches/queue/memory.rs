//! Memory: Redis `used_memory` growth per waiting job (100k small jobs) against a bare stream
//! entry of the same task and args; and the worker's peak RSS at concurrency 1000.

use crate::child::Work;
use crate::drain::{load, worker};
use crate::report::{Row, Target};
use crate::{Ctx, floor};

const JOBS: u64 = 100_000;
const RSS_JOBS: u64 = 20_000;
const RSS_SLEEP_MS: u64 = 50;

pub async fn run(ctx: &Ctx) -> Vec<Row> {
    let mut conn = ctx.server.conn().await;
    ctx.server.flush().await;
    let before = ctx.server.used_memory().await;
    floor::bulk_enqueue(&mut conn, JOBS).await;
    let bare = (ctx.server.used_memory().await - before) as f64 / JOBS as f64;

    ctx.server.flush().await;
    let before = ctx.server.used_memory().await;
    load(ctx, JOBS).await;
    let ours = (ctx.server.used_memory().await - before) as f64 / JOBS as f64;

    ctx.server.flush().await;
    load(ctx, RSS_JOBS).await;
    let report = worker(ctx, 1000, RSS_JOBS, Work::Sleep(RSS_SLEEP_MS))
        .report()
        .await;
    vec![
        Row::new("Redis memory per waiting job", "B", vec![ours])
            .floor(bare)
            .target(Target::AtMost(55.0)),
        Row::new(
            "worker peak RSS, concurrency 1000",
            "MB",
            vec![report.rss_peak_kib as f64 / 1024.0],
        )
        .target(Target::AtMost(30.0)),
    ]
}
