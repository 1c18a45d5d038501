//! Harness self-test: the Redis Cluster and Redis Sentinel fixtures of `tests/support` against
//! real servers. Hash slots as Redis computes them, groups spread over the masters, and data
//! surviving fail-over and resharding.

mod support;

use std::time::Duration;
use support::cluster::{RedisCluster, crc16};
use support::sentinel::RedisSentinel;
use support::wait::WAIT;

/// The slot Redis itself computes for `key`.
fn keyslot(cluster: &RedisCluster, key: &str) -> u16 {
    let port = cluster.live_ports()[0];
    let slot = cluster.cli(port, &["CLUSTER", "KEYSLOT", key]);
    slot.parse()
        .unwrap_or_else(|_| panic!("CLUSTER KEYSLOT {key:?}: {slot}"))
}

#[test]
fn crc16_is_xmodem() {
    // The check value of CRC-16/XMODEM, also the one the Redis Cluster specification gives.
    assert_eq!(crc16(b"123456789"), 0x31C3);
    assert_eq!(crc16(b""), 0);
}

#[test]
fn cluster_slots_groups_failover_and_resharding() {
    let mut cluster = RedisCluster::start(3, 1);
    assert_eq!(cluster.ports().len(), 6);
    let masters = cluster.masters();
    assert_eq!(masters.len(), 3, "{:?}", cluster.topology());
    assert_eq!(cluster.url(), format!("redis://127.0.0.1:{}", masters[0]));
    assert_eq!(cluster.seeds().split(',').count(), 6);

    // The hash slot, hash tags included, is the one Redis computes.
    for key in [
        "123456789",
        "foo",
        "{user1000}.following",
        "{user1000}.followers",
        "foo{}{bar}",
        "foo{{bar}}zap",
        "foo{bar}{zap}",
        "{}",
        "}{",
        "streamworker:{emails}:default",
        "streamworker:{émails}:delayed",
    ] {
        assert_eq!(RedisCluster::slot_of(key), keyslot(&cluster, key), "{key}");
    }
    assert_eq!(RedisCluster::slot_of("123456789"), 0x31C3);

    // One group on each master, each on a different one.
    let groups = cluster.groups_on_each_master("grp-");
    assert_eq!(groups.len(), 3);
    let mut owners = Vec::new();
    for (group, &master) in groups.iter().zip(&masters) {
        let slot = keyslot(&cluster, &format!("streamworker:{{{group}}}:default"));
        assert_eq!(cluster.master_of_slot(slot), master, "{group}");
        owners.push(master);
    }
    owners.sort_unstable();
    owners.dedup();
    assert_eq!(owners.len(), 3, "{groups:?}");

    // A key written through redis-cli -c survives a fail-over...
    let key = "streamworker:{fixture}:probe";
    let slot = RedisCluster::slot_of(key);
    cluster.cli(masters[2], &["-c", "SET", key, "before"]);
    let owner = cluster.master_of_slot(slot);
    let replica = cluster.replica_of(owner);
    cluster.failover(replica);
    assert_eq!(cluster.master_of_slot(slot), replica);
    assert!(cluster.masters().contains(&replica));
    assert_eq!(cluster.replica_of(replica), owner, "the old master follows");
    assert_eq!(cluster.cli(replica, &["GET", key]), "before");

    // ...and a move of its slot to another master.
    let to = cluster
        .masters()
        .into_iter()
        .find(|&m| m != replica)
        .expect("another master");
    cluster.move_slot(slot, to);
    assert_eq!(cluster.master_of_slot(slot), to);
    assert_eq!(cluster.cli(to, &["GET", key]), "before");
    assert_eq!(cluster.cli(owner, &["-c", "GET", key]), "before");

    // A stepwise move: keys are readable mid-way, on either side, through redirects.
    let tag = "{stepwise}";
    let slot = RedisCluster::slot_of(tag);
    let pairs: Vec<String> = (0..250)
        .flat_map(|i| [format!("{tag}:{i}"), i.to_string()])
        .collect();
    let mut mset = vec!["-c", "MSET"];
    mset.extend(pairs.iter().map(String::as_str));
    cluster.cli(cluster.live_ports()[0], &mset);
    let from = cluster.master_of_slot(slot);
    let to = cluster
        .masters()
        .into_iter()
        .find(|&m| m != from)
        .expect("another master");
    let slot_arg = slot.to_string();
    let count = |port: u16| cluster.cli(port, &["CLUSTER", "COUNTKEYSINSLOT", &slot_arg]);
    let moving = cluster.begin_move(slot, to);
    assert_eq!((moving.from(), moving.to()), (from, to));
    assert_eq!(moving.step(&cluster, 100), 100);
    assert_eq!(moving.keys_left(&cluster), 150);
    assert_eq!(count(to), "100");
    let moved = cluster.cli(to, &["CLUSTER", "GETKEYSINSLOT", &slot_arg, "1"]);
    let stayed = cluster.cli(from, &["CLUSTER", "GETKEYSINSLOT", &slot_arg, "1"]);
    for key in [&moved, &stayed] {
        let n = key.rsplit(':').next().unwrap();
        assert_eq!(cluster.cli(from, &["-c", "GET", key]), n, "{key}");
    }
    moving.finish(&cluster);
    assert_eq!(cluster.master_of_slot(slot), to);
    assert_eq!(count(to), "250");
    assert_eq!(count(from), "0");

    // A stopped replica is left out of the waits; continued, it rejoins.
    let paused = cluster.replica_of(to);
    cluster.pause(paused);
    cluster.wait_ok(WAIT);
    cluster.resume(paused);
    cluster.wait_ok(WAIT);

    // A killed master is replaced by its replica, on the cluster's own.
    let survivor = cluster.replica_of(to);
    cluster.kill(to);
    cluster.wait_until_master(survivor, WAIT);
    cluster.wait_ok(Duration::from_secs(10));
    assert_eq!(cluster.master_of_slot(slot), survivor);
    assert_eq!(cluster.cli(survivor, &["GET", "{stepwise}:7"]), "7");
    assert_eq!(cluster.cli(survivor, &["-c", "GET", key]), "before");
    assert!(!cluster.masters().contains(&to));
    assert_ne!(cluster.url(), format!("redis://127.0.0.1:{to}"));
}

#[test]
fn sentinel_failover_and_kill() {
    let mut set = RedisSentinel::start();
    let sentinels = set.sentinel_ports();
    assert_eq!(
        set.url(),
        format!(
            "redis+sentinel://127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}/mymaster",
            sentinels[0], sentinels[1], sentinels[2]
        )
    );
    let first = set.master_port();
    assert_eq!(first, set.data_ports()[0]);
    set.cli(first, &["SET", "probe", "before"]);
    assert_eq!(set.cli(first, &["WAIT", "1", "5000"]), "1");

    set.failover();
    let second = set.master_port();
    assert_ne!(second, first);
    assert_eq!(set.replica_port(), first);
    assert_eq!(set.cli(second, &["GET", "probe"]), "before");

    set.cli(second, &["SET", "probe", "after"]);
    assert_eq!(set.cli(second, &["WAIT", "1", "5000"]), "1");
    set.kill_master();
    assert_eq!(set.master_port(), first);
    assert_eq!(set.cli(first, &["GET", "probe"]), "after");
}
