//! The `--exec` handler: runs a command per job. The command line is split into argv by shell
//! quoting rules but no shell runs it, so nothing in a job can inject a command.

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
}

impl ExecHandler {
    /// Splits `command` into argv.
    pub(crate) fn new(command: &str) -> Result<ExecHandler> {
        let mut argv = shell_words::split(command)
            .map_err(|e| Error::Config(format!("--exec {command:?} does not parse: {e}")))?;
        if argv.is_empty() {
            return Err(Error::Config("--exec needs a command".into()));
        }
        let program = argv.remove(0);
        Ok(ExecHandler {
            program,
            args: argv,
        })
    }

    /// Runs the program for one job: args as JSON on stdin, job facts in the environment.
    /// Exit 0 = success with stdout as the result; anything else fails with stderr's tail.
    /// The child is killed if the job is dropped (timeout, shutdown).
    pub(crate) async fn run(&self, payload: Payload, ctx: JobContext) -> JobResult {
        let json = payload
            .to_json()
            .map_err(|e| TaskError::fatal(format!("args cannot be read as JSON: {e}")))?;
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .env("STREAMWORKER_JOB_ID", ctx.job_id())
            .env("STREAMWORKER_TASK", ctx.task())
            .env("STREAMWORKER_ATTEMPT", ctx.attempt().to_string())
            .env("STREAMWORKER_GROUP", ctx.group().as_str())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TaskError::retry(format!("cannot start {:?}: {e}", self.program)))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
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
        let ((), out, err) = tokio::join!(write, read_out, read_err);
        let status = child
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell_without_running_one() {
        let h = ExecHandler::new(r#"python3 -c 'print("hi; rm -rf /")' "two words""#).unwrap();
        assert_eq!(h.program, "python3");
        assert_eq!(h.args, vec!["-c", r#"print("hi; rm -rf /")"#, "two words"]);
        assert!(ExecHandler::new("").is_err());
        assert!(ExecHandler::new("echo 'unterminated").is_err());
    }
}
