//! Setup by SQL: users by `COPY` and sessions minted with the stack's JWT secret are what the
//! stack's Auth would have made — `GET /auth/v1/user` takes the access token, the refresh
//! token rotates, a password sign-in works, and cleanup by run tag removes them all.

mod device_support;

use device_support::{WAIT, start_stack};
use syncstorm::fast_setup::{self, SqlSetup, StackAuth};
use syncstorm::population::credentials;
use syncstorm_wire::client::{AuthClient, HttpOptions, http_client};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn minted_sessions_are_accepted_refreshed_and_cleaned_up() {
    let t = start_stack(|_| {}).await;
    let tag = format!("setup-sql-1-{}.syncstorm.test", std::process::id());
    let auth = StackAuth {
        jwt_secret: t.stack.jwt_secret.clone(),
        jwt_expiry: t.stack.shared.config.jwt_expiry,
        bcrypt_cost: t.stack.shared.config.bcrypt_cost,
    };
    let setup = SqlSetup {
        database_url: &t.stack.database_url,
        tag: &tag,
        devices_per_user: 2,
        auth: &auth,
        sessions: true,
    };
    let created = tokio::time::timeout(
        WAIT,
        fast_setup::create(&setup, 0..20, &CancellationToken::new()),
    )
    .await
    .expect("setup in time")
    .expect("setup by SQL");
    assert_eq!((created.ids.len(), created.sessions.len()), (20, 40));

    let http = reqwest::Client::new();
    let session = &created.sessions[5];
    let me: serde_json::Value = http
        .get(format!("{}/auth/v1/user", t.stack.url))
        .header("apikey", &t.stack.anon_key)
        .bearer_auth(&session.access_token)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .expect("the minted access token is accepted")
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], session.user_id);
    assert_eq!(me["email"], credentials(&tag, 2).email);

    let client = AuthClient::new(
        http_client(&HttpOptions::default()).unwrap(),
        t.endpoint.clone(),
    );
    let refreshed = client.refresh(session).await.expect("refresh_token grant");
    assert_eq!(refreshed.user_id, session.user_id);
    assert!(
        client.refresh(session).await.is_err(),
        "a used refresh token is refused, as after a real sign-in"
    );
    let c = credentials(&tag, 19);
    let signed_in = client
        .sign_in_with_password(&c.email, &c.password)
        .await
        .expect("password sign-in with the run's password");
    assert_eq!(signed_in.user_id, created.ids[19].to_string());

    let report = syncstorm::cleanup::cleanup_by_sql(&t.stack.database_url, &tag)
        .await
        .expect("cleanup by SQL");
    assert_eq!(report.users_deleted, 20, "{report:?}");
    let db = t.sql().await;
    let left: i64 = db
        .query_one(
            "select count(*) from auth.refresh_tokens r join auth.sessions s on s.id = r.session_id \
             where s.user_id = any($1)",
            &[&created.ids],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "sessions and refresh tokens went with their users");
}

#[tokio::test]
async fn a_stopped_sql_setup_creates_nobody() {
    let t = start_stack(|_| {}).await;
    let tag = format!("setup-stop-1-{}.syncstorm.test", std::process::id());
    let auth = StackAuth {
        jwt_secret: t.stack.jwt_secret.clone(),
        jwt_expiry: t.stack.shared.config.jwt_expiry,
        bcrypt_cost: t.stack.shared.config.bcrypt_cost,
    };
    let setup = SqlSetup {
        database_url: &t.stack.database_url,
        tag: &tag,
        devices_per_user: 1,
        auth: &auth,
        sessions: true,
    };
    let stop = CancellationToken::new();
    stop.cancel();
    let outcome = fast_setup::create(&setup, 0..50, &stop).await;
    assert!(matches!(
        outcome,
        Err(syncstorm::population::SeedError::Cancelled)
    ));
    let db = t.sql().await;
    let users: i64 = db
        .query_one(
            "select count(*) from auth.users where email like $1",
            &[&format!("%@{tag}")],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 0);
}

#[tokio::test]
async fn bulk_and_trigger_seeding_both_leave_one_token_raise_per_row() {
    use syncstorm::population::{RowSeeding, rows_for, seed_rows};
    let t = start_stack(|_| {}).await;
    let auth = StackAuth {
        jwt_secret: t.stack.jwt_secret.clone(),
        jwt_expiry: t.stack.shared.config.jwt_expiry,
        bcrypt_cost: t.stack.shared.config.bcrypt_cost,
    };
    use syncstorm_scenario::RowDist;
    let mut rows = std::collections::BTreeMap::new();
    rows.insert("wallets".to_string(), RowDist::Fixed { n: 2 });
    rows.insert("channels".to_string(), RowDist::Fixed { n: 3 });
    rows.insert("categories_user".to_string(), RowDist::Fixed { n: 2 });
    rows.insert(
        "transactions".to_string(),
        RowDist::Uniform { min: 0, max: 9 },
    );
    let population = syncstorm_scenario::Population {
        users: 8,
        devices_per_user: 1,
        rows,
        password_hash_cost: 4,
    };
    let stop = CancellationToken::new();
    // Row ids follow the seed: one per pass and per test process on the shared cluster.
    for (how, n) in [(RowSeeding::Bulk, 1u64), (RowSeeding::Triggers, 2)] {
        let seed = u64::from(std::process::id()) * 10 + n;
        let tag = format!("setup-rows-{n}-{}.syncstorm.test", std::process::id());
        let setup = SqlSetup {
            database_url: &t.stack.database_url,
            tag: &tag,
            devices_per_user: 1,
            auth: &auth,
            sessions: false,
        };
        let created = fast_setup::create(&setup, 0..8, &stop).await.unwrap();
        seed_rows(
            &t.stack.database_url,
            &population,
            seed,
            0..8,
            &created.ids,
            how,
            &stop,
        )
        .await
        .expect("rows seeded");
        let db = t.sql().await;
        for (index, id) in created.ids.iter().enumerate() {
            let token: Option<i64> = db
                .query_opt(
                    "select sync_token from public.user_sync_tokens where user_id = $1",
                    &[id],
                )
                .await
                .unwrap()
                .map(|r| r.get(0));
            let r = rows_for(&population, seed, index as u64);
            let rows = (r.wallets + r.channels + r.categories + r.transactions + r.plans) as i64;
            assert_eq!(token.unwrap_or(0), rows, "{how:?} user {index}");
        }
    }
}
