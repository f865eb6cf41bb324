//! Applying the FinOS schema: Supabase compatibility SQL (plain PostgreSQL only), then the
//! migrations in `supabase/migrations`, each once.
//!
//! Applied migrations are recorded in `supabase_migrations.schema_migrations`, the table the
//! Supabase CLI keeps, so a database migrated by the CLI is recognised and not migrated twice.
//! A session advisory lock makes concurrent `apply` calls on one database take turns.

use tokio_postgres::{Client, NoTls};

/// Supabase's image objects the migrations rely on, for a plain PostgreSQL.
pub const COMPAT_SQL: &str = include_str!("../sql/supabase_compat.sql");

/// A migration file: `version` and `name` as the Supabase CLI splits `<version>_<name>.sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    pub version: &'static str,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!(
                "../../../supabase/migrations/",
                $version,
                "_",
                $name,
                ".sql"
            )),
        }
    };
}

/// Every file in `supabase/migrations`, in version order (a test checks the directory).
pub const MIGRATIONS: &[Migration] = &[
    migration!("20261124210000", "finos_tables"),
    migration!("20261124210100", "user_sync_tokens"),
    migration!("20261124210200", "sync_push"),
    migration!("20261124210300", "realtime_publication"),
];

/// The five synced tables in tier order (parents first), then the token table.
pub const SYNCED_TABLES: [&str; 5] = [
    "wallets",
    "channels",
    "categories_user",
    "transactions",
    "plans",
];
pub const TOKEN_TABLE: &str = "user_sync_tokens";

/// Arbitrary key for `pg_advisory_lock`, so concurrent appliers take turns.
const APPLY_LOCK_KEY: i64 = 0x5379_6e63_5374_6f72; // "SyncStor"

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("cannot connect to {url} to apply the schema: {source}")]
    Connect {
        url: String,
        source: tokio_postgres::Error,
    },
    #[error("applying {what} failed: {}", describe(.source))]
    Sql {
        what: String,
        source: tokio_postgres::Error,
    },
}

/// The server's message with its SQLSTATE, position-free, for one-sentence errors.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// Applies compatibility SQL where the `auth` schema is absent, then every migration not yet
/// recorded. Safe to call again, and from several tasks at once.
pub async fn apply(superuser_url: &str) -> Result<(), SchemaError> {
    let (client, connection) = tokio_postgres::connect(superuser_url, NoTls)
        .await
        .map_err(|source| SchemaError::Connect {
            url: superuser_url.to_string(),
            source,
        })?;
    let driver = tokio::spawn(connection);
    let result = apply_locked(&client).await;
    drop(client);
    let _ = driver.await;
    result
}

async fn apply_locked(client: &Client) -> Result<(), SchemaError> {
    let sql = |what: &str| {
        let what = what.to_string();
        move |source| SchemaError::Sql { what, source }
    };
    client
        .execute("select pg_advisory_lock($1)", &[&APPLY_LOCK_KEY])
        .await
        .map_err(sql("the schema lock"))?;
    let result = apply_all(client).await;
    // Session lock; also released when the connection closes.
    let _ = client
        .execute("select pg_advisory_unlock($1)", &[&APPLY_LOCK_KEY])
        .await;
    result
}

async fn apply_all(client: &Client) -> Result<(), SchemaError> {
    if !schema_exists(client, "auth").await? {
        in_transaction(client, COMPAT_SQL, "the Supabase compatibility SQL").await?;
    }
    client
        .batch_execute(
            "create schema if not exists supabase_migrations;
             create table if not exists supabase_migrations.schema_migrations
               (version text primary key, statements text[], name text);",
        )
        .await
        .map_err(|source| SchemaError::Sql {
            what: "supabase_migrations.schema_migrations".into(),
            source,
        })?;
    for migration in MIGRATIONS {
        apply_migration(client, migration).await?;
    }
    Ok(())
}

async fn apply_migration(client: &Client, m: &Migration) -> Result<(), SchemaError> {
    let what = format!("migration {}_{}.sql", m.version, m.name);
    let err = |source| SchemaError::Sql {
        what: what.clone(),
        source,
    };
    let done = client
        .query_opt(
            "select 1 from supabase_migrations.schema_migrations where version = $1",
            &[&m.version],
        )
        .await
        .map_err(err)?;
    if done.is_some() {
        return Ok(());
    }
    let record = format!(
        "insert into supabase_migrations.schema_migrations (version, name, statements) \
         values ({}, {}, array[{}]);",
        quote_literal(m.version),
        quote_literal(m.name),
        quote_literal(m.sql),
    );
    in_transaction(client, &format!("{}\n;{record}", m.sql), &what).await
}

/// Runs a multi-statement script atomically.
async fn in_transaction(client: &Client, script: &str, what: &str) -> Result<(), SchemaError> {
    let wrapped = format!("begin;\n{script}\n;commit;");
    match client.batch_execute(&wrapped).await {
        Ok(()) => Ok(()),
        Err(source) => {
            let _ = client.batch_execute("rollback").await;
            Err(SchemaError::Sql {
                what: what.to_string(),
                source,
            })
        }
    }
}

async fn schema_exists(client: &Client, name: &str) -> Result<bool, SchemaError> {
    let row = client
        .query_one(
            "select exists (select from pg_namespace where nspname = $1)",
            &[&name],
        )
        .await
        .map_err(|source| SchemaError::Sql {
            what: format!("looking up schema {name}"),
            source,
        })?;
    Ok(row.get(0))
}

/// A standard-conforming SQL string literal (`'` doubled; backslashes are literal).
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_matches_the_migrations_directory() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../supabase/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|f| f.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{}_{}.sql", m.version, m.name))
            .collect();
        assert_eq!(files, listed);
    }

    #[test]
    fn literals_double_quotes() {
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
