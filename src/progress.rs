//! Progress while a run is under way: a live view in a terminal (redrawn in place each
//! second), a plain line every few seconds otherwise (CI logs). Written to stderr so stdout
//! keeps only the summary.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use syncstorm_metrics::{SeriesPoint, gauge};
use syncstorm_scenario::{Load, Phase};

/// How often the plain (non-TTY) line is printed.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// What one progress frame shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    pub phase: String,
    pub elapsed: Duration,
    pub total: Duration,
    pub devices: i64,
    pub sockets: i64,
    pub requests_per_s: u64,
    pub errors_per_s: u64,
    pub errors_total: u64,
    /// p99 of whole syncs in the last second (else the slowest operation's p99), ms.
    pub p99_ms: Option<f64>,
    /// Highest generator CPU % in the last second (200 % = two cores).
    pub generator_cpu: f64,
}

impl Frame {
    /// Fills the per-second figures from the merged second.
    pub fn from_point(point: &SeriesPoint, errors_total: u64) -> Frame {
        let p99 = point
            .ops
            .get(syncstorm_metrics::op::SYNC)
            .map(|o| o.p99_ms)
            .or_else(|| point.ops.values().map(|o| o.p99_ms).reduce(f64::max));
        Frame {
            devices: point.gauge(gauge::DEVICES_ACTIVE),
            sockets: point.gauge(gauge::SOCKETS_OPEN),
            requests_per_s: point.throughput(),
            errors_per_s: point.errors(),
            errors_total,
            p99_ms: p99,
            ..Frame::default()
        }
    }

    /// One line, the same in both modes. Past the load (quiet sync, oracle) the clock reads
    /// "load done at 120s, +226s" rather than a run time beyond its own total.
    pub fn line(&self) -> String {
        let clock = if self.elapsed > self.total {
            format!(
                "load done at {}s, +{}s",
                self.total.as_secs(),
                (self.elapsed - self.total).as_secs()
            )
        } else {
            format!(
                "run {}s/{}s  {}s left",
                self.elapsed.as_secs(),
                self.total.as_secs(),
                (self.total - self.elapsed).as_secs()
            )
        };
        let p99 = self
            .p99_ms
            .map_or_else(|| "-".to_string(), |ms| format!("{ms:.0} ms"));
        format!(
            "[{phase}] {clock}  devices {devices}  sockets {sockets}  {rps} req/s  \
             errors {eps}/s ({errors} total)  p99 {p99}  gen cpu {cpu:.0}%",
            phase = self.phase,
            devices = self.devices,
            sockets = self.sockets,
            rps = self.requests_per_s,
            eps = self.errors_per_s,
            errors = self.errors_total,
            cpu = self.generator_cpu,
        )
    }
}

/// The label of second `elapsed`: the phase the schedule is in, with its own elapsed and total
/// and what it drives toward (`drain 31s/60s → 120 opens/s`); past the load, the stage the
/// workers report (`quiesce`, `oracle`). The schedule, not a worker's last report, says
/// where the run is, so the label is right at the moment it is read.
pub fn phase_label(phases: &[Phase], elapsed: Duration, reported: &str) -> String {
    let Some(phase) = phases
        .iter()
        .find(|p| elapsed >= p.start && elapsed < p.start + p.duration)
    else {
        return reported.to_string();
    };
    let into = elapsed - phase.start;
    let target = match phase.load {
        Load::Open { to_rate, .. } => format!("{to_rate:.0} opens/s"),
        Load::Closed { to, .. } => format!("{to} devices"),
    };
    format!(
        "{} {}s/{}s → {target}",
        phase.name,
        into.as_secs(),
        phase.duration.as_secs()
    )
}

/// Prints frames: in place on a terminal, every `PLAIN_EVERY` otherwise.
pub struct Progress {
    live: bool,
    last_plain: Option<Duration>,
    drew: bool,
}

impl Progress {
    /// Live view when stderr is a terminal.
    pub fn detect() -> Progress {
        Progress::new(std::io::stderr().is_terminal())
    }

    pub fn new(live: bool) -> Progress {
        Progress {
            live,
            last_plain: None,
            drew: false,
        }
    }

    /// The text to print for `frame` now, if any (separated from IO for tests).
    pub fn render(&mut self, frame: &Frame) -> Option<String> {
        if self.live {
            self.drew = true;
            return Some(format!("\r\x1b[2K{}", frame.line()));
        }
        let due = self
            .last_plain
            .is_none_or(|last| frame.elapsed >= last + PLAIN_EVERY);
        if !due {
            return None;
        }
        self.last_plain = Some(frame.elapsed);
        Some(format!("{}\n", frame.line()))
    }

    pub fn show(&mut self, frame: &Frame) {
        if let Some(text) = self.render(frame) {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        }
    }

    /// A one-off message (stage changes: "seeding", "quiescing"), kept clear of the live line.
    pub fn note(&mut self, message: &str) {
        let mut err = std::io::stderr().lock();
        if self.live && self.drew {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(err, "{message}");
        let _ = err.flush();
    }

    /// Ends the live line so later output starts on a fresh line.
    pub fn finish(&mut self) {
        if self.live && self.drew {
            let _ = writeln!(std::io::stderr());
            self.drew = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(elapsed: u64) -> Frame {
        Frame {
            phase: "steady".into(),
            elapsed: Duration::from_secs(elapsed),
            total: Duration::from_secs(60),
            devices: 900,
            sockets: 880,
            requests_per_s: 1234,
            errors_per_s: 2,
            errors_total: 17,
            p99_ms: Some(87.4),
            generator_cpu: 55.0,
        }
    }

    #[test]
    fn line_shows_every_figure() {
        let line = frame(20).line();
        for part in [
            "[steady]",
            "run 20s/60s",
            "devices 900",
            "1234 req/s",
            "errors 2/s (17 total)",
            "p99 87 ms",
            "40s left",
        ] {
            assert!(line.contains(part), "{part} missing from {line}");
        }
    }

    #[test]
    fn past_the_load_the_clock_counts_from_its_end() {
        let mut quiet = frame(346);
        quiet.phase = "quiesce".into();
        let line = quiet.line();
        assert!(
            line.starts_with("[quiesce] load done at 60s, +286s  "),
            "{line}"
        );
        assert!(!line.contains("left"), "{line}");
        assert!(!line.contains("run 346s"), "{line}");
    }

    fn phase(name: &str, start: u64, duration: u64, load: Load) -> Phase {
        Phase {
            name: name.into(),
            start: Duration::from_secs(start),
            duration: Duration::from_secs(duration),
            load,
        }
    }

    #[test]
    fn the_label_follows_the_schedule_not_the_last_report() {
        let phases = [
            phase(
                "ramp",
                0,
                30,
                Load::Closed {
                    from: 0,
                    to: 900,
                    ramp: Duration::from_secs(20),
                },
            ),
            phase(
                "storm",
                30,
                60,
                Load::Open {
                    from_rate: 0.0,
                    to_rate: 1500.0,
                    arrivals: syncstorm_scenario::Arrivals::Poisson,
                },
            ),
            phase(
                "drain",
                90,
                30,
                Load::Closed {
                    from: 900,
                    to: 0,
                    ramp: Duration::from_secs(5),
                },
            ),
        ];
        let at = |s| phase_label(&phases, Duration::from_secs(s), "storm");
        assert_eq!(at(10), "ramp 10s/30s → 900 devices");
        assert_eq!(at(45), "storm 15s/60s → 1500 opens/s");
        assert_eq!(
            at(91),
            "drain 1s/30s → 0 devices",
            "a worker still saying storm"
        );
        assert_eq!(
            phase_label(&phases, Duration::from_secs(130), "quiesce"),
            "quiesce"
        );
    }

    #[test]
    fn plain_mode_prints_every_five_seconds() {
        let mut p = Progress::new(false);
        let printed: Vec<u64> = (0..=12)
            .filter(|s| p.render(&frame(*s)).is_some())
            .collect();
        assert_eq!(printed, vec![0, 5, 10]);
    }

    #[test]
    fn live_mode_redraws_in_place_each_frame() {
        let mut p = Progress::new(true);
        let text = p.render(&frame(1)).unwrap();
        assert!(text.starts_with("\r\x1b[2K") && !text.ends_with('\n'));
        assert!(p.render(&frame(2)).is_some());
    }
}
