//! A link: one open connection to the deployment, whatever its kind. On a single node (found
//! directly or through Sentinel) it is one multiplexed connection; on a Redis Cluster it is a
//! cluster connection, which routes each command to the master that owns its keys' slot, follows
//! MOVED and ASK, and refreshes its slot map when the topology changes.

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// One open connection to a single node or to a cluster. Cheap to clone: clones send on the
/// same connection.
#[derive(Clone)]
pub(crate) enum Link {
    /// One multiplexed connection to one node.
    Single(MultiplexedConnection),
    /// A cluster connection (a connection per node, routed by slot).
    Cluster(ClusterConnection),
}

impl Link {
    /// Whether this link spans a cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Link::Cluster(_))
    }

    /// The address of every master of a cluster (from `CLUSTER SLOTS`, asked of any node),
    /// in slot order; `None` on a single node.
    pub(crate) async fn masters(&mut self) -> RedisResult<Option<Vec<(String, u16)>>> {
        let Link::Cluster(c) = self else {
            return Ok(None);
        };
        let slots: Value = redis::cmd("CLUSTER").arg("SLOTS").query_async(c).await?;
        Ok(Some(slot_map_nodes(slots, true)))
    }

    /// Sends `cmd` to the node at `host:port` (a cluster's node), not where its keys route.
    /// On a single node it goes to that node.
    pub(crate) async fn on_node(&mut self, host: &str, port: u16, cmd: Cmd) -> RedisResult<Value> {
        match self {
            Link::Single(c) => cmd.query_async(c).await,
            Link::Cluster(c) => {
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.to_string(),
                    port,
                });
                c.route_command(cmd, route).await
            }
        }
    }
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Link::Single(c) => c.req_packed_command(cmd),
            Link::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Link::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Link::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Single(c) => c.get_db(),
            Link::Cluster(c) => c.get_db(),
        }
    }
}

/// The node addresses in a `CLUSTER SLOTS` reply, each once, in slot order: only each range's
/// master when `masters_only`, else its replicas too.
pub(crate) fn slot_map_nodes(reply: Value, masters_only: bool) -> Vec<(String, u16)> {
    let Value::Array(ranges) = reply else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for range in ranges {
        let Value::Array(parts) = range else { continue };
        let take = if masters_only { 1 } else { usize::MAX };
        for node in parts.into_iter().skip(2).take(take) {
            let Value::Array(node) = node else { continue };
            let host = match node.first() {
                Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                Some(Value::SimpleString(s)) => s.clone(),
                _ => continue,
            };
            let Some(Value::Int(port)) = node.get(1) else {
                continue;
            };
            if let Ok(port) = u16::try_from(*port)
                && !out.contains(&(host.clone(), port))
            {
                out.push((host, port));
            }
        }
    }
    out
}
