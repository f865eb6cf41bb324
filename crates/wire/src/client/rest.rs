//! PostgREST client for the sync path: token check, delta pages, upsert, LWW reads, RPC.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::http::{HttpClient, Method, Request};
use super::{ClientError, Endpoint};
use crate::error::ErrorKind;

/// `…/rest/v1` of one project, called with a user's access token.
#[derive(Debug, Clone)]
pub struct RestClient {
    http: HttpClient,
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
    pub fn new(http: impl Into<HttpClient>, endpoint: Endpoint) -> RestClient {
        RestClient {
            http: http.into(),
            endpoint,
        }
    }

    /// The USAP check: `GET /rest/v1/user_sync_tokens?select=sync_token&user_id=eq.<uid>`.
    /// `None` when the user has no token row yet (no change ever committed).
    pub async fn sync_token(&self, jwt: &str, user_id: &str) -> Result<Option<i64>, ClientError> {
        const PATH: &str = "/rest/v1/user_sync_tokens?select=sync_token&user_id=eq.";
        let first: FirstRow = self.get(jwt, &[PATH, user_id]).await?;
        Ok(first.0.map(|r| r.sync_token))
    }

    /// One delta page in `(updated_at, id)` order, at most `limit` rows, after `after`, in one
    /// request:
    /// - `None`: from the beginning;
    /// - `Some((ts, None))`: rows with `updated_at > ts` (the table's pull cursor);
    /// - `Some((ts, Some(id)))`: rows with `(updated_at, id) > (ts, id)` — the next page of
    ///   the same pull, so rows sharing the boundary timestamp are neither skipped nor fetched
    ///   twice: PostgREST's `or=(updated_at.gt.ts,and(updated_at.eq.ts,id.gt.id))`.
    pub async fn delta_page<T: DeserializeOwned>(
        &self,
        jwt: &str,
        table: &str,
        after: Option<(i64, Option<&str>)>,
        limit: usize,
    ) -> Result<Vec<T>, ClientError> {
        let filter = match after {
            None => String::new(),
            Some((ts, None)) => format!("&updated_at=gt.{}", iso_millis(ts)),
            Some((ts, Some(id))) => {
                let iso = iso_millis(ts);
                format!("&or=(updated_at.gt.{iso},and(updated_at.eq.{iso},id.gt.{id}))")
            }
        };
        let path =
            format!("/rest/v1/{table}?select=*{filter}&order=updated_at.asc,id.asc&limit={limit}");
        self.get(jwt, &[&path]).await
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
        self.get(jwt, &[&path]).await
    }

    /// Upsert merging on the primary key (`Prefer: resolution=merge-duplicates`): the server
    /// takes whatever arrives.
    pub async fn upsert<T: Serialize>(
        &self,
        jwt: &str,
        table: &str,
        rows: &[T],
    ) -> Result<(), ClientError> {
        let request = Request {
            method: Method::Post,
            path: &["/rest/v1/", table],
            bearer: Some(jwt),
            prefer: Some("resolution=merge-duplicates,return=minimal"),
            json: Some(to_json(rows)?),
        };
        self.send(request, |_| Ok(())).await
    }

    /// `POST /rest/v1/rpc/<function>` with named arguments; a `void` answer (204) is `null`.
    pub async fn rpc<A: Serialize, R: DeserializeOwned>(
        &self,
        jwt: &str,
        function: &str,
        args: &A,
    ) -> Result<R, ClientError> {
        let request = Request {
            method: Method::Post,
            path: &["/rest/v1/rpc/", function],
            bearer: Some(jwt),
            prefer: None,
            json: Some(to_json(args)?),
        };
        self.send(request, |body| {
            let body: &[u8] = if body.is_empty() { b"null" } else { body };
            serde_json::from_slice(body).map_err(|e| decode_error(function, e))
        })
        .await
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

    /// Any `GET /rest/v1/<path_and_query>` answering rows (the snoop probes' reads).
    pub async fn select<T: DeserializeOwned>(
        &self,
        jwt: &str,
        path_and_query: &str,
    ) -> Result<Vec<T>, ClientError> {
        self.get(jwt, &["/rest/v1/", path_and_query]).await
    }

    /// A write answering the rows it touched (`return=representation`): `PATCH` with `body`
    /// or `DELETE` of `/rest/v1/<path_and_query>`, or a merging upsert (`POST` with
    /// `resolution=merge-duplicates`) of the rows in `body`.
    pub async fn write_returning<T: DeserializeOwned>(
        &self,
        jwt: &str,
        write: RestWrite,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Vec<T>, ClientError> {
        let (method, prefer) = match write {
            RestWrite::Update => (Method::Patch, "return=representation"),
            RestWrite::Delete => (Method::Delete, "return=representation"),
            RestWrite::Upsert => (
                Method::Post,
                "resolution=merge-duplicates,return=representation",
            ),
        };
        let request = Request {
            method,
            path: &["/rest/v1/", path_and_query],
            bearer: Some(jwt),
            prefer: Some(prefer),
            json: body.map(to_json).transpose()?,
        };
        self.send(request, |body| {
            serde_json::from_slice(body).map_err(|e| decode_error(path_and_query, e))
        })
        .await
    }

    /// A GET with both headers Kong and PostgREST need (`apikey`, `Authorization: Bearer`),
    /// its JSON answer decoded straight from the connection's buffer.
    async fn get<T: DeserializeOwned>(&self, jwt: &str, path: &[&str]) -> Result<T, ClientError> {
        let request = Request {
            method: Method::Get,
            path,
            bearer: Some(jwt),
            prefer: None,
            json: None,
        };
        self.send(request, |body| {
            serde_json::from_slice(body).map_err(|e| decode_error(&path.concat(), e))
        })
        .await
    }

    /// Sends; a 2xx body goes to `decode`, anything else is decoded as a PostgREST error.
    async fn send<R>(
        &self,
        request: Request<'_>,
        decode: impl FnOnce(&[u8]) -> Result<R, ClientError>,
    ) -> Result<R, ClientError> {
        self.http
            .exchange(&self.endpoint, request, |status, body| {
                if (200..300).contains(&status) {
                    decode(body)
                } else {
                    Err(ClientError::from_postgrest(status, body))
                }
            })
            .await?
    }
}

/// The write of [`RestClient::write_returning`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestWrite {
    Update,
    Upsert,
    Delete,
}

/// The first row of a JSON array (the rest skipped), without collecting them.
struct FirstRow(Option<SyncTokenRow>);

impl<'de> Deserialize<'de> for FirstRow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<FirstRow, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = FirstRow;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of rows")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<FirstRow, A::Error> {
                let first = seq.next_element::<SyncTokenRow>()?;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(FirstRow(first))
            }
        }
        d.deserialize_seq(Visitor)
    }
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(value)
        .map_err(|e| ClientError::new(ErrorKind::Decode, format!("cannot encode the body: {e}")))
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
