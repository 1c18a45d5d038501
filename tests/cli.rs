//! The `streamworker` binary as users run it: real processes (`enqueue`, `--exec` workers,
//! `redis-cli`) against a real redis-server per test, with signals sent by `kill`.

mod support;

use std::collections::HashMap;
use std::fs;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use streamworker::{Client, JobId, JobState};
use support::process::WorkerProcess;
use support::{RedisServer, pending_count, stream_entries, unique_group, wait_until};

/// How long any awaited condition may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);

/// An `--exec` command that records each job's stdin and `STREAMWORKER_*` environment in `$OUT`.
const RECORD: &str = r#"sh -c 'cat > "$OUT/$STREAMWORKER_JOB_ID.json"; env | grep ^STREAMWORKER_ > "$OUT/$STREAMWORKER_JOB_ID.env"'"#;

/// An `--exec` command that signals it started, then runs until `$OUT/go` exists (or `$OUT` is
/// gone: a failed test's killed worker leaves no endless orphan).
const BLOCK_UNTIL_GO: &str = r#"sh -c 'echo "$STREAMWORKER_ATTEMPT" >> "$OUT/attempts"; touch "$OUT/started"; while [ -d "$OUT" ] && [ ! -e "$OUT/go" ]; do sleep 0.01; done; echo finished'"#;

fn key(group: &str, suffix: &str) -> String {
    format!("streamworker:{{{group}}}:{suffix}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn xlen(conn: &mut redis::Connection, key: &str) -> usize {
    redis::cmd("XLEN").arg(key).query(conn).unwrap()
}

fn hash(conn: &mut redis::Connection, key: &str) -> HashMap<String, String> {
    redis::cmd("HGETALL").arg(key).query(conn).unwrap()
}

fn pttl(conn: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(conn).unwrap()
}

/// Waits (up to [`WAIT`]) until a synchronous condition holds.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    wait_until(WAIT, what, || {
        let ok = condition();
        async move { ok }
    })
    .await
}

/// Runs `streamworker ARGS` to completion (killed if it outlives [`WAIT`]), with `env` set and
/// REDIS_URL unset unless `env` sets it.
async fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(support::bin());
    cmd.args(args)
        .env_remove("REDIS_URL")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(WAIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("streamworker {args:?} did not finish within {WAIT:?}"))
        .expect("streamworker runs")
}

async fn run(args: &[&str]) -> Output {
    run_env(args, &[]).await
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `streamworker --redis URL enqueue --group GROUP FLAGS...`; asserts success, returns the id.
async fn enqueue(redis: &RedisServer, group: &str, flags: &[&str]) -> String {
    let url = redis.url();
    let mut args = vec!["--redis", &url, "enqueue", "--group", group];
    args.extend_from_slice(flags);
    let out = run(&args).await;
    assert!(
        out.status.success(),
        "enqueue {flags:?} failed: {}",
        text(&out.stderr)
    );
    let id = text(&out.stdout).trim_end().to_string();
    assert_eq!(
        text(&out.stdout),
        format!("{id}\n"),
        "stdout is the id and nothing else"
    );
    id
}

/// Runs the real `redis-cli` against `redis`; returns its trimmed stdout.
fn redis_cli(redis: &RedisServer, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(redis.port().to_string())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli must be installed (apt-get install redis-tools)");
    assert!(
        out.status.success(),
        "redis-cli {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_string()
}

fn assert_ulid(id: &str) {
    const CROCKFORD: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    assert!(
        id.len() == 26 && id.chars().all(|c| CROCKFORD.contains(c)) && id.as_bytes()[0] <= b'7',
        "{id:?} is not a ULID"
    );
}

/// `enqueue` prints a ULID and stores the job where its flags say (stream, delayed set, status).
#[tokio::test]
async fn enqueue_prints_a_ulid_and_stores_the_job_where_its_flags_say() {
    let redis = RedisServer::start();
    let group = unique_group("enqueue");
    let mut conn = redis.conn();

    let plain = enqueue(
        &redis,
        &group,
        &["--task", "send_email", "--args", r#"{"to":"a@b.c"}"#],
    )
    .await;
    assert_ulid(&plain);
    let entries = stream_entries(&mut conn, &key(&group, "default"));
    assert_eq!(
        entries,
        vec![map(&[
            ("task", "send_email"),
            ("args", r#"{"to":"a@b.c"}"#),
            ("id", &plain)
        ])]
    );

    let high = enqueue(
        &redis,
        &group,
        &[
            "--task",
            "charge",
            "--args",
            r#"{"cents":5}"#,
            "--priority",
            "high",
            "--max-retries",
            "5",
            "--timeout",
            "5m",
        ],
    )
    .await;
    assert_ulid(&high);
    let entries = stream_entries(&mut conn, &key(&group, "high"));
    let want = map(&[
        ("task", "charge"),
        ("args", r#"{"cents":5}"#),
        ("id", &high),
        ("max_retries", "5"),
        ("timeout_ms", "300000"),
    ]);
    assert_eq!(entries, vec![want]);

    // --delay: in the delayed set due at now + 30 s, in no stream yet.
    let before = now_ms();
    let delayed = enqueue(&redis, &group, &["--task", "remind", "--delay", "30s"]).await;
    let after = now_ms();
    let due: f64 = redis::cmd("ZSCORE")
        .arg(key(&group, "delayed"))
        .arg(&delayed)
        .query(&mut conn)
        .unwrap();
    let due = due as u64;
    assert!(
        before + 30_000 <= due && due <= after + 30_000,
        "due {due} not within [{before}, {after}] + 30 s"
    );
    let stored: bool = redis::cmd("HEXISTS")
        .arg(key(&group, "delayed:jobs"))
        .arg(&delayed)
        .query(&mut conn)
        .unwrap();
    assert!(stored, "the delayed job's payload is stored");

    // --at: due exactly then.
    let at = enqueue(
        &redis,
        &group,
        &["--task", "remind", "--at", "2099-01-01T00:00:00Z"],
    )
    .await;
    let due: f64 = redis::cmd("ZSCORE")
        .arg(key(&group, "delayed"))
        .arg(&at)
        .query(&mut conn)
        .unwrap();
    assert_eq!(due as u64, 4_070_908_800_000);

    // --keep-result: a status hash, queued, kept past the hour.
    let tracked = enqueue(
        &redis,
        &group,
        &[
            "--task",
            "report",
            "--priority",
            "low",
            "--keep-result",
            "1h",
        ],
    )
    .await;
    let status = hash(&mut conn, &key(&group, &format!("job:{tracked}")));
    assert_eq!(
        status.get("state").map(String::as_str),
        Some("queued"),
        "{status:?}"
    );
    assert_eq!(
        status.get("attempt").map(String::as_str),
        Some("1"),
        "{status:?}"
    );
    assert!(pttl(&mut conn, &key(&group, &format!("job:{tracked}"))) > 3_600_000);
    let entries = stream_entries(&mut conn, &key(&group, "low"));
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["id"], tracked);
    assert_eq!(entries[0]["keep_result_ms"], "3600000");

    // Untracked jobs have no status hash; every id is distinct; nothing else was written.
    let mut ids = vec![&plain, &high, &delayed, &at, &tracked];
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "ids are unique");
    let status_keys: Vec<String> = redis::cmd("KEYS")
        .arg(key(&group, "job:*"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(status_keys, vec![key(&group, &format!("job:{tracked}"))]);
    assert_eq!(xlen(&mut conn, &key(&group, "default")), 1);
    assert_eq!(xlen(&mut conn, &key(&group, "high")), 1);
}

/// --exec runs redis-cli and `enqueue` jobs: args on stdin, STREAMWORKER_* set, entries acked.
#[tokio::test]
async fn an_exec_worker_gives_the_command_args_on_stdin_and_job_facts_in_its_env() {
    let redis = RedisServer::start();
    let group = unique_group("exec");
    let out = tempfile::tempdir().unwrap();
    let stream = key(&group, "default");
    let mut conn = redis.conn();

    // Typed into redis-cli before any worker existed: its id is its entry id.
    let typed_args = r#"{"to":"a@b.c"}"#;
    let typed = redis_cli(
        &redis,
        &[
            "XADD",
            &stream,
            "*",
            "task",
            "send_email",
            "args",
            typed_args,
        ],
    );
    assert!(
        typed
            .split_once('-')
            .is_some_and(|(ms, seq)| ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok()),
        "{typed:?}"
    );

    let mut worker = WorkerProcess::start(
        &redis.url(),
        out.path(),
        &["--group", &group, "--exec", RECORD],
    );
    until("the redis-cli job to finish", || {
        xlen(&mut conn, &stream) == 0
    })
    .await;

    // Enqueued while the worker is idle, waiting for work.
    let cli_args = r#"{"to":"x@y.z","subject":"héllo \"you\"","n":[1,2.5,null]}"#;
    let cli = enqueue(&redis, &group, &["--task", "welcome", "--args", cli_args]).await;
    until("the enqueued job to finish", || {
        xlen(&mut conn, &stream) == 0
    })
    .await;

    for (id, task, args) in [
        (&typed, "send_email", typed_args),
        (&cli, "welcome", cli_args),
    ] {
        let stdin = fs::read_to_string(out.path().join(format!("{id}.json"))).unwrap();
        assert_eq!(stdin, args, "job {id}: stdin is the args as enqueued");
        let env: HashMap<String, String> = fs::read_to_string(out.path().join(format!("{id}.env")))
            .unwrap()
            .lines()
            .filter_map(|l| {
                l.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        let want = map(&[
            ("STREAMWORKER_JOB_ID", id),
            ("STREAMWORKER_TASK", task),
            ("STREAMWORKER_ATTEMPT", "1"),
            ("STREAMWORKER_GROUP", &group),
        ]);
        assert_eq!(env, want, "job {id}: environment");
    }
    assert_eq!(
        pending_count(&mut conn, &stream, &group),
        0,
        "both entries acked"
    );
    assert_eq!(xlen(&mut conn, &key(&group, "dead")), 0);
    let status_keys: Vec<String> = redis::cmd("KEYS")
        .arg(key(&group, "job:*"))
        .query(&mut conn)
        .unwrap();
    assert!(
        status_keys.is_empty(),
        "jobs without --keep-result leave no status: {status_keys:?}"
    );
    assert!(worker.is_running(), "the worker keeps serving");
}

/// With --keep-result, the --exec command's stdout is the job's stored result.
#[tokio::test]
async fn exec_stdout_becomes_the_kept_result() {
    let redis = RedisServer::start();
    let group = unique_group("result");
    let out = tempfile::tempdir().unwrap();
    let mut conn = redis.conn();

    let id = enqueue(
        &redis,
        &group,
        &[
            "--task",
            "send_email",
            "--args",
            r#"{"to":"a@b.c"}"#,
            "--keep-result",
            "1h",
        ],
    )
    .await;
    let _worker = WorkerProcess::start(
        &redis.url(),
        out.path(),
        &[
            "--group",
            &group,
            "--exec",
            r#"sh -c 'printf "sent to %s" "$(cat)"'"#,
        ],
    );

    let client = Client::connect(&redis.url()).await.unwrap();
    let status = client
        .wait_for_result(&group, &JobId::parse(id.as_str()).unwrap(), WAIT)
        .await
        .unwrap();
    let expected = r#"sent to {"to":"a@b.c"}"#;
    assert_eq!(status.state, JobState::Succeeded);
    assert_eq!(status.attempt, 1);
    assert_eq!(status.result.as_deref(), Some(expected.as_bytes()));

    // The same record as any other language reads it.
    let status_key = key(&group, &format!("job:{id}"));
    let raw = hash(&mut conn, &status_key);
    assert_eq!(
        raw.get("state").map(String::as_str),
        Some("succeeded"),
        "{raw:?}"
    );
    assert_eq!(
        raw.get("result").map(String::as_str),
        Some(expected),
        "{raw:?}"
    );
    let ttl = pttl(&mut conn, &status_key);
    assert!(
        ttl > 0 && ttl <= 3_600_000,
        "kept for --keep-result, got PTTL {ttl}"
    );
    assert_eq!(xlen(&mut conn, &key(&group, "default")), 0);
    assert_eq!(pending_count(&mut conn, &key(&group, "default"), &group), 0);
}

/// A failing command is retried, then dead with its exit status and stderr; the worker goes on.
#[tokio::test]
async fn a_failing_command_is_retried_then_dead_with_its_stderr_and_the_worker_goes_on() {
    let redis = RedisServer::start();
    let group = unique_group("fail");
    let out = tempfile::tempdir().unwrap();
    let stream = key(&group, "default");
    let dead = key(&group, "dead");
    let mut conn = redis.conn();
    let exec = r#"sh -c 'echo "$STREAMWORKER_ATTEMPT" >> "$OUT/$STREAMWORKER_JOB_ID.attempts"; if [ "$STREAMWORKER_TASK" = flaky ]; then echo boom >&2; exit 3; fi; cat > "$OUT/$STREAMWORKER_JOB_ID.json"'"#;
    let mut worker = WorkerProcess::start(
        &redis.url(),
        out.path(),
        &["--group", &group, "--retry-backoff", "10ms", "--exec", exec],
    );

    let args = r#"{"n":1}"#;
    let id = enqueue(
        &redis,
        &group,
        &[
            "--task",
            "flaky",
            "--args",
            args,
            "--max-retries",
            "1",
            "--keep-result",
            "1h",
        ],
    )
    .await;
    until("the failing job to reach the dead stream", || {
        xlen(&mut conn, &dead) == 1
    })
    .await;

    let entry = stream_entries(&mut conn, &dead).remove(0);
    assert_eq!(entry["id"], id);
    assert_eq!(entry["task"], "flaky");
    assert_eq!(entry["args"], args);
    assert_eq!(entry["priority"], "default");
    assert_eq!(entry["attempt"], "2");
    let reason = &entry["reason"];
    assert!(reason.starts_with("failed after 2 attempts: "), "{reason}");
    assert!(
        reason.contains("exit status 3") && reason.contains("boom"),
        "{reason}"
    );
    assert!(
        entry["dead_ms"]
            .parse::<u64>()
            .is_ok_and(|ms| ms >= now_ms() - 60_000),
        "{entry:?}"
    );
    let attempts = fs::read_to_string(out.path().join(format!("{id}.attempts"))).unwrap();
    assert_eq!(attempts, "1\n2\n", "two attempts, numbered");
    let status = hash(&mut conn, &key(&group, &format!("job:{id}")));
    assert_eq!(
        status.get("state").map(String::as_str),
        Some("dead"),
        "{status:?}"
    );
    assert_eq!(status.get("last_error"), Some(reason), "{status:?}");
    assert_eq!(xlen(&mut conn, &stream), 0);
    assert_eq!(pending_count(&mut conn, &stream, &group), 0);
    let delayed: usize = redis::cmd("ZCARD")
        .arg(key(&group, "delayed"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(delayed, 0, "no retry left scheduled");

    // The worker is still serving.
    assert!(worker.is_running());
    let good = enqueue(&redis, &group, &["--task", "ok", "--args", r#"{"n":2}"#]).await;
    until("the next job to finish", || xlen(&mut conn, &stream) == 0).await;
    assert_eq!(
        fs::read_to_string(out.path().join(format!("{good}.json"))).unwrap(),
        r#"{"n":2}"#
    );
    assert_eq!(
        fs::read_to_string(out.path().join(format!("{good}.attempts"))).unwrap(),
        "1\n"
    );
    assert_eq!(xlen(&mut conn, &dead), 1);
}

/// Job data never reaches a shell: hostile args arrive verbatim on stdin and run nothing.
#[tokio::test]
async fn job_data_cannot_inject_commands() {
    let redis = RedisServer::start();
    let group = unique_group("inject");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let stream = key(&group, "default");
    let mut conn = redis.conn();

    let copy = dir.path().join("stdin.json");
    let exec = format!("tee {}", shell_words::quote(copy.to_str().unwrap()));
    let _worker = WorkerProcess::start(
        &redis.url(),
        dir.path(),
        &["--group", &group, "--exec", &exec],
    );

    let args = serde_json::json!({
        "subst": format!("$(touch {d}/pwned-subst)"),
        "backticks": format!("`touch {d}/pwned-backticks`"),
        "chain": format!("x; touch {d}/pwned-semicolon && touch {d}/pwned-and | touch {d}/pwned-pipe"),
        "newline": format!("x\ntouch {d}/pwned-newline\n"),
        "quotes": "'\"\\'",
    })
    .to_string();
    enqueue(&redis, &group, &["--task", "report", "--args", &args]).await;
    until("the job to finish", || xlen(&mut conn, &stream) == 0).await;
    assert_eq!(
        fs::read_to_string(&copy).unwrap(),
        args,
        "stdin is the args, byte for byte"
    );

    // A task name is an environment value, but a hostile one is refused before anything runs.
    let task = format!("x;touch {d}/pwned-task");
    redis_cli(&redis, &["XADD", &stream, "*", "task", &task, "args", "{}"]);
    until("the hostile job to be dead", || {
        xlen(&mut conn, &key(&group, "dead")) == 1
    })
    .await;
    let reason = stream_entries(&mut conn, &key(&group, "dead")).remove(0)["reason"].clone();
    assert!(reason.contains("invalid field task"), "{reason}");

    let pwned: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("pwned"))
        .collect();
    assert!(pwned.is_empty(), "job data ran commands: {pwned:?}");
    assert_eq!(
        fs::read_to_string(&copy).unwrap(),
        args,
        "the hostile task did not run the command"
    );
}

/// SIGTERM lets the running job finish (acked, result kept), then the worker exits 0.
#[tokio::test]
async fn sigterm_lets_the_running_job_finish_then_exits_0() {
    let redis = RedisServer::start();
    let group = unique_group("term");
    let out = tempfile::tempdir().unwrap();
    let stream = key(&group, "default");
    let mut conn = redis.conn();
    let mut worker = WorkerProcess::start(
        &redis.url(),
        out.path(),
        &["--group", &group, "--exec", BLOCK_UNTIL_GO],
    );

    let id = enqueue(&redis, &group, &["--task", "slow", "--keep-result", "1h"]).await;
    until("the job to start", || out.path().join("started").exists()).await;
    worker.signal("TERM");
    until("the worker to stop fetching", || {
        worker.log().contains("stopping: no new jobs are fetched")
    })
    .await;
    assert!(worker.is_running(), "the worker waits for its running job");

    fs::write(out.path().join("go"), "").unwrap();
    let status = worker.exit_status(WAIT).await;
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(worker.log().contains("SIGTERM received"));
    let record = hash(&mut conn, &key(&group, &format!("job:{id}")));
    assert_eq!(
        record.get("state").map(String::as_str),
        Some("succeeded"),
        "{record:?}"
    );
    assert_eq!(
        record.get("result").map(String::as_str),
        Some("finished\n"),
        "{record:?}"
    );
    assert_eq!(xlen(&mut conn, &stream), 0);
    assert_eq!(pending_count(&mut conn, &stream, &group), 0);
}

/// SIGINT (Ctrl-C) stops an idle worker with exit code 0.
#[tokio::test]
async fn sigint_stops_an_idle_worker_with_exit_0() {
    let redis = RedisServer::start();
    let group = unique_group("int");
    let out = tempfile::tempdir().unwrap();
    let stream = key(&group, "default");
    let mut conn = redis.conn();
    let mut worker = WorkerProcess::start(
        &redis.url(),
        out.path(),
        &["--group", &group, "--exec", "true"],
    );

    // A processed job shows the worker is up (its signal handlers installed).
    enqueue(&redis, &group, &["--task", "noop"]).await;
    until("the job to finish", || xlen(&mut conn, &stream) == 0).await;
    worker.signal("INT");
    let status = worker.exit_status(WAIT).await;
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(worker.log().contains("SIGINT received"));
    assert_eq!(pending_count(&mut conn, &stream, &group), 0);
}

/// A job still running when --shutdown-grace ends is handed back and the next worker runs it.
#[tokio::test]
async fn a_job_running_past_the_grace_period_is_handed_back_and_run_by_the_next_worker() {
    let redis = RedisServer::start();
    let group = unique_group("grace");
    let out = tempfile::tempdir().unwrap();
    let stream = key(&group, "default");
    let mut conn = redis.conn();
    let flags = [
        "--group",
        &group,
        "--shutdown-grace",
        "100ms",
        "--exec",
        BLOCK_UNTIL_GO,
    ];

    let id = enqueue(&redis, &group, &["--task", "slow", "--args", r#"{"n":1}"#]).await;
    let mut first = WorkerProcess::start(&redis.url(), out.path(), &flags);
    until("the job to start", || out.path().join("started").exists()).await;
    first.signal("TERM");
    let status = first.exit_status(WAIT).await;
    assert_eq!(status.code(), Some(0), "{status}");

    let entries = stream_entries(&mut conn, &stream);
    assert_eq!(entries.len(), 1, "handed back, not lost");
    assert_eq!(
        (entries[0]["id"].as_str(), entries[0]["args"].as_str()),
        (id.as_str(), r#"{"n":1}"#)
    );
    assert_eq!(pending_count(&mut conn, &stream, &group), 0);

    fs::write(out.path().join("go"), "").unwrap();
    let _second = WorkerProcess::start(&redis.url(), out.path(), &flags);
    until("the next worker to finish the job", || {
        xlen(&mut conn, &stream) == 0
    })
    .await;
    assert_eq!(pending_count(&mut conn, &stream, &group), 0);
    assert_eq!(
        fs::read_to_string(out.path().join("attempts")).unwrap(),
        "1\n1\n",
        "a hand-back costs no attempt"
    );
    assert_eq!(xlen(&mut conn, &key(&group, "dead")), 0);
}

/// `enqueue` refuses bad names (exit 1), bad flag values (exit 2) and bad JSON, naming the fault.
#[tokio::test]
async fn enqueue_refuses_bad_input_with_a_clear_error() {
    let redis = RedisServer::start();
    let url = redis.url();
    let base = ["--redis", url.as_str(), "enqueue", "--task", "t"];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };

    let out = run(&with(&["--group", "a}{b"])).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains(r#"invalid group name "a}{b""#),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    let out = run(&with(&["--group", "g", "--args", "{nope"])).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("not valid JSON"),
        "{}",
        text(&out.stderr)
    );

    // Usage errors: the error itself (before clap's usage line) names the flag at fault.
    let at = "2099-01-01T00:00:00Z";
    for (flags, flag) in [
        (
            &["--group", "g", "--task", "t", "--delay", "5 parsecs"][..],
            "--delay",
        ),
        (
            &["--group", "g", "--task", "t", "--priority", "urgent"][..],
            "--priority",
        ),
        (
            &["--group", "g", "--task", "t", "--at", "tomorrow"][..],
            "--at",
        ),
        (
            &["--group", "g", "--task", "t", "--delay", "1s", "--at", at][..],
            "--delay",
        ),
        (&["--task", "t", "--args", "{}"][..], "--group"),
    ] {
        let args: Vec<&str> = ["--redis", url.as_str(), "enqueue"]
            .into_iter()
            .chain(flags.iter().copied())
            .collect();
        let out = run(&args).await;
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {out:?}");
        let err = text(&out.stderr);
        let (error, _usage) = err.split_once("Usage:").unwrap_or((&err, ""));
        assert!(
            error.starts_with("error: ") && error.contains(flag),
            "{flags:?}: usage error does not name {flag}: {err}"
        );
    }
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut redis.conn())
        .unwrap();
    assert!(keys.is_empty(), "refused jobs wrote nothing: {keys:?}");
}

/// An unreachable Redis is a clear error (exit 1) that never prints the password.
#[tokio::test]
async fn unreachable_redis_is_a_clear_error_without_the_password() {
    let url = "redis://u:secret@127.0.0.1:1";
    for args in [
        vec!["--redis", url, "enqueue", "--group", "g", "--task", "t"],
        vec!["--redis", url, "--group", "g", "--exec", "true"],
    ] {
        let out = run(&args).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("error: cannot connect to Redis at redis://u:***@127.0.0.1:1"),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains("secret") && !text(&out.stdout).contains("secret"),
            "{args:?} leaked the password: {err}"
        );
    }
}

/// The Redis URL is taken from --redis before or after the subcommand, or from REDIS_URL.
#[tokio::test]
async fn the_redis_url_comes_from_either_side_of_the_subcommand_or_redis_url() {
    let redis = RedisServer::start();
    let group = unique_group("url");
    let url = redis.url();
    let job = ["--group", group.as_str(), "--task", "t"];
    let before: Vec<&str> = ["--redis", url.as_str(), "enqueue"]
        .into_iter()
        .chain(job)
        .collect();
    let after: Vec<&str> = ["enqueue"]
        .into_iter()
        .chain(job)
        .chain(["--redis", url.as_str()])
        .collect();
    let env: Vec<&str> = ["enqueue"].into_iter().chain(job).collect();

    let mut ids = Vec::new();
    for out in [
        run(&before).await,
        run(&after).await,
        run_env(&env, &[("REDIS_URL", &url)]).await,
    ] {
        assert!(out.status.success(), "{out:?}");
        ids.push(text(&out.stdout).trim().to_string());
    }
    let stored: Vec<String> = stream_entries(&mut redis.conn(), &key(&group, "default"))
        .into_iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(stored, ids, "all three jobs reached this server");
}

/// A worker started without what it needs says which flag is missing and exits 1.
#[tokio::test]
async fn a_worker_without_group_or_exec_says_what_is_missing() {
    let redis = RedisServer::start();
    let url = redis.url();
    for (flags, wanted) in [
        (&[][..], "--group"),
        (&["--exec", "true"][..], "--group"),
        (&["--group", "g"][..], "--exec"),
        (
            &["--group", "g", "--exec", ""][..],
            "--exec needs a command",
        ),
        (
            &["--group", "g", "--exec", "echo 'unterminated"][..],
            "does not parse",
        ),
        (
            &["--group", "a}{b", "--exec", "true"][..],
            r#"invalid group name "a}{b""#,
        ),
    ] {
        let args: Vec<&str> = ["--redis", url.as_str()]
            .into_iter()
            .chain(flags.iter().copied())
            .collect();
        let out = run(&args).await;
        assert_eq!(out.status.code(), Some(1), "{flags:?}: {out:?}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with("error: ") && err.contains(wanted),
            "{flags:?}: error does not mention {wanted:?}: {err}"
        );
    }
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut redis.conn())
        .unwrap();
    assert!(keys.is_empty(), "nothing was written: {keys:?}");
}
