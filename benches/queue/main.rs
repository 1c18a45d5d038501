//! streamworker's benchmarks, each against the raw-Redis floor measured in the same run on the
//! same redis-server (see `floor.rs`).
//!
//! ```sh
//! cargo bench                      # every bench; throughput figures are medians of 3 runs
//! cargo bench -- --quick           # one run each: under a minute
//! cargo bench -- drain latency     # only the benches named
//! cargo bench -- cluster           # one node against a Redis Cluster of three masters
//! cargo bench -- batch             # a batch's bookkeeping beside a plain drain
//! cargo bench --features postgres -- outbox   # the PostgreSQL outbox beside plain enqueue
//! REDIS_SERVER=/opt/redis-8/bin/redis-server cargo bench   # another Redis
//! ```
//!
//! Prints one table and writes `target/bench/<bench>.json` per bench.

mod batch;
mod child;
mod cluster;
mod drain;
mod enqueue;
mod exec;
mod floor;
mod latency;
mod memory;
#[cfg(feature = "postgres")]
mod outbox;
mod report;
mod server;

use report::Row;
use server::Server;
use streamworker::Client;

/// The group every bench uses (each run starts from an empty server).
pub const GROUP: &str = "bench";

/// What every bench gets.
pub struct Ctx {
    pub server: Server,
    pub client: Client,
    /// Repetitions of each throughput measure (the median is reported).
    pub runs: usize,
    pub quick: bool,
}

const BENCHES: [&str; 10] = [
    "enqueue", "drain", "e2e", "latency", "delayed", "memory", "cluster", "exec", "outbox", "batch",
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, json] = args.as_slice()
        && flag == "--child"
    {
        return child::main(json);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let named: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    for name in &named {
        assert!(
            BENCHES.contains(name),
            "unknown bench {name:?}: choose from {BENCHES:?}"
        );
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let server = Server::start();
        let client = Client::connect(&server.url).await.expect("client");
        let label = server.label().await;
        let redis_version = server.redis_version().await;
        let ctx = Ctx {
            server,
            client,
            runs: if quick { 1 } else { 3 },
            quick,
        };
        println!(
            "streamworker benches{} on {label}, {} cores; floor = raw commands on one connection",
            if quick { " (--quick)" } else { "" },
            std::thread::available_parallelism().map_or(0, |n| n.get()),
        );
        let mut all: Vec<Row> = Vec::new();
        for bench in BENCHES {
            if !named.is_empty() && !named.contains(&bench) {
                continue;
            }
            let rows = match bench {
                "enqueue" => enqueue::run(&ctx).await,
                "drain" => drain::drain(&ctx).await,
                "e2e" => drain::end_to_end(&ctx).await,
                "latency" => latency::latency(&ctx).await,
                "delayed" => latency::delayed(&ctx).await,
                "memory" => memory::run(&ctx).await,
                "cluster" => cluster::run(&ctx).await,
                "exec" => exec::run(&ctx).await,
                "batch" => batch::run(&ctx).await,
                #[cfg(feature = "postgres")]
                "outbox" => outbox::run(&ctx).await,
                #[cfg(not(feature = "postgres"))]
                "outbox" => {
                    println!("outbox: skipped (cargo bench --features postgres runs it)\n");
                    continue;
                }
                _ => unreachable!(),
            };
            report::print_table(&rows);
            let path = report::write_json(bench, &label, &redis_version, quick, &rows);
            println!("  -> {}\n", path.display());
            all.extend(rows);
        }
        println!("summary");
        report::print_table(&all);
    });
}
