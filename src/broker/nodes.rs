//! A Redis Cluster's masters, for what must ask every one of them: listing groups (SCAN is
//! per node) and the start-up checks (each master has its own settings). On a single node
//! there is one "master", the node itself, reached the usual way.

use super::Broker;
use super::conn::Topology;
use crate::error::{Error, Result};
use deadpool_redis::redis;
use redis::{Cmd, FromRedisValue, RedisResult};
use std::fmt;

/// One master of a cluster, by address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    host: String,
    port: u16,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl Broker {
    /// Whether this broker talks to a Redis Cluster (asked of the seeds on first use).
    pub(crate) async fn is_cluster(&self) -> Result<bool> {
        let Some(endpoint) = &self.endpoint else {
            return Ok(false);
        };
        let topology = endpoint
            .topology()
            .await
            .map_err(|e| super::conn::cannot_connect(self.url(), e))?;
        Ok(matches!(topology, Topology::Cluster(_)))
    }

    /// Every master of the cluster, in slot order; `None` on a single node.
    pub(crate) async fn masters(&self) -> Result<Option<Vec<Node>>> {
        let mut conn = self.conn().await?;
        let Some(link) = conn.link() else {
            return Ok(None);
        };
        let masters = link
            .masters()
            .await
            .map_err(Error::redis("read the cluster's slot map"))?;
        Ok(masters.map(|m| {
            m.into_iter()
                .map(|(host, port)| Node { host, port })
                .collect()
        }))
    }

    /// Sends `cmd` to `node`, wherever its keys would route.
    pub(crate) async fn on_node<T: FromRedisValue>(&self, node: &Node, cmd: Cmd) -> RedisResult<T> {
        let mut conn = self.conn().await.map_err(|e| {
            redis::RedisError::from((redis::ErrorKind::Io, "no connection", e.to_string()))
        })?;
        let value = match conn.link() {
            Some(link) => link.on_node(&node.host, node.port, cmd).await?,
            None => cmd.query_async(&mut conn).await?,
        };
        T::from_redis_value(value).map_err(Into::into)
    }
}
