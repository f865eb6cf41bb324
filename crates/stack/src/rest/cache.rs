//! The schema cache: columns, primary keys and functions of the `public` schema, and the API
//! roles' own settings, read once at start (PostgREST reads the same at boot). Every
//! identifier a request names is checked against it before any SQL is built.

use std::collections::HashMap;
use tokio_postgres::Client;

/// One column and its SQL type as `format_type` spells it (a valid cast target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub sql_type: String,
}

/// A table or view of the `public` schema.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// One input parameter of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub sql_type: String,
}

/// A function callable as `POST /rpc/<name>` (overloads: the first one found).
#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    pub params: Vec<Param>,
    pub returns_set: bool,
    pub returns_void: bool,
}

/// Everything the REST layer knows about the database.
#[derive(Debug, Default)]
pub struct SchemaCache {
    pub tables: HashMap<String, Table>,
    pub functions: HashMap<String, Function>,
    /// `statement_timeout` each role has from `alter role … set`, applied per request because
    /// `set role` alone does not apply a role's settings.
    pub statement_timeouts: HashMap<String, String>,
}

const COLUMNS_SQL: &str = "select c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod) \
     from pg_class c join pg_namespace n on n.oid = c.relnamespace \
     join pg_attribute a on a.attrelid = c.oid \
     where n.nspname = 'public' and c.relkind in ('r', 'v', 'm', 'p', 'f') \
       and a.attnum > 0 and not a.attisdropped order by c.relname, a.attnum";

const PRIMARY_KEYS_SQL: &str = "select c.relname::text, a.attname::text \
     from pg_index i join pg_class c on c.oid = i.indrelid \
     join pg_namespace n on n.oid = c.relnamespace \
     join pg_attribute a on a.attrelid = c.oid and a.attnum = any(i.indkey) \
     where i.indisprimary and n.nspname = 'public'";

/// Input parameters only (modes i, b, v), in declaration order.
const FUNCTIONS_SQL: &str = "select p.proname::text, p.proretset, p.prorettype = 'void'::regtype, \
       coalesce((select array_agg(coalesce(p.proargnames[k.i], '') order by k.i) \
         from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality as k(t, i) \
         where coalesce(p.proargmodes[k.i], 'i') in ('i', 'b', 'v')), '{}'), \
       coalesce((select array_agg(format_type(k.t, null) order by k.i) \
         from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality as k(t, i) \
         where coalesce(p.proargmodes[k.i], 'i') in ('i', 'b', 'v')), '{}') \
     from pg_proc p join pg_namespace n on n.oid = p.pronamespace \
     where n.nspname = 'public' and p.prokind = 'f' order by p.oid";

const ROLE_SETTINGS_SQL: &str = "select r.rolname::text, s.setconfig from pg_db_role_setting s \
     join pg_roles r on r.oid = s.setrole \
     where s.setdatabase in (0, (select oid from pg_database where datname = current_database())) \
     order by s.setdatabase";

impl SchemaCache {
    /// Reads the cache through `db` (any role that can read the catalogs).
    pub async fn load(db: &Client) -> Result<Self, tokio_postgres::Error> {
        let mut cache = SchemaCache::default();
        for row in db.query(COLUMNS_SQL, &[]).await? {
            let name: String = row.get(0);
            let table = cache.tables.entry(name.clone()).or_insert_with(|| Table {
                name,
                ..Table::default()
            });
            table.columns.push(Column {
                name: row.get(1),
                sql_type: row.get(2),
            });
        }
        for row in db.query(PRIMARY_KEYS_SQL, &[]).await? {
            if let Some(table) = cache.tables.get_mut(row.get::<_, &str>(0)) {
                table.primary_key.push(row.get(1));
            }
        }
        for row in db.query(FUNCTIONS_SQL, &[]).await? {
            let names: Vec<String> = row.get(3);
            let types: Vec<String> = row.get(4);
            let function = Function {
                name: row.get(0),
                returns_set: row.get(1),
                returns_void: row.get(2),
                params: names
                    .into_iter()
                    .zip(types)
                    .map(|(name, sql_type)| Param { name, sql_type })
                    .collect(),
            };
            cache
                .functions
                .entry(function.name.clone())
                .or_insert(function);
        }
        cache.statement_timeouts = role_timeouts(db).await?;
        Ok(cache)
    }
}

async fn role_timeouts(db: &Client) -> Result<HashMap<String, String>, tokio_postgres::Error> {
    let mut timeouts = HashMap::new();
    for row in db.query(ROLE_SETTINGS_SQL, &[]).await? {
        let role: String = row.get(0);
        let settings: Vec<String> = row.get::<_, Option<Vec<String>>>(1).unwrap_or_default();
        for setting in settings {
            if let Some(value) = setting.strip_prefix("statement_timeout=") {
                timeouts.insert(role.clone(), value.to_string());
            }
        }
    }
    Ok(timeouts)
}
