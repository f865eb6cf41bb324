//! When each device starts: the open model's intended arrival times and the closed model's
//! device counts, as one lazy stream of activations.
//!
//! Pacing is a value separate from the device loop (conventions: "independent axes, one loop").
//! Open model: arrivals of app opens at a rate that ramps linearly inside a phase; arrival `j`
//! of a phase is intended at the `t` where the cumulative count `N(t) = r0·t + (r1−r0)·t²/(2T)`
//! reaches `j`. Latency is measured from that intended instant, so a slow generator or server
//! cannot hide queueing (coordinated omission corrected, as wrk2 does).
//! Closed model: a target count of concurrently active devices that ramps linearly; device `m`
//! comes up when the target first exceeds `m` and goes down when it falls to `m` or below.
//! Arrival `k` goes to device `order(k mod D)`, a fixed permutation, so a shard that owns a
//! slice of devices owns exactly the arrivals of those devices: shards partition the whole.

use std::time::Duration;

/// How load is offered during one phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// App opens per second, ramping linearly from `from` to `to` over the phase; `poisson`
    /// spaces them as a Poisson process (exponential gaps) instead of evenly.
    Open { from: f64, to: f64, poisson: bool },
    /// Concurrently active devices: from the previous phase's count to `to`, linearly over
    /// `ramp` (zero: at once, paced only by the connect semaphore).
    Closed { to: u64, ramp: Duration },
}

/// One phase as the scheduler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseShape {
    pub name: String,
    pub duration: Duration,
    pub load: Load,
}

/// What happens to one device at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Open model: the app is opened; `intended` is the latency origin.
    Open {
        device: u64,
        intended: Duration,
        phase: usize,
    },
    /// Closed model: the device comes online and stays until stopped.
    Start {
        device: u64,
        at: Duration,
        phase: usize,
    },
    /// Closed model: the device goes offline (the target count fell).
    Stop {
        device: u64,
        at: Duration,
        phase: usize,
    },
}

impl Activation {
    pub fn at(&self) -> Duration {
        match *self {
            Activation::Open { intended, .. } => intended,
            Activation::Start { at, .. } | Activation::Stop { at, .. } => at,
        }
    }

    pub fn device(&self) -> u64 {
        match *self {
            Activation::Open { device, .. }
            | Activation::Start { device, .. }
            | Activation::Stop { device, .. } => device,
        }
    }
}

/// Seconds after the phase start at which the cumulative count reaches `j` (arrival `j` when
/// evenly spaced; a Poisson arrival's level is a sum of exponential draws). `None` past the end.
pub fn arrival_offset(from: f64, to: f64, duration: Duration, j: f64) -> Option<f64> {
    let length = duration.as_secs_f64();
    if length <= 0.0 || j >= length * (from + to) / 2.0 {
        return None;
    }
    if j <= 0.0 {
        return Some(0.0);
    }
    let a = (to - from) / (2.0 * length);
    // Root of a·t² + from·t − j = 0 in the form that stays exact as a → 0 and for a < 0.
    let discriminant = (from * from + 4.0 * a * j).max(0.0);
    let denominator = from + discriminant.sqrt();
    if denominator <= 0.0 {
        return None;
    }
    Some((2.0 * j / denominator).min(length))
}

/// Arrivals a phase offers in total.
pub fn arrivals_in_phase(from: f64, to: f64, duration: Duration) -> u64 {
    let n = duration.as_secs_f64() * (from + to) / 2.0;
    if n <= 0.0 { 0 } else { n.ceil() as u64 }
}

/// The instant (seconds into the phase) a ramp from `from` to `to` crosses `level`.
fn crossing(from: u64, to: u64, duration: Duration, level: f64) -> f64 {
    let span = to as f64 - from as f64;
    if span == 0.0 || duration.is_zero() {
        return 0.0;
    }
    ((level - from as f64) / span * duration.as_secs_f64()).clamp(0.0, duration.as_secs_f64())
}

/// A fixed permutation of `0..devices`: consecutive arrivals land on unrelated users.
#[derive(Debug, Clone, Copy)]
pub struct DeviceOrder {
    devices: u64,
    stride: u64,
}

impl DeviceOrder {
    pub fn new(devices: u64, seed: u64) -> Self {
        let devices = devices.max(1);
        let mut stride = (devices / 2 + 1 + seed % devices.max(2)) % devices;
        while gcd(stride.max(1), devices) != 1 {
            stride += 1;
        }
        DeviceOrder {
            devices,
            stride: stride.max(1),
        }
    }

    /// Device of position `k` (positions repeat every `devices`).
    pub fn device(&self, k: u64) -> u64 {
        ((k % self.devices) as u128 * self.stride as u128 % self.devices as u128) as u64
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// All activations of the run in time order, for the devices `owns` accepts.
/// Lazy: a 100k-device run never holds its whole schedule in memory. `seed` fixes the Poisson
/// gaps, so every shard computes the same whole schedule and keeps its own part of it.
pub fn activations<'a>(
    phases: &'a [PhaseShape],
    order: DeviceOrder,
    seed: u64,
    owns: impl Fn(u64) -> bool + Copy + Send + 'a,
) -> impl Iterator<Item = Activation> + Send + 'a {
    let mut phase_start = Duration::ZERO;
    let mut next_arrival = 0u64;
    let mut active = 0u64;
    phases.iter().enumerate().flat_map(move |(index, phase)| {
        let start = phase_start;
        phase_start += phase.duration;
        let items: Box<dyn Iterator<Item = Activation> + Send> = match phase.load {
            Load::Open { from, to, poisson } => {
                let first = next_arrival;
                next_arrival += arrivals_in_phase(from, to, phase.duration);
                let levels = arrival_levels(poisson, seed ^ index as u64);
                Box::new(
                    levels
                        .enumerate()
                        .map_while(move |(j, level)| {
                            let offset = arrival_offset(from, to, phase.duration, level)?;
                            Some(Activation::Open {
                                device: order.device(first + j as u64),
                                intended: start + Duration::from_secs_f64(offset),
                                phase: index,
                            })
                        })
                        .filter(move |a| owns(a.device())),
                )
            }
            Load::Closed { to, ramp } => {
                let from = std::mem::replace(&mut active, to);
                let ramp = ramp.min(phase.duration);
                Box::new(
                    closed_phase(index, start, from, to, ramp, order)
                        .filter(move |a| owns(a.device())),
                )
            }
        };
        items
    })
}

/// Cumulative-count levels of successive arrivals: 0, 1, 2, … or a Poisson process's.
fn arrival_levels(poisson: bool, seed: u64) -> Box<dyn Iterator<Item = f64> + Send> {
    use rand::{Rng, SeedableRng};
    if !poisson {
        return Box::new((0u64..).map(|j| j as f64));
    }
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut level = 0.0f64;
    Box::new(std::iter::from_fn(move || {
        let uniform: f64 = rng.random_range(f64::EPSILON..1.0);
        level += -uniform.ln();
        Some(level)
    }))
}

/// Starts (ramping up) or stops (ramping down) of a closed phase going from `from` active
/// devices to `to` over `ramp`: device `m` crosses when the target passes level `m`.
fn closed_phase(
    phase: usize,
    start: Duration,
    from: u64,
    to: u64,
    ramp: Duration,
    order: DeviceOrder,
) -> Box<dyn Iterator<Item = Activation> + Send> {
    let at = move |m: u64| start + Duration::from_secs_f64(crossing(from, to, ramp, m as f64));
    if to >= from {
        Box::new((from..to).map(move |m| Activation::Start {
            device: order.device(m),
            at: at(m),
            phase,
        }))
    } else {
        Box::new((to..from).rev().map(move |m| Activation::Stop {
            device: order.device(m),
            at: at(m),
            phase,
        }))
    }
}

/// Total planned length of the phases.
pub fn total_duration(phases: &[PhaseShape]) -> Duration {
    phases.iter().map(|p| p.duration).sum()
}

/// Index of the phase running `elapsed` into the run (the last one once past the end).
pub fn phase_at(phases: &[PhaseShape], elapsed: Duration) -> usize {
    let mut end = Duration::ZERO;
    for (index, phase) in phases.iter().enumerate() {
        end += phase.duration;
        if elapsed < end {
            return index;
        }
    }
    phases.len().saturating_sub(1)
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
