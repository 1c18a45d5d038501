//! The PostgreSQL outbox (feature `postgres`), beside plain enqueue in the same run:
//! - throughput: 20,000 jobs committed to the outbox (transactions of 100) while no relay
//!   runs, then one relay moves them into Redis: rows/s, against `enqueue_many` of as many
//!   jobs in chunks of 100 (one round trip each, as a request's jobs would go);
//! - latency: an idle worker; 1,000 jobs at 200/s, each its own transaction, stamped just
//!   before `enqueue_in_tx`: stamp→start through a running relay, against
//!   `Client::enqueue`→start.
//!
//! PostgreSQL runs on a free port in a temp dir, with the tests' harness (durability off, as
//! there: the figures are the relay's, not the disk's).

#[path = "../../tests/support/postgres.rs"]
#[allow(dead_code)]
mod pg;

/// What the harness expects beside it.
mod server {
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

use crate::child::{Stamp, Work, unix_ns};
use crate::drain::{wait_idle, worker};
use crate::report::{Row, Target, quantile};
use crate::{Ctx, GROUP, floor};
use sqlx::PgPool;
use std::time::Instant;
use streamworker::Job;
use streamworker::outbox::{self, Relay};
use tokio_util::sync::CancellationToken;

const JOBS: u64 = 20_000;
const PER_TX: u64 = 100;
const LATENCY_JOBS: u64 = 1_000;
const RATE: u64 = 200;

fn job(t: u64) -> Job {
    Job::new(GROUP, "bench", &Stamp { t }).expect("job")
}

async fn commit_jobs(pool: &PgPool) {
    for start in (0..JOBS).step_by(PER_TX as usize) {
        let mut tx = pool.begin().await.expect("begin");
        let jobs = (start..start + PER_TX).map(job);
        outbox::enqueue_all_in_tx(&mut tx, jobs)
            .await
            .expect("enqueue_in_tx");
        tx.commit().await.expect("commit");
    }
}

pub async fn run(ctx: &Ctx) -> Vec<Row> {
    let pg = pg::PgServer::start();
    let pool = PgPool::connect(&pg.url()).await.expect("postgres");
    outbox::init(&pool).await.expect("outbox init");

    let (mut relayed, mut plain) = (vec![], vec![]);
    for _ in 0..ctx.runs {
        ctx.server.flush().await;
        commit_jobs(&pool).await;
        let relay = Relay::new(pool.clone(), ctx.client.clone());
        let t = Instant::now();
        while relay.relay_batch().await.expect("relay") > 0 {}
        relayed.push(JOBS as f64 / t.elapsed().as_secs_f64());

        ctx.server.flush().await;
        let t = Instant::now();
        for start in (0..JOBS).step_by(PER_TX as usize) {
            ctx.client
                .enqueue_many((start..start + PER_TX).map(job))
                .await
                .expect("enqueue_many");
        }
        plain.push(JOBS as f64 / t.elapsed().as_secs_f64());
    }
    let mut rows = vec![
        Row::new("outbox relay, 20k jobs", "jobs/s", relayed)
            .reference(
                crate::report::median(&plain),
                "plain enqueue in batches of 100",
            )
            .target(Target::None),
    ];

    // Latency through a running relay, then plain enqueue, each into an idle worker.
    ctx.server.flush().await;
    let stop = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(pool.clone(), ctx.client.clone()).run(stop.clone().cancelled_owned()),
    );
    let child = worker(ctx, 16, LATENCY_JOBS, Work::Lag);
    wait_idle(ctx).await;
    floor::paced(LATENCY_JOBS, RATE, || async {
        let mut tx = pool.begin().await.expect("begin");
        outbox::enqueue_in_tx(&mut tx, job(unix_ns()))
            .await
            .expect("enqueue_in_tx");
        tx.commit().await.expect("commit");
    })
    .await;
    let mut through_outbox = child.report().await.lags_us;
    stop.cancel();
    relay.await.expect("relay task").expect("relay");

    ctx.server.flush().await;
    let child = worker(ctx, 16, LATENCY_JOBS, Work::Lag);
    wait_idle(ctx).await;
    floor::paced(LATENCY_JOBS, RATE, || async {
        ctx.client.enqueue(job(unix_ns())).await.expect("enqueue");
    })
    .await;
    let mut direct = child.report().await.lags_us;
    let ms = |us: i64| us as f64 / 1000.0;
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        rows.push(
            Row::new(
                format!("outbox at 200/s, enqueue_in_tx→start {name}"),
                "ms",
                vec![ms(quantile(&mut through_outbox, q))],
            )
            .reference(ms(quantile(&mut direct, q)), "Client::enqueue→start")
            .target(if name == "p99" {
                Target::AtMost(10.0)
            } else {
                Target::None
            }),
        );
    }
    drop(pool);
    drop(pg);
    rows
}
