//! What an attacker writes to Redis (task names, errors, args, consumer and schedule names
//! holding newlines, carriage returns and terminal escape sequences) never reaches the
//! operator's terminal raw: every operations command shows it escaped, `--json` keeps it
//! exact, and tables count wide characters (CJK, emoji) as two columns. A group is seeded by
//! hand with the redis crate, as another program would write it, and the built binary is run.

mod support;

use serde_json::Value as Json;
use std::time::{SystemTime, UNIX_EPOCH};
use support::cli::{json, run, text};
use support::keys::{key, unique_group};
use support::seed::{deliver_to, hset, xadd};
use support::server::RedisServer;

/// A forged line, a carriage return, a screen clear, a window title and an 8-bit CSI.
const EVIL: &str = "evil\nforged line\r\x1b[2J\x1b]0;title\x07\u{9b}31m";
/// [`EVIL`] as the human output shows it.
const EVIL_SHOWN: &str = "evil\\nforged line\\r\\x1b[2J\\x1b]0;title\\x07\\u{9b}31m";
/// Args that are not JSON, shown as their text.
const EVIL_ARGS: &str = "{\"to\":\"x\"}\x1b[2J\n";
/// [`EVIL_ARGS`] as the human output shows it.
const EVIL_ARGS_SHOWN: &str = "{\"to\":\"x\"}\\x1b[2J\\n";
/// A consumer named by a hostile worker.
const CONSUMER: &str = "w\x1b]0;pwned\x07\n1";
/// [`CONSUMER`] as the human output shows it.
const CONSUMER_SHOWN: &str = "w\\x1b]0;pwned\\x07\\n1";
/// A task name of 3 characters and 6 columns.
const WIDE: &str = "任务🚀";
/// A consumer name with two wide characters.
const WIDE_CONSUMER: &str = "worker-任务";
/// The dead jobs' field that no column shows, with a hostile name.
const NOTE: &str = "note\x1b[2J";

/// Now, in ms since the epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Seeds a group with hostile values everywhere a command shows one: three jobs in `default`
/// (`run-evil` delivered to [`CONSUMER`], `run-wide` and `run-plain` to [`WIDE_CONSUMER`]),
/// three dead jobs (`dead-evil`, `dead-wide`, `dead-plain`), a succeeded job's status record
/// (`kept-evil`), two delayed jobs (`later-evil`, `later-wide`) and two schedules (named
/// [`EVIL`] and [`WIDE`]). Returns the group.
fn seed_hostile(redis: &RedisServer) -> String {
    let g = unique_group("hostile");
    let mut c = redis.conn();
    for p in ["high", "default", "low"] {
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(key(&g, p))
            .arg(&g)
            .arg("0")
            .arg("MKSTREAM")
            .query(&mut c)
            .unwrap();
    }
    let stream = key(&g, "default");
    for (id, task) in [
        ("run-evil", EVIL),
        ("run-wide", WIDE),
        ("run-plain", "send"),
    ] {
        xadd(
            &mut c,
            &stream,
            &[("id", id), ("task", task), ("args", EVIL_ARGS)],
        );
    }
    deliver_to(&mut c, &stream, &g, CONSUMER, 1);
    deliver_to(&mut c, &stream, &g, WIDE_CONSUMER, 2);

    let now = now_ms().to_string();
    let reason = format!("failed: {EVIL}");
    for (id, task) in [
        ("dead-evil", EVIL),
        ("dead-wide", WIDE),
        ("dead-plain", "send"),
    ] {
        xadd(
            &mut c,
            &key(&g, "dead"),
            &[
                ("id", id),
                ("task", task),
                ("args", EVIL_ARGS),
                ("attempt", "3"),
                ("priority", "default"),
                ("reason", &reason),
                ("dead_ms", &now),
                (NOTE, EVIL),
            ],
        );
    }
    hset(
        &mut c,
        &key(&g, "job:kept-evil"),
        &[
            ("state", "succeeded"),
            ("task", EVIL),
            ("attempt", "2"),
            ("last_error", EVIL),
            ("result", EVIL),
            ("finished_ms", &now),
        ],
    );
    for (id, task) in [("later-evil", EVIL), ("later-wide", WIDE)] {
        let packed = rmp_serde::to_vec(&[
            "2",
            "id",
            id,
            "task",
            task,
            "args",
            "{}",
            "attempt",
            "2",
            "last_error",
            EVIL,
        ])
        .unwrap();
        let _: () = redis::cmd("ZADD")
            .arg(key(&g, "delayed"))
            .arg(now_ms() + 3_600_000)
            .arg(id)
            .query(&mut c)
            .unwrap();
        let _: () = redis::cmd("HSET")
            .arg(key(&g, "delayed:jobs"))
            .arg(id)
            .arg(packed)
            .query(&mut c)
            .unwrap();
    }
    for (name, task) in [(EVIL, EVIL), (WIDE, "send")] {
        let def = serde_json::json!({ "task": task, "missed": "skip", "every_ms": 60_000 });
        hset(&mut c, &key(&g, "schedules"), &[(name, &def.to_string())]);
    }
    g
}

/// Panics when `bytes` are not UTF-8 or hold a character a terminal acts on (a control
/// character other than the newlines that end lines, a line separator, a bidi control).
fn assert_clean(what: &str, bytes: &[u8]) {
    let text =
        std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{what}: output is not UTF-8 ({e})"));
    let raw: Vec<char> = text
        .chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect();
    assert!(
        raw.is_empty(),
        "{what}: raw {raw:?} reached the terminal:\n{}",
        text.escape_debug()
    );
}

/// Runs `streamworker --redis URL ARGS` in human mode, asserts it succeeds and that neither
/// stdout nor stderr holds a raw control character; returns stdout.
async fn human(redis: &RedisServer, args: &[&str]) -> String {
    let url = redis.url();
    let mut all = vec!["--redis", url.as_str()];
    all.extend_from_slice(args);
    let out = run(&all).await;
    assert_clean(&format!("{args:?} stdout"), &out.stdout);
    assert_clean(&format!("{args:?} stderr"), &out.stderr);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        text(&out.stderr).escape_debug()
    );
    text(&out.stdout)
}

/// Columns `text` takes on a terminal: the wide characters of these tests take two.
fn columns(text: &str) -> usize {
    text.chars()
        .map(|c| if "任务🚀".contains(c) { 2 } else { 1 })
        .sum()
}

/// The first line of `out` holding every one of `needles`.
fn line<'a>(out: &'a str, needles: &[&str]) -> &'a str {
    out.lines()
        .find(|l| needles.iter().all(|n| l.contains(n)))
        .unwrap_or_else(|| panic!("no line with {needles:?} in:\n{out}"))
}

/// The column where the last `needle` starts in `line`.
fn col(line: &str, needle: &str) -> usize {
    let at = line
        .rfind(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {line:?}"));
    columns(&line[..at])
}

/// The column where the cell after the one holding `cell` ends in `line`.
fn end_of_next(line: &str, cell: &str) -> usize {
    let after = line.find(cell).expect("the cell") + cell.len();
    let rest = &line[after..];
    let next = rest.trim_start();
    let start = after + rest.len() - next.len();
    columns(&line[..start]) + columns(next.split(' ').next().unwrap())
}

/// Asserts that the rows holding `rows` have their `cell` where `header`'s title starts.
fn assert_aligned(out: &str, header: &[&str], title: &str, rows: &[&str], cell: &str) {
    let head = line(out, header);
    for row in rows {
        let l = line(out, &[row]);
        assert_eq!(
            col(l, cell),
            col(head, title),
            "{cell:?} of row {row:?} is not under {title:?}:\n{out}"
        );
    }
}

/// The element of JSON array `items` whose `field` is `value`.
fn find<'a>(items: &'a Json, field: &str, value: &str) -> &'a Json {
    items
        .as_array()
        .expect("an array")
        .iter()
        .find(|i| i[field] == value)
        .unwrap_or_else(|| panic!("no {field} = {value:?} in {items}"))
}

#[tokio::test]
async fn status_and_top_escape_consumer_names_and_align_wide_ones() {
    let redis = RedisServer::start();
    let g = seed_hostile(&redis);

    let status = human(&redis, &["status", "--group", &g]).await;
    let top = human(&redis, &["top"]).await;
    for (out, header) in [
        (&status, ["CONSUMER", "IN FLIGHT", "IDLE"]),
        (&top, ["GROUP", "CONSUMER ", "IDLE"]),
    ] {
        assert!(out.contains(CONSUMER_SHOWN), "{out}");
        let head = line(out, &header);
        let in_flight = col(head, "IN FLIGHT") + "IN FLIGHT".len();
        for name in [CONSUMER_SHOWN, WIDE_CONSUMER] {
            let row = line(out, &[name]);
            assert_eq!(
                end_of_next(row, name),
                in_flight,
                "the count of {name:?} is not under IN FLIGHT:\n{out}"
            );
        }
    }

    for args in [vec!["status", "--group", &g], vec!["top"]] {
        let mut all = vec!["--json"];
        all.extend_from_slice(&args);
        let j = json(&redis, &all).await;
        let consumers = &find(&j, "group", &g)["consumers"];
        find(consumers, "name", CONSUMER);
        find(consumers, "name", WIDE_CONSUMER);
    }
}

#[tokio::test]
async fn pending_and_job_escape_what_producers_and_workers_wrote() {
    let redis = RedisServer::start();
    let g = seed_hostile(&redis);

    let pending = human(&redis, &["pending", "--group", &g]).await;
    assert!(
        pending.contains(EVIL_SHOWN) && pending.contains(CONSUMER_SHOWN),
        "{pending}"
    );
    let header = ["PRIORITY", "JOB ID", "CONSUMER"];
    assert_aligned(&pending, &header, "CONSUMER", &["run-evil"], CONSUMER_SHOWN);
    assert_aligned(
        &pending,
        &header,
        "CONSUMER",
        &["run-wide", "run-plain"],
        WIDE_CONSUMER,
    );

    let running = human(&redis, &["job", "run-evil", "--group", &g]).await;
    for shown in [EVIL_SHOWN, CONSUMER_SHOWN, EVIL_ARGS_SHOWN] {
        assert!(running.contains(shown), "{shown:?} in:\n{running}");
    }
    let kept = human(&redis, &["job", "kept-evil", "--group", &g]).await;
    assert!(
        line(&kept, &["last error:"]).ends_with(EVIL_SHOWN)
            && line(&kept, &["result:"]).ends_with(EVIL_SHOWN),
        "{kept}"
    );

    let j = json(&redis, &["--json", "pending", "--group", &g]).await;
    let entry = find(&j, "job_id", "run-evil");
    assert_eq!(
        (&entry["task"], &entry["consumer"]),
        (&EVIL.into(), &CONSUMER.into())
    );
    let j = json(&redis, &["--json", "job", "run-evil", "--group", &g]).await;
    assert_eq!(j["task"], EVIL);
    assert_eq!(j["args"], EVIL_ARGS);
    assert_eq!(j["place"]["consumer"], CONSUMER);
    let j = json(&redis, &["--json", "job", "kept-evil", "--group", &g]).await;
    assert_eq!(
        (&j["last_error"], &j["result"]),
        (&EVIL.into(), &EVIL.into())
    );
}

#[tokio::test]
async fn dead_list_show_and_retry_escape_tasks_reasons_and_fields() {
    let redis = RedisServer::start();
    let g = seed_hostile(&redis);

    let list = human(&redis, &["dead", "--group", &g, "list"]).await;
    assert!(list.contains(EVIL_SHOWN), "the task whole: {list}");
    assert!(
        line(&list, &["dead-evil"]).ends_with(&format!("failed: {EVIL_SHOWN}")),
        "the reason on one line: {list}"
    );
    let ids = ["dead-evil", "dead-wide", "dead-plain"];
    let header = ["DIED", "TASK", "PRIORITY"];
    assert_aligned(&list, &header, "PRIORITY", &ids, "default");
    assert_aligned(&list, &header, "REASON", &ids, "failed: ");

    let show = human(&redis, &["dead", "--group", &g, "show", "dead-evil"]).await;
    assert!(line(&show, &["task:"]).ends_with(EVIL_SHOWN), "{show}");
    assert!(
        line(&show, &["reason:"]).ends_with(&format!("failed: {EVIL_SHOWN}")),
        "{show}"
    );
    assert!(line(&show, &["args:"]).ends_with(EVIL_ARGS_SHOWN), "{show}");
    assert!(
        show.contains(&format!("note\\x1b[2J: {EVIL_SHOWN}")),
        "{show}"
    );
    let dead_job = human(&redis, &["job", "dead-evil", "--group", &g]).await;
    assert!(
        line(&dead_job, &["last error:"]).ends_with(EVIL_SHOWN),
        "{dead_job}"
    );

    let j = json(&redis, &["--json", "dead", "--group", &g, "list"]).await;
    let dead = find(&j, "job_id", "dead-evil");
    assert_eq!(dead["task"], EVIL);
    assert_eq!(dead["reason"], format!("failed: {EVIL}"));
    let j = json(
        &redis,
        &["--json", "dead", "--group", &g, "show", "dead-wide"],
    )
    .await;
    assert_eq!(
        (&j["task"], &j["fields"][NOTE]),
        (&WIDE.into(), &EVIL.into())
    );

    let retried = human(&redis, &["dead", "--group", &g, "retry", "dead-evil"]).await;
    assert!(retried.contains(&format!("({EVIL_SHOWN})")), "{retried}");
}

#[tokio::test]
async fn delayed_and_schedules_escape_and_align_wide_names() {
    let redis = RedisServer::start();
    let g = seed_hostile(&redis);

    let delayed = human(&redis, &["delayed", "--group", &g, "list"]).await;
    assert!(delayed.contains(EVIL_SHOWN), "{delayed}");
    assert!(
        line(&delayed, &["later-evil"]).ends_with(EVIL_SHOWN),
        "{delayed}"
    );
    let header = ["DUE IN", "PRIORITY"];
    let rows = ["later-evil", "later-wide"];
    assert_aligned(&delayed, &header, "PRIORITY", &rows, "default");
    assert_aligned(&delayed, &header, "LAST ERROR", &rows, "evil\\nforged");
    let job = human(&redis, &["job", "later-wide", "--group", &g]).await;
    assert!(line(&job, &["last error:"]).ends_with(EVIL_SHOWN), "{job}");

    let schedules = human(&redis, &["schedules", "--group", &g]).await;
    let header = ["NAME", "WHEN", "TASK"];
    assert_aligned(&schedules, &header, "WHEN", &[EVIL_SHOWN, WIDE], "every");
    assert_aligned(&schedules, &header, "MISSED", &[EVIL_SHOWN, WIDE], "skip");

    let j = json(&redis, &["--json", "delayed", "--group", &g, "list"]).await;
    let later = find(&j, "job_id", "later-evil");
    assert_eq!(
        (&later["task"], &later["last_error"]),
        (&EVIL.into(), &EVIL.into())
    );
    let j = json(&redis, &["--json", "schedules", "--group", &g]).await;
    assert_eq!(find(&j, "name", EVIL)["task"], EVIL);
    assert_eq!(find(&j, "name", WIDE)["task"], "send");
}

#[tokio::test]
async fn an_error_naming_a_hostile_consumer_is_escaped_on_stderr() {
    let redis = RedisServer::start();
    let g = seed_hostile(&redis);
    let url = redis.url();
    let out = run(&["--redis", &url, "cancel", "run-evil", "--group", &g]).await;
    assert!(
        !out.status.success(),
        "nobody listens for the cancel request"
    );
    assert_clean("cancel stderr", &out.stderr);
    assert!(
        text(&out.stderr).contains(&format!("running on {CONSUMER_SHOWN}")),
        "{}",
        text(&out.stderr).escape_debug()
    );
}

/// A batch written by another producer with control characters in its state and failed ids is
/// shown escaped by `streamworker batch`.
#[tokio::test]
async fn batch_escapes_what_another_producer_wrote() {
    let redis = RedisServer::start();
    let g = seed_hostile(&redis);
    let mut c = redis.conn();
    hset(
        &mut c,
        &key(&g, "batch:b1"),
        &[("state", EVIL), ("total", "1"), ("policy", EVIL)],
    );
    redis::cmd("SADD")
        .arg(key(&g, "batch:b1:failed"))
        .arg(EVIL)
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("SADD")
        .arg(key(&g, "batch:b1:pending"))
        .arg(EVIL)
        .query::<()>(&mut c)
        .unwrap();
    let out = human(&redis, &["batch", "b1", "--group", &g]).await;
    assert!(out.contains(&format!("pending   {EVIL_SHOWN}")), "{out}");
    assert!(out.contains(&format!("state     {EVIL_SHOWN}")), "{out}");
    assert!(out.contains(&format!("failed    {EVIL_SHOWN}")), "{out}");
}
