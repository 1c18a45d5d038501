//! `pause` and `resume`: stop and restart fetching for a group. Enqueueing goes on; workers
//! notice within one fetch interval (1 s) and keep running the jobs they already hold.

use super::Admin;
use crate::error::Result;

impl Admin {
    /// Pauses `group`: workers stop fetching its jobs. Returns false when it was paused
    /// already.
    pub async fn pause(&self, group: &str) -> Result<bool> {
        let keys = self.existing(group).await?;
        self.broker.pause(&keys).await
    }

    /// Resumes `group`. Returns false when it was not paused.
    pub async fn resume(&self, group: &str) -> Result<bool> {
        let keys = self.existing(group).await?;
        self.broker.resume(&keys).await
    }
}
