//! `streamworker status [--group G]`: each group's queues, consumers and recent outcomes.

use super::escaped::Escaped;
use super::table::{Table, opt_ms, print_json, short_ms};
use crate::admin::{Admin, GroupStatus, Retention};
use crate::error::Result;
use std::fmt::Write;

/// Flags of `streamworker status`.
#[derive(Debug, clap::Args)]
pub(super) struct StatusArgs {
    /// Only this group (default: every group found in Redis)
    #[arg(long)]
    group: Option<String>,
}

pub(super) async fn run(redis: &str, json: bool, args: StatusArgs) -> Result<()> {
    let admin = Admin::connect(redis).await?;
    let all = match &args.group {
        Some(g) => vec![admin.status(g).await?],
        None => admin.status_all().await?,
    };
    if json {
        return print_json(&all);
    }
    if all.is_empty() {
        println!(
            "no groups in this Redis yet (a group appears once a job is enqueued or a worker starts)"
        );
    }
    let blocks: Vec<String> = all.into_iter().map(|s| render(&Escaped::new(s))).collect();
    print!("{}", blocks.join("\n"));
    Ok(())
}

/// The dead stream's bounds as text.
fn retention(r: Option<Retention>) -> String {
    let Some(r) = r else {
        return "retention not recorded yet: each worker applies its own when it adds a job".into();
    };
    let len = match r.max_len {
        0 => "no count bound".to_string(),
        n => format!("kept: newest {n}"),
    };
    let age = match r.max_age_ms {
        0 => "no age bound".to_string(),
        ms if ms % 86_400_000 == 0 => format!("at most {}d old", ms / 86_400_000),
        ms => format!("at most {} old", short_ms(ms)),
    };
    format!("{len}, {age}")
}

/// One group's status as text.
pub(crate) fn render(s: &Escaped<GroupStatus>) -> String {
    let mut out = String::new();
    let state = match (s.paused, s.paused_since_ms) {
        (true, Some(since)) => format!(
            "PAUSED for {} (streamworker resume --group {})",
            short_ms(s.now_ms.saturating_sub(since)),
            s.group
        ),
        (true, None) => format!("PAUSED (streamworker resume --group {})", s.group),
        (false, _) => "active".to_string(),
    };
    let _ = writeln!(out, "group {}: {state}", s.group);
    let mut queues = Table::new(&["PRIORITY", "READY", "IN FLIGHT", "OLDEST READY"]).indent(2);
    for q in &s.queues {
        queues.row(vec![
            q.priority.to_string(),
            q.ready.to_string(),
            q.pending.to_string(),
            opt_ms(q.oldest_ready_age_ms),
        ]);
    }
    queues.row(vec![
        "total".into(),
        s.ready.to_string(),
        s.pending.to_string(),
        opt_ms(s.oldest_ready_age_ms),
    ]);
    out.push_str(&queues.render());
    let next = match s.next_due_ms {
        Some(due) if due > s.now_ms => format!(" (next due in {})", short_ms(due - s.now_ms)),
        Some(_) => " (next due now)".to_string(),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "  delayed {}{next}, dead {} ({})",
        s.delayed,
        s.dead,
        retention(s.dead_retention)
    );
    if s.consumers.is_empty() {
        let _ = writeln!(out, "  no consumers: no worker has served this group yet");
    } else {
        let mut consumers = Table::new(&["CONSUMER", "IN FLIGHT", "IDLE"]).indent(2);
        for c in &s.consumers {
            consumers.row(vec![
                c.name.clone(),
                c.pending.to_string(),
                short_ms(c.idle_ms),
            ]);
        }
        out.push_str(&consumers.render());
    }
    let mut rates = Table::new(&[
        "LAST",
        "PROCESSED",
        "SUCCEEDED",
        "FAILED",
        "RETRIED",
        "DEAD",
    ])
    .indent(2);
    for (label, r) in [("minute", &s.last_minute), ("hour", &s.last_hour)] {
        rates.row(vec![
            label.to_string(),
            r.processed.to_string(),
            r.succeeded.to_string(),
            r.failed.to_string(),
            r.retried.to_string(),
            r.dead.to_string(),
        ]);
    }
    out.push_str(&rates.render());
    out
}
