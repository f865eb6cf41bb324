//! The tables of the `supabase_realtime` publication as the capture and the joins need them:
//! columns (for filter validation) and whether RLS is on.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tokio_postgres::Client;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub columns: Vec<String>,
    pub rls: bool,
    /// Primary-key columns in key order: name and type oid.
    pub pk: Vec<(String, u32)>,
}

/// Publication tables by `(schema, table)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub tables: HashMap<(String, String), TableInfo>,
}

const QUERY: &str = "
select n.nspname::text, c.relname::text, c.relrowsecurity,
       array(select a.attname::text from pg_attribute a
             where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped order by a.attnum),
       array(select a.attname::text from pg_index i
             join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
             where i.indrelid = c.oid and i.indisprimary
             order by array_position(i.indkey::int2[], a.attnum)),
       array(select a.atttypid::int8 from pg_index i
             join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
             where i.indrelid = c.oid and i.indisprimary
             order by array_position(i.indkey::int2[], a.attnum))
from pg_publication_tables p
join pg_namespace n on n.nspname = p.schemaname
join pg_class c on c.relnamespace = n.oid and c.relname = p.tablename
where p.pubname = $1";

impl Catalog {
    pub async fn load(
        client: &Client,
        publication: &str,
    ) -> Result<Catalog, tokio_postgres::Error> {
        let rows = client.query(QUERY, &[&publication]).await?;
        let tables = rows
            .iter()
            .map(|r| {
                let pk_names: Vec<String> = r.get(4);
                let pk_types: Vec<i64> = r.get(5);
                let pk = pk_names
                    .into_iter()
                    .zip(pk_types.into_iter().map(|oid| oid as u32))
                    .collect();
                let info = TableInfo {
                    rls: r.get(2),
                    columns: r.get(3),
                    pk,
                };
                ((r.get(0), r.get(1)), info)
            })
            .collect();
        Ok(Catalog { tables })
    }

    /// wal2json's `add-tables` value: `schema.table` pairs, special characters escaped.
    /// An empty publication names a table that cannot exist, so the slot is still drained.
    pub fn add_tables(&self) -> String {
        let mut names: Vec<String> = self
            .tables
            .keys()
            .map(|(s, t)| format!("{}.{}", escape(s), escape(t)))
            .collect();
        names.sort();
        if names.is_empty() {
            return "syncstorm_no_schema.syncstorm_no_table".to_string();
        }
        names.join(",")
    }

    pub fn get(&self, schema: &str, table: &str) -> Option<&TableInfo> {
        self.tables.get(&(schema.to_string(), table.to_string()))
    }
}

fn escape(ident: &str) -> String {
    let mut out = String::with_capacity(ident.len());
    for ch in ident.chars() {
        if matches!(ch, ' ' | '\'' | ',' | '.' | '*' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// The latest catalog, swapped whole by the poller and read by joins.
#[derive(Debug, Default)]
pub struct CatalogCell(RwLock<Arc<Catalog>>);

impl CatalogCell {
    pub fn get(&self) -> Arc<Catalog> {
        Arc::clone(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }
    pub fn set(&self, catalog: Catalog) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(catalog);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_tables_escapes_and_never_is_empty() {
        assert_eq!(
            Catalog::default().add_tables(),
            "syncstorm_no_schema.syncstorm_no_table"
        );
        let mut c = Catalog::default();
        let info = TableInfo {
            columns: vec![],
            rls: true,
            pk: vec![],
        };
        c.tables
            .insert(("public".into(), "a.b".into()), info.clone());
        c.tables.insert(("public".into(), "wallets".into()), info);
        assert_eq!(c.add_tables(), "public.a\\.b,public.wallets");
    }
}
