//! A redis-server of the bench's own: a free port, its own temp dir, nothing persisted. The
//! binary is `REDIS_SERVER` when set, else `redis-server` from `PATH`. [`Cluster`]: several
//! of them in cluster mode, joined into a Redis Cluster of masters only.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    dir: PathBuf,
    pub port: u16,
    pub url: String,
}

impl Server {
    pub fn start() -> Server {
        Server::launch(free_port(false), &[])
    }

    /// A node in cluster mode (its cluster bus on port + 10000), not yet part of a cluster.
    fn start_cluster_node() -> Server {
        let settings = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "5000",
        ];
        Server::launch(free_port(true), &settings)
    }

    fn launch(port: u16, settings: &[&str]) -> Server {
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let dir =
            std::env::temp_dir().join(format!("streamworker-bench-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("bench temp dir");
        let child = Command::new(&binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .args(settings)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {binary} (set REDIS_SERVER to its path): {e}")
            });
        let url = format!("redis://127.0.0.1:{port}");
        let server = Server {
            child,
            dir,
            port,
            url,
        };
        let client = redis::Client::open(server.url.as_str()).expect("url");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut c).is_ok()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{binary} did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// The redis-server's context switches so far, from `/proc/PID/status`: voluntary (it
    /// waited for its connections) and involuntary (it was preempted); zeros where there is no
    /// `/proc`.
    pub fn context_switches(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        (
            field("voluntary_ctxt_switches:"),
            field("nonvoluntary_ctxt_switches:"),
        )
    }

    /// A plain multiplexed connection, as the floor's minimal client uses.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .expect("url")
            .get_multiplexed_async_connection_with_config(
                // Longer than any BLOCK the floor sends.
                &redis::AsyncConnectionConfig::new()
                    .set_response_timeout(Some(Duration::from_secs(30))),
            )
            .await
            .expect("connect to the bench redis-server")
    }

    /// `redis_version` as INFO gives it: on a Valkey, the Redis release it is compatible with.
    pub async fn redis_version(&self) -> String {
        self.info_field("server", "redis_version").await
    }

    /// The server and its own version: `Redis 7.0.15`, `Valkey 8.1.1`.
    pub async fn label(&self) -> String {
        match self.try_info_field("server", "valkey_version").await {
            Some(version) => format!("Valkey {version}"),
            None => format!("Redis {}", self.redis_version().await),
        }
    }

    /// Bytes of memory Redis has allocated (`used_memory`).
    pub async fn used_memory(&self) -> u64 {
        self.info_field("memory", "used_memory")
            .await
            .parse()
            .expect("used_memory is a number")
    }

    /// CPU time the server has used so far, user plus system, in seconds.
    pub async fn cpu_seconds(&self) -> f64 {
        let sys: f64 = self
            .info_field("cpu", "used_cpu_sys")
            .await
            .parse()
            .expect("cpu");
        let user: f64 = self
            .info_field("cpu", "used_cpu_user")
            .await
            .parse()
            .expect("cpu");
        sys + user
    }

    async fn info_field(&self, section: &str, name: &str) -> String {
        self.try_info_field(section, name)
            .await
            .unwrap_or_else(|| panic!("INFO has no {name}"))
    }

    async fn try_info_field(&self, section: &str, name: &str) -> Option<String> {
        self.info(&[section])
            .await
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_string())
    }

    /// `INFO` of the sections named, taken in one call.
    pub async fn info(&self, sections: &[&str]) -> String {
        redis::cmd("INFO")
            .arg(sections)
            .query_async(&mut self.conn().await)
            .await
            .expect("INFO")
    }

    /// Empties the server between measurements.
    pub async fn flush(&self) {
        redis::cmd("FLUSHALL")
            .arg("SYNC")
            .query_async::<()>(&mut self.conn().await)
            .await
            .expect("FLUSHALL");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free port on 127.0.0.1; for a cluster node, one whose bus port (port + 10000) is free too.
fn free_port(cluster_bus: bool) -> u16 {
    for _ in 0..1_000 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        if !cluster_bus
            || (port <= 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok())
        {
            return port;
        }
    }
    panic!("no free port with a free cluster bus port")
}

/// A Redis Cluster of the bench's own: masters only, each a [`Server`] in cluster mode, slots
/// shared out by `redis-cli --cluster create` (redis-cli from `PATH`). Every node is killed
/// when it is dropped.
pub struct Cluster {
    /// The masters, in the order of the slots they serve: the first serves slot 0.
    pub masters: Vec<Server>,
    /// Who serves which slots: (first, last, index in `masters`).
    ranges: Vec<(u16, u16, usize)>,
}

impl Cluster {
    /// Starts `masters` nodes, joins them and waits until each of them reports
    /// `cluster_state:ok` and sees every slot served by one of them.
    pub fn start(masters: usize) -> Cluster {
        let nodes: Vec<Server> = (0..masters).map(|_| Server::start_cluster_node()).collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli (apt-get install redis-tools): {e}"));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let ranges = loop {
            let seen: Result<Vec<_>, String> =
                nodes.iter().map(|n| n.cluster_view(&nodes)).collect();
            match seen {
                Ok(views) if views.windows(2).all(|w| w[0] == w[1]) => break views[0].clone(),
                Ok(_) => assert!(Instant::now() < deadline, "the nodes disagree on the slots"),
                Err(why) => assert!(Instant::now() < deadline, "cluster not ready: {why}"),
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // Masters in the order of the lowest slot each serves.
        let mut order: Vec<usize> = Vec::new();
        for &(_, _, node) in &ranges {
            if !order.contains(&node) {
                order.push(node);
            }
        }
        assert_eq!(order.len(), masters, "every node serves slots");
        let ranges = ranges
            .iter()
            .map(|&(first, last, node)| (first, last, order.iter().position(|&o| o == node)))
            .map(|(first, last, m)| (first, last, m.expect("listed above")))
            .collect();
        let mut nodes: Vec<Option<Server>> = nodes.into_iter().map(Some).collect();
        let masters = order
            .iter()
            .map(|&node| nodes[node].take().expect("each node once"))
            .collect();
        Cluster { masters, ranges }
    }

    /// Every node's URL, comma-separated: streamworker's form for a cluster's seeds.
    pub fn seeds(&self) -> String {
        let urls: Vec<&str> = self.masters.iter().map(|m| m.url.as_str()).collect();
        urls.join(",")
    }

    /// The index in [`Cluster::masters`] of the master serving `slot`.
    pub fn master_of(&self, slot: u16) -> usize {
        self.ranges
            .iter()
            .find(|&&(first, last, _)| (first..=last).contains(&slot))
            .map(|&(_, _, m)| m)
            .unwrap_or_else(|| panic!("no master serves slot {slot}"))
    }

    /// The hash slot of `key`, as the cluster computes it (`CLUSTER KEYSLOT`).
    pub async fn slot_of(&self, key: &str) -> u16 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut self.masters[0].conn().await)
            .await
            .expect("CLUSTER KEYSLOT")
    }
}

impl Server {
    /// The slot ranges this node sees served, as (first, last, index in `nodes` of the master)
    /// sorted by first slot; an error until it reports `cluster_state:ok` and every slot is
    /// served by one of `nodes`.
    fn cluster_view(&self, nodes: &[Server]) -> Result<Vec<(u16, u16, usize)>, String> {
        let mut conn = redis::Client::open(self.url.as_str())
            .and_then(|c| c.get_connection())
            .map_err(|e| e.to_string())?;
        let info: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query(&mut conn)
            .map_err(|e| e.to_string())?;
        if !info.lines().any(|l| l.trim() == "cluster_state:ok") {
            return Err(format!("{}: cluster_state is not ok", self.port));
        }
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query(&mut conn)
            .map_err(|e| e.to_string())?;
        let mut ranges = Vec::new();
        // `<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.len() < 8 || !words[2].split(',').any(|f| f == "master") {
                continue;
            }
            let port: u16 = words[1]
                .split(['@', ','])
                .next()
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| p.parse().ok())
                .ok_or_else(|| format!("odd CLUSTER NODES line: {line}"))?;
            let node = nodes
                .iter()
                .position(|n| n.port == port)
                .ok_or_else(|| format!("{port} is no node of this cluster"))?;
            for range in words[8..].iter().filter(|w| !w.starts_with('[')) {
                let (first, last) = range.split_once('-').unwrap_or((range, range));
                let slot = |s: &str| s.parse::<u16>().map_err(|_| format!("odd slot: {line}"));
                ranges.push((slot(first)?, slot(last)?, node));
            }
        }
        ranges.sort_unstable();
        let served: u32 = ranges.iter().map(|&(f, l, _)| u32::from(l - f) + 1).sum();
        if served != 16_384 {
            return Err(format!("{}: {served} slots served", self.port));
        }
        Ok(ranges)
    }
}
