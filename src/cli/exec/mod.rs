//! The `--exec` handler: runs a command per job.
//!
//! The command line is split into argv by shell quoting rules but no shell runs it, so nothing
//! in a job can inject a command. The job's args are the command's stdin (JSON), its facts are
//! in `STREAMWORKER_JOB_ID`, `_TASK`, `_ATTEMPT` and `_GROUP`; exit 0 is success with stdout as
//! the result, anything else a retryable failure with the tail of stderr.
//!
//! Every process of a job dies with the job and with its worker:
//! - The command leads a process group of its own, and what it starts is in that group
//!   ([`group`]). When the command exits, the rest of its group is killed at once: a background
//!   process it left behind does not run on unseen (nor hold the job open by keeping stdout).
//!   When the job ends before the command (timeout, cancel, lost lease, stop past
//!   `--shutdown-grace`), the whole group is killed.
//! - One watchdog process per worker, started with the handler, kills the groups of the jobs
//!   still running when the worker ends, even by SIGKILL ([`watchdog`]): a killed worker leaves
//!   nothing running that another worker may run again at the same time.
//! - A terminal's Ctrl-C reaches the worker only; the jobs then get the worker's shutdown grace,
//!   as with SIGTERM.
//!
//! Limits: a process that leaves its group (`setsid`, `setpgid`, a daemon) is out of reach. The
//! watchdog needs `awk` on PATH; without it the worker warns once, and a killed worker's jobs
//! run on. A worker killed between starting a command and telling the watchdog leaves that
//! command running. Linux's `PR_SET_PDEATHSIG` is not used: it needs unsafe code, fires when
//! the spawning thread (not the process) ends, and reaches the direct child only.
//!
//! The program is checked when the worker starts ([`program`]): a missing or non-executable
//! program is refused then, rather than failing every job.

mod group;
mod program;
mod watchdog;

use self::group::JobGroup;
use self::watchdog::Watchdog;
use crate::context::JobContext;
use crate::error::{Error, Result};
use crate::job::Payload;
use crate::task::{JobResult, Output, TaskError};
use std::process::Stdio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// How much of stderr a failure keeps (its tail).
const STDERR_TAIL: usize = 2048;
/// Most stdout kept as the result; more fails the job.
const MAX_STDOUT: usize = 1024 * 1024;

/// Runs one program per job; see the module doc.
#[derive(Debug)]
pub(crate) struct ExecHandler {
    program: String,
    args: Vec<String>,
    /// Kills the jobs' groups if the worker dies.
    watchdog: Watchdog,
}

impl ExecHandler {
    /// Splits `command` into argv, refuses a program that cannot run, and starts the watchdog
    /// (so it must be called inside the tokio runtime).
    pub(crate) fn new(command: &str) -> Result<ExecHandler> {
        let (program, args) = split(command)?;
        program::check(&program)?;
        Ok(ExecHandler {
            program,
            args,
            watchdog: Watchdog::start(),
        })
    }

    /// Runs the program for one job: args as JSON on stdin, job facts in the environment.
    /// Exit 0 = success with stdout as the result; anything else fails with stderr's tail.
    /// The command's process group is killed when it exits, or if the job is dropped first.
    pub(crate) async fn run(&self, payload: Payload, ctx: JobContext) -> JobResult {
        let json = payload
            .to_json()
            .map_err(|e| TaskError::fatal(format!("args cannot be read as JSON: {e}")))?;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .env("STREAMWORKER_JOB_ID", ctx.job_id())
            .env("STREAMWORKER_TASK", ctx.task())
            .env("STREAMWORKER_ATTEMPT", ctx.attempt().to_string())
            .env("STREAMWORKER_GROUP", ctx.group().as_str())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut job = JobGroup::spawn(&mut command, &self.watchdog)
            .map_err(|e| TaskError::retry(format!("cannot start {:?}: {e}", self.program)))?;
        let (stdin, stdout, stderr) = job.pipes();
        let mut stdin = stdin.expect("stdin is piped");
        let mut stdout = stdout.expect("stdout is piped");
        let mut stderr = stderr.expect("stderr is piped");
        let write = async move {
            // A program that does not read its stdin closes the pipe: not an error.
            let _ = stdin.write_all(&json).await;
            drop(stdin);
        };
        let read_out = async {
            let mut buf = Vec::new();
            let mut limited = (&mut stdout).take(MAX_STDOUT as u64 + 1);
            let _ = limited.read_to_end(&mut buf).await;
            // Drain the rest so the child never blocks on a full pipe.
            let _ = tokio::io::copy(&mut stdout, &mut tokio::io::sink()).await;
            buf
        };
        let read_err = async {
            // Keep only the tail: a chatty command must not grow the worker's memory.
            let mut tail = Vec::with_capacity(2 * STDERR_TAIL);
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&chunk[..n]);
                if tail.len() > 2 * STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
            tail
        };
        // Once the command exits, what it left in its group is killed, so the pipes close.
        let end = async {
            job.leader_exited().await;
            job.end();
        };
        let ((), out, err, ()) = tokio::join!(write, read_out, read_err, end);
        let status = job
            .wait()
            .await
            .map_err(|e| TaskError::retry(format!("waiting for {:?} failed: {e}", self.program)))?;
        if status.success() {
            if out.len() > MAX_STDOUT {
                return Err(TaskError::fatal(format!(
                    "stdout is over the {MAX_STDOUT}-byte result limit"
                )));
            }
            Ok(Output(out))
        } else {
            let tail_start = err.len().saturating_sub(STDERR_TAIL);
            let tail = String::from_utf8_lossy(&err[tail_start..]);
            let how = match status.code() {
                Some(code) => format!("exit status {code}"),
                None => "killed by a signal".to_string(),
            };
            Err(TaskError::retry(format!("{how}: {}", tail.trim_end())))
        }
    }
}

/// Splits `command` by shell quoting rules into the program and its arguments.
fn split(command: &str) -> Result<(String, Vec<String>)> {
    let mut argv = shell_words::split(command)
        .map_err(|e| Error::Config(format!("--exec {command:?} does not parse: {e}")))?;
    if argv.is_empty() {
        return Err(Error::Config("--exec needs a command".into()));
    }
    let program = argv.remove(0);
    Ok((program, argv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell_without_running_one() {
        let (program, args) = split(r#"python3 -c 'print("hi; rm -rf /")' "two words""#).unwrap();
        assert_eq!(program, "python3");
        assert_eq!(args, vec!["-c", r#"print("hi; rm -rf /")"#, "two words"]);
        assert!(split("").is_err());
        assert!(split("echo 'unterminated").is_err());
    }
}
