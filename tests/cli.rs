//! The `streamworker` binary as users run it: real processes (`enqueue`, `--exec` workers,
//! `redis-cli`) against a real redis-server per test. Signals and stops: `shutdown.rs`.

mod support;

use std::collections::HashMap;
use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};
use streamworker::{JobId, JobState};
use support::cli::{enqueue, redis_cli, run, run_env, text};
use support::inspect::{hash, keys, pending_count, pttl, stream_entries, xlen, zcard};
use support::keys::{key, unique_group};
use support::process::WorkerProcess;
use support::server::RedisServer;
use support::wait::{WAIT, until};
use support::workers::client;

/// An `--exec` command that records each job's stdin and `STREAMWORKER_*` environment in `$OUT`.
const RECORD: &str = r#"sh -c 'cat > "$OUT/$STREAMWORKER_JOB_ID.json"; env | grep ^STREAMWORKER_ > "$OUT/$STREAMWORKER_JOB_ID.env"'"#;

/// Wall-clock time in ms since the epoch.
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
    assert_eq!(
        keys(&mut conn, &key(&group, "job:*")),
        vec![key(&group, &format!("job:{tracked}"))]
    );
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
    let status_keys = keys(&mut conn, &key(&group, "job:*"));
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

    let client = client(&redis).await;
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

/// The README's first screen: a job typed into redis-cli (no `id` field, so its entry id is its
/// job id), run by `streamworker --group emails --exec cat`, reads as succeeded in
/// `streamworker job ID`, with the command's stdout as its result.
#[tokio::test]
async fn a_redis_cli_job_runs_and_reads_as_succeeded_by_its_entry_id() {
    let redis = RedisServer::start();
    let group = unique_group("first");
    let out = tempfile::tempdir().unwrap();
    let stream = key(&group, "default");
    let id = redis_cli(
        &redis,
        &[
            "XADD",
            &stream,
            "*",
            "task",
            "send_email",
            "args",
            r#"{"to":"a@b.c"}"#,
            "keep_result_ms",
            "3600000",
        ],
    );
    let _worker = WorkerProcess::start(
        &redis.url(),
        out.path(),
        &["--group", &group, "--exec", "cat"],
    );
    let mut conn = redis.conn();
    let status_key = key(&group, &format!("job:{id}"));
    until("the job to succeed", || {
        hash(&mut conn, &status_key)
            .get("state")
            .map(String::as_str)
            == Some("succeeded")
    })
    .await;

    let shown = run(&["--redis", &redis.url(), "job", &id, "--group", &group]).await;
    let stdout = text(&shown.stdout);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    assert!(stdout.contains("succeeded"), "{stdout}");
    assert!(
        stdout.contains(r#"{"to":"a@b.c"}"#),
        "the result is shown: {stdout}"
    );
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
    assert_eq!(
        zcard(&mut conn, &key(&group, "delayed")),
        0,
        "no retry left scheduled"
    );

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
    let written = keys(&mut redis.conn(), "*");
    assert!(
        written.is_empty(),
        "refused jobs wrote nothing: {written:?}"
    );
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
    let written = keys(&mut redis.conn(), "*");
    assert!(written.is_empty(), "nothing was written: {written:?}");
}

/// The quickstart binary that `cargo test` builds beside the tests.
fn quickstart() -> std::path::PathBuf {
    let path = support::process::bin()
        .parent()
        .expect("the binary's directory")
        .join("examples/quickstart");
    assert!(
        path.exists(),
        "{} is missing: run the whole `cargo test` (it builds the examples) or `cargo build --example quickstart`",
        path.display()
    );
    path
}

/// The README's first command against a Redis it is given: six jobs succeed, and it says
/// which keys stay behind and how to remove them.
#[tokio::test]
async fn the_quickstart_runs_its_jobs_through_redis_url() {
    let redis = RedisServer::start();
    let out = tokio::process::Command::new(quickstart())
        .env("REDIS_URL", redis.url())
        .output()
        .await
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout.matches(": succeeded -> ").count(), 6, "{stdout}");
    assert!(
        stdout.contains("--scan --pattern 'streamworker:{quickstart}:*'"),
        "{stdout}"
    );
}

/// Where no Redis answers and REDIS_URL is unset (here: a network namespace of its own, where
/// nothing listens on 6379), the quickstart starts a private redis-server, runs its jobs
/// there and stops it.
#[tokio::test]
async fn the_quickstart_starts_a_private_redis_when_none_answers() {
    let script = format!("ip link set lo up && exec '{}'", quickstart().display());
    let out = tokio::process::Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .env_remove("REDIS_URL")
        .output()
        .await
        .expect("unshare (util-linux) runs the quickstart without the machine's network");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("no Redis at redis://127.0.0.1:6379: started a private redis-server"),
        "{stdout}"
    );
    assert_eq!(stdout.matches(": succeeded -> ").count(), 6, "{stdout}");
    assert!(
        stdout.contains("stopped the private redis-server"),
        "{stdout}"
    );
}
