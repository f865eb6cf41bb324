//! The capacity model at scale: `benches/model_scale/hour.toml` (1,000,000 devices, one
//! simulated hour, a server sized to keep up) through `syncstorm model`'s simulation. Prints events, events/s, wall time
//! and peak resident memory; asserts nothing. The goal (#12): ≤ 60 s wall, ≤ 4 GB.
//!
//! `cargo bench --bench model_scale` (users: `SYNCSTORM_BENCH_USERS`, default 500000).

use std::path::Path;
use std::time::Instant;

use syncstorm::model::{Calibration, ModelOptions, simulate};

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let users = std::env::var("SYNCSTORM_BENCH_USERS").unwrap_or_else(|_| "500000".into());
    let scenario = root.join("benches/model_scale/hour.toml");
    let plan =
        syncstorm_scenario::load_with(&scenario, &[format!("population.users={users}")], &[])
            .expect("the benchmark's scenario is valid");
    let cal = Calibration::load(&root.join(syncstorm::model::DEFAULT_CALIBRATION))
        .expect("the shipped calibration loads");
    let options = ModelOptions {
        rtt_ms: 0.0,
        capacity: Some(32.0),
    };
    let started = Instant::now();
    let r = simulate(&plan, &cal, &options).expect("the model runs");
    let wall = started.elapsed().as_secs_f64();
    let model = r.target.model.as_ref().expect("a modelled result");
    println!(
        "model_scale: {} devices, {:.0} simulated s",
        plan.total_devices(),
        r.duration_s
    );
    println!(
        "  events {}  wall {:.1} s  {:.2} M events/s  peak RSS {:.0} MiB",
        model.events,
        wall,
        model.events as f64 / wall / 1e6,
        peak_rss_mib()
    );
    for (name, o) in &r.operations {
        println!(
            "  {name:<14} {:>10} done {:>10} failed  p99 {:>9.1} ms",
            o.count, o.errors, o.p99_ms
        );
    }
}
