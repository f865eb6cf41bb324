//! Thin Supabase clients for the simulated devices: [`AuthClient`] (GoTrue), [`RestClient`]
//! (PostgREST) and [`RealtimeClient`] (Phoenix websocket). They know nothing of devices or
//! metrics; every failure is a [`ClientError`] with a small [`ErrorKind`](crate::postgrest::ErrorKind).
//!
//! Memory: with the per-device connection model each device owns a `reqwest::Client` (its own
//! pool); see `benches` / the report for the measured cost per device.

mod auth;
mod error;
mod http;
mod realtime;
mod realtime_socket;
mod rest;

pub use auth::{AuthClient, Session};
pub use error::{ClientError, io_kind};
pub use http::{ConnectionModel, Endpoint, HttpClients, HttpOptions, http_client};
pub use realtime::{RealtimeClient, RealtimeEvent, RealtimeOptions, ReconnectPolicy, Subscription};
pub use rest::{PushEntry, RestClient, SyncPushAnswer, iso_millis, parse_iso_millis};

#[cfg(test)]
mod realtime_tests;
