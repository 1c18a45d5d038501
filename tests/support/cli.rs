//! One-shot commands as users type them: `streamworker ...` to completion, and `redis-cli`.

use super::deployment::Deployment;
use super::process::bin;
use super::server::RedisServer;
use super::wait::WAIT;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The cells of the table row whose first cell is `first`, split at whitespace.
pub fn row(table: &str, first: &str) -> Vec<String> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|cells| cells.first().map(String::as_str) == Some(first))
        .unwrap_or_else(|| panic!("no row {first:?} in:\n{table}"))
}

/// Runs `streamworker ARGS` to completion (killed if it outlives [`WAIT`]), with REDIS_URL,
/// SSL_CERT_FILE and RUST_LOG unset (its output as a user's default shows it).
pub async fn run(args: &[&str]) -> Output {
    run_env(args, &[]).await
}

/// [`run`] with `env` set (which may set REDIS_URL or SSL_CERT_FILE).
pub async fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(bin());
    cmd.args(args)
        .env_remove("REDIS_URL")
        .env_remove("SSL_CERT_FILE")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(WAIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("streamworker {args:?} did not finish within {WAIT:?}"))
        .expect("streamworker runs")
}

/// Runs `streamworker --redis URL ARGS`, asserts exit 0 and returns stdout.
pub async fn ok(redis: &impl Deployment, args: &[&str]) -> String {
    let url = redis.url();
    let all: Vec<&str> = ["--redis", url.as_str()]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    let out = run(&all).await;
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        text(&out.stderr),
        text(&out.stdout)
    );
    text(&out.stdout)
}

/// [`ok`], with stdout parsed as JSON.
pub async fn json(redis: &impl Deployment, args: &[&str]) -> serde_json::Value {
    let out = ok(redis, args).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

/// `streamworker --redis URL enqueue --group GROUP FLAGS...`; asserts success and that stdout
/// is the id and nothing else; returns the id.
pub async fn enqueue(redis: &impl Deployment, group: &str, flags: &[&str]) -> String {
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
pub fn redis_cli(redis: &RedisServer, args: &[&str]) -> String {
    let port = redis.port().to_string();
    let all: Vec<&str> = ["-p", port.as_str()]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    tool("redis-cli", "redis-tools", &all, None)
}

/// Runs `program ARGS` (from Debian's `package`) in `dir`, asserts exit 0 and returns its
/// trimmed stdout.
pub fn tool(program: &str, package: &str, args: &[&str], dir: Option<&Path>) -> String {
    let mut cmd = Command::new(program);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed (apt-get install {package}): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_string()
}
