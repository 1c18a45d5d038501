//! A Redis Cluster of one test: `masters` masters with `replicas` replicas each, every node its
//! own `redis-server` on a free port (its cluster bus port, port + 10000, free too) with its own
//! temp dir, no persistence, the log in that dir; every node is killed when the cluster is
//! dropped, on panic paths too. Tests never touch the Redis on 6379.
//!
//! Settings of every node, beyond the defaults:
//! - `cluster-node-timeout 2000` ([`NODE_TIMEOUT_MS`]): a killed or stopped master is marked
//!   failed, and its replica promoted, within a few seconds;
//! - `cluster-replica-validity-factor 0`: a replica always may take over, however long its
//!   master has been unreachable (a test that stops a master for a while still gets a fail-over);
//! - `cluster-require-full-coverage` is left at its default, `yes`: `cluster_state:ok` then
//!   means every slot is served, so [`RedisCluster::wait_ok`] waits for a whole cluster.
//!
//! Every wait polls a condition until a deadline (never a fixed sleep) and fails naming what it
//! waited for and what it saw last. The waits block the calling thread: from a tokio test whose
//! workers must keep running meanwhile, use a multi-thread runtime or `spawn_blocking`.
//!
//! [`Node`] (one server process) and [`redis_cli`] serve `sentinel.rs` as well.

use super::server::free_port;
use super::wait::WAIT;
use rustix::process::{Pid, Signal, kill_process};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `cluster-node-timeout` of every node, in ms.
pub const NODE_TIMEOUT_MS: u64 = 2000;

/// Hash slots of a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// How often the waits look again.
const POLL: Duration = Duration::from_millis(20);

/// Keys a migration step moves when none is asked for: one `CLUSTER GETKEYSINSLOT` batch.
const BATCH: usize = 100;

/// Polls `check` until it returns `Ok`, every [`POLL`]; after `timeout` panics naming `what` and
/// the last reason `check` gave.
pub fn poll<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return value,
            Err(why) if Instant::now() > deadline => {
                panic!("timed out after {timeout:?} waiting for: {what}; last seen: {why}")
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Runs `redis-cli ARGS` (from PATH) with `-e`, so an error reply fails it; returns its trimmed
/// stdout; panics with its stderr when it fails, and kills it when it outlives [`WAIT`].
pub fn redis_cli(args: &[&str]) -> String {
    let child = Command::new("redis-cli")
        .arg("-e")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("redis-cli must be installed (apt-get install redis-tools): {e}")
        });
    let pid = child.id();
    let (done, outcome) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match outcome.recv_timeout(WAIT) {
        Ok(Ok(out)) => {
            let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert!(
                out.status.success(),
                "redis-cli {args:?} failed ({}): {}{stdout}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        }
        Ok(Err(e)) => panic!("redis-cli {args:?}: {e}"),
        Err(_) => {
            // Still running, so not reaped: the pid is still the child's.
            if let Some(pid) = Pid::from_raw(pid as i32) {
                let _ = kill_process(pid, Signal::KILL);
            }
            panic!("redis-cli {args:?} did not finish within {WAIT:?}")
        }
    }
}

/// `redis-cli -h 127.0.0.1 -p PORT ARGS`, as [`redis_cli`].
pub fn redis_cli_at(port: u16, args: &[&str]) -> String {
    let port = port.to_string();
    let all: Vec<&str> = ["-h", "127.0.0.1", "-p", port.as_str()]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    redis_cli(&all)
}

/// What a [`Node`] runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A plain data server (with persistence off).
    Data,
    /// A data server with `cluster-enabled yes`: its bus port, port + 10000, must be free too.
    Cluster,
    /// `redis-server --sentinel`.
    Sentinel,
}

/// One `redis-server` process on a free port, with its own temp dir holding its generated config
/// file (`redis.conf` or `sentinel.conf`) and its log (`redis.log`); killed when dropped.
pub struct Node {
    port: u16,
    role: Role,
    dir: tempfile::TempDir,
    child: Option<Child>,
    paused: AtomicBool,
    /// The connection the fixture's own queries reuse; dropped on any error.
    conn: Mutex<Option<redis::Connection>>,
}

impl Node {
    /// Starts a server with the config lines `extra` (after `port`, `bind`, `dir`, `logfile` and,
    /// for data servers, `save ""` and `appendonly no`), on a port clashing with none of `taken`
    /// (nor with their bus ports); tries other ports when one turns out taken.
    pub fn start(role: Role, extra: &[String], taken: &[u16]) -> Node {
        let mut node = Node {
            port: 0,
            role,
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
            paused: AtomicBool::new(false),
            conn: Mutex::new(None),
        };
        for _ in 0..5 {
            node.port = pick_port(role == Role::Cluster, taken);
            if node.spawn(extra) {
                return node;
            }
        }
        panic!(
            "redis-server ({role:?}) did not start; log:\n{}",
            node.log()
        );
    }

    fn config_name(&self) -> &'static str {
        match self.role {
            Role::Sentinel => "sentinel.conf",
            Role::Data | Role::Cluster => "redis.conf",
        }
    }

    fn spawn(&mut self, extra: &[String]) -> bool {
        let dir = self.dir.path();
        let mut conf = vec![
            format!("port {}", self.port),
            "bind 127.0.0.1".to_string(),
            format!("dir {}", quoted(dir)),
            format!("logfile {}", quoted(&dir.join("redis.log"))),
        ];
        if self.role != Role::Sentinel {
            conf.push("save \"\"".to_string());
            conf.push("appendonly no".to_string());
        }
        conf.extend(extra.iter().cloned());
        let file = dir.join(self.config_name());
        std::fs::write(&file, conf.join("\n") + "\n").expect("write the config file");
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let mut cmd = Command::new(bin);
        cmd.arg(&file);
        if self.role == Role::Sentinel {
            cmd.arg("--sentinel");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                return false;
            }
            if self.query::<String>(&redis::cmd("PING")).is_ok() {
                return true;
            }
            std::thread::sleep(POLL);
        }
        self.kill();
        false
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// Running and not stopped.
    pub fn is_live(&self) -> bool {
        self.child.is_some() && !self.paused.load(Ordering::SeqCst)
    }

    /// Not killed (it may be stopped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn signal(&self, signal: Signal) {
        let child = self
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("node {} was killed", self.port));
        let pid = Pid::from_raw(child.id() as i32).expect("a child's pid");
        kill_process(pid, signal).unwrap_or_else(|e| panic!("signal node {}: {e}", self.port));
    }

    /// SIGSTOPs the server: it keeps its port and connections but answers nothing.
    pub fn pause(&self) {
        self.signal(Signal::STOP);
        self.paused.store(true, Ordering::SeqCst);
    }

    /// SIGCONTs a server [`Node::pause`] stopped.
    pub fn resume(&self) {
        self.signal(Signal::CONT);
        self.paused.store(false, Ordering::SeqCst);
    }

    /// SIGKILLs the server (continuing it first if it is stopped) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.paused.swap(false, Ordering::SeqCst)
                && let Some(pid) = Pid::from_raw(child.id() as i32)
            {
                let _ = kill_process(pid, Signal::CONT);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Runs `cmd` on the fixture's own connection (opened, and after an error reopened, with
    /// a 1 s connect and 2 s read timeout); any error, error replies included, as text.
    pub fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, String> {
        let mut slot = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            let client = redis::Client::open(self.url()).map_err(|e| e.to_string())?;
            let conn = client
                .get_connection_with_timeout(Duration::from_secs(1))
                .map_err(|e| format!("{}: {e}", self.port))?;
            let timeout = Some(Duration::from_secs(2));
            conn.set_read_timeout(timeout).map_err(|e| e.to_string())?;
            conn.set_write_timeout(timeout).map_err(|e| e.to_string())?;
            *slot = Some(conn);
        }
        let conn = slot.as_mut().expect("connected above");
        cmd.query::<T>(conn).map_err(|e| {
            // A reply may still be on its way (a timeout): never reuse the connection.
            *slot = None;
            format!("{}: {e}", self.port)
        })
    }

    /// [`Node::query`] of a command given as words.
    pub fn run<T: redis::FromRedisValue>(&self, args: &[&str]) -> Result<T, String> {
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        self.query(&cmd)
    }

    /// `INFO SECTION` as `field:value` pairs.
    pub fn info(&self, section: &str) -> Result<Vec<(String, String)>, String> {
        let text: String = self.run(&["INFO", section])?;
        Ok(text
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect())
    }

    /// One field of `INFO SECTION`.
    pub fn info_field(&self, section: &str, field: &str) -> Result<String, String> {
        self.info(section)?
            .into_iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("{}: no {field} in INFO {section}", self.port))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A path as a double-quoted config value.
fn quoted(path: &Path) -> String {
    let text = path.to_str().expect("temp dir paths are UTF-8");
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A free port clashing with none of `taken` nor their bus ports; with `bus`, also at most 55000
/// and with its own bus port (port + 10000) free.
fn pick_port(bus: bool, taken: &[u16]) -> u16 {
    let clashes = |port: u16| {
        taken
            .iter()
            .any(|&t| t == port || t.checked_add(10000) == Some(port))
    };
    for _ in 0..10_000 {
        let port = free_port();
        if clashes(port) {
            continue;
        }
        if bus
            && (port > 55000
                || clashes(port + 10000)
                || TcpListener::bind(("127.0.0.1", port + 10000)).is_err())
        {
            continue;
        }
        return port;
    }
    panic!("found no free port (bus port too: {bus})")
}

/// One line of `CLUSTER NODES`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    pub id: String,
    /// 0 for a node without an address yet.
    pub port: u16,
    /// `myself`, `master`, `slave`, `fail?`, `fail`, `handshake`, `noaddr`, ...
    pub flags: Vec<String>,
    /// The id of its master, for a replica.
    pub master_id: Option<String>,
    /// Slot ranges it serves (first, last), both included; importing/migrating marks left out.
    pub slots: Vec<(u16, u16)>,
}

impl ClusterNode {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    pub fn is_master(&self) -> bool {
        self.has_flag("master")
    }
}

/// The cluster as one node sees it (`CLUSTER NODES`).
#[derive(Clone, Debug)]
pub struct Topology {
    pub nodes: Vec<ClusterNode>,
}

/// What every node must agree on: the role and master of each of the given nodes, and which node
/// serves which slots.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    roles: Vec<(u16, bool, Option<u16>)>,
    slots: Vec<(u16, u16, u16)>,
}

impl Topology {
    pub fn parse(text: &str) -> Result<Topology, String> {
        let mut nodes = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.len() < 8 {
                return Err(format!("odd CLUSTER NODES line: {line}"));
            }
            let addr = words[1].split(['@', ',']).next().unwrap_or("");
            let port = match addr.rsplit_once(':') {
                Some((_, port)) => port.parse().map_err(|_| format!("odd address: {line}"))?,
                None => 0,
            };
            let mut slots = Vec::new();
            for word in &words[8..] {
                if word.starts_with('[') {
                    continue;
                }
                let (first, last) = word.split_once('-').unwrap_or((word, word));
                let parse = |s: &str| s.parse::<u16>().map_err(|_| format!("odd slot: {line}"));
                slots.push((parse(first)?, parse(last)?));
            }
            nodes.push(ClusterNode {
                id: words[0].to_string(),
                port,
                flags: words[2].split(',').map(str::to_string).collect(),
                master_id: (words[3] != "-").then(|| words[3].to_string()),
                slots,
            });
        }
        Ok(Topology { nodes })
    }

    /// The node that answered.
    pub fn myself(&self) -> Option<&ClusterNode> {
        self.nodes.iter().find(|n| n.has_flag("myself"))
    }

    pub fn node(&self, port: u16) -> Option<&ClusterNode> {
        self.nodes.iter().find(|n| n.port == port)
    }

    pub fn id_of(&self, port: u16) -> Option<&str> {
        self.node(port).map(|n| n.id.as_str())
    }

    fn port_of_id(&self, id: &str) -> Option<u16> {
        self.nodes.iter().find(|n| n.id == id).map(|n| n.port)
    }

    pub fn is_master(&self, port: u16) -> bool {
        self.node(port).is_some_and(ClusterNode::is_master)
    }

    /// The master a replica replicates from.
    pub fn master_of(&self, replica: u16) -> Option<u16> {
        let node = self.node(replica)?;
        if node.is_master() {
            return None;
        }
        self.port_of_id(node.master_id.as_deref()?)
    }

    /// The replicas of `master`, by port.
    pub fn replicas_of(&self, master: u16) -> Vec<u16> {
        let mut replicas: Vec<u16> = self
            .nodes
            .iter()
            .filter(|n| !n.is_master() && n.port != master)
            .filter(|n| self.master_of(n.port) == Some(master))
            .map(|n| n.port)
            .collect();
        replicas.sort_unstable();
        replicas
    }

    /// The node serving `slot`.
    pub fn owner(&self, slot: u16) -> Option<u16> {
        self.nodes
            .iter()
            .find(|n| n.slots.iter().any(|&(a, b)| a <= slot && slot <= b))
            .map(|n| n.port)
    }

    /// Masters serving at least one slot, ordered by the lowest slot each serves.
    pub fn masters(&self) -> Vec<u16> {
        let mut masters: Vec<(u16, u16)> = self
            .nodes
            .iter()
            .filter(|n| n.is_master())
            .filter_map(|n| {
                n.slots
                    .iter()
                    .map(|&(a, _)| a)
                    .min()
                    .map(|low| (low, n.port))
            })
            .collect();
        masters.sort_unstable();
        masters.into_iter().map(|(_, port)| port).collect()
    }

    /// Slots no node serves.
    pub fn uncovered(&self) -> usize {
        let mut covered = vec![false; SLOTS as usize];
        for node in &self.nodes {
            for &(a, b) in &node.slots {
                for slot in a..=b.min(SLOTS - 1) {
                    covered[slot as usize] = true;
                }
            }
        }
        covered.iter().filter(|c| !**c).count()
    }

    fn shape(&self, ports: &[u16]) -> Result<Shape, String> {
        let mut roles = Vec::new();
        for &port in ports {
            let node = self
                .node(port)
                .ok_or_else(|| format!("does not know {port}"))?;
            if node.has_flag("handshake") || node.has_flag("noaddr") {
                return Err(format!("still meeting {port}"));
            }
            roles.push((port, node.is_master(), self.master_of(port)));
        }
        let mut slots: Vec<(u16, u16, u16)> = self
            .nodes
            .iter()
            .flat_map(|n| n.slots.iter().map(|&(a, b)| (a, b, n.port)))
            .collect();
        slots.sort_unstable();
        Ok(Shape { roles, slots })
    }
}

/// CRC16-XMODEM (polynomial 0x1021, initial value 0), the checksum Redis Cluster hashes keys with.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A Redis Cluster owned by one test; every node is killed when it is dropped.
pub struct RedisCluster {
    nodes: Vec<Node>,
}

impl RedisCluster {
    /// Starts `masters` masters (at least 3) each with `replicas` replicas and joins them with
    /// `redis-cli --cluster create ... --cluster-replicas N --cluster-yes`; returns once every
    /// node reports `cluster_state:ok`, all agree on every node's role and on who serves which
    /// slot, every slot is served, and every replica's replication link is up.
    pub fn start(masters: usize, replicas: usize) -> RedisCluster {
        assert!(
            masters >= 3,
            "redis-cli --cluster create needs 3 masters at least"
        );
        let conf = [
            "cluster-enabled yes".to_string(),
            "cluster-config-file nodes.conf".to_string(),
            format!("cluster-node-timeout {NODE_TIMEOUT_MS}"),
            "cluster-replica-validity-factor 0".to_string(),
        ];
        // Nodes already started are killed if a later step panics.
        let mut cluster = RedisCluster { nodes: Vec::new() };
        for _ in 0..masters * (1 + replicas) {
            let taken = cluster.ports();
            cluster
                .nodes
                .push(Node::start(Role::Cluster, &conf, &taken));
        }
        let addrs: Vec<String> = cluster
            .ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let replicas_arg = replicas.to_string();
        let mut args = vec!["--cluster", "create"];
        args.extend(addrs.iter().map(String::as_str));
        args.extend(["--cluster-replicas", &replicas_arg, "--cluster-yes"]);
        redis_cli(&args);
        let all = cluster.ports();
        cluster.wait_for(WAIT, "the new cluster to settle", |topology| {
            topology.shape(&all)?;
            let found = topology.masters();
            if found.len() != masters {
                return Err(format!("{} masters: {found:?}", found.len()));
            }
            for &master in &found {
                let have = topology.replicas_of(master).len();
                if have != replicas {
                    return Err(format!("master {master} has {have} replicas"));
                }
            }
            match topology.uncovered() {
                0 => cluster.links_up(topology, &all),
                n => Err(format!("{n} slots not served")),
            }
        });
        cluster
    }

    fn node(&self, port: u16) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("{port} is no node of this cluster"))
    }

    fn node_mut(&mut self, port: u16) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("{port} is no node of this cluster"))
    }

    /// `redis://127.0.0.1:PORT` of the first live master (the one serving the lowest slots).
    pub fn url(&self) -> String {
        let port = self
            .masters()
            .into_iter()
            .find(|&p| self.node(p).is_live())
            .expect("a live master");
        format!("redis://127.0.0.1:{port}")
    }

    /// Comma-separated `redis://` URLs of every node (killed and stopped ones too).
    pub fn seeds(&self) -> String {
        self.nodes
            .iter()
            .map(Node::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A synchronous cluster connection seeded with every live node (it routes each command by
    /// its key's slot and follows MOVED and ASK; a pipeline goes where its first key routes),
    /// with a 2 s connect and response timeout: for seeding and inspecting state.
    pub fn conn(&self) -> redis::cluster::ClusterConnection {
        let live: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.is_live())
            .map(Node::url)
            .collect();
        redis::cluster::ClusterClient::builder(live)
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(2))
            .build()
            .and_then(|client| client.get_connection())
            .unwrap_or_else(|e| panic!("a cluster connection: {e}"))
    }

    /// Clients subscribed to `channel` on every live node together (`PUBSUB NUMSUB` counts
    /// one node's; a subscriber may listen on any node).
    pub fn subscribers(&self, channel: &str) -> usize {
        self.live_ports()
            .into_iter()
            .map(|port| self.subscribers_on(port, channel))
            .sum()
    }

    /// Clients subscribed to `channel` on node `port` (`PUBSUB NUMSUB`).
    pub fn subscribers_on(&self, port: u16, channel: &str) -> usize {
        let (_, count): (String, usize) = self
            .node(port)
            .run(&["PUBSUB", "NUMSUB", channel])
            .unwrap_or_else(|e| panic!("PUBSUB NUMSUB: {e}"));
        count
    }

    /// Every node, in the order they were started.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(Node::port).collect()
    }

    /// Nodes neither killed nor stopped.
    pub fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.is_live())
            .map(Node::port)
            .collect()
    }

    /// The log of node `port`, for failure messages.
    pub fn log(&self, port: u16) -> String {
        self.node(port).log()
    }

    /// The cluster as the first live node sees it now.
    pub fn topology(&self) -> Topology {
        let node = self
            .nodes
            .iter()
            .find(|n| n.is_live())
            .expect("a live node");
        let text: String = node
            .run(&["CLUSTER", "NODES"])
            .unwrap_or_else(|e| panic!("CLUSTER NODES: {e}"));
        Topology::parse(&text).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Current masters (serving at least one slot) as a live node sees them, ordered by the
    /// lowest slot each serves. A master killed but not yet replaced is still listed.
    pub fn masters(&self) -> Vec<u16> {
        self.topology().masters()
    }

    /// The hash slot of `key`: CRC16 of the key, or of its hash tag (what lies between the
    /// first `{` and the first `}` after it, when that is not empty), modulo 16384.
    pub fn slot_of(key: &str) -> u16 {
        let bytes = key.as_bytes();
        let mut hashed = bytes;
        if let Some(open) = bytes.iter().position(|&b| b == b'{')
            && let Some(len) = bytes[open + 1..].iter().position(|&b| b == b'}')
            && len > 0
        {
            hashed = &bytes[open + 1..open + 1 + len];
        }
        crc16(hashed) % SLOTS
    }

    /// The port of the master serving `slot`.
    pub fn master_of_slot(&self, slot: u16) -> u16 {
        self.topology()
            .owner(slot)
            .unwrap_or_else(|| panic!("no node serves slot {slot}"))
    }

    /// A replica of `master` (a live one, the lowest port, when there is one).
    pub fn replica_of(&self, master: u16) -> u16 {
        let replicas = self.topology().replicas_of(master);
        replicas
            .iter()
            .copied()
            .find(|&p| self.nodes.iter().any(|n| n.port == p && n.is_live()))
            .or_else(|| replicas.first().copied())
            .unwrap_or_else(|| panic!("master {master} has no replica"))
    }

    /// Group names `{prefix}{i}`, one per current master and each on a different one, in
    /// [`RedisCluster::masters`] order: the keys of group `G`, `streamworker:{G}:...`, hash to
    /// `slot_of(G)`.
    pub fn groups_on_each_master(&self, prefix: &str) -> Vec<String> {
        let topology = self.topology();
        topology
            .masters()
            .into_iter()
            .map(|master| {
                (0..100_000)
                    .map(|i| format!("{prefix}{i}"))
                    .find(|group| topology.owner(Self::slot_of(group)) == Some(master))
                    .unwrap_or_else(|| panic!("no group {prefix}N hashes to master {master}"))
            })
            .collect()
    }

    /// `redis-cli -h 127.0.0.1 -p PORT ARGS` (with `-e`; pass `-c` first to follow redirects);
    /// returns its trimmed stdout, panics with its stderr when it fails.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        redis_cli_at(port, args)
    }

    /// `CLUSTER FAILOVER` on `replica` (with `FORCE` when this fixture killed or stopped its
    /// master); waits until it is a master serving slots, every live node agrees, the old master
    /// (when live) replicates from it, every live replica's link is up and `cluster_state:ok`.
    pub fn failover(&self, replica: u16) {
        let old = self
            .topology()
            .master_of(replica)
            .unwrap_or_else(|| panic!("{replica} is not a replica"));
        let old_live = self.node(old).is_live();
        let args: &[&str] = if old_live {
            &["CLUSTER", "FAILOVER"]
        } else {
            &["CLUSTER", "FAILOVER", "FORCE"]
        };
        self.cli(replica, args);
        let live = self.live_ports();
        self.wait_for(WAIT, &format!("{replica} to take over from {old}"), |t| {
            if !t.is_master(replica) || !t.masters().contains(&replica) {
                return Err(format!("{replica} is not a master serving slots"));
            }
            if old_live && t.master_of(old) != Some(replica) {
                return Err(format!("{old} does not replicate from {replica} yet"));
            }
            self.links_up(t, &live)
        });
    }

    /// SIGKILLs node `port`; it stays down. Does not wait for anything.
    pub fn kill(&mut self, port: u16) {
        self.node_mut(port).kill();
    }

    /// SIGSTOPs node `port`: it holds its port but answers nothing until [`RedisCluster::resume`].
    pub fn pause(&self, port: u16) {
        self.node(port).pause();
    }

    /// SIGCONTs node `port`.
    pub fn resume(&self, port: u16) {
        self.node(port).resume();
    }

    /// Waits until `port` is a master in the eyes of every live node (them agreeing on roles and
    /// slots) and every live node reports `cluster_state:ok`.
    pub fn wait_until_master(&self, port: u16, timeout: Duration) {
        self.wait_for(timeout, &format!("{port} to be a master"), |t| {
            if t.is_master(port) {
                Ok(())
            } else {
                Err(format!("{port} is not a master"))
            }
        });
    }

    /// Waits until every live node (neither killed nor stopped) reports `cluster_state:ok` and
    /// they agree on every live node's role and on who serves which slot.
    pub fn wait_ok(&self, timeout: Duration) {
        self.wait_for(timeout, "cluster_state:ok on every live node", |_| Ok(()));
    }

    /// Moves `slot` from its master to master `to`, keys and all (see [`SlotMove`]); returns
    /// once every live node agrees `to` serves it.
    pub fn move_slot(&self, slot: u16, to: u16) {
        self.begin_move(slot, to).finish(self);
    }

    /// Begins moving `slot` from its master to master `to`: `CLUSTER SETSLOT slot IMPORTING` on
    /// `to`, then `MIGRATING` on the source. Keys move with [`SlotMove::step`], and
    /// [`SlotMove::finish`] ends the move.
    pub fn begin_move(&self, slot: u16, to: u16) -> SlotMove {
        assert!(slot < SLOTS, "slot {slot} out of range");
        let topology = self.topology();
        let from = topology
            .owner(slot)
            .unwrap_or_else(|| panic!("no node serves slot {slot}"));
        assert!(topology.is_master(to), "{to} is not a master");
        assert_ne!(from, to, "{to} already serves slot {slot}");
        let from_id = topology.id_of(from).expect("the source's id").to_string();
        let to_id = topology.id_of(to).expect("the target's id").to_string();
        let slot_arg = slot.to_string();
        self.cli(
            to,
            &["CLUSTER", "SETSLOT", &slot_arg, "IMPORTING", &from_id],
        );
        self.cli(
            from,
            &["CLUSTER", "SETSLOT", &slot_arg, "MIGRATING", &to_id],
        );
        SlotMove {
            slot,
            from,
            to,
            to_id,
        }
    }

    /// Checks every live node: `cluster_state:ok`, and the same roles and slots as the others;
    /// returns the first one's view, then `check` of it.
    fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        check: impl Fn(&Topology) -> Result<(), String>,
    ) -> Topology {
        poll(timeout, what, || {
            let topology = self.agreed()?;
            check(&topology)?;
            Ok(topology)
        })
    }

    fn agreed(&self) -> Result<Topology, String> {
        let live = self.live_ports();
        let mut first: Option<(u16, Topology, Shape)> = None;
        for &port in &live {
            let node = self.node(port);
            let info: String = node.run(&["CLUSTER", "INFO"])?;
            if !info.lines().any(|line| line.trim() == "cluster_state:ok") {
                return Err(format!("{port}: cluster_state is not ok"));
            }
            let text: String = node.run(&["CLUSTER", "NODES"])?;
            let topology = Topology::parse(&text)?;
            let shape = topology.shape(&live).map_err(|e| format!("{port}: {e}"))?;
            match &first {
                None => first = Some((port, topology, shape)),
                Some((p, _, seen)) if *seen != shape => {
                    return Err(format!("{p} sees {seen:?} but {port} sees {shape:?}"));
                }
                Some(_) => {}
            }
        }
        first
            .map(|(_, topology, _)| topology)
            .ok_or_else(|| "no live node".to_string())
    }

    /// Every replica among `ports` that is live has `master_link_status:up`.
    fn links_up(&self, topology: &Topology, ports: &[u16]) -> Result<(), String> {
        for &port in ports {
            if topology.is_master(port) || !self.node(port).is_live() {
                continue;
            }
            let link = self
                .node(port)
                .info_field("replication", "master_link_status")?;
            if link != "up" {
                return Err(format!("replica {port}: master_link_status {link}"));
            }
        }
        Ok(())
    }
}

/// A slot being moved between masters, begun by [`RedisCluster::begin_move`]: while it lasts,
/// the source answers for keys it still holds and sends the rest to the target with `-ASK`.
#[derive(Debug)]
pub struct SlotMove {
    slot: u16,
    from: u16,
    to: u16,
    to_id: String,
}

impl SlotMove {
    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// The master the slot moves from.
    pub fn from(&self) -> u16 {
        self.from
    }

    /// The master the slot moves to.
    pub fn to(&self) -> u16 {
        self.to
    }

    /// Keys of the slot the source still holds.
    pub fn keys_left(&self, cluster: &RedisCluster) -> usize {
        let slot = self.slot.to_string();
        cluster
            .node(self.from)
            .run(&["CLUSTER", "COUNTKEYSINSLOT", &slot])
            .unwrap_or_else(|e| panic!("CLUSTER COUNTKEYSINSLOT: {e}"))
    }

    /// Migrates up to `n` keys of the slot to the target (`CLUSTER GETKEYSINSLOT slot n`, then
    /// `MIGRATE 127.0.0.1 TO "" 0 5000 KEYS ...`); returns how many it asked to move (0: none
    /// left).
    pub fn step(&self, cluster: &RedisCluster, n: usize) -> usize {
        let source = cluster.node(self.from);
        let keys: Vec<Vec<u8>> = source
            .query(
                redis::cmd("CLUSTER")
                    .arg("GETKEYSINSLOT")
                    .arg(self.slot)
                    .arg(n),
            )
            .unwrap_or_else(|e| panic!("CLUSTER GETKEYSINSLOT {}: {e}", self.slot));
        if keys.is_empty() {
            return 0;
        }
        let mut migrate = redis::cmd("MIGRATE");
        migrate
            .arg("127.0.0.1")
            .arg(self.to)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS");
        for key in &keys {
            migrate.arg(key.as_slice());
        }
        // NOKEY: the keys went away (deleted, expired) since they were listed.
        let reply: String = source
            .query(&migrate)
            .unwrap_or_else(|e| panic!("MIGRATE of slot {} to {}: {e}", self.slot, self.to));
        assert!(
            reply == "OK" || reply == "NOKEY",
            "MIGRATE answered {reply}"
        );
        keys.len()
    }

    /// Migrates the keys left in batches of 100, then `CLUSTER SETSLOT slot NODE target` on the
    /// target, the source and the other live masters; returns once every live node agrees the
    /// target serves the slot and reports `cluster_state:ok`.
    pub fn finish(self, cluster: &RedisCluster) {
        while self.step(cluster, BATCH) > 0 {}
        let slot = self.slot.to_string();
        let setslot = ["CLUSTER", "SETSLOT", &slot, "NODE", &self.to_id];
        cluster.cli(self.to, &setslot);
        cluster.cli(self.from, &setslot);
        for master in cluster.masters() {
            if master != self.to && master != self.from && cluster.node(master).is_live() {
                cluster.cli(master, &setslot);
            }
        }
        cluster.wait_for(
            WAIT,
            &format!("slot {} to move to {}", self.slot, self.to),
            |t| match t.owner(self.slot) {
                Some(owner) if owner == self.to => Ok(()),
                owner => Err(format!("slot {} served by {owner:?}", self.slot)),
            },
        );
    }
}
