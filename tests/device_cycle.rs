//! One device and two devices of one user against the embedded stack, run by the real driver.

mod device_support;

use device_support::*;
use std::sync::Arc;
use std::time::Duration;

use syncstorm::driver::NetworkSwitch;
use syncstorm_device::{Event, PushMode, SyncOutcome};

#[tokio::test]
async fn one_device_full_cycle_leaves_the_server_equal_to_the_device() {
    let stack = start_stack(|_| {}).await;
    let (user_id, credentials) = stack.new_user().await;
    let knobs = knobs(|_| {});
    let setup = DeviceSetup {
        device: device(1, user_id, &knobs, 0, 7),
        credentials,
        config: driver_config(),
        network: None,
    };
    let mut phone = stack.spawn_device(setup);
    let probe = phone.probe.clone();

    phone.send(Event::AppOpened).await;
    let first = phone.quiesce().await;
    assert!(matches!(first, SyncOutcome::Completed { .. }), "{first:?}");
    for _ in 0..12 {
        phone.send(Event::UserEdit).await;
    }
    let last = phone.quiesce().await;
    assert!(matches!(last, SyncOutcome::Completed { .. }), "{last:?}");
    assert!(phone.sync_errors().is_empty());

    let run = phone.stop().await;
    assert_eq!(run.error, None);
    assert_eq!(run.device.dirty_count(), 0, "everything was pushed");
    let server = stack.server_rows(user_id).await;
    assert!(!server.is_empty(), "edits reached the server");
    assert_eq!(device_rows(&run.device), server);

    let snapshot = probe.recorder.lock().unwrap().take();
    for op in [
        "sign_in",
        "token_check",
        "pull",
        "pull.wallets",
        "pull.tier1",
        "push",
        "sync",
    ] {
        assert!(
            snapshot.ops.get(op).is_some_and(|o| o.ok() > 0),
            "no {op} recorded"
        );
    }
    assert_eq!(
        snapshot.total_errors(),
        0,
        "{:?}",
        snapshot.errors_by_kind()
    );
}

/// wrk2's correction: an app open delivered late is timed from its intended instant, so its
/// sync and first token check carry the delay; an ordinary open does not.
#[tokio::test]
async fn an_open_model_open_is_timed_from_its_intended_instant() {
    let stack = start_stack(|_| {}).await;
    let (user_id, credentials) = stack.new_user().await;
    let knobs = knobs(|_| {});
    let setup = DeviceSetup {
        device: device(1, user_id, &knobs, 0, 7),
        credentials,
        config: driver_config(),
        network: None,
    };
    let mut phone = stack.spawn_device(setup);
    let late_by = Duration::from_secs(3);
    phone.send(Event::AppOpened).await;
    phone
        .wait_for(|s| matches!(s, Seen::Latency(op) if op == "sync"))
        .await;
    phone
        .open_intended(tokio::time::Instant::now() - late_by)
        .await;
    phone
        .wait_for(|s| matches!(s, Seen::Latency(op) if op == "sync"))
        .await;

    let snapshot = phone.probe.recorder.lock().unwrap().take();
    for op in ["sync", "token_check"] {
        let h = &snapshot.ops[op].latency;
        assert!(h.len() >= 2, "{op}: one ordinary open and one late open");
        assert!(
            h.min() < late_by.as_micros() as u64,
            "{op}: the ordinary open is not shifted"
        );
        assert!(
            h.max() >= late_by.as_micros() as u64,
            "{op}: the late open carries its delay"
        );
    }
    phone.stop().await;
}

/// A backgrounded app keeps its session: reopened, it syncs without signing in again, and a
/// session that expired while it was away is refreshed first, not replaced by a sign-in.
#[tokio::test]
async fn a_reopened_device_keeps_its_session() {
    let stack = start_stack(|_| {}).await;
    let (user_id, credentials) = stack.new_user().await;
    let knobs = knobs(|_| {});
    let setup = |device| DeviceSetup {
        device,
        credentials: credentials.clone(),
        config: driver_config(),
        network: None,
    };
    let phone = stack.spawn_device(setup(device(1, user_id, &knobs, 0, 7)));
    phone.send(Event::AppOpened).await;
    phone.quiesce().await;
    let first = phone.stop().await;
    let kept = first
        .session
        .clone()
        .expect("a signed-in device keeps its session");

    let ops = |run: &RunningDevice| {
        let snapshot = run.probe.recorder.lock().unwrap().take();
        let count = |op: &str| snapshot.ops.get(op).map_or(0, |o| o.count());
        (count("sign_in"), count("token_refresh"), count("sync"))
    };
    let reopened = stack.resume_device(setup(first.device), Some(kept.clone()));
    reopened.send(Event::AppOpened).await;
    reopened.quiesce().await;
    assert_eq!(ops(&reopened).0, 0, "no sign-in on reopen");
    assert_eq!(ops(&reopened).1, 0, "a fresh session is not refreshed");
    let second = reopened.stop().await;

    let mut expired = second.session.expect("still signed in");
    expired.expires_at = 0;
    let after_expiry = stack.resume_device(setup(second.device), Some(expired));
    after_expiry.send(Event::AppOpened).await;
    after_expiry.quiesce().await;
    let (sign_ins, refreshes, syncs) = ops(&after_expiry);
    assert_eq!((sign_ins, refreshes), (0, 1), "refreshed once, no sign-in");
    assert!(syncs >= 1);
    after_expiry.stop().await;
}

/// Two phones of one user that both hold the user's rows, each edit (often the same rows)
/// while offline, B after A; they come back one after the other. LWW keeps B's newer writes
/// and both end equal to the server.
#[tokio::test]
async fn two_devices_of_one_user_converge_after_concurrent_offline_edits() {
    let stack = start_stack(|_| {}).await;
    let (user_id, credentials) = stack.new_user().await;
    let knobs = knobs(|_| {});
    let networks = [
        Arc::new(NetworkSwitch::new()),
        Arc::new(NetworkSwitch::new()),
    ];
    let phones: Vec<RunningDevice> = (0..2)
        .map(|i| {
            stack.spawn_device(DeviceSetup {
                device: device(i as u64, user_id, &knobs, 0, 100 + i as u64),
                credentials: credentials.clone(),
                config: driver_config(),
                network: Some(networks[i].clone()),
            })
        })
        .collect();
    // A creates the user's data; B pulls it, so both hold the same rows.
    phones[0].send(Event::AppOpened).await;
    phones[0].quiesce().await;
    for _ in 0..10 {
        phones[0].send(Event::UserEdit).await;
    }
    phones[0].quiesce().await;
    phones[1].send(Event::AppOpened).await;
    phones[1].quiesce().await;

    for network in &networks {
        network.set_online(false);
    }
    for phone in &phones {
        for _ in 0..15 {
            phone.send(Event::UserEdit).await;
        }
        // Edits of B are stamped after A's (the order LWW must keep).
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for (phone, network) in phones.iter().zip(&networks) {
        network.set_online(true);
        let outcome = phone.quiesce().await;
        assert!(
            matches!(outcome, SyncOutcome::Completed { .. }),
            "{outcome:?}"
        );
    }
    phones[0].quiesce().await;

    let server = stack.server_rows(user_id).await;
    for phone in phones {
        let run = phone.stop().await;
        assert_eq!(
            device_rows(&run.device),
            server,
            "device {} diverged",
            run.device.id()
        );
    }
}

/// Burst edits on two phones at once: the protocol's `updated_at > cursor` pull can skip rows
/// that commit after a pull whose cursor already passed their timestamp. Whatever the devices
/// miss after their final syncs must be exactly such skipped rows — nothing else may differ.
#[tokio::test]
async fn concurrent_burst_edits_diverge_only_by_cursor_skips() {
    let stack = start_stack(|_| {}).await;
    let (user_id, credentials) = stack.new_user().await;
    let knobs = knobs(|k| k.push.mode = PushMode::ServerLww);
    let phones: Vec<RunningDevice> = (0..2)
        .map(|i| {
            stack.spawn_device(DeviceSetup {
                device: device(i, user_id, &knobs, 0, 200 + i),
                credentials: credentials.clone(),
                config: driver_config(),
                network: None,
            })
        })
        .collect();
    for phone in &phones {
        phone.send(Event::AppOpened).await;
        phone.quiesce().await;
    }
    for _ in 0..15 {
        for phone in &phones {
            phone.send(Event::UserEdit).await;
        }
    }
    for i in [0, 1, 0, 1] {
        let outcome = phones[i].quiesce().await;
        assert!(
            matches!(outcome, SyncOutcome::Completed { .. }),
            "{outcome:?}"
        );
    }
    let server = stack.server_rows(user_id).await;
    for phone in phones {
        let run = phone.stop().await;
        let local = device_rows(&run.device);
        for (key, row) in &server {
            if local.get(key) != Some(row) {
                let cursor = run.device.cursor(key.0).expect("the table was pulled");
                assert!(
                    row.updated_at_ms <= cursor,
                    "device {} differs on {key:?} although its cursor {cursor} is before it",
                    run.device.id()
                );
            }
        }
        assert!(
            local.keys().all(|k| server.contains_key(k)),
            "a device holds a row the server lacks"
        );
    }
}

/// A bulk import's pushes are recorded as `bulk_push` (risk 3 sets them beside ordinary
/// pushes); once its rows are all on the server the device's pushes are ordinary again.
#[tokio::test]
async fn a_bulk_import_is_recorded_apart_from_ordinary_pushes() {
    let stack = start_stack(|_| {}).await;
    let (user_id, credentials) = stack.new_user().await;
    let knobs = knobs(|k| k.push.batch_size = 10);
    let phone = stack.spawn_device(DeviceSetup {
        device: device(1, user_id, &knobs, 0, 11),
        credentials,
        config: driver_config(),
        network: None,
    });
    let probe = phone.probe.clone();
    phone.send(Event::AppOpened).await;
    phone.quiesce().await;
    phone.send(Event::BulkImport { rows: 40 }).await;
    let imported = phone.quiesce().await;
    assert!(
        matches!(imported, SyncOutcome::Completed { .. }),
        "{imported:?}"
    );
    let during = probe.recorder.lock().unwrap().take();
    assert_eq!(during.counter("bulk_rows"), 40);
    let bulk_pushes = during.ops.get("bulk_push").map_or(0, |o| o.ok());
    assert!(
        bulk_pushes >= 4,
        "40 rows in batches of 10 take at least 4 requests, got {bulk_pushes}"
    );

    phone.send(Event::UserEdit).await;
    phone.quiesce().await;
    let after = probe.recorder.lock().unwrap().take();
    assert!(
        after.ops.get("push").is_some_and(|o| o.ok() > 0),
        "an ordinary edit is a push"
    );
    assert!(after.ops.get("bulk_push").is_none_or(|o| o.ok() == 0));
    phone.stop().await;
}
