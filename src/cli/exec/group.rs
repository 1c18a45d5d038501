//! A command as the leader of a process group of its own, and the end of that group: a job's
//! command (per-job mode) or a slot's long-lived child (persistent mode).
//!
//! Whatever the command starts stays in its group unless it leaves on purpose (`setsid`,
//! `setpgid`). The whole group gets SIGKILL when the leader exits, or when the job ends first
//! (the run future is dropped: timeout, cancel, lost lease, stop past the grace period). The
//! kill always comes before the leader is reaped: until then the leader's pid, which is the
//! group's id, cannot be taken by a new process, so the kill cannot reach another group.

use super::watchdog::Watchdog;
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use std::io;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

/// How often the leader is looked at when SIGCHLD cannot be listened to.
const POLL: Duration = Duration::from_millis(50);

/// A running command and its process group, killed as a group when dropped.
#[derive(Debug)]
pub(super) struct JobGroup {
    /// The leader; killed (again) and reaped by tokio when dropped, after the group's kill.
    child: Child,
    /// The leader's pid, which is the group's id.
    pgid: Pid,
    /// Told of the group while it may be running.
    watchdog: Arc<Watchdog>,
    /// The group was killed and unregistered; the leader may be reaped.
    ended: bool,
}

impl JobGroup {
    /// Spawns `command` as the leader of a new process group and registers the group with
    /// `watchdog`.
    pub(super) fn spawn(command: &mut Command, watchdog: &Arc<Watchdog>) -> io::Result<Self> {
        let child = command.process_group(0).kill_on_drop(true).spawn()?;
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .filter(|&id| id > 1)
            .and_then(Pid::from_raw)
            .ok_or_else(|| io::Error::other("the started command has no usable pid"))?;
        watchdog.register(pgid.as_raw_nonzero().get());
        Ok(JobGroup {
            child,
            pgid,
            watchdog: watchdog.clone(),
            ended: false,
        })
    }

    /// The leader's stdin, stdout and stderr pipes (each `None` unless piped, or when taken).
    pub(super) fn pipes(
        &mut self,
    ) -> (Option<ChildStdin>, Option<ChildStdout>, Option<ChildStderr>) {
        (
            self.child.stdin.take(),
            self.child.stdout.take(),
            self.child.stderr.take(),
        )
    }

    /// The leader's pid (the group's id).
    pub(super) fn pid(&self) -> i32 {
        self.pgid.as_raw_nonzero().get()
    }

    /// Whether the leader has exited (it is not reaped: a zombie keeps the group's id taken).
    pub(super) fn leader_has_exited(&self) -> bool {
        loop {
            let options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG;
            match rustix::process::waitid(WaitId::Pid(self.pgid), options) {
                Ok(None) => return false,
                Err(rustix::io::Errno::INTR) => continue,
                // Exited, or not a child to wait for (nothing left to wait on either way).
                Ok(Some(_)) | Err(_) => return true,
            }
        }
    }

    /// Completes once the leader has exited, without reaping it.
    pub(super) async fn leader_exited(&self) {
        use tokio::signal::unix::{SignalKind, signal};
        // Listening starts before the first look, so an exit after it is never missed.
        let mut sigchld = signal(SignalKind::child()).ok();
        loop {
            if self.leader_has_exited() {
                return;
            }
            match sigchld.as_mut() {
                Some(sigchld) => {
                    sigchld.recv().await;
                }
                None => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Kills the whole group and unregisters it from the watchdog, once.
    pub(super) fn end(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        // ESRCH (nothing left in the group) is the usual case after a clean exit.
        let _ = rustix::process::kill_process_group(self.pgid, Signal::KILL);
        self.watchdog.unregister(self.pgid.as_raw_nonzero().get());
    }

    /// Ends the group (see [`end`](Self::end)), then reaps the leader and returns its status.
    pub(super) async fn wait(&mut self) -> io::Result<ExitStatus> {
        self.end();
        self.child.wait().await
    }
}

impl Drop for JobGroup {
    /// The job ended before its group did: kill the group now, while the leader is not reaped
    /// (the `child` field is dropped, and may reap it, only after this).
    fn drop(&mut self) {
        self.end();
    }
}
