//! Key names of a test's group, written out as the README's key table documents them: the
//! tests never use the crate's own key builder, so a renamed key fails them.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A group name no other test uses: `PREFIX-PID-N`.
pub fn unique_group(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `streamworker:{GROUP}:SUFFIX`, e.g. `key("emails", "dead")` or `key(g, &format!("job:{id}"))`.
pub fn key(group: &str, suffix: &str) -> String {
    format!("streamworker:{{{group}}}:{suffix}")
}

/// Group `g` of the Lua contract tests, and its keys.
pub const G: &str = "g";
pub const HIGH: &str = "streamworker:{g}:high";
pub const DEFAULT: &str = "streamworker:{g}:default";
pub const LOW: &str = "streamworker:{g}:low";
/// The three priority streams, high first: KEYS[1..3] of every script.
pub const STREAMS: [&str; 3] = [HIGH, DEFAULT, LOW];
pub const DELAYED: &str = "streamworker:{g}:delayed";
pub const DELAYED_JOBS: &str = "streamworker:{g}:delayed:jobs";
pub const DEAD: &str = "streamworker:{g}:dead";
/// The dead stream's retention in force, written by `finish_dead.lua`.
pub const DEAD_RETENTION: &str = "streamworker:{g}:dead:retention";
pub const WAKE: &str = "streamworker:{g}:wake";
pub const CANCEL: &str = "streamworker:{g}:cancel";
pub const PAUSED: &str = "streamworker:{g}:paused";
pub const STATS: &str = "streamworker:{g}:stats";
/// The uniqueness lock of key `k`.
pub const LOCK: &str = "streamworker:{g}:unique:k";
/// The state hash of schedule `beat`.
pub const SCHEDULE: &str = "streamworker:{g}:schedule:beat";
