//! Periodic jobs: a [`Schedule`] binds a cron expression or a fixed interval to a job, and says
//! what to do about ticks missed while no scheduler ran. Pure time arithmetic; the
//! [`Scheduler`](crate::Scheduler) loop does the I/O.

use crate::error::{Error, Result};
use crate::job::{Job, JobId, Tick, system_time_ms};
use crate::keys::validate_name;
use chrono::{DateTime, TimeZone, Timelike};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest schedule name: a tick's job id is `{name}.{tick in ms}` and must fit in 64
/// characters.
pub const MAX_SCHEDULE_NAME_LEN: usize = 48;
/// How late a tick may be enqueued and still count as on time (see [`Schedule::grace`]).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);
/// Most missed ticks counted for a log line; beyond it the count says "at least".
const MAX_COUNTED: usize = 10_000;

/// What a scheduler does with ticks that passed while no scheduler ran (or Redis could not be
/// reached) and that are now later than the schedule's [grace](Schedule::grace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Missed {
    /// Enqueue one job, for the latest missed tick, however many were missed: the work is
    /// done once when schedulers come back, never once per missed tick. The default.
    #[default]
    CatchUp,
    /// Enqueue nothing for missed ticks; the next run is the next tick.
    Skip,
}

impl Missed {
    /// `catch-up` or `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Missed::CatchUp => "catch-up",
            Missed::Skip => "skip",
        }
    }
}

impl FromStr for Missed {
    type Err = Error;
    fn from_str(s: &str) -> Result<Missed> {
        match s {
            "catch-up" | "catch_up" | "catchup" => Ok(Missed::CatchUp),
            "skip" => Ok(Missed::Skip),
            other => Err(Error::Config(format!(
                "missed-ticks policy {other:?}: use catch-up or skip"
            ))),
        }
    }
}

impl fmt::Display for Missed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a schedule fires.
#[derive(Debug, Clone)]
pub(crate) enum When {
    /// A cron expression (5 fields, or 6 with seconds first) evaluated in a time zone.
    Cron {
        expr: String,
        cron: Box<Cron>,
        tz: Tz,
    },
    /// Every `interval`, at the multiples of it since the Unix epoch (UTC), so every scheduler
    /// agrees on the ticks without talking to the others.
    Every(Duration),
}

impl When {
    pub(crate) fn cron(expr: &str, tz: Option<&str>) -> Result<When> {
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expr)
            .map_err(|e| {
                Error::Config(format!(
                    "cron expression {expr:?} does not parse: {e} (use 5 fields, \
                     `min hour day month weekday`, or 6 with seconds first)"
                ))
            })?;
        let tz = match tz {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| {
                Error::Config(format!(
                    "unknown time zone {name:?}: use an IANA name such as Europe/Paris or UTC"
                ))
            })?,
        };
        Ok(When::Cron {
            expr: expr.to_string(),
            cron: Box::new(cron),
            tz,
        })
    }

    pub(crate) fn every(interval: Duration) -> Result<When> {
        if interval < Duration::from_secs(1) || interval.subsec_millis() != 0 {
            return Err(Error::Config(format!(
                "interval {} is not a whole number of seconds of at least 1 s",
                humantime::format_duration(interval)
            )));
        }
        Ok(When::Every(interval))
    }

    /// `cron 0 */5 * * * * (Europe/Paris)` or `every 5m`.
    pub(crate) fn describe(&self) -> String {
        match self {
            When::Cron { expr, tz, .. } => format!("cron {expr} ({tz})"),
            When::Every(iv) => format!("every {}", humantime::format_duration(*iv)),
        }
    }

    fn interval_ms(iv: &Duration) -> u64 {
        iv.as_millis() as u64
    }

    fn at(tz: &Tz, ms: u64) -> Option<DateTime<Tz>> {
        // croner works in whole seconds: drop the milliseconds.
        tz.timestamp_millis_opt(i64::try_from(ms).ok()?)
            .single()?
            .with_nanosecond(0)
    }

    /// The latest tick at or before `now_ms`.
    pub(crate) fn latest_at_or_before(&self, now_ms: u64) -> Option<u64> {
        match self {
            When::Every(iv) => {
                let iv = When::interval_ms(iv);
                Some(now_ms - now_ms % iv)
            }
            When::Cron { cron, tz, .. } => {
                let now = When::at(tz, now_ms)?;
                let t = cron.find_previous_occurrence(&now, true).ok()?;
                u64::try_from(t.timestamp_millis()).ok()
            }
        }
    }

    /// The first tick after `now_ms`.
    pub(crate) fn next_after(&self, now_ms: u64) -> Option<u64> {
        match self {
            When::Every(iv) => {
                let iv = When::interval_ms(iv);
                Some(now_ms - now_ms % iv + iv)
            }
            When::Cron { cron, tz, .. } => {
                let now = When::at(tz, now_ms)?;
                let t = cron.find_next_occurrence(&now, false).ok()?;
                u64::try_from(t.timestamp_millis()).ok()
            }
        }
    }

    /// How many ticks fall in `(after_ms, up_to_ms]`, counting at most [`MAX_COUNTED`].
    pub(crate) fn ticks_between(&self, after_ms: u64, up_to_ms: u64) -> usize {
        if up_to_ms <= after_ms {
            return 0;
        }
        match self {
            When::Every(iv) => {
                let iv = When::interval_ms(iv);
                ((up_to_ms / iv - after_ms / iv) as usize).min(MAX_COUNTED)
            }
            When::Cron { cron, tz, .. } => {
                let Some(after) = When::at(tz, after_ms) else {
                    return 0;
                };
                cron.iter_after(after)
                    .take(MAX_COUNTED)
                    .take_while(|t| {
                        u64::try_from(t.timestamp_millis()).is_ok_and(|t| t <= up_to_ms)
                    })
                    .count()
            }
        }
    }
}

/// A periodic job: a name, when it fires (cron or interval), the job enqueued at each tick,
/// and what to do about missed ticks.
///
/// Each tick's job gets the id `{name}.{tick in ms}` and is enqueued by exactly one of the
/// schedulers running this schedule: the tick is taken in the same script that enqueues the
/// job. The job's other options (priority, retries, timeout, keep_result, unique_for) come
/// from the job given here.
///
/// ```
/// use std::time::Duration;
/// use streamworker::{Job, Missed, Schedule};
///
/// let nightly = Schedule::cron(
///     "nightly-report",
///     "0 30 2 * * *", // 02:30:00 every day; seconds first, 5 fields work too
///     Job::new("reports", "build_report", &serde_json::json!({"kind": "daily"}))?,
/// )?
/// .time_zone("Europe/Paris")?
/// .missed(Missed::CatchUp);
///
/// let sync = Schedule::every(
///     "sync-prices",
///     Duration::from_secs(300),
///     Job::new("sync", "sync_prices", &())?,
/// )?
/// .missed(Missed::Skip);
/// # Ok::<(), streamworker::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Schedule {
    name: String,
    when: When,
    job: Job,
    missed: Missed,
    grace: Duration,
}

impl Schedule {
    /// Fires at the times of the cron expression `expr`, in UTC unless
    /// [`time_zone`](Schedule::time_zone) says otherwise. Five fields
    /// (`minute hour day-of-month month day-of-week`) or six with seconds first; names
    /// (`MON`, `JAN`), ranges, steps, `L`, `W` and `#` are understood.
    pub fn cron(name: &str, expr: &str, job: Job) -> Result<Schedule> {
        Schedule::new(name, When::cron(expr, None)?, job)
    }

    /// Fires every `interval` (whole seconds, at least 1 s), at the multiples of it since
    /// 1970-01-01T00:00:00Z: `every 1h` fires on the hour, `every 1d` at midnight UTC.
    pub fn every(name: &str, interval: Duration, job: Job) -> Result<Schedule> {
        Schedule::new(name, When::every(interval)?, job)
    }

    pub(crate) fn new(name: &str, when: When, job: Job) -> Result<Schedule> {
        validate_name("schedule", name)?;
        if name.len() > MAX_SCHEDULE_NAME_LEN {
            return Err(Error::InvalidName {
                kind: "schedule",
                name: name.to_string(),
                max: MAX_SCHEDULE_NAME_LEN,
            });
        }
        if job.due.is_some() {
            return Err(Error::Config(format!(
                "schedule {name}: its job runs at the schedule's ticks; remove .delay(..)/.at(..)"
            )));
        }
        Ok(Schedule {
            name: name.to_string(),
            when,
            job,
            missed: Missed::default(),
            grace: DEFAULT_GRACE,
        })
    }

    /// Evaluates the cron expression in the IANA time zone `tz` (e.g. `Europe/Paris`), so
    /// `0 0 9 * * *` is 09:00 local time through daylight saving changes. Only for cron
    /// schedules.
    pub fn time_zone(mut self, tz: &str) -> Result<Schedule> {
        match &self.when {
            When::Cron { expr, .. } => {
                self.when = When::cron(&expr.clone(), Some(tz))?;
                Ok(self)
            }
            When::Every(_) => Err(Error::Config(format!(
                "schedule {}: a time zone applies to cron expressions, not to intervals",
                self.name
            ))),
        }
    }

    /// What to do with missed ticks (default [`Missed::CatchUp`]).
    pub fn missed(mut self, policy: Missed) -> Schedule {
        self.missed = policy;
        self
    }

    /// How late a tick may be enqueued and still count as on time (default
    /// [`DEFAULT_GRACE`], 1 min). A tick found later than this, because every scheduler was
    /// down or Redis unreachable at its time, is a missed tick and follows the
    /// [`Missed`] policy. Ticks that passed while a scheduler was merely slow are folded into
    /// the latest one, which is enqueued once.
    pub fn grace(mut self, grace: Duration) -> Schedule {
        self.grace = grace;
        self
    }

    /// The schedule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The group its jobs are enqueued into.
    pub fn group(&self) -> &crate::GroupName {
        self.job.group()
    }

    /// The first tick after `time`, or `None` if the expression never fires again.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use streamworker::{Job, Schedule};
    ///
    /// let s = Schedule::cron("hourly", "0 * * * *", Job::new("g", "t", &())?)?;
    /// let next = s.next_after(UNIX_EPOCH + Duration::from_secs(90)).unwrap();
    /// assert_eq!(next, UNIX_EPOCH + Duration::from_secs(3600));
    /// # Ok::<(), streamworker::Error>(())
    /// ```
    pub fn next_after(&self, time: SystemTime) -> Option<SystemTime> {
        self.when
            .next_after(system_time_ms(time))
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
    }

    pub(crate) fn when(&self) -> &When {
        &self.when
    }

    pub(crate) fn missed_policy(&self) -> Missed {
        self.missed
    }

    pub(crate) fn grace_period(&self) -> Duration {
        self.grace
    }

    /// The job for the tick at `tick_ms`: `run` = false only records the tick as handled.
    pub(crate) fn job_for(&self, tick_ms: u64, run: bool) -> Job {
        let mut job = self.job.clone();
        job.id = JobId::from_parts(format!("{}.{tick_ms}", self.name));
        job.tick = Some(Tick {
            schedule: self.name.clone(),
            at_ms: tick_ms,
            run,
        });
        job
    }

    /// The definition stored in Redis for `streamworker schedules`.
    pub(crate) fn definition(&self) -> serde_json::Value {
        let mut def = serde_json::json!({
            "task": self.job.task,
            "priority": self.job.priority.as_str(),
            "missed": self.missed.as_str(),
            "grace_ms": self.grace.as_millis() as u64,
        });
        match &self.when {
            When::Cron { expr, tz, .. } => {
                def["cron"] = expr.clone().into();
                def["tz"] = tz.name().into();
            }
            When::Every(iv) => def["every_ms"] = (iv.as_millis() as u64).into(),
        }
        if let Ok(json) = self.job.payload.to_json()
            && let Ok(args) = serde_json::from_slice::<serde_json::Value>(&json)
        {
            def["args"] = args;
        }
        def
    }
}

/// A schedule as registered in Redis by the schedulers running it, with its next and last run:
/// what `streamworker schedules` lists. Read with [`Client::schedules`](crate::Client::schedules).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ScheduleInfo {
    /// The schedule's name.
    pub name: String,
    /// When it fires: `cron 0 */5 * * * * (UTC)` or `every 5m`; `?` when the stored
    /// definition cannot be read.
    pub when: String,
    /// The task its jobs call.
    pub task: String,
    /// The missed-ticks policy: `catch-up` or `skip`.
    pub missed: String,
    /// The next tick after now (Redis's clock), in ms since the Unix epoch.
    pub next_run_ms: Option<u64>,
    /// When the last job was enqueued (Redis's clock), in ms since the Unix epoch.
    pub last_run_ms: Option<u64>,
    /// The tick that job was for.
    pub last_run_tick_ms: Option<u64>,
    /// That job's id.
    pub last_job_id: Option<String>,
    /// The latest tick handled, enqueued or skipped.
    pub last_tick_ms: Option<u64>,
    /// When a scheduler last registered the definition: a schedule no scheduler runs any
    /// more keeps its old time.
    pub seen_ms: Option<u64>,
    /// The stored definition (JSON).
    pub definition: serde_json::Value,
}

impl ScheduleInfo {
    pub(crate) fn from_stored(
        now_ms: u64,
        name: String,
        definition: serde_json::Value,
        state: &std::collections::HashMap<String, String>,
    ) -> ScheduleInfo {
        let when = when_from_definition(&definition);
        let num = |k: &str| state.get(k).and_then(|v| v.parse::<u64>().ok());
        let text = |k: &str| {
            definition
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        ScheduleInfo {
            name,
            when: when
                .as_ref()
                .map_or_else(|| "?".to_string(), When::describe),
            task: text("task").unwrap_or_else(|| "?".into()),
            missed: text("missed").unwrap_or_else(|| "?".into()),
            next_run_ms: when.as_ref().and_then(|w| w.next_after(now_ms)),
            last_run_ms: num("last_run_ms"),
            last_run_tick_ms: num("last_run_tick_ms"),
            last_job_id: state.get("last_job_id").cloned(),
            last_tick_ms: num("tick_ms"),
            seen_ms: definition.get("seen_ms").and_then(|v| v.as_u64()),
            definition,
        }
    }
}

/// Reads the `when` part of a stored definition back.
pub(crate) fn when_from_definition(def: &serde_json::Value) -> Option<When> {
    if let Some(expr) = def.get("cron").and_then(|v| v.as_str()) {
        return When::cron(expr, def.get("tz").and_then(|v| v.as_str())).ok();
    }
    let ms = def.get("every_ms")?.as_u64()?;
    When::every(Duration::from_millis(ms)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;
    const HOUR: u64 = 60 * MIN;
    /// 2026-03-29T00:30:00Z, the night Europe/Paris moves from UTC+1 to UTC+2 at 01:00 UTC.
    const DST_NIGHT: u64 = 1_774_744_200_000;

    fn job() -> Job {
        Job::new("g", "t", &()).unwrap()
    }

    #[test]
    fn cron_ticks_with_and_without_seconds() {
        let five = When::cron("*/5 * * * *", None).unwrap();
        assert_eq!(five.latest_at_or_before(7 * MIN + 1), Some(5 * MIN));
        assert_eq!(
            five.latest_at_or_before(5 * MIN),
            Some(5 * MIN),
            "inclusive"
        );
        assert_eq!(five.next_after(5 * MIN), Some(10 * MIN), "exclusive");
        assert_eq!(five.next_after(5 * MIN + 500), Some(10 * MIN));
        assert_eq!(five.ticks_between(0, HOUR), 12);
        let six = When::cron("*/10 * * * * *", None).unwrap();
        assert_eq!(six.latest_at_or_before(25_400), Some(20_000));
        assert_eq!(six.next_after(25_400), Some(30_000));
        assert!(When::cron("61 * * * *", None).is_err());
        assert!(When::cron("* * *", None).is_err());
    }

    #[test]
    fn a_cron_time_zone_follows_local_time_through_daylight_saving() {
        let utc = When::cron("0 0 9 * * *", None).unwrap();
        let paris = When::cron("0 0 9 * * *", Some("Europe/Paris")).unwrap();
        // The day before the change Paris is UTC+1; the day after, UTC+2.
        assert_eq!(
            utc.next_after(DST_NIGHT),
            Some(DST_NIGHT + 8 * HOUR + 30 * MIN)
        );
        assert_eq!(
            paris.next_after(DST_NIGHT),
            Some(DST_NIGHT + 6 * HOUR + 30 * MIN),
            "09:00 CEST = 07:00 UTC"
        );
        assert_eq!(
            paris.next_after(DST_NIGHT - 24 * HOUR),
            Some(DST_NIGHT - 24 * HOUR + 7 * HOUR + 30 * MIN),
            "09:00 CET = 08:00 UTC"
        );
        assert!(When::cron("* * * * *", Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn intervals_tick_at_multiples_since_the_epoch() {
        let every = When::every(Duration::from_secs(300)).unwrap();
        assert_eq!(every.latest_at_or_before(7 * MIN), Some(5 * MIN));
        assert_eq!(every.next_after(7 * MIN), Some(10 * MIN));
        assert_eq!(every.next_after(10 * MIN), Some(15 * MIN));
        assert_eq!(every.ticks_between(5 * MIN, 20 * MIN), 3);
        assert_eq!(every.ticks_between(20 * MIN, 20 * MIN), 0);
        assert!(When::every(Duration::from_millis(500)).is_err());
        assert!(When::every(Duration::from_millis(1500)).is_err());
    }

    #[test]
    fn names_delays_and_zones_are_checked() {
        assert!(Schedule::cron("a b", "* * * * *", job()).is_err());
        assert!(Schedule::cron(&"x".repeat(49), "* * * * *", job()).is_err());
        assert!(Schedule::cron(&"x".repeat(48), "* * * * *", job()).is_ok());
        let delayed = job().delay(Duration::from_secs(1));
        assert!(Schedule::cron("n", "* * * * *", delayed).is_err());
        let every = Schedule::every("n", Duration::from_secs(60), job()).unwrap();
        assert!(every.time_zone("UTC").is_err());
    }

    #[test]
    fn each_tick_has_its_own_deterministic_job_id() {
        let s = Schedule::every("sync", Duration::from_secs(60), job()).unwrap();
        let a = s.job_for(120_000, true);
        let b = s.job_for(120_000, true);
        assert_eq!(a.id().as_str(), "sync.120000");
        assert_eq!(a.id(), b.id());
        assert_ne!(s.job_for(180_000, true).id(), a.id());
        let longest = Schedule::every(&"x".repeat(48), Duration::from_secs(60), job()).unwrap();
        // A tick in the year 5138 still fits.
        let id = longest.job_for(99_999_999_999_999, true);
        assert!(JobId::parse(id.id().as_str()).is_ok(), "fits the id limit");
    }

    #[test]
    fn a_stored_definition_reads_back_as_the_same_ticks() {
        let s = Schedule::cron("n", "0 9 * * MON-FRI", job())
            .unwrap()
            .time_zone("America/New_York")
            .unwrap();
        let back = when_from_definition(&s.definition()).unwrap();
        assert_eq!(back.next_after(DST_NIGHT), s.when().next_after(DST_NIGHT));
        let e = Schedule::every("e", Duration::from_secs(90), job()).unwrap();
        let back = when_from_definition(&e.definition()).unwrap();
        assert_eq!(back.describe(), "every 1m 30s");
    }
}
