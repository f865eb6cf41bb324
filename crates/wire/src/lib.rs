//! Supabase wire types, defined once and shared by the simulated devices' clients and the
//! embedded stack, so the two cannot drift apart silently.
//!
//! - [`jwt`]: Supabase access-token claims, HS256 encode/decode.
//! - [`gotrue`]: Auth (GoTrue) request and response bodies.
//! - [`error`]: the small error kind metrics count by.
//! - [`postgrest`]: the PostgREST error body and its SQLSTATE → HTTP status mapping.
//! - [`phoenix`]: Realtime's Phoenix frames (vsn 1.0.0 objects and 2.0.0 arrays) and payloads.
//! - [`client`]: the thin auth, rest and realtime clients the devices use.

pub mod client;
pub mod error;
pub mod gotrue;
pub mod jwt;
pub mod phoenix;
pub mod postgrest;
