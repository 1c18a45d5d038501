//! What README.md documents, read from it so that tests check the code against the text users
//! follow: the ACL line and the table of Redis keys.

use super::server::RedisServer;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The `ACL SETUSER` line README.md documents, as words, with `password` in place of
/// `PASSWORD`.
pub fn readme_acl_line(password: &str) -> Vec<String> {
    let readme = readme();
    let line = readme
        .lines()
        .find(|l| l.trim_start().starts_with("ACL SETUSER streamworker "))
        .expect("README.md documents the ACL SETUSER line");
    line.split_whitespace()
        .map(|w| w.replace(">PASSWORD", &format!(">{password}")))
        .collect()
}

/// Runs the README's `ACL SETUSER` line on `redis` with `password`; returns the URL of that
/// user (`redis://streamworker:PASSWORD@127.0.0.1:PORT`).
pub fn add_acl_user(redis: &RedisServer, password: &str) -> String {
    let acl = readme_acl_line(password);
    let _: () = redis::cmd(&acl[0])
        .arg(&acl[1..])
        .query(&mut redis.conn())
        .unwrap();
    format!("redis://streamworker:{password}@127.0.0.1:{}", redis.port())
}

/// One row of the README's key table, one key per row: a cell `a`, `:b` gives two.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DocumentedKey {
    /// As written, e.g. `streamworker:{G}:job:{id}`.
    pub pattern: String,
    /// The type column: `stream`, `sorted set`, `hash`, `string` or `pub/sub channel`.
    pub kind: String,
}

/// The rows of the table under `## Keys in Redis`. A cell listing `streamworker:{G}:high`,
/// `:default` names `streamworker:{G}:default` by its last segment.
pub fn readme_key_table() -> Vec<DocumentedKey> {
    let readme = readme();
    let section = readme
        .split("\n## Keys in Redis\n")
        .nth(1)
        .expect("README.md has a section `## Keys in Redis`");
    let section = section.split("\n## ").next().unwrap();
    let mut keys = Vec::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let names: Vec<&str> = cells[0].split('`').skip(1).step_by(2).collect();
        let first = names[0];
        for name in &names {
            let pattern = match name.strip_prefix(':') {
                Some(last) => format!("{}:{last}", &first[..first.rfind(':').unwrap()]),
                None => name.to_string(),
            };
            keys.push(DocumentedKey {
                pattern,
                kind: cells[1].to_string(),
            });
        }
    }
    assert!(!keys.is_empty(), "no key rows under `## Keys in Redis`");
    keys
}
