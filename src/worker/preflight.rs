//! Start-up checks: refuse a Redis that would lose jobs silently, and say once what the
//! operator's Redis guarantees.

use crate::broker::{Broker, ServerFacts};
use crate::error::{Error, Result};

/// Oldest Redis served: 7.0 brought XAUTOCLAIM's report of entries deleted while pending.
const MIN_VERSION: (u32, u32, u32) = (7, 0, 0);
/// First 7.x release with fixes for the known Lua vulnerabilities (CVE-2025-49844 and others).
const PATCHED_VERSION: (u32, u32, u32) = (7, 2, 11);

/// Checks the server behind `broker` (each master of a cluster) and logs its version and
/// persistence once.
pub(crate) async fn check(broker: &Broker, url: &str) -> Result<()> {
    for (node, facts) in broker.server_facts_each().await? {
        let place = match &node {
            Some(node) => format!("{url} (cluster master {node})"),
            None => url.to_string(),
        };
        check_one(&facts, &place)?;
    }
    Ok(())
}

fn check_one(facts: &ServerFacts, url: &str) -> Result<()> {
    verdict(facts, url)?;
    tracing::info!(
        server = %url,
        version = %facts.version,
        maxmemory_policy = %facts.maxmemory_policy,
        persistence = %facts.persistence(),
        "Redis checked"
    );
    if facts.version_triple() < PATCHED_VERSION {
        tracing::warn!(
            version = %facts.version,
            "this Redis has known Lua vulnerabilities fixed in 7.2.11: keep it on a private network with ACL users, or upgrade"
        );
    }
    Ok(())
}

/// Refuses a server that is too old or that may evict keys.
pub(crate) fn verdict(facts: &ServerFacts, url: &str) -> Result<()> {
    if facts.version_triple() < MIN_VERSION {
        return Err(Error::UnsafeRedis(format!(
            "Redis at {url} is version {}: streamworker needs 7.0 or newer",
            facts.version
        )));
    }
    if !facts.maxmemory_policy.is_empty() && facts.maxmemory_policy != "noeviction" {
        return Err(Error::UnsafeRedis(format!(
            "Redis at {url} has maxmemory-policy {}: when memory runs out it deletes keys, queued jobs included, without a word. \
             Fix: redis-cli CONFIG SET maxmemory-policy noeviction (and put `maxmemory-policy noeviction` in redis.conf)",
            facts.maxmemory_policy
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(version: &str, policy: &str) -> ServerFacts {
        ServerFacts {
            version: version.into(),
            maxmemory_policy: policy.into(),
            ..ServerFacts::default()
        }
    }

    #[test]
    fn refuses_eviction_and_old_servers() {
        assert!(verdict(&facts("7.0.15", "noeviction"), "u").is_ok());
        let evicting = verdict(&facts("7.2.11", "allkeys-lru"), "redis://h").unwrap_err();
        assert!(
            evicting
                .to_string()
                .contains("CONFIG SET maxmemory-policy noeviction")
        );
        let old = verdict(&facts("6.2.14", "noeviction"), "redis://h").unwrap_err();
        assert!(old.to_string().contains("7.0 or newer"));
    }
}
