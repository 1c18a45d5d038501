//! Start-up checks: refuse a server that would lose jobs silently, and say once what the
//! operator's Redis or Valkey guarantees.
//!
//! Versions are compared per server: Valkey reports `redis_version:7.2.4` for compatibility,
//! and its own releases (`valkey_version`) carry fixes under numbers of their own.

use crate::broker::{Broker, ServerFacts};
use crate::error::{Error, Result};

/// A version as (major, minor, patch).
type Version = (u32, u32, u32);

/// What the checks compare against, for one kind of server.
struct Thresholds {
    /// Oldest release served.
    minimum: Version,
    /// How [`Thresholds::minimum`] reads in the refusal, e.g. `7.0`.
    minimum_text: &'static str,
    /// Per release line (major, minor), its first release with the fixes for the Lua
    /// vulnerabilities published in October 2025 (CVE-2025-49844, CVE-2025-46817,
    /// CVE-2025-46818, CVE-2025-46819), oldest line first. Each also carries its line's earlier
    /// Lua fixes (CVE-2024-31449, CVE-2024-46981). A line newer than the last one listed was
    /// released with the fixes; a line older than the last one and not listed (Redis 7.0)
    /// never got them.
    lua_fixed: &'static [Version],
}

/// Redis: 7.0 brought XAUTOCLAIM's report of entries deleted while pending. Lua fixes: Redis
/// 7.2.11, 7.4.6, 8.0.4 and 8.2.2 (3 October 2025); 8.4 and later came out with them; 7.0 is
/// out of support and got none.
const REDIS: Thresholds = Thresholds {
    minimum: (7, 0, 0),
    minimum_text: "7.0",
    lua_fixed: &[(7, 2, 11), (7, 4, 6), (8, 0, 4), (8, 2, 2)],
};

/// Valkey: every release (the first was 7.2.4, forked from Redis 7.2.4) has what the Redis
/// minimum stands for. Lua fixes: Valkey 7.2.11, 8.0.6 and 8.1.4 (October 2025); 9.0 came out
/// with them.
const VALKEY: Thresholds = Thresholds {
    minimum: (7, 2, 0),
    minimum_text: "7.2",
    lua_fixed: &[(7, 2, 11), (8, 0, 6), (8, 1, 4)],
};

fn thresholds(facts: &ServerFacts) -> &'static Thresholds {
    if facts.is_valkey() { &VALKEY } else { &REDIS }
}

/// Checks the server behind `broker` (each master of a cluster) and logs its name, version
/// and persistence once.
pub(crate) async fn check(broker: &Broker, url: &str) -> Result<()> {
    for (node, facts) in broker.server_facts_each().await? {
        let place = match &node {
            Some(node) => format!("{url} (cluster master {node})"),
            None => url.to_string(),
        };
        verdict(&facts, &place)?;
        log_checked(&facts, &place);
    }
    Ok(())
}

/// Logs what was found (`Valkey 8.1.1 checked`), and warns when the version has known Lua
/// vulnerabilities.
fn log_checked(facts: &ServerFacts, place: &str) {
    tracing::info!(
        at = %place,
        server = facts.server_name(),
        version = %facts.version,
        redis_version = %facts.redis_version,
        maxmemory_policy = %facts.maxmemory_policy,
        persistence = %facts.persistence(),
        "{} checked",
        facts.label()
    );
    if let Some(fixed) = lua_fix_needed(facts) {
        tracing::warn!(
            server = facts.server_name(),
            version = %facts.version,
            "this {} has known Lua vulnerabilities (CVE-2025-49844 and others) fixed in {} {}.{}.{}: \
             keep it on a private network with ACL users, or upgrade \
             (a distribution's package may carry the fixes under the old version number)",
            facts.label(),
            facts.server_name(),
            fixed.0,
            fixed.1,
            fixed.2
        );
    }
}

/// The release to upgrade to when the server's version lacks the Lua fixes; `None` when it
/// has them.
fn lua_fix_needed(facts: &ServerFacts) -> Option<Version> {
    let fixed = thresholds(facts).lua_fixed;
    let version = facts.version_triple();
    let line = |v: &Version| (v.0, v.1);
    if let Some(first) = fixed.iter().find(|f| line(f) == line(&version)) {
        return (version < *first).then_some(*first);
    }
    // Not a listed line: newer ones have the fixes; for older ones, the next fixed line.
    fixed.iter().find(|f| line(f) > line(&version)).copied()
}

/// Refuses a server that is too old or that may evict keys.
pub(crate) fn verdict(facts: &ServerFacts, url: &str) -> Result<()> {
    let needs = thresholds(facts);
    if facts.version_triple() < needs.minimum {
        return Err(Error::UnsafeRedis(format!(
            "{name} at {url} is version {}: streamworker needs {name} {} or newer",
            facts.version,
            needs.minimum_text,
            name = facts.server_name(),
        )));
    }
    if !facts.maxmemory_policy.is_empty() && facts.maxmemory_policy != "noeviction" {
        return Err(Error::UnsafeRedis(format!(
            "{name} at {url} has maxmemory-policy {}: when memory runs out it deletes keys, queued jobs included, without a word. \
             Fix: {cli} CONFIG SET maxmemory-policy noeviction (and put `maxmemory-policy noeviction` in {conf})",
            facts.maxmemory_policy,
            name = facts.server_name(),
            cli = if facts.is_valkey() {
                "valkey-cli"
            } else {
                "redis-cli"
            },
            conf = if facts.is_valkey() {
                "valkey.conf"
            } else {
                "redis.conf"
            },
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn redis(version: &str, policy: &str) -> ServerFacts {
        ServerFacts {
            version: version.into(),
            redis_version: version.into(),
            maxmemory_policy: policy.into(),
            ..ServerFacts::default()
        }
    }

    /// A Valkey as INFO shows it (the first `# Server` lines valkey-server 8.1.1 gives, with
    /// `valkey_version` changed).
    fn valkey(version: &str) -> ServerFacts {
        let info = format!(
            "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:{version}\r\n\
             valkey_release_stage:ga\r\nserver_mode:standalone\r\n# Memory\r\nmaxmemory_policy:noeviction\r\n"
        );
        ServerFacts::parse(&info, None, None)
    }

    #[test]
    fn refuses_eviction_and_old_servers() {
        assert!(verdict(&redis("7.0.15", "noeviction"), "u").is_ok());
        let evicting = verdict(&redis("7.2.11", "allkeys-lru"), "redis://h").unwrap_err();
        assert!(
            evicting
                .to_string()
                .contains("CONFIG SET maxmemory-policy noeviction")
        );
        let old = verdict(&redis("6.2.14", "noeviction"), "redis://h").unwrap_err();
        assert!(old.to_string().contains("Redis 7.0 or newer"), "{old}");
    }

    #[test]
    fn valkey_is_judged_by_its_own_version() {
        for version in ["7.2.4", "8.0.1", "8.1.1", "9.0.0"] {
            assert!(verdict(&valkey(version), "u").is_ok(), "{version}");
        }
        let mut evicting = valkey("8.1.1");
        evicting.maxmemory_policy = "volatile-lru".into();
        let refused = verdict(&evicting, "redis://h").unwrap_err().to_string();
        assert!(refused.starts_with("Valkey at redis://h has maxmemory-policy volatile-lru"));
        assert!(
            refused.contains("valkey-cli CONFIG SET maxmemory-policy noeviction"),
            "{refused}"
        );
        assert!(refused.contains("valkey.conf"), "{refused}");
        // No Valkey is older than 7.2.4; a made-up one is refused in Valkey's terms.
        let old = verdict(&valkey("7.0.0"), "redis://h")
            .unwrap_err()
            .to_string();
        assert!(old.contains("Valkey 7.2 or newer"), "{old}");
    }

    #[test]
    fn lua_fixes_per_redis_line() {
        let needs = |v: &str| lua_fix_needed(&redis(v, ""));
        assert_eq!(needs("7.0.15"), Some((7, 2, 11)), "7.0 never got the fixes");
        assert_eq!(needs("7.2.10"), Some((7, 2, 11)));
        assert_eq!(needs("7.2.11"), None);
        assert_eq!(needs("7.4.5"), Some((7, 4, 6)));
        assert_eq!(needs("7.4.6"), None);
        assert_eq!(needs("8.0.3"), Some((8, 0, 4)));
        assert_eq!(needs("8.0.4"), None);
        assert_eq!(needs("8.2.1"), Some((8, 2, 2)));
        assert_eq!(needs("8.2.2"), None);
        assert_eq!(needs("8.4.0"), None);
        assert_eq!(needs("8.6.3"), None);
    }

    #[test]
    fn lua_fixes_per_valkey_line() {
        let needs = |v: &str| lua_fix_needed(&valkey(v));
        // Its redis_version, 7.2.4, would read as unfixed Redis 7.2; its own number decides.
        assert_eq!(needs("7.2.4"), Some((7, 2, 11)));
        assert_eq!(needs("7.2.11"), None);
        assert_eq!(needs("8.0.5"), Some((8, 0, 6)));
        assert_eq!(needs("8.0.6"), None);
        assert_eq!(needs("8.1.1"), Some((8, 1, 4)));
        assert_eq!(needs("8.1.4"), None);
        assert_eq!(needs("9.0.0"), None);
    }

    /// What `log_checked` writes, as the worker's plain log format shows it.
    fn logged(facts: &ServerFacts) -> String {
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            log_checked(facts, "redis://127.0.0.1:6379")
        });
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn the_start_log_names_valkey_and_its_own_version() {
        let log = logged(&valkey("8.1.1"));
        assert!(log.contains("Valkey 8.1.1 checked"), "{log}");
        assert!(log.contains("server=\"Valkey\" version=8.1.1"), "{log}");
        assert!(
            log.contains("this Valkey 8.1.1 has known Lua vulnerabilities (CVE-2025-49844 and others) fixed in Valkey 8.1.4"),
            "{log}"
        );
        assert!(!log.contains("Redis 7.2.4"), "{log}");

        let fixed = logged(&valkey("8.1.4"));
        assert!(fixed.contains("Valkey 8.1.4 checked"), "{fixed}");
        assert!(!fixed.contains("WARN"), "{fixed}");

        let log = logged(&redis("7.0.15", "noeviction"));
        assert!(log.contains("Redis 7.0.15 checked"), "{log}");
        assert!(log.contains("fixed in Redis 7.2.11"), "{log}");
    }
}
