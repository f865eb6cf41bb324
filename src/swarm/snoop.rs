//! RLS under load: which devices snoop (`behaviour.snoop_fraction`, drawn per device from the
//! run's seed) and whom each goes after — the next user of the same worker, with one of that
//! user's seeded wallets (the same draws as setup's SQL seed, so the id is one the server
//! holds). A worker with a single user has no one to snoop on.

use syncstorm_device::{Event, Table, Victim};
use syncstorm_scenario::Population;

use super::faults;
use super::fleet::Fleet;
use super::task::WorkerTask;
use crate::population;

const SALT_SNOOP: u64 = 0x5A00;

/// Sends [`Event::Snoop`] to this worker's snooping devices (opening the app first).
pub fn start_snoops(
    fleet: &mut Fleet,
    task: &WorkerTask,
    population: &Population,
    seed: u64,
    fraction: f64,
) {
    for (device, victim) in victims(task, population, seed, fraction) {
        if !fleet.is_running(device) {
            fleet.open(device);
        }
        fleet.send(device, Event::Snoop(victim));
    }
}

/// The snooping devices of the worker's users and their victims.
pub fn victims(
    task: &WorkerTask,
    population: &Population,
    seed: u64,
    fraction: f64,
) -> Vec<(u64, Victim)> {
    let users = task.users.clone();
    if users.end - users.start < 2 {
        return Vec::new();
    }
    let per_user = u64::from(population.devices_per_user);
    let mut out = Vec::new();
    for user in users.clone() {
        let victim = if user + 1 < users.end {
            user + 1
        } else {
            users.start
        };
        let victim_id = task.user_ids[(victim - users.start) as usize];
        for device in user * per_user..(user + 1) * per_user {
            if faults::unit(seed, device, SALT_SNOOP) >= fraction {
                continue;
            }
            let wallet = population::seeded_rows(population, seed, victim, victim_id, 0)
                .into_iter()
                .find(|r| r.table == Table::Wallets)
                .map(|r| r.id);
            out.push((
                device,
                Victim {
                    user_id: victim_id,
                    wallet,
                },
            ));
        }
    }
    out
}
