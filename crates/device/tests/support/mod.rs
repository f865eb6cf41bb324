//! An in-memory server for the machine's tests: it answers the machine's actions the way the
//! schema does (delta pages by keyset, upsert, the `sync_push` LWW rule, a token raised per
//! changed row), so whole syncs run without IO.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use syncstorm_device::{
    Action, Device, DeviceKnobs, Event, PageQuery, PushAnswer, RequestFailed, Row, Table, Timer,
};
use uuid::Uuid;

pub const T0: i64 = 1_790_000_000_000;

#[derive(Default)]
pub struct MemServer {
    pub rows: BTreeMap<Uuid, Row>,
    pub token: i64,
    /// Requests answered so far, by kind (for assertions).
    pub checks: u32,
    pub pages: u32,
    pub pushes: u32,
    pub reads: u32,
    /// When set, every request fails.
    pub down: bool,
}

impl MemServer {
    pub fn put(&mut self, row: Row) {
        self.rows.insert(row.id, row);
        self.token += 1;
    }

    pub fn table_rows(&self, table: Table) -> Vec<Row> {
        self.rows
            .values()
            .filter(|r| r.table == table)
            .cloned()
            .collect()
    }

    fn page(&self, q: &PageQuery) -> Vec<Row> {
        let mut rows: Vec<Row> = self
            .rows
            .values()
            .filter(|r| r.table == q.table)
            .filter(|r| match q.after {
                None => true,
                Some(k) => match k.id {
                    None => r.updated_at_ms > k.updated_at_ms,
                    Some(id) => (r.updated_at_ms, r.id) > (k.updated_at_ms, id),
                },
            })
            .cloned()
            .collect();
        rows.sort_by_key(|r| (r.updated_at_ms, r.id));
        rows.truncate(q.limit as usize);
        rows
    }

    /// Answers one request action with the event the driver would feed back; `None` for
    /// actions that are not requests.
    pub fn answer(&mut self, action: &Action) -> Option<Event> {
        let fail = self.down;
        Some(match action {
            Action::CheckToken => {
                self.checks += 1;
                Event::TokenChecked(if fail {
                    Err(RequestFailed)
                } else {
                    Ok(self.token)
                })
            }
            Action::FetchPage(q) => {
                self.pages += 1;
                let result = if fail {
                    Err(RequestFailed)
                } else {
                    Ok(self.page(q))
                };
                Event::PageFetched {
                    table: q.table,
                    result,
                }
            }
            Action::ReadRows { table, ids } => {
                self.reads += 1;
                let found = ids
                    .iter()
                    .filter_map(|id| self.rows.get(id).cloned())
                    .collect();
                let result = if fail { Err(RequestFailed) } else { Ok(found) };
                Event::RowsRead {
                    table: *table,
                    result,
                }
            }
            Action::Upsert { table, rows } => {
                self.pushes += 1;
                if !fail {
                    rows.iter().for_each(|r| self.put(r.clone()));
                }
                let result = if fail {
                    Err(RequestFailed)
                } else {
                    Ok(PushAnswer::default())
                };
                Event::Pushed {
                    table: *table,
                    result,
                }
            }
            Action::PushRpc { table, rows } => {
                self.pushes += 1;
                let result = if fail {
                    Err(RequestFailed)
                } else {
                    Ok(self.push_lww(rows))
                };
                Event::Pushed {
                    table: *table,
                    result,
                }
            }
            _ => return None,
        })
    }

    fn push_lww(&mut self, rows: &[Row]) -> PushAnswer {
        let mut rejected = Vec::new();
        for row in rows {
            match self.rows.get(&row.id) {
                Some(stored) if stored.updated_at_ms >= row.updated_at_ms => rejected.push(row.id),
                _ => self.put(row.clone()),
            }
        }
        PushAnswer { rejected }
    }
}

/// Drives one device against the server: answers every request at once, collects
/// everything the machine said, and keeps timers for the test to fire.
pub struct Rig {
    pub device: Device,
    pub log: Vec<Action>,
    pub timers: BTreeMap<TimerKey, i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerKey(pub u8);

pub fn key(timer: Timer) -> TimerKey {
    TimerKey(match timer {
        Timer::EditDebounce => 0,
        Timer::UsapRetry => 1,
        Timer::Periodic => 2,
    })
}

pub fn user() -> Uuid {
    Uuid::from_u128(0xABCD)
}

impl Rig {
    pub fn new(knobs: DeviceKnobs, skew_ms: i64, seed: u64) -> Rig {
        Rig::with_id(1, knobs, skew_ms, seed)
    }

    pub fn with_id(id: u64, knobs: DeviceKnobs, skew_ms: i64, seed: u64) -> Rig {
        let device = Device::new(id, user(), Arc::new(knobs), skew_ms, seed);
        Rig {
            device,
            log: Vec::new(),
            timers: BTreeMap::new(),
        }
    }

    /// Feeds `event`, then answers requests until the machine waits for a timer or nothing.
    pub fn run(&mut self, server: &mut MemServer, event: Event, now_ms: i64) -> Vec<Action> {
        let mut said = Vec::new();
        let mut queue = std::collections::VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            for action in self.device.step(event, now_ms) {
                match &action {
                    Action::SetTimer { timer, at_ms } => {
                        self.timers.insert(key(*timer), *at_ms);
                    }
                    Action::CancelTimer { timer } => {
                        self.timers.remove(&key(*timer));
                    }
                    _ => {}
                }
                if let Some(answer) = server.answer(&action) {
                    queue.push_back(answer);
                }
                said.push(action);
            }
        }
        self.log.extend(said.iter().cloned());
        said
    }

    /// Fires the earliest pending timer (if any) at its due time; returns the time.
    pub fn fire_next_timer(&mut self, server: &mut MemServer) -> Option<i64> {
        let (&k, &at) = self.timers.iter().min_by_key(|(_, at)| **at)?;
        self.timers.remove(&k);
        let timer = [Timer::EditDebounce, Timer::UsapRetry, Timer::Periodic][k.0 as usize];
        self.run(server, Event::TimerFired(timer), at);
        Some(at)
    }

    /// A full quiet sync at `now_ms` (the oracle's final sync).
    pub fn sync(&mut self, server: &mut MemServer, now_ms: i64) -> Vec<Action> {
        self.run(server, Event::Pulse, now_ms)
    }
}

pub fn count(actions: &[Action], pred: impl Fn(&Action) -> bool) -> usize {
    actions.iter().filter(|a| pred(a)).count()
}

pub fn outcomes(actions: &[Action]) -> Vec<syncstorm_device::SyncOutcome> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SyncFinished { outcome } => Some(*outcome),
            _ => None,
        })
        .collect()
}
