//! Schedules: the definitions schedulers register for listing, and each schedule's last tick.
//! (Schedulers read Redis's clock with `redis_time_ms`, so that they agree on what is due.)

use super::{Broker, reply};
use crate::error::{Error, Result};
use crate::keys::{Keys, validate_name};
use crate::schedule::stored::state_field;
use deadpool_redis::redis::{self, Value};
use std::collections::HashMap;

/// A registered schedule as `streamworker schedules` reads it.
#[derive(Debug, Clone)]
pub(crate) struct StoredSchedule {
    pub(crate) name: String,
    /// The JSON definition; `Value::Null` when it does not parse.
    pub(crate) definition: serde_json::Value,
    /// The schedule's state hash: tick_ms, last_run_tick_ms, last_job_id, last_run_ms.
    pub(crate) state: HashMap<String, String>,
}

impl Broker {
    /// The last tick taken by each `(keys, name)` schedule, `None` for a schedule never seen.
    pub(crate) async fn last_ticks(&self, schedules: &[(&Keys, &str)]) -> Result<Vec<Option<u64>>> {
        let reads = schedules
            .iter()
            .map(|(keys, name)| {
                let mut cmd = redis::cmd("HGET");
                cmd.arg(keys.schedule(name)).arg(state_field::TICK_MS);
                (keys.group(), cmd)
            })
            .collect();
        self.query_per_group(reads, "read schedule ticks").await
    }

    /// Records `now_ms` as a new schedule's starting point, unless a scheduler did already:
    /// ticks up to it are not run.
    pub(crate) async fn start_schedule(&self, keys: &Keys, name: &str, now_ms: u64) -> Result<()> {
        let mut conn = self.conn().await?;
        redis::cmd("HSETNX")
            .arg(keys.schedule(name))
            .arg(state_field::TICK_MS)
            .arg(now_ms)
            .query_async::<()>(&mut conn)
            .await
            .map_err(Error::redis("start schedule"))
    }

    /// Writes each `(keys, name, definition)` into its group's schedules hash and returns the
    /// definitions stored before (to tell a scheduler defining a name differently).
    pub(crate) async fn register_schedules(
        &self,
        schedules: &[(&Keys, &str, String)],
    ) -> Result<Vec<Option<String>>> {
        let reads = schedules
            .iter()
            .map(|(keys, name, _)| {
                let mut cmd = redis::cmd("HGET");
                cmd.arg(keys.schedules()).arg(*name);
                (keys.group(), cmd)
            })
            .collect();
        let before: Vec<Option<String>> = self.query_per_group(reads, "read schedules").await?;
        let writes = schedules
            .iter()
            .map(|(keys, name, def)| {
                let mut cmd = redis::cmd("HSET");
                cmd.arg(keys.schedules()).arg(*name).arg(def);
                (keys.group(), cmd)
            })
            .collect();
        self.query_per_group::<Value>(writes, "register schedules")
            .await?;
        Ok(before)
    }

    /// Every schedule registered for the group, with its state, and Redis's clock.
    pub(crate) async fn list_schedules(&self, keys: &Keys) -> Result<(u64, Vec<StoredSchedule>)> {
        const OP: &str = "list schedules";
        let now = self.redis_time_ms().await?;
        let mut conn = self.conn().await?;
        let defs: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(keys.schedules())
            .query_async(&mut conn)
            .await
            .map_err(Error::redis(OP))?;
        // A name that cannot be part of a key (written by hand) is listed without state.
        let valid: Vec<bool> = defs
            .iter()
            .map(|(name, _)| validate_name("schedule", name).is_ok())
            .collect();
        let mut pipe = redis::pipe();
        for ((name, _), _) in defs.iter().zip(&valid).filter(|(_, ok)| **ok) {
            pipe.cmd("HGETALL").arg(keys.schedule(name));
        }
        let mut states = if valid.iter().any(|ok| *ok) {
            pipe.query_async::<Vec<Value>>(&mut conn)
                .await
                .map_err(Error::redis(OP))?
        } else {
            Vec::new()
        }
        .into_iter();
        let mut out = Vec::with_capacity(defs.len());
        for ((name, def), ok) in defs.into_iter().zip(valid) {
            let state = match ok.then(|| states.next()).flatten() {
                Some(value) => reply::pairs(OP, value)?,
                None => Vec::new(),
            };
            out.push(StoredSchedule {
                name,
                definition: serde_json::from_str(&def).unwrap_or(serde_json::Value::Null),
                state: state
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            String::from_utf8_lossy(&k).into_owned(),
                            String::from_utf8_lossy(&v).into_owned(),
                        )
                    })
                    .collect(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((now, out))
    }
}
