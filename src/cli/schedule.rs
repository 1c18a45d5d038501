//! Schedules on the command line: the worker's `--schedule SPEC` flag and the
//! `streamworker schedules --group G` listing.

use super::escaped::Escaped;
use super::safe::Shown;
use super::table::Table;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::job::Job;
use crate::priority::Priority;
use crate::schedule::{Missed, Schedule};
use crate::time::format_ms;

/// What `--schedule` accepts, for error messages.
const SPEC_SHAPE: &str = "name=NAME;cron=EXPR|every=DURATION;task=TASK[;tz=ZONE][;missed=catch-up|skip][;grace=DURATION][;priority=P][;group=G][;args=JSON]";

/// Parses one `--schedule` value:
/// `name=nightly;cron=0 30 2 * * *;tz=Europe/Paris;task=build_report;args={"kind":"daily"}`.
/// `args`, when present, comes last: everything after `args=` is the JSON. `group` defaults
/// to `default_group` (the worker's only `--group`).
pub(super) fn parse_spec(spec: &str, default_group: Option<&str>) -> Result<Schedule> {
    let bad =
        |why: String| Error::Config(format!("--schedule {spec:?}: {why}; expected {SPEC_SHAPE}"));
    // The first `args=` that starts a part (at the start, or after `;` and spaces).
    let args_at = spec.match_indices("args=").map(|(i, _)| i).find(|&i| {
        let before = spec[..i].trim_end();
        before.is_empty() || before.ends_with(';')
    });
    let (head, args) = match args_at {
        Some(i) => (
            spec[..i].trim_end().trim_end_matches(';'),
            Some(&spec[i + 5..]),
        ),
        None => (spec, None),
    };
    let mut fields: Vec<(&str, &str)> = Vec::new();
    for part in head.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("{part:?} is not key=value")))?;
        let k = k.trim();
        if fields.iter().any(|(seen, _)| *seen == k) {
            return Err(bad(format!("{k} is given twice")));
        }
        fields.push((k, v.trim()));
    }
    let get = |k: &str| fields.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    for (k, _) in &fields {
        if !matches!(
            *k,
            "name" | "cron" | "every" | "task" | "tz" | "missed" | "grace" | "priority" | "group"
        ) {
            return Err(bad(format!("unknown key {k:?}")));
        }
    }
    let name = get("name").ok_or_else(|| bad("name is missing".into()))?;
    let task = get("task").ok_or_else(|| bad("task is missing".into()))?;
    let group = get("group").or(default_group).ok_or_else(|| {
        bad("group is missing (needed when the worker serves several groups)".into())
    })?;
    let duration =
        |k: &str, v: &str| humantime::parse_duration(v).map_err(|e| bad(format!("{k}={v}: {e}")));
    let mut job = Job::from_json(group, task, args.unwrap_or("{}").trim())?;
    if let Some(p) = get("priority") {
        job = job.priority(p.parse::<Priority>().map_err(|e| bad(e.to_string()))?);
    }
    let mut schedule = match (get("cron"), get("every")) {
        (Some(expr), None) => Schedule::cron(name, expr, job)?,
        (None, Some(every)) => Schedule::every(name, duration("every", every)?, job)?,
        _ => {
            return Err(bad(
                "give exactly one of cron=EXPR and every=DURATION".into()
            ));
        }
    };
    if let Some(tz) = get("tz") {
        schedule = schedule.time_zone(tz)?;
    }
    if let Some(m) = get("missed") {
        schedule = schedule.missed(m.parse::<Missed>()?);
    }
    if let Some(g) = get("grace") {
        schedule = schedule.grace(duration("grace", g)?);
    }
    Ok(schedule)
}

/// Flags of `streamworker schedules`.
#[derive(Debug, clap::Args)]
pub(super) struct SchedulesArgs {
    /// Group whose schedules to list
    #[arg(long)]
    group: String,
}

/// Prints the group's schedules: a table, or with `--json` one JSON array.
pub(super) async fn list(redis: &str, json: bool, args: SchedulesArgs) -> Result<()> {
    let client = Client::connect(redis).await?;
    let schedules = client.schedules(&args.group).await?;
    if json {
        let rows: Vec<serde_json::Value> = schedules
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "when": s.when,
                    "task": s.task,
                    "missed": s.missed,
                    "next_run_ms": s.next_run_ms,
                    "last_run_ms": s.last_run_ms,
                    "last_run_tick_ms": s.last_run_tick_ms,
                    "last_job_id": s.last_job_id,
                    "last_tick_ms": s.last_tick_ms,
                    "seen_ms": s.seen_ms,
                    "definition": s.definition,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    if schedules.is_empty() {
        println!(
            "no schedules registered for group {} (schedulers register theirs when they start)",
            Shown::from(&args.group)
        );
        return Ok(());
    }
    let mut table = Table::new(&[
        "NAME",
        "WHEN",
        "TASK",
        "MISSED",
        "NEXT RUN (UTC)",
        "LAST RUN (UTC)",
        "LAST JOB",
    ])
    .text_only();
    for s in Escaped::new(schedules).iter() {
        table.row(vec![
            s.name.clone(),
            s.when.clone(),
            s.task.clone(),
            s.missed.clone(),
            format_ms(s.next_run_ms),
            format_ms(s.last_run_ms),
            s.last_job_id.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_spec_parses_with_json_args_last() {
        let s = parse_spec(
            r#"name=nightly; cron=0 30 2 * * *; tz=Europe/Paris; task=build_report; missed=skip; grace=5m; priority=high; args={"kind":"a;b=c"}"#,
            Some("reports"),
        )
        .unwrap();
        assert_eq!(s.name(), "nightly");
        assert_eq!(s.group().as_str(), "reports");
        let def = s.definition();
        assert_eq!(def["cron"], "0 30 2 * * *");
        assert_eq!(def["tz"], "Europe/Paris");
        assert_eq!(def["missed"], "skip");
        assert_eq!(def["grace_ms"], 300_000);
        assert_eq!(def["priority"], "high");
        assert_eq!(def["args"]["kind"], "a;b=c");
        let every = parse_spec("name=sync;every=5m;task=sync;group=other", Some("g")).unwrap();
        assert_eq!(every.group().as_str(), "other");
        assert_eq!(every.definition()["every_ms"], 300_000);
    }

    #[test]
    fn a_bad_spec_says_what_is_wrong() {
        let cases = [
            ("cron=* * * * *;task=t", "name is missing"),
            ("name=n;task=t", "exactly one of cron"),
            (
                "name=n;cron=* * * * *;every=1m;task=t",
                "exactly one of cron",
            ),
            ("name=n;every=1m;task=t;colour=blue", "unknown key"),
            ("name=n;every=soon;task=t", "every=soon"),
            ("name=n;every=1m", "task is missing"),
            ("name=n;name=m;every=1m;task=t", "given twice"),
            ("name=n;cron=99 * * * *;task=t", "does not parse"),
            (
                "name=n;cron=* * * * *;task=t;tz=Nowhere/City",
                "unknown time zone",
            ),
            ("name=n;every=1m;task=t;missed=maybe", "catch-up or skip"),
            ("name=n;every=1m;task=t;args={oops", "not valid JSON"),
            ("name=n;every=1m;task=t;myargs=1", "unknown key"),
        ];
        for (spec, want) in cases {
            let err = parse_spec(spec, Some("g")).unwrap_err().to_string();
            assert!(err.contains(want), "{spec}: {err}");
        }
        let err = parse_spec("name=n;every=1m;task=t", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("group is missing"), "{err}");
    }
}
