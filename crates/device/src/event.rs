//! What goes into the state machine ([`Event`]) and what comes out ([`Action`]).
//!
//! Time: `now_ms` given to `step` and every `at_ms` in an action are the driver's timeline
//! (true time, epoch milliseconds). Only `updated_at` stamps use the device's skewed clock.

use crate::row::Row;
use crate::snoop::{Probe, Victim};
use crate::table::Table;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Something that happened to the device.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Cold start of the app: triggers a sync.
    AppOpened,
    /// The device lost the network: triggers wait until [`Event::NetworkBack`].
    NetworkLost,
    /// The network came back (the report's "heartbeat check"): triggers a sync.
    NetworkBack,
    /// A Nano-Pulse (realtime event, long-poll answer) for this user: triggers a sync.
    Pulse,
    /// The user made one edit (new row, update or delete; the machine picks which).
    UserEdit,
    /// The user imported `rows` transactions at once: triggers a sync without debounce.
    BulkImport { rows: u32 },
    /// A timer set by [`Action::SetTimer`] is due.
    TimerFired(Timer),
    /// Answer to [`Action::CheckToken`]: the user's `sync_token` (0 when the user has no row).
    TokenChecked(Result<i64, RequestFailed>),
    /// Answer to [`Action::FetchPage`]: rows ordered by `(updated_at, id)`.
    PageFetched {
        table: Table,
        result: Result<Vec<Row>, RequestFailed>,
    },
    /// Answer to [`Action::ReadRows`] (`client_lww`): the server's copies of the asked ids
    /// that exist (any subset, any order).
    RowsRead {
        table: Table,
        result: Result<Vec<Row>, RequestFailed>,
    },
    /// Answer to [`Action::Upsert`] or [`Action::PushRpc`].
    Pushed {
        table: Table,
        result: Result<PushAnswer, RequestFailed>,
    },
    /// Try other users' rows now (`behaviour.snoop_fraction`): answered with one
    /// [`Action::Snoop`] per probe.
    Snoop(Victim),
    /// Answer to [`Action::Snoop`]: the rows the server returned (a refusal is `Ok(vec![])`
    /// when it answered with an error status, which is what RLS should do).
    Snooped(Result<Vec<Row>, RequestFailed>),
}

/// A request failed (transport error, timeout, HTTP error): the driver records the kind, the
/// machine only needs to know it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFailed;

/// The server's answer to a push.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushAnswer {
    /// Ids the server refused because its stored `updated_at` is newer or equal (`server_lww`
    /// only; empty for `upsert` and `client_lww`). Every other pushed row is acknowledged.
    pub rejected: Vec<Uuid>,
}

/// Timers the machine asks for; one of each kind at most, a new `SetTimer` replaces the old.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timer {
    /// End of the edit debounce.
    EditDebounce,
    /// Next USAP check attempt.
    UsapRetry,
    /// Next `periodic` pulse.
    Periodic,
}

/// What started a sync (for the `sync` latency and per-trigger counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    AppOpen,
    NetworkBack,
    Pulse,
    Edit,
    BulkImport,
    Periodic,
}

/// The stage of a sync that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStage {
    Check,
    Pull,
    Push,
}

/// How a sync ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncOutcome {
    Completed {
        /// The server token was not newer than the local token, so no pull ran.
        pull_skipped: bool,
        rows_pulled: u32,
        rows_pushed: u32,
    },
    Failed {
        stage: SyncStage,
    },
}

/// Where a delta page starts: rows with `(updated_at, id) > (updated_at_ms, id)` in
/// `(updated_at, id)` order. `id: None` means `updated_at > updated_at_ms` (first page of a pull,
/// from the table's cursor); later pages of the same pull carry the last row's id so that rows
/// sharing the boundary timestamp are neither skipped nor fetched twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyset {
    pub updated_at_ms: i64,
    pub id: Option<Uuid>,
}

/// One delta page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery {
    pub table: Table,
    /// `None`: from the beginning (the table was never pulled).
    pub after: Option<Keyset>,
    pub limit: u32,
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A sync begins; `triggered_at_ms` is when its (first) trigger arrived.
    SyncStarted {
        trigger: Trigger,
        triggered_at_ms: i64,
    },
    /// Read the user's `sync_token`; answer with [`Event::TokenChecked`].
    CheckToken,
    /// Fetch one delta page; answer with [`Event::PageFetched`].
    FetchPage(PageQuery),
    /// Read the server's copies of these rows (`client_lww`); answer with [`Event::RowsRead`].
    ReadRows { table: Table, ids: Vec<Uuid> },
    /// PostgREST upsert merging on `id`; answer with [`Event::Pushed`].
    Upsert { table: Table, rows: Vec<Row> },
    /// Call the `sync_push` RPC (`server_lww`); answer with [`Event::Pushed`].
    PushRpc { table: Table, rows: Vec<Row> },
    /// Fire [`Event::TimerFired`] at `at_ms` (replaces a pending timer of the same kind).
    SetTimer { timer: Timer, at_ms: i64 },
    /// Forget a pending timer of this kind.
    CancelTimer { timer: Timer },
    /// The first sync completed: open the pulse channel (websocket or long poll) now, and keep
    /// it open (reconnecting per the retry policy) until the run ends.
    OpenPulse,
    /// The sync ended.
    SyncFinished { outcome: SyncOutcome },
    /// Send this attempt on another user's rows; answer with [`Event::Snooped`].
    Snoop(Probe),
}

/// A write the server acknowledged, kept for the oracle: the greatest `updated_at` this device
/// had acknowledged per row, with the content it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckedWrite {
    pub table: Table,
    pub id: Uuid,
    pub updated_at_ms: i64,
    pub value: i64,
    pub deleted: bool,
}

impl AckedWrite {
    /// The write `row` made in `table`.
    pub fn of(table: Table, row: &Row) -> AckedWrite {
        AckedWrite {
            table,
            id: row.id,
            updated_at_ms: row.updated_at_ms,
            value: row.value,
            deleted: row.deleted,
        }
    }
}
