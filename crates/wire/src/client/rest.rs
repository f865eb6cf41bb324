//! PostgREST client for the sync path: token check, delta pages, upsert, LWW reads, RPC.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{ClientError, Endpoint};
use crate::postgrest::ErrorKind;

/// `…/rest/v1` of one project, called with a user's access token.
#[derive(Debug, Clone)]
pub struct RestClient {
    http: reqwest::Client,
    endpoint: Endpoint,
}

/// One row offered to `sync_push`.
#[derive(Debug, Serialize)]
pub struct PushEntry<'a, T> {
    pub table: &'a str,
    pub row: T,
}

/// `sync_push`'s answer: ids written, and ids whose stored `updated_at` was newer or equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct SyncPushAnswer {
    pub applied: Vec<String>,
    pub lost: Vec<String>,
}

#[derive(Deserialize)]
struct SyncTokenRow {
    sync_token: i64,
}

/// Formats a millisecond Unix time the way PostgREST filters take it: `2026-11-24T21:00:00.123Z`.
pub fn iso_millis(unix_ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(unix_ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => "1970-01-01T00:00:00.000Z".to_owned(),
    }
}

/// Parses a PostgreSQL/PostgREST timestamp (`2026-11-24T21:00:00.123+00:00`, `…Z`) into
/// Unix milliseconds.
/// A timestamp without an offset is taken as UTC.
pub fn parse_iso_millis(text: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()?;
    Some(naive.and_utc().timestamp_millis())
}

impl RestClient {
    pub fn new(http: reqwest::Client, endpoint: Endpoint) -> RestClient {
        RestClient { http, endpoint }
    }

    /// The USAP check: `GET /rest/v1/user_sync_tokens?select=sync_token&user_id=eq.<uid>`.
    /// `None` when the user has no token row yet (no change ever committed).
    pub async fn sync_token(&self, jwt: &str, user_id: &str) -> Result<Option<i64>, ClientError> {
        let path = format!("/rest/v1/user_sync_tokens?select=sync_token&user_id=eq.{user_id}");
        let rows: Vec<SyncTokenRow> = self.get(jwt, &path).await?;
        Ok(rows.first().map(|r| r.sync_token))
    }

    /// One delta page in `(updated_at, id)` order, at most `limit` rows, after `after`:
    /// - `None`: from the beginning;
    /// - `Some((ts, None))`: rows with `updated_at > ts` (the table's pull cursor);
    /// - `Some((ts, Some(id)))`: rows with `(updated_at, id) > (ts, id)` — the next page of
    ///   the same pull, so rows sharing the boundary timestamp are neither skipped nor fetched
    ///   twice. PostgREST would take this as one `or=(…)` filter; the embedded stack has no
    ///   logical operators, so it is two requests with plain filters: the rest of the
    ///   boundary timestamp (`updated_at=eq.ts&id=gt.id`), then `updated_at=gt.ts` if room is left.
    pub async fn delta_page<T: DeserializeOwned>(
        &self,
        jwt: &str,
        table: &str,
        after: Option<(i64, Option<&str>)>,
        limit: usize,
    ) -> Result<Vec<T>, ClientError> {
        const ORDER: &str = "&order=updated_at.asc,id.asc";
        let Some((ts, last_id)) = after else {
            return self
                .get(
                    jwt,
                    &format!("/rest/v1/{table}?select=*{ORDER}&limit={limit}"),
                )
                .await;
        };
        let iso = iso_millis(ts);
        let mut rows: Vec<T> = match last_id {
            Some(id) => {
                let path = format!(
                    "/rest/v1/{table}?select=*&updated_at=eq.{iso}&id=gt.{id}&order=id.asc&limit={limit}"
                );
                self.get(jwt, &path).await?
            }
            None => Vec::new(),
        };
        if rows.len() < limit {
            let room = limit - rows.len();
            let path = format!("/rest/v1/{table}?select=*&updated_at=gt.{iso}{ORDER}&limit={room}");
            rows.extend(self.get::<Vec<T>>(jwt, &path).await?);
        }
        Ok(rows)
    }

    /// Reads rows by id (for `client_lww`: compare before writing). `select` names columns.
    pub async fn read_by_ids<T: DeserializeOwned>(
        &self,
        jwt: &str,
        table: &str,
        ids: &[String],
        select: &str,
    ) -> Result<Vec<T>, ClientError> {
        let path = format!("/rest/v1/{table}?select={select}&id=in.({})", ids.join(","));
        self.get(jwt, &path).await
    }

    /// Upsert merging on the primary key (`Prefer: resolution=merge-duplicates`): the server
    /// takes whatever arrives.
    pub async fn upsert<T: Serialize>(
        &self,
        jwt: &str,
        table: &str,
        rows: &[T],
    ) -> Result<(), ClientError> {
        let request = self
            .authed(
                self.http
                    .post(self.endpoint.url(&format!("/rest/v1/{table}"))),
                jwt,
            )
            .header("Prefer", "resolution=merge-duplicates,return=minimal")
            .json(rows);
        self.send(request).await.map(drop)
    }

    /// `POST /rest/v1/rpc/<function>` with named arguments; a `void` answer (204) is `null`.
    pub async fn rpc<A: Serialize, R: DeserializeOwned>(
        &self,
        jwt: &str,
        function: &str,
        args: &A,
    ) -> Result<R, ClientError> {
        let url = self.endpoint.url(&format!("/rest/v1/rpc/{function}"));
        let request = self.authed(self.http.post(url), jwt).json(args);
        let bytes = self.send(request).await?;
        let body: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(body).map_err(|e| decode_error(function, e))
    }

    /// Server-side LWW push: `POST /rest/v1/rpc/sync_push` with `{"rows": [{"table", "row"}…]}`;
    /// the answer says which ids were applied and which lost.
    pub async fn sync_push<T: Serialize>(
        &self,
        jwt: &str,
        entries: &[PushEntry<'_, T>],
    ) -> Result<SyncPushAnswer, ClientError> {
        #[derive(Serialize)]
        struct Args<'a, 'b, T> {
            rows: &'a [PushEntry<'b, T>],
        }
        self.rpc(jwt, "sync_push", &Args { rows: entries }).await
    }

    async fn get<T: DeserializeOwned>(&self, jwt: &str, path: &str) -> Result<T, ClientError> {
        let request = self.authed(self.http.get(self.endpoint.url(path)), jwt);
        let bytes = self.send(request).await?;
        serde_json::from_slice(&bytes).map_err(|e| decode_error(path, e))
    }

    /// Both headers, as Kong and PostgREST need: `apikey` (Kong) and `Authorization: Bearer`.
    fn authed(&self, request: reqwest::RequestBuilder, jwt: &str) -> reqwest::RequestBuilder {
        request
            .header("apikey", self.endpoint.api_key())
            .bearer_auth(jwt)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<bytes::Bytes, ClientError> {
        let (status, bytes) = super::http::send_and_read(request).await?;
        if (200..300).contains(&status) {
            Ok(bytes)
        } else {
            Err(ClientError::from_postgrest(status, &bytes))
        }
    }
}

fn decode_error(what: &str, e: serde_json::Error) -> ClientError {
    ClientError::new(
        ErrorKind::Decode,
        format!("PostgREST answer on {what}: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_at_millisecond_precision() {
        let ms = 1_795_000_000_123;
        let text = iso_millis(ms);
        assert!(text.ends_with(".123Z"), "{text}");
        assert_eq!(parse_iso_millis(&text), Some(ms));
        assert_eq!(
            parse_iso_millis("2026-11-24T21:00:00.5+00:00"),
            Some(1_795_554_000_500)
        );
        assert_eq!(
            parse_iso_millis("2026-11-24T21:00:00.500"),
            Some(1_795_554_000_500)
        );
        assert_eq!(parse_iso_millis("yesterday"), None);
    }
}
