//! `streamworker cancel ID --group G`: cancel a waiting, scheduled or running job.

use super::safe::Shown;
use crate::client::{CancelOutcome, Client};
use crate::error::{Error, Result};
use crate::job::JobId;

/// Flags of `streamworker cancel`.
#[derive(Debug, clap::Args)]
pub(super) struct CancelArgs {
    /// The job id (as `enqueue` printed it)
    id: String,

    /// Group the job is in
    #[arg(long)]
    group: String,
}

pub(super) async fn run(redis: &str, args: CancelArgs) -> Result<()> {
    let id = JobId::parse(&args.id)?;
    let client = Client::connect(redis).await?;
    let refuse = |reason: String| {
        Err(Error::CannotCancel {
            id: id.to_string(),
            reason,
        })
    };
    match client.cancel(&args.group, &id).await? {
        CancelOutcome::Removed { was_scheduled } => {
            let was = if was_scheduled {
                "scheduled"
            } else {
                "waiting"
            };
            println!("cancelled job {id} (it was {was}): it will not run");
            Ok(())
        }
        CancelOutcome::Requested {
            consumer,
            listeners,
        } if listeners > 0 => {
            println!(
                "job {id} is running on {}: asked it to stop; its status becomes cancelled",
                Shown::from(consumer)
            );
            Ok(())
        }
        CancelOutcome::Requested { consumer, .. } => refuse(format!(
            "it is running on {consumer}, but no worker of group {} listens for cancel requests (disconnected?); it runs on to its end",
            args.group
        )),
        CancelOutcome::AlreadyFinished(state) => refuse(format!(
            "it already ended ({}); nothing to cancel",
            state.as_str()
        )),
        CancelOutcome::NotFound => refuse(format!(
            "no such job in group {}: it is not waiting, scheduled or running (check the id and --group; a finished job is only known when it kept its result)",
            args.group
        )),
    }
}
