//! CPU time and memory of the processes sharing the machine with the load, read from `/proc`.
//!
//! A group's CPU time is the sum of utime + stime + cutime + cstime over its processes. Counting
//! the children's (reaped) time too means a PostgreSQL backend or an nginx worker that exits
//! between two samples still counts: its time moves into its parent's cutime/cstime, and the
//! parent is in the group.

use std::collections::{HashMap, HashSet};

/// Which processes form a group.
#[derive(Clone, Debug)]
pub enum Select {
    /// These pids and all their descendants (nginx: the master and its workers).
    Pids(Vec<u32>),
    /// Every process whose `comm` is this (Redis: `redis-server`).
    Comm(String),
    /// One database's share of a PostgreSQL server that other work may use too: the backends
    /// serving that database, and the server's own processes (postmaster, WAL writer,
    /// checkpointer, …), which work for every database. Told apart by the process titles
    /// PostgreSQL sets (`postgres: 15/main: USER DB HOST(PORT) STATE` for a backend). Only
    /// utime + stime count here: the postmaster's children's time is every database's.
    /// A backend of this database that exits inside the window loses its time; the
    /// instances' pools keep their connections, so that is rare.
    PgDatabase(String),
}

impl Select {
    /// `pids:1,2,3` or `comm:NAME`.
    pub fn parse(spec: &str) -> Result<Select, String> {
        if let Some(list) = spec.strip_prefix("pids:") {
            let pids = list
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<u32>().map_err(|_| format!("bad pid {s:?}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Select::Pids(pids))
        } else if let Some(name) = spec.strip_prefix("comm:") {
            Ok(Select::Comm(name.to_owned()))
        } else if let Some(db) = spec.strip_prefix("pg:") {
            Ok(Select::PgDatabase(db.to_owned()))
        } else {
            Err(format!(
                "{spec:?}: want pids:N,N…, comm:NAME or pg:DATABASE"
            ))
        }
    }
}

/// One process as seen in `/proc/<pid>/stat`.
struct Proc {
    ppid: u32,
    comm: String,
    /// utime + stime + cutime + cstime, in clock ticks.
    ticks: u64,
    /// utime + stime only.
    own_ticks: u64,
}

fn read_proc(pid: u32) -> Option<Proc> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name sits in parentheses and may itself hold spaces or parentheses.
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_owned();
    let f: Vec<&str> = s[close + 2..].split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
    Some(Proc {
        ppid: n(1) as u32,
        comm,
        ticks: n(11) + n(12) + n(13) + n(14),
        own_ticks: n(11) + n(12),
    })
}

fn all_procs() -> HashMap<u32, Proc> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
            if let Some(p) = read_proc(pid) {
                out.insert(pid, p);
            }
        }
    }
    out
}

/// Clock ticks per second. Linux reports `/proc` times in USER_HZ, which is 100 on every
/// architecture Till runs on; no libc call needed for that.
pub const HZ: f64 = 100.0;

/// CPU ticks of each named group, at one instant.
pub fn sample(groups: &[(String, Select)]) -> Vec<u64> {
    let procs = all_procs();
    groups
        .iter()
        .map(|(_, sel)| match sel {
            Select::Comm(name) => procs
                .values()
                .filter(|p| &p.comm == name)
                .map(|p| p.ticks)
                .sum(),
            Select::PgDatabase(db) => procs
                .iter()
                .filter(|(pid, p)| p.comm == "postgres" && pg_counts(**pid, db))
                .map(|(_, p)| p.own_ticks)
                .sum(),
            Select::Pids(roots) => {
                let mut members: HashSet<u32> = roots
                    .iter()
                    .copied()
                    .filter(|p| procs.contains_key(p))
                    .collect();
                // Descendants: repeat until no process joins (process trees here are shallow).
                loop {
                    let before = members.len();
                    for (pid, p) in &procs {
                        if members.contains(&p.ppid) {
                            members.insert(*pid);
                        }
                    }
                    if members.len() == before {
                        break;
                    }
                }
                members
                    .iter()
                    .filter_map(|p| procs.get(p))
                    .map(|p| p.ticks)
                    .sum()
            }
        })
        .collect()
}

/// Whether a PostgreSQL process works for database `db`: its backends (the title names the
/// database between spaces) and the server's shared processes, but not the backends of other
/// databases (their titles hold the client address: `HOST(PORT)` or `[local]`).
fn pg_counts(pid: u32, db: &str) -> bool {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let title = String::from_utf8_lossy(&raw).replace('\0', " ");
    if title.contains(&format!(" {db} ")) {
        return true;
    }
    let backend = title.contains('(') || title.contains("[local]");
    // An autovacuum worker's title names its database too; another one's is not ours.
    !backend && !title.contains("autovacuum worker")
}

/// This process's own CPU ticks (utime + stime).
pub fn self_ticks() -> u64 {
    read_proc(std::process::id()).map(|p| p.ticks).unwrap_or(0)
}

/// (busy, total) ticks of the whole machine from the first line of `/proc/stat`.
pub fn machine_ticks() -> (u64, u64) {
    let Ok(s) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    let idle = get(3) + get(4);
    let total: u64 = (0..8).map(get).sum();
    (total - idle, total)
}

/// VmRSS in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Open TCP connections of a process: its socket descriptors (a close enough count here,
/// where a `till serve` holds no other sockets than its listener, clients, PostgreSQL and Redis).
pub fn sockets(pid: u32) -> Option<usize> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        dir.flatten()
            .filter(|e| {
                std::fs::read_link(e.path())
                    .map(|t| t.to_string_lossy().starts_with("socket:"))
                    .unwrap_or(false)
            })
            .count(),
    )
}
