//! The PostgREST query string parser, then the SQL built from what it accepted (against the
//! `transactions` table as the schema cache describes it), seeded with the queries the
//! devices send and the shapes supabase-js sends.

use rand::rngs::SmallRng;
use syncstorm_stack::rest::cache::{Column, Table};
use syncstorm_stack::rest::query::QueryParams;
use syncstorm_stack::rest::sql::{self, Returning, Upsert};

use crate::engine::{Target, Verdict, judged, one_sentence};
use crate::mutate::Mutator;

const SEEDS: &[&str] = &[
    "select=*&updated_at=gt.2026-12-05T03:54:06.123Z&order=updated_at.asc,id.asc&limit=500",
    "select=*&or=(updated_at.gt.2026-12-05T03:54:06.123Z,and(updated_at.eq.2026-12-05T03:54:06.123Z,id.gt.8f0c6b1e-3c1f-4b6e-9a51-0d3c1b7e2a90))&order=updated_at.asc,id.asc&limit=500",
    "select=id,updated_at&id=in.(8f0c6b1e-3c1f-4b6e-9a51-0d3c1b7e2a90,0b1e4a2c-9d3f-4e5a-8b7c-6d5e4f3a2b1c)",
    "on_conflict=id&columns=id,user_id,amount,updated_at,deleted",
    "select=sync_token&user_id=eq.8f0c6b1e-3c1f-4b6e-9a51-0d3c1b7e2a90",
    "select=total:amount::text,note&note=not.is.null&note=ilike.*rent*&offset=10&limit=5&order=note.desc.nullsfirst,amount.asc.nullslast",
    "deleted=is.false&amount=gte.10.50&amount=lt.1e3&currency=neq.USD&not.or=(note.like.a*,note.is.null)",
    "and=(amount.gt.0,or(deleted.is.true,note.eq.%22a%2Cb%22))&select=id&apikey=x",
    "id=eq.8f0c6b1e-3c1f-4b6e-9a51-0d3c1b7e2a90&select=*",
];

const TOKENS: &[&str] = &[
    "&",
    "=",
    "eq.",
    "neq.",
    "gt.",
    "gte.",
    "lt.",
    "lte.",
    "like.",
    "ilike.",
    "in.(",
    "is.",
    "not.",
    "or=(",
    "and(",
    "::",
    "%00",
    "%22",
    "%2C",
    "%28",
    "%0A",
    "*",
    "asc",
    "desc",
    "nullsfirst",
    "nullslast",
    "select=",
    "order=",
    "limit=",
    "offset=",
    "on_conflict=",
    "columns=",
    "user_id",
];

pub struct PostgrestQuery {
    mutator: Mutator,
    table: Table,
}

impl Default for PostgrestQuery {
    fn default() -> Self {
        let column = |name: &str, sql_type: &str| Column {
            name: name.to_string(),
            sql_type: sql_type.to_string(),
        };
        PostgrestQuery {
            mutator: Mutator::new(SEEDS.iter().map(|s| s.to_string()).collect(), TOKENS),
            table: Table {
                name: "transactions".to_string(),
                columns: vec![
                    column("id", "uuid"),
                    column("user_id", "uuid"),
                    column("amount", "numeric(14,2)"),
                    column("currency", "character(3)"),
                    column("note", "text"),
                    column("updated_at", "timestamp with time zone"),
                    column("deleted", "boolean"),
                ],
                primary_key: vec!["id".to_string()],
            },
        }
    }
}

impl Target for PostgrestQuery {
    type Input = String;

    fn name(&self) -> &'static str {
        "postgrest-query"
    }

    fn generate(&self, rng: &mut SmallRng) -> String {
        self.mutator.generate(rng)
    }

    fn check(&self, query: &String) -> Result<Verdict, String> {
        let params = match QueryParams::parse(Some(query)) {
            Ok(params) => params,
            Err(e) => return one_sentence(&e),
        };
        let t = &self.table;
        let body = r#"[{"id":"8f0c6b1e-3c1f-4b6e-9a51-0d3c1b7e2a90","amount":1}]"#;
        let upsert = Upsert {
            target: params.on_conflict.clone(),
            merge: true,
        };
        let columns = &params.columns;
        judged(&sql::read(t, &params, true, params.limit.unwrap_or(10), 0))?;
        judged(&sql::insert(
            t,
            &params,
            body.into(),
            columns,
            Some(&upsert),
            Returning::Rows,
        ))?;
        judged(&sql::update(
            t,
            &params,
            body.into(),
            columns,
            Returning::Count,
        ))?;
        judged(&sql::delete(t, &params, Returning::Rows))?;
        Ok(Verdict::Accepted)
    }
}
