//! Your own worker binary: your tasks, registered in Rust, behind the full `streamworker`
//! command line (`--group`, `--concurrency`, `enqueue`, ... all work as in `streamworker`).
//!
//! ```sh
//! # serve the group (REDIS_URL or --redis picks the server; Ctrl-C stops it cleanly)
//! cargo run --example emails -- --group emails
//! # in another shell, enqueue jobs for it
//! cargo run --example emails -- enqueue --group emails --task send_email --args '{"to":"a@b.c","subject":"hi"}'
//! cargo run --example emails -- enqueue --group emails --task welcome --args '{"to":"a@b.c","name":"Ada"}'
//! ```

use serde::Deserialize;
use streamworker::{JobContext, TaskError};

#[derive(Debug, Deserialize)]
struct Email {
    to: String,
    subject: String,
}

/// Sends one email; the returned text is the job's result (kept when enqueued with
/// `--keep-result 1h`). Failures are retried with backoff, a bad address is not.
async fn send_email(email: Email, ctx: JobContext) -> Result<String, TaskError> {
    if !email.to.contains('@') {
        return Err(TaskError::fatal(format!(
            "not an email address: {:?}",
            email.to
        )));
    }
    println!(
        "sending {:?} to {} (job {}, attempt {})",
        email.subject,
        email.to,
        ctx.job_id(),
        ctx.attempt()
    );
    Ok(format!("sent to {} on attempt {}", email.to, ctx.attempt()))
}

#[derive(Debug, Deserialize)]
struct Welcome {
    to: String,
    name: String,
}

/// Greets a new user; no context needed, nothing to return.
async fn welcome(w: Welcome) -> Result<(), TaskError> {
    println!("welcoming {} <{}>", w.name, w.to);
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    streamworker::cli::run(|worker| {
        worker
            .task("send_email", send_email)
            .task("welcome", welcome)
    })
    .await
}
