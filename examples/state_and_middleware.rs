//! State and middleware: per-process state reaching handlers typed through `State<T>`, the
//! per-job `JobContext` (id, attempt, deadline), and a middleware layer that times every job.
//!
//! ```sh
//! cargo run --example state_and_middleware   # uses REDIS_URL, default redis://127.0.0.1:6379
//! RUST_LOG=debug cargo run --example state_and_middleware
//! ```

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use streamworker::{Client, Job, JobContext, JobResult, Next, State, TaskError, Worker};
use tokio_util::sync::CancellationToken;

/// Per-process state: built once, handed to the worker with `.state(..)`, cloned into every
/// handler that asks for `State<App>`. Clones share the same counter and "database".
#[derive(Clone)]
struct App {
    shipped: Arc<AtomicU64>,
    db: FakeDb,
}

/// Stands in for a connection pool: cheap to clone, shared by every job.
#[derive(Clone, Default)]
struct FakeDb {
    orders: Arc<Mutex<HashMap<u64, String>>>,
}

impl FakeDb {
    fn customer_of(&self, order: u64) -> Option<String> {
        self.orders.lock().unwrap().get(&order).cloned()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct ShipOrder {
    order: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Shipped {
    order: u64,
    customer: String,
    shipped_so_far: u64,
}

/// A handler taking its arguments, the job's context and the worker's state.
async fn ship_order(
    args: ShipOrder,
    ctx: JobContext,
    State(app): State<App>,
) -> Result<Shipped, TaskError> {
    let time_left = ctx.deadline().saturating_duration_since(Instant::now());
    tracing::info!(
        order = args.order,
        attempt = ctx.attempt(),
        max_retries = ctx.max_retries(),
        time_left_s = time_left.as_secs(),
        "shipping"
    );
    let Some(customer) = app.db.customer_of(args.order) else {
        // Retrying cannot make the order appear: straight to the dead stream.
        return Err(TaskError::fatal(format!(
            "order {} does not exist",
            args.order
        )));
    };
    tokio::time::sleep(Duration::from_millis(30)).await; // the "slow work"
    let shipped_so_far = app.shipped.fetch_add(1, Ordering::Relaxed) + 1;
    Ok(Shipped {
        order: args.order,
        customer,
        shipped_so_far,
    })
}

/// A middleware layer: runs around every job, inside the worker's `job` span (which carries
/// group, task, job_id and attempt).
async fn timing(ctx: JobContext, next: Next) -> JobResult {
    let started = Instant::now();
    let result = next.run(ctx.clone()).await;
    tracing::info!(
        task = ctx.task(),
        ms = started.elapsed().as_millis() as u64,
        ok = result.is_ok(),
        "job timed"
    );
    result
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| streamworker::DEFAULT_REDIS_URL.into());
    let group = "example-orders";

    let app = App {
        shipped: Arc::new(AtomicU64::new(0)),
        db: FakeDb::default(),
    };
    app.db.orders.lock().unwrap().extend([
        (1, "ada".to_string()),
        (2, "grace".to_string()),
        (3, "linus".to_string()),
    ]);

    // Three orders that exist and one that does not (its job fails for good).
    let client = Client::connect(&url).await?;
    let jobs = [1, 2, 3, 99]
        .into_iter()
        .map(|order| {
            Job::new(group, "ship_order", &ShipOrder { order })
                .map(|job| job.keep_result(Duration::from_secs(600)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ids = client.enqueue_many(jobs).await?;

    let stop = CancellationToken::new();
    let worker = Worker::builder(&url)
        .group(group)
        .concurrency(2)
        .state(app.clone()) // before .task(..): handlers are typed by the state
        .layer(timing)
        .task("ship_order", ship_order)
        .build()?;
    let running = tokio::spawn(worker.run(stop.clone().cancelled_owned()));

    for id in &ids {
        let status = client
            .wait_for_result(group, id, Duration::from_secs(30))
            .await?;
        match status.result_json::<Shipped>() {
            Some(shipped) => println!("{id}: {} -> {:?}", status.state.as_str(), shipped?),
            None => println!(
                "{id}: {} -> {}",
                status.state.as_str(),
                status.last_error.as_deref().unwrap_or("")
            ),
        }
    }
    println!(
        "orders shipped by this process: {}",
        app.shipped.load(Ordering::Relaxed)
    );

    stop.cancel();
    running.await??;
    Ok(())
}
