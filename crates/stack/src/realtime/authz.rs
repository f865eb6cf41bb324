//! Row visibility like Realtime's `apply_rls`: for each distinct subscriber identity (claims
//! role and `sub`), switch to that role with those `request.jwt.claims` and select the changed
//! rows by primary key, so the table's RLS policies decide. One round trip per poll batch: the
//! checks travel as JSON to a small plpgsql function installed at start.

use std::collections::HashSet;
use tokio_postgres::Client;

/// Installs `syncstorm_realtime.visible_rows(checks jsonb)`. Serialised with an advisory lock
/// because several stacks may share one cluster in tests.
pub const INSTALL_SQL: &str = r#"
begin;
select pg_advisory_xact_lock(7406153);
create schema if not exists syncstorm_realtime;
create or replace function syncstorm_realtime.visible_rows(checks jsonb)
returns table(check_no int, row_no bigint) language plpgsql as $fn$
declare
  c jsonb;
  i int := 0;
  cond text;
begin
  for c in select value from jsonb_array_elements(checks) loop
    if exists (select 1 from pg_roles where rolname = c->>'role')
       and has_table_privilege(c->>'role', (c->>'table')::regclass, 'select') then
      select string_agg(format('t.%I = (k.pk->>%L)::%s', p->>'name', p->>'name', (p->>'type')::regtype), ' and ')
        into cond from jsonb_array_elements(c->'pk') p;
      perform set_config('role', c->>'role', true);
      perform set_config('request.jwt.claims', c->>'claims', true);
      return query execute format(
        'select %s, k.ord from jsonb_array_elements($1) with ordinality k(pk, ord) where exists (select 1 from %s t where %s)',
        i, (c->>'table')::regclass, cond) using c->'rows';
      perform set_config('role', 'none', true);
    end if;
    i := i + 1;
  end loop;
end $fn$;
commit;
"#;

/// All rows of one table to check for one subscriber identity.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckGroup {
    pub role: String,
    pub claims_json: String,
    pub schema: String,
    pub table: String,
    /// Primary-key columns: name and SQL type.
    pub pk: Vec<(String, String)>,
    /// Key values of each row, in `pk` order.
    pub rows: Vec<Vec<String>>,
}

fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

impl CheckGroup {
    fn to_json(&self) -> serde_json::Value {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|values| {
                let obj: serde_json::Map<String, serde_json::Value> = self
                    .pk
                    .iter()
                    .zip(values)
                    .map(|((name, _), v)| (name.clone(), serde_json::Value::String(v.clone())))
                    .collect();
                serde_json::Value::Object(obj)
            })
            .collect();
        let pk: Vec<serde_json::Value> = self
            .pk
            .iter()
            .map(|(n, t)| serde_json::json!({"name": n, "type": t}))
            .collect();
        serde_json::json!({
            "role": self.role,
            "claims": self.claims_json,
            "table": format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table)),
            "pk": pk,
            "rows": rows,
        })
    }
}

/// Runs every group's check in one round trip; returns the visible `(group, row)` pairs
/// (row indexes 0-based, as in `CheckGroup::rows`).
pub async fn visible(
    client: &Client,
    groups: &[CheckGroup],
) -> Result<HashSet<(usize, usize)>, tokio_postgres::Error> {
    if groups.is_empty() {
        return Ok(HashSet::new());
    }
    let checks = serde_json::Value::Array(groups.iter().map(CheckGroup::to_json).collect());
    let rows = client
        .query(
            "select check_no, row_no from syncstorm_realtime.visible_rows($1)",
            &[&checks],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<_, i32>(0) as usize,
                (r.get::<_, i64>(1) - 1) as usize,
            )
        })
        .collect())
}
