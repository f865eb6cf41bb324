//! Shards partition the run exactly: every user, device and scheduled activation belongs to
//! exactly one shard, and the local workers split a shard the same way.

use std::collections::BTreeMap;
use std::time::Duration;

use syncstorm::swarm::schedule::{self, Activation, DeviceOrder, Load, PhaseShape};
use syncstorm::swarm::shard::{Shard, devices_of, split};

fn phases() -> Vec<PhaseShape> {
    vec![
        PhaseShape {
            name: "ramp".into(),
            duration: Duration::from_secs(10),
            load: Load::Closed {
                to: 700,
                ramp: Duration::from_secs(8),
            },
        },
        PhaseShape {
            name: "storm".into(),
            duration: Duration::from_secs(5),
            load: Load::Open {
                from: 100.0,
                to: 400.0,
                poisson: true,
            },
        },
        PhaseShape {
            name: "down".into(),
            duration: Duration::from_secs(5),
            load: Load::Closed {
                to: 100,
                ramp: Duration::from_secs(5),
            },
        },
    ]
}

fn key(a: &Activation) -> (Duration, u64, u8) {
    let kind = match a {
        Activation::Open { .. } => 0,
        Activation::Start { .. } => 1,
        Activation::Stop { .. } => 2,
    };
    (a.at(), a.device(), kind)
}

#[test]
fn shard_slices_and_their_workers_add_up_to_the_whole_schedule() {
    let (users, per_user, seed) = (500u64, 2u64, 11u64);
    let phases = phases();
    let order = DeviceOrder::new(users * per_user, seed);
    let whole: Vec<_> = schedule::activations(&phases, order, seed, |_| true).collect();
    let mut pieces = Vec::new();
    let mut owner: BTreeMap<u64, (u32, u32)> = BTreeMap::new();
    for index in 0..3 {
        let shard_users = Shard { index, count: 3 }.users(users);
        for worker in 0..4 {
            let mine = devices_of(&split(shard_users.clone(), worker, 4), per_user);
            for d in mine.clone() {
                assert!(
                    owner.insert(d, (index, worker)).is_none(),
                    "device {d} owned twice"
                );
            }
            let (lo, hi) = (mine.start, mine.end);
            pieces.extend(schedule::activations(&phases, order, seed, move |d| {
                d >= lo && d < hi
            }));
        }
    }
    assert_eq!(
        owner.len() as u64,
        users * per_user,
        "every device has an owner"
    );
    let mut whole_keys: Vec<_> = whole.iter().map(key).collect();
    let mut piece_keys: Vec<_> = pieces.iter().map(key).collect();
    whole_keys.sort();
    piece_keys.sort();
    assert_eq!(piece_keys, whole_keys);
    assert!(
        whole.len() > 1_000,
        "the schedule is not trivially empty: {}",
        whole.len()
    );
}
