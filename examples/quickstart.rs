//! Quickstart: enqueue real jobs into Redis and process them with a worker, in one program.
//!
//! ```sh
//! cargo run --example quickstart            # uses REDIS_URL, default redis://127.0.0.1:6379
//! ```

use serde::{Deserialize, Serialize};
use std::time::Duration;
use streamworker::{Client, Job, JobContext, Priority, TaskError, Worker};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Serialize, Deserialize)]
struct Resize {
    image: String,
    width: u32,
}

/// A task is a plain async fn over serde arguments; it can be called directly too.
async fn resize(args: Resize, ctx: JobContext) -> Result<String, TaskError> {
    tokio::time::sleep(Duration::from_millis(20)).await; // the "slow work"
    Ok(format!(
        "{} resized to {}px (attempt {})",
        args.image,
        args.width,
        ctx.attempt()
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| streamworker::DEFAULT_REDIS_URL.into());
    let group = "quickstart";

    // Producer side: what a web handler does. Ids exist before the jobs reach Redis.
    let client = Client::connect(&url).await?;
    let jobs: Vec<Job> = (1..=5)
        .map(|i| {
            Job::new(
                group,
                "resize",
                &Resize {
                    image: format!("photo-{i}.jpg"),
                    width: 100 * i,
                },
            )
            .map(|job| job.keep_result(Duration::from_secs(600)))
        })
        .collect::<Result<_, _>>()?;
    let urgent = Job::new(
        group,
        "resize",
        &Resize {
            image: "avatar.png".into(),
            width: 64,
        },
    )?
    .priority(Priority::High)
    .keep_result(Duration::from_secs(600));
    let mut ids = client.enqueue_many(jobs).await?; // one round trip
    ids.push(client.enqueue(urgent).await?);
    println!(
        "enqueued {} jobs into group {group:?} at {}",
        ids.len(),
        streamworker::redact_url(&url)
    );

    // Worker side: usually another process (`streamworker --group quickstart ...` or your
    // own binary); here it runs beside the producer until every job has finished.
    let stop = CancellationToken::new();
    let worker = Worker::builder(&url)
        .group(group)
        .concurrency(4)
        .task("resize", resize)
        .build()?;
    let running = tokio::spawn(worker.run(stop.clone().cancelled_owned()));

    for id in &ids {
        let status = client
            .wait_for_result(group, id, Duration::from_secs(30))
            .await?;
        let result: String = status.result_json().expect("kept")?;
        println!("{id}: {} -> {result}", status.state.as_str());
    }
    stop.cancel();
    running.await??;
    Ok(())
}
