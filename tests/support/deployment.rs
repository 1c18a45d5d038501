//! What a test runs against, a single `redis-server` ([`RedisServer`]) or a Redis Cluster
//! ([`RedisCluster`]), as the helpers that only need its URL and a connection see it: the
//! commands, clients, scenes and known states of `cli`, `workers`, `scene` and `known` work on
//! either.

use super::cluster::RedisCluster;
use super::server::RedisServer;
use redis::ConnectionLike;
use std::time::Duration;

/// A Redis deployment owned by one test.
pub trait Deployment {
    /// A synchronous connection that reaches every key: one server's, or a cluster's (routed
    /// by slot, following redirects).
    type Conn: ConnectionLike;

    /// The URL streamworker is given (`--redis`, `Client::connect`, `Worker::builder`).
    fn url(&self) -> String;

    /// A new synchronous connection, for seeding and inspecting state.
    fn conn(&self) -> Self::Conn;

    /// A plain connection to the server holding `key` (on a cluster, the master serving its
    /// slot): a pipeline of one group's keys goes there whole, which a cluster connection
    /// refuses.
    fn conn_for(&self, key: &str) -> redis::Connection;
}

impl Deployment for RedisServer {
    type Conn = redis::Connection;

    fn url(&self) -> String {
        RedisServer::url(self)
    }

    fn conn(&self) -> redis::Connection {
        RedisServer::conn(self)
    }

    fn conn_for(&self, _key: &str) -> redis::Connection {
        RedisServer::conn(self)
    }
}

impl Deployment for RedisCluster {
    type Conn = redis::cluster::ClusterConnection;

    fn url(&self) -> String {
        RedisCluster::url(self)
    }

    fn conn(&self) -> redis::cluster::ClusterConnection {
        RedisCluster::conn(self)
    }

    fn conn_for(&self, key: &str) -> redis::Connection {
        let master = self.master_of_slot(RedisCluster::slot_of(key));
        let url = format!("redis://127.0.0.1:{master}");
        redis::Client::open(url)
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
            .unwrap_or_else(|e| panic!("a connection to master {master}: {e}"))
    }
}
