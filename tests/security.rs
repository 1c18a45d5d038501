//! Credentials and transport: the README's restricted ACL user runs the whole lifecycle, a
//! wrong password is a clear error that never prints the password, and a TLS-only Redis is
//! served over `rediss://` with certificate verification and no plaintext fallback.

mod support;

use std::fs;
use std::path::Path;
use support::cli::{run, run_env, text, tool};
use support::inspect::xlen;
use support::keys::{key, unique_group};
use support::process::WorkerProcess;
use support::readme::add_acl_user;
use support::server::RedisServer;
use support::wait::until;

/// An `--exec` command that records each job's task in `$OUT/ran`, and fails task `fail`.
const EXEC: &str =
    r#"sh -c 'echo "$STREAMWORKER_TASK" >> "$OUT/ran"; [ "$STREAMWORKER_TASK" != fail ]'"#;

fn ran(out: &Path) -> Vec<String> {
    fs::read_to_string(out.join("ran"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn the_documented_acl_user_runs_the_whole_lifecycle() {
    let redis = RedisServer::start();
    let mut admin = redis.conn();
    let url = add_acl_user(&redis, "s3cret-pw");
    let group = unique_group("acl");
    let out = tempfile::tempdir().unwrap();

    for flags in [
        &["--task", "now", "--keep-result", "1h"][..],
        &["--task", "later", "--delay", "300ms"],
        &["--task", "fail"],
    ] {
        let mut args = vec!["--redis", &url, "enqueue", "--group", &group];
        args.extend_from_slice(flags);
        let enqueued = run(&args).await;
        assert!(enqueued.status.success(), "{}", text(&enqueued.stderr));
    }
    let _worker = WorkerProcess::start(
        &url,
        out.path(),
        &[
            "--group",
            &group,
            "--exec",
            EXEC,
            "--max-retries",
            "1",
            "--retry-backoff",
            "50ms",
            "--visibility-timeout",
            "1s",
        ],
    );
    let dead = key(&group, "dead");
    until("all three jobs run and the failing one dead", || {
        let mut tasks = ran(out.path());
        tasks.sort();
        tasks == ["fail", "fail", "later", "now"] && xlen(&mut admin, &dead) == 1
    })
    .await;
    // The operations commands work with this user too.
    for command in [
        &["status", "--group", &group][..],
        &["pending", "--group", &group],
        &["dead", "--group", &group, "list"],
        &["delayed", "--group", &group, "list"],
        &["pause", "--group", &group],
        &["resume", "--group", &group],
        &["dead", "--group", &group, "retry", "--all"],
    ] {
        let mut args = vec!["--redis", url.as_str()];
        args.extend_from_slice(command);
        let out = run(&args).await;
        assert!(out.status.success(), "{command:?}: {}", text(&out.stderr));
    }
    until("the re-driven job to run again", || {
        ran(out.path()).iter().filter(|t| *t == "fail").count() == 4
    })
    .await;
    // Nothing outside the streamworker keys is reachable with this user.
    let mut limited = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let denied = redis::cmd("GET")
        .arg("other-app:key")
        .query::<Option<String>>(&mut limited);
    let denied = denied.unwrap_err().to_string();
    assert!(
        denied.contains("NOPERM") || denied.contains("permission"),
        "{denied}"
    );
    let flush = redis::cmd("FLUSHALL").query::<()>(&mut limited);
    let flush = flush.unwrap_err().to_string();
    assert!(
        flush.contains("NOPERM") || flush.contains("permission"),
        "{flush}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_error_without_the_password() {
    let redis = RedisServer::start();
    add_acl_user(&redis, "right-pw");
    let url = format!("redis://streamworker:wrong-pw@127.0.0.1:{}", redis.port());
    let group = unique_group("wrongpw");

    let enqueued = run(&["--redis", &url, "enqueue", "--group", &group, "--task", "t"]).await;
    let worker = run(&["--redis", &url, "--group", &group, "--exec", "true"]).await;
    for out in [enqueued, worker] {
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("check the user name and password"),
            "{stderr}"
        );
        assert!(stderr.contains("streamworker:***@"), "{stderr}");
        assert!(
            !stderr.contains("wrong-pw"),
            "the password is never printed: {stderr}"
        );
    }
}

/// A Redis that wants a password, reached by a URL without one, is refused with the URL and
/// the form of URL that carries a password (Redis itself only answers `NOAUTH`).
#[tokio::test]
async fn a_missing_password_says_where_and_how_to_give_one() {
    let redis = RedisServer::start();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("needed-pw")
        .query(&mut redis.conn())
        .unwrap();
    let url = redis.url();
    let group = unique_group("nopw");

    let enqueued = run(&["--redis", &url, "enqueue", "--group", &group, "--task", "t"]).await;
    let worker = run(&["--redis", &url, "--group", &group, "--exec", "true"]).await;
    let status = run(&["--redis", &url, "status"]).await;
    for out in [enqueued, worker, status] {
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&format!("at {url}")), "{stderr}");
        assert!(
            stderr
                .contains("needs a password and the URL has none: use redis://:PASSWORD@HOST:PORT"),
            "{stderr}"
        );
    }
}

/// Makes a CA and a server certificate for 127.0.0.1 signed by it, with `openssl`.
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| tool("openssl", "openssl", args, Some(dir));
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"],
        &ec[..],
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=streamworker test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"],
        &ec[..],
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat());
    fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
}

#[tokio::test]
async fn a_tls_only_redis_is_served_over_rediss_with_verification() {
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let redis = RedisServer::start_tls(
        &certs.path().join("server.pem"),
        &certs.path().join("server.key"),
    );
    let url = redis.url();
    assert!(url.starts_with("rediss://"));
    let ca = certs.path().join("ca.pem");
    let trust = [("SSL_CERT_FILE", ca.to_str().unwrap())];
    let group = unique_group("tls");
    let out = tempfile::tempdir().unwrap();

    // Without the CA trusted, the certificate is refused: a clear error, no plaintext retry.
    let untrusted = run(&["--redis", &url, "enqueue", "--group", &group, "--task", "t"]).await;
    let stderr = text(&untrusted.stderr);
    assert_eq!(untrusted.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("certificate"), "{stderr}");
    // A plaintext URL to the TLS port does not get through either.
    let plaintext = url.replacen("rediss://", "redis://", 1);
    let plain = run(&[
        "--redis", &plaintext, "enqueue", "--group", &group, "--task", "t",
    ])
    .await;
    assert_eq!(plain.status.code(), Some(1), "{}", text(&plain.stderr));

    let enqueued = run_env(
        &[
            "--redis", &url, "enqueue", "--group", &group, "--task", "over-tls",
        ],
        &trust,
    )
    .await;
    assert!(enqueued.status.success(), "{}", text(&enqueued.stderr));
    let _worker = WorkerProcess::start_env(
        &url,
        out.path(),
        &["--group", &group, "--exec", EXEC],
        &trust,
    );
    until("the job run over TLS", || ran(out.path()) == ["over-tls"]).await;
}
