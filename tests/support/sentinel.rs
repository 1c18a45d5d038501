//! A Redis Sentinel set-up of one test: a master, one replica of it (`replicaof`) and three
//! sentinels (`redis-server --sentinel`, each with a `sentinel.conf` generated in its own temp
//! dir), every one on a free port; all killed when dropped, on panic paths too.
//!
//! The sentinels monitor the master as [`RedisSentinel::MASTER_NAME`] with quorum 2,
//! `down-after-milliseconds 1000`, `failover-timeout 5000` and `resolve-hostnames no`. Every
//! wait polls a condition until a deadline and blocks the calling thread (see `cluster.rs`).

use super::cluster::{Node, Role, poll, redis_cli_at};
use super::wait::WAIT;

/// Two data nodes and three sentinels; killed when dropped.
pub struct RedisSentinel {
    /// The master and the replica, in the order they were started (roles change by fail-over).
    data: Vec<Node>,
    sentinels: Vec<Node>,
}

impl RedisSentinel {
    /// The name the sentinels monitor the master under.
    pub const MASTER_NAME: &str = "mymaster";

    /// Starts the master, then its replica (returning once the replica's link is up), then the
    /// sentinels; returns once every sentinel reports the master, knows the replica and knows
    /// the two other sentinels.
    pub fn start() -> RedisSentinel {
        let mut set = RedisSentinel {
            data: Vec::new(),
            sentinels: Vec::new(),
        };
        set.data.push(Node::start(Role::Data, &[], &[]));
        let master = set.data[0].port();
        set.data.push(Node::start(
            Role::Data,
            &[format!("replicaof 127.0.0.1 {master}")],
            &[master],
        ));
        let replica = set.data[1].port();
        poll(WAIT, "the replica to sync with the master", || {
            set.replicates(replica, master)
        });
        let conf = [
            "sentinel resolve-hostnames no".to_string(),
            format!(
                "sentinel monitor {} 127.0.0.1 {master} 2",
                Self::MASTER_NAME
            ),
            format!(
                "sentinel down-after-milliseconds {} 1000",
                Self::MASTER_NAME
            ),
            format!("sentinel failover-timeout {} 5000", Self::MASTER_NAME),
        ];
        for _ in 0..3 {
            let taken: Vec<u16> = set
                .data_ports()
                .into_iter()
                .chain(set.sentinel_ports())
                .collect();
            set.sentinels
                .push(Node::start(Role::Sentinel, &conf, &taken));
        }
        poll(WAIT, "every sentinel to know the whole set-up", || {
            for sentinel in &set.sentinels {
                let port = sentinel.port();
                let reported = Self::reported_master(sentinel)?;
                if reported != master {
                    return Err(format!("sentinel {port} reports master {reported}"));
                }
                let replicas = Self::listed(sentinel, "replicas")?;
                if replicas != [replica] {
                    return Err(format!("sentinel {port} knows replicas {replicas:?}"));
                }
                let mut others = Self::listed(sentinel, "sentinels")?;
                others.sort_unstable();
                let mut expected: Vec<u16> = set
                    .sentinel_ports()
                    .into_iter()
                    .filter(|&p| p != port)
                    .collect();
                expected.sort_unstable();
                if others != expected {
                    return Err(format!("sentinel {port} knows sentinels {others:?}"));
                }
            }
            Ok(())
        });
        set
    }

    /// `redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/mymaster`
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinel_ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+sentinel://{}/{}", hosts.join(","), Self::MASTER_NAME)
    }

    /// The master's port as the first sentinel reports it now
    /// (`SENTINEL get-master-addr-by-name`).
    pub fn master_port(&self) -> u16 {
        Self::reported_master(&self.sentinels[0]).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The data node that is not the master now.
    pub fn replica_port(&self) -> u16 {
        let master = self.master_port();
        self.other(master)
    }

    /// The master and the replica, in the order they were started.
    pub fn data_ports(&self) -> Vec<u16> {
        self.data.iter().map(Node::port).collect()
    }

    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(Node::port).collect()
    }

    /// `redis-cli -h 127.0.0.1 -p PORT ARGS` (with `-e`); returns its trimmed stdout, panics with
    /// its stderr when it fails.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        redis_cli_at(port, args)
    }

    /// The log of the node or sentinel on `port`, for failure messages.
    pub fn log(&self, port: u16) -> String {
        self.node(port).log()
    }

    /// `SENTINEL FAILOVER mymaster` on the first sentinel; waits until every sentinel reports
    /// the other data node as master, that node's role is master, and the old master replicates
    /// from it with its link up.
    ///
    /// Sentinel reconfigures a reachable old master only once it has seen it report the wrong
    /// role for 8 s, between INFO polls 10 s apart (about 11 s measured with Redis 7.0). To keep
    /// tests quick this sends the old master the same `REPLICAOF` itself as soon as the
    /// sentinels have switched; the sentinels then find it already a replica of the new master.
    pub fn failover(&self) {
        let old = self.master_port();
        let new = self.other(old);
        self.cli(
            self.sentinels[0].port(),
            &["SENTINEL", "FAILOVER", Self::MASTER_NAME],
        );
        self.wait_switched(new);
        let old_node = self.node(old);
        if old_node.is_running() && Self::role(old_node).is_ok_and(|r| r == "master") {
            let port = new.to_string();
            self.cli(old, &["REPLICAOF", "127.0.0.1", &port]);
        }
        poll(
            WAIT,
            &format!("the old master {old} to replicate from {new}"),
            || self.replicates(old, new),
        );
    }

    /// SIGKILLs the current master (it stays down); waits until every sentinel reports the
    /// replica as master and its role is master.
    pub fn kill_master(&mut self) {
        let old = self.master_port();
        let new = self.other(old);
        self.node_mut(old).kill();
        self.wait_switched(new);
    }

    fn wait_switched(&self, new: u16) {
        poll(WAIT, &format!("the sentinels to promote {new}"), || {
            for sentinel in &self.sentinels {
                let reported = Self::reported_master(sentinel)?;
                if reported != new {
                    return Err(format!(
                        "sentinel {} reports master {reported}",
                        sentinel.port()
                    ));
                }
            }
            match Self::role(self.node(new))? {
                role if role == "master" => Ok(()),
                role => Err(format!("{new} has role {role}")),
            }
        });
    }

    fn node(&self, port: u16) -> &Node {
        self.data
            .iter()
            .chain(&self.sentinels)
            .find(|n| n.port() == port)
            .unwrap_or_else(|| panic!("{port} is no node of this set-up"))
    }

    fn node_mut(&mut self, port: u16) -> &mut Node {
        self.data
            .iter_mut()
            .chain(&mut self.sentinels)
            .find(|n| n.port() == port)
            .unwrap_or_else(|| panic!("{port} is no node of this set-up"))
    }

    /// The data node other than `port`.
    fn other(&self, port: u16) -> u16 {
        self.data_ports()
            .into_iter()
            .find(|&p| p != port)
            .expect("two data nodes")
    }

    /// `role` of INFO replication: `master` or `slave`.
    fn role(node: &Node) -> Result<String, String> {
        node.info_field("replication", "role")
    }

    /// Whether data node `replica` replicates from `master` with its link up.
    fn replicates(&self, replica: u16, master: u16) -> Result<(), String> {
        let info = self.node(replica).info("replication")?;
        let field = |name: &str| {
            info.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let port = master.to_string();
        if field("role") == "slave"
            && field("master_port") == port
            && field("master_link_status") == "up"
        {
            Ok(())
        } else {
            Err(format!(
                "{replica}: role {}, master_port {}, master_link_status {}",
                field("role"),
                field("master_port"),
                field("master_link_status")
            ))
        }
    }

    /// The master's port that `sentinel` reports.
    fn reported_master(sentinel: &Node) -> Result<u16, String> {
        let addr: Option<Vec<String>> =
            sentinel.run(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self::MASTER_NAME])?;
        let addr = addr.ok_or_else(|| format!("sentinel {} knows no master", sentinel.port()))?;
        addr.get(1)
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("sentinel {}: odd address {addr:?}", sentinel.port()))
    }

    /// Ports of the instances `SENTINEL replicas|sentinels mymaster` lists.
    fn listed(sentinel: &Node, what: &str) -> Result<Vec<u16>, String> {
        let entries: Vec<Vec<String>> = sentinel.run(&["SENTINEL", what, Self::MASTER_NAME])?;
        entries
            .iter()
            .map(|fields| {
                fields
                    .chunks(2)
                    .find(|kv| kv[0] == "port")
                    .and_then(|kv| kv.get(1))
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| format!("sentinel {}: odd entry {fields:?}", sentinel.port()))
            })
            .collect()
    }
}
