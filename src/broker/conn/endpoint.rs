//! The deployment a URL names, and what kind it turns out to be.
//!
//! A URL is one node (`redis://host:port`), several seed nodes of a Redis Cluster
//! (`redis://a:7000,redis://b:7001`), or a master behind Sentinel (`redis+sentinel://...`, see
//! `sentinel`). Whether a node belongs to a cluster is not in its URL: the first time a
//! connection is needed, the seeds are asked in turn (`INFO cluster`, `cluster_enabled:1`) and
//! the answer is kept. A single node keeps one multiplexed connection; a cluster gets a cluster
//! connection.

use super::link::Link;
use super::sentinel::Sentinels;
use redis::cluster::ClusterClient;
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, ErrorKind, RedisError, RedisResult,
    Value,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::OnceCell;

/// How long connecting, and then each reply, may take.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) response: Duration,
}

impl Timeouts {
    fn single(self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect))
            .set_response_timeout(Some(self.response))
    }
}

/// What the URL names, before anything is asked.
enum Seeds {
    /// One node, or a cluster's seed nodes, in the order given.
    Nodes(Vec<redis::Client>),
    /// A master found through its sentinels.
    Sentinel(Box<Sentinels>),
}

/// What kind of deployment the seeds turned out to be.
#[allow(clippy::large_enum_variant)] // Made once per endpoint and never moved after.
pub(crate) enum Topology {
    /// One node: this client reaches it.
    Single(redis::Client),
    /// A Redis Cluster.
    Cluster(Cluster),
    /// A master found through Sentinel.
    Sentinel,
}

/// A Redis Cluster: its seeds and credentials, from which each link builds a client with its
/// own timeouts, and every node known when it was found (the seeds, then the nodes of its slot
/// map), where a subscription may listen.
pub(crate) struct Cluster {
    seeds: Vec<ConnectionInfo>,
    username: Option<String>,
    password: Option<String>,
    nodes: Vec<redis::Client>,
}

impl Cluster {
    /// Every node known when the cluster was found, seeds first.
    pub(crate) fn nodes(&self) -> &[redis::Client] {
        &self.nodes
    }

    /// A client over the seeds whose every request, retries and redirects included, gets its
    /// reply within `timeouts.response`.
    ///
    /// The timeouts are set on the builder, not passed per connection (`ClusterConfig`): the
    /// client library bounds a whole request (`overall_response_timeout`) by the response
    /// timeout the builder had, and a `ClusterConfig` sets only each attempt's. Without the
    /// overall bound, a request to a master that hangs (SIGSTOP, a frozen VM) is retried on
    /// the same node after each attempt's timeout, up to 16 times, because only a reply
    /// (MOVED, READONLY) makes the connection refresh its slot map: minutes on a node that was
    /// replaced seconds after it hung. With it, the request fails within the response timeout,
    /// the connection is replaced, and the new one reads the slot map from a node that answers.
    fn client(&self, timeouts: Timeouts) -> RedisResult<ClusterClient> {
        let mut builder = ClusterClient::builder(self.seeds.clone())
            .tcp_settings(super::tcp_settings())
            .connection_timeout(timeouts.connect)
            .response_timeout(timeouts.response);
        if let Some(user) = &self.username {
            builder = builder.username(user);
        }
        if let Some(password) = &self.password {
            builder = builder.password(password);
        }
        builder.build()
    }
}

struct Inner {
    seeds: Seeds,
    topology: OnceCell<Topology>,
    /// Where in a cluster's node list the next subscription starts trying: random at first,
    /// then just past the node the last one was opened on, so that a listener whose node
    /// hung tries the others before that one again.
    pubsub_next: AtomicUsize,
}

/// The deployment a URL names; see the module doc. Holding one opens no connection. Cheap to
/// clone; clones share what was found about the deployment.
#[derive(Clone)]
pub(crate) struct Endpoint {
    url: String,
    inner: Arc<Inner>,
}

impl Endpoint {
    /// Parses `url` (one URL, several comma-separated seed URLs, or a Sentinel URL); no
    /// connection is made.
    pub(crate) fn parse(url: &str) -> RedisResult<Endpoint> {
        let seeds = match Sentinels::parse(url) {
            Some(sentinels) => Seeds::Sentinel(Box::new(sentinels?)),
            None => {
                let clients = url
                    .split(',')
                    .map(|seed| super::client(seed.trim()))
                    .collect::<RedisResult<Vec<_>>>()?;
                Seeds::Nodes(clients)
            }
        };
        Ok(Endpoint {
            url: url.to_string(),
            inner: Arc::new(Inner {
                seeds,
                topology: OnceCell::new(),
                pubsub_next: AtomicUsize::new(rand::random_range(0..1024)),
            }),
        })
    }

    /// The URL as given (it may hold a password).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The kind of deployment, found on first use and kept.
    pub(crate) async fn topology(&self) -> RedisResult<&Topology> {
        self.inner
            .topology
            .get_or_try_init(|| async {
                match &self.inner.seeds {
                    Seeds::Nodes(seeds) => detect(seeds).await,
                    Seeds::Sentinel(_) => Ok(Topology::Sentinel),
                }
            })
            .await
    }

    /// Opens a new link with `timeouts`.
    pub(crate) async fn link(&self, timeouts: Timeouts) -> RedisResult<Link> {
        match self.topology().await? {
            Topology::Single(client) => Ok(Link::Single(
                client
                    .get_multiplexed_async_connection_with_config(&timeouts.single())
                    .await?,
            )),
            Topology::Cluster(cluster) => Ok(Link::Cluster(
                cluster.client(timeouts)?.get_async_connection().await?,
            )),
            Topology::Sentinel => Ok(Link::Single(
                self.sentinel_master()
                    .await?
                    .get_multiplexed_async_connection_with_config(&timeouts.single())
                    .await?,
            )),
        }
    }

    /// The clients a subscription may listen on, in the order to try them: the node itself,
    /// the master Sentinel names now, or every known node of a cluster (a message published
    /// on any node of a cluster reaches subscribers on every node), starting at a random one
    /// so that workers spread over the nodes, and after a subscription ended, at the node
    /// after the one it was on (see [`Endpoint::pubsub_opened`]).
    pub(crate) async fn pubsub_clients(&self) -> RedisResult<Vec<redis::Client>> {
        match self.topology().await? {
            Topology::Single(client) => Ok(vec![client.clone()]),
            Topology::Sentinel => Ok(vec![self.sentinel_master().await?]),
            Topology::Cluster(cluster) => {
                let mut nodes = cluster.nodes().to_vec();
                if !nodes.is_empty() {
                    let start = self.inner.pubsub_next.load(Ordering::Relaxed) % nodes.len();
                    nodes.rotate_left(start);
                }
                Ok(nodes)
            }
        }
    }

    /// Records that a subscription was opened on the `index`th client that
    /// [`Endpoint::pubsub_clients`] gave, out of `count`: the next one starts after it.
    pub(crate) fn pubsub_opened(&self, index: usize, count: usize) {
        if count > 1 {
            let start = self.inner.pubsub_next.load(Ordering::Relaxed) % count;
            self.inner
                .pubsub_next
                .store((start + index + 1) % count, Ordering::Relaxed);
        }
    }

    async fn sentinel_master(&self) -> RedisResult<redis::Client> {
        match &self.inner.seeds {
            Seeds::Sentinel(sentinels) => sentinels.master().await,
            Seeds::Nodes(_) => Err(RedisError::from((
                ErrorKind::InvalidClientConfig,
                "not a Sentinel URL",
            ))),
        }
    }
}

/// The timeouts of the connection that asks a seed what it is.
const DETECT: Timeouts = Timeouts {
    connect: Duration::from_secs(5),
    response: Duration::from_secs(10),
};

/// Asks the seeds in turn whether they are in cluster mode; the first that answers decides.
async fn detect(seeds: &[redis::Client]) -> RedisResult<Topology> {
    let mut last_error = None;
    for seed in seeds {
        match cluster_enabled(seed).await {
            Ok(false) if seeds.len() > 1 => {
                return Err(RedisError::from((
                    ErrorKind::InvalidClientConfig,
                    "several URLs name the seed nodes of a Redis Cluster, but this node is not in cluster mode",
                    seed.get_connection_info().addr().to_string(),
                )));
            }
            Ok(false) => return Ok(Topology::Single(seed.clone())),
            Ok(true) => return found_cluster(seeds, seed).await,
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| (ErrorKind::InvalidClientConfig, "no URL given").into()))
}

/// Whether `seed` says `cluster_enabled:1`. A server that refuses INFO (an ACL) is taken for a
/// single node; a refused login or an unreachable server is an error.
async fn cluster_enabled(seed: &redis::Client) -> RedisResult<bool> {
    let mut conn = seed
        .get_multiplexed_async_connection_with_config(&DETECT.single())
        .await?;
    match redis::cmd("INFO")
        .arg("cluster")
        .query_async::<String>(&mut conn)
        .await
    {
        Ok(info) => Ok(info.lines().any(|l| l.trim() == "cluster_enabled:1")),
        Err(e) if super::is_refused_login(&e) || e.is_io_error() => Err(e),
        Err(_) => Ok(false),
    }
}

/// The cluster `answered` belongs to: its seeds and credentials, and the nodes of its slot map.
async fn found_cluster(seeds: &[redis::Client], answered: &redis::Client) -> RedisResult<Topology> {
    let infos: Vec<_> = seeds
        .iter()
        .map(|s| s.get_connection_info().clone())
        .collect();
    let settings = answered.get_connection_info().redis_settings();
    let cluster = Cluster {
        seeds: infos,
        username: settings.username().map(str::to_string),
        password: settings.password().map(str::to_string),
        nodes: Vec::new(),
    };
    // Checked once here, so that a bad seed list fails where the cluster is found.
    cluster.client(DETECT)?;
    let mut nodes = seeds.to_vec();
    for (host, port) in slot_map_nodes(answered).await.unwrap_or_default() {
        let info = answered.get_connection_info();
        let addr = match info.addr() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host,
                port,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => ConnectionAddr::Tcp(host, port),
        };
        if let Ok(node) = super::client(info.clone().set_addr(addr))
            && !nodes
                .iter()
                .any(|n| n.get_connection_info().addr() == node.get_connection_info().addr())
        {
            nodes.push(node);
        }
    }
    Ok(Topology::Cluster(Cluster { nodes, ..cluster }))
}

/// Every node address in `seed`'s `CLUSTER SLOTS` reply.
async fn slot_map_nodes(seed: &redis::Client) -> RedisResult<Vec<(String, u16)>> {
    let mut conn = seed
        .get_multiplexed_async_connection_with_config(&DETECT.single())
        .await?;
    let slots: Value = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut conn)
        .await?;
    Ok(super::link::slot_map_nodes(slots, false))
}
