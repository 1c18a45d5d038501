//! Periodic jobs: a [`Schedule`] binds a cron expression or a fixed interval to a job, and says
//! what to do about ticks missed while no scheduler ran. Nothing here does I/O: the
//! [`Scheduler`](crate::Scheduler) loop does.
//!
//! - this file: [`Schedule`], its options and [`Missed`];
//! - `when`: when a schedule fires (pure time arithmetic);
//! - `stored`: its stored form (definition and state) and [`ScheduleInfo`], read back from it.

pub(crate) mod stored;
mod when;

pub use stored::ScheduleInfo;
pub(crate) use when::When;

use crate::error::{Error, Result};
use crate::job::{Job, JobId, Tick};
use crate::keys::validate_name;
use crate::time::{ms_system_time, system_time_ms};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

/// Longest schedule name: a tick's job id is `{name}.{tick in ms}` and must fit in 64
/// characters.
pub const MAX_SCHEDULE_NAME_LEN: usize = 48;
/// How late a tick may be enqueued and still count as on time (see [`Schedule::grace`]).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);

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

    /// A schedule firing `when`, after checking its name and that `job` has no due time.
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
            .map(ms_system_time)
    }

    /// When it fires.
    pub(crate) fn when(&self) -> &When {
        &self.when
    }

    /// What it does with missed ticks.
    pub(crate) fn missed_policy(&self) -> Missed {
        self.missed
    }

    /// How late a tick may be and still count as on time.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job::new("g", "t", &()).unwrap()
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
    fn each_tick_s_job_carries_the_template_s_headers() {
        let template = job().header("origin", "https://a.example");
        let s = Schedule::every("sync", Duration::from_secs(60), template).unwrap();
        let tick = s.job_for(60_000, true);
        assert_eq!(tick.header_value("origin"), Some("https://a.example"));
    }
}
