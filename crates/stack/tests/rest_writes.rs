//! REST writes over real HTTP: insert (object and array), upsert, update, delete, RPC, the
//! sync token rising, and constraint errors with PostgREST's status mapping.

mod stack_support;

use reqwest::Method;
use serde_json::{Value, json};
use stack_support::{TestStack, TestUser, boot, status_json};
use uuid::Uuid;

async fn sync_token(s: &TestStack, user: &TestUser) -> i64 {
    let path = format!(
        "/rest/v1/user_sync_tokens?select=sync_token&user_id=eq.{}",
        user.id
    );
    let (status, body) = status_json(s.user(user, Method::GET, &path).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    body.get(0)
        .map_or(0, |row| row["sync_token"].as_i64().unwrap())
}

#[tokio::test]
async fn insert_returns_minimal_or_representation() {
    let s = boot().await;
    let user = s.new_user().await;
    let id = Uuid::new_v4();
    let minimal = s
        .user(&user, Method::POST, "/rest/v1/wallets")
        .json(&json!({"id": id, "user_id": user.id, "name": "a"}));
    let (status, body) = status_json(minimal.send().await.unwrap()).await;
    assert_eq!((status, body), (201, Value::Null));
    let rows = json!([{"id": Uuid::new_v4(), "user_id": user.id, "name": "b", "balance": 1.5},
                      {"id": Uuid::new_v4(), "user_id": user.id, "name": "c", "balance": 0}]);
    let full = s
        .user(&user, Method::POST, "/rest/v1/wallets?select=name,balance")
        .header("Prefer", "return=representation")
        .json(&rows);
    let (status, body) = status_json(full.send().await.unwrap()).await;
    assert_eq!(
        (status, body),
        (
            201,
            json!([{"name": "b", "balance": 1.5}, {"name": "c", "balance": 0.0}])
        )
    );
    let empty = s
        .user(&user, Method::POST, "/rest/v1/wallets")
        .json(&json!([]));
    assert_eq!(
        empty.send().await.unwrap().status(),
        201,
        "an empty bulk insert is fine"
    );
    // As in PostgREST (without `missing=default`), a key one object of a bulk insert lacks is null.
    let ragged = json!([{"id": Uuid::new_v4(), "user_id": user.id, "name": "d", "balance": 2},
                        {"id": Uuid::new_v4(), "user_id": user.id, "name": "e"}]);
    let (status, body) = status_json(
        s.user(&user, Method::POST, "/rest/v1/wallets")
            .json(&ragged)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("23502")));
    s.stop().await;
}

#[tokio::test]
async fn upsert_merges_or_ignores_duplicates() {
    let s = boot().await;
    let user = s.new_user().await;
    let id = s.wallet(&user, "before").await;
    let row = json!({"id": id, "user_id": user.id, "name": "merged"});
    let merge = s
        .user(&user, Method::POST, "/rest/v1/wallets?on_conflict=id")
        .header(
            "Prefer",
            "resolution=merge-duplicates,return=representation",
        )
        .json(&row);
    let (status, body) = status_json(merge.send().await.unwrap()).await;
    // Every row updated an existing one: 200, as PostgREST answers (see write_statuses_match_postgrest).
    assert_eq!((status, body[0]["name"].as_str()), (200, Some("merged")));
    let ignored = json!({"id": id, "user_id": user.id, "name": "ignored"});
    let ignore = s
        .user(&user, Method::POST, "/rest/v1/wallets")
        .header("Prefer", "resolution=ignore-duplicates")
        .json(&ignored);
    assert_eq!(ignore.send().await.unwrap().status(), 201);
    let read = format!("/rest/v1/wallets?select=name&id=eq.{id}");
    let (_, body) = status_json(s.user(&user, Method::GET, &read).send().await.unwrap()).await;
    assert_eq!(body, json!([{"name": "merged"}]));
    let plain = s
        .user(&user, Method::POST, "/rest/v1/wallets")
        .json(&ignored);
    let (status, body) = status_json(plain.send().await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("23505")));
    s.stop().await;
}

#[tokio::test]
async fn update_and_delete_with_filters() {
    let s = boot().await;
    let user = s.new_user().await;
    let a = s.wallet(&user, "a").await;
    let b = s.wallet(&user, "b").await;
    let patch = s
        .user(&user, Method::PATCH, &format!("/rest/v1/wallets?id=eq.{a}"))
        .json(&json!({"name": "a2", "balance": 7}));
    assert_eq!(patch.send().await.unwrap().status(), 204);
    let patch = s
        .user(
            &user,
            Method::PATCH,
            &format!("/rest/v1/wallets?id=eq.{b}&select=name"),
        )
        .header("Prefer", "return=representation")
        .json(&json!({"name": "b2"}));
    let (status, body) = status_json(patch.send().await.unwrap()).await;
    assert_eq!((status, body), (200, json!([{"name": "b2"}])));
    let delete = s
        .user(
            &user,
            Method::DELETE,
            &format!("/rest/v1/wallets?id=eq.{a}"),
        )
        .header("Prefer", "return=representation");
    let (status, body) = status_json(delete.send().await.unwrap()).await;
    assert_eq!(
        (
            status,
            body[0]["name"].as_str(),
            body[0]["balance"].as_f64()
        ),
        (200, Some("a2"), Some(7.0))
    );
    let read = format!("/rest/v1/wallets?select=name&user_id=eq.{}", user.id);
    let (_, body) = status_json(s.user(&user, Method::GET, &read).send().await.unwrap()).await;
    assert_eq!(body, json!([{"name": "b2"}]));
    s.stop().await;
}

#[tokio::test]
async fn the_sync_token_rises_on_every_change() {
    let s = boot().await;
    let user = s.new_user().await;
    let t0 = sync_token(&s, &user).await;
    let id = s.wallet(&user, "w").await;
    let t1 = sync_token(&s, &user).await;
    let patch = s
        .user(
            &user,
            Method::PATCH,
            &format!("/rest/v1/wallets?id=eq.{id}"),
        )
        .json(&json!({"name": "w2"}));
    assert_eq!(patch.send().await.unwrap().status(), 204);
    let t2 = sync_token(&s, &user).await;
    let delete = s.user(
        &user,
        Method::DELETE,
        &format!("/rest/v1/wallets?id=eq.{id}"),
    );
    assert_eq!(delete.send().await.unwrap().status(), 204);
    let t3 = sync_token(&s, &user).await;
    assert!(t0 < t1 && t1 < t2 && t2 < t3, "{t0} {t1} {t2} {t3}");
    s.stop().await;
}

#[tokio::test]
async fn rpc_sync_push_applies_newer_rows_and_reports_losers() {
    let s = boot().await;
    let user = s.new_user().await;
    let id = Uuid::new_v4();
    let push = |name: &str, at: &str| json!({"rows": [{"table": "wallets", "row": {"id": id, "user_id": user.id, "name": name, "updated_at": at}}]});
    let call = |body: Value| {
        s.user(&user, Method::POST, "/rest/v1/rpc/sync_push")
            .json(&body)
            .send()
    };
    let (status, body) =
        status_json(call(push("first", "2026-01-01T00:00:02Z")).await.unwrap()).await;
    assert_eq!(
        (status, body["applied"].clone()),
        (200, json!([id])),
        "{body}"
    );
    let (_, body) = status_json(call(push("older", "2026-01-01T00:00:01Z")).await.unwrap()).await;
    assert_eq!(body["lost"], json!([id]));
    let (status, body) = status_json(call(json!({"nope": 1})).await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("PGRST202")));
    let (status, body) = status_json(
        s.user(&user, Method::POST, "/rest/v1/rpc/no_such_fn")
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("PGRST202")));
    let (status, body) =
        status_json(call(json!({"rows": {"not": "an array"}})).await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("22023")));
    s.stop().await;
}

#[tokio::test]
async fn constraint_and_body_errors_map_like_postgrest() {
    let s = boot().await;
    let user = s.new_user().await;
    let orphan =
        json!({"id": Uuid::new_v4(), "user_id": user.id, "wallet_id": Uuid::new_v4(), "name": "c"});
    let (status, body) = status_json(
        s.user(&user, Method::POST, "/rest/v1/channels")
            .json(&orphan)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("23503")),
        "a foreign-key violation is an error"
    );
    let no_name = json!({"id": Uuid::new_v4(), "user_id": user.id});
    let (status, body) = status_json(
        s.user(&user, Method::POST, "/rest/v1/wallets")
            .json(&no_name)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("23502")));
    let cases: [(Method, &str, &str, &str); 5] = [
        (Method::POST, "/rest/v1/wallets", "{\"id\": ", "PGRST102"),
        (Method::POST, "/rest/v1/wallets", "42", "PGRST102"),
        (
            Method::POST,
            "/rest/v1/wallets",
            "{\"nope\": 1}",
            "PGRST204",
        ),
        (
            Method::PATCH,
            "/rest/v1/wallets?name=eq.x",
            "[1]",
            "PGRST102",
        ),
        (
            Method::POST,
            "/rest/v1/rpc/sync_push",
            "not json",
            "PGRST102",
        ),
    ];
    for (method, path, raw, code) in cases {
        let request = s
            .user(&user, method, path)
            .header("Content-Type", "application/json")
            .body(raw);
        let (status, body) = status_json(request.send().await.unwrap()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some(code)),
            "{path} {raw}"
        );
    }
    s.stop().await;
}

/// Status, `Content-Range` and `Preference-Applied` of every write, as PostgREST v14.8 (the
/// compose file's) answers them: `Response.hs` and `RangeQuery.contentRangeH` at that tag.
#[tokio::test]
async fn write_headers_match_postgrest() {
    let s = boot().await;
    let user = s.new_user().await;
    let send = |method: Method, path: &str, prefer: &str, body: Option<Value>| {
        let mut request = s.user(&user, method, path);
        if !prefer.is_empty() {
            request = request.header("Prefer", prefer.to_string());
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_string())
            };
            (
                response.status().as_u16(),
                header("content-range"),
                header("preference-applied"),
            )
        }
    };
    let wallet = |name: &str| json!({"id": Uuid::new_v4(), "user_id": user.id, "name": name});
    let some = |v: &str| Some(v.to_string());

    // Insert: the range is always `*`; the total only with a count.
    let two = json!([wallet("a"), wallet("b")]);
    let got = send(Method::POST, "/rest/v1/wallets", "", Some(two)).await;
    assert_eq!(got, (201, some("*/*"), None));
    let got = send(
        Method::POST,
        "/rest/v1/wallets",
        "return=representation, count=exact",
        Some(json!([wallet("c"), wallet("d")])),
    )
    .await;
    assert_eq!(
        got,
        (201, some("*/2"), some("return=representation, count=exact"))
    );
    let got = send(
        Method::POST,
        "/rest/v1/wallets",
        "resolution=merge-duplicates, return=minimal",
        Some(wallet("e")),
    )
    .await;
    assert_eq!(
        got,
        (
            201,
            some("*/*"),
            some("resolution=merge-duplicates, return=minimal")
        )
    );

    // Update: the affected range; 204 unless the rows are asked for.
    let filter = format!("/rest/v1/wallets?user_id=eq.{}", user.id);
    let patch = Some(json!({"name": "renamed"}));
    let got = send(Method::PATCH, &filter, "count=exact", patch.clone()).await;
    assert_eq!(got, (204, some("0-4/5"), some("count=exact")));
    let got = send(Method::PATCH, &filter, "return=representation", patch).await;
    assert_eq!(got, (200, some("0-4/*"), some("return=representation")));
    let nothing = format!("/rest/v1/wallets?id=eq.{}", Uuid::new_v4());
    let got = send(
        Method::PATCH,
        &nothing,
        "count=exact",
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(got, (204, some("*/0"), some("count=exact")));

    // Delete: `*` with the total when counted.
    let got = send(Method::DELETE, &filter, "count=exact, return=minimal", None).await;
    assert_eq!(got, (204, some("*/5"), some("return=minimal, count=exact")));

    // A read reports only `count`; `return` does not apply to it.
    let got = send(Method::GET, &filter, "count=exact, return=minimal", None).await;
    assert_eq!(got, (200, some("*/0"), some("count=exact")));
    s.stop().await;
}

/// The statuses of writes as PostgREST v14.8 computes them in `src/PostgREST/Response.hs`
/// (`actionResponse`, the `MutationCreate`, `MutationUpdate` and `MutationDelete` cases), with
/// the inserted count of an upsert from `src/PostgREST/Query/Statements.hs` (`pgrst.inserted`):
/// an insert is 201 whatever `return=` says, except a `resolution=merge-duplicates` upsert that
/// inserted no row (all updated, or an empty body), which is 200; `ignore-duplicates` stays 201
/// even when every row was skipped. Update and delete: 200 with `return=representation`, 204
/// with `return=minimal`, `return=headers-only` or no `return`.
#[tokio::test]
async fn write_statuses_match_postgrest() {
    let s = boot().await;
    let user = s.new_user().await;
    let existing = s.wallet(&user, "existing").await;
    let row = |id: Uuid| json!({"id": id, "user_id": user.id, "name": "w"});
    let fresh = || row(Uuid::new_v4());
    let merge = "resolution=merge-duplicates";
    let ignore = "resolution=ignore-duplicates";
    let cases: Vec<(&str, String, Value, u16)> = vec![
        ("insert", String::new(), fresh(), 201),
        ("insert minimal", "return=minimal".into(), fresh(), 201),
        (
            "insert headers-only",
            "return=headers-only".into(),
            fresh(),
            201,
        ),
        (
            "insert representation",
            "return=representation".into(),
            fresh(),
            201,
        ),
        ("merge, new row", merge.into(), fresh(), 201),
        ("merge, updated only", merge.into(), row(existing), 200),
        (
            "merge, updated only, representation",
            format!("{merge}, return=representation"),
            row(existing),
            200,
        ),
        (
            "merge, updated and new",
            merge.into(),
            json!([row(existing), fresh()]),
            201,
        ),
        ("merge, empty body", merge.into(), json!([]), 200),
        ("ignore, new row", ignore.into(), fresh(), 201),
        ("ignore, duplicate only", ignore.into(), row(existing), 201),
        ("insert, empty body", String::new(), json!([]), 201),
    ];
    for (name, prefer, body, want) in cases {
        let mut request = s
            .user(&user, Method::POST, "/rest/v1/wallets?on_conflict=id")
            .json(&body);
        if !prefer.is_empty() {
            request = request.header("Prefer", prefer);
        }
        let got = request.send().await.unwrap().status().as_u16();
        assert_eq!(got, want, "{name}");
    }
    let mine = format!("/rest/v1/wallets?user_id=eq.{}", user.id);
    for (prefer, want) in [
        ("", 204),
        ("return=minimal", 204),
        ("return=headers-only", 204),
        ("return=representation", 200),
    ] {
        let mut patch = s
            .user(&user, Method::PATCH, &mine)
            .json(&json!({"name": "renamed"}));
        if !prefer.is_empty() {
            patch = patch.header("Prefer", prefer);
        }
        let got = patch.send().await.unwrap().status().as_u16();
        assert_eq!(got, want, "update, Prefer: {prefer:?}");
    }
    for (prefer, want) in [
        ("", 204),
        ("return=minimal", 204),
        ("return=headers-only", 204),
        ("return=representation", 200),
    ] {
        let one = format!("/rest/v1/wallets?id=eq.{}", s.wallet(&user, "gone").await);
        let mut delete = s.user(&user, Method::DELETE, &one);
        if !prefer.is_empty() {
            delete = delete.header("Prefer", prefer);
        }
        let got = delete.send().await.unwrap().status().as_u16();
        assert_eq!(got, want, "delete, Prefer: {prefer:?}");
    }
    s.stop().await;
}
