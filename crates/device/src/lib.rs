//! The FinOS sync state machine, pure (events in, actions out; no IO, no clock reads), and the
//! device's compact local store. The protocol it runs is `shared/design/sync-protocol.md`.
//!
//! A driver owns one [`Device`], feeds it [`Event`]s with the current true time, and carries
//! out the [`Action`]s it returns (requests, timers), feeding each answer back as an event.

mod activity;
pub mod event;
pub mod knobs;
mod machine;
mod push;
mod retry;
pub mod row;
mod store;
mod sync;
pub mod table;

pub use event::{
    AckedWrite, Action, Event, Keyset, PageQuery, PushAnswer, RequestFailed, SyncOutcome,
    SyncStage, Timer, Trigger,
};
pub use knobs::{
    ConnectionModel, DeviceKnobs, PullKnobs, PulseKnobs, PulseMode, PulseSubscribe, PushKnobs,
    PushMode, RetryPolicy, SyncKnobs, SyncOrder, TierConcurrency, UsapKnobs,
};
pub use machine::{Device, DeviceStats};
pub use row::{Row, RowError, sync_push_body};
pub use table::{FkColumn, Table};
