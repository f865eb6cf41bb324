//! The server's truth, read by SQL: every row of the five synced tables for a set of users.

use super::OracleError;
use std::collections::HashMap;
use syncstorm_device::{Row, Table};
use uuid::Uuid;

/// Server rows per user, each user's rows sorted by `(table, id)`.
#[derive(Debug, Default)]
pub struct ServerTruth {
    rows: HashMap<Uuid, Vec<Row>>,
}

impl ServerTruth {
    /// Builds the truth from rows (any order); for tests and for other sources.
    pub fn from_rows(rows: impl IntoIterator<Item = Row>) -> ServerTruth {
        let mut truth = ServerTruth::default();
        for row in rows {
            truth.rows.entry(row.user_id).or_default().push(row);
        }
        truth
            .rows
            .values_mut()
            .for_each(|rows| rows.sort_by_key(|r| (r.table, r.id)));
        truth
    }

    /// Removes and returns one user's rows (empty when the server holds none).
    pub fn take(&mut self, user: Uuid) -> Vec<Row> {
        self.rows.remove(&user).unwrap_or_default()
    }
}

/// Reads all rows of `users` from the five synced tables: one query per table, each row as
/// `to_jsonb`, read with the same conversion the devices use for PostgREST rows.
pub async fn read_truth(
    client: &tokio_postgres::Client,
    users: &[Uuid],
) -> Result<ServerTruth, OracleError> {
    let mut rows = Vec::new();
    for table in Table::ALL {
        let sql = format!(
            "select to_jsonb(t) from public.{} t where t.user_id = any($1)",
            table.name()
        );
        let found = client
            .query(&sql, &[&users])
            .await
            .map_err(|source| OracleError::Query { table, source })?;
        for record in found {
            let json: serde_json::Value = record.get(0);
            rows.push(Row::from_json(table, &json)?);
        }
    }
    Ok(ServerTruth::from_rows(rows))
}
