//! `streamworker pending --group G`: the entries workers hold, and which a reaper takes next.

use super::escaped::Escaped;
use super::safe::Shown;
use super::table::{Table, print_json, short_ms};
use crate::admin::{Admin, PendingQuery};
use crate::error::Result;
use crate::worker::config::VISIBILITY_TIMEOUT;
use std::time::Duration;

/// Flags of `streamworker pending`.
#[derive(Debug, clap::Args)]
pub(super) struct PendingArgs {
    /// The group
    #[arg(long)]
    group: String,

    /// Only entries held by this consumer
    #[arg(long)]
    consumer: Option<String>,

    /// Only entries idle at least this long (e.g. 1m)
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    min_idle: Duration,

    /// Most entries shown
    #[arg(long, default_value_t = 100)]
    limit: usize,

    /// Entries idle longer than this are marked as the ones a reaper takes next
    #[arg(long, default_value_t = VISIBILITY_TIMEOUT.into())]
    visibility_timeout: humantime::Duration,
}

pub(super) async fn run(redis: &str, json: bool, args: PendingArgs) -> Result<()> {
    let admin = Admin::connect(redis).await?;
    let query = PendingQuery {
        consumer: args.consumer,
        min_idle: args.min_idle,
        limit: args.limit,
        visibility_timeout: *args.visibility_timeout,
    };
    let entries = admin.pending(&args.group, &query).await?;
    if json {
        return print_json(&entries);
    }
    let entries = Escaped::new(entries);
    if entries.is_empty() {
        println!(
            "nothing in flight in group {} matches",
            Shown::from(&args.group)
        );
        return Ok(());
    }
    let mut table = Table::new(&[
        "PRIORITY",
        "ENTRY",
        "JOB ID",
        "TASK",
        "ATTEMPT",
        "CONSUMER",
        "IDLE",
        "DELIVERIES",
        "",
    ]);
    for e in entries.iter() {
        let note = if e.payload_missing {
            "payload deleted"
        } else if e.next_to_reap {
            "next to reap"
        } else {
            ""
        };
        table.row(vec![
            e.priority.to_string(),
            e.entry_id.clone(),
            e.job_id.clone(),
            e.task.clone().unwrap_or_else(|| "-".into()),
            e.attempt.to_string(),
            e.consumer.clone(),
            short_ms(e.idle_ms),
            e.deliveries.to_string(),
            note.to_string(),
        ]);
    }
    print!("{}", table.render());
    let stuck = entries.iter().filter(|e| e.next_to_reap).count();
    println!(
        "{} in flight shown; {stuck} idle over the visibility timeout ({}): their worker is presumed gone and a reaper takes them next",
        entries.len(),
        humantime::format_duration(query.visibility_timeout)
    );
    Ok(())
}
