//! CPU accounting per thread and per child process, so the generator's CPU can be told apart
//! from the in-process server's and from wrk's.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::resource::{Usage, UsageWho, getrusage};

/// The kernel thread ids of one runtime (its worker, blocking-pool and driving threads).
#[derive(Debug, Clone, Default)]
pub struct ThreadSet(Arc<Mutex<Vec<i32>>>);

impl ThreadSet {
    /// Adds the calling thread (call it from the thread itself, e.g. in `on_thread_start`).
    pub fn register_current(&self) {
        let tid = nix::unistd::gettid().as_raw();
        self.0.lock().expect("thread set lock").push(tid);
    }

    /// CPU time (user + system) used so far by the threads still alive. A thread that has
    /// exited is no longer counted, so deltas are taken while the runtime is still up.
    pub fn cpu(&self) -> Duration {
        let tids = self.0.lock().expect("thread set lock").clone();
        tids.into_iter().filter_map(thread_cpu).sum()
    }
}

/// One thread's CPU time: `/proc/self/task/<tid>/schedstat` (nanoseconds) when the kernel
/// fills it, else `utime + stime` from `/proc/self/task/<tid>/stat` (clock ticks, 10 ms).
pub fn thread_cpu(tid: i32) -> Option<Duration> {
    let schedstat = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok();
    if let Some(ns) = schedstat
        .as_deref()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ns| *ns > 0)
    {
        return Some(Duration::from_nanos(ns));
    }
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // Fields after the parenthesised command name start at field 3 (state); utime is 14.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// Clock ticks per second of `/proc` times: 100 on every Linux architecture we run on.
const USER_HZ: u64 = 100;

/// User + system CPU of this process (`who = SELF`) or of its waited-for children.
pub fn rusage_cpu(who: UsageWho) -> Duration {
    getrusage(who).map(|u| usage_cpu(&u)).unwrap_or_default()
}

fn usage_cpu(u: &Usage) -> Duration {
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    tv(u.user_time()) + tv(u.system_time())
}
