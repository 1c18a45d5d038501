//! Worker processes of the project's own binary, for tests that signal and kill them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The `streamworker` binary built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_streamworker"))
}

/// A `streamworker` process, killed (and its log printed, if the test failed) when dropped.
pub struct WorkerProcess {
    child: Child,
    log: PathBuf,
}

impl WorkerProcess {
    /// Starts `streamworker --redis URL ARGS...` with `OUT=out` in its environment (inherited
    /// by the commands it runs) and its log in `out/worker-N.log`.
    pub fn start(url: &str, out: &Path, args: &[&str]) -> WorkerProcess {
        WorkerProcess::start_env(url, out, args, &[])
    }

    /// [`start`](Self::start) with extra environment variables.
    pub fn start_env(url: &str, out: &Path, args: &[&str], env: &[(&str, &str)]) -> WorkerProcess {
        static N: AtomicUsize = AtomicUsize::new(0);
        let log = out.join(format!("worker-{}.log", N.fetch_add(1, Ordering::Relaxed)));
        let child = Command::new(bin())
            .arg("--redis")
            .arg(url)
            .args(args)
            .env_remove("REDIS_URL")
            .env("RUST_LOG", "info")
            .env("OUT", out)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the worker");
        WorkerProcess { child, log }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the worker logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends `signal` (TERM, INT, STOP, CONT) to the worker's pid only, with `kill`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// SIGKILLs the worker and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits (up to `timeout`) for the process to exit.
    pub async fn exit_status(&mut self, timeout: Duration) -> ExitStatus {
        let mut status = None;
        let child = &mut self.child;
        super::wait::wait_until(timeout, "the worker process to exit", || {
            status = status.or_else(|| child.try_wait().unwrap());
            let done = status.is_some();
            async move { done }
        })
        .await;
        status.unwrap()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // A stopped process must be continued to die of SIGKILL promptly everywhere.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- worker log {} ---\n{}", self.log.display(), self.log());
        }
    }
}
