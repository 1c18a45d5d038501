//! Quickstart: enqueue real jobs into Redis and process them with a worker, in one program.
//!
//! ```sh
//! cargo run --example quickstart            # uses REDIS_URL, default redis://127.0.0.1:6379
//! ```
//!
//! When `REDIS_URL` is unset and nothing answers on the default URL, it starts a private
//! `redis-server` (if one is installed) on a free port in a temporary directory, and stops it
//! at the end.

use serde::{Deserialize, Serialize};
use std::process::{Child, Command, Stdio};
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

/// A `redis-server` of the quickstart's own, removed (process and directory) when dropped.
struct PrivateRedis {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `redis-server` on a free port in a temporary directory, keeping nothing on disk,
/// and returns it with its URL once it answers.
async fn private_redis() -> Result<(PrivateRedis, String, Client), Box<dyn std::error::Error>> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = tempfile::tempdir()?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .args(["--appendonly", "no", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!("no Redis answers and redis-server cannot be started ({e}): install it (apt-get install redis-server) or set REDIS_URL")
        })?;
    let server = PrivateRedis { child, _dir: dir };
    let url = format!("redis://127.0.0.1:{port}");
    for _ in 0..250 {
        if let Ok(client) = Client::connect(&url).await {
            return Ok((server, url, client));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err("the private redis-server did not answer within 5 s".into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let from_env = std::env::var("REDIS_URL").ok();
    let group = "quickstart";

    // Producer side: what a web handler does. Ids exist before the jobs reach Redis.
    let default_url = streamworker::DEFAULT_REDIS_URL.to_string();
    let (private, url, client) = match Client::connect(from_env.as_ref().unwrap_or(&default_url))
        .await
    {
        Ok(client) => (None, from_env.unwrap_or(default_url), client),
        Err(e) if from_env.is_some() => return Err(e.into()),
        Err(_) => {
            let (server, url, client) = private_redis().await?;
            println!(
                "no Redis at {default_url}: started a private redis-server at {url} for this run"
            );
            (Some(server), url, client)
        }
    };
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
    match private {
        Some(server) => {
            drop(server);
            println!("stopped the private redis-server; nothing was left behind");
        }
        None => {
            let target = if std::env::var_os("REDIS_URL").is_some() {
                " -u \"$REDIS_URL\""
            } else {
                ""
            };
            println!(
                "the jobs' keys stay in that Redis (status records expire in 10 min); remove them with:\n  redis-cli{target} --scan --pattern 'streamworker:{{{group}}}:*' | xargs -r redis-cli{target} del"
            );
        }
    }
    Ok(())
}
