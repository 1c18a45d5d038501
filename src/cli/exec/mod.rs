//! The `--exec` handler: runs a command for the jobs that have no Rust handler, in one of two
//! modes ([`ExecMode`]):
//! - per job (the default, [`per_job`]): a process per job; args on stdin, facts in the
//!   environment, exit status and stdout as the outcome;
//! - persistent ([`persistent`]): one long-lived process per slot, started when a slot first
//!   needs it and again after it dies; jobs and outcomes are JSON lines on its stdin and
//!   stdout (the protocol is in `persistent/protocol.rs` and the README).
//!
//! The command line is split into argv by shell quoting rules but no shell runs it, so nothing
//! in a job can inject a command.
//!
//! Every process of a job dies with the job and with its worker, in both modes:
//! - The command leads a process group of its own, and what it starts is in that group
//!   ([`group`]). When the command exits, the rest of its group is killed at once: a background
//!   process it left behind does not run on unseen (nor hold the job open by keeping stdout).
//!   When the job ends before the command (timeout, cancel, lost lease, stop past
//!   `--shutdown-grace`), the whole group is killed; in persistent mode the slot starts a
//!   fresh process for its next job.
//! - One watchdog process per worker, started with the handler, kills the groups still running
//!   when the worker ends, even by SIGKILL ([`watchdog`]): a killed worker leaves nothing
//!   running that another worker may run again at the same time. Persistent children are
//!   registered for their whole life.
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
mod per_job;
mod persistent;
mod program;
mod watchdog;

use self::persistent::Pool;
use self::watchdog::Watchdog;
use crate::context::JobContext;
use crate::error::{Error, Result};
use crate::job::Payload;
use crate::task::{JobResult, TaskError};
use std::process::ExitStatus;
use std::sync::Arc;
use tokio::process::Command;

/// How `--exec` runs its command (`--exec-mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExecMode {
    /// A process per job: args on stdin, exit status and stdout as the outcome.
    #[default]
    PerJob,
    /// A long-lived process per slot: jobs and outcomes as JSON lines on stdin and stdout.
    Persistent,
}

/// The program and arguments `--exec` names, split once.
#[derive(Debug)]
pub(super) struct Program {
    program: String,
    args: Vec<String>,
}

impl Program {
    /// The program as named on the command line.
    fn name(&self) -> &str {
        &self.program
    }

    /// A command that runs it with its arguments (nothing else set).
    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        command
    }
}

/// How the handler runs jobs.
#[derive(Debug)]
enum Runner {
    /// A process per job.
    PerJob,
    /// The slots' long-lived processes.
    Persistent(Pool),
}

/// Runs `--exec`'s command for jobs; see the module doc.
#[derive(Debug)]
pub(crate) struct ExecHandler {
    program: Arc<Program>,
    /// Kills the jobs' groups if the worker dies.
    watchdog: Arc<Watchdog>,
    runner: Runner,
}

impl ExecHandler {
    /// Splits `command` into argv, refuses a program that cannot run, and starts the watchdog
    /// (so it must be called inside the tokio runtime). `slots` is the worker's concurrency:
    /// at most that many jobs run at once, so persistent mode keeps at most that many children.
    pub(crate) fn new(command: &str, mode: ExecMode, slots: usize) -> Result<ExecHandler> {
        let (program, args) = split(command)?;
        program::check(&program)?;
        let program = Arc::new(Program { program, args });
        let watchdog = Arc::new(Watchdog::start());
        let runner = match mode {
            ExecMode::PerJob => Runner::PerJob,
            ExecMode::Persistent => {
                Runner::Persistent(Pool::new(program.clone(), watchdog.clone(), slots))
            }
        };
        Ok(ExecHandler {
            program,
            watchdog,
            runner,
        })
    }

    /// Runs one job through the command, in the handler's mode.
    pub(crate) async fn run(&self, payload: Payload, ctx: JobContext) -> JobResult {
        let json = payload
            .to_json()
            .map_err(|e| TaskError::fatal(format!("args cannot be read as JSON: {e}")))?;
        match &self.runner {
            Runner::PerJob => per_job::run(&self.program, &self.watchdog, json, &ctx).await,
            Runner::Persistent(pool) => pool.run(json, &ctx).await,
        }
    }
}

/// The job's headers as environment variables: `STREAMWORKER_HEADER_<NAME>`, the name
/// uppercased with `-` and `.` as `_` (so `origin` is `STREAMWORKER_HEADER_ORIGIN`; names that
/// differ only there share one variable, the last set wins).
fn header_env(ctx: &JobContext) -> impl Iterator<Item = (String, &str)> {
    ctx.headers().map(|(name, value)| {
        let name: String = name
            .chars()
            .map(|c| match c {
                '-' | '.' => '_',
                c => c.to_ascii_uppercase(),
            })
            .collect();
        (format!("STREAMWORKER_HEADER_{name}"), value)
    })
}

/// `STREAMWORKER_PREV_RESULT`: the result of the chain step before this job, when it is text
/// an environment variable can hold (UTF-8, no NUL).
fn prev_result_env(ctx: &JobContext) -> Option<(&'static str, &str)> {
    let text = std::str::from_utf8(ctx.prev_result()?).ok()?;
    (!text.contains('\0')).then_some(("STREAMWORKER_PREV_RESULT", text))
}

/// How a process ended, for an error: `exit status N` or `killed by signal N`.
fn exit_text(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "killed by a signal".to_string(),
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

    #[test]
    fn headers_become_upper_case_environment_variables() {
        let ctx = JobContext::detached(
            crate::keys::GroupName::new("g").unwrap(),
            "t",
            "j",
            std::time::Instant::now(),
        )
        .with_header("origin", "https://a.example")
        .with_header("x-trace.id", "7");
        let env: Vec<_> = header_env(&ctx).collect();
        assert_eq!(
            env,
            [
                (
                    "STREAMWORKER_HEADER_ORIGIN".to_string(),
                    "https://a.example"
                ),
                ("STREAMWORKER_HEADER_X_TRACE_ID".to_string(), "7"),
            ]
        );
    }
}
