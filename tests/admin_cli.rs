//! The operations commands as users run them: the built `streamworker` binary against a real
//! redis-server holding a known state (jobs waiting, in flight, delayed, dead), reading its
//! tables and its JSON; and a worker process serving `/metrics`.

mod support;

use serde_json::Value as Json;
use std::process::Stdio;
use streamworker::Job;
use support::cli::{json, ok, row, run, text};
use support::inspect::{exists, stream_entries, xlen};
use support::keys::{key, unique_group};
use support::known::{GONE, SEEDER, known_state};
use support::process::{WorkerProcess, bin};
use support::seed::xadd;
use support::server::{RedisServer, free_port};
use support::wait::{WAIT, until, wait_until};
use support::workers::client;

#[tokio::test]
async fn status_table_and_json_give_the_same_numbers_with_json_anywhere() {
    let redis = RedisServer::start();
    let s = known_state(&redis).await;
    let g = s.group.as_str();

    let table = ok(&redis, &["status", "--group", g]).await;
    assert!(
        table.starts_with(&format!("group {g}: active\n")),
        "{table}"
    );
    assert_eq!(row(&table, "high")[1..3], ["1", "0"], "{table}");
    assert_eq!(row(&table, "default")[1..3], ["3", "1"], "{table}");
    assert_eq!(row(&table, "low")[1..4], ["0", "0", "-"], "{table}");
    assert_eq!(row(&table, "total")[1..3], ["4", "1"], "{table}");
    assert!(
        table.contains("delayed 2 (next due in 59m") && table.contains("dead 2"),
        "{table}"
    );
    assert_eq!(row(&table, GONE)[1], "1", "{table}");
    assert_eq!(row(&table, SEEDER)[1], "0", "{table}");
    assert_eq!(
        row(&table, "minute")[1..],
        ["3", "1", "2", "0", "2"],
        "3 processed: 1 succeeded, 2 dead: {table}"
    );

    let url = redis.url();
    for args in [
        vec!["--json", "status"],
        vec!["status", "--json"],
        vec!["status", "--redis", url.as_str(), "--json"],
    ] {
        let j = json(&redis, &args).await;
        let groups = j.as_array().unwrap();
        assert_eq!(groups.len(), 1, "every group, here one: {j}");
        let st = &groups[0];
        assert_eq!(st["group"], g);
        assert_eq!(
            (&st["ready"], &st["pending"], &st["delayed"], &st["dead"]),
            (
                &Json::from(4),
                &Json::from(1),
                &Json::from(2),
                &Json::from(2)
            ),
            "{st}"
        );
        assert_eq!(st["queues"][1]["priority"], "default");
        assert_eq!(st["queues"][1]["ready"], 3);
        assert_eq!(st["last_hour"]["dead"], 2);
        assert_eq!(st["consumers"][0]["name"], GONE);
    }
}

#[tokio::test]
async fn pending_shows_the_stalled_entry_as_next_to_reap() {
    let redis = RedisServer::start();
    let s = known_state(&redis).await;
    let g = s.group.as_str();

    let table = ok(&redis, &["pending", "--group", g]).await;
    let r = row(&table, "default");
    assert_eq!(r[2], s.in_flight.as_str(), "{table}");
    assert_eq!(
        (r[3].as_str(), r[4].as_str(), r[5].as_str()),
        ("send", "1", GONE)
    );
    assert!(r[6].starts_with("10m"), "idle 10 minutes: {table}");
    assert!(table.contains("next to reap"), "{table}");
    assert!(table.contains("1 in flight shown; 1 idle over the visibility timeout (30s)"));

    let j = json(&redis, &["pending", "--group", g, "--json"]).await;
    assert_eq!(j.as_array().unwrap().len(), 1);
    assert_eq!(j[0]["job_id"], s.in_flight.as_str());
    assert_eq!(j[0]["next_to_reap"], true);
    assert_eq!(j[0]["deliveries"], 1);
    let patient = json(
        &redis,
        &[
            "pending",
            "--group",
            g,
            "--visibility-timeout",
            "1h",
            "--json",
        ],
    )
    .await;
    assert_eq!(patient[0]["next_to_reap"], false);
    let none = ok(&redis, &["pending", "--group", g, "--min-idle", "20m"]).await;
    assert!(none.contains("nothing in flight"), "{none}");
    let other = json(
        &redis,
        &["pending", "--group", g, "--consumer", SEEDER, "--json"],
    )
    .await;
    assert_eq!(other, Json::Array(Vec::new()));
}

#[tokio::test]
async fn job_says_where_each_job_is() {
    let redis = RedisServer::start();
    let s = known_state(&redis).await;
    let g = s.group.as_str();
    let state = |out: &str| out.lines().nth(1).unwrap_or_default().to_string();

    let running = ok(&redis, &["job", s.in_flight.as_str(), "--group", g]).await;
    assert!(
        state(&running).contains(&format!("running on {GONE} (idle 10m")),
        "{running}"
    );
    let waiting = ok(&redis, &["job", s.waiting[0].as_str(), "--group", g]).await;
    assert!(
        state(&waiting).contains("waiting in the default stream"),
        "{waiting}"
    );
    let delayed = ok(&redis, &["job", s.delayed[0].as_str(), "--group", g]).await;
    assert!(state(&delayed).contains("delayed until"), "{delayed}");
    let dead = ok(&redis, &["job", s.dead[0].as_str(), "--group", g]).await;
    assert!(state(&dead).contains("dead since"), "{dead}");
    assert!(
        dead.contains("last error: failed without retry: boom"),
        "{dead}"
    );

    let j = json(
        &redis,
        &["job", s.in_flight.as_str(), "--group", g, "--json"],
    )
    .await;
    assert_eq!(
        (&j["place"]["state"], &j["place"]["consumer"], &j["task"]),
        (
            &Json::from("running"),
            &Json::from(GONE),
            &Json::from("send")
        ),
        "{j}"
    );
}

#[tokio::test]
async fn dead_retry_and_purge_move_exactly_what_they_say() {
    let redis = RedisServer::start();
    let s = known_state(&redis).await;
    let g = s.group.as_str();
    let mut conn = redis.conn();

    let table = ok(&redis, &["dead", "--group", g, "list"]).await;
    let newest = table.lines().nth(1).unwrap_or_default();
    assert!(newest.contains(s.dead[1].as_str()), "newest first: {table}");
    assert!(table.contains("failed without retry: boom"), "{table}");
    let j = json(&redis, &["dead", "list", "--group", g, "--json"]).await;
    assert_eq!(j.as_array().unwrap().len(), 2);
    assert_eq!(j[1]["job_id"], s.dead[0].as_str());
    let shown = json(
        &redis,
        &["--json", "dead", "--group", g, "show", s.dead[0].as_str()],
    )
    .await;
    assert_eq!(shown["args"], r#"{"n":1}"#);

    let out = ok(&redis, &["dead", "--group", g, "retry", s.dead[0].as_str()]).await;
    assert!(
        out.contains(&format!("re-driven {} (boom)", s.dead[0])),
        "{out}"
    );
    assert!(out.contains("1 dead job of group"), "{out}");
    let dead_left = stream_entries(&mut conn, &key(g, "dead"));
    assert_eq!(dead_left.len(), 1);
    assert_eq!(dead_left[0]["id"], s.dead[1].as_str());
    let default = stream_entries(&mut conn, &key(g, "default"));
    assert_eq!(default.len(), 5, "4 seeded + 1 re-driven");
    assert_eq!(default[4]["id"], s.dead[0].as_str());
    assert_eq!(default[4]["attempt"], "1");

    let none = json(
        &redis,
        &[
            "dead", "--group", g, "retry", "--all", "--task", "nope", "--json",
        ],
    )
    .await;
    assert_eq!(none, Json::Array(Vec::new()));
    let all = json(&redis, &["dead", "--group", g, "retry", "--all", "--json"]).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert!(stream_entries(&mut conn, &key(g, "dead")).is_empty());

    // Purge: two fresh dead entries survive --older-than 1h, then --older-than 0s takes both.
    for _ in 0..2 {
        xadd(
            &mut conn,
            &key(g, "dead"),
            &[("task", "t"), ("reason", "r")],
        );
    }
    let kept = ok(
        &redis,
        &["dead", "--group", g, "purge", "--older-than", "1h"],
    )
    .await;
    assert!(
        kept.starts_with("purged 0 dead jobs older than 1h"),
        "{kept}"
    );
    let purged = json(
        &redis,
        &[
            "dead",
            "--group",
            g,
            "purge",
            "--older-than",
            "0s",
            "--json",
        ],
    )
    .await;
    assert_eq!(purged["purged"], 2);
    assert!(stream_entries(&mut conn, &key(g, "dead")).is_empty());
}

#[tokio::test]
async fn delayed_jobs_are_listed_and_run_now_and_groups_paused_and_resumed() {
    let redis = RedisServer::start();
    let s = known_state(&redis).await;
    let g = s.group.as_str();

    let table = ok(&redis, &["delayed", "--group", g, "list"]).await;
    let first = table.lines().nth(1).unwrap_or_default();
    assert!(
        first.starts_with("59m")
            && first.contains(s.delayed[0].as_str())
            && first.contains("later"),
        "{table}"
    );
    let moved = json(
        &redis,
        &[
            "delayed",
            "--group",
            g,
            "run-now",
            s.delayed[0].as_str(),
            "--json",
        ],
    )
    .await;
    assert_eq!(moved["job_id"], s.delayed[0].as_str());
    let default = stream_entries(&mut redis.conn(), &key(g, "default"));
    assert_eq!(default.last().unwrap()["id"], s.delayed[0].as_str());
    let high = s.delayed[1].as_str();
    let moved = ok(&redis, &["delayed", "--group", g, "run-now", high]).await;
    assert!(moved.contains(high), "{moved}");
    let high_stream = stream_entries(&mut redis.conn(), &key(g, "high"));
    assert_eq!(
        high_stream.last().unwrap()["id"],
        high,
        "into its own priority"
    );
    let empty = ok(&redis, &["delayed", "--group", g, "list"]).await;
    assert!(empty.contains("no delayed jobs"), "{empty}");

    let paused = ok(&redis, &["pause", "--group", g]).await;
    assert!(paused.contains("paused"), "{paused}");
    let status = ok(&redis, &["status", "--group", g]).await;
    assert!(
        status.starts_with(&format!("group {g}: PAUSED for")),
        "{status}"
    );
    let j = json(&redis, &["top", "--json"]).await;
    assert_eq!(j[0]["paused"], true);
    let again = json(&redis, &["pause", "--group", g, "--json"]).await;
    assert_eq!(again["changed"], false);
    let resumed = ok(&redis, &["resume", "--group", g]).await;
    assert!(resumed.contains("resumed"), "{resumed}");
    assert!(!exists(&mut redis.conn(), &key(g, "paused")));
}

#[tokio::test]
async fn top_prints_one_frame_when_stdout_is_not_a_terminal() {
    let redis = RedisServer::start();
    let s = known_state(&redis).await;
    let frame = ok(&redis, &["top"]).await;
    assert!(
        frame.starts_with("streamworker top  redis://127.0.0.1:"),
        "{frame}"
    );
    let r = row(&frame, &s.group);
    assert_eq!(r[1..6], ["active", "4", "1", "2", "2"], "{frame}");
    assert!(frame.contains(GONE), "consumers are listed: {frame}");
}

#[tokio::test]
async fn bad_input_gets_one_clear_line_and_a_non_zero_exit() {
    let redis = RedisServer::start();
    let s = known_state(&redis).await;
    let url = redis.url();
    let g = s.group.as_str();
    let cases: Vec<(Vec<&str>, i32, String)> = vec![
        (
            vec!["status", "--group", "nope"],
            1,
            format!(
                "error: unknown group \"nope\": no such group in this Redis; groups found: {g}"
            ),
        ),
        (
            vec!["job", "01NOSUCHJOB", "--group", g],
            1,
            format!("error: job 01NOSUCHJOB not found in group {g}: not waiting"),
        ),
        (
            vec!["dead", "--group", g, "retry", "01NOSUCHJOB"],
            1,
            "error: job 01NOSUCHJOB not found".into(),
        ),
        (
            vec!["delayed", "--group", g, "run-now", "01NOSUCHJOB"],
            1,
            "error: job 01NOSUCHJOB not found".into(),
        ),
        (vec!["dead", "list"], 1, "--group".into()),
        (
            vec!["pause", "--group", "a}{b"],
            1,
            "invalid group name".into(),
        ),
        (
            vec!["pending", "--group", g, "--min-idle", "5 parsecs"],
            2,
            "error: invalid value '5 parsecs' for '--min-idle".into(),
        ),
        (
            vec!["dead", "--group", g, "purge", "--older-than", "soon"],
            2,
            "--older-than".into(),
        ),
        (vec!["dead", "--group", g, "retry"], 2, "error: ".into()),
    ];
    for (args, code, wanted) in cases {
        let all: Vec<&str> = ["--redis", url.as_str()]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        let out = run(&all).await;
        assert_eq!(out.status.code(), Some(code), "{args:?}: {out:?}");
        let err = text(&out.stderr);
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: ") && err.contains(&wanted),
            "{args:?}: wanted {wanted:?} in: {err}"
        );
        if code == 1 {
            assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        }
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    }

    let secret = "redis://u:secret@127.0.0.1:1";
    for args in [
        vec!["--redis", secret, "status"],
        vec!["--redis", secret, "dead", "--group", "g", "list"],
        vec!["--redis", secret, "top"],
    ] {
        let out = run(&args).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with("error: cannot connect to Redis at redis://u:***@127.0.0.1:1"),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains("secret"),
            "{args:?} leaked the password: {err}"
        );
    }
}

/// `GET http://addr/metrics`: (status line, body).
async fn scrape(addr: &str) -> Option<(String, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

/// The value of the sample `name{labels}` (labels given as `k=v` pairs), if any.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

fn parse(body: &str) -> prometheus_parse::Scrape {
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    // Every sample line parses: bucket lines are gathered into one histogram per series
    // (19 bounds and +Inf), every other line is a sample of its own.
    let plain_lines = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.contains("_bucket{"))
        .count();
    let bucket_lines = body.lines().filter(|l| l.contains("_bucket{")).count();
    let histograms: Vec<usize> = scrape
        .samples
        .iter()
        .filter_map(|s| match &s.value {
            prometheus_parse::Value::Histogram(h) => Some(h.len()),
            _ => None,
        })
        .collect();
    assert_eq!(
        scrape.samples.len(),
        plain_lines + histograms.len(),
        "every sample line parses:\n{body}"
    );
    assert!(histograms.iter().all(|&n| n == 20), "{histograms:?}");
    assert_eq!(bucket_lines, 20 * histograms.len());
    assert!(
        body.lines().filter(|l| l.starts_with('#')).all(|l| [
            "# HELP ", "# TYPE ", "# UNIT ", "# EOF"
        ]
        .iter()
        .any(|p| l.starts_with(p))),
        "{body}"
    );
    scrape
}

#[tokio::test]
async fn metrics_are_prometheus_text_and_count_the_jobs_run() {
    let redis = RedisServer::start();
    let group = unique_group("metrics");
    let addr = format!("127.0.0.1:{}", free_port());
    let out = tempfile::tempdir().unwrap();
    let _worker = WorkerProcess::start(
        &redis.url(),
        out.path(),
        &[
            "--group",
            &group,
            "--retry-backoff",
            "10ms",
            "--metrics-addr",
            &addr,
            "--exec",
            r#"sh -c 'cat > /dev/null; [ "$STREAMWORKER_TASK" = ok ]'"#,
        ],
    );
    wait_until(WAIT, "the metrics endpoint", || {
        let addr = addr.clone();
        async move { scrape(&addr).await.is_some() }
    })
    .await;

    let client = client(&redis).await;
    for _ in 0..5 {
        client
            .enqueue(Job::from_json(&group, "ok", "{}").unwrap())
            .await
            .unwrap();
    }
    for _ in 0..2 {
        client
            .enqueue(Job::from_json(&group, "fail", "{}").unwrap().max_retries(1))
            .await
            .unwrap();
    }
    let mut conn = redis.conn();
    let dead_key = key(&group, "dead");
    until("both failing jobs dead", || xlen(&mut conn, &dead_key) == 2).await;

    // Counters are written before the outcome reaches Redis; the queue-depth gauges are
    // sampled every few seconds: wait until the sample shows the two dead jobs.
    wait_until(WAIT, "a depth sample with the 2 dead jobs", || {
        let addr = addr.clone();
        async move {
            let (_, body) = scrape(&addr).await.expect("the endpoint answers");
            sample(&parse(&body), "streamworker_queue_dead", &[]) == Some(2.0)
        }
    })
    .await;
    let (status, body) = scrape(&addr).await.expect("the endpoint answers");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let s = parse(&body);
    let job = |name: &str, task: &str| sample(&s, name, &[("group", &group), ("task", task)]);
    assert_eq!(job("streamworker_jobs_started_total", "ok"), Some(5.0));
    assert_eq!(job("streamworker_jobs_succeeded_total", "ok"), Some(5.0));
    assert_eq!(
        job("streamworker_jobs_started_total", "fail"),
        Some(4.0),
        "2 jobs x 2 attempts"
    );
    assert_eq!(job("streamworker_jobs_failed_total", "fail"), Some(4.0));
    assert_eq!(job("streamworker_jobs_retried_total", "fail"), Some(2.0));
    assert_eq!(job("streamworker_jobs_dead_total", "fail"), Some(2.0));
    assert_eq!(job("streamworker_jobs_succeeded_total", "fail"), None);
    assert_eq!(
        job("streamworker_job_duration_seconds_count", "ok"),
        Some(5.0)
    );
    assert_eq!(
        job("streamworker_job_duration_seconds_count", "fail"),
        Some(4.0)
    );
    assert_eq!(
        sample(&s, "streamworker_jobs_in_flight", &[("group", &group)]),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &s,
            "streamworker_queue_ready",
            &[("group", &group), ("priority", "default")]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &s,
            "streamworker_reaper_claimed_total",
            &[("group", &group)]
        ),
        Some(0.0),
        "every served group has its reaper series"
    );
}

/// The worker's retention flags bound the dead stream and `status` shows them; an oversized job
/// is shown cut with its size, and `dead retry` refuses it with the reason.
#[tokio::test]
async fn the_dead_stream_keeps_what_the_worker_flags_say_and_shows_cut_args() {
    let redis = RedisServer::start();
    let group = unique_group("deadcli");
    let g = group.as_str();
    let out = tempfile::tempdir().unwrap();
    let _worker = WorkerProcess::start(
        &redis.url(),
        out.path(),
        &[
            "--group",
            g,
            "--max-retries",
            "0",
            "--max-payload-bytes",
            "2048",
            "--dead-max-len",
            "3",
            "--dead-max-age",
            "2h",
            "--exec",
            "sh -c 'cat > /dev/null; exit 1'",
        ],
    );
    let client = client(&redis).await;
    for _ in 0..5 {
        client
            .enqueue(Job::from_json(g, "fail", "{}").unwrap())
            .await
            .unwrap();
    }
    wait_until(WAIT, "5 jobs dead", || async {
        json(&redis, &["status", "--group", g, "--json"]).await[0]["last_minute"]["dead"] == 5
    })
    .await;
    let mut conn = redis.conn();
    assert_eq!(xlen(&mut conn, &key(g, "dead")), 3);
    let table = ok(&redis, &["status", "--group", g]).await;
    assert!(
        table.contains("dead 3 (kept: newest 3, at most 2h00m old)"),
        "{table}"
    );
    let st = json(&redis, &["status", "--group", g, "--json"]).await;
    assert_eq!(
        st[0]["dead_retention"],
        serde_json::json!({"max_len": 3, "max_age_ms": 7_200_000})
    );

    let args = format!(r#"{{"blob":"{}"}}"#, "x".repeat(5000));
    let big = client
        .enqueue(Job::from_json(g, "fail", &args).unwrap())
        .await
        .unwrap();
    wait_until(WAIT, "the oversized job dead", || async {
        json(&redis, &["status", "--group", g, "--json"]).await[0]["last_minute"]["dead"] == 6
    })
    .await;
    assert_eq!(xlen(&mut conn, &key(g, "dead")), 3);
    let shown = ok(&redis, &["dead", "--group", g, "show", big.as_str()]).await;
    assert!(
        shown.contains(&format!(
            "(truncated: the first bytes of {} bytes were kept; cannot be retried)",
            args.len()
        )),
        "{shown}"
    );
    let j = json(
        &redis,
        &["dead", "--group", g, "show", big.as_str(), "--json"],
    )
    .await;
    assert_eq!(j["args_truncated_from"], args.len());
    assert_eq!(j["args"], args[..1024]);
    let report = ok(&redis, &["job", big.as_str(), "--group", g]).await;
    assert!(report.contains("truncated"), "{report}");

    let url = redis.url();
    let refused = run(&["--redis", &url, "dead", "--group", g, "retry", big.as_str()]).await;
    assert_eq!(refused.status.code(), Some(1));
    let err = text(&refused.stderr);
    assert!(
        err.starts_with(&format!("error: cannot retry dead job {big}"))
            && err.contains("over the payload limit"),
        "{err}"
    );
    assert_eq!(xlen(&mut conn, &key(g, "dead")), 3, "nothing moved");
}

/// `top` under a pseudo-terminal (util-linux `script`): it draws frames on the alternate
/// screen and quits cleanly on `q` and on Ctrl-C, giving the terminal back as it was.
#[tokio::test]
async fn top_runs_live_in_a_terminal_and_quits_on_q_or_ctrl_c() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let redis = RedisServer::start();
    let s = known_state(&redis).await;
    for key in ["q", "\x03"] {
        let command = format!(
            "{} --redis {} top --interval 200ms",
            bin().display(),
            redis.url()
        );
        let mut child = tokio::process::Command::new("script")
            .args(["-qfec", &command, "/dev/null"])
            .env_remove("REDIS_URL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("`script` (util-linux) runs the command under a pseudo-terminal");
        let mut stdout = child.stdout.take().unwrap();
        let mut seen = Vec::new();
        let first_frame = tokio::time::timeout(WAIT, async {
            let mut buf = [0u8; 4096];
            while !text(&seen).contains(&s.group) {
                let n = stdout.read(&mut buf).await.unwrap();
                assert!(n > 0, "top exited early: {}", text(&seen));
                seen.extend_from_slice(&buf[..n]);
            }
        })
        .await;
        assert!(first_frame.is_ok(), "no frame: {}", text(&seen));
        assert!(
            text(&seen).contains("\x1b[?1049h"),
            "alternate screen entered"
        );
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(key.as_bytes())
            .await
            .unwrap();
        let status = tokio::time::timeout(WAIT, child.wait())
            .await
            .unwrap_or_else(|_| panic!("top did not quit on {key:?}"))
            .unwrap();
        assert!(status.success(), "{key:?}: {status}");
        stdout.read_to_end(&mut seen).await.unwrap();
        let out = text(&seen);
        assert!(
            out.contains("\x1b[?25h") && out.ends_with("\x1b[?1049l"),
            "{key:?}: cursor shown and alternate screen left: {out:?}"
        );
    }
}
