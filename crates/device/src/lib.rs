//! The FinOS sync state machine, pure (events in, actions out; no IO, no clock reads), and the
//! device's compact local store. The protocol it runs is `shared/design/sync-protocol.md`.
//!
//! # The driver's side of the contract
//! A driver owns one [`Device`] and calls [`Device::step`] with each [`Event`] and the current
//! true time (epoch ms). It carries out the returned [`Action`]s in order and feeds each
//! request's answer back as the matching event:
//! - [`Action::CheckToken`] → [`Event::TokenChecked`] (the user's `sync_token`, 0 if no row);
//! - [`Action::FetchPage`] → [`Event::PageFetched`]: rows of the user with
//!   `(updated_at, id) > (after.updated_at_ms, after.id)` (or `updated_at > after.updated_at_ms`
//!   when `after.id` is `None`, everything when `after` is `None`), ordered by
//!   `updated_at, id`, at most `limit`;
//! - [`Action::ReadRows`] → [`Event::RowsRead`]; [`Action::Upsert`] / [`Action::PushRpc`] →
//!   [`Event::Pushed`] (for `sync_push`, the answer's `lost` ids are
//!   [`PushAnswer::rejected`]; [`sync_push_body`] builds the request body);
//! - [`Action::SetTimer`] → [`Event::TimerFired`] at `at_ms` (a new one of the same kind
//!   replaces the old); [`Action::OpenPulse`] → open the realtime channel (or long poll) and
//!   send [`Event::Pulse`] for every change; `SyncStarted` / `SyncFinished` are for metrics.
//!
//! Any failed request is answered with `Err(RequestFailed)`; answers the machine no longer
//! waits for are ignored. Randomness (ids, the user's choices, jitter) comes from the seed, so
//! a device given the same events at the same times does the same thing.
//!
//! # Page boundaries
//! A pull pages by keyset `(updated_at, id)`, not by `updated_at` alone: rows sharing the
//! timestamp at a page boundary (a bulk import stamps all its rows alike) are neither skipped
//! nor fetched twice. The stored cursor stays a plain `updated_at`, as the protocol has it;
//! after a full page it stops just below the page's last timestamp, so a pull that fails
//! before the next page still finds the boundary rows next time.

mod activity;
pub mod event;
pub mod finos_columns;
pub mod knobs;
mod machine;
mod push;
mod retry;
pub mod row;
pub mod snoop;
mod store;
mod sync;
pub mod table;

pub use event::{
    AckedWrite, Action, Event, Keyset, PageQuery, PushAnswer, RequestFailed, SyncOutcome,
    SyncStage, Timer, Trigger,
};
pub use knobs::{
    ConnectionModel, DeviceKnobs, PullKnobs, PulseKnobs, PulseMode, PulseSubscribe, PushKnobs,
    PushMode, RetryPolicy, SessionStart, SyncKnobs, SyncOrder, TierConcurrency, UsapKnobs,
};
pub use machine::{Device, DeviceStats};
pub use row::{Row, RowError, sync_push_body};
pub use snoop::{Probe, SNOOP_MARKER, SnoopLog, Victim};
pub use table::{FkColumn, Table};
