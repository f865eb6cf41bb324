//! Runs `wrk` as a child process and reads its summary.

use std::process::Command;
use std::time::Duration;

use nix::sys::resource::UsageWho;

use super::cpu::rusage_cpu;

/// What one wrk run reported, plus the CPU it used (`RUSAGE_CHILDREN` delta).
#[derive(Debug, Clone, Default)]
pub struct WrkFigures {
    pub requests: u64,
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Non-2xx answers plus socket errors.
    pub errors: u64,
    pub cpu: Duration,
    pub command_line: String,
}

pub struct WrkRun<'a> {
    pub url: &'a str,
    pub threads: usize,
    pub connections: usize,
    pub seconds: u64,
    pub headers: &'a [String],
}

/// Runs wrk to completion; `Err` is one sentence (wrk missing, failed, or unreadable output).
pub fn run(run: &WrkRun<'_>) -> Result<WrkFigures, String> {
    let mut args = vec![
        "-t".to_owned(),
        run.threads.to_string(),
        "-c".to_owned(),
        run.connections.to_string(),
        "-d".to_owned(),
        format!("{}s", run.seconds),
        "--latency".to_owned(),
    ];
    for h in run.headers {
        args.push("-H".to_owned());
        args.push(h.clone());
    }
    args.push(run.url.to_owned());
    let cpu_before = rusage_cpu(UsageWho::RUSAGE_CHILDREN);
    let output = Command::new("wrk")
        .args(&args)
        .output()
        .map_err(|e| format!("cannot run wrk ({e}); install it (apt-get install wrk)"))?;
    let cpu = rusage_cpu(UsageWho::RUSAGE_CHILDREN).saturating_sub(cpu_before);
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let mut figures = parse(&text).ok_or_else(|| format!("cannot read wrk's summary:\n{text}"))?;
    figures.cpu = cpu;
    figures.command_line = format!("wrk {}", shell_words(&args));
    Ok(figures)
}

/// Reads `Requests/sec`, the request count, the 50 % and 99 % latencies of `--latency` and
/// the error lines from wrk's text summary.
pub fn parse(text: &str) -> Option<WrkFigures> {
    let mut f = WrkFigures::default();
    let (mut rate, mut p50, mut p99) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rate = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("50%") {
            p50 = latency_ms(v.trim());
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = latency_ms(v.trim());
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            f.errors += v.trim().parse::<u64>().ok()?;
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            f.errors += v
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        } else if line.contains(" requests in ") {
            f.requests = line.split_whitespace().next()?.parse().ok()?;
        }
    }
    f.requests_per_sec = rate?;
    f.p50_ms = p50?;
    f.p99_ms = p99?;
    Some(f)
}

/// wrk prints latencies as `512.00us`, `1.23ms`, `2.01s` or `1.00m`.
fn latency_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let factor = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1_000.0,
        "m" => 60_000.0,
        _ => return None,
    };
    Some(value * factor)
}

fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
