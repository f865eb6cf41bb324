//! Cluster boot time with and without the cached initdb template.
//!
//! `cargo bench -p syncstorm-stack --bench launcher` runs itself twice as a child process
//! (fresh process, like a test runner's one process per test): once with the template cache
//! and once with `SYNCSTORM_PG_NO_TEMPLATE` set, and prints the boot times of each.

use std::process::Command;
use std::time::{Duration, Instant};

use syncstorm_stack::postgres::{Cluster, ClusterOptions, NO_TEMPLATE_ENV};

const CHILD_ENV: &str = "SYNCSTORM_LAUNCHER_BENCH_CHILD";
const BOOTS: usize = 5;

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        boot_and_report();
        return;
    }
    let exe = std::env::current_exe().expect("own executable");
    for (label, no_template) in [("initdb every boot", true), ("from template", false)] {
        let mut cmd = Command::new(&exe);
        cmd.env(CHILD_ENV, "1");
        if no_template {
            cmd.env(NO_TEMPLATE_ENV, "1");
        } else {
            cmd.env_remove(NO_TEMPLATE_ENV);
        }
        let out = cmd.output().expect("run the bench child");
        print!("{label:>18}: {}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// Boots and stops `BOOTS` clusters one after another; prints min / median / max boot time
/// (wall clock, which a busy machine inflates) and the median CPU time spent preparing the data
/// directory (this process plus the `initdb` it waited for; the server's own start-up CPU is
/// not included, being the same either way).
fn boot_and_report() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (mut wall, mut cpu): (Vec<Duration>, Vec<Duration>) = runtime.block_on(async {
        let (mut wall, mut cpu) = (Vec::new(), Vec::new());
        for _ in 0..BOOTS {
            let (started, cpu_before) = (Instant::now(), cpu_time());
            let cluster = Cluster::start(ClusterOptions::default())
                .await
                .expect("boot");
            wall.push(started.elapsed());
            cpu.push(cpu_time() - cpu_before);
            cluster.stop().await.expect("stop");
        }
        (wall, cpu)
    });
    wall.sort();
    cpu.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "boot min {:.0} ms, median {:.0} ms, max {:.0} ms; CPU median {:.0} ms; {BOOTS} boots",
        ms(wall[0]),
        ms(wall[BOOTS / 2]),
        ms(wall[BOOTS - 1]),
        ms(cpu[BOOTS / 2]),
    );
}

/// User + system CPU of this process and its reaped children.
fn cpu_time() -> Duration {
    let of = |who| {
        // SAFETY: getrusage fills the zeroed struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut usage) };
        let tv = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        tv(usage.ru_utime) + tv(usage.ru_stime)
    };
    of(libc::RUSAGE_SELF) + of(libc::RUSAGE_CHILDREN)
}
