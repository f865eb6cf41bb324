//! Nano-Pulse over the embedded stack's Realtime: a write on one phone makes the user's other
//! phone sync, and a phone's own push comes back to it (self-echo) and makes its next check pull.

mod device_support;

use device_support::*;
use syncstorm::driver::pulse::WS_SUBSCRIBED;
use syncstorm_device::{Event, PulseMode, Table};

fn is_latency(op: &'static str) -> impl Fn(&Seen) -> bool {
    move |seen| matches!(seen, Seen::Latency(o) if o == op)
}

fn subscribed(seen: &Seen) -> bool {
    matches!(seen, Seen::Count(name, 1) if name == WS_SUBSCRIBED)
}

#[tokio::test]
async fn a_pulse_makes_the_other_phone_sync() {
    let stack = start_stack(|_| {}).await;
    let (user_id, credentials) = stack.new_user().await;
    let knobs = knobs(|k| k.pulse.mode = PulseMode::Websocket);
    let spawn = |id: u64| {
        stack.spawn_device(DeviceSetup {
            device: device(id, user_id, &knobs, 0, 60 + id),
            credentials: credentials.clone(),
            config: driver_config(),
            network: None,
        })
    };
    let (writer, mut reader) = (spawn(0), spawn(1));
    for phone in [&writer, &reader] {
        phone.send(Event::AppOpened).await;
        phone.quiesce().await;
    }
    reader.wait_for(subscribed).await;

    writer.send(Event::UserEdit).await;
    writer.quiesce().await;
    // The reader gets no trigger but the pulse: the sync it records is the pulse's.
    reader.wait_for(is_latency("pulse_delivery")).await;
    reader.wait_for(is_latency("sync")).await;

    let server = stack.server_rows(user_id).await;
    let run = reader.stop().await;
    assert!(
        run.device.row_count() > 0,
        "the pulse-triggered sync pulled nothing"
    );
    assert_eq!(device_rows(&run.device), server);
    writer.stop().await;
}

#[tokio::test]
async fn a_phones_own_push_echoes_back_and_its_next_check_pulls() {
    let stack = start_stack(|_| {}).await;
    let (user_id, credentials) = stack.new_user().await;
    let knobs = knobs(|k| k.pulse.mode = PulseMode::Websocket);
    let mut phone = stack.spawn_device(DeviceSetup {
        device: device(0, user_id, &knobs, 0, 3),
        credentials,
        config: driver_config(),
        network: None,
    });
    phone.send(Event::AppOpened).await;
    phone.quiesce().await;
    phone.wait_for(subscribed).await;

    for _ in 0..3 {
        phone.send(Event::UserEdit).await;
    }
    phone.wait_for(is_latency("push")).await;
    // Its own write comes back as a pulse, and the sync it triggers pulls the phone's own rows.
    phone.wait_for(is_latency("pulse_delivery")).await;
    phone
        .wait_for(|s| matches!(s, Seen::Count(name, n) if name == "rows_pulled" && *n > 0))
        .await;
    let run = phone.stop().await;
    let stats = run.device.stats();
    assert!(stats.rows_pulled > 0 && stats.rows_pushed > 0, "{stats:?}");
    assert!(run.device.rows(Table::Wallets).count() > 0);
}
