//! Test harness shared by every test binary, one concern a module:
//! - `server`: a `redis-server` per test, on a free port with its own temp dir;
//! - `cluster`: a Redis Cluster per test (masters, replicas; fail-over, resharding);
//! - `postgres`: a PostgreSQL server per test (`initdb` + `postgres`), free port, own temp dir;
//! - `sentinel`: a master, a replica and three sentinels per test (fail-over);
//! - `http`: HTTP/1.1 requests to the examples' servers;
//! - `deployment`: a server or a cluster, as the helpers below see it (URL, connection);
//! - `keys`: key names of a test's group, and group `g` of the Lua contract tests;
//! - `seed`: states seeded by hand (entries added, delivered, abandoned, delayed);
//! - `known`: the known state the operations tests read and repair;
//! - `inspect`: reading what Redis holds;
//! - `wait`: waiting for a condition, never for a fixed time;
//! - `workers`: in-process workers and schedulers, clients, shared handlers;
//! - `process`: worker processes of the binary;
//! - `cli`: one-shot commands (`streamworker ...`, `redis-cli`, `openssl`);
//! - `scene`: a group served by worker processes that record every run;
//! - `lua`: the scripts of `lua/`;
//! - `readme`: what README.md documents (the ACL line, the key table).
#![allow(dead_code)]

pub mod cli;
pub mod cluster;
pub mod deployment;
pub mod http;
pub mod inspect;
pub mod keys;
pub mod known;
pub mod lua;
pub mod postgres;
pub mod process;
pub mod readme;
pub mod scene;
pub mod seed;
pub mod sentinel;
pub mod server;
pub mod wait;
pub mod workers;
