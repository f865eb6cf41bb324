//! The snooping device (`behaviour.snoop_fraction`): its probes, and the read leaks it counts.

use std::sync::Arc;

use syncstorm_device::{
    Action, Device, DeviceKnobs, Event, Probe, RequestFailed, Row, SNOOP_MARKER, Table, Victim,
};
use uuid::Uuid;

const T0: i64 = 1_800_000_000_000;

fn row_of(owner: Uuid, id: u128) -> Row {
    Row {
        table: Table::Wallets,
        id: Uuid::from_u128(id),
        user_id: owner,
        updated_at_ms: T0,
        deleted: false,
        refs: [None; 3],
        value: 1,
    }
}

fn snooper() -> (Device, Uuid, Victim) {
    let own = Uuid::from_u128(1);
    let victim = Victim {
        user_id: Uuid::from_u128(2),
        wallet: Some(Uuid::from_u128(20)),
    };
    let device = Device::new(7, own, Arc::new(DeviceKnobs::default()), 0, 42);
    (device, own, victim)
}

#[test]
fn a_snoop_sends_every_probe_with_the_devices_own_request_path_and_logs_its_targets() {
    let (mut device, _, victim) = snooper();
    let actions = device.step(Event::Snoop(victim), T0);
    let probes: Vec<&Probe> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Snoop(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(probes.len(), 7, "{actions:?}");
    assert_eq!(device.stats().snoop_attempts, 7);
    let log = device.snoop_log().expect("a snooping device keeps its log");
    assert_eq!(log.attacked, vec![Uuid::from_u128(20)]);
    assert_eq!(log.planted.len(), 1);
    assert!(
        probes
            .iter()
            .any(|p| matches!(p, Probe::Update { row } if row.value == SNOOP_MARKER))
    );
}

#[test]
fn rows_of_another_user_in_an_answer_count_as_read_leaks_and_own_rows_do_not() {
    let (mut device, own, victim) = snooper();
    device.step(Event::Snoop(victim), T0);
    let answer = vec![
        row_of(own, 10),
        row_of(victim.user_id, 20),
        row_of(victim.user_id, 21),
    ];
    device.step(Event::Snooped(Ok(answer)), T0 + 1);
    assert_eq!(device.stats().snoop_read_leaks, 2);
    assert_eq!(device.stats().snoop_own_rows, 1);
    device.step(Event::Snooped(Err(RequestFailed)), T0 + 2);
    device.step(Event::Snooped(Ok(vec![row_of(own, 11)])), T0 + 3);
    assert_eq!(device.stats().snoop_read_leaks, 2);
}

#[test]
fn a_device_that_never_snoops_has_no_log() {
    let (device, ..) = snooper();
    assert!(device.snoop_log().is_none());
    assert_eq!(device.stats().snoop_attempts, 0);
}
