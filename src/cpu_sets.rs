//! Keeping the server and the generator apart on one machine: with the embedded target, the
//! run process (the coordinator and the stack's first process) and everything it starts for
//! the server — the stack's other processes, PostgreSQL — run on one set of cores, and the
//! harness workers on the others (`sched_setaffinity`). Then a saturated generator cannot
//! slow the server, and the server's latency is not the generator's queueing. The coordinator
//! shares the server's cores; it only merges one snapshot per worker per second.

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// Which cores each side had, as recorded in the result's `machine`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuSets {
    /// Cores of the run process, the stack and PostgreSQL.
    pub server: Vec<usize>,
    /// Cores of the harness workers.
    pub generator: Vec<usize>,
}

impl CpuSets {
    /// Splits `cores` (those this process may use) in two: the generator gets the first half
    /// rounded down, the server the rest. `None` with fewer than two cores.
    pub fn split(cores: &[usize]) -> Option<CpuSets> {
        if cores.len() < 2 {
            return None;
        }
        let (generator, server) = cores.split_at(cores.len() / 2);
        Some(CpuSets {
            server: server.to_vec(),
            generator: generator.to_vec(),
        })
    }

    /// "1", "0-3" or "0,2-3": the kernel's list format (`Cpus_allowed_list`).
    pub fn describe(cpus: &[usize]) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut i = 0;
        while i < cpus.len() {
            let start = cpus[i];
            while i + 1 < cpus.len() && cpus[i + 1] == cpus[i] + 1 {
                i += 1;
            }
            parts.push(match cpus[i] {
                end if end == start => start.to_string(),
                end => format!("{start}-{end}"),
            });
            i += 1;
        }
        parts.join(",")
    }
}

/// The cores this process may run on.
pub fn allowed_cores() -> Vec<usize> {
    let Ok(set) = sched_getaffinity(Pid::from_raw(0)) else {
        return Vec::new();
    };
    (0..CpuSet::count())
        .filter(|&i| set.is_set(i).unwrap_or(false))
        .collect()
}

fn cpu_set(cpus: &[usize]) -> nix::Result<CpuSet> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu)?;
    }
    Ok(set)
}

/// Pins every thread of this process to `cpus`; threads and processes started later inherit it.
pub fn pin_this_process(cpus: &[usize]) -> std::io::Result<()> {
    let set = cpu_set(cpus).map_err(std::io::Error::from)?;
    for task in std::fs::read_dir("/proc/self/task")?.flatten() {
        if let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<i32>().ok())
        {
            // A thread that ended meanwhile is no error.
            let _ = sched_setaffinity(Pid::from_raw(tid), &set);
        }
    }
    Ok(())
}

/// Makes `cmd`'s process start on `cpus` (set between fork and exec).
pub fn pin_command(cmd: &mut tokio::process::Command, cpus: &[usize]) {
    let Ok(set) = cpu_set(cpus) else { return };
    // SAFETY: sched_setaffinity is async-signal-safe; nothing is allocated in the child.
    unsafe {
        cmd.pre_exec(move || {
            sched_setaffinity(Pid::from_raw(0), &set).map_err(std::io::Error::from)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cores_give_one_to_each_side_and_one_core_gives_no_split() {
        let sets = CpuSets::split(&[0, 1]).unwrap();
        assert_eq!((sets.generator, sets.server), (vec![0], vec![1]));
        let sets = CpuSets::split(&[0, 1, 2, 3, 4]).unwrap();
        assert_eq!((sets.generator, sets.server), (vec![0, 1], vec![2, 3, 4]));
        assert_eq!(CpuSets::split(&[3]), None);
        assert_eq!(CpuSets::describe(&[0, 2, 3, 4]), "0,2-4");
    }

    #[test]
    fn a_pinned_child_reports_its_cores() {
        let cores = allowed_cores();
        let Some(sets) = CpuSets::split(&cores) else {
            eprintln!("SKIPPED: one core only, nothing to split");
            return;
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = runtime.block_on(async {
            let mut cmd = tokio::process::Command::new("grep");
            cmd.args(["Cpus_allowed_list", "/proc/self/status"]);
            pin_command(&mut cmd, &sets.generator);
            cmd.output().await.unwrap()
        });
        let text = String::from_utf8_lossy(&out.stdout);
        let want = CpuSets::describe(&sets.generator);
        assert!(text.trim().ends_with(&want), "{text} vs {want}");
    }
}
