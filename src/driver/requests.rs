//! Carrying out the state machine's request actions with the wire clients. Each request is a
//! `Send` future that owns what it needs and returns the machine's answer plus what to record;
//! it fails with `offline` the moment the device's network goes down.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use syncstorm_device::{Action, Event, PushAnswer, RequestFailed, Row, Table, sync_push_body};
use syncstorm_wire::client::{ClientError, RestClient, SyncPushAnswer};
use syncstorm_wire::error::ErrorKind;
use tokio::sync::watch;
use uuid::Uuid;

use super::metrics::op;
use super::network::until_offline;

/// A request in flight.
pub(crate) type Pending = Pin<Box<dyn Future<Output = Finished> + Send>>;

/// A finished request: the machine's answer, and what the driver records.
pub(crate) struct Finished {
    pub event: Event,
    pub table: Option<Table>,
    pub op: &'static str,
    pub took: Duration,
    pub error: Option<ClientError>,
    /// The action, kept so that a request refused for an expired token can be re-issued once
    /// after a refresh.
    pub action: Action,
    /// This is already the re-issue.
    pub retried: bool,
    /// The driver's number for this request (to forget its stand-in failure).
    pub id: u32,
}

/// What every request needs.
#[derive(Clone)]
pub(crate) struct RequestContext {
    pub rest: RestClient,
    pub jwt: Arc<str>,
    pub user_id: Arc<str>,
    pub online: watch::Receiver<bool>,
    pub limiter: Option<Arc<crate::target::RequestLimiter>>,
}

/// Starts the request an action asks for; `None` for actions that are not requests.
pub(crate) fn start(
    action: Action,
    ctx: &RequestContext,
    retried: bool,
    id: u32,
) -> Option<Pending> {
    let (op, table) = match &action {
        Action::CheckToken => (op::TOKEN_CHECK, None),
        Action::FetchPage(q) => (op::PULL, Some(q.table)),
        Action::ReadRows { table, .. } => (op::PUSH_READ, Some(*table)),
        Action::Upsert { table, .. } | Action::PushRpc { table, .. } => (op::PUSH, Some(*table)),
        Action::Snoop(_) => (op::SNOOP, None),
        _ => return None,
    };
    let ctx = ctx.clone();
    Some(Box::pin(async move {
        // The run's request ceiling holds a request back before it is timed: the wait is the
        // harness's own, not the server's.
        if let Some(limiter) = &ctx.limiter {
            limiter.acquire().await;
        }
        let started = Instant::now();
        let online = ctx.online.clone();
        let outcome = if !*online.borrow() {
            Err(ClientError::offline())
        } else {
            tokio::select! {
                outcome = perform(&action, &ctx) => outcome,
                _ = until_offline(online) => Err(ClientError::offline()),
            }
        };
        let took = started.elapsed();
        let (event, error) = match outcome {
            Ok(event) => (event, None),
            Err(e) => (failure_event(&action), Some(e)),
        };
        Finished {
            event,
            table,
            op,
            took,
            error,
            action,
            retried,
            id,
        }
    }))
}

/// The request itself, answered as the machine's event.
async fn perform(action: &Action, ctx: &RequestContext) -> Result<Event, ClientError> {
    let jwt = &*ctx.jwt;
    match action {
        Action::CheckToken => {
            let token = ctx.rest.sync_token(jwt, &ctx.user_id).await?;
            Ok(Event::TokenChecked(Ok(token.unwrap_or(0))))
        }
        Action::FetchPage(q) => {
            let id = q.after.and_then(|k| k.id).map(|id| id.to_string());
            let after = q.after.map(|k| (k.updated_at_ms, id.as_deref()));
            let rows: Vec<Value> = ctx
                .rest
                .delta_page(jwt, q.table.name(), after, q.limit as usize)
                .await?;
            let rows = decode_rows(q.table, &rows)?;
            Ok(Event::PageFetched {
                table: q.table,
                result: Ok(rows),
            })
        }
        Action::ReadRows { table, ids } => {
            let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
            let rows: Vec<Value> = ctx.rest.read_by_ids(jwt, table.name(), &ids, "*").await?;
            let rows = decode_rows(*table, &rows)?;
            Ok(Event::RowsRead {
                table: *table,
                result: Ok(rows),
            })
        }
        Action::Upsert { table, rows } => {
            let body: Vec<Value> = rows.iter().map(Row::to_json).collect();
            ctx.rest.upsert(jwt, table.name(), &body).await?;
            let answer = PushAnswer::default();
            Ok(Event::Pushed {
                table: *table,
                result: Ok(answer),
            })
        }
        Action::PushRpc { table, rows } => {
            let body = sync_push_body(rows);
            let answer: SyncPushAnswer = ctx.rest.rpc(jwt, "sync_push", &body).await?;
            let rejected = answer
                .lost
                .iter()
                .map(|id| Uuid::parse_str(id).map_err(|_| decode_error(&format!("lost id {id}"))))
                .collect::<Result<Vec<Uuid>, ClientError>>()?;
            Ok(Event::Pushed {
                table: *table,
                result: Ok(PushAnswer { rejected }),
            })
        }
        Action::Snoop(probe) => super::snoop::perform(probe, &ctx.rest, jwt).await,
        other => unreachable!("not a request action: {other:?}"),
    }
}

fn decode_rows(table: Table, rows: &[Value]) -> Result<Vec<Row>, ClientError> {
    rows.iter()
        .map(|v| Row::from_json(table, v).map_err(|e| decode_error(&e.to_string())))
        .collect()
}

fn decode_error(what: &str) -> ClientError {
    ClientError::new(ErrorKind::Decode, what.to_owned())
}

/// Whether the driver carries this action out as a request.
pub(crate) fn is_request(action: &Action) -> bool {
    matches!(
        action,
        Action::CheckToken
            | Action::FetchPage(_)
            | Action::ReadRows { .. }
            | Action::Upsert { .. }
            | Action::PushRpc { .. }
            | Action::Snoop(_)
    )
}

/// The machine's answer for a failed request.
pub(crate) fn failure_event(action: &Action) -> Event {
    match action {
        Action::CheckToken => Event::TokenChecked(Err(RequestFailed)),
        Action::FetchPage(q) => Event::PageFetched {
            table: q.table,
            result: Err(RequestFailed),
        },
        Action::ReadRows { table, .. } => Event::RowsRead {
            table: *table,
            result: Err(RequestFailed),
        },
        Action::Upsert { table, .. } | Action::PushRpc { table, .. } => Event::Pushed {
            table: *table,
            result: Err(RequestFailed),
        },
        Action::Snoop(_) => super::snoop::failure_event(),
        other => unreachable!("not a request action: {other:?}"),
    }
}

/// True when PostgREST refused the token because it expired (`PGRST303`, or a 401 saying
/// so): the driver renews the session and re-issues the request once.
pub(crate) fn is_expired_token(error: &ClientError) -> bool {
    error.status == Some(401)
        && (error.code.as_deref() == Some("PGRST303")
            || error.message.to_ascii_lowercase().contains("expired"))
}
