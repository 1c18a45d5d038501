//! `streamworker delayed --group G list|run-now ID`: the jobs waiting for a time.

use super::escaped::Escaped;
use super::safe::Shown;
use super::table::{Table, clip, print_json, short_ms};
use crate::admin::Admin;
use crate::error::Result;

/// Flags of `streamworker delayed`.
#[derive(Debug, clap::Args)]
pub(super) struct DelayedArgs {
    /// The group
    #[arg(long, global = true)]
    group: Option<String>,

    #[command(subcommand)]
    action: DelayedAction,
}

#[derive(Debug, clap::Subcommand)]
enum DelayedAction {
    /// The delayed jobs, earliest due first
    List {
        /// Most jobs shown
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Move one delayed job into its priority stream now
    RunNow {
        /// The job id
        id: String,
    },
}

pub(super) async fn run(redis: &str, json: bool, args: DelayedArgs) -> Result<()> {
    let Some(group) = args.group else {
        return Err(crate::Error::Config(
            "delayed needs --group GROUP (streamworker status lists the groups)".into(),
        ));
    };
    let admin = Admin::connect(redis).await?;
    match args.action {
        DelayedAction::List { limit } => {
            let jobs = admin.delayed_list(&group, limit).await?;
            if json {
                return print_json(&jobs);
            }
            let jobs = Escaped::new(jobs);
            if jobs.is_empty() {
                println!("no delayed jobs in group {}", Shown::from(&group));
                return Ok(());
            }
            let mut table = Table::new(&[
                "DUE IN",
                "JOB ID",
                "TASK",
                "PRIORITY",
                "ATTEMPT",
                "LAST ERROR",
            ]);
            for j in jobs.iter() {
                table.row(vec![
                    if j.due_in_ms > 0 {
                        short_ms(j.due_in_ms as u64)
                    } else {
                        "now".into()
                    },
                    j.job_id.clone(),
                    j.task.clone().unwrap_or_else(|| "-".into()),
                    j.priority.map_or("-".to_string(), |p| p.to_string()),
                    j.attempt.to_string(),
                    j.last_error
                        .as_deref()
                        .map_or("-".to_string(), |e| clip(e, 60)),
                ]);
            }
            print!("{}", table.render());
        }
        DelayedAction::RunNow { id } => {
            let entry_id = admin.delayed_run_now(&group, &id).await?;
            if json {
                return print_json(&serde_json::json!({ "job_id": id, "entry_id": entry_id }));
            }
            println!(
                "job {} moved to its priority stream as entry {}: it runs next",
                Shown::from(&id),
                Shown::from(&entry_id)
            );
        }
    }
    Ok(())
}
