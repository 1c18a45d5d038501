//! `streamworker batch ID --group G`: a batch's (or chain's) counts, state, failed children
//! and callbacks.

use super::escaped::Escaped;
use super::table::print_json;
use crate::batch::BatchStatus;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::time::utc;
use std::fmt::Write;

/// Flags of `streamworker batch`.
#[derive(Debug, clap::Args)]
pub(super) struct BatchArgs {
    /// The batch (or chain) id
    id: String,

    /// The group
    #[arg(long)]
    group: String,
}

pub(super) async fn run(redis: &str, json: bool, args: BatchArgs) -> Result<()> {
    let client = Client::connect(redis).await?;
    let Some(status) = client.batch_status(&args.group, &args.id).await? else {
        return Err(Error::InvalidBatch(format!(
            "no batch {} in group {}: it was never created there, or it completed and expired (see Batch::keep_for)",
            args.id, args.group
        )));
    };
    if json {
        return print_json(&status);
    }
    print!("{}", render(&Escaped::new(status)));
    Ok(())
}

/// The batch, one field a line.
fn render(s: &Escaped<BatchStatus>) -> String {
    let mut out = String::new();
    let kind = if s.steps.is_some() { "chain" } else { "batch" };
    let _ = writeln!(out, "{kind:<10}{}", s.id);
    let state = match &s.outcome {
        Some(outcome) => format!("{} ({outcome})", s.state),
        None => s.state.clone(),
    };
    let _ = writeln!(out, "state     {state}");
    let ignored = if s.ignored > 0 {
        format!(" ({} ignored)", s.ignored)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "children  total {}, succeeded {}, failed {}{ignored}, pending {}",
        s.total, s.succeeded, s.failed, s.pending
    );
    if let Some(steps) = s.steps {
        let _ = writeln!(out, "steps     {steps}");
    }
    let _ = writeln!(out, "policy    {}", s.policy);
    if let Some(ms) = s.created_ms {
        let _ = writeln!(out, "created   {}", utc(ms));
    }
    if let Some(ms) = s.finished_ms {
        let _ = writeln!(out, "finished  {}", utc(ms));
    }
    let list = |ids: &[String]| {
        if ids.is_empty() {
            "none".to_string()
        } else {
            ids.join(", ")
        }
    };
    if !s.pending_ids.is_empty() {
        let some = if (s.pending_ids.len() as u64) < s.pending {
            format!(" (some of {})", s.pending)
        } else {
            String::new()
        };
        let _ = writeln!(out, "pending   {}{some}", list(&s.pending_ids));
    }
    let _ = writeln!(out, "failed    {}", list(&s.failed_ids));
    if s.steps.is_some() {
        let _ = writeln!(out, "not run   {}", list(&s.not_run));
    }
    if s.callbacks.is_empty() {
        let _ = writeln!(out, "callbacks none");
    }
    for (i, c) in s.callbacks.iter().enumerate() {
        let label = if i == 0 { "callbacks " } else { "          " };
        let fired = match &c.fired_entry {
            Some(entry) => format!("fired (entry {entry})"),
            None => "not fired".to_string(),
        };
        let _ = writeln!(out, "{label}{}: {fired}", c.name);
    }
    out
}
