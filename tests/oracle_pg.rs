//! The oracle against real PostgreSQL: two devices sync through a minimal SQL driver (the
//! schema's own `sync_push`), the oracle reads the server's rows by SQL and finds them clean;
//! then the server is altered behind the devices' backs and each anomaly is named.

use std::sync::Arc;
use syncstorm::oracle::{AnomalyKind, verify};
use syncstorm_device::{
    Action, Device, DeviceKnobs, Event, PageQuery, PushAnswer, PushMode, Row, Table,
};
use syncstorm_stack::postgres::shared_test_cluster;
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

const T0: i64 = 1_790_000_000_000;

async fn connect() -> Client {
    let url = shared_test_cluster().superuser_url();
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

/// Carries out the device's actions with SQL until it is idle.
async fn run(client: &Client, device: &mut Device, event: Event, now: i64) {
    let mut pending = device.step(event, now);
    while !pending.is_empty() {
        let mut next = Vec::new();
        for action in pending {
            if let Some(answer) = answer(client, device.user_id(), &action).await {
                next.extend(device.step(answer, now));
            }
        }
        pending = next;
    }
}

async fn answer(client: &Client, user: Uuid, action: &Action) -> Option<Event> {
    Some(match action {
        Action::CheckToken => {
            let sql = "select coalesce(max(sync_token), 0) from public.user_sync_tokens \
                       where user_id = $1";
            let token: i64 = client.query_one(sql, &[&user]).await.expect("token").get(0);
            Event::TokenChecked(Ok(token))
        }
        Action::FetchPage(q) => Event::PageFetched {
            table: q.table,
            result: Ok(page(client, user, q).await),
        },
        Action::PushRpc { table, rows } => {
            let body = syncstorm_device::sync_push_body(rows)["rows"].clone();
            let sql = "select public.sync_push($1::text::jsonb)";
            let reply: serde_json::Value = client
                .query_one(sql, &[&body.to_string()])
                .await
                .expect("sync_push")
                .get(0);
            let rejected = reply["lost"]
                .as_array()
                .expect("lost ids")
                .iter()
                .map(|id| Uuid::parse_str(id.as_str().unwrap()).unwrap())
                .collect();
            Event::Pushed {
                table: *table,
                result: Ok(PushAnswer { rejected }),
            }
        }
        _ => return None,
    })
}

/// The delta page by keyset, as the driver asks PostgREST for it.
async fn page(client: &Client, user: Uuid, q: &PageQuery) -> Vec<Row> {
    let filter = match q.after {
        None => "true",
        Some(k) if k.id.is_none() => "t.updated_at > $2::text::timestamptz",
        Some(_) => "(t.updated_at, t.id) > ($2::text::timestamptz, $3::text::uuid)",
    };
    let sql = format!(
        "select to_jsonb(t) from public.{} t where t.user_id = $1 and {filter} \
         and $2::text is not distinct from $2 and $3::text is not distinct from $3 \
         order by t.updated_at, t.id limit {}",
        q.table.name(),
        q.limit
    );
    let after = q
        .after
        .map(|k| syncstorm_device::row::format_timestamp_ms(k.updated_at_ms));
    let id = q.after.and_then(|k| k.id).map(|id| id.to_string());
    let rows = client
        .query(&sql, &[&user, &after, &id])
        .await
        .expect("page");
    rows.iter()
        .map(|r| Row::from_json(q.table, &r.get::<_, serde_json::Value>(0)).expect("row"))
        .collect()
}

fn knobs() -> Arc<DeviceKnobs> {
    let mut knobs = DeviceKnobs::default();
    knobs.push.mode = PushMode::ServerLww;
    knobs.push.batch_size = 4;
    knobs.pull.page_size = 3;
    Arc::new(knobs)
}

#[tokio::test]
async fn the_oracle_reads_the_truth_by_sql_and_names_each_anomaly() {
    let client = connect().await;
    let user = Uuid::new_v4();
    client
        .execute("insert into auth.users (id) values ($1)", &[&user])
        .await
        .unwrap();
    let mut a = Device::new(1, user, knobs(), 0, 7);
    let mut b = Device::new(2, user, knobs(), 0, 8);
    run(&client, &mut a, Event::BulkImport { rows: 5 }, T0).await;
    for i in 0..6 {
        run(&client, &mut a, Event::UserEdit, T0 + 100 + i).await;
        run(&client, &mut a, Event::Pulse, T0 + 100 + i).await;
    }
    run(&client, &mut b, Event::AppOpened, T0 + 200).await;
    run(&client, &mut a, Event::Pulse, T0 + 300).await;
    assert!(a.acked_writes().len() >= 8, "a pushed its rows");

    // A session time zone other than UTC: timestamps arrive with an offset.
    client
        .batch_execute("set timezone = 'Asia/Kolkata'")
        .await
        .unwrap();
    let clean = verify(&client, &[&a, &b]).await.expect("oracle");
    assert!(clean.is_clean(), "{clean:#?}");
    assert_eq!((clean.users_checked, clean.devices_checked), (1, 2));
    assert_eq!(clean.server_rows as usize, a.row_count());

    // Behind the devices' backs: a transaction rewritten with an older stamp (A's
    // acknowledged write is lost) and a wallet committed below every cursor (skipped).
    let victim = a
        .acked_writes()
        .iter()
        .find(|w| w.table == Table::Transactions)
        .unwrap()
        .id;
    client
        .execute(
            "update public.transactions set amount = amount + 1, \
             updated_at = updated_at - interval '1 hour' where id = $1",
            &[&victim],
        )
        .await
        .unwrap();
    let late = Uuid::new_v4();
    client
        .execute(
            "insert into public.wallets (id, user_id, name, updated_at) \
             values ($1, $2, 'wallet 1', to_timestamp($3::float8 / 1000))",
            &[&late, &user, &((T0 - 60_000) as f64)],
        )
        .await
        .unwrap();
    let found = verify(&client, &[&a, &b]).await.expect("oracle");
    assert_eq!(found.users_converged, 0);
    assert_eq!(found.lost_updates, 1, "{found:#?}");
    assert_eq!(
        found.skipped_rows, 2,
        "the late wallet, on both devices: {found:#?}"
    );
    let named = |kind, row| {
        found
            .examples
            .iter()
            .any(|e| e.kind == kind && e.row == row)
    };
    assert!(named(AnomalyKind::LostUpdate, victim));
    assert!(named(AnomalyKind::SkippedRow, late));
    assert!(named(AnomalyKind::NotConverged, victim));
}
