//! Every trigger in every state of the machine: it starts a sync when idle and online, is held
//! for "sync again after" while a sync runs, and waits for the network while offline.

mod support;

use support::{MemServer, Rig, T0};
use syncstorm_device::{Action, DeviceKnobs, Event, PulseMode, Timer, Trigger};

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    NeverSynced,
    Idle,
    Offline,
    Checking,
    WaitingCheckRetry,
    Pulling,
    Pushing,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Starts,
    HeldUntilSyncEnds,
    HeldUntilNetworkBack,
    Ignored,
}

const TRIGGERS: [Trigger; 6] = [
    Trigger::AppOpen,
    Trigger::NetworkBack,
    Trigger::Pulse,
    Trigger::Edit,
    Trigger::BulkImport,
    Trigger::Periodic,
];

fn knobs() -> DeviceKnobs {
    let mut knobs = DeviceKnobs::default();
    knobs.pulse.mode = PulseMode::Periodic;
    knobs
}

/// Brings a device into `state`; returns the requests it has in flight (unanswered).
fn enter(state: State) -> (Rig, MemServer, Vec<Action>) {
    let mut rig = Rig::new(knobs(), 0, 3);
    let mut server = MemServer::default();
    if state == State::NeverSynced {
        return (rig, server, Vec::new());
    }
    rig.run(&mut server, Event::AppOpened, T0);
    let now = T0 + 10;
    let requests = match state {
        State::NeverSynced | State::Idle => Vec::new(),
        State::Offline => {
            rig.device.step(Event::NetworkLost, now);
            Vec::new()
        }
        State::Checking => rig.device.step(Event::Pulse, now),
        State::WaitingCheckRetry => {
            rig.device.step(Event::Pulse, now);
            let said = rig.device.step(
                Event::TokenChecked(Err(syncstorm_device::RequestFailed)),
                now,
            );
            let Some(Action::SetTimer {
                timer: Timer::UsapRetry,
                at_ms,
            }) = said.last()
            else {
                panic!("expected a retry timer, got {said:?}");
            };
            rig.timers.insert(support::key(Timer::UsapRetry), *at_ms);
            Vec::new()
        }
        State::Pulling => {
            let row = other_device_row();
            server.put(row);
            rig.device.step(Event::Pulse, now);
            rig.device.step(Event::TokenChecked(Ok(server.token)), now)
        }
        State::Pushing => {
            rig.device.step(Event::UserEdit, now);
            rig.device.step(Event::Pulse, now);
            rig.device.step(Event::TokenChecked(Ok(server.token)), now)
        }
    };
    let requests: Vec<Action> = requests
        .into_iter()
        .filter(|a| !matches!(a, Action::SyncStarted { .. } | Action::SetTimer { .. }))
        .collect();
    let kinds: Vec<&str> = requests.iter().map(kind).collect();
    let expected_kinds: &[&str] = match state {
        State::Checking => &["check"],
        State::Pulling => &["page"],
        State::Pushing => &["upsert"],
        _ => &[],
    };
    assert_eq!(kinds, expected_kinds, "in flight in {state:?}");
    (rig, server, requests)
}

fn kind(action: &Action) -> &'static str {
    match action {
        Action::CheckToken => "check",
        Action::FetchPage(_) => "page",
        Action::Upsert { .. } => "upsert",
        _ => "other",
    }
}

fn other_device_row() -> syncstorm_device::Row {
    syncstorm_device::Row {
        table: syncstorm_device::Table::Wallets,
        id: uuid::Uuid::from_u128(99),
        user_id: support::user(),
        updated_at_ms: T0,
        deleted: false,
        refs: [None; 3],
        value: 5,
    }
}

/// Delivers the trigger the way it really arrives; returns what the machine said.
fn fire(rig: &mut Rig, trigger: Trigger, now: i64) -> Vec<Action> {
    let d = &mut rig.device;
    match trigger {
        Trigger::AppOpen => d.step(Event::AppOpened, now),
        Trigger::NetworkBack => d.step(Event::NetworkBack, now),
        Trigger::Pulse => d.step(Event::Pulse, now),
        Trigger::Edit => {
            d.step(Event::UserEdit, now);
            d.step(Event::TimerFired(Timer::EditDebounce), now + 1000)
        }
        Trigger::BulkImport => d.step(Event::BulkImport { rows: 3 }, now),
        Trigger::Periodic => d.step(Event::TimerFired(Timer::Periodic), now),
    }
}

fn expected(state: State, trigger: Trigger) -> Expect {
    match state {
        State::NeverSynced if trigger == Trigger::Periodic => Expect::Ignored,
        State::NeverSynced | State::Idle => Expect::Starts,
        State::Offline if trigger == Trigger::NetworkBack => Expect::Starts,
        State::Offline => Expect::HeldUntilNetworkBack,
        State::Checking | State::WaitingCheckRetry | State::Pulling | State::Pushing => {
            Expect::HeldUntilSyncEnds
        }
    }
}

fn started(actions: &[Action]) -> Vec<Trigger> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SyncStarted { trigger, .. } => Some(*trigger),
            _ => None,
        })
        .collect()
}

#[test]
fn every_trigger_in_every_state() {
    let states = [
        State::NeverSynced,
        State::Idle,
        State::Offline,
        State::Checking,
        State::WaitingCheckRetry,
        State::Pulling,
        State::Pushing,
    ];
    for state in states {
        for trigger in TRIGGERS {
            check(state, trigger);
        }
    }
}

fn check(state: State, trigger: Trigger) {
    let case = format!("{trigger:?} in {state:?}");
    let (mut rig, mut server, in_flight) = enter(state);
    let now = T0 + 20;
    let said = fire(&mut rig, trigger, now);
    match expected(state, trigger) {
        Expect::Starts => {
            assert_eq!(started(&said), [trigger], "{case}");
            assert!(said.contains(&Action::CheckToken), "{case}: {said:?}");
        }
        Expect::Ignored => assert!(
            started(&said).is_empty() && !rig.device.is_syncing(),
            "{case}"
        ),
        Expect::HeldUntilNetworkBack => {
            assert!(
                started(&said).is_empty() && rig.device.sync_again_pending(),
                "{case}"
            );
            let back = rig.run(&mut server, Event::NetworkBack, now + 5);
            assert_eq!(
                started(&back),
                [Trigger::NetworkBack],
                "{case}: one sync for both"
            );
        }
        Expect::HeldUntilSyncEnds => {
            assert!(started(&said).is_empty(), "{case}: {said:?}");
            assert!(rig.device.sync_again_pending(), "{case}");
            let before = rig.log.len();
            for request in &in_flight {
                let answer = server.answer(request).expect("a request");
                rig.run(&mut server, answer, now + 5);
            }
            if state == State::WaitingCheckRetry {
                rig.timers.remove(&support::key(Timer::EditDebounce));
                rig.fire_next_timer(&mut server);
            }
            let after = &rig.log[before..];
            assert_eq!(started(after), [trigger], "{case}: sync again after");
            assert!(
                !rig.device.is_syncing() && !rig.device.sync_again_pending(),
                "{case}"
            );
        }
    }
}
