//! One slot's long-lived child: started as the leader of a process group of its own (registered
//! with the watchdog for its whole life), sent one job line at a time, its reply read back.
//! Dropping it kills its whole group.

use super::line::{Line, Lines, Overflow};
use super::protocol::{self, MAX_REPLY, Reply};
use super::stderr;
use crate::cli::exec::group::JobGroup;
use crate::cli::exec::watchdog::Watchdog;
use crate::cli::exec::{Program, exit_text};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::{ChildStdin, ChildStdout};
use tokio::task::JoinHandle;

/// How long, once a child has exited, the pipes are still read: for a reply written just before
/// it exited, and for its last stderr lines. Its group is killed first, so the pipes close at
/// once unless a process that left the group holds them.
const AFTER_EXIT: Duration = Duration::from_secs(1);

/// Why a child could not answer a job; the child is not used again.
#[derive(Debug)]
pub(super) enum Failure {
    /// It wrote something that is not a reply to the job: the protocol error.
    Protocol(String),
    /// Its reply line was over [`MAX_REPLY`] bytes.
    TooLong,
    /// It exited (or closed stdin or stdout) before answering: how it ended, its last stderr.
    Exited(String),
}

impl Failure {
    /// The failure as the job's error.
    pub(super) fn message(&self, pid: i32) -> String {
        match self {
            Failure::Protocol(text) => format!("{text} (child {pid} killed and replaced)"),
            Failure::TooLong => format!(
                "the --exec child's reply is over the {MAX_REPLY}-byte line limit (child {pid} \
                 killed and replaced)"
            ),
            Failure::Exited(how) => format!("the --exec child {pid} {how}"),
        }
    }
}

/// A running child with its pipes.
#[derive(Debug)]
pub(super) struct Child {
    /// The child's process group; killed when this is dropped.
    group: JobGroup,
    stdin: ChildStdin,
    stdout: Lines<ChildStdout>,
    /// Logs the child's stderr; its output is the last lines (taken once, by [`Child::ended`]).
    stderr: Option<JoinHandle<String>>,
}

impl Child {
    /// Starts `program` for slot `slot`.
    pub(super) fn start(
        program: &Program,
        watchdog: &Arc<Watchdog>,
        slot: usize,
    ) -> std::io::Result<Child> {
        let mut command = program.command();
        command
            .env("STREAMWORKER_PROTOCOL", protocol::VERSION.to_string())
            .env("STREAMWORKER_SLOT", slot.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut group = JobGroup::spawn(&mut command, watchdog)?;
        let (stdin, stdout, stderr) = group.pipes();
        let stderr = stderr::forward(stderr.expect("stderr is piped"), group.pid(), slot);
        Ok(Child {
            stdin: stdin.expect("stdin is piped"),
            stdout: Lines::new(stdout.expect("stdout is piped")),
            stderr: Some(stderr),
            group,
        })
    }

    /// The child's pid.
    pub(super) fn pid(&self) -> i32 {
        self.group.pid()
    }

    /// Whether the child has exited (while idle: it must not).
    pub(super) fn has_exited(&self) -> bool {
        self.group.leader_has_exited()
    }

    /// Sends `request` (one line) for job `id` and reads the reply. The child's exit before it
    /// answers is seen even when a process it started holds its stdout open.
    pub(super) async fn exchange(&mut self, request: &[u8], id: &str) -> Result<Reply, Failure> {
        let line = {
            let Child {
                group,
                stdin,
                stdout,
                ..
            } = &mut *self;
            let talk = async {
                // A child that closed stdin or exited: its reply (or EOF) is read all the same.
                let _ = stdin.write_all(request).await;
                stdout.next(MAX_REPLY, Overflow::Stop).await
            };
            tokio::pin!(talk);
            tokio::select! {
                line = &mut talk => line,
                () = group.leader_exited() => {
                    // Kill what it left, so the pipes close; a reply written before it exited
                    // is still read.
                    group.end();
                    tokio::time::timeout(AFTER_EXIT, talk)
                        .await
                        .unwrap_or_else(|_| Ok(Line::End(Vec::new())))
                }
            }
        };
        match line {
            Ok(Line::Whole(line)) => Reply::parse(&line, id).map_err(Failure::Protocol),
            Ok(Line::Over(..)) => Err(Failure::TooLong),
            Ok(Line::End(partial)) => Err(Failure::Exited(
                self.ended("before answering", &partial).await,
            )),
            Err(e) => Err(Failure::Exited(format!(
                "cannot be read ({e}): {}",
                self.ended("before answering", &[]).await
            ))),
        }
    }

    /// Ends the child (if it still runs, with its group), reaps it and says how it ended,
    /// `when` (`before answering`) and what it wrote last: `exited (exit status 3) before
    /// answering; its last stderr: <lines>`. `partial` is an unfinished stdout line.
    pub(super) async fn ended(&mut self, when: &str, partial: &[u8]) -> String {
        let status = match self.group.wait().await {
            Ok(status) => exit_text(status),
            Err(e) => format!("exit status unknown: {e}"),
        };
        let mut text = format!("exited ({status}) {when}");
        if !partial.is_empty() {
            text.push_str(&format!(
                "; it wrote an unfinished line: {}",
                protocol::quote(partial)
            ));
        }
        let tail = match self.stderr.take() {
            Some(task) => tokio::time::timeout(AFTER_EXIT, task).await,
            None => Ok(Ok(String::new())),
        };
        if let Ok(Ok(tail)) = tail
            && !tail.is_empty()
        {
            text.push_str(&format!("; its last stderr: {tail}"));
        }
        text
    }
}
