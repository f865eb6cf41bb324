//! The device: its public API, the triggers, and the dispatch of events to the sync flow
//! (`sync.rs`). Pure: events in, actions out; no IO, no clock reads; randomness from a seeded
//! small RNG inside.

use crate::activity::User;
use crate::event::{AckedWrite, Action, Event, Timer, Trigger};
use crate::knobs::{DeviceKnobs, PulseMode};
use crate::row::Row;
use crate::snoop::{self, SnoopLog, Victim};
use crate::store::LocalStore;
use crate::sync::SyncRun;
use crate::table::Table;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

/// Counters a device keeps about itself (the driver may read them into metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeviceStats {
    pub syncs_started: u32,
    pub syncs_completed: u32,
    pub syncs_failed: u32,
    /// Completed syncs whose check found `server_token <= local_token`.
    pub pulls_skipped: u32,
    pub check_attempts_failed: u32,
    pub rows_pulled: u64,
    pub rows_pushed: u64,
    /// Pulled rows that lost to a newer-or-equal dirty local row.
    pub local_wins: u64,
    /// Pushed rows the server (or the `client_lww` read) refused as not newer.
    pub rows_refused: u64,
    pub edits: u64,
    pub rows_written_locally: u64,
    /// Attempts on other users' rows (`behaviour.snoop_fraction`).
    pub snoop_attempts: u32,
    /// Rows of other users those attempts got back.
    pub snoop_read_leaks: u64,
    /// The device's own rows they got back: evidence that the reads reached the table.
    pub snoop_own_rows: u64,
}

/// One simulated device of one user.
#[derive(Debug)]
pub struct Device {
    id: u64,
    user_id: Uuid,
    pub(crate) knobs: Arc<DeviceKnobs>,
    clock_skew_ms: i64,
    pub(crate) rng: SmallRng,
    pub(crate) store: LocalStore,
    online: bool,
    /// The sync in progress, if any.
    pub(crate) run: Option<Box<SyncRun>>,
    /// A trigger that arrived during a sync (or offline): sync again after.
    pub(crate) again: Option<(Trigger, i64)>,
    debounce_due: Option<i64>,
    pub(crate) pulse_opened: bool,
    pub(crate) periodic_armed: bool,
    pub(crate) stats: DeviceStats,
    /// Which rows its snoop writes went after; `None` for the devices that never snoop.
    snoop: Option<Box<SnoopLog>>,
}

impl Device {
    /// A device that has never synced. `clock_skew_ms` is added to true time for every
    /// `updated_at` it writes; `seed` makes all its random choices reproducible.
    pub fn new(
        id: u64,
        user_id: Uuid,
        knobs: Arc<DeviceKnobs>,
        clock_skew_ms: i64,
        seed: u64,
    ) -> Device {
        Device {
            id,
            user_id,
            knobs,
            clock_skew_ms,
            rng: SmallRng::seed_from_u64(seed),
            store: LocalStore::default(),
            online: true,
            run: None,
            again: None,
            debounce_due: None,
            pulse_opened: false,
            periodic_armed: false,
            stats: DeviceStats::default(),
            snoop: None,
        }
    }

    /// Feeds one event at true time `now_ms`; returns what the driver must do, in order.
    pub fn step(&mut self, event: Event, now_ms: i64) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::AppOpened => self.trigger(Trigger::AppOpen, now_ms, &mut out),
            Event::NetworkLost => self.online = false,
            Event::NetworkBack => {
                self.online = true;
                // Triggers held while offline are answered by this one sync, timed from now.
                self.again = None;
                self.trigger(Trigger::NetworkBack, now_ms, &mut out);
            }
            Event::Pulse => self.trigger(Trigger::Pulse, now_ms, &mut out),
            Event::UserEdit => self.user_edit(now_ms, &mut out),
            Event::BulkImport { rows } => {
                let written = self.user(now_ms).bulk_import(rows);
                self.stats.rows_written_locally += u64::from(written);
                self.trigger(Trigger::BulkImport, now_ms, &mut out);
            }
            Event::TimerFired(timer) => self.timer_fired(timer, now_ms, &mut out),
            Event::TokenChecked(result) => self.on_token(result, now_ms, &mut out),
            Event::PageFetched { table, result } => self.on_page(table, result, now_ms, &mut out),
            Event::RowsRead { table, result } => self.on_rows_read(table, result, now_ms, &mut out),
            Event::Pushed { table, result } => self.on_pushed(table, result, now_ms, &mut out),
            Event::Snoop(victim) => self.snoop(victim, now_ms, &mut out),
            Event::Snooped(result) => {
                let rows = result.unwrap_or_default();
                let leaked = snoop::leaked(&rows, self.user_id);
                self.stats.snoop_read_leaks += leaked;
                self.stats.snoop_own_rows += rows.len() as u64 - leaked;
            }
        }
        out
    }

    /// Starts a sync, or remembers the trigger for "sync again after" when one is running or
    /// the device is offline (the first held trigger and its time are kept).
    pub(crate) fn trigger(&mut self, trigger: Trigger, now_ms: i64, out: &mut Vec<Action>) {
        if self.run.is_some() || !self.online {
            self.again.get_or_insert((trigger, now_ms));
            return;
        }
        self.start_sync(trigger, now_ms, out);
    }

    /// Sends every probe at once (they are independent of the sync and of each other) and
    /// logs the rows the writes went after.
    fn snoop(&mut self, victim: Victim, now_ms: i64, out: &mut Vec<Action>) {
        let planted = uuid::Builder::from_random_bytes(self.rng.random()).into_uuid();
        let skewed = now_ms.saturating_add(self.clock_skew_ms);
        let (probes, log) = snoop::probes(victim, planted, skewed);
        self.stats.snoop_attempts += probes.len() as u32;
        let kept = self.snoop.get_or_insert_with(Box::default);
        kept.attacked.extend(log.attacked);
        kept.planted.extend(log.planted);
        out.extend(probes.into_iter().map(Action::Snoop));
    }

    fn user_edit(&mut self, now_ms: i64, out: &mut Vec<Action>) {
        let written = self.user(now_ms).edit();
        self.stats.edits += 1;
        self.stats.rows_written_locally += u64::from(written);
        let due = now_ms.saturating_add(self.knobs.edit_debounce.as_millis() as i64);
        self.debounce_due = Some(due);
        out.push(Action::SetTimer {
            timer: Timer::EditDebounce,
            at_ms: due,
        });
    }

    fn timer_fired(&mut self, timer: Timer, now_ms: i64, out: &mut Vec<Action>) {
        match timer {
            Timer::EditDebounce => {
                // A stale firing (the debounce was pushed back by a later edit) is ignored.
                if self.debounce_due.is_some_and(|due| now_ms >= due) {
                    self.debounce_due = None;
                    self.trigger(Trigger::Edit, now_ms, out);
                }
            }
            Timer::UsapRetry => self.on_retry_timer(now_ms, out),
            Timer::Periodic => {
                if self.knobs.pulse.mode == PulseMode::Periodic && self.periodic_armed {
                    self.arm_periodic(now_ms, out);
                    self.trigger(Trigger::Periodic, now_ms, out);
                }
            }
        }
    }

    pub(crate) fn arm_periodic(&mut self, now_ms: i64, out: &mut Vec<Action>) {
        self.periodic_armed = true;
        let at_ms = now_ms.saturating_add(self.knobs.pulse.interval.as_millis() as i64);
        out.push(Action::SetTimer {
            timer: Timer::Periodic,
            at_ms,
        });
    }

    fn user(&mut self, now_ms: i64) -> User<'_> {
        User {
            store: &mut self.store,
            rng: &mut self.rng,
            user_id: self.user_id,
            now_ms: now_ms.saturating_add(self.clock_skew_ms),
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn user_id(&self) -> Uuid {
        self.user_id
    }

    pub fn knobs(&self) -> &DeviceKnobs {
        &self.knobs
    }

    pub fn clock_skew_ms(&self) -> i64 {
        self.clock_skew_ms
    }

    pub fn is_online(&self) -> bool {
        self.online
    }

    pub fn is_syncing(&self) -> bool {
        self.run.is_some()
    }

    /// Whether a trigger is waiting for the running sync (or the network) to finish.
    pub fn sync_again_pending(&self) -> bool {
        self.again.is_some()
    }

    /// The local rows of `table` (tombstones included), ordered by id.
    pub fn rows(&self, table: Table) -> impl Iterator<Item = Row> + '_ {
        let user_id = self.user_id;
        self.store
            .entries(table)
            .iter()
            .map(move |e| e.to_row(table, user_id))
    }

    pub fn row(&self, table: Table, id: Uuid) -> Option<Row> {
        self.store
            .get(table, id)
            .map(|e| e.to_row(table, self.user_id))
    }

    /// Whether the row is waiting to be pushed.
    pub fn is_dirty(&self, table: Table, id: Uuid) -> bool {
        self.store.get(table, id).is_some_and(|e| e.dirty())
    }

    /// The table's pull cursor: the greatest `updated_at` pulled, `None` before the first pull.
    pub fn cursor(&self, table: Table) -> Option<i64> {
        self.store.cursor(table)
    }

    /// The USAP token of the last completed pull, `None` before it.
    pub fn local_token(&self) -> Option<i64> {
        self.store.local_token
    }

    /// Pulled rows whose parent was missing locally.
    pub fn fk_errors(&self) -> u64 {
        self.store.fk_errors
    }

    /// Per row, the greatest write of this device the server acknowledged, sorted by id.
    pub fn acked_writes(&self) -> &[AckedWrite] {
        self.store.acked()
    }

    /// Writes the server refused as not newer (the first few; `rows_refused` counts all).
    pub fn refused_writes(&self) -> &[AckedWrite] {
        self.store.refused()
    }

    pub fn dirty_count(&self) -> usize {
        self.store.dirty_count()
    }

    pub fn row_count(&self) -> usize {
        self.store.row_count()
    }

    pub fn stats(&self) -> DeviceStats {
        self.stats
    }

    /// The rows this device's snoop writes went after, if it snooped.
    pub fn snoop_log(&self) -> Option<&SnoopLog> {
        self.snoop.as_deref()
    }

    /// Bytes this device occupies: the struct itself plus its heap (rows, acked writes, the
    /// sync in progress).
    pub fn footprint_bytes(&self) -> usize {
        let run = self.run.as_ref().map_or(0, |r| r.heap_bytes());
        size_of::<Device>() + self.store.heap_bytes() + run
    }

    /// Heap bytes of the rows and the acknowledged-write log (what the "plus its rows" of the
    /// 4 KiB goal excludes; both grow with the rows the device holds and wrote).
    pub fn row_bytes(&self) -> usize {
        self.store.heap_bytes()
    }
}
