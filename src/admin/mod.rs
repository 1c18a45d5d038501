//! Operating the queues: the questions someone on call asks ("what is stuck, where, why?") and
//! the repairs that follow, for the `streamworker` commands and for your own programs alike.
//!
//! ```no_run
//! # async fn demo() -> Result<(), streamworker::Error> {
//! use streamworker::admin::Admin;
//!
//! let admin = Admin::connect("redis://127.0.0.1:6379").await?;
//! for status in admin.status_all().await? {
//!     println!("{}: {} ready, {} in flight, {} dead", status.group, status.ready, status.pending, status.dead);
//! }
//! for dead in admin.dead_list("emails", 10).await? {
//!     println!("{} {}: {}", dead.job_id, dead.task.as_deref().unwrap_or("?"), dead.reason);
//! }
//! admin.dead_retry_all("emails", Some("send_email")).await?;
//! # Ok(()) }
//! ```
//!
//! Reads are bounded (SCAN cursors, COUNT and LIMIT); every repair is one Lua script or one
//! command, so a job stays in exactly one place.
//!
//! - `status`: per group and priority, what waits, runs, is delayed or dead; consumers; rates.
//! - `pending`: the entries workers hold, with the ones a reaper takes next.
//! - `job`: where one job is now.
//! - `dead`: list, show, re-drive and purge dead jobs.
//! - `delayed`: list delayed jobs and run one now.
//! - `pause`: stop and restart fetching for a group.

mod dead;
mod delayed;
mod fields;
mod job;
mod pause;
mod pending;
mod status;

pub use dead::{DeadJob, Redriven};
pub use delayed::DelayedJob;
pub use job::{JobPlace, JobReport};
pub use pending::{PendingEntry, PendingQuery};
pub use status::{ConsumerStatus, GroupStatus, QueueStatus, Rates, Retention};

use crate::broker::{Broker, Pool};
use crate::error::{Error, Result};
use crate::keys::{GroupName, Keys};

/// Answers questions about the queues in one Redis and repairs them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Admin {
    broker: Broker,
}

impl Admin {
    /// Connects to the Redis at `url` and checks that it answers.
    pub async fn connect(url: &str) -> Result<Admin> {
        let admin = Admin {
            broker: Broker::connect(url)?,
        };
        admin.broker.ping().await?;
        Ok(admin)
    }

    /// Uses an existing connection pool, a `deadpool_redis::Pool`. Each call checks a
    /// connection out of it, which `deadpool_redis`'s manager does with a round trip of its own
    /// (PING); [`Admin::connect`] shares one multiplexed connection instead.
    pub fn from_pool(pool: Pool) -> Admin {
        Admin {
            broker: Broker::pooled(pool),
        }
    }

    /// Every group found in Redis (by its streams, delayed set, dead stream or pause flag),
    /// sorted by name. Follows a SCAN cursor over the keyspace; never uses KEYS.
    pub async fn groups(&self) -> Result<Vec<GroupName>> {
        self.broker.scan_groups().await
    }

    /// The keys of `group`, or [`Error::UnknownGroup`] when Redis has none of them.
    async fn existing(&self, group: &str) -> Result<Keys> {
        let name = GroupName::new(group)?;
        let keys = Keys::new(&name);
        if self.broker.group_exists(&keys).await? {
            return Ok(keys);
        }
        let known = self.groups().await?;
        let known = if known.is_empty() {
            "this Redis holds no streamworker group at all: is --redis (or REDIS_URL) the right server?".to_string()
        } else {
            let names: Vec<&str> = known.iter().map(GroupName::as_str).collect();
            format!(
                "no such group in this Redis; groups found: {}",
                names.join(", ")
            )
        };
        Err(Error::UnknownGroup {
            group: group.to_string(),
            known,
        })
    }
}
