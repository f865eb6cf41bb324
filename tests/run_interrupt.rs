//! Ctrl-C in setup, in the load or in the quiet sync stops the run within 5 s, still writes
//! the report of what ran (status `interrupted`), and leaves no process behind: not the
//! stack's PostgreSQL, not a stack or swarm worker.

mod run_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use run_support::{only_result, small_scenario, syncstorm};

/// How long a stopped run may take to exit.
const STOP_WITHIN: Duration = Duration::from_secs(5);
/// Deadline for the run to reach the phase a test interrupts (a failure, not a measurement).
const REACH_WITHIN: Duration = Duration::from_secs(120);
/// Every process the run starts inherits this variable; its value names the test's run.
const MARK: &str = "SYNCSTORM_INTERRUPT_TEST";

struct Stopped {
    status: ExitStatus,
    stopped_in: Duration,
    stderr: Vec<String>,
    mark: String,
}

/// Runs `scenario` with `extra` flags, sends SIGINT as soon as a stderr line satisfies
/// `reached`, and waits (at most `STOP_WITHIN`, then fails) for the process to exit.
fn interrupt_when(
    scenario: &Path,
    out: &Path,
    extra: &[&str],
    reached: impl Fn(&str) -> bool,
) -> Stopped {
    signal_when(scenario, out, extra, reached, &[Signal::SIGINT])
}

/// As `interrupt_when`, sending `signals` one after the other.
fn signal_when(
    scenario: &Path,
    out: &Path,
    extra: &[&str],
    reached: impl Fn(&str) -> bool,
    signals: &[Signal],
) -> Stopped {
    let mark = format!("{}-{:?}", std::process::id(), Instant::now());
    let mut child = syncstorm()
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .args(extra)
        .env(MARK, &mark)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (line_tx, line_rx) = mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let began = Instant::now();
    loop {
        let left = REACH_WITHIN.saturating_sub(began.elapsed());
        match line_rx.recv_timeout(left) {
            Ok(line) => {
                let hit = reached(&line);
                seen.push(line);
                if hit {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("the run did not reach the phase: {seen:#?}");
            }
        }
    }
    for signal in signals {
        nix::sys::signal::kill(pid, *signal).unwrap();
    }
    let signalled = Instant::now();
    let (exit_tx, exit_rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = child.wait();
        let _ = exit_tx.send(());
        status
    });
    if exit_rx.recv_timeout(STOP_WITHIN).is_err() {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        panic!("the run did not stop within {STOP_WITHIN:?} of SIGINT: {seen:#?}");
    }
    let stopped_in = signalled.elapsed();
    let status = waiter.join().unwrap().unwrap();
    seen.extend(line_rx.try_iter());
    Stopped {
        status,
        stopped_in,
        stderr: seen,
        mark,
    }
}

/// Processes still running that the run started (they carry its mark in their environment).
fn left_behind(mark: &str) -> Vec<String> {
    let needle = format!("{MARK}={mark}");
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|b| *b == 0)
            .any(|var| var == needle.as_bytes())
        {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            left.push(format!("{name}: {}", String::from_utf8_lossy(&cmdline)));
        }
    }
    left
}

fn assert_stopped_cleanly(stopped: &Stopped, out: &Path) -> serde_json::Value {
    assert_eq!(stopped.status.code(), Some(1), "{:#?}", stopped.stderr);
    assert!(stopped.stopped_in < STOP_WITHIN, "{:?}", stopped.stopped_in);
    let left = left_behind(&stopped.mark);
    assert!(left.is_empty(), "processes left behind: {left:#?}");
    let r = only_result(out);
    assert_eq!(r["status"]["outcome"], "interrupted", "{}", r["status"]);
    r
}

#[test]
fn sigint_during_setup_stops_within_5s_with_an_interrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 3_000, 600);
    let out = dir.path().join("out");
    let stopped = interrupt_when(
        &scenario,
        &out,
        &["--set", "population.rows.transactions=100"],
        |line| line.starts_with("seeding "),
    );
    let r = assert_stopped_cleanly(&stopped, &out);
    assert!(
        r["counters"]["app_opens"].as_u64().unwrap_or(0) == 0,
        "the load never started: {}",
        r["counters"]
    );
    assert_eq!(r["setup"]["users"], 3_000, "{}", r["setup"]);
}

#[test]
fn sigterm_then_sigint_during_setup_stops_at_once_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 3_000, 600);
    let out = dir.path().join("out");
    let stopped = signal_when(
        &scenario,
        &out,
        &["--set", "population.rows.transactions=100"],
        |line| line.starts_with("seeding "),
        &[Signal::SIGTERM, Signal::SIGINT],
    );
    assert_eq!(stopped.status.code(), Some(1), "{:#?}", stopped.stderr);
    assert!(stopped.stopped_in < STOP_WITHIN, "{:?}", stopped.stopped_in);
    let left = left_behind(&stopped.mark);
    assert!(left.is_empty(), "processes left behind: {left:#?}");
}

#[test]
fn sigint_mid_run_writes_an_interrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 6, 600);
    let out = dir.path().join("out");
    // The first progress line: the load is running.
    let stopped = interrupt_when(&scenario, &out, &[], |line| line.starts_with("[ramp "));
    let r = assert_stopped_cleanly(&stopped, &out);
    assert!(
        r["counters"]["app_opens"].as_u64().unwrap() > 0,
        "what ran is kept"
    );
    assert!(r["duration_s"].as_f64().unwrap() < 600.0);
}

#[test]
fn sigint_during_the_quiet_sync_stops_within_5s() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 1_500, 2);
    let out = dir.path().join("out");
    let stopped = interrupt_when(
        &scenario,
        &out,
        &["--set", "device.pulse.mode=off", "--set", "run.quiesce=10m"],
        |line| line.starts_with("quiet sync:"),
    );
    let r = assert_stopped_cleanly(&stopped, &out);
    assert!(
        r["counters"]["app_opens"].as_u64().unwrap() > 0,
        "the load ran"
    );
    assert!(
        r["oracle"].is_null(),
        "no oracle after a stopped quiet sync"
    );
}
