//! Per-job mode (the default): one process per job. The job's args are its stdin (JSON), its
//! facts are in `STREAMWORKER_JOB_ID`, `_TASK`, `_ATTEMPT` and `_GROUP`, its headers in
//! `STREAMWORKER_HEADER_<NAME>`; exit 0 is success with stdout as the result, anything else a
//! retryable failure with the tail of stderr.

use super::Program;
use super::group::JobGroup;
use super::watchdog::Watchdog;
use crate::context::JobContext;
use crate::task::{JobResult, Output, TaskError};
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How much of stderr a failure keeps (its tail).
const STDERR_TAIL: usize = 2048;
/// Most stdout kept as the result; more fails the job.
const MAX_STDOUT: usize = 1024 * 1024;

/// Runs `program` for one job: `json` (the args) on stdin, job facts in the environment.
/// Exit 0 = success with stdout as the result; anything else fails with stderr's tail.
/// The command's process group is killed when it exits, or if the job is dropped first.
pub(super) async fn run(
    program: &Program,
    watchdog: &Arc<Watchdog>,
    json: Vec<u8>,
    ctx: &JobContext,
) -> JobResult {
    let mut command = program.command();
    command
        .env("STREAMWORKER_JOB_ID", ctx.job_id())
        .env("STREAMWORKER_TASK", ctx.task())
        .env("STREAMWORKER_ATTEMPT", ctx.attempt().to_string())
        .env("STREAMWORKER_GROUP", ctx.group().as_str())
        .envs(super::header_env(ctx))
        .envs(super::prev_result_env(ctx))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut job = JobGroup::spawn(&mut command, watchdog)
        .map_err(|e| TaskError::retry(format!("cannot start {:?}: {e}", program.name())))?;
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
        .map_err(|e| TaskError::retry(format!("waiting for {:?} failed: {e}", program.name())))?;
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
        Err(TaskError::retry(format!(
            "{}: {}",
            super::exit_text(status),
            tail.trim_end()
        )))
    }
}
