//! A merged run's shards in the "Generator health" section: one row per shard (its machine,
//! when its load started, its clock against the target's, its generator's verdict) and one
//! line per shard on the CPU, lag and memory charts, each shard judged against its own cores.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::charts::{Chart, Line};
use super::generator::assess_shard;
use super::html::{chart_grid, count, esc, ms, table};
use crate::result::{RunResult, ShardRun};

/// "12 ms ahead of", "1.7 s behind", "level with" (the target's clock minus ours).
pub fn offset_words(offset_ms: f64) -> String {
    let size = offset_ms.abs();
    let amount = if size >= 1000.0 {
        format!("{:.1} s", size / 1000.0)
    } else {
        format!("{size:.0} ms")
    };
    match offset_ms {
        o if o.abs() < 0.5 => "level with".to_string(),
        o if o > 0.0 => format!("{amount} behind"),
        _ => format!("{amount} ahead of"),
    }
}

pub fn section_body(r: &RunResult) -> String {
    let mut body = String::new();
    let on_server_clock = r.shards.iter().all(|s| s.clock.is_some());
    let _ = write!(
        body,
        "<p class=\"note\">{} shards on one timeline, aligned by {}.</p>",
        r.shards.len(),
        if on_server_clock {
            "the target's clock (each shard measured its own clock against the target's Date header)"
        } else {
            "each machine's own clock (not every shard measured its offset to the target's, so machines whose clocks disagree are that far apart here)"
        }
    );
    let rows: Vec<Vec<String>> = r.shards.iter().map(|s| row(r, s)).collect();
    body.push_str(&table(
        "nums",
        &[
            "shard",
            "machine",
            "devices at its peak",
            "load started",
            "clock vs target",
            "CPU peak",
            "worst loop lag",
            "memory peak",
            "generator",
        ],
        &rows,
    ));
    body.push_str(&chart_grid(&charts(r), r.duration_s));
    body
}

fn row(r: &RunResult, s: &ShardRun) -> Vec<String> {
    let health = assess_shard(r, s);
    let peak = |points: &[(f64, f64)]| points.iter().map(|p| p.1).fold(0.0, f64::max);
    let started = match s.late_start_s {
        Some(late) if late > 0.0 => {
            format!("+{:.1} s ({late:.1} s after --start-at)", s.start_offset_s)
        }
        _ => format!("+{:.1} s", s.start_offset_s),
    };
    let clock = match &s.clock {
        Some(c) => format!("{} (± {})", offset_words(c.offset_ms), ms(c.uncertainty_ms)),
        None => "not measured".to_string(),
    };
    let machine = if s.machine.source_addresses.is_empty() {
        format!("{}, {} cores", s.machine.hostname, s.machine.cores)
    } else {
        format!(
            "{}, {} cores, from {}",
            s.machine.hostname,
            s.machine.cores,
            s.machine
                .source_addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    vec![
        esc(&s.label),
        esc(&machine),
        count(s.peak_devices),
        started,
        esc(&clock),
        format!(
            "{:.0} % of {} %",
            peak(&health.cpu),
            s.machine.cores.max(1) * 100
        ),
        ms(peak(&health.lag)),
        format!("{:.0} MiB", peak(&health.rss_mib)),
        if health.warnings.is_empty() {
            "kept up".to_string()
        } else {
            // The reasons are the warnings above the table, each with this shard's label.
            "<span class=\"badge fail\">fell behind</span>".to_string()
        },
    ]
}

/// CPU, lag and memory with a line per shard; the CPU chart's limit is a shard machine's cores
/// when they all have the same count (the usual matrix of one runner size).
fn charts(r: &RunResult) -> Vec<Chart> {
    let mut cpu = Chart::new("Generator CPU per shard", "% of one core");
    let mut lag = Chart::new("Generator event-loop lag per shard (worst worker)", "ms");
    let mut rss = Chart::new("Generator memory per shard", "MiB");
    for s in &r.shards {
        let health = assess_shard(r, s);
        cpu = cpu.line(Line::new(s.label.clone(), health.cpu));
        lag = lag.line(Line::new(s.label.clone(), health.lag));
        rss = rss.line(Line::new(s.label.clone(), health.rss_mib));
    }
    let cores: BTreeSet<u32> = r.shards.iter().map(|s| s.machine.cores).collect();
    if let (1, Some(&c)) = (cores.len(), cores.first()) {
        cpu = cpu.limit(
            f64::from(c.max(1)) * 100.0,
            "all cores of one shard's machine",
        );
    }
    vec![cpu, lag, rss]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_read_as_words() {
        assert_eq!(offset_words(12.4), "12 ms behind");
        assert_eq!(offset_words(-1_730.0), "1.7 s ahead of");
        assert_eq!(offset_words(0.2), "level with");
    }
}
