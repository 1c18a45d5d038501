//! `streamworker job ID --group G`: where one job is now.

use super::escaped::Escaped;
use super::table::{print_json, short_ms};
use crate::admin::{Admin, JobPlace, JobReport};
use crate::error::Result;
use crate::time::utc;
use crate::worker::config::VISIBILITY_TIMEOUT;
use std::fmt::Write;

/// Flags of `streamworker job`.
#[derive(Debug, clap::Args)]
pub(super) struct JobArgs {
    /// The job id (or a stream entry id)
    id: String,

    /// The group
    #[arg(long)]
    group: String,

    /// A running job idle longer than this is flagged: its worker is probably gone
    #[arg(long, default_value_t = VISIBILITY_TIMEOUT.into())]
    visibility_timeout: humantime::Duration,
}

pub(super) async fn run(redis: &str, json: bool, args: JobArgs) -> Result<()> {
    let admin = Admin::connect(redis).await?;
    let report = admin.job(&args.group, &args.id).await?;
    if json {
        return print_json(&report);
    }
    print!(
        "{}",
        render(
            &Escaped::new(report),
            args.visibility_timeout.as_millis() as u64
        )
    );
    Ok(())
}

/// Where the job is and what is known of it, one field a line.
fn render(r: &Escaped<JobReport>, visibility_ms: u64) -> String {
    let place = match &r.place {
        JobPlace::Waiting {
            priority,
            entry_id,
            waiting_ms,
        } => format!(
            "waiting in the {priority} stream for {} (entry {entry_id})",
            short_ms(*waiting_ms)
        ),
        JobPlace::Running {
            priority,
            entry_id,
            consumer,
            idle_ms,
            deliveries,
        } => format!(
            "running on {consumer} (idle {}, delivered {deliveries} time{}; {priority} entry {entry_id}){}",
            short_ms(*idle_ms),
            if *deliveries == 1 { "" } else { "s" },
            if *idle_ms > visibility_ms {
                "\n              idle past the visibility timeout: its worker is probably gone; a reaper runs it again"
            } else {
                ""
            }
        ),
        JobPlace::Delayed { due_ms, priority } => format!(
            "delayed until {} ({} stream then)",
            utc(*due_ms),
            priority.map_or("its", |p| p.as_str())
        ),
        JobPlace::Dead {
            entry_id, dead_ms, ..
        } => format!(
            "dead since {} (dead entry {})",
            dead_ms.map_or("?".to_string(), utc),
            entry_id
                .as_deref()
                .unwrap_or("purged; only its status record is left")
        ),
        JobPlace::Succeeded { finished_ms } => format!(
            "succeeded{}",
            finished_ms.map_or(String::new(), |ms| format!(" at {}", utc(ms)))
        ),
    };
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut out = String::new();
    let _ = writeln!(out, "job {} in group {}", r.id, r.group);
    let _ = writeln!(out, "  state:      {place}");
    let _ = writeln!(out, "  task:       {}", dash(&r.task));
    let _ = writeln!(
        out,
        "  attempt:    {}",
        r.attempt.map_or("-".to_string(), |a| a.to_string())
    );
    let _ = writeln!(out, "  last error: {}", dash(&r.last_error));
    let _ = writeln!(
        out,
        "  args:       {}",
        super::dead::args_text(&r.args, r.args_truncated_from)
    );
    if r.headers.is_empty() {
        let _ = writeln!(out, "  headers:    -");
    }
    for (i, (name, value)) in r.headers.iter().enumerate() {
        let label = if i == 0 { "headers:" } else { "" };
        let _ = writeln!(out, "  {label:<11} {name}: {value}");
    }
    match &r.progress {
        Some(p) => {
            let _ = writeln!(
                out,
                "  progress:   {}% {} ({})",
                p.percent,
                p.message,
                crate::time::format_ms(Some(p.updated_ms))
            );
        }
        None => {
            let _ = writeln!(out, "  progress:   -");
        }
    }
    let _ = writeln!(out, "  result:     {}", dash(&r.result));
    let _ = writeln!(
        out,
        "  tracked:    {}",
        if r.tracked {
            "yes (status record kept)"
        } else {
            "no"
        }
    );
    out
}
