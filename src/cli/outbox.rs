//! `streamworker outbox init|relay|status` (feature `postgres`): the PostgreSQL outbox's table,
//! its standalone relay, and what waits in it.

use super::safe::escape;
use super::table::print_json;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::outbox::{self, Relay, RelayConfig};
use humantime::Duration;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

/// Flags of `streamworker outbox`.
#[derive(Debug, clap::Args)]
pub(super) struct OutboxArgs {
    /// PostgreSQL URL of the database holding the outbox table
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<String>,

    #[command(subcommand)]
    command: OutboxCommand,
}

#[derive(Debug, clap::Subcommand)]
enum OutboxCommand {
    /// Create the outbox table, its index and its trigger (safe to run again)
    Init,
    /// Move committed outbox rows into Redis until SIGTERM/SIGINT (several may run at once)
    Relay(RelayArgs),
    /// Rows waiting, the oldest one's wait, and rows that are not jobs
    Status,
}

/// Flags of `streamworker outbox relay` (and of the worker's `--outbox`).
#[derive(Debug, Clone, clap::Args)]
pub(super) struct RelayArgs {
    /// Most rows moved per pass (one transaction, one Redis round trip)
    #[arg(long = "outbox-batch", default_value_t = RelayConfig::default().batch, value_parser = super::count::<usize, 1>)]
    outbox_batch: usize,

    /// How long Redis remembers a relayed job id, so a row sent again by a relay that died
    /// before deleting it stores nothing
    #[arg(long = "outbox-dedupe-for", default_value_t = RelayConfig::default().dedupe_for.into())]
    outbox_dedupe_for: Duration,

    /// Serve Prometheus metrics (the outbox backlog and age) on http://ADDR/metrics
    #[arg(long = "outbox-metrics-addr", value_name = "ADDR")]
    outbox_metrics_addr: Option<std::net::SocketAddr>,
}

impl RelayArgs {
    fn config(&self) -> RelayConfig {
        RelayConfig {
            batch: self.outbox_batch,
            dedupe_for: *self.outbox_dedupe_for,
            ..RelayConfig::default()
        }
    }
}

pub(super) async fn run(redis: &str, json: bool, args: OutboxArgs) -> Result<()> {
    let url = args.database_url.ok_or_else(|| {
        Error::Config(
            "no database: pass --database-url postgres://USER@HOST/DB or set DATABASE_URL".into(),
        )
    })?;
    let pool = connect(&url).await?;
    match args.command {
        OutboxCommand::Init => {
            outbox::init(&pool).await?;
            println!(
                "outbox ready: table {} with its trigger on channel {}",
                outbox::TABLE,
                outbox::CHANNEL
            );
            Ok(())
        }
        OutboxCommand::Status => status(&pool, json).await,
        OutboxCommand::Relay(relay_args) => {
            let stop = CancellationToken::new();
            let signal = super::work::shutdown_signal()?;
            let on_signal = stop.clone();
            tokio::spawn(async move {
                signal.await;
                on_signal.cancel();
            });
            relay(redis, pool, &relay_args, None, stop).await
        }
    }
}

/// A pool for the outbox at `url`: a few connections (a relay uses two: its passes and its
/// listener).
pub(super) async fn connect(url: &str) -> Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(4)
        .connect(url)
        .await
        .map_err(|e| Error::Database {
            op: "connecting to PostgreSQL",
            message: format!("{e} (check --database-url / DATABASE_URL)"),
        })
}

/// Runs a relay from `pool` to `redis` until `stop`; serves its metrics when asked, or records
/// into `metrics` (a worker's) when given.
pub(super) async fn relay(
    redis: &str,
    pool: PgPool,
    args: &RelayArgs,
    metrics: Option<Metrics>,
    stop: CancellationToken,
) -> Result<()> {
    let client = Client::connect(redis).await?;
    let mut relay = Relay::new(pool, client).config(args.config());
    let metrics = match (metrics, args.outbox_metrics_addr) {
        (Some(m), _) => Some(m),
        (None, Some(addr)) => {
            let m = Metrics::new();
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| Error::Config(format!("cannot serve metrics on {addr}: {e}")))?;
            tracing::info!(%addr, "serving outbox metrics on /metrics");
            tokio::spawn(crate::metrics::serve(listener, m.clone(), stop.clone()));
            Some(m)
        }
        (None, None) => None,
    };
    if let Some(m) = metrics {
        relay = relay.metrics(m);
    }
    relay.run(stop.cancelled_owned()).await
}

async fn status(pool: &PgPool, json: bool) -> Result<()> {
    let s = outbox::status(pool).await?;
    if json {
        #[derive(serde::Serialize)]
        struct Failed<'a> {
            id: i64,
            job_id: &'a str,
            group: &'a str,
            error: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Out<'a> {
            backlog: u64,
            oldest_age_ms: Option<u128>,
            failed_count: u64,
            failed: Vec<Failed<'a>>,
        }
        return print_json(&Out {
            backlog: s.backlog,
            oldest_age_ms: s.oldest_age.map(|a| a.as_millis()),
            failed_count: s.failed_count,
            failed: s
                .failed
                .iter()
                .map(|f| Failed {
                    id: f.id,
                    job_id: &f.job_id,
                    group: &f.queue_group,
                    error: &f.error,
                })
                .collect(),
        });
    }
    let oldest = match s.oldest_age {
        Some(age) => format!(
            ", the oldest waiting {}",
            humantime::format_duration(std::time::Duration::from_millis(age.as_millis() as u64))
        ),
        None => String::new(),
    };
    println!("{} rows waiting for a relay{oldest}", s.backlog);
    if s.failed_count > 0 {
        println!(
            "{} rows are not jobs (fix them and set error = NULL, or delete them):",
            s.failed_count
        );
        for f in &s.failed {
            println!(
                "  row {}  job {}  group {}: {}",
                f.id,
                escape(&f.job_id),
                escape(&f.queue_group),
                escape(&f.error)
            );
        }
    }
    Ok(())
}
