//! Atomic enqueue: job ids are known before submission (an HTTP handler can answer
//! `202 Accepted` with a status URL), and a batch across two groups is stored all-or-none.
//!
//! ```sh
//! cargo run --example atomic_enqueue   # uses REDIS_URL, default redis://127.0.0.1:6379
//! ```
//!
//! No worker runs here: the jobs stay in Redis, queued and scheduled.

use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use streamworker::{Client, DEFAULT_MAX_PAYLOAD_BYTES, Error, Job, JobState};

const EMAILS: &str = "example-emails";
const REPORTS: &str = "example-reports";

#[derive(Serialize)]
struct Welcome {
    to: String,
}

#[derive(Serialize)]
struct Report {
    user: String,
    period: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| streamworker::DEFAULT_REDIS_URL.into());
    let client = Client::connect(&url).await?;
    let keep = Duration::from_secs(3600);

    // A sign-up: a welcome mail now, and a first report in an hour. Both or neither.
    let welcome = Job::new(
        EMAILS,
        "send_welcome",
        &Welcome {
            to: "ada@example.com".into(),
        },
    )?
    .keep_result(keep);
    let report = Job::new(
        REPORTS,
        "build_report",
        &Report {
            user: "ada".into(),
            period: "first-hour".into(),
        },
    )?
    .delay(Duration::from_secs(3600))
    .keep_result(keep);

    // The ids exist before anything reaches Redis.
    let (welcome_id, report_id) = (welcome.id().clone(), report.id().clone());
    println!("202 Accepted, Location: /jobs/{EMAILS}/{welcome_id}");
    println!("202 Accepted, Location: /jobs/{REPORTS}/{report_id}");

    let ids = client.enqueue_atomic([welcome, report]).await?;
    assert_eq!(ids, [welcome_id.clone(), report_id.clone()]);

    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    for (group, id) in [(EMAILS, &welcome_id), (REPORTS, &report_id)] {
        let status = client
            .status(group, id)
            .await?
            .expect("enqueued with keep_result");
        match status.state {
            JobState::Scheduled { due_ms } => println!(
                "{group}/{id}: scheduled, due in {} s",
                due_ms.saturating_sub(now_ms).div_ceil(1000)
            ),
            state => println!("{group}/{id}: {}", state.as_str()),
        }
    }

    // None: one job of this batch is over the payload limit, so the client refuses the whole
    // batch before sending anything, and the valid job is not stored either.
    let fine = Job::new(
        EMAILS,
        "send_welcome",
        &Welcome {
            to: "grace@example.com".into(),
        },
    )?
    .keep_result(keep);
    let fine_id = fine.id().clone();
    let too_big = Job::new(
        REPORTS,
        "build_report",
        &Report {
            user: "grace".into(),
            period: "x".repeat(DEFAULT_MAX_PAYLOAD_BYTES),
        },
    )?;
    match client.enqueue_atomic([fine, too_big]).await {
        Err(e @ Error::PayloadTooLarge { .. }) => println!("batch refused: {e}"),
        other => return Err(format!("expected the batch to be refused, got {other:?}").into()),
    }
    let stored = client.status(EMAILS, &fine_id).await?;
    println!(
        "{EMAILS}/{fine_id}: {}",
        if stored.is_none() {
            "not stored"
        } else {
            "stored (unexpected)"
        }
    );
    Ok(())
}
