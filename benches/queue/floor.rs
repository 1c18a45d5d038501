//! The floor: the cheapest command sequence that moves a job through a Redis stream, sent by a
//! minimal client on the same kind of connection (a multiplexed redis-rs connection). No queue
//! can beat it on the same Redis; streamworker's figures are read as ratios to it.

use crate::child::{Stamp, unix_ns};
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use redis::Value;
use redis::aio::MultiplexedConnection;
use std::task::Poll;
use std::time::{Duration, Instant};

pub const STREAM: &str = "floor:jobs";
pub const GROUP: &str = "floor";

/// The fields of a bare job entry: the task name and the same msgpack args streamworker sends.
pub fn bare_entry(t: u64) -> [(&'static str, Vec<u8>); 2] {
    let args = rmp_serde::to_vec_named(&Stamp { t }).expect("msgpack");
    [("task", b"bench".to_vec()), ("args", args)]
}

fn xadd(pipe: &mut redis::Pipeline, t: u64) {
    let fields = bare_entry(t);
    pipe.cmd("XADD").arg(STREAM).arg("*");
    for (k, v) in fields {
        pipe.arg(k).arg(v);
    }
}

/// XADDs per pipeline in the bulk floor. Each pipeline is handed to the connection as soon as
/// it is built, so that Redis stores one while the client encodes the next and parses the
/// replies of the one before: one pipeline of 100k keeps them in turn. Measured on 2 cores
/// (Redis 7.0, 100k entries): one pipeline 2.2 µs per entry, chunks of 100 1.9 µs, of 1,000
/// and 5,000 1.6 µs.
const BULK_CHUNK: u64 = 1000;

/// The XADD of [`bare_entry`] `t`, its buffers allocated once at their final size and no
/// allocation but the args' encoding.
fn xadd_cmd(t: u64) -> redis::Cmd {
    let args = rmp_serde::to_vec_named(&Stamp { t }).expect("msgpack");
    let words = ["XADD", STREAM, "*", "task", "bench", "args"];
    let size = words.iter().map(|w| w.len()).sum::<usize>() + args.len();
    let mut cmd = redis::Cmd::with_capacity(words.len() + 1, size);
    for word in words {
        cmd.arg(word);
    }
    cmd.arg(&args[..]);
    cmd
}

/// Pipelined XADD of `n` entries in pipelines of [`BULK_CHUNK`], all in flight at once on the
/// one connection: returns the elapsed time.
pub async fn bulk_enqueue(conn: &mut MultiplexedConnection, n: u64) -> Duration {
    let started = Instant::now();
    let mut sent = FuturesOrdered::new();
    let mut next = 0;
    while next < n {
        let end = (next + BULK_CHUNK).min(n);
        let mut pipe = redis::Pipeline::with_capacity((end - next) as usize);
        for t in next..end {
            pipe.add_command(xadd_cmd(t));
        }
        next = end;
        let mut conn = conn.clone();
        sent.push_back(async move {
            pipe.query_async::<Vec<Value>>(&mut conn)
                .await
                .expect("XADD pipeline");
        });
        // Queues the new pipeline on the connection and drops those answered, whose memory
        // the next one reuses.
        while let Poll::Ready(Some(())) = futures_util::poll!(sent.next()) {}
    }
    while sent.next().await.is_some() {}
    started.elapsed()
}

/// `n` XADDs, each awaited before the next is sent.
pub async fn single_enqueue(conn: &mut MultiplexedConnection, n: u64) -> Duration {
    let started = Instant::now();
    for i in 0..n {
        xadd_cmd(i).query_async::<Value>(conn).await.expect("XADD");
    }
    started.elapsed()
}

pub async fn create_group(conn: &mut MultiplexedConnection) {
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(STREAM)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async::<()>(conn)
        .await
        .expect("XGROUP CREATE");
}

fn read_cmd(block_ms: Option<u64>) -> redis::Cmd {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP").arg(GROUP).arg("c1").arg("COUNT").arg(500);
    if let Some(ms) = block_ms {
        cmd.arg("BLOCK").arg(ms);
    }
    cmd.arg("STREAMS").arg(STREAM).arg(">");
    cmd
}

/// Consumes `n` entries: XREADGROUP COUNT 500, and for each batch one XACK plus one XDEL
/// pipelined with the next read. `on_entry` sees each entry's stamp as it arrives. Returns the
/// time from the first read to the last acknowledgement.
pub async fn consume(
    conn: &mut MultiplexedConnection,
    n: u64,
    block_ms: Option<u64>,
    mut on_entry: Option<&mut (dyn FnMut(u64) + Send)>,
) -> Duration {
    let started = Instant::now();
    let mut seen = 0u64;
    let mut to_ack: Vec<String> = Vec::new();
    while seen < n {
        let mut pipe = redis::pipe();
        if !to_ack.is_empty() {
            pipe.cmd("XACK")
                .arg(STREAM)
                .arg(GROUP)
                .arg(&to_ack)
                .ignore();
            pipe.cmd("XDEL").arg(STREAM).arg(&to_ack).ignore();
        }
        pipe.add_command(read_cmd(block_ms));
        let (reply,): (Value,) = pipe.query_async(conn).await.expect("XREADGROUP");
        to_ack.clear();
        for (id, fields) in entries(reply) {
            if let (Some(f), Some(args)) = (on_entry.as_mut(), field(&fields, b"args")) {
                let stamp: Stamp = rmp_serde::from_slice(args).expect("stamp");
                f(stamp.t);
            }
            to_ack.push(id);
            seen += 1;
        }
    }
    if !to_ack.is_empty() {
        let mut pipe = redis::pipe();
        pipe.cmd("XACK")
            .arg(STREAM)
            .arg(GROUP)
            .arg(&to_ack)
            .ignore();
        pipe.cmd("XDEL").arg(STREAM).arg(&to_ack).ignore();
        pipe.query_async::<()>(conn).await.expect("XACK");
    }
    started.elapsed()
}

/// The floor's latency: an idle consumer blocked on the stream, and `n` single XADDs at `rate`
/// per second, each carrying its send time. Returns enqueue→receipt per job, in µs.
pub async fn latency(
    producer: &mut MultiplexedConnection,
    consumer: MultiplexedConnection,
    n: u64,
    rate: u64,
) -> Vec<i64> {
    let reader = tokio::spawn(async move {
        let mut consumer = consumer;
        let mut lags = Vec::with_capacity(n as usize);
        let mut record = |t: u64| lags.push((unix_ns() as i64 - t as i64) / 1_000);
        consume(&mut consumer, n, Some(2_000), Some(&mut record)).await;
        lags
    });
    // Give the consumer its first blocking read before sending.
    wait_blocked(producer).await;
    paced(n, rate, || {
        let mut conn = producer.clone();
        async move {
            let mut pipe = redis::pipe();
            xadd(&mut pipe, unix_ns());
            pipe.query_async::<Value>(&mut conn).await.expect("XADD");
        }
    })
    .await;
    reader.await.expect("floor consumer")
}

/// Waits until some client of the server is blocked in a read (`CLIENT LIST` flag `b`): the
/// consumer under test is up and idle.
pub async fn wait_blocked(conn: &mut MultiplexedConnection) {
    loop {
        let clients: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(conn)
            .await
            .expect("CLIENT LIST");
        if clients.lines().any(|l| {
            l.split(' ')
                .any(|f| f.strip_prefix("flags=").is_some_and(|v| v.contains('b')))
        }) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Calls `send` `n` times at `rate` per second, each awaited before the next.
pub async fn paced<F, Fut>(n: u64, rate: u64, mut send: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for _ in 0..n {
        ticks.tick().await;
        send().await;
    }
}

/// Producer and consumer together at full speed: `n` entries pipelined in chunks of `chunk`
/// while one consumer drains them. Returns the time from the first XADD to the last ack.
pub async fn end_to_end(
    producer: &mut MultiplexedConnection,
    consumer: MultiplexedConnection,
    n: u64,
    chunk: u64,
) -> Duration {
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        let mut consumer = consumer;
        consume(&mut consumer, n, Some(1_000), None).await
    });
    let mut sent = 0;
    while sent < n {
        let mut pipe = redis::pipe();
        for i in sent..(sent + chunk).min(n) {
            xadd(&mut pipe, i);
            pipe.ignore();
        }
        pipe.query_async::<()>(producer)
            .await
            .expect("XADD pipeline");
        sent += chunk;
    }
    reader.await.expect("floor consumer");
    started.elapsed()
}

/// The entries of an XREADGROUP reply on one stream (RESP2): id and field/value list each.
fn entries(reply: Value) -> Vec<(String, Vec<Value>)> {
    let Value::Array(streams) = reply else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for stream in streams {
        let Value::Array(mut parts) = stream else {
            continue;
        };
        let Some(Value::Array(items)) = parts.pop() else {
            continue;
        };
        for item in items {
            let Value::Array(mut pair) = item else {
                continue;
            };
            let fields = match pair.pop() {
                Some(Value::Array(f)) => f,
                _ => Vec::new(),
            };
            if let Some(Value::BulkString(id)) = pair.pop() {
                out.push((String::from_utf8(id).expect("entry id"), fields));
            }
        }
    }
    out
}

fn field<'a>(fields: &'a [Value], name: &[u8]) -> Option<&'a [u8]> {
    fields.chunks(2).find_map(|kv| match kv {
        [Value::BulkString(k), Value::BulkString(v)] if k == name => Some(v.as_slice()),
        _ => None,
    })
}
