//! Drain: 100k no-op jobs waiting, one worker process, results not kept, at concurrency 1, 16
//! and 256; and end to end: producer and worker together at full speed.

use crate::child::{Child, ChildArgs, Stamp, Work, unix_ns};
use crate::report::{Row, Target, median};
use crate::{Ctx, GROUP, floor};
use std::time::Duration;
use streamworker::Job;

const JOBS: u64 = 100_000;
const E2E_JOBS: u64 = 200_000;
const E2E_CHUNK: u64 = 1_000;

pub async fn load(ctx: &Ctx, n: u64) {
    let jobs: Vec<Job> = (0..n)
        .map(|t| Job::new(GROUP, "bench", &Stamp { t }).expect("job"))
        .collect();
    ctx.client.enqueue_many(jobs).await.expect("enqueue_many");
}

pub fn worker(ctx: &Ctx, concurrency: usize, expect: u64, work: Work) -> Child {
    Child::spawn(&ChildArgs {
        url: ctx.server.url.clone(),
        cluster: false,
        groups: vec![GROUP.into()],
        concurrency,
        expect,
        work,
    })
}

pub async fn drain(ctx: &Ctx) -> Vec<Row> {
    let mut conn = ctx.server.conn().await;
    let mut floor_runs = Vec::new();
    let mut floor_cpus = Vec::new();
    for _ in 0..ctx.runs {
        ctx.server.flush().await;
        floor::bulk_enqueue(&mut conn, JOBS).await;
        floor::create_group(&mut conn).await;
        let cpu = ctx.server.cpu_seconds().await;
        let took = floor::consume(&mut conn, JOBS, None, None).await;
        floor_runs.push(JOBS as f64 / took.as_secs_f64());
        floor_cpus.push(per_job_us(ctx.server.cpu_seconds().await - cpu, JOBS));
        print_commandstats(&mut conn).await;
    }
    let floor_rate = median(&floor_runs);
    let floor_cpu = median(&floor_cpus);
    let mut rows = Vec::new();
    // BENCH_DRAIN_CONCURRENCY=256 runs one level only (for profiling).
    let levels: Vec<usize> = match std::env::var("BENCH_DRAIN_CONCURRENCY") {
        Ok(v) => vec![v.parse().expect("BENCH_DRAIN_CONCURRENCY is a number")],
        Err(_) => vec![1, 16, 256],
    };
    for concurrency in levels {
        let mut runs = Vec::new();
        let (mut redis_cpu, mut worker_cpu) = (0.0, 0.0);
        let mut redis_cpus = Vec::new();
        // One job at a time takes a round trip or two per job: in quick mode a fifth of the
        // jobs gives the same rate in a fifth of the time.
        let jobs = if concurrency == 1 && ctx.quick {
            JOBS / 5
        } else {
            JOBS
        };
        for _ in 0..ctx.runs {
            ctx.server.flush().await;
            load(ctx, jobs).await;
            let cpu = ctx.server.cpu_seconds().await;
            let report = worker(ctx, concurrency, jobs, Work::Noop).report().await;
            let took = Duration::from_nanos(report.acked_ns - report.started_ns);
            runs.push(jobs as f64 / took.as_secs_f64());
            redis_cpu = per_job_us(ctx.server.cpu_seconds().await - cpu, jobs);
            redis_cpus.push(redis_cpu);
            worker_cpu = per_job_us(report.cpu_s, jobs);
            print_commandstats(&mut conn).await;
        }
        println!(
            "  concurrency {concurrency}: CPU per job: Redis {redis_cpu:.1} µs (floor {floor_cpu:.1} µs), worker {worker_cpu:.1} µs"
        );
        let target = if concurrency >= 16 {
            Target::RatioAtLeast(0.85)
        } else {
            Target::RatioAtLeast(0.5)
        };
        rows.push(
            Row::new(
                format!("drain {}k, concurrency {concurrency}", jobs / 1000),
                "jobs/s",
                runs,
            )
            .floor(floor_rate)
            .target(target),
        );
        if concurrency == 16 {
            rows.push(
                Row::new(
                    "Redis CPU per drained job, concurrency 16",
                    "µs",
                    redis_cpus,
                )
                .floor(floor_cpu)
                .target(Target::RatioAtMost(1.3)),
            );
        }
    }
    rows
}

pub async fn end_to_end(ctx: &Ctx) -> Vec<Row> {
    let (mut ours, mut floor_runs) = (Vec::new(), Vec::new());
    for _ in 0..ctx.runs {
        ctx.server.flush().await;
        let mut conn = ctx.server.conn().await;
        floor::create_group(&mut conn).await;
        let took = floor::end_to_end(&mut conn, ctx.server.conn().await, E2E_JOBS, E2E_CHUNK).await;
        floor_runs.push(E2E_JOBS as f64 / took.as_secs_f64());

        ctx.server.flush().await;
        let child = worker(ctx, 256, E2E_JOBS, Work::Noop);
        wait_idle(ctx).await;
        let started_ns = unix_ns();
        let mut sent = 0;
        while sent < E2E_JOBS {
            let end = (sent + E2E_CHUNK).min(E2E_JOBS);
            let jobs: Vec<Job> = (sent..end)
                .map(|t| Job::new(GROUP, "bench", &Stamp { t }).expect("job"))
                .collect();
            ctx.client.enqueue_many(jobs).await.expect("enqueue_many");
            sent = end;
        }
        let report = child.report().await;
        let took = Duration::from_nanos(report.acked_ns - started_ns);
        ours.push(E2E_JOBS as f64 / took.as_secs_f64());
    }
    vec![
        Row::new("end to end, 200k, concurrency 256", "jobs/s", ours)
            .floor(median(&floor_runs))
            .target(Target::None),
    ]
}

/// Waits until the worker child is up, idle, and blocked waiting for jobs.
pub async fn wait_idle(ctx: &Ctx) {
    floor::wait_blocked(&mut ctx.server.conn().await).await;
}

/// CPU seconds spent on `jobs` jobs, as µs per job.
fn per_job_us(cpu_s: f64, jobs: u64) -> f64 {
    cpu_s * 1e6 / jobs as f64
}

/// With `BENCH_COMMANDSTATS` set: prints Redis's per-command statistics of the run just ended
/// (calls and µs per command, scripts' inner commands included), then resets them.
async fn print_commandstats(conn: &mut redis::aio::MultiplexedConnection) {
    if std::env::var_os("BENCH_COMMANDSTATS").is_none() {
        return;
    }
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO commandstats");
    println!("{stats}");
    redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async::<()>(conn)
        .await
        .expect("CONFIG RESETSTAT");
}
