//! Cluster: three groups drained at once by one worker process, (a) on one node and (b) on a
//! Redis Cluster of three masters, each group on a master of its own; the two alternate, run by
//! run.
//!
//! On a machine with fewer cores than processes (the worker, and one or three redis-servers,
//! all on the same cores) three masters cannot drain faster than one node: the wall clock is
//! reported, without a target. What a cluster buys is Redis CPU to spread over: throughput
//! grows with the masters as long as a master spends on each job of its group what one node
//! spends on each job. That is the target: every master's Redis CPU per job (INFO cpu, user
//! plus system, over the jobs of the group it holds) within 10 % of one node's (over all the
//! jobs). INFO commandstats, read on every node around every drain, splits that CPU into the
//! worker's commands (XREADGROUP and the scripts) and the rest (reading and writing the
//! connections, the event loop, and in a cluster the cluster bus). For context, each run also
//! drains one group alone on the one node: a node serving one group, as each master does.

use crate::Ctx;
use crate::child::{Child, ChildArgs, Stamp, Work};
use crate::report::{Row, Target, median};
use crate::server::{Cluster, Server};
use std::collections::BTreeMap;
use std::time::Duration;
use streamworker::{Client, Job};

const MASTERS: usize = 3;
/// Jobs per group.
const JOBS: u64 = 100_000;
const QUICK_JOBS: u64 = 30_000;
/// The drain bench's best level: enough slots that fetches and finishes go in batches.
const CONCURRENCY: usize = 256;
/// A master's Redis CPU per job at most this times one node's.
const MAX_RATIO: f64 = 1.10;
/// The commands the worker's job path sends: fetches and scripts (a script's figures include
/// the commands it runs).
const JOB_PATH: [&str; 3] = ["xreadgroup", "evalsha", "eval"];

/// What one node spent during one drain.
#[derive(Clone, Default)]
struct Spent {
    /// used_cpu_user + used_cpu_sys, seconds.
    cpu_s: f64,
    /// µs inside the [`JOB_PATH`] commands (commandstats).
    commands_us: f64,
    /// Calls of the [`JOB_PATH`] commands.
    calls: u64,
    /// Calls of every command.
    all_calls: u64,
    /// Context switches: voluntary, involuntary.
    switches: (u64, u64),
    /// Every command's calls and µs.
    commands: Commands,
}

/// Per command (commandstats name): calls, µs.
type Commands = BTreeMap<String, (u64, f64)>;

/// A node's INFO cpu and commandstats at one moment.
struct Snapshot {
    cpu_s: f64,
    /// Context switches: voluntary, involuntary.
    switches: (u64, u64),
    commands: Commands,
}

async fn snapshot(server: &Server) -> Snapshot {
    let info = server.info(&["cpu", "commandstats"]).await;
    let field = |name: &str| -> f64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("INFO cpu has no {name}"))
    };
    let cpu_s = field("used_cpu_user") + field("used_cpu_sys");
    // `cmdstat_xreadgroup:calls=12,usec=345,usec_per_call=28.75,rejected_calls=0,...`
    let mut commands = Commands::new();
    for line in info.lines() {
        let Some((name, stats)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let value = |key: &str| {
            stats
                .split(',')
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        commands.insert(name.to_string(), (value("calls") as u64, value("usec")));
    }
    Snapshot {
        cpu_s,
        switches: server.context_switches(),
        commands,
    }
}

impl Snapshot {
    /// What each command added since `before`.
    fn commands_since(&self, before: &Snapshot) -> Commands {
        let mut out = Commands::new();
        for (name, &(calls, usec)) in &self.commands {
            let (calls_before, usec_before) =
                before.commands.get(name).copied().unwrap_or_default();
            if calls > calls_before {
                out.insert(name.clone(), (calls - calls_before, usec - usec_before));
            }
        }
        out
    }

    fn spent_since(&self, before: &Snapshot) -> Spent {
        let mut spent = Spent {
            cpu_s: self.cpu_s - before.cpu_s,
            switches: (
                self.switches.0 - before.switches.0,
                self.switches.1 - before.switches.1,
            ),
            ..Spent::default()
        };
        spent.commands = self.commands_since(before);
        for (name, &(calls, usec)) in &spent.commands {
            spent.all_calls += calls;
            if JOB_PATH.contains(&name.as_str()) {
                spent.calls += calls;
                spent.commands_us += usec;
            }
        }
        spent
    }
}

/// Per job, in µs and calls: what a node spent on `jobs` jobs.
#[derive(Clone, Copy)]
struct PerJob {
    cpu_us: f64,
    commands_us: f64,
    /// Jobs per [`JOB_PATH`] call.
    jobs_per_call: f64,
    /// Calls of every command per job.
    calls: f64,
    /// Context switches per 100 jobs: voluntary, involuntary.
    switches: (f64, f64),
}

impl Spent {
    /// Per job of `jobs`; with `BENCH_COMMANDSTATS` set, prints each command's calls and µs
    /// per job first, headed `name`.
    fn per_job(&self, jobs: u64, name: &str) -> PerJob {
        let jobs = jobs as f64;
        if std::env::var_os("BENCH_COMMANDSTATS").is_some() {
            let each: Vec<String> = self
                .commands
                .iter()
                .map(|(command, (calls, usec))| {
                    format!("{command} {:.4}/{:.3}", *calls as f64 / jobs, usec / jobs)
                })
                .collect();
            println!("    {name}, calls/µs per job: {}", each.join(", "));
        }
        PerJob {
            cpu_us: self.cpu_s * 1e6 / jobs,
            commands_us: self.commands_us / jobs,
            jobs_per_call: jobs / self.calls.max(1) as f64,
            calls: self.all_calls as f64 / jobs,
            switches: (
                self.switches.0 as f64 * 100.0 / jobs,
                self.switches.1 as f64 * 100.0 / jobs,
            ),
        }
    }
}

/// The same drain on one node or on the cluster: `servers` are the nodes to watch, `url` the
/// worker's URL.
struct Setup<'a> {
    servers: Vec<&'a Server>,
    url: String,
    cluster: bool,
    client: &'a Client,
}

/// One drain: empties every node, enqueues `jobs` jobs per group, starts one worker process
/// for all of `groups`; returns jobs/s and what each node spent.
async fn drain(setup: &Setup<'_>, groups: &[String], jobs: u64) -> (f64, Vec<Spent>) {
    for server in &setup.servers {
        server.flush().await;
    }
    let batch: Vec<Job> = groups
        .iter()
        .flat_map(|g| (0..jobs).map(move |t| Job::new(g.as_str(), "bench", &Stamp { t })))
        .collect::<Result<_, _>>()
        .expect("jobs");
    setup
        .client
        .enqueue_many(batch)
        .await
        .expect("enqueue_many");
    let mut before = Vec::new();
    for server in &setup.servers {
        before.push(snapshot(server).await);
    }
    let total = jobs * groups.len() as u64;
    let report = Child::spawn(&ChildArgs {
        url: setup.url.clone(),
        cluster: setup.cluster,
        groups: groups.to_vec(),
        concurrency: CONCURRENCY,
        expect: total,
        work: Work::Noop,
    })
    .report()
    .await;
    let mut spent = Vec::new();
    for (server, before) in setup.servers.iter().zip(&before) {
        spent.push(snapshot(server).await.spent_since(before));
    }
    let took = Duration::from_nanos(report.acked_ns - report.started_ns);
    (total as f64 / took.as_secs_f64(), spent)
}

/// Group names `bench-N`, one per master and the `i`-th on master `i`; with `one_master`, all
/// of them on the first master. Returns each group's name and master.
async fn place_groups(cluster: &Cluster, one_master: bool) -> Vec<(String, usize)> {
    let masters = cluster.masters.len();
    let mut placed: Vec<(String, usize)> = Vec::new();
    for n in 0.. {
        let group = format!("bench-{n}");
        let slot = cluster
            .slot_of(&format!("streamworker:{{{group}}}:default"))
            .await;
        let master = cluster.master_of(slot);
        let wanted = if one_master {
            master == 0
        } else {
            placed.iter().all(|(_, m)| *m != master)
        };
        if wanted {
            placed.push((group, master));
        }
        if placed.len() == masters {
            break;
        }
    }
    placed.sort_by_key(|(_, m)| *m);
    placed
}

pub async fn run(ctx: &Ctx) -> Vec<Row> {
    let jobs = if ctx.quick { QUICK_JOBS } else { JOBS };
    let cluster = Cluster::start(MASTERS);
    // BENCH_CLUSTER_ONE_MASTER=1 puts the three groups on the first master: what cluster mode
    // costs a node, apart from spreading the groups.
    let one_master = std::env::var_os("BENCH_CLUSTER_ONE_MASTER").is_some();
    let placed = place_groups(&cluster, one_master).await;
    let groups: Vec<String> = placed.iter().map(|(g, _)| g.clone()).collect();
    // Per master: the groups it holds, and the jobs they bring.
    let held: Vec<Vec<&str>> = (0..MASTERS)
        .map(|m| {
            placed
                .iter()
                .filter(|(_, home)| *home == m)
                .map(|(g, _)| g.as_str())
                .collect()
        })
        .collect();
    let cluster_client = Client::connect(&cluster.seeds())
        .await
        .expect("client of the cluster");
    let one_node = Setup {
        servers: vec![&ctx.server],
        url: ctx.server.url.clone(),
        cluster: false,
        client: &ctx.client,
    };
    let masters = Setup {
        servers: cluster.masters.iter().collect(),
        url: cluster.seeds(),
        cluster: true,
        client: &cluster_client,
    };
    println!(
        "  {} groups of {}k jobs, one worker at concurrency {CONCURRENCY}; {}",
        groups.len(),
        jobs / 1000,
        held.iter()
            .zip(&cluster.masters)
            .enumerate()
            .map(|(m, (gs, server))| format!(
                "master {} (port {}): {}",
                m + 1,
                server.port,
                if gs.is_empty() {
                    "-".into()
                } else {
                    gs.join(", ")
                }
            ))
            .collect::<Vec<_>>()
            .join("; "),
    );
    let total = jobs * groups.len() as u64;
    let jobs_on = |m: usize| jobs * held[m].len() as u64;
    let (mut node_rates, mut cluster_rates) = (Vec::new(), Vec::new());
    let mut node_per_job: Vec<PerJob> = Vec::new();
    let mut single_per_job: Vec<PerJob> = Vec::new();
    let mut master_per_job: Vec<Vec<PerJob>> = vec![Vec::new(); MASTERS];
    for run in 1..=ctx.runs {
        let (node_rate, spent) = drain(&one_node, &groups, jobs).await;
        node_rates.push(node_rate);
        let node = spent[0].per_job(total, "one node");
        node_per_job.push(node);

        let (rate, spent) = drain(&masters, &groups, jobs).await;
        cluster_rates.push(rate);
        let per_master: Vec<PerJob> = spent
            .iter()
            .enumerate()
            .map(|(m, s)| s.per_job(jobs_on(m).max(1), &format!("master {}", m + 1)))
            .collect();
        for (m, p) in per_master.iter().enumerate() {
            master_per_job[m].push(*p);
        }

        let (_, spent) = drain(&one_node, &groups[..1], jobs).await;
        let single = spent[0].per_job(jobs, "one node, 1 group");
        single_per_job.push(single);
        let busy: Vec<usize> = (0..MASTERS).filter(|&m| jobs_on(m) > 0).collect();
        println!(
            "  run {run}: one node {:.0} jobs/s, Redis {:.2} µs/job; {MASTERS} masters {:.0} jobs/s, Redis {} µs/job (× one node: {}); one node, 1 group: Redis {:.2} µs/job ({:.2}×)",
            node_rate,
            node.cpu_us,
            rate,
            busy.iter()
                .map(|&m| format!("{:.2}", per_master[m].cpu_us))
                .collect::<Vec<_>>()
                .join(" / "),
            busy.iter()
                .map(|&m| format!("{:.2}", per_master[m].cpu_us / node.cpu_us))
                .collect::<Vec<_>>()
                .join(" / "),
            single.cpu_us,
            single.cpu_us / node.cpu_us,
        );
    }

    let node = medians(&node_per_job);
    println!(
        "  Redis per job, medians of {} run(s):        CPU µs   in commands µs   rest µs   jobs/call   calls/job   switches/100 jobs   CPU vs one node",
        ctx.runs
    );
    let line = |name: String, p: &PerJob, verdict: String| {
        println!(
            "    {name:<40} {:>6.2} {:>16.2} {:>9.2} {:>11.1} {:>11.3} {:>19}   {verdict}",
            p.cpu_us,
            p.commands_us,
            p.cpu_us - p.commands_us,
            p.jobs_per_call,
            p.calls,
            format!("{:.1} + {:.1}", p.switches.0, p.switches.1),
        );
    };
    line(
        format!("one node ({} groups)", groups.len()),
        &node,
        String::new(),
    );
    let mut all_met = true;
    for (m, runs) in master_per_job.iter().enumerate() {
        if held[m].is_empty() {
            let idle_ms = median(&runs.iter().map(|p| p.cpu_us / 1e3).collect::<Vec<_>>());
            println!(
                "    {:<40} idle: {idle_ms:.1} ms of CPU per drain",
                format!("master {}", m + 1)
            );
            continue;
        }
        let p = medians(runs);
        let ratio = p.cpu_us / node.cpu_us;
        let met = ratio <= MAX_RATIO;
        all_met &= met;
        line(
            format!("master {} ({})", m + 1, held[m].join(", ")),
            &p,
            format!("{ratio:.2}× ({})", if met { "met" } else { "missed" }),
        );
    }
    let single = medians(&single_per_job);
    line(
        format!("one node, 1 group ({})", groups[0]),
        &single,
        format!("{:.2}× (context)", single.cpu_us / node.cpu_us),
    );
    println!(
        "  target, every master's Redis CPU per job ≤ {MAX_RATIO:.2}× one node's: {}",
        if all_met { "met" } else { "MISSED" }
    );

    let label = format!("{} groups × {}k", groups.len(), jobs / 1000);
    let node_rate = median(&node_rates);
    let node_cpu: Vec<f64> = node_per_job.iter().map(|p| p.cpu_us).collect();
    let mut rows = vec![
        Row::new(format!("{label}, one node"), "jobs/s", node_rates),
        Row::new(
            format!("{label}, {MASTERS} masters"),
            "jobs/s",
            cluster_rates,
        )
        .reference(node_rate, "one node"),
        Row::new("Redis CPU per job, one node", "µs", node_cpu),
    ];
    for (m, runs) in master_per_job.iter().enumerate() {
        if held[m].is_empty() {
            continue;
        }
        rows.push(
            Row::new(
                format!("Redis CPU per job, master {}", m + 1),
                "µs",
                runs.iter().map(|p| p.cpu_us).collect(),
            )
            .reference(node.cpu_us, "one node")
            .target(Target::RatioAtMost(MAX_RATIO)),
        );
    }
    rows.push(
        Row::new(
            "Redis CPU per job, one node, 1 group",
            "µs",
            single_per_job.iter().map(|p| p.cpu_us).collect(),
        )
        .reference(node.cpu_us, "one node"),
    );
    rows
}

/// Each figure's median over runs.
fn medians(runs: &[PerJob]) -> PerJob {
    let of = |f: fn(&PerJob) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    PerJob {
        cpu_us: of(|p| p.cpu_us),
        commands_us: of(|p| p.commands_us),
        jobs_per_call: of(|p| p.jobs_per_call),
        calls: of(|p| p.calls),
        switches: (of(|p| p.switches.0), of(|p| p.switches.1)),
    }
}
