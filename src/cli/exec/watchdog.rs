//! The worker's watchdog: one small `awk` process that SIGKILLs the process group of every job
//! still running when the worker is gone, however it went (SIGKILL included).
//!
//! The worker holds the only write end of a pipe whose read end is the watchdog's stdin. It
//! writes `+PGID` when a job's command starts and `-PGID` once that group is killed. When the
//! worker process ends, the kernel closes the write end; the watchdog reads EOF and kills every
//! group still registered, then exits. The write end is close-on-exec, so no job's command
//! holds it open. The watchdog runs in a process group of its own (a terminal's Ctrl-C does
//! not reach it) with null stdout and stderr (it keeps none of the worker's output pipes open,
//! so a caller reading them sees EOF when the worker exits).
//!
//! Writes are non-blocking: a watchdog that stops reading never stalls the worker; a line that
//! cannot be written is lost, with a warning (once).

use std::fs::File;
use std::io::{self, Write};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};

/// The watchdog's program: `+PGID` registers a group, `-PGID` forgets it; at EOF every group
/// still registered gets SIGKILL, in one `kill`. Ids 0 and 1 are never registered (`kill --
/// -1` would signal every process of the user). Its first line names it in `ps`.
const PROGRAM: &str = r#"# streamworker --exec watchdog: when its worker is gone, kills the process groups of its jobs
{ op = substr($0, 1, 1); p = substr($0, 2) + 0 }
op == "+" && p > 1 { g[p] = 1 }
op == "-" { delete g[p] }
END { for (p in g) s = s " -" p; if (s != "") system("kill -s KILL --" s) }"#;

/// What a worker loses without its watchdog, said in every warning about it.
const LOSS: &str = "if this worker is killed (SIGKILL, a crash), the commands of the jobs it \
                    runs go on running unseen, and may run again elsewhere at the same time";

/// The write end of the watchdog's pipe, or nothing when the watchdog could not start.
#[derive(Debug)]
pub(super) struct Watchdog {
    /// Non-blocking, close-on-exec; `None` when the watchdog could not start.
    pipe: Option<File>,
    /// Set once a warning about the watchdog was logged, so it is logged once.
    warned: AtomicBool,
}

impl Watchdog {
    /// Starts the watchdog (inside a tokio runtime). When it cannot start (no `awk` on PATH),
    /// logs a warning saying what is lost, and returns a watchdog that does nothing.
    pub(super) fn start() -> Watchdog {
        match spawn() {
            Ok(pipe) => Watchdog {
                pipe: Some(pipe),
                warned: AtomicBool::new(false),
            },
            Err(e) => {
                tracing::warn!(
                    "cannot start the --exec watchdog (awk): {e}; {LOSS}; put awk on PATH to have \
                     them killed"
                );
                Watchdog {
                    pipe: None,
                    warned: AtomicBool::new(true),
                }
            }
        }
    }

    /// The group `pgid` is running a job: kill it if the worker dies.
    pub(super) fn register(&self, pgid: i32) {
        self.send('+', pgid);
    }

    /// The group `pgid` is killed: forget it.
    pub(super) fn unregister(&self, pgid: i32) {
        self.send('-', pgid);
    }

    /// Writes one line. A line is far below PIPE_BUF, so it is written whole or not at all.
    fn send(&self, op: char, pgid: i32) {
        let Some(mut pipe) = self.pipe.as_ref() else {
            return;
        };
        let line = format!("{op}{pgid}\n");
        let error = match pipe.write(line.as_bytes()) {
            Ok(n) if n == line.len() => return,
            Ok(_) => io::Error::from(io::ErrorKind::WriteZero),
            Err(e) => e,
        };
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!("the --exec watchdog does not take news of a job ({error}); {LOSS}");
        }
    }
}

/// Starts `awk` in its own process group with the pipe as its stdin; returns the write end.
fn spawn() -> io::Result<File> {
    let mut child = tokio::process::Command::new("awk")
        .arg(PROGRAM)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    let pipe = child
        .stdin
        .take()
        .expect("stdin is piped")
        .into_owned_fd()?;
    rustix::io::ioctl_fionbio(&pipe, true)?;
    // Dropping the handle neither kills nor waits: tokio reaps the watchdog once it exits.
    drop(child);
    Ok(File::from(pipe))
}
