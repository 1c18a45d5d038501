//! A redis-server of the bench's own: a free port, its own temp dir, nothing persisted. The
//! binary is `REDIS_SERVER` when set, else `redis-server` from `PATH`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    dir: PathBuf,
    pub url: String,
}

impl Server {
    pub fn start() -> Server {
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir =
            std::env::temp_dir().join(format!("streamworker-bench-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("bench temp dir");
        let child = Command::new(&binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {binary} (set REDIS_SERVER to its path): {e}")
            });
        let url = format!("redis://127.0.0.1:{port}");
        let server = Server { child, dir, url };
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
        let info: String = redis::cmd("INFO")
            .arg(section)
            .query_async(&mut self.conn().await)
            .await
            .expect("INFO");
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_string())
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
