//! Carrying out a snooping device's probes (`syncstorm_device::snoop`) with the device's own
//! JWT on the normal REST path. A refusal (any error status: 401, 403, 404, PostgreSQL's
//! 42501 as 403) is the answer RLS should give, so it is an empty answer, not a failure; only
//! a request that never got an answer (offline, timeout) fails.

use serde_json::Value;
use syncstorm_device::{Event, Probe, RequestFailed, Row, Table};
use syncstorm_wire::client::{ClientError, RestClient, RestWrite};

/// The probe's request; its answer as the machine's event.
pub(crate) async fn perform(
    probe: &Probe,
    rest: &RestClient,
    jwt: &str,
) -> Result<Event, ClientError> {
    let answer = match probe {
        Probe::ReadUnfiltered { table } => {
            rest.select(jwt, &format!("{}?select=*&limit=1000", table.name()))
                .await
        }
        Probe::ReadByUser { table, user_id } => {
            let query = format!("{}?select=*&user_id=eq.{user_id}", table.name());
            rest.select(jwt, &query).await
        }
        Probe::Update { row } => {
            let mut body = row.to_json();
            if let Value::Object(fields) = &mut body {
                fields.remove("id");
                fields.remove("user_id");
            }
            let query = format!("{}?id=eq.{}", row.table.name(), row.id);
            rest.write_returning(jwt, RestWrite::Update, &query, Some(&body))
                .await
        }
        Probe::Upsert { row } | Probe::Insert { row } => {
            let body = Value::Array(vec![row.to_json()]);
            rest.write_returning(jwt, RestWrite::Upsert, row.table.name(), Some(&body))
                .await
        }
        Probe::Delete { table, id } => {
            let query = format!("{}?id=eq.{id}", table.name());
            rest.write_returning(jwt, RestWrite::Delete, &query, None)
                .await
        }
    };
    match answer {
        Ok(rows) => Ok(Event::Snooped(Ok(decode(probe_table(probe), &rows)))),
        Err(e) if e.status.is_some() => {
            tracing::debug!(
                status = e.status,
                code = e.code.as_deref(),
                "snoop probe refused"
            );
            Ok(Event::Snooped(Ok(Vec::new())))
        }
        Err(e) => Err(e),
    }
}

/// The answer for a probe that got no answer.
pub(crate) fn failure_event() -> Event {
    Event::Snooped(Err(RequestFailed))
}

fn probe_table(probe: &Probe) -> Table {
    match probe {
        Probe::ReadUnfiltered { table }
        | Probe::ReadByUser { table, .. }
        | Probe::Delete { table, .. } => *table,
        Probe::Update { row } | Probe::Upsert { row } | Probe::Insert { row } => row.table,
    }
}

/// The rows of an answer; one the device cannot read as a row still counts when it names
/// an owner, so a leak cannot hide behind an odd column.
fn decode(table: Table, rows: &[Value]) -> Vec<Row> {
    rows.iter()
        .filter_map(|v| {
            Row::from_json(table, v).ok().or_else(|| {
                let owner = v.get("user_id")?.as_str()?.parse().ok()?;
                Some(Row {
                    table,
                    id: uuid::Uuid::nil(),
                    user_id: owner,
                    updated_at_ms: 0,
                    deleted: false,
                    refs: [None; 3],
                    value: 0,
                })
            })
        })
        .collect()
}
