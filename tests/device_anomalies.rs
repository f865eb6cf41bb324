//! The anomalies the oracle must report, reproduced with real devices on the embedded stack:
//! lost updates from skewed clocks under `upsert` (none under `server_lww`, where the later
//! edits are overruled instead), the
//! `updated_at`-cursor skip of a transaction that commits late, and a token that expires
//! while the device is offline, renewed without a failed sync.

mod device_support;

use std::sync::Arc;
use std::time::Duration;

use device_support::*;
use syncstorm::driver::NetworkSwitch;
use syncstorm::oracle::{AnomalyKind, OracleVerdict, verify_url};
use syncstorm_device::{Event, PushMode, SyncOutcome};
use uuid::Uuid;

/// Phone A runs 30 s ahead, phone B on time; they take turns editing the rows they share.
/// B's later (in real time) writes carry older stamps than A's acknowledged ones.
async fn skewed_turns(mode: PushMode) -> OracleVerdict {
    let stack = start_stack(|_| {}).await;
    let (user_id, credentials) = stack.new_user().await;
    let knobs = knobs(|k| k.push.mode = mode);
    // Row ids come from the seed: each mode gets its own, or the second run's new rows would
    // collide with the first run's (another user's) on the shared cluster.
    let seed = if mode == PushMode::Upsert { 40 } else { 140 };
    let spawn = |id: u64, skew_ms: i64| {
        stack.spawn_device(DeviceSetup {
            device: device(id, user_id, &knobs, skew_ms, seed + id),
            credentials: credentials.clone(),
            config: driver_config(),
            network: None,
        })
    };
    let (ahead, on_time) = (spawn(0, 30_000), spawn(1, 0));
    ahead.send(Event::AppOpened).await;
    ahead.quiesce().await;
    on_time.send(Event::AppOpened).await;
    on_time.quiesce().await;
    for _ in 0..8 {
        for phone in [&ahead, &on_time] {
            for _ in 0..4 {
                phone.send(Event::UserEdit).await;
            }
            phone.quiesce().await;
        }
    }
    ahead.quiesce().await;
    on_time.quiesce().await;
    let (a, b) = (ahead.stop().await, on_time.stop().await);
    verify_url(&stack.stack.database_url, &[&a.device, &b.device])
        .await
        .expect("oracle runs")
}

#[tokio::test]
async fn skewed_clocks_lose_updates_under_upsert_and_not_under_server_lww() {
    let upsert = skewed_turns(PushMode::Upsert).await;
    assert!(
        upsert.lost_updates > 0,
        "upsert with a 30 s skew lost nothing: {upsert:?}"
    );
    assert!(
        upsert
            .examples
            .iter()
            .any(|a| a.kind == AnomalyKind::LostUpdate)
    );
    let server_lww = skewed_turns(PushMode::ServerLww).await;
    assert_eq!(server_lww.lost_updates, 0, "{server_lww:?}");
    assert!(
        server_lww.server_rows > 0,
        "the pushes landed: {server_lww:?}"
    );
    // No update is lost, but the later edits in real time were refused: LWW on skewed
    // clocks decided against them, and the oracle says so.
    assert!(
        server_lww.overruled_writes > 0,
        "server_lww with a 30 s skew overruled nothing: {server_lww:?}"
    );
    assert!(
        server_lww
            .examples
            .iter()
            .any(|a| a.kind == AnomalyKind::OverruledWrite)
    );
}

/// A transaction stamps `updated_at` with its start time (`now()`), another commits a newer
/// row first, the device pulls that one, then the first commits: its row is older than the
/// device's cursor and the delta pull never fetches it.
#[tokio::test]
async fn a_late_commit_with_an_older_timestamp_is_skipped_and_reported() {
    let stack = start_stack(|_| {}).await;
    let (user_id, credentials) = stack.new_user().await;
    let knobs = knobs(|_| {});
    let phone = stack.spawn_device(DeviceSetup {
        device: device(0, user_id, &knobs, 0, 9),
        credentials,
        config: driver_config(),
        network: None,
    });
    phone.send(Event::AppOpened).await;
    phone.quiesce().await;

    let slow = stack.sql().await;
    let fast = stack.sql().await;
    slow.batch_execute("begin; select 1").await.unwrap();
    let started: chrono::DateTime<chrono::Utc> =
        slow.query_one("select now()", &[]).await.unwrap().get(0);
    let insert = "insert into public.wallets (id, user_id, name, updated_at) values ($1, $2, 'wallet 1', $3)";
    let (late, early) = (Uuid::new_v4(), Uuid::new_v4());
    let newer = started + chrono::Duration::milliseconds(5);
    fast.execute(insert, &[&early, &user_id, &newer])
        .await
        .unwrap();
    let pulled = phone.quiesce().await;
    assert!(
        matches!(pulled, SyncOutcome::Completed { rows_pulled: 1, .. }),
        "{pulled:?}"
    );

    let stamp_at_start = "insert into public.wallets (id, user_id, name, updated_at) \
                          values ($1, $2, 'wallet 2', date_trunc('milliseconds', now()))";
    slow.execute(stamp_at_start, &[&late, &user_id])
        .await
        .unwrap();
    slow.batch_execute("commit").await.unwrap();
    let after = phone.quiesce().await;
    assert!(
        matches!(
            after,
            SyncOutcome::Completed {
                pull_skipped: false,
                ..
            }
        ),
        "{after:?}"
    );

    let run = phone.stop().await;
    assert!(
        run.device
            .row(syncstorm_device::Table::Wallets, late)
            .is_none(),
        "the late row was pulled"
    );
    let verdict = verify_url(&stack.stack.database_url, &[&run.device])
        .await
        .unwrap();
    assert_eq!(verdict.skipped_rows, 1, "{verdict:?}");
    let example = verdict
        .examples
        .iter()
        .find(|a| a.kind == AnomalyKind::SkippedRow)
        .unwrap();
    assert_eq!(example.row, late);
}

/// Tokens live 1 s; the phone is offline past the expiry, and its network-back sync starts
/// with the expired token: PostgREST refuses it (`PGRST303`), the driver renews the session
/// and sends the request again, and the sync completes.
#[tokio::test]
async fn an_expired_token_is_renewed_without_a_failed_sync() {
    let stack = start_stack(|c| c.jwt_expiry = Duration::from_secs(1)).await;
    let (user_id, credentials) = stack.new_user().await;
    let knobs = knobs(|_| {});
    let network = Arc::new(NetworkSwitch::new());
    let mut phone = stack.spawn_device(DeviceSetup {
        device: device(0, user_id, &knobs, 0, 5),
        credentials,
        config: driver_config(),
        network: Some(network.clone()),
    });
    let probe = phone.probe.clone();
    phone.send(Event::AppOpened).await;
    phone.quiesce().await;

    network.set_online(false);
    for _ in 0..5 {
        phone.send(Event::UserEdit).await;
    }
    // Outage longer than the token's life (expiry has one-second granularity).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    network.set_online(true);
    let outcome = phone.quiesce().await;
    assert!(
        matches!(outcome, SyncOutcome::Completed { .. }),
        "{outcome:?}"
    );
    assert_eq!(phone.sync_errors(), [], "a sync failed across the expiry");
    // Keep syncing across two more token lifetimes: proactive renewals keep it valid.
    for _ in 0..3 {
        phone.send(Event::UserEdit).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let last = phone.quiesce().await;
    assert!(matches!(last, SyncOutcome::Completed { .. }), "{last:?}");
    assert_eq!(phone.sync_errors(), []);
    let run = phone.stop().await;
    assert_eq!(
        run.device.dirty_count(),
        0,
        "offline edits were not all pushed"
    );
    assert_eq!(device_rows(&run.device), stack.server_rows(user_id).await);
    let snapshot = probe.recorder.lock().unwrap().take();
    let renewals = ["token_refresh", "sign_in"]
        .iter()
        .filter_map(|op| snapshot.ops.get(*op))
        .map(|o| o.ok())
        .sum::<u64>();
    assert!(
        renewals >= 3,
        "sign-in plus at least two renewals, got {renewals}"
    );
    assert_eq!(
        snapshot.total_errors(),
        0,
        "{:?}",
        snapshot.errors_by_kind()
    );
}
