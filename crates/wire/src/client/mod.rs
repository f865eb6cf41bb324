//! Thin Supabase clients for the simulated devices: [`AuthClient`] (GoTrue), [`RestClient`]
//! (PostgREST) and [`RealtimeClient`] (Phoenix websocket). They know nothing of devices or
//! metrics; every failure is a [`ClientError`] with a small [`ErrorKind`](crate::error::ErrorKind).
//!
//! HTTP: our own small HTTP/1.1 client for `http://` targets (see `http`), reqwest for
//! `https://`. Memory: with the per-device connection model each device owns a pool of
//! ~100 bytes plus its idle keep-alive connection (a socket; buffers are freed while idle);
//! `cargo bench --bench device_memory` measures the whole device.

mod auth;
mod error;
mod http;
mod http1;
mod pool;
mod realtime;
mod realtime_socket;
mod realtime_upgrade;
mod rest;
mod tcp;
mod transport;

pub use auth::{AuthClient, Session};
pub use error::{ClientError, io_kind};
pub use http::{ConnectionModel, Endpoint, HttpClient, HttpClients, HttpOptions, http_client};
pub use realtime::{RealtimeClient, RealtimeEvent, RealtimeOptions, ReconnectPolicy, Subscription};
pub use rest::{PushEntry, RestClient, RestWrite, SyncPushAnswer, iso_millis, parse_iso_millis};

#[cfg(test)]
mod realtime_tests;
