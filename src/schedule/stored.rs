//! A schedule as stored in Redis: its definition (JSON, in the group's `schedules` hash,
//! written by every scheduler running it, read by `streamworker schedules`) and its state
//! (the `schedule:{name}` hash, which the enqueue script updates as it takes ticks). The field
//! names are spelled once here in Rust; `lua/enqueue.lua` spells the state's as literals.

use super::Schedule;
use super::when::When;
use std::collections::HashMap;
use std::time::Duration;

/// The keys of a stored definition.
pub(crate) mod definition_key {
    use crate::job::{dead, field};

    /// The task its jobs call.
    pub(crate) const TASK: &str = field::TASK;
    /// The priority of its jobs, by name (`high`, `default`, `low`).
    pub(crate) const PRIORITY: &str = dead::PRIORITY;
    /// The missed-ticks policy (`catch-up`, `skip`).
    pub(crate) const MISSED: &str = "missed";
    /// The grace period, in ms.
    pub(crate) const GRACE_MS: &str = "grace_ms";
    /// A cron schedule's expression.
    pub(crate) const CRON: &str = "cron";
    /// A cron schedule's time zone (IANA name).
    pub(crate) const TZ: &str = "tz";
    /// An interval schedule's interval, in ms.
    pub(crate) const EVERY_MS: &str = "every_ms";
    /// Its jobs' arguments as JSON, when they have a JSON form.
    pub(crate) const ARGS: &str = field::ARGS;
    /// When a scheduler last registered it (Redis's clock), in ms since the Unix epoch.
    pub(crate) const SEEN_MS: &str = "seen_ms";
    /// Who last registered it: `host-pid` of the scheduler.
    pub(crate) const BY: &str = "by";
}

/// The fields of a schedule's state hash.
pub(crate) mod state_field {
    /// The latest tick taken, enqueued or skipped, in ms since the Unix epoch.
    pub(crate) const TICK_MS: &str = "tick_ms";
    /// The tick the last enqueued job was for.
    pub(crate) const LAST_RUN_TICK_MS: &str = "last_run_tick_ms";
    /// The id of the last enqueued job.
    pub(crate) const LAST_JOB_ID: &str = "last_job_id";
    /// When the last job was enqueued (Redis's clock), in ms since the Unix epoch.
    pub(crate) const LAST_RUN_MS: &str = "last_run_ms";
}

impl Schedule {
    /// The definition stored in Redis for `streamworker schedules`.
    pub(crate) fn definition(&self) -> serde_json::Value {
        let mut def = serde_json::json!({
            (definition_key::TASK): self.job.task,
            (definition_key::PRIORITY): self.job.priority.as_str(),
            (definition_key::MISSED): self.missed.as_str(),
            (definition_key::GRACE_MS): self.grace.as_millis() as u64,
        });
        match &self.when {
            When::Cron { expr, tz, .. } => {
                def[definition_key::CRON] = expr.clone().into();
                def[definition_key::TZ] = tz.name().into();
            }
            When::Every(iv) => def[definition_key::EVERY_MS] = (iv.as_millis() as u64).into(),
        }
        if let Ok(json) = self.job.payload.to_json()
            && let Ok(args) = serde_json::from_slice::<serde_json::Value>(&json)
        {
            def[definition_key::ARGS] = args;
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
    /// Reads schedule `name` back from its stored `definition` and `state`, with its next
    /// tick after `now_ms` (Redis's clock).
    pub(crate) fn from_stored(
        now_ms: u64,
        name: String,
        definition: serde_json::Value,
        state: &HashMap<String, String>,
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
            task: text(definition_key::TASK).unwrap_or_else(|| "?".into()),
            missed: text(definition_key::MISSED).unwrap_or_else(|| "?".into()),
            next_run_ms: when.as_ref().and_then(|w| w.next_after(now_ms)),
            last_run_ms: num(state_field::LAST_RUN_MS),
            last_run_tick_ms: num(state_field::LAST_RUN_TICK_MS),
            last_job_id: state.get(state_field::LAST_JOB_ID).cloned(),
            last_tick_ms: num(state_field::TICK_MS),
            seen_ms: definition
                .get(definition_key::SEEN_MS)
                .and_then(|v| v.as_u64()),
            definition,
        }
    }
}

/// Reads the `when` part of a stored definition back.
pub(crate) fn when_from_definition(def: &serde_json::Value) -> Option<When> {
    if let Some(expr) = def.get(definition_key::CRON).and_then(|v| v.as_str()) {
        return When::cron(expr, def.get(definition_key::TZ).and_then(|v| v.as_str())).ok();
    }
    let ms = def.get(definition_key::EVERY_MS)?.as_u64()?;
    When::every(Duration::from_millis(ms)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Job;

    /// 2026-03-29T00:30:00Z, the night Europe/Paris moves from UTC+1 to UTC+2 at 01:00 UTC.
    const DST_NIGHT: u64 = 1_774_744_200_000;

    fn job() -> Job {
        Job::new("g", "t", &()).unwrap()
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
