//! Figures: one row per measure, printed as a table and written as JSON under
//! `target/bench/`, so a regression can be compared across commits.

use serde::Serialize;
use std::path::PathBuf;

/// What a row must reach.
#[derive(Clone, Copy, Serialize, Debug)]
pub enum Target {
    /// streamworker ÷ floor at least this (higher is better).
    RatioAtLeast(f64),
    /// streamworker ÷ floor at most this (lower is better).
    RatioAtMost(f64),
    /// streamworker at most this, in the row's unit (lower is better).
    AtMost(f64),
    /// streamworker at least this, in the row's unit (higher is better).
    AtLeast(f64),
    /// streamworker at most the floor plus this, in the row's unit (lower is better).
    FloorPlus(f64),
    /// No target: shown for context.
    None,
}

#[derive(Serialize, Debug, Clone)]
pub struct Row {
    pub measure: String,
    pub unit: &'static str,
    pub streamworker: f64,
    pub floor: Option<f64>,
    /// What the `floor` column holds: the raw-Redis floor, or another reference (the same
    /// worker on one node, for the cluster bench).
    pub reference: &'static str,
    pub target: Target,
    /// Every run's figure when the row is a median of several.
    pub runs: Vec<f64>,
}

impl Row {
    pub fn new(measure: impl Into<String>, unit: &'static str, runs: Vec<f64>) -> Row {
        Row {
            measure: measure.into(),
            unit,
            streamworker: median(&runs),
            floor: None,
            reference: "floor",
            target: Target::None,
            runs,
        }
    }

    pub fn floor(mut self, floor: f64) -> Row {
        self.floor = Some(floor);
        self
    }

    /// A reference other than the floor, shown in the floor column and named in the target.
    pub fn reference(mut self, value: f64, name: &'static str) -> Row {
        self.floor = Some(value);
        self.reference = name;
        self
    }

    pub fn target(mut self, target: Target) -> Row {
        self.target = target;
        self
    }

    pub fn ratio(&self) -> Option<f64> {
        self.floor.map(|f| self.streamworker / f)
    }

    pub fn met(&self) -> Option<bool> {
        match self.target {
            Target::RatioAtLeast(r) => self.ratio().map(|x| x >= r),
            Target::RatioAtMost(r) => self.ratio().map(|x| x <= r),
            Target::AtMost(v) => Some(self.streamworker <= v),
            Target::AtLeast(v) => Some(self.streamworker >= v),
            Target::FloorPlus(v) => self.floor.map(|f| self.streamworker <= f + v),
            Target::None => None,
        }
    }
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The value at quantile `q` (0..=1) of `values` (nearest rank).
pub fn quantile(values: &mut [i64], q: f64) -> i64 {
    values.sort_unstable();
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

fn number(v: f64, unit: &str) -> String {
    if unit == "jobs/s" || v >= 1000.0 {
        let n = v.round() as u64;
        let s = n.to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn target_text(row: &Row) -> String {
    match row.target {
        Target::RatioAtLeast(r) => format!("≥ {r:.2}× {}", row.reference),
        Target::RatioAtMost(r) => format!("≤ {r:.2}× {}", row.reference),
        Target::AtMost(v) => format!("≤ {} {}", number(v, row.unit), row.unit),
        Target::AtLeast(v) => format!("≥ {} {}", number(v, row.unit), row.unit),
        Target::FloorPlus(v) => format!("≤ floor + {} {}", number(v, row.unit), row.unit),
        Target::None => String::new(),
    }
}

pub fn print_table(rows: &[Row]) {
    println!(
        "{:<44} {:>13} {:>13} {:>7}  target",
        "measure", "streamworker", "floor", "ratio"
    );
    for row in rows {
        let floor = row.floor.map_or("-".into(), |f| number(f, row.unit));
        let ratio = row.ratio().map_or("-".into(), |r| format!("{r:.2}×"));
        let met = match row.met() {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        println!(
            "{:<44} {:>13} {:>13} {:>7}  {:<18} {}",
            format!("{} ({})", row.measure, row.unit),
            number(row.streamworker, row.unit),
            floor,
            ratio,
            target_text(row),
            met
        );
    }
}

#[derive(Serialize)]
struct File<'a> {
    bench: &'a str,
    commit: String,
    /// `Redis 7.0.15`, `Valkey 8.1.1`.
    server: &'a str,
    /// INFO's `redis_version` (`7.2.4` on every Valkey so far).
    redis_version: &'a str,
    quick: bool,
    unix_time: u64,
    rows: &'a [Row],
}

/// Writes `target/bench/<bench>.json`; returns its path.
pub fn write_json(
    bench: &str,
    server: &str,
    redis_version: &str,
    quick: bool,
    rows: &[Row],
) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let file = File {
        bench,
        commit,
        server,
        redis_version,
        quick,
        unix_time: crate::child::unix_ns() / 1_000_000_000,
        rows,
    };
    let path = dir.join(format!("{bench}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&file).expect("json")).expect("write json");
    path
}
