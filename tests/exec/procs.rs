//! Processes as Linux shows them in `/proc`: whether one runs, its parent and process group,
//! which processes a group still holds, a process's command line and open files.

use std::fs;

/// What `/proc/PID/stat` says of a process.
struct Stat {
    /// `R`, `S`, `Z` (zombie), ...
    state: char,
    /// The parent's pid.
    ppid: i32,
    /// The process group.
    pgrp: i32,
}

/// `/proc/PID/stat` of a running process: `None` when there is none, or only a zombie (dead,
/// waiting to be reaped).
fn stat(pid: i32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `PID (COMM) STATE PPID PGRP ...`; COMM may hold spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some(Stat { state, ppid, pgrp }).filter(|s| !matches!(s.state, 'Z' | 'X' | 'x'))
}

/// Every pid in `/proc`.
fn pids() -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .collect()
}

/// The process group of `pid`, if it runs.
pub fn group_of(pid: i32) -> Option<i32> {
    stat(pid).map(|s| s.pgrp)
}

/// Whether `pid` runs as a member of the group `pgid` (a zombie, or a pid taken since by a
/// process of another group, does not count).
pub fn runs_in(pid: i32, pgid: i32) -> bool {
    group_of(pid) == Some(pgid)
}

/// Every running process of the group `pgid`.
pub fn members(pgid: i32) -> Vec<i32> {
    pids()
        .into_iter()
        .filter(|&pid| runs_in(pid, pgid))
        .collect()
}

/// The running children of `pid`.
pub fn children(pid: i32) -> Vec<i32> {
    pids()
        .into_iter()
        .filter(|&child| stat(child).is_some_and(|s| s.ppid == pid))
        .collect()
}

/// The command line of `pid`, its arguments joined by spaces.
pub fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .unwrap_or_default()
}

/// What the descriptor `fd` of `pid` refers to (`/dev/null`, `pipe:[INODE]`, a path).
pub fn fd_target(pid: i32, fd: i32) -> Option<String> {
    let target = fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    Some(target.to_string_lossy().into_owned())
}

/// SIGKILLs the group `pgid` when dropped during a panic, so a failed test leaves nothing
/// running.
pub struct KillOnFailure(pub i32);

impl Drop for KillOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() && self.0 > 1 {
            let _ = std::process::Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", self.0)])
                .status();
        }
    }
}
