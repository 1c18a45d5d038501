//! `streamworker dead --group G list|show|retry|purge`: the jobs that will not be tried again.

use super::escaped::Escaped;
use super::safe::Shown;
use super::table::{Table, clip, opt_ms, print_json};
use crate::admin::{Admin, DeadJob, Redriven};
use crate::error::Result;
use crate::time::{now_ms, utc};
use std::fmt::Write;
use std::time::Duration;

/// Flags of `streamworker dead`.
#[derive(Debug, clap::Args)]
pub(super) struct DeadArgs {
    /// The group
    #[arg(long, global = true)]
    group: Option<String>,

    #[command(subcommand)]
    action: DeadAction,
}

#[derive(Debug, clap::Subcommand)]
enum DeadAction {
    /// The newest dead jobs, newest first
    List {
        /// Most jobs shown
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One dead job with all its fields
    Show {
        /// Job id or dead entry id
        id: String,
    },
    /// Send dead jobs back to their priority stream as a fresh first attempt
    Retry {
        /// Job ids or dead entry ids
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<String>,
        /// Every dead job (as of now)
        #[arg(long)]
        all: bool,
        /// With --all: only jobs of this task
        #[arg(long, requires = "all")]
        task: Option<String>,
    },
    /// Delete dead jobs that died more than --older-than ago (0s: all of them)
    Purge {
        /// Age of the dead jobs deleted (e.g. 7d, 12h, 0s)
        #[arg(long, value_parser = humantime::parse_duration, default_value = "7d")]
        older_than: Duration,
    },
}

pub(super) async fn run(redis: &str, json: bool, args: DeadArgs) -> Result<()> {
    let Some(group) = args.group else {
        return Err(crate::Error::Config(
            "dead needs --group GROUP (streamworker status lists the groups)".into(),
        ));
    };
    let admin = Admin::connect(redis).await?;
    match args.action {
        DeadAction::List { limit } => {
            let jobs = admin.dead_list(&group, limit).await?;
            if json {
                return print_json(&jobs);
            }
            print!("{}", render_list(&group, &Escaped::new(jobs)));
        }
        DeadAction::Show { id } => {
            let job = admin.dead_show(&group, &id).await?;
            if json {
                return print_json(&job);
            }
            print!("{}", render_one(&Escaped::new(job)));
        }
        DeadAction::Retry { ids, all, task } => {
            let moved = if all {
                admin.dead_retry_all(&group, task.as_deref()).await?
            } else {
                admin.dead_retry(&group, &ids).await?
            };
            if json {
                return print_json(&moved);
            }
            print!("{}", render_retried(&group, &Escaped::new(moved)));
        }
        DeadAction::Purge { older_than } => {
            let purged = admin.dead_purge(&group, older_than).await?;
            if json {
                return print_json(&serde_json::json!({ "group": group, "purged": purged }));
            }
            println!(
                "purged {purged} dead job{} older than {} from group {}",
                if purged == 1 { "" } else { "s" },
                humantime::format_duration(older_than),
                Shown::from(&group)
            );
        }
    }
    Ok(())
}

/// The `dead list` table.
fn render_list(group: &str, jobs: &Escaped<Vec<DeadJob>>) -> String {
    let group = Shown::from(group);
    if jobs.is_empty() {
        return format!("no dead jobs in group {group}\n");
    }
    let now = now_ms();
    let mut table = Table::new(&["DIED", "JOB ID", "TASK", "PRIORITY", "ATTEMPT", "REASON"]);
    for j in jobs.iter() {
        table.row(vec![
            format!("{} ago", opt_ms(j.dead_ms.map(|ms| now.saturating_sub(ms)))),
            j.job_id.clone(),
            j.task.clone().unwrap_or_else(|| "-".into()),
            j.priority.map_or("-".to_string(), |p| p.to_string()),
            j.attempt.to_string(),
            clip(&j.reason, 70),
        ]);
    }
    let mut out = table.render();
    let _ = writeln!(
        out,
        "{} shown, newest first; `dead --group {group} retry ID...` or `retry --all` re-drives them",
        jobs.len()
    );
    out
}

/// `dead show`: every field of one dead job.
fn render_one(j: &Escaped<DeadJob>) -> String {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut out = String::new();
    let _ = writeln!(out, "dead job {}", j.job_id);
    let _ = writeln!(out, "  entry:    {}", j.entry_id);
    let _ = writeln!(out, "  died:     {}", j.dead_ms.map_or("-".into(), utc));
    let _ = writeln!(out, "  task:     {}", dash(&j.task));
    let _ = writeln!(
        out,
        "  priority: {}",
        j.priority.map_or("-".to_string(), |p| p.to_string())
    );
    let _ = writeln!(out, "  attempt:  {}", j.attempt);
    let _ = writeln!(out, "  reason:   {}", j.reason);
    let _ = writeln!(
        out,
        "  args:     {}",
        args_text(&j.args, j.args_truncated_from)
    );
    for (k, v) in &j.fields {
        let _ = writeln!(out, "  {k}: {v}");
    }
    out
}

/// A job's args for display, with a note when the dead stream cut them.
pub(super) fn args_text(args: &Option<String>, truncated_from: Option<u64>) -> String {
    let args = args.as_deref().unwrap_or("-");
    match truncated_from {
        Some(size) => format!(
            "{args}… (truncated: the first bytes of {size} bytes were kept; cannot be retried)"
        ),
        None => args.to_string(),
    }
}

/// What `dead retry` moved.
fn render_retried(group: &str, moved: &Escaped<Vec<Redriven>>) -> String {
    let group = Shown::from(group);
    let mut out = String::new();
    for r in moved.iter() {
        let _ = writeln!(
            out,
            "re-driven {} ({}) as entry {}",
            r.job_id,
            r.task.as_deref().unwrap_or("-"),
            r.entry_id
        );
    }
    let _ = writeln!(
        out,
        "{} dead job{} of group {group} sent back to {} stream as attempt 1",
        moved.len(),
        if moved.len() == 1 { "" } else { "s" },
        if moved.len() == 1 { "its" } else { "their" }
    );
    out
}
