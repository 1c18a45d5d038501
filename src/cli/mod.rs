//! The `streamworker` command line, reusable in your own binary over your own tasks.
//!
//! ```no_run
//! use streamworker::TaskError;
//!
//! async fn send_email(args: serde_json::Value) -> Result<(), TaskError> {
//!     println!("sending {args}");
//!     Ok(())
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     // `my-binary --group emails` serves the group with the tasks registered here;
//!     // `my-binary enqueue ...` works as it does in `streamworker`.
//!     streamworker::cli::run(|worker| worker.task("send_email", send_email)).await
//! }
//! ```

mod batch;
mod cancel;
mod dead;
mod delayed;
mod enqueue;
mod escaped;
mod exec;
mod job;
#[cfg(feature = "postgres")]
mod outbox;
mod pause;
mod pending;
mod safe;
mod schedule;
mod status;
mod table;
mod top;
mod width;
mod work;

use crate::broker::DEFAULT_REDIS_URL;
use crate::worker::WorkerBuilder;
use crate::worker::config;
use clap::{Parser, Subcommand, ValueEnum};
use humantime::Duration;
use std::process::ExitCode;

/// `streamworker`: run workers for job groups on Redis Streams, enqueue jobs, and see and
/// repair the queues.
#[derive(Debug, Parser)]
#[command(name = "streamworker", version, about, long_about = None)]
#[command(
    after_help = "Without a subcommand, runs a worker: streamworker --group emails --exec 'python3 send.py'"
)]
pub struct Cli {
    /// Redis URL: redis://[user:password@]host:port[/db]; a Redis Cluster: any node's URL, or several comma-separated; Sentinel: redis+sentinel://host:port[,host:port...]/MASTER-NAME
    #[arg(long, global = true, env = "REDIS_URL", default_value = DEFAULT_REDIS_URL, hide_env_values = true)]
    redis: String,

    /// Log format: pretty for people, json for machines
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,

    /// Print the operations commands' output as JSON, for scripts
    #[arg(long, global = true)]
    json: bool,

    #[command(flatten)]
    work: WorkArgs,

    #[command(subcommand)]
    command: Option<Command>,
}

/// Flags of the worker (the command without a subcommand).
#[derive(Debug, clap::Args)]
struct WorkArgs {
    /// Group to serve; repeat to serve several
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,

    /// Run this command for every job without a registered handler: args as JSON on stdin,
    /// STREAMWORKER_JOB_ID, _TASK, _ATTEMPT, _GROUP in the environment; exit 0 = success
    #[arg(long, value_name = "CMD")]
    exec: Option<String>,

    /// How --exec runs its command: per-job (a process per job) or persistent (a long-lived
    /// process per slot, sent jobs and answering outcomes as JSON lines on stdin and stdout;
    /// see the README's "Persistent mode")
    #[arg(long, value_enum, value_name = "MODE", default_value_t = exec::ExecMode::PerJob, requires = "exec")]
    exec_mode: exec::ExecMode,

    /// Jobs run at once
    #[arg(long, default_value_t = config::CONCURRENCY, allow_negative_numbers = true, value_parser = count::<usize, 1>)]
    concurrency: usize,

    /// Jobs each group reads ahead of the free slots, so a slot that frees starts the next
    /// job without a round trip (0: read only for free slots)
    #[arg(long, default_value_t = config::PREFETCH, allow_negative_numbers = true, value_parser = count::<usize, 0>)]
    prefetch: usize,

    /// How long running jobs may finish after SIGTERM/SIGINT before they are handed back
    #[arg(long, default_value_t = config::SHUTDOWN_GRACE.into())]
    shutdown_grace: Duration,

    /// Initial retry backoff (doubles per attempt, with jitter)
    #[arg(long, default_value_t = config::RETRY_BACKOFF.into())]
    retry_backoff: Duration,

    /// How long a running job may go without its worker's heartbeat before another worker
    /// takes it over (heartbeats go out every third of it)
    #[arg(long, default_value_t = config::VISIBILITY_TIMEOUT.into())]
    visibility_timeout: Duration,

    /// Retries of a failed job that sets no limit of its own
    #[arg(long, default_value_t = config::MAX_RETRIES, allow_negative_numbers = true, value_parser = count::<u32, 0>)]
    max_retries: u32,

    /// How long one attempt of a job that sets no timeout of its own may run
    #[arg(long, default_value_t = config::TIMEOUT.into())]
    timeout: Duration,

    /// Largest job args accepted, in bytes; larger jobs go to the dead stream undecoded
    #[arg(long, default_value_t = config::MAX_PAYLOAD_BYTES, allow_negative_numbers = true, value_parser = count::<usize, 1>)]
    max_payload_bytes: usize,

    /// Deliveries after which a job whose worker keeps dying while running it goes to the
    /// dead stream as "stalled N times"
    #[arg(long, default_value_t = config::MAX_DELIVERIES, allow_negative_numbers = true, value_parser = count::<u32, 1>)]
    max_deliveries: u32,

    /// Most jobs kept in each group's dead stream; the oldest beyond it are deleted when a job
    /// is added (0: no count bound)
    #[arg(long, default_value_t = config::DEAD_MAX_LEN, allow_negative_numbers = true, value_parser = count::<u64, 0>)]
    dead_max_len: u64,

    /// Longest time a job is kept in each group's dead stream, e.g. 180d, 12h (0: no age bound)
    #[arg(long, default_value = config::DEAD_MAX_AGE_TEXT)]
    dead_max_age: Duration,

    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9898); off by default
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,

    /// Enqueue a job periodically, exactly once across all workers given the same schedule;
    /// repeat for several: 'name=NAME;cron=EXPR|every=DURATION;task=TASK[;tz=ZONE]
    /// [;missed=catch-up|skip][;grace=DURATION][;priority=P][;group=G][;args=JSON]'
    /// (args last; group defaults to the only --group)
    #[arg(long = "schedule", value_name = "SPEC")]
    schedules: Vec<String>,

    /// Also relay the PostgreSQL outbox at this URL into Redis (jobs written with
    /// enqueue_in_tx); see `streamworker outbox --help`
    #[cfg(feature = "postgres")]
    #[arg(long, value_name = "POSTGRES_URL")]
    outbox: Option<String>,

    #[cfg(feature = "postgres")]
    #[command(flatten)]
    outbox_relay: outbox::RelayArgs,
}

/// Parses a count flag: a whole number of at least `MIN`. A negative number, a fraction or a
/// word is refused with the range allowed, rather than taken for another flag.
fn count<T: TryFrom<u64>, const MIN: u64>(text: &str) -> Result<T, String> {
    let allowed = || format!("use a whole number of {MIN} or more");
    let n: i128 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number: {}", allowed()))?;
    if n < i128::from(MIN) {
        return Err(format!("{n} is too small: {}", allowed()));
    }
    u64::try_from(n)
        .ok()
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("{n} is too large"))
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enqueue one job and print its id
    Enqueue(enqueue::EnqueueArgs),
    /// Each group's queues per priority, consumers and outcomes in the last minute and hour
    Status(status::StatusArgs),
    /// The jobs workers hold (in flight), and which a reaper takes next
    Pending(pending::PendingArgs),
    /// Where one job is now: waiting, running, delayed, dead or finished
    Job(job::JobArgs),
    /// A batch or chain: counts, state, failed children, steps not run, callbacks
    Batch(batch::BatchArgs),
    /// Dead jobs: list, show, retry (re-drive), purge
    Dead(dead::DeadArgs),
    /// Delayed jobs: list, run one now
    Delayed(delayed::DelayedArgs),
    /// Stop workers fetching from a group (enqueueing goes on)
    Pause(pause::PauseArgs),
    /// Let workers fetch from a paused group again
    Resume(pause::PauseArgs),
    /// Live view of every group; q or Ctrl-C quits
    Top(top::TopArgs),
    /// Cancel a waiting, scheduled or running job
    Cancel(cancel::CancelArgs),
    /// List a group's periodic schedules with their next and last run
    Schedules(schedule::SchedulesArgs),
    /// The PostgreSQL outbox: init (create its table), relay (move committed jobs into
    /// Redis), status
    #[cfg(feature = "postgres")]
    Outbox(outbox::OutboxArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

/// The log filter when `RUST_LOG` is unset: streamworker's own logs from `info`, the Redis
/// client library's errors only. Its cluster client logs a warning per reconnect attempt to a
/// node that is down, many a second; the worker logs an outage once instead, and a one-shot
/// command's error is one line (`RUST_LOG=info` shows them all).
const DEFAULT_LOG_FILTER: &str = "info,redis=error,sqlx=warn";

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Parses the process's arguments and runs the command they name. `configure` registers the
/// binary's own tasks (and state, middleware) on the worker built from the flags; it is called
/// only when running a worker. Returns the exit code: 0 on success or a clean stop, 1 on error.
pub async fn run<S, F>(configure: F) -> ExitCode
where
    S: Clone + Send + Sync + 'static,
    F: FnOnce(WorkerBuilder<()>) -> WorkerBuilder<S>,
{
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let (redis, json) = (cli.redis.as_str(), cli.json);
    let result = match cli.command {
        Some(Command::Enqueue(args)) => enqueue::run(redis, args).await,
        Some(Command::Status(args)) => status::run(redis, json, args).await,
        Some(Command::Pending(args)) => pending::run(redis, json, args).await,
        Some(Command::Job(args)) => job::run(redis, json, args).await,
        Some(Command::Batch(args)) => batch::run(redis, json, args).await,
        Some(Command::Dead(args)) => dead::run(redis, json, args).await,
        Some(Command::Delayed(args)) => delayed::run(redis, json, args).await,
        Some(Command::Pause(args)) => pause::run(redis, json, args, true).await,
        Some(Command::Resume(args)) => pause::run(redis, json, args, false).await,
        Some(Command::Top(args)) => top::run(redis, json, args).await,
        Some(Command::Cancel(args)) => cancel::run(redis, args).await,
        Some(Command::Schedules(args)) => schedule::list(redis, json, args).await,
        #[cfg(feature = "postgres")]
        Some(Command::Outbox(args)) => outbox::run(redis, json, args).await,
        None => work::run(redis, cli.work, configure).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", safe::escape(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_flags_say_what_values_are_allowed() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map_err(|e| e.to_string());
        let err = parse(&["streamworker", "--group", "g", "--concurrency", "-1"]).unwrap_err();
        assert!(
            err.contains("-1 is too small: use a whole number of 1 or more"),
            "{err}"
        );
        let err = parse(&["streamworker", "--group", "g", "--concurrency", "1.5"]).unwrap_err();
        assert!(err.contains("\"1.5\" is not a whole number"), "{err}");
        let err = parse(&["streamworker", "--group", "g", "--max-deliveries=0"]).unwrap_err();
        assert!(err.contains("0 is too small"), "{err}");
        let cli = parse(&["streamworker", "--group", "g", "--max-retries", "0"]).unwrap();
        assert_eq!(cli.work.max_retries, 0);
        let cli = parse(&["streamworker", "--group", "g"]).unwrap();
        assert_eq!(cli.work.concurrency, config::CONCURRENCY);
        let err = parse(&["streamworker", "--group", "g", "--dead-max-len", "-1"]).unwrap_err();
        assert!(err.contains("use a whole number of 0 or more"), "{err}");
    }

    #[test]
    fn exec_mode_defaults_to_per_job_and_needs_exec() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map_err(|e| e.to_string());
        let cli = parse(&["streamworker", "--group", "g", "--exec", "cat"]).unwrap();
        assert_eq!(cli.work.exec_mode, exec::ExecMode::PerJob);
        let args = ["streamworker", "--group", "g", "--exec-mode", "persistent"];
        let cli = parse(&[&args[..], &["--exec", "cat"]].concat()).unwrap();
        assert_eq!(cli.work.exec_mode, exec::ExecMode::Persistent);
        let err = parse(&args).unwrap_err();
        assert!(err.contains("--exec <CMD>"), "{err}");
    }

    #[test]
    fn the_dead_retention_flags_default_to_the_constants_and_take_0_for_off() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap().work;
        let work = parse(&["streamworker", "--group", "g"]);
        assert_eq!(
            (work.dead_max_len, *work.dead_max_age),
            (config::DEAD_MAX_LEN, config::DEAD_MAX_AGE)
        );
        let work = parse(&[
            "streamworker",
            "--group",
            "g",
            "--dead-max-len",
            "0",
            "--dead-max-age",
            "0",
        ]);
        assert_eq!(
            (work.dead_max_len, *work.dead_max_age),
            (0, std::time::Duration::ZERO)
        );
    }
}
