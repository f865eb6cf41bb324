//! One sync, stage by stage: the USAP check and its retries, the skipped pull, keyset pages,
//! LWW apply, FK errors, batching and the push modes, the sync order, pulses, determinism.

mod support;

use support::{MemServer, Rig, T0, count, outcomes, user};
use syncstorm_device::{
    Action, DeviceKnobs, Event, PulseMode, PushMode, RetryPolicy, Row, SyncOrder, SyncOutcome,
    SyncStage, Table, TierConcurrency, Timer,
};
use uuid::Uuid;

fn row(table: Table, id: u128, updated_at_ms: i64, value: i64) -> Row {
    Row {
        table,
        id: Uuid::from_u128(id),
        user_id: user(),
        updated_at_ms,
        deleted: false,
        refs: [None; 3],
        value,
    }
}

fn completed(pull_skipped: bool, rows_pulled: u32, rows_pushed: u32) -> SyncOutcome {
    SyncOutcome::Completed {
        pull_skipped,
        rows_pulled,
        rows_pushed,
    }
}

fn timer_times(actions: &[Action], which: Timer) -> Vec<i64> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SetTimer { timer, at_ms } if *timer == which => Some(*at_ms),
            _ => None,
        })
        .collect()
}

#[test]
fn check_attempts_exhausted_fail_the_sync_and_the_next_trigger_retries() {
    let mut rig = Rig::new(DeviceKnobs::default(), 0, 1);
    let mut server = MemServer {
        down: true,
        ..MemServer::default()
    };
    rig.run(&mut server, Event::AppOpened, T0);
    while rig.fire_next_timer(&mut server).is_some() {}
    assert_eq!(server.checks, 10, "usap.max_attempts attempts");
    let retries = timer_times(&rig.log, Timer::UsapRetry);
    let expected: Vec<i64> = (1..=9).map(|i| T0 + 1000 * i).collect();
    assert_eq!(retries, expected, "fixed 1s between attempts");
    assert_eq!(
        outcomes(&rig.log),
        [SyncOutcome::Failed {
            stage: SyncStage::Check
        }]
    );
    assert!(!rig.device.is_syncing());

    server.down = false;
    let said = rig.run(&mut server, Event::Pulse, T0 + 60_000);
    assert_eq!(outcomes(&said), [completed(false, 0, 0)]);
}

#[test]
fn exponential_retries_double_up_to_the_cap() {
    let mut knobs = DeviceKnobs::default();
    knobs.usap.retry = RetryPolicy::Exponential;
    knobs.usap.max_attempts = 8;
    let mut rig = Rig::new(knobs, 0, 1);
    let mut server = MemServer {
        down: true,
        ..MemServer::default()
    };
    rig.run(&mut server, Event::AppOpened, 0);
    while rig.fire_next_timer(&mut server).is_some() {}
    let retries = timer_times(&rig.log, Timer::UsapRetry);
    let gaps: Vec<i64> = retries.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(retries[0], 1000);
    assert_eq!(gaps, [2000, 4000, 8000, 16000, 30000, 30000]);
}

#[test]
fn a_token_not_newer_than_the_local_one_skips_the_pull_and_a_newer_one_pulls() {
    let mut rig = Rig::new(DeviceKnobs::default(), 0, 1);
    let mut server = MemServer::default();
    server.put(row(Table::Wallets, 1, T0, 10));
    let first = rig.run(&mut server, Event::AppOpened, T0);
    assert_eq!(outcomes(&first), [completed(false, 1, 0)]);
    assert_eq!(rig.device.local_token(), Some(1));

    let pages_before = server.pages;
    let second = rig.sync(&mut server, T0 + 1000);
    assert_eq!(outcomes(&second), [completed(true, 0, 0)]);
    assert_eq!(server.pages, pages_before, "no page fetched");

    server.put(row(Table::Wallets, 2, T0 + 5, 20));
    let third = rig.sync(&mut server, T0 + 2000);
    assert_eq!(outcomes(&third), [completed(false, 1, 0)]);
    assert_eq!(rig.device.row_count(), 2);
}

#[test]
fn a_devices_own_push_makes_its_next_check_pull_its_rows_back() {
    let mut rig = Rig::new(DeviceKnobs::default(), 0, 1);
    let mut server = MemServer::default();
    rig.run(&mut server, Event::AppOpened, T0);
    rig.run(&mut server, Event::UserEdit, T0 + 10);
    let pushed = rig.fire_next_timer(&mut server).expect("debounce");
    assert_eq!(pushed, T0 + 1010);
    let echo = rig.sync(&mut server, T0 + 5000);
    let Some(SyncOutcome::Completed {
        pull_skipped: false,
        rows_pulled,
        ..
    }) = outcomes(&echo).first().copied()
    else {
        panic!("the echo sync pulls: {echo:?}");
    };
    assert!(rows_pulled >= 1, "its own row came back");
}

#[test]
fn pages_continue_by_keyset_so_equal_timestamps_are_neither_skipped_nor_repeated() {
    let mut knobs = DeviceKnobs::default();
    knobs.pull.page_size = 10;
    let mut rig = Rig::new(knobs, 0, 1);
    let mut server = MemServer::default();
    for id in 1..=25 {
        server.put(row(Table::Wallets, id, T0, id as i64));
    }
    let said = rig.run(&mut server, Event::AppOpened, T0);
    let wallet_pages: Vec<_> = said
        .iter()
        .filter_map(|a| match a {
            Action::FetchPage(q) if q.table == Table::Wallets => Some(q.after),
            _ => None,
        })
        .collect();
    assert_eq!(wallet_pages.len(), 3);
    assert_eq!(wallet_pages[0], None);
    let second = wallet_pages[1].expect("keyset");
    assert_eq!(
        (second.updated_at_ms, second.id),
        (T0, Some(Uuid::from_u128(10)))
    );
    assert_eq!(rig.device.rows(Table::Wallets).count(), 25);
    assert_eq!(outcomes(&said), [completed(false, 25, 0)]);
    assert_eq!(rig.device.cursor(Table::Wallets), Some(T0));
}

#[test]
fn a_pull_failing_between_pages_keeps_the_cursor_below_the_boundary_timestamp() {
    let mut knobs = DeviceKnobs::default();
    knobs.pull.page_size = 2;
    let mut rig = Rig::new(knobs, 0, 1);
    let mut server = MemServer::default();
    server.put(row(Table::Wallets, 1, T0 - 5, 1));
    for id in 2..=4 {
        server.put(row(Table::Wallets, id, T0, 1));
    }
    let d = &mut rig.device;
    d.step(Event::AppOpened, T0);
    let said = d.step(Event::TokenChecked(Ok(server.token)), T0);
    let page = server.answer(&said[0]).unwrap();
    let next = d.step(page, T0);
    assert!(matches!(next[0], Action::FetchPage(_)));
    let failed = d.step(
        Event::PageFetched {
            table: Table::Wallets,
            result: Err(syncstorm_device::RequestFailed),
        },
        T0,
    );
    assert_eq!(
        outcomes(&failed),
        [SyncOutcome::Failed {
            stage: SyncStage::Pull
        }]
    );
    assert_eq!(
        d.cursor(Table::Wallets),
        Some(T0 - 5),
        "not past rows still unseen at T0"
    );
    assert_eq!(d.local_token(), None, "a failed pull adopts no token");
    rig.sync(&mut server, T0 + 100);
    assert_eq!(rig.device.rows(Table::Wallets).count(), 4);
}

#[test]
fn pulled_children_whose_parent_is_missing_count_as_fk_errors() {
    let mut rig = Rig::new(DeviceKnobs::default(), 0, 1);
    let mut server = MemServer::default();
    server.put(row(Table::Wallets, 1, T0, 1));
    rig.run(&mut server, Event::AppOpened, T0);
    // A wallet committing late with an older timestamp: the delta pull skips it, and the
    // channel pointing at it arrives without its parent.
    server.put(row(Table::Wallets, 2, T0 - 10, 2));
    let mut channel = row(Table::Channels, 3, T0 + 5, 3);
    channel.refs[0] = Some(Uuid::from_u128(2));
    server.put(channel);
    let mut intact = row(Table::Channels, 4, T0 + 5, 4);
    intact.refs[0] = Some(Uuid::from_u128(1));
    server.put(intact);
    // A transaction missing all three parents is one orphan, not three.
    let mut orphan = row(Table::Transactions, 5, T0 + 6, 5);
    orphan.refs = [50, 51, 52].map(|id| Some(Uuid::from_u128(id)));
    server.put(orphan);
    rig.sync(&mut server, T0 + 100);
    assert_eq!(rig.device.fk_errors(), 2);
    assert!(
        rig.device.row(Table::Wallets, Uuid::from_u128(2)).is_none(),
        "skipped"
    );
    assert!(
        rig.device
            .row(Table::Channels, Uuid::from_u128(3))
            .is_some(),
        "kept, as SQLite does"
    );
}

#[test]
fn dirty_rows_go_tier_by_tier_in_batches_of_batch_size() {
    let mut knobs = DeviceKnobs::default();
    knobs.push.batch_size = 3;
    let mut rig = Rig::new(knobs, 0, 1);
    let mut server = MemServer::default();
    rig.run(&mut server, Event::AppOpened, T0);
    let said = rig.run(&mut server, Event::BulkImport { rows: 7 }, T0 + 10);
    let pushes: Vec<(Table, usize)> = said
        .iter()
        .filter_map(|a| match a {
            Action::Upsert { table, rows } => Some((*table, rows.len())),
            _ => None,
        })
        .collect();
    let expected = [
        (Table::Wallets, 1),
        (Table::Channels, 1),
        (Table::CategoriesUser, 1),
        (Table::Transactions, 3),
        (Table::Transactions, 3),
        (Table::Transactions, 1),
    ];
    assert_eq!(pushes, expected);
    assert_eq!(rig.device.dirty_count(), 0);
    assert_eq!(rig.device.acked_writes().len(), 10);
    assert_eq!(server.rows.len(), 10);
}

#[test]
fn a_row_edited_while_its_push_is_in_flight_stays_dirty() {
    let mut rig = Rig::new(DeviceKnobs::default(), 0, 1);
    let mut server = MemServer::default();
    rig.run(&mut server, Event::AppOpened, T0);
    let d = &mut rig.device;
    d.step(Event::UserEdit, T0 + 10);
    d.step(Event::Pulse, T0 + 20);
    let said = d.step(Event::TokenChecked(Ok(server.token)), T0 + 20);
    let Some(Action::Upsert { rows, .. }) =
        said.iter().find(|a| matches!(a, Action::Upsert { .. }))
    else {
        panic!("expected a push: {said:?}");
    };
    let id = rows[0].id;
    // The only wallet gets edited again (updates pick existing rows; retry until one does).
    let mut seed_edits = 0;
    while d.row(Table::Wallets, id).unwrap().updated_at_ms == T0 + 10 && seed_edits < 50 {
        d.step(Event::UserEdit, T0 + 30);
        seed_edits += 1;
    }
    let pushed = Event::Pushed {
        table: Table::Wallets,
        result: Ok(syncstorm_device::PushAnswer::default()),
    };
    d.step(pushed, T0 + 40);
    assert!(
        d.is_dirty(Table::Wallets, id),
        "the newer edit still waits for its push"
    );
    assert_eq!(d.acked_writes()[0].updated_at_ms, T0 + 10);
}

#[test]
fn client_lww_reads_first_and_takes_the_servers_newer_copy() {
    let mut knobs = DeviceKnobs::default();
    knobs.push.mode = PushMode::ClientLww;
    let mut rig = Rig::new(knobs, -60_000, 1);
    let mut server = MemServer::default();
    rig.run(&mut server, Event::AppOpened, T0);
    rig.run(&mut server, Event::UserEdit, T0 + 10);
    let wallet = rig.device.rows(Table::Wallets).next().unwrap();
    // Another device wrote the same row meanwhile with a newer timestamp.
    let mut theirs = wallet.clone();
    theirs.updated_at_ms = T0;
    theirs.value = 777;
    server.put(theirs.clone());
    let d = &mut rig.device;
    d.step(Event::TimerFired(Timer::EditDebounce), T0 + 1010);
    let said = d.step(Event::TokenChecked(Ok(0)), T0 + 1010);
    assert!(matches!(&said[..], [Action::ReadRows { .. }]), "{said:?}");
    let read = server.answer(&said[0]).unwrap();
    let after = d.step(read, T0 + 1010);
    assert_eq!(outcomes(&after), [completed(true, 0, 0)], "nothing written");
    assert_eq!(d.row(Table::Wallets, wallet.id), Some(theirs));
    assert_eq!(d.stats().rows_refused, 1);
    assert!(d.acked_writes().is_empty());
}

#[test]
fn server_lww_refusals_stop_the_push_and_are_not_acknowledged() {
    let mut knobs = DeviceKnobs::default();
    knobs.push.mode = PushMode::ServerLww;
    // Push first, so the push meets the newer server row before any pull could take it.
    knobs.sync.order = SyncOrder::PushThenPull;
    let mut rig = Rig::new(knobs, -60_000, 1);
    let mut server = MemServer::default();
    rig.run(&mut server, Event::AppOpened, T0);
    rig.run(&mut server, Event::UserEdit, T0 + 10);
    let wallet = rig.device.rows(Table::Wallets).next().unwrap();
    let mut theirs = wallet.clone();
    theirs.updated_at_ms = T0;
    server.put(theirs.clone());
    let said = rig.run(&mut server, Event::Pulse, T0 + 20);
    assert_eq!(count(&said, |a| matches!(a, Action::PushRpc { .. })), 1);
    assert_eq!(rig.device.stats().rows_refused, 1);
    assert_eq!(rig.device.dirty_count(), 0);
    assert!(rig.device.acked_writes().is_empty());
    assert_eq!(
        server.rows[&wallet.id], theirs,
        "the server kept the newer write"
    );
    assert_eq!(
        rig.device.row(Table::Wallets, wallet.id),
        Some(theirs),
        "and the pull brought it"
    );
}

#[test]
fn push_then_pull_pushes_before_the_check() {
    let mut knobs = DeviceKnobs::default();
    knobs.sync.order = SyncOrder::PushThenPull;
    let mut rig = Rig::new(knobs, 0, 1);
    let mut server = MemServer::default();
    rig.run(&mut server, Event::AppOpened, T0);
    rig.device.step(Event::UserEdit, T0 + 10);
    let said = rig.run(&mut server, Event::Pulse, T0 + 20);
    let order: Vec<&str> = said
        .iter()
        .filter_map(|a| match a {
            Action::Upsert { .. } => Some("push"),
            Action::CheckToken => Some("check"),
            Action::FetchPage(_) => Some("pull"),
            _ => None,
        })
        .collect();
    assert_eq!(order[..3], ["push", "check", "pull"], "{order:?}");
    // The check reads the token the push just raised: the device pulls its own row back.
    assert_eq!(outcomes(&said), [completed(false, 1, 1)]);
}

#[test]
fn concurrent_tier_pull_asks_for_both_tables_of_a_tier_at_once() {
    let mut knobs = DeviceKnobs::default();
    knobs.pull.tier_concurrency = TierConcurrency::Concurrent;
    let mut rig = Rig::new(knobs, 0, 1);
    let d = &mut rig.device;
    d.step(Event::AppOpened, T0);
    d.step(Event::TokenChecked(Ok(1)), T0);
    let tier2 = d.step(
        Event::PageFetched {
            table: Table::Wallets,
            result: Ok(vec![]),
        },
        T0,
    );
    let tables: Vec<Table> = tier2
        .iter()
        .filter_map(|a| match a {
            Action::FetchPage(q) => Some(q.table),
            _ => None,
        })
        .collect();
    assert_eq!(tables, [Table::Channels, Table::CategoriesUser]);
    let empty = |table| Event::PageFetched {
        table,
        result: Ok(vec![]),
    };
    let first_done = d.step(empty(Table::CategoriesUser), T0);
    assert!(
        first_done.is_empty(),
        "tier 3 waits for the whole of tier 2"
    );
    let tier3 = d.step(empty(Table::Channels), T0);
    assert_eq!(tier3.len(), 2);
}

#[test]
fn the_pulse_opens_once_after_the_first_sync_and_periodic_mode_rearms() {
    let cases = [
        (PulseMode::Websocket, 1, 0),
        (PulseMode::LongPoll, 1, 0),
        (PulseMode::Off, 0, 0),
        (PulseMode::Periodic, 0, 3),
    ];
    for (mode, opens, periodic_timers) in cases {
        let mut knobs = DeviceKnobs::default();
        knobs.pulse.mode = mode;
        let mut rig = Rig::new(knobs, 0, 1);
        let mut server = MemServer::default();
        rig.run(&mut server, Event::AppOpened, T0);
        rig.sync(&mut server, T0 + 10);
        if mode == PulseMode::Periodic {
            rig.fire_next_timer(&mut server);
            rig.fire_next_timer(&mut server);
        }
        assert_eq!(
            count(&rig.log, |a| *a == Action::OpenPulse),
            opens,
            "{mode:?}"
        );
        let timers = timer_times(&rig.log, Timer::Periodic);
        assert_eq!(timers.len(), periodic_timers, "{mode:?}");
        if mode == PulseMode::Periodic {
            assert_eq!(timers, [T0 + 30_000, T0 + 60_000, T0 + 90_000]);
            assert_eq!(rig.device.stats().syncs_completed, 4);
        }
    }
}

#[test]
fn a_later_edit_pushes_the_debounce_back_and_the_stale_timer_is_ignored() {
    let mut rig = Rig::new(DeviceKnobs::default(), 0, 1);
    let mut server = MemServer::default();
    rig.run(&mut server, Event::AppOpened, T0);
    let d = &mut rig.device;
    d.step(Event::UserEdit, T0 + 100);
    d.step(Event::UserEdit, T0 + 600);
    assert!(
        d.step(Event::TimerFired(Timer::EditDebounce), T0 + 1100)
            .is_empty()
    );
    let due = d.step(Event::TimerFired(Timer::EditDebounce), T0 + 1600);
    assert!(matches!(
        due[0],
        Action::SyncStarted {
            trigger: syncstorm_device::Trigger::Edit,
            ..
        }
    ));
}

#[test]
fn edits_are_stamped_with_the_skewed_device_clock() {
    let mut rig = Rig::new(DeviceKnobs::default(), -30_000, 1);
    rig.device.step(Event::UserEdit, T0);
    let wallet = rig.device.rows(Table::Wallets).next().unwrap();
    assert_eq!(wallet.updated_at_ms, T0 - 30_000);
}

#[test]
fn answers_nobody_waits_for_are_ignored() {
    let mut knobs = DeviceKnobs::default();
    knobs.push.mode = PushMode::ClientLww;
    let mut rig = Rig::new(knobs, 0, 1);
    let mut server = MemServer::default();
    rig.run(&mut server, Event::AppOpened, T0);
    let d = &mut rig.device;
    let ok_push = |table| Event::Pushed {
        table,
        result: Ok(syncstorm_device::PushAnswer::default()),
    };
    let empty_page = |table| Event::PageFetched {
        table,
        result: Ok(vec![]),
    };
    // Idle: every answer is stale.
    for stale in [
        Event::TokenChecked(Ok(5)),
        empty_page(Table::Wallets),
        Event::RowsRead {
            table: Table::Wallets,
            result: Ok(vec![]),
        },
        ok_push(Table::Wallets),
        Event::TimerFired(Timer::UsapRetry),
    ] {
        assert!(d.step(stale.clone(), T0 + 1).is_empty(), "{stale:?}");
    }
    // Waiting for the client_lww read: a push answer, or a page, is not it.
    d.step(Event::UserEdit, T0 + 10);
    d.step(Event::Pulse, T0 + 20);
    let said = d.step(Event::TokenChecked(Ok(server.token)), T0 + 20);
    assert!(matches!(said[..], [Action::ReadRows { .. }]), "{said:?}");
    assert!(d.step(ok_push(Table::Wallets), T0 + 21).is_empty());
    assert!(d.step(empty_page(Table::Wallets), T0 + 21).is_empty());
    assert!(d.acked_writes().is_empty() && d.is_syncing());
    // The read's answer leads to the write; a second read answer is then stale.
    let read = Event::RowsRead {
        table: Table::Wallets,
        result: Ok(vec![]),
    };
    let write = d.step(read.clone(), T0 + 22);
    assert!(matches!(write[..], [Action::Upsert { .. }]), "{write:?}");
    assert!(d.step(read, T0 + 23).is_empty());
    assert!(!d.step(ok_push(Table::Wallets), T0 + 24).is_empty());
    assert_eq!(d.acked_writes().len(), 1);
}
