//! `streamworker pause --group G` and `resume --group G`.

use super::table::print_json;
use crate::admin::Admin;
use crate::error::Result;

/// Flags of `streamworker pause` and `resume`.
#[derive(Debug, clap::Args)]
pub(super) struct PauseArgs {
    /// The group
    #[arg(long)]
    group: String,
}

pub(super) async fn run(redis: &str, json: bool, args: PauseArgs, pause: bool) -> Result<()> {
    let admin = Admin::connect(redis).await?;
    let group = &args.group;
    let changed = if pause {
        admin.pause(group).await?
    } else {
        admin.resume(group).await?
    };
    if json {
        return print_json(&serde_json::json!({
            "group": group,
            "paused": pause,
            "changed": changed,
        }));
    }
    match (pause, changed) {
        (true, true) => println!(
            "group {group} paused: workers stop fetching within a second (running jobs finish); enqueueing goes on"
        ),
        (true, false) => println!("group {group} was already paused"),
        (false, true) => println!("group {group} resumed: workers fetch again within a second"),
        (false, false) => println!("group {group} was not paused"),
    }
    Ok(())
}
