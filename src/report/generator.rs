//! Was the generator itself the bottleneck? A slow generator must never pass for a slow server.

use std::collections::BTreeMap;

use syncstorm_metrics::counter;

use super::html::{count, ms};
use crate::result::{GeneratorSample, RunResult, ShardRun};

/// Share of all cores above which the generator is taken to be saturated.
const CPU_SATURATED: f64 = 0.90;
/// Event-loop lag above which scheduled work started late enough to distort latencies.
const LAG_MS: f64 = 100.0;

pub struct Health {
    pub cpu: Vec<(f64, f64)>,
    pub lag: Vec<(f64, f64)>,
    pub rss_mib: Vec<(f64, f64)>,
    /// Empty when the generator kept up.
    pub warnings: Vec<String>,
    pub verdict: String,
}

/// The generator's health: of the one machine, or of each shard's on a merged run (each shard
/// against its own machine's cores; summing machines would hide a saturated one).
pub fn assess(r: &RunResult) -> Health {
    let late = r.counters.get(counter::ARRIVALS_LATE).copied().unwrap_or(0);
    let late = (late > 0).then(|| {
        format!(
            "{} app opens started late because the generator fell behind its schedule.",
            count(late)
        )
    });
    if r.shards.is_empty() {
        let mut health = assess_samples(r.generator.iter(), r.machine.cores);
        health.warnings.extend(late);
        return health;
    }
    let mut whole = assess_samples(r.generator.iter(), r.machine.cores);
    whole.warnings = late.into_iter().collect();
    let mut kept_up = Vec::new();
    for shard in &r.shards {
        let health = assess_shard(r, shard);
        if health.warnings.is_empty() {
            kept_up.push(shard.label.clone());
        }
        for w in health.warnings {
            whole.warnings.push(format!("{}: {w}", shard.label));
        }
    }
    whole.verdict = format!(
        "Every shard's generator kept up ({}), each judged against its own machine.",
        kept_up.join(", ")
    );
    whole
}

/// One shard of a merged run, from its samples (their `worker` starts with its label).
pub fn assess_shard(r: &RunResult, shard: &ShardRun) -> Health {
    let prefix = format!("{} ", shard.label);
    assess_samples(
        r.generator.iter().filter(|s| s.worker.starts_with(&prefix)),
        shard.machine.cores,
    )
}

fn assess_samples<'a>(samples: impl Iterator<Item = &'a GeneratorSample>, cores: u32) -> Health {
    let mut per_second: BTreeMap<u64, (f64, f64, u64)> = BTreeMap::new();
    for s in samples {
        let e = per_second.entry(s.t).or_default();
        e.0 += s.cpu_pct;
        e.1 = e.1.max(s.loop_lag_ms);
        e.2 += s.rss_bytes;
    }
    let cpu: Vec<(f64, f64)> = per_second.iter().map(|(t, v)| (*t as f64, v.0)).collect();
    let lag: Vec<(f64, f64)> = per_second.iter().map(|(t, v)| (*t as f64, v.1)).collect();
    let rss_mib = per_second
        .iter()
        .map(|(t, v)| (*t as f64, v.2 as f64 / 1_048_576.0))
        .collect();
    let capacity = f64::from(cores.max(1)) * 100.0;
    let saturated = cpu
        .iter()
        .filter(|(_, c)| *c >= CPU_SATURATED * capacity)
        .count();
    let lagging = lag.iter().filter(|(_, l)| *l >= LAG_MS).count();
    let peak_cpu = cpu.iter().map(|c| c.1).fold(0.0, f64::max);
    let peak_lag = lag.iter().map(|c| c.1).fold(0.0, f64::max);

    let mut warnings = Vec::new();
    if saturated > 0 {
        warnings.push(format!(
            "The generator used at least {:.0} % of the machine's {cores} cores for {saturated} s: latencies in those seconds include the generator's own queueing.",
            CPU_SATURATED * 100.0,
        ));
    }
    if lagging > 0 {
        warnings.push(format!(
            "The generator's event loop lagged by {} or more for {lagging} s (worst {}): work started late and the figures of those seconds overstate the server's latency.",
            ms(LAG_MS),
            ms(peak_lag)
        ));
    }
    let verdict = format!(
        "The generator kept up: CPU peaked at {peak_cpu:.0} % of one core (of {:.0} % available) and event-loop lag at {}.",
        capacity,
        ms(peak_lag)
    );
    Health {
        cpu,
        lag,
        rss_mib,
        warnings,
        verdict,
    }
}

/// True when any warning applies (for the banner and the console).
pub fn was_bottleneck(r: &RunResult) -> bool {
    !assess(r).warnings.is_empty()
}
