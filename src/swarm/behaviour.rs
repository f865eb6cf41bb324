//! What users do between app opens: sessions of a set length, edits at a Poisson rate while
//! the app is in front, backgrounding, and (closed model) reopening after a pause. Timed
//! user actions sit in one heap per worker — not a task or timer per device.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use syncstorm_scenario::{BackgroundSocket, Behaviour};
use tokio::time::Instant;

/// A timed user action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Due {
    Edit,
    SessionEnd,
    Reopen,
}

/// What the fleet should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Open(u64),
    Edit(u64),
    Background(u64),
}

#[derive(Debug, Default, Clone, Copy)]
struct Session {
    /// Bumped at every open and stop: older heap entries are stale.
    generation: u32,
    /// Closed model: the device cycles open → background → open until stopped.
    cycling: bool,
    ends: Option<Instant>,
}

/// The per-worker behaviour schedule.
pub struct Users {
    behaviour: Behaviour,
    rng: SmallRng,
    sessions: HashMap<u64, Session>,
    heap: BinaryHeap<Reverse<(Instant, u64, u32, Due)>>,
}

impl Users {
    pub fn new(behaviour: Behaviour, seed: u64) -> Users {
        Users {
            behaviour,
            rng: SmallRng::seed_from_u64(seed),
            sessions: HashMap::new(),
            heap: BinaryHeap::new(),
        }
    }

    /// When the next timed action is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, ..))| *at)
    }

    /// An open-model arrival (`cycling = false`) or a closed-model start (`true`).
    pub fn open(&mut self, device: u64, now: Instant, cycling: bool) -> Act {
        let session = self.sessions.entry(device).or_default();
        session.generation = session.generation.wrapping_add(1);
        session.cycling |= cycling;
        let ends = now + self.behaviour.session_length;
        session.ends = Some(ends);
        let generation = session.generation;
        self.heap
            .push(Reverse((ends, device, generation, Due::SessionEnd)));
        if let Some(gap) = self.edit_gap() {
            self.heap
                .push(Reverse((now + gap, device, generation, Due::Edit)));
        }
        Act::Open(device)
    }

    /// A closed-model stop: the device backgrounds and stays there.
    pub fn stop(&mut self, device: u64) -> Act {
        let session = self.sessions.entry(device).or_default();
        session.generation = session.generation.wrapping_add(1);
        session.cycling = false;
        session.ends = None;
        Act::Background(device)
    }

    /// Pops every action due by `now`.
    pub fn due(&mut self, now: Instant) -> Vec<Act> {
        let mut acts = Vec::new();
        while let Some(Reverse((at, device, generation, due))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            let Some(session) = self.sessions.get(&device).copied() else {
                continue;
            };
            if session.generation != generation {
                continue;
            }
            if let Some(act) = self.fire(device, session, due, at) {
                acts.push(act);
            }
        }
        acts
    }

    fn fire(&mut self, device: u64, session: Session, due: Due, at: Instant) -> Option<Act> {
        match due {
            Due::Edit => {
                let ends = session.ends?;
                if let Some(gap) = self.edit_gap().filter(|g| at + *g < ends) {
                    self.heap
                        .push(Reverse((at + gap, device, session.generation, Due::Edit)));
                }
                (at < ends).then_some(Act::Edit(device))
            }
            Due::SessionEnd => {
                if session.cycling {
                    let again = at + self.behaviour.background_pause;
                    self.heap
                        .push(Reverse((again, device, session.generation, Due::Reopen)));
                }
                self.sessions.get_mut(&device)?.ends = None;
                (self.behaviour.background_socket == BackgroundSocket::Close)
                    .then_some(Act::Background(device))
            }
            Due::Reopen => session.cycling.then(|| self.open(device, at, true)),
        }
    }

    /// Exponential gap to the next edit; `None` when users do not edit.
    fn edit_gap(&mut self) -> Option<Duration> {
        let per_second = self.behaviour.edits_per_hour / 3600.0;
        if per_second <= 0.0 {
            return None;
        }
        let uniform: f64 = self.rng.random_range(f64::EPSILON..1.0);
        Some(Duration::from_secs_f64(-uniform.ln() / per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn behaviour(edits_per_hour: f64) -> Behaviour {
        Behaviour {
            edits_per_hour,
            update_share: 0.3,
            session_length: Duration::from_secs(10),
            background_pause: Duration::from_secs(5),
            background_socket: BackgroundSocket::Close,
            bulk_import: None,
            snoop_fraction: 0.0,
        }
    }

    fn run_until(users: &mut Users, start: Instant, end: Instant) -> Vec<(Duration, Act)> {
        let mut out = Vec::new();
        while let Some(at) = users.next_due().filter(|at| *at <= end) {
            out.extend(users.due(at).into_iter().map(|a| (at - start, a)));
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn closed_devices_cycle_open_background_reopen_until_stopped() {
        let t0 = Instant::now();
        let mut users = Users::new(behaviour(0.0), 1);
        assert_eq!(users.open(7, t0, true), Act::Open(7));
        let acts = run_until(&mut users, t0, t0 + Duration::from_secs(31));
        let s = Duration::from_secs;
        assert_eq!(
            acts,
            vec![
                (s(10), Act::Background(7)),
                (s(15), Act::Open(7)),
                (s(25), Act::Background(7)),
                (s(30), Act::Open(7)),
            ]
        );
        assert_eq!(users.stop(7), Act::Background(7));
        assert!(run_until(&mut users, t0, t0 + Duration::from_secs(120)).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn open_arrivals_do_not_reopen_and_edits_stay_inside_the_session() {
        let t0 = Instant::now();
        let mut users = Users::new(behaviour(3_600.0 * 2.0), 3);
        users.open(1, t0, false);
        let acts = run_until(&mut users, t0, t0 + Duration::from_secs(60));
        let edits: Vec<_> = acts.iter().filter(|(_, a)| *a == Act::Edit(1)).collect();
        // Two edits per second for ten seconds: 20 expected, σ ≈ 4.5.
        assert!((5..=40).contains(&edits.len()), "{}", edits.len());
        assert!(edits.iter().all(|(at, _)| *at < Duration::from_secs(10)));
        assert_eq!(acts.last().unwrap().1, Act::Background(1));
    }
}
