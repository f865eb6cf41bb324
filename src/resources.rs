//! The whole machine on the run's timeline, so a verdict is never built on seconds in which
//! the test machine itself was the bottleneck: every second, the machine's CPU, load and
//! memory, and CPU and resident memory per role of this run's process tree — the run process
//! (the coordinator and the embedded stack's first process), the stack's other processes,
//! PostgreSQL (the postmaster and every backend) and the harness workers — read from `/proc`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// One process role's use of the machine in one second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleUse {
    /// CPU used, in cores (1.0 = one core busy all second).
    pub cpu_cores: f64,
    pub rss_bytes: u64,
    pub processes: u32,
}

/// One second of the machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceSample {
    /// Seconds since the load started.
    pub t: f64,
    /// Busy share of all cores, percent (100 = every core busy).
    pub machine_cpu_pct: f64,
    pub load_1m: f64,
    pub memory_used_bytes: u64,
    #[serde(default)]
    pub roles: BTreeMap<String, RoleUse>,
}

/// The resources section of a result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default)]
    pub samples: Vec<ResourceSample>,
}

impl Resources {
    /// Seconds (as `t`, rounded down) in which the machine's CPU was at least `pct` busy.
    pub fn saturated_seconds(&self, pct: f64) -> Vec<u64> {
        self.samples
            .iter()
            .filter(|s| s.machine_cpu_pct >= pct)
            .map(|s| s.t.max(0.0) as u64)
            .collect()
    }
}

/// The role names, as the report shows them.
pub const RUN_PROCESS: &str = "run process (coordinator + stack's first process)";
pub const STACK_WORKERS: &str = "stack workers";
pub const POSTGRES: &str = "PostgreSQL";
pub const HARNESS: &str = "harness workers";

/// Samples every second until `cancel`; `t` counts from `origin`.
pub async fn run(origin: Instant, cancel: CancellationToken) -> Resources {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut meter = Meter::default();
    let mut out = Resources::default();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        let t = origin.elapsed().as_secs_f64();
        // /proc reads are quick but blocking; a few hundred files a second.
        let sampled = tokio::task::spawn_blocking(move || {
            let sample = meter.sample(t);
            (meter, sample)
        })
        .await;
        match sampled {
            Ok((m, sample)) => {
                meter = m;
                out.samples.extend(sample);
            }
            Err(_) => break,
        }
    }
    out
}

/// CPU ticks seen at the previous sample, for the differences.
#[derive(Default)]
struct Meter {
    machine: Option<(u64, u64)>,
    processes: HashMap<u32, u64>,
    at: Option<std::time::Instant>,
}

impl Meter {
    /// The sample of the second since the previous call (`None` on the first).
    fn sample(&mut self, t: f64) -> Option<ResourceSample> {
        let now = std::time::Instant::now();
        let elapsed = self.at.replace(now).map(|at| now - at);
        let machine = read_machine_ticks();
        let previous_machine = std::mem::replace(&mut self.machine, machine);
        let procs = descendants(std::process::id());
        let ticks: HashMap<u32, u64> = procs.iter().map(|p| (p.pid, p.cpu_ticks)).collect();
        let previous = std::mem::replace(&mut self.processes, ticks);
        let elapsed = elapsed?.as_secs_f64().max(0.001);
        let hz = clock_ticks();
        let mut roles: BTreeMap<String, RoleUse> = BTreeMap::new();
        for p in &procs {
            let used = p
                .cpu_ticks
                .saturating_sub(previous.get(&p.pid).copied().unwrap_or(p.cpu_ticks));
            let role = roles.entry(p.role.to_string()).or_default();
            role.cpu_cores += used as f64 / hz / elapsed;
            role.rss_bytes += p.rss_bytes;
            role.processes += 1;
        }
        let machine_cpu_pct = match (previous_machine, machine) {
            (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => {
                100.0 * busy1.saturating_sub(busy0) as f64 / (total1 - total0) as f64
            }
            _ => 0.0,
        };
        Some(ResourceSample {
            t,
            machine_cpu_pct,
            load_1m: read_load(),
            memory_used_bytes: read_memory_used(),
            roles,
        })
    }
}

struct Process {
    pid: u32,
    role: &'static str,
    cpu_ticks: u64,
    rss_bytes: u64,
}

/// `root` and every process below it, each with its role.
fn descendants(root: u32) -> Vec<Process> {
    let mut stats: Vec<(u32, u32, u64, u64, String)> = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((ppid, ticks, rss, comm)) = read_stat(pid) {
            stats.push((pid, ppid, ticks, rss, comm));
        }
    }
    let children: HashMap<u32, Vec<usize>> =
        stats
            .iter()
            .enumerate()
            .fold(HashMap::new(), |mut m, (i, s)| {
                m.entry(s.1).or_default().push(i);
                m
            });
    let mut out = Vec::new();
    let mut stack = vec![root];
    let own = stats.iter().find(|s| s.0 == root);
    if let Some(s) = own {
        out.push(Process {
            pid: s.0,
            role: RUN_PROCESS,
            cpu_ticks: s.2,
            rss_bytes: s.3,
        });
    }
    while let Some(pid) = stack.pop() {
        for &i in children.get(&pid).into_iter().flatten() {
            let s = &stats[i];
            stack.push(s.0);
            out.push(Process {
                pid: s.0,
                role: role_of(s.0, &s.4),
                cpu_ticks: s.2,
                rss_bytes: s.3,
            });
        }
    }
    out
}

fn role_of(pid: u32, comm: &str) -> &'static str {
    if comm == "postgres" {
        return POSTGRES;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let has = |word: &str| cmdline.split(|b| *b == 0).any(|arg| arg == word.as_bytes());
    if has(syncstorm_stack::workers::WORKER_SUBCOMMAND) {
        STACK_WORKERS
    } else if has(crate::swarm::coordinator::WORKER_SUBCOMMAND) {
        HARNESS
    } else {
        RUN_PROCESS
    }
}

/// (ppid, utime + stime ticks, rss bytes, comm) of `pid`.
fn read_stat(pid: u32) -> Option<(u32, u64, u64, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

fn parse_stat(stat: &str) -> Option<(u32, u64, u64, String)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    // After the command: state(0) ppid(1) … utime(11) stime(12) … rss pages(21).
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let rss_pages: u64 = fields.get(21)?.parse().ok()?;
    Some((ppid, utime + stime, rss_pages * page_size(), comm))
}

/// (busy, total) jiffies of all cores, from the first line of `/proc/stat`.
fn read_machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine_ticks(stat.lines().next()?)
}

fn parse_machine_ticks(cpu_line: &str) -> Option<(u64, u64)> {
    let values: Vec<u64> = cpu_line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

fn read_load() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn read_memory_used() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |key: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    kib("MemTotal:").saturating_sub(kib("MemAvailable:")) * 1024
}

fn clock_ticks() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_spaces_in_the_name() {
        let line = "4242 (postgres: wal sender) S 17 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 50 0 0 20 0 1 0 100 123456789 2500 18446744073709551615";
        let (ppid, ticks, rss, comm) = parse_stat(line).unwrap();
        assert_eq!(
            (ppid, ticks, comm.as_str()),
            (17, 300, "postgres: wal sender")
        );
        assert_eq!(rss, 2500 * page_size());
        assert_eq!(
            parse_machine_ticks("cpu  100 0 50 800 50 0 0 0 0 0"),
            Some((150, 1000))
        );
    }

    #[test]
    fn this_process_is_sampled_with_its_cpu_and_memory() {
        let mut meter = Meter::default();
        assert!(
            meter.sample(0.0).is_none(),
            "the first call only sets the baseline"
        );
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(200) {
            std::hint::black_box(0u64);
        }
        let s = meter.sample(1.0).unwrap();
        let own = &s.roles[RUN_PROCESS];
        assert!(own.cpu_cores > 0.2, "{own:?}");
        assert!(own.rss_bytes > 0 && s.memory_used_bytes > 0);
        assert!(s.machine_cpu_pct > 0.0 && s.machine_cpu_pct <= 100.0);
    }
}
