//! `streamworker enqueue`: enqueue one job from the shell and print its id.

use super::safe::Shown;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::job::Job;
use crate::priority::Priority;
use std::time::{Duration, SystemTime};

/// Flags of `streamworker enqueue`.
#[derive(Debug, clap::Args)]
pub(super) struct EnqueueArgs {
    /// Group to enqueue into
    #[arg(long)]
    group: String,

    /// Task name
    #[arg(long)]
    task: String,

    /// Arguments as JSON
    #[arg(long, default_value = "{}")]
    args: String,

    /// high, default or low
    #[arg(long, default_value = "default")]
    priority: Priority,

    /// Run no earlier than this from now (e.g. 30s, 5m, 1h30m)
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "at")]
    delay: Option<Duration>,

    /// Run no earlier than this time (RFC 3339, e.g. 2026-11-21T18:00:00Z)
    #[arg(long, value_parser = parse_rfc3339)]
    at: Option<SystemTime>,

    /// Retries after a failed attempt
    #[arg(long)]
    max_retries: Option<u32>,

    /// How long one attempt may run (e.g. 5m)
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,

    /// Keep the status and result this long after the job finishes (e.g. 1h)
    #[arg(long, value_parser = humantime::parse_duration)]
    keep_result: Option<Duration>,

    /// Unique for at most this long (e.g. 1h): while a job with the same task and args (or
    /// --unique-key) is waiting or running, print its id and enqueue nothing
    #[arg(long, value_parser = humantime::parse_duration)]
    unique_for: Option<Duration>,

    /// Uniqueness key to use instead of task + args (needs --unique-for)
    #[arg(long, requires = "unique_for")]
    unique_key: Option<String>,

    /// A header for the job, NAME=VALUE (repeatable), read by the handler
    /// (`JobContext::header`, `STREAMWORKER_HEADER_<NAME>` for --exec)
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
}

fn parse_header(s: &str) -> std::result::Result<(String, String), String> {
    s.split_once('=')
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .ok_or_else(|| {
            format!("{s:?} has no '=': write NAME=VALUE, e.g. origin=https://example.com")
        })
}

fn parse_rfc3339(s: &str) -> std::result::Result<SystemTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(SystemTime::from)
        .map_err(|e| format!("{e} (expected RFC 3339, e.g. 2026-11-21T18:00:00Z)"))
}

pub(super) async fn run(redis: &str, args: EnqueueArgs) -> Result<()> {
    let mut job = Job::from_json(&args.group, &args.task, &args.args)?
        .priority(args.priority)
        .headers(args.headers);
    if let Some(d) = args.delay {
        job = job.delay(d);
    }
    if let Some(at) = args.at {
        job = job.at(at);
    }
    if let Some(n) = args.max_retries {
        job = job.max_retries(n);
    }
    if let Some(t) = args.timeout {
        if t.is_zero() {
            return Err(Error::Config("--timeout must be more than 0".into()));
        }
        job = job.timeout(t);
    }
    if let Some(k) = args.keep_result {
        job = job.keep_result(k);
    }
    if let Some(key) = args.unique_key {
        job = job.unique_key(key);
    }
    if let Some(ttl) = args.unique_for {
        if ttl.is_zero() {
            return Err(Error::Config("--unique-for must be more than 0".into()));
        }
        job = job.unique_for(ttl);
    }
    let client = Client::connect(redis).await?;
    let own_id = job.id().clone();
    let id = client.enqueue(job).await?;
    let shown = Shown::from(id.as_str());
    if id != own_id {
        eprintln!(
            "job {shown} with the same uniqueness key is waiting or running: nothing enqueued"
        );
    }
    println!("{shown}");
    Ok(())
}
