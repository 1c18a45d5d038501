//! A worker's settings and every default they have, in one place: [`WorkerConfig::default`],
//! the command line's flags (`streamworker --help`) and the operator commands that judge
//! entries by the workers' visibility timeout all read the constants below. README's
//! "Limits and defaults" table and flag list are checked against them by a test here.

use crate::backoff::Backoff;
use crate::metrics::Metrics;
use std::net::SocketAddr;
use std::time::Duration;

/// Default largest encoded `args` a worker decodes. Declared with the job format, since
/// producers refuse larger jobs by the same default.
pub(crate) use crate::DEFAULT_MAX_PAYLOAD_BYTES as MAX_PAYLOAD_BYTES;
/// Default retry limit of jobs whose job and task set none. Declared with the job format.
pub(crate) use crate::DEFAULT_MAX_RETRIES as MAX_RETRIES;
/// Default timeout of one attempt of jobs whose job and task set none. Declared with the job
/// format.
pub(crate) use crate::DEFAULT_TIMEOUT as TIMEOUT;

/// Default number of jobs run at once, across all groups.
pub(crate) const CONCURRENCY: usize = 16;
/// How long an idle fetcher blocks waiting for new jobs before it checks for shutdown: short
/// enough that a stop is noticed at once, long enough to cost nothing.
pub(crate) const BLOCK: Duration = Duration::from_secs(1);
/// Default most entries a fetcher reads ahead of its free slots (per group), to start them
/// as slots free up without a round trip each time; 0 reads only for free slots.
pub(crate) const PREFETCH: usize = 256;
/// Longest an entry read ahead waits for a slot before it goes back to its stream for a
/// worker that is free (at most a third of the visibility timeout).
pub(crate) const PREFETCH_HOLD: Duration = Duration::from_millis(100);
/// Default time in-flight jobs may run on after a stop before they are handed back.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Default delay before the first retry; it doubles per attempt. Longest retry delay of the
/// default backoff (and of the command line's). Both are [`Backoff`]'s own defaults.
pub(crate) use crate::backoff::{
    DEFAULT_CAP as RETRY_BACKOFF_CAP, DEFAULT_FIRST_DELAY as RETRY_BACKOFF,
};
/// Most delayed jobs moved per promote call.
pub(crate) const PROMOTE_BATCH: usize = 500;
/// Default time a delivered entry may go without a sign of life from its worker before the
/// reaper of any worker takes it over. The operator commands flag entries idle longer.
pub(crate) const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);
/// Shortest visibility timeout accepted: heartbeats go out every third of it.
pub(crate) const MIN_VISIBILITY_TIMEOUT: Duration = Duration::from_millis(300);
/// Default deliveries after which an entry that keeps stalling goes to the dead stream.
pub(crate) const MAX_DELIVERIES: u32 = 5;

/// Default most jobs kept in a group's dead stream: adding to it deletes the oldest beyond
/// this. Sidekiq's dead set keeps as many: enough to see what failed over weeks, at most a
/// few hundred MiB even with large entries (args of jobs too large to run are cut to
/// [`DEAD_ARGS_KEPT`]).
pub(crate) const DEAD_MAX_LEN: u64 = 10_000;
/// Default longest time a job is kept in the dead stream, as [`DEAD_MAX_AGE_TEXT`] says
/// (about six months, as Sidekiq keeps its dead set): long enough to notice and re-drive a
/// failure, short enough that old payloads, which may hold personal data, do not stay forever.
pub(crate) const DEAD_MAX_AGE: Duration = Duration::from_secs(180 * 24 * 3600);
/// [`DEAD_MAX_AGE`] as the command line writes it (its `--help` default).
pub(crate) const DEAD_MAX_AGE_TEXT: &str = "180d";
/// Bytes of a job's args kept in the dead stream when the job went there because its args
/// are over the payload limit; the size they had is noted beside them.
pub(crate) const DEAD_ARGS_KEPT: usize = 1024;

/// Settings of a worker; [`Default`] holds the defaults above.
#[derive(Debug, Clone)]
pub(crate) struct WorkerConfig {
    /// Jobs run at once across all groups. Default [`CONCURRENCY`].
    pub(crate) concurrency: usize,
    /// Most entries read ahead of the free slots, per group. Default [`PREFETCH`].
    pub(crate) prefetch: usize,
    /// How long an idle fetcher blocks waiting for new jobs. Default [`BLOCK`].
    pub(crate) block: Duration,
    /// How long in-flight jobs may run on after a stop before they are handed back. Default
    /// [`SHUTDOWN_GRACE`].
    pub(crate) shutdown_grace: Duration,
    /// Retry delays. Default: [`RETRY_BACKOFF`] doubling, capped at [`RETRY_BACKOFF_CAP`].
    pub(crate) backoff: Backoff,
    /// Largest `args` a worker decodes; larger entries go to the dead stream undecoded.
    /// Default [`MAX_PAYLOAD_BYTES`].
    pub(crate) max_payload_bytes: usize,
    /// Most delayed jobs moved per promote call. Default [`PROMOTE_BATCH`].
    pub(crate) promote_batch: usize,
    /// This worker's consumer name in the groups. Default `host-pid-random`.
    pub(crate) consumer: String,
    /// How long a delivered entry may go without a sign of life from its worker before the
    /// reaper of any worker takes it over. Default [`VISIBILITY_TIMEOUT`]. Heartbeats renew
    /// it every third.
    pub(crate) visibility_timeout: Duration,
    /// Deliveries after which an entry that keeps stalling goes to the dead stream. Default
    /// [`MAX_DELIVERIES`].
    pub(crate) max_deliveries: u32,
    /// Retry limit of jobs whose job and task set none. Default [`MAX_RETRIES`].
    pub(crate) max_retries: u32,
    /// Timeout of jobs whose job and task set none. Default [`TIMEOUT`].
    pub(crate) timeout: Duration,
    /// Most jobs kept in each group's dead stream; 0 = no bound. Default [`DEAD_MAX_LEN`].
    pub(crate) dead_max_len: u64,
    /// Longest time a job is kept in each group's dead stream; zero = no bound. Default
    /// [`DEAD_MAX_AGE`].
    pub(crate) dead_max_age: Duration,
    /// Where job outcomes, durations and queue depths are recorded. Default none.
    pub(crate) metrics: Option<Metrics>,
    /// Address to serve `GET /metrics` on while running. Default none (not served).
    pub(crate) metrics_addr: Option<SocketAddr>,
}

impl WorkerConfig {
    /// How often leases are renewed: a third of the visibility timeout.
    pub(crate) fn heartbeat_interval(&self) -> Duration {
        self.visibility_timeout / 3
    }

    /// Longest an entry read ahead waits for a slot: [`PREFETCH_HOLD`], at most a third of
    /// the visibility timeout, so its lease never lapses while it waits.
    pub(crate) fn prefetch_hold(&self) -> Duration {
        PREFETCH_HOLD.min(self.visibility_timeout / 3)
    }

    /// How often the reaper looks for stalled entries: a third of the visibility timeout,
    /// at most every 10 s.
    pub(crate) fn reap_interval(&self) -> Duration {
        (self.visibility_timeout / 3).min(Duration::from_secs(10))
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: CONCURRENCY,
            prefetch: PREFETCH,
            block: BLOCK,
            shutdown_grace: SHUTDOWN_GRACE,
            backoff: Backoff::default(),
            max_payload_bytes: MAX_PAYLOAD_BYTES,
            promote_batch: PROMOTE_BATCH,
            consumer: default_consumer_name(),
            visibility_timeout: VISIBILITY_TIMEOUT,
            max_deliveries: MAX_DELIVERIES,
            max_retries: MAX_RETRIES,
            timeout: TIMEOUT,
            dead_max_len: DEAD_MAX_LEN,
            dead_max_age: DEAD_MAX_AGE,
            metrics: None,
            metrics_addr: None,
        }
    }
}

/// `host-pid-random`: the host name (letters, digits and dashes only), the process id and 16
/// random bits, so two workers never share a consumer name.
fn default_consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| {
            h.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!(
        "{host}-{}-{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A duration as README's table writes it: `300 ms`, `30 s`, `30 min`.
    fn prose(d: Duration) -> String {
        match d.as_secs() {
            0 => format!("{} ms", d.as_millis()),
            s if s % 60 != 0 => format!("{s} s"),
            s => format!("{} min", s / 60),
        }
    }

    /// A duration as the command line writes it: `30s`, `30m`.
    fn flag(d: Duration) -> String {
        humantime::format_duration(d).to_string()
    }

    #[test]
    fn readme_documents_the_defaults_in_force() {
        let readme = include_str!("../../README.md");
        let expected = [
            // The table under "Limits and defaults".
            format!("| concurrency | {CONCURRENCY} jobs at once"),
            format!(
                "| retries | {MAX_RETRIES} ({} attempts in all)",
                MAX_RETRIES + 1
            ),
            format!("| timeout per attempt | {} |", prose(TIMEOUT)),
            format!(
                "| visibility timeout | {} without a heartbeat",
                prose(VISIBILITY_TIMEOUT)
            ),
            format!("at least {} |", prose(MIN_VISIBILITY_TIMEOUT)),
            format!("| max deliveries | {MAX_DELIVERIES}: "),
            format!(
                "| retry backoff | {} doubling per attempt, capped at {};",
                prose(RETRY_BACKOFF),
                prose(RETRY_BACKOFF_CAP)
            ),
            format!("| payload | {} KiB ", MAX_PAYLOAD_BYTES / 1024),
            format!("| fetch block | {}: ", prose(BLOCK)),
            format!("| shutdown grace | {}, ", prose(SHUTDOWN_GRACE)),
            format!(
                "| dead stream | the newest {DEAD_MAX_LEN} jobs per group, each at most {} days",
                DEAD_MAX_AGE.as_secs() / 86_400
            ),
            format!("| dead args | the first {} KiB ", DEAD_ARGS_KEPT / 1024),
            // The worker's flags.
            format!("`--concurrency {CONCURRENCY}`"),
            format!("`--prefetch {PREFETCH}`"),
            format!("| prefetch | {PREFETCH} jobs per group read ahead"),
            format!("`--shutdown-grace {}`", flag(SHUTDOWN_GRACE)),
            format!(
                "`--retry-backoff {}` (first retry delay; doubles, capped at {})",
                flag(RETRY_BACKOFF),
                prose(RETRY_BACKOFF_CAP)
            ),
            format!("`--max-retries {MAX_RETRIES}`"),
            format!("`--timeout {}`", flag(TIMEOUT)),
            format!("`--visibility-timeout {}`", flag(VISIBILITY_TIMEOUT)),
            format!("`--max-deliveries {MAX_DELIVERIES}`"),
            format!("`--max-payload-bytes {MAX_PAYLOAD_BYTES}`"),
            format!("`--dead-max-len {DEAD_MAX_LEN}`"),
            format!("`--dead-max-age {DEAD_MAX_AGE_TEXT}`"),
        ];
        // README wraps lines: compare with every run of whitespace as one space.
        let flat = readme.split_whitespace().collect::<Vec<_>>().join(" ");
        for text in expected {
            assert!(
                flat.contains(&text),
                "README.md should say {text:?} (worker/config.rs holds the defaults)"
            );
        }
    }

    #[test]
    fn the_default_config_uses_the_constants() {
        let c = WorkerConfig::default();
        assert_eq!(c.backoff, Backoff::new(RETRY_BACKOFF, RETRY_BACKOFF_CAP));
        assert_eq!(
            (c.concurrency, c.visibility_timeout, c.shutdown_grace),
            (CONCURRENCY, VISIBILITY_TIMEOUT, SHUTDOWN_GRACE)
        );
        assert_eq!(
            (c.dead_max_len, c.dead_max_age),
            (DEAD_MAX_LEN, DEAD_MAX_AGE)
        );
    }

    #[test]
    fn the_dead_max_age_flag_text_is_the_constant() {
        assert_eq!(
            humantime::parse_duration(DEAD_MAX_AGE_TEXT).unwrap(),
            DEAD_MAX_AGE
        );
        // 0 turns the bound off, and the command line accepts it as written.
        assert_eq!(humantime::parse_duration("0").unwrap(), Duration::ZERO);
    }
}
