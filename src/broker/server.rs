//! What a worker checks about its server (Redis or Valkey) at start-up: which one and its
//! version, eviction policy, persistence.

use super::Broker;
use super::nodes::Node;
use crate::error::{Error, Result};
use deadpool_redis::redis;

/// Which server answers. Valkey reports a `redis_version` too (the Redis release it is
/// compatible with, 7.2.4 for every Valkey so far), so the kind is told by `server_name` and
/// the version by `valkey_version`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Server {
    #[default]
    Redis,
    Valkey,
}

/// Facts about the server, read from INFO (and CONFIG GET where the ACL allows it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ServerFacts {
    /// Redis or Valkey: `server_name:valkey` (or a `valkey_version` field) means Valkey.
    pub(crate) server: Server,
    /// The server's own version: `valkey_version` on Valkey (e.g. `8.1.1`), `redis_version`
    /// on Redis (e.g. `7.0.15`).
    pub(crate) version: String,
    /// `redis_version` as reported: on Redis its version, on Valkey the Redis release whose
    /// API it keeps (`7.2.4`).
    pub(crate) redis_version: String,
    /// `maxmemory_policy`, e.g. `noeviction`.
    pub(crate) maxmemory_policy: String,
    /// Whether the append-only file is on.
    pub(crate) aof: bool,
    /// `appendfsync` (`always`, `everysec`, `no`), when CONFIG GET is allowed.
    pub(crate) appendfsync: Option<String>,
    /// RDB snapshot rules (`save`), when CONFIG GET is allowed; empty means none.
    pub(crate) save: Option<String>,
}

impl ServerFacts {
    /// Reads the facts out of an `INFO` reply plus the optional CONFIG values.
    pub(crate) fn parse(info: &str, appendfsync: Option<String>, save: Option<String>) -> Self {
        let find = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| v.trim().to_string())
        };
        let field = |name: &str| find(name).unwrap_or_default();
        let redis_version = field("redis_version");
        let valkey_version = find("valkey_version");
        let valkey = find("server_name").is_some_and(|name| name.eq_ignore_ascii_case("valkey"))
            || valkey_version.is_some();
        let (server, version) = if valkey {
            // A Valkey without `valkey_version` has none to give but its Redis one.
            let own = valkey_version.unwrap_or_else(|| redis_version.clone());
            (Server::Valkey, own)
        } else {
            (Server::Redis, redis_version.clone())
        };
        ServerFacts {
            server,
            version,
            redis_version,
            maxmemory_policy: field("maxmemory_policy"),
            aof: field("aof_enabled") == "1",
            appendfsync,
            save,
        }
    }

    /// Whether the server is Valkey.
    pub(crate) fn is_valkey(&self) -> bool {
        self.server == Server::Valkey
    }

    /// `Redis` or `Valkey`.
    pub(crate) fn server_name(&self) -> &'static str {
        match self.server {
            Server::Redis => "Redis",
            Server::Valkey => "Valkey",
        }
    }

    /// The server and its own version, as logs and errors name it: `Redis 7.0.15`,
    /// `Valkey 8.1.1`.
    pub(crate) fn label(&self) -> String {
        format!("{} {}", self.server_name(), self.version)
    }

    /// The server's own version as (major, minor, patch); zeros for parts that do not parse.
    pub(crate) fn version_triple(&self) -> (u32, u32, u32) {
        let mut parts = self.version.split('.').map(|p| p.parse().unwrap_or(0));
        (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        )
    }

    /// One phrase saying what survives a crash of this Redis.
    pub(crate) fn persistence(&self) -> String {
        // `None` when CONFIG GET was refused.
        let snapshots = self.save.as_deref().map(|rules| !rules.is_empty());
        let with = match snapshots {
            Some(true) => " with RDB snapshots",
            Some(false) => " without RDB snapshots",
            None => "",
        };
        match (self.aof, self.appendfsync.as_deref(), snapshots) {
            (true, Some("always"), _) => {
                format!("AOF, appendfsync always{with}: every acknowledged write survives a crash")
            }
            (true, Some(policy), _) => format!(
                "AOF, appendfsync {policy}{with}: a crash can lose about the last second of writes"
            ),
            (true, None, _) => format!(
                "AOF on{with} (fsync policy unknown: CONFIG GET is not allowed for this user)"
            ),
            (false, _, Some(true)) => {
                "RDB snapshots only: a crash loses every write since the last snapshot".into()
            }
            (false, _, Some(false)) => format!(
                "no persistence: a restart of {} loses every job it holds",
                self.server_name()
            ),
            (false, _, None) => {
                "AOF off (snapshot rules unknown: CONFIG GET is not allowed for this user)".into()
            }
        }
    }
}

impl Broker {
    /// Reads the server's [`ServerFacts`]. CONFIG GET is optional: an ACL that denies it
    /// leaves the fsync and snapshot settings unknown.
    pub(crate) async fn server_facts(&self) -> Result<ServerFacts> {
        self.facts_of(None).await
    }

    /// The [`ServerFacts`] of every server that holds groups: the node itself, or each
    /// master of a Redis Cluster, by address (`None` for a single node).
    pub(crate) async fn server_facts_each(&self) -> Result<Vec<(Option<Node>, ServerFacts)>> {
        match self.masters().await? {
            None => Ok(vec![(None, self.server_facts().await?)]),
            Some(masters) => {
                let mut out = Vec::with_capacity(masters.len());
                for node in masters {
                    let facts = self.facts_of(Some(&node)).await?;
                    out.push((Some(node), facts));
                }
                Ok(out)
            }
        }
    }

    /// The facts of `node`, or of the one server when `None`.
    async fn facts_of(&self, node: Option<&Node>) -> Result<ServerFacts> {
        let ask = |cmd: redis::Cmd| async move {
            match node {
                Some(node) => self.on_node::<redis::Value>(node, cmd).await,
                None => {
                    let mut conn = self.conn().await.map_err(|e| {
                        redis::RedisError::from((
                            redis::ErrorKind::Io,
                            "no connection",
                            e.to_string(),
                        ))
                    })?;
                    cmd.query_async(&mut conn).await
                }
            }
        };
        let mut info = String::new();
        for section in ["server", "persistence", "memory"] {
            let mut cmd = redis::cmd("INFO");
            cmd.arg(section);
            let text: String = ask(cmd)
                .await
                .and_then(|v| redis::from_redis_value(v).map_err(Into::into))
                .map_err(Error::redis("INFO"))?;
            info.push_str(&text);
        }
        let config = |name: &'static str| {
            let mut cmd = redis::cmd("CONFIG");
            cmd.arg("GET").arg(name);
            cmd
        };
        let read = |reply: redis::RedisResult<redis::Value>| {
            config_value(reply.and_then(|v| redis::from_redis_value(v).map_err(Into::into)))
        };
        let appendfsync = read(ask(config("appendfsync")).await);
        let save = read(ask(config("save")).await);
        Ok(ServerFacts::parse(&info, appendfsync, save))
    }
}

/// The value of a `CONFIG GET name` reply, or `None` when it was refused.
fn config_value(reply: redis::RedisResult<Vec<String>>) -> Option<String> {
    reply.ok().and_then(|pair| pair.into_iter().nth(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n# Persistence\r\naof_enabled:1\r\n# Memory\r\nmaxmemory_policy:allkeys-lru\r\n";

    /// The first lines of `INFO server` from valkey-server 8.1.1 (as scripts/servers builds it),
    /// then `INFO persistence` and `INFO memory` cut to the fields read.
    const VALKEY_8_1_1: &str = "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.1\r\nvalkey_release_stage:ga\r\nredis_git_sha1:00000000\r\nredis_git_dirty:1\r\nredis_build_id:974fcf632018d130\r\nserver_mode:standalone\r\nos:Linux 6.18.44-fc-v1272 x86_64\r\narch_bits:64\r\n\r\n# Persistence\r\naof_enabled:0\r\n\r\n# Memory\r\nmaxmemory_policy:noeviction\r\n";

    /// The same from redis-server 8.6.3: no `server_name`.
    const REDIS_8_6_3: &str = "# Server\r\nredis_version:8.6.3\r\nredis_git_sha1:00000000\r\nredis_git_dirty:1\r\nredis_build_id:564ddbf8be216a6b\r\nredis_mode:standalone\r\nos:Linux 6.18.44-fc-v1272 x86_64\r\narch_bits:64\r\n\r\n# Persistence\r\naof_enabled:0\r\n\r\n# Memory\r\nmaxmemory_policy:noeviction\r\n";

    #[test]
    fn reads_version_policy_and_persistence() {
        let facts = ServerFacts::parse(INFO, Some("always".into()), Some(String::new()));
        assert_eq!(facts.server, Server::Redis);
        assert_eq!(facts.version, "7.0.15");
        assert_eq!(facts.version_triple(), (7, 0, 15));
        assert_eq!(facts.label(), "Redis 7.0.15");
        assert_eq!(facts.maxmemory_policy, "allkeys-lru");
        assert!(facts.aof);
        assert!(
            facts
                .persistence()
                .starts_with("AOF, appendfsync always without RDB")
        );
        let none = ServerFacts::parse(
            "redis_version:7.2.4\r\naof_enabled:0\r\n",
            Some("everysec".into()),
            Some(String::new()),
        );
        assert!(none.persistence().starts_with("no persistence"));
        let denied = ServerFacts::parse("aof_enabled:1\r\n", None, None);
        assert!(denied.persistence().contains("fsync policy unknown"));
    }

    #[test]
    fn valkey_is_named_with_its_own_version() {
        let facts = ServerFacts::parse(VALKEY_8_1_1, None, Some(String::new()));
        assert_eq!(facts.server, Server::Valkey);
        assert!(facts.is_valkey());
        assert_eq!(facts.server_name(), "Valkey");
        assert_eq!(facts.version, "8.1.1");
        assert_eq!(facts.version_triple(), (8, 1, 1));
        assert_eq!(facts.redis_version, "7.2.4");
        assert_eq!(facts.label(), "Valkey 8.1.1");
        assert_eq!(facts.maxmemory_policy, "noeviction");
        assert!(!facts.aof);
        assert_eq!(
            facts.persistence(),
            "no persistence: a restart of Valkey loses every job it holds"
        );
        // `server_name` alone, or `valkey_version` alone, is enough to tell.
        let named = ServerFacts::parse("redis_version:7.2.4\r\nserver_name:valkey\r\n", None, None);
        assert_eq!(named.label(), "Valkey 7.2.4");
        let versioned = ServerFacts::parse(
            "redis_version:7.2.4\r\nvalkey_version:8.0.6\r\n",
            None,
            None,
        );
        assert_eq!(versioned.label(), "Valkey 8.0.6");
    }

    #[test]
    fn redis_8_is_redis() {
        let facts = ServerFacts::parse(REDIS_8_6_3, None, None);
        assert_eq!(facts.server, Server::Redis);
        assert_eq!(facts.label(), "Redis 8.6.3");
        assert_eq!(facts.redis_version, "8.6.3");
    }
}
