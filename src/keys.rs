//! Redis key names: the only code that formats a key, all of a group under one hash tag.
//!
//! Every key of group `G` starts with `streamworker:{G}:`, so all of them hash to one Redis
//! Cluster slot and every script touching them is single-slot.

use crate::error::{Error, Result};
use crate::priority::Priority;
use std::fmt;

/// The longest group, task or job-id name accepted.
pub const MAX_NAME_LEN: usize = 64;

/// Checks `name` against the allowlist: 1 to [`MAX_NAME_LEN`] letters, digits, `-`, `_`, `.`.
pub(crate) fn validate_name(kind: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            kind,
            name: name.to_string(),
            max: MAX_NAME_LEN,
        })
    }
}

/// A validated group name: safe to place inside a Redis key.
///
/// ```
/// use streamworker::GroupName;
/// assert!(GroupName::new("emails").is_ok());
/// assert!(GroupName::new("a}{b").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupName(std::sync::Arc<str>);

impl GroupName {
    /// Validates `name`; see [`MAX_NAME_LEN`] for the rule.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        validate_name("group", &name)?;
        Ok(GroupName(name.into()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for GroupName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        GroupName::new(s)
    }
}

/// Every Redis key (and the pub/sub channel) of one group. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub(crate) struct Keys(std::sync::Arc<KeysOf>);

#[derive(Debug)]
struct KeysOf {
    group: GroupName,
    prefix: String,
    streams: [String; 3],
}

impl Keys {
    /// The keys of `group`.
    pub(crate) fn new(group: &GroupName) -> Keys {
        let prefix = format!("streamworker:{{{}}}:", group.as_str());
        let streams = Priority::ALL.map(|p| format!("{prefix}{}", p.as_str()));
        Keys(std::sync::Arc::new(KeysOf {
            group: group.clone(),
            prefix,
            streams,
        }))
    }

    /// The group these keys belong to.
    pub(crate) fn group(&self) -> &GroupName {
        &self.0.group
    }

    /// The stream of ready jobs of `priority`.
    pub(crate) fn stream(&self, priority: Priority) -> &str {
        &self.0.streams[priority.index() - 1]
    }

    /// The three priority streams, high first: KEYS[1..3] of every script.
    pub(crate) fn streams(&self) -> &[String; 3] {
        &self.0.streams
    }

    /// Sorted set of jobs waiting for a time; member = job id, score = due time in ms.
    pub(crate) fn delayed(&self) -> String {
        format!("{}delayed", self.0.prefix)
    }

    /// Hash of the delayed jobs' payloads, by job id.
    pub(crate) fn delayed_jobs(&self) -> String {
        format!("{}delayed:jobs", self.0.prefix)
    }

    /// Stream of jobs that will not be tried again, with their reason.
    pub(crate) fn dead(&self) -> String {
        format!("{}dead", self.0.prefix)
    }

    /// Hash of the dead stream's retention in force (`max_len`, `max_age_ms`; 0 = no bound),
    /// written by `lua/finish_dead.lua` each time it adds to the dead stream, read by `status`.
    pub(crate) fn dead_retention(&self) -> String {
        format!("{}dead:retention", self.0.prefix)
    }

    /// Status hash of one tracked job. `id` must have passed [`validate_name`].
    pub(crate) fn job(&self, id: &str) -> String {
        format!("{}job:{id}", self.0.prefix)
    }

    /// Pub/sub channel on which enqueues announce an earlier due time to promoters.
    pub(crate) fn wake_channel(&self) -> String {
        format!("{}wake", self.0.prefix)
    }

    /// String whose presence pauses the group: workers stop fetching while it exists. Its
    /// value is the Redis time in ms when the pause began.
    pub(crate) fn paused(&self) -> String {
        format!("{}paused", self.0.prefix)
    }

    /// Hash of outcome counters written by the finishing scripts, one field per kind and 10 s
    /// slot: `<kind>:<slot>` (kind `ok`, `retry` or `dead`; slot = Redis time in ms / 10000).
    pub(crate) fn stats(&self) -> String {
        format!("{}stats", self.0.prefix)
    }

    /// Uniqueness lock of unique jobs: holds the id of the job that took it, with a TTL.
    /// `key` must have passed [`validate_name`].
    pub(crate) fn unique(&self, key: &str) -> String {
        format!("{}unique:{key}", self.0.prefix)
    }

    /// Mark of a job enqueued once ([`Job::enqueue_once`](crate::Job::enqueue_once)): set by
    /// the enqueue script when the job id is first seen, with a TTL; a later enqueue of the same
    /// id within it stores nothing. `job_id` is a [`JobId`](crate::JobId)'s text.
    pub(crate) fn once(&self, job_id: &str) -> String {
        format!("{}once:{job_id}", self.0.prefix)
    }

    /// Hash of a running job's last reported progress (`percent`, `message`, `updated_ms`),
    /// written by `JobContext::progress`; expires a day after the last report.
    pub(crate) fn progress(&self, job_id: &str) -> String {
        format!("{}progress:{job_id}", self.0.prefix)
    }

    /// Hash of the periodic schedules that enqueue into this group: name → definition (JSON),
    /// written by the schedulers so that `streamworker schedules` can list them.
    pub(crate) fn schedules(&self) -> String {
        format!("{}schedules", self.0.prefix)
    }

    /// State hash of one schedule: the last tick taken, the last tick enqueued and its job.
    /// `name` must have passed [`validate_name`].
    pub(crate) fn schedule(&self, name: &str) -> String {
        format!("{}schedule:{name}", self.0.prefix)
    }

    /// Hash of one batch (README "Chains and batches"): its state, counts, policy, TTL and the
    /// callbacks it holds until it completes. `id` must have passed [`validate_name`].
    pub(crate) fn batch(&self, id: &str) -> String {
        format!("{}batch:{id}", self.0.prefix)
    }

    /// Set of the ids of a batch's children that have not finished yet: a child is counted
    /// when the script finishing it removes its id, so it counts once.
    pub(crate) fn batch_pending(&self, id: &str) -> String {
        format!("{}batch:{id}:pending", self.0.prefix)
    }

    /// Set of the ids of a batch's children that went dead or were cancelled.
    pub(crate) fn batch_failed(&self, id: &str) -> String {
        format!("{}batch:{id}:failed", self.0.prefix)
    }

    /// Pub/sub channel on which `cancel` asks the worker running a job to stop it.
    pub(crate) fn cancel_channel(&self) -> String {
        format!("{}cancel", self.0.prefix)
    }
}

/// SCAN pattern matching the keys that show a group exists (streams, delayed set, dead
/// stream, pause flag), and not the per-job status hashes, which may be many.
pub(crate) const GROUP_SCAN_PATTERN: &str = "streamworker:{*}:[^j]*";

/// The group of `key` when it is one of the keys that show a group exists: a priority stream,
/// the delayed set, the dead stream or the pause flag.
pub(crate) fn group_of_key(key: &str) -> Option<GroupName> {
    let rest = key.strip_prefix("streamworker:{")?;
    let (group, suffix) = rest.split_once("}:")?;
    let marks = ["high", "default", "low", "delayed", "dead", "paused"];
    if marks.contains(&suffix) {
        GroupName::new(group).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_carries_the_group_hash_tag() {
        let keys = Keys::new(&GroupName::new("emails").unwrap());
        assert_eq!(keys.stream(Priority::High), "streamworker:{emails}:high");
        assert_eq!(
            keys.stream(Priority::Default),
            "streamworker:{emails}:default"
        );
        assert_eq!(keys.stream(Priority::Low), "streamworker:{emails}:low");
        assert_eq!(keys.delayed(), "streamworker:{emails}:delayed");
        assert_eq!(keys.delayed_jobs(), "streamworker:{emails}:delayed:jobs");
        assert_eq!(keys.dead(), "streamworker:{emails}:dead");
        assert_eq!(
            keys.dead_retention(),
            "streamworker:{emails}:dead:retention"
        );
        assert_eq!(keys.job("01J"), "streamworker:{emails}:job:01J");
        assert_eq!(keys.wake_channel(), "streamworker:{emails}:wake");
        assert_eq!(keys.paused(), "streamworker:{emails}:paused");
        assert_eq!(keys.stats(), "streamworker:{emails}:stats");
        assert_eq!(keys.unique("k1"), "streamworker:{emails}:unique:k1");
        assert_eq!(keys.schedules(), "streamworker:{emails}:schedules");
        assert_eq!(
            keys.schedule("nightly"),
            "streamworker:{emails}:schedule:nightly"
        );
        assert_eq!(keys.cancel_channel(), "streamworker:{emails}:cancel");
        assert_eq!(keys.batch("b1"), "streamworker:{emails}:batch:b1");
        assert_eq!(
            keys.batch_pending("b1"),
            "streamworker:{emails}:batch:b1:pending"
        );
        assert_eq!(
            keys.batch_failed("b1"),
            "streamworker:{emails}:batch:b1:failed"
        );
    }

    /// The README's key table is the one table of keys: each row is what [`Keys`] builds, with
    /// its type, and every key [`Keys`] builds has a row.
    #[test]
    fn the_readme_key_table_is_what_the_code_builds() {
        let keys = Keys::new(&GroupName::new("G").unwrap());
        let mut built: Vec<(String, &str)> = keys
            .streams()
            .iter()
            .map(|s| (s.clone(), "stream"))
            .collect();
        built.extend([
            (keys.delayed(), "sorted set"),
            (keys.delayed_jobs(), "hash"),
            (keys.dead(), "stream"),
            (keys.dead_retention(), "hash"),
            (keys.job("{id}"), "hash"),
            (keys.wake_channel(), "pub/sub channel"),
            (keys.paused(), "string"),
            (keys.stats(), "hash"),
            (keys.cancel_channel(), "pub/sub channel"),
            (keys.unique("{key}"), "string"),
            (keys.once("{id}"), "string"),
            (keys.progress("{id}"), "hash"),
            (keys.schedules(), "hash"),
            (keys.schedule("{name}"), "hash"),
            (keys.batch("{batch}"), "hash"),
            (keys.batch_pending("{batch}"), "set"),
            (keys.batch_failed("{batch}"), "set"),
        ]);
        let readme = include_str!("../README.md");
        let table = readme
            .split("## Keys in Redis")
            .nth(1)
            .expect("README has a section \"Keys in Redis\"");
        let mut documented: Vec<(String, &str)> = Vec::new();
        for row in table.lines().filter(|l| l.starts_with("| `streamworker:")) {
            let cells: Vec<&str> = row.split(" | ").collect();
            let kind = cells[1].trim();
            let names = cells[0].trim_start_matches("| ");
            let mut first: Option<String> = None;
            for name in names.split(", ") {
                let name = name.trim_matches('`');
                let key = match (&first, name.strip_prefix(':')) {
                    // `:default` after `streamworker:{G}:high` is a sibling of the first key.
                    (Some(first), Some(suffix)) => {
                        let stem = first.rsplit_once(':').expect("a key has a suffix").0;
                        format!("{stem}:{suffix}")
                    }
                    _ => name.to_string(),
                };
                first.get_or_insert_with(|| key.clone());
                documented.push((key, kind));
            }
        }
        built.sort();
        documented.sort();
        assert_eq!(documented, built, "README key table vs src/keys.rs");
    }

    #[test]
    fn groups_are_found_from_their_keys_only() {
        let g = |k: &str| group_of_key(k).map(|g| g.to_string());
        assert_eq!(
            g("streamworker:{emails}:default").as_deref(),
            Some("emails")
        );
        assert_eq!(g("streamworker:{a.b-c}:dead").as_deref(), Some("a.b-c"));
        assert_eq!(g("streamworker:{emails}:paused").as_deref(), Some("emails"));
        assert_eq!(g("streamworker:{emails}:job:01J"), None);
        assert_eq!(g("streamworker:{emails}:delayed:jobs"), None);
        assert_eq!(g("streamworker:{em}ails}:default"), None);
        assert_eq!(g("other:{emails}:default"), None);
    }

    #[test]
    fn hostile_names_are_rejected() {
        for bad in [
            "",
            "a}{b",
            "*",
            "x\r\nFLUSHALL",
            "a b",
            "a:b",
            "é",
            &"x".repeat(65),
        ] {
            assert!(GroupName::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["emails", "a-b_c.d", "0", &"x".repeat(64)] {
            assert!(GroupName::new(good).is_ok(), "{good:?} rejected");
        }
    }
}
