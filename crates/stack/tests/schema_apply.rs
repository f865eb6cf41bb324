//! Applying compat SQL + migrations on a fresh plain PostgreSQL, twice, and what it creates.

use syncstorm_stack::postgres::{Cluster, ClusterOptions, shared_test_cluster};
use syncstorm_stack::schema;

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

#[tokio::test]
async fn apply_twice_and_concurrently_is_fine() {
    let cluster = Cluster::start(ClusterOptions::default()).await.unwrap();
    let url = cluster.superuser_url();
    let (a, b) = tokio::join!(schema::apply(&url), schema::apply(&url));
    a.unwrap();
    b.unwrap();
    schema::apply(&url).await.unwrap();
    let client = connect(&url).await;
    let recorded: i64 = client
        .query_one(
            "select count(*) from supabase_migrations.schema_migrations",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, schema::MIGRATIONS.len() as i64);
}

#[tokio::test]
async fn the_publication_holds_the_six_tables() {
    let client = connect(&shared_test_cluster().superuser_url()).await;
    let rows = client
        .query(
            "select tablename::text from pg_publication_tables \
             where pubname = 'supabase_realtime' and schemaname = 'public' order by 1",
            &[],
        )
        .await
        .unwrap();
    let mut published: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let mut expected: Vec<String> = schema::SYNCED_TABLES
        .iter()
        .map(|t| t.to_string())
        .collect();
    expected.push(schema::TOKEN_TABLE.to_string());
    published.sort();
    expected.sort();
    assert_eq!(published, expected);
}
