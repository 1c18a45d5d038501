//! The scheduler: enqueues the jobs of periodic [`Schedule`]s at their ticks.
//!
//! Any number of schedulers may run the same schedules (one per worker is normal). Each pass
//! reads Redis's clock, so all of them agree on what is due; a tick is taken in the script that
//! enqueues its job (`lua/enqueue.lua`, condition `tick`), so exactly one of them enqueues it
//! and the others are told it was taken. Between passes a scheduler sleeps until the next tick
//! of its schedules (at most 30 s).

use crate::broker::{Broker, Enqueued};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::schedule::stored::definition_key;
use crate::schedule::{Missed, Schedule};
use crate::time::format_ms;
use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

/// Longest sleep between passes: bounds how long a clock jump or a lost tick goes unnoticed.
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// How often the definitions are written again for `streamworker schedules` (plus jitter).
const REGISTER_EVERY: Duration = Duration::from_secs(60);
/// Longest pause between passes while Redis is failing.
const MAX_ERROR_PAUSE: Duration = Duration::from_secs(30);

/// Runs periodic [`Schedule`]s: at each tick, enqueues the schedule's job, exactly once across
/// all the schedulers running that schedule.
///
/// A schedule seen for the first time starts at the next tick. After all schedulers were
/// stopped, the first one back handles the ticks missed meanwhile by the schedule's
/// [`Missed`] policy: one catch-up job, or none, never one per missed tick.
///
/// ```no_run
/// use std::time::Duration;
/// use streamworker::{Client, Job, Schedule, Scheduler};
///
/// # async fn demo() -> Result<(), streamworker::Error> {
/// let client = Client::connect("redis://127.0.0.1:6379").await?;
/// let scheduler = Scheduler::new(&client)
///     .schedule(Schedule::cron(
///         "nightly-report",
///         "0 30 2 * * *",
///         Job::new("reports", "build_report", &serde_json::json!({"kind": "daily"}))?,
///     )?)
///     .schedule(Schedule::every(
///         "sync-prices",
///         Duration::from_secs(300),
///         Job::new("sync", "sync_prices", &())?,
///     )?);
/// scheduler.run(async { tokio::signal::ctrl_c().await.ok(); }).await
/// # }
/// ```
///
/// A [`Worker`](crate::Worker) runs one for you with
/// [`WorkerBuilder::schedule`](crate::WorkerBuilder::schedule), and the CLI with
/// `--schedule`.
#[derive(Debug)]
pub struct Scheduler {
    /// Where ticks are read and taken and jobs enqueued.
    broker: Broker,
    /// Largest encoded arguments a scheduled job may have (the client's limit).
    max_payload_bytes: usize,
    /// The schedules run.
    schedules: Vec<Schedule>,
    /// The keys of each schedule's group, by the schedules' index.
    keys: Vec<Keys>,
    /// Who registers the definitions: `host-pid`.
    by: String,
    /// When the definitions were last written (minus jitter).
    registered: Option<Instant>,
    /// Schedules whose differing definition elsewhere was already reported.
    warned: HashSet<usize>,
}

impl Scheduler {
    /// A scheduler that enqueues through `client`, with no schedule yet.
    pub fn new(client: &Client) -> Scheduler {
        Scheduler::on_broker(client.broker().clone(), client.payload_limit())
    }

    /// A scheduler that enqueues through `broker`, refusing jobs whose encoded arguments
    /// exceed `max_payload_bytes`, with no schedule yet.
    pub(crate) fn on_broker(broker: Broker, max_payload_bytes: usize) -> Scheduler {
        Scheduler {
            broker,
            max_payload_bytes,
            schedules: Vec::new(),
            keys: Vec::new(),
            by: format!(
                "{}-{}",
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| "host".into()),
                std::process::id()
            ),
            registered: None,
            warned: HashSet::new(),
        }
    }

    /// Adds a schedule. Two schedules with one name in one group make
    /// [`run`](Scheduler::run) fail.
    pub fn schedule(mut self, schedule: Schedule) -> Scheduler {
        self.keys.push(Keys::new(schedule.group()));
        self.schedules.push(schedule);
        self
    }

    /// Checks the schedules: names unique per group, jobs a producer may send.
    pub(crate) fn check(&self) -> Result<()> {
        let mut seen = HashSet::new();
        for s in &self.schedules {
            if !seen.insert((s.group().clone(), s.name().to_string())) {
                return Err(Error::Config(format!(
                    "schedule {:?} of group {} is defined twice; give each schedule its own name",
                    s.name(),
                    s.group()
                )));
            }
            s.job_for(0, true).check(self.max_payload_bytes)?;
        }
        Ok(())
    }

    /// Enqueues the schedules' jobs at their ticks until `shutdown` completes. Returns an
    /// error only when the schedules are invalid (a name used twice in a group); Redis
    /// failures are logged and retried with backoff, and the ticks they delayed are handled
    /// when Redis is back (on time, or by the [`Missed`] policy).
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        self.check()?;
        if self.schedules.is_empty() {
            return Ok(());
        }
        tracing::info!(
            schedules = ?self.schedules.iter().map(Schedule::name).collect::<Vec<_>>(),
            "scheduler started"
        );
        tokio::pin!(shutdown);
        let mut failures: u32 = 0;
        loop {
            let sleep = match self.pass().await {
                Ok(sleep) => {
                    if failures > 0 {
                        tracing::info!("scheduler reaches Redis again");
                    }
                    failures = 0;
                    sleep
                }
                Err(e) => {
                    if failures == 0 {
                        tracing::error!(error = %e, "scheduling failed; retrying with backoff");
                    }
                    failures += 1;
                    Duration::from_secs(1)
                        .saturating_mul(1 << failures.min(5))
                        .min(MAX_ERROR_PAUSE)
                }
            };
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = &mut shutdown => break,
            }
        }
        tracing::info!("scheduler stopped");
        Ok(())
    }

    /// One pass: enqueues what is due and returns how long to sleep before the next.
    pub(crate) async fn pass(&mut self) -> Result<Duration> {
        let now = self.broker.redis_time_ms().await?;
        if self
            .registered
            .is_none_or(|at| at.elapsed() >= REGISTER_EVERY)
        {
            self.register(now).await?;
        }
        let broker = &self.broker;
        let names: Vec<(&Keys, &str)> = self
            .keys
            .iter()
            .zip(&self.schedules)
            .map(|(k, s)| (k, s.name()))
            .collect();
        let last_ticks = broker.last_ticks(&names).await?;
        let mut wake_at = now + MAX_SLEEP.as_millis() as u64;
        for ((schedule, keys), last) in self.schedules.iter().zip(&self.keys).zip(last_ticks) {
            let next = schedule.when().next_after(now);
            match last {
                None => {
                    broker.start_schedule(keys, schedule.name(), now).await?;
                    tracing::info!(schedule = schedule.name(), when = %schedule.when().describe(), first_run = %format_ms(next), "new schedule: it starts at its next tick");
                }
                Some(last) => self.fire(schedule, last, now).await?,
            }
            if let Some(next) = next {
                wake_at = wake_at.min(next);
            }
        }
        // +1 ms: wake just after the tick, never just before it.
        Ok(Duration::from_millis(wake_at.saturating_sub(now) + 1))
    }

    /// Enqueues (or skips) the latest tick of `schedule` if it is after `last`.
    async fn fire(&self, schedule: &Schedule, last: u64, now: u64) -> Result<()> {
        let Some(latest) = schedule.when().latest_at_or_before(now) else {
            return Ok(());
        };
        if latest <= last {
            return Ok(());
        }
        let late = Duration::from_millis(now - latest) > schedule.grace_period();
        let run = !late || schedule.missed_policy() == Missed::CatchUp;
        let passed = schedule.when().ticks_between(last, latest);
        let job = schedule.job_for(latest, run);
        let job_id = job.id().clone();
        let outcome = self
            .broker
            .enqueue(std::slice::from_ref(&job), false)
            .await?;
        let name = schedule.name();
        let tick = format_ms(Some(latest));
        match outcome.into_iter().next() {
            Some(Enqueued::TickTaken) => {
                tracing::debug!(schedule = name, %tick, "tick already taken by another scheduler")
            }
            Some(Enqueued::TickSkipped) => tracing::warn!(
                schedule = name,
                missed = passed,
                last_missed = %tick,
                next = %format_ms(schedule.when().next_after(now)),
                "ticks missed while no scheduler ran are skipped (policy skip)"
            ),
            Some(Enqueued::Added) if late => tracing::warn!(
                schedule = name,
                missed = passed,
                %job_id,
                "ticks missed while no scheduler ran: enqueued one job to catch up (policy catch-up)"
            ),
            Some(Enqueued::Added) if passed > 1 => tracing::info!(
                schedule = name,
                ticks = passed,
                %job_id,
                "several ticks passed since the last pass: enqueued one job for the latest"
            ),
            Some(Enqueued::Added) => tracing::info!(schedule = name, %job_id, "enqueued"),
            Some(Enqueued::Duplicate(holder)) => tracing::info!(
                schedule = name,
                %tick,
                holder = %holder,
                "tick not enqueued: the job of an earlier tick still holds the uniqueness lock"
            ),
            // Schedules do not enqueue once.
            Some(Enqueued::AlreadyStored) | None => {}
        }
        Ok(())
    }

    /// Writes the definitions for `streamworker schedules`, and warns when another scheduler
    /// stored a different definition under the same name.
    async fn register(&mut self, now: u64) -> Result<()> {
        let defs: Vec<(&Keys, &str, serde_json::Value)> = self
            .keys
            .iter()
            .zip(&self.schedules)
            .map(|(k, s)| (k, s.name(), s.definition()))
            .collect();
        let stored: Vec<(&Keys, &str, String)> = defs
            .iter()
            .map(|(k, name, def)| {
                let mut def = def.clone();
                def[definition_key::SEEN_MS] = now.into();
                def[definition_key::BY] = self.by.clone().into();
                (*k, *name, def.to_string())
            })
            .collect();
        let before = self.broker.register_schedules(&stored).await?;
        for (i, ((_, name, ours), theirs)) in defs.iter().zip(before).enumerate() {
            let Some(mut theirs) =
                theirs.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            else {
                continue;
            };
            let by = theirs
                .as_object_mut()
                .and_then(|o| {
                    o.remove(definition_key::SEEN_MS);
                    o.remove(definition_key::BY)
                })
                .unwrap_or_default();
            if &theirs != ours && self.warned.insert(i) {
                tracing::warn!(schedule = name, other = %by, ours = %ours, theirs = %theirs, "another scheduler defines this schedule differently; both take ticks from the same record, so the jobs follow whichever computes a tick first: give them the same definition or different names");
            }
        }
        // Jitter, so many schedulers started together do not all write at once.
        let jitter = Duration::from_millis(rand::random_range(0..10_000));
        self.registered = Some(
            Instant::now()
                .checked_sub(jitter)
                .unwrap_or_else(Instant::now),
        );
        Ok(())
    }
}
