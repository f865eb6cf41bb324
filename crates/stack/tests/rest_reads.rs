//! REST reads (`GET /rest/v1/<table>`) over real HTTP: select, filters (plain and `or`/`and`),
//! order, ranges, counts,
//! single objects, and the errors of bad names and bad syntax.

mod stack_support;

use reqwest::Method;
use serde_json::{Value, json};
use stack_support::{TestStack, TestUser, boot, status_json};
use uuid::Uuid;

/// Five wallets named w0..w4 with balances 0, 10, 20, 30, 40 and updated_at one second apart.
async fn five_wallets(s: &TestStack, user: &TestUser) -> Vec<Uuid> {
    let ids: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    let rows: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({"id": id, "user_id": user.id, "name": format!("w{i}"), "balance": i * 10,
                              "updated_at": format!("2026-01-01T00:00:0{i}.123Z")})
        })
        .collect();
    let response = s
        .user(user, Method::POST, "/rest/v1/wallets")
        .json(&rows)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    ids
}

fn names(body: &Value) -> Vec<&str> {
    body.as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn select_filter_order_and_range_with_exact_count() {
    let s = boot().await;
    let user = s.new_user().await;
    let ids = five_wallets(&s, &user).await;
    let path = format!(
        "/rest/v1/wallets?select=name,balance&user_id=eq.{}&balance=gt.0&id=in.({},{},{},{})&order=balance.desc&offset=1&limit=2",
        user.id, ids[1], ids[2], ids[3], ids[4]
    );
    let response = s
        .user(&user, Method::GET, &path)
        .header("Prefer", "count=exact")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-range"], "1-2/4");
    let (status, body) = status_json(response).await;
    assert_eq!(status, 206, "a partial page of a counted result");
    assert_eq!(names(&body), ["w3", "w2"]);
    assert_eq!(
        body[0].as_object().unwrap().len(),
        2,
        "only the selected columns"
    );

    let all = format!(
        "/rest/v1/wallets?select=name&user_id=eq.{}&order=updated_at.asc",
        user.id
    );
    let response = s
        .user(&user, Method::GET, &all)
        .header("Prefer", "count=exact")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-range"], "0-4/5");
    let (status, body) = status_json(response).await;
    assert_eq!(
        (status, names(&body)),
        (200, vec!["w0", "w1", "w2", "w3", "w4"])
    );

    let ranged = s
        .user(&user, Method::GET, &all)
        .header("Range", "3-9")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.headers()["content-range"], "3-4/*");
    assert_eq!(names(&status_json(ranged).await.1), ["w3", "w4"]);
    s.stop().await;
}

#[tokio::test]
async fn operators_neq_lte_is_like_and_not() {
    let s = boot().await;
    let user = s.new_user().await;
    five_wallets(&s, &user).await;
    let base = format!(
        "/rest/v1/wallets?select=name&user_id=eq.{}&order=name",
        user.id
    );
    let cases = [
        ("&balance=lte.10", vec!["w0", "w1"]),
        ("&balance=gte.30", vec!["w3", "w4"]),
        ("&balance=lt.10", vec!["w0"]),
        ("&name=neq.w0&balance=not.gt.20", vec!["w1", "w2"]),
        ("&name=like.*3", vec!["w3"]),
        ("&name=ilike.W4", vec!["w4"]),
        (
            "&deleted=is.false&balance=not.in.(0,10,20)",
            vec!["w3", "w4"],
        ),
        (
            "&updated_at=gt.2026-01-01T00:00:03.000%2B00:00",
            vec!["w3", "w4"],
        ),
        ("&deleted=is.null", vec![]),
        // Logical operators, as the keyset page sends them (one request per page).
        (
            "&or=(updated_at.gt.2026-01-01T00:00:03.123Z,and(updated_at.eq.2026-01-01T00:00:02.123Z,balance.gt.10))",
            vec!["w2", "w4"],
        ),
        ("&or=(name.eq.w0,balance.gte.40)", vec!["w0", "w4"]),
        ("&not.or=(name.eq.w0,balance.gte.20)", vec!["w1"]),
        (
            "&and=(balance.gt.0,or(name.eq.w1,name.eq.\"w3\"))",
            vec!["w1", "w3"],
        ),
    ];
    for (filter, want) in cases {
        let (status, body) = status_json(
            s.user(&user, Method::GET, &format!("{base}{filter}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((status, names(&body)), (200, want), "{filter}");
    }
    s.stop().await;
}

#[tokio::test]
async fn single_object_on_request() {
    let s = boot().await;
    let user = s.new_user().await;
    let ids = five_wallets(&s, &user).await;
    let one = format!("/rest/v1/wallets?select=name&id=eq.{}", ids[2]);
    let object = s
        .user(&user, Method::GET, &one)
        .header("Accept", "application/vnd.pgrst.object+json");
    let (status, body) = status_json(object.send().await.unwrap()).await;
    assert_eq!((status, body), (200, json!({"name": "w2"})));
    let many = format!("/rest/v1/wallets?user_id=eq.{}", user.id);
    let object = s
        .user(&user, Method::GET, &many)
        .header("Accept", "application/vnd.pgrst.object+json");
    let (status, body) = status_json(object.send().await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (406, Some("PGRST116")));
    s.stop().await;
}

#[tokio::test]
async fn bad_names_values_and_syntax_get_postgrest_errors() {
    let s = boot().await;
    let user = s.new_user().await;
    let cases = [
        ("/rest/v1/no_such_table", 404, "PGRST205"),
        ("/rest/v1/wallets?nope=eq.1", 400, "42703"),
        ("/rest/v1/wallets?select=id,nope", 400, "42703"),
        ("/rest/v1/wallets?order=nope.desc", 400, "42703"),
        ("/rest/v1/wallets?id=eq.not-a-uuid", 400, "22P02"),
        ("/rest/v1/wallets?id=eqq.1", 400, "PGRST100"),
        ("/rest/v1/wallets?id=in.1,2", 400, "PGRST100"),
        ("/rest/v1/wallets?limit=many", 400, "PGRST100"),
        ("/rest/v1/wallets?select=channels(*)", 400, "PGRST100"),
        (
            "/rest/v1/wallets?or=(balance.eq.1,balance)",
            400,
            "PGRST100",
        ),
        ("/rest/v1/wallets?or=(nope.eq.1,balance.eq.2)", 400, "42703"),
        ("/rest/v1/wallets?or=(id.eq.1,and(id.eq.2)", 400, "PGRST100"),
    ];
    for (path, want_status, want_code) in cases {
        let (status, body) =
            status_json(s.user(&user, Method::GET, path).send().await.unwrap()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (want_status, Some(want_code)),
            "{path}: {body}"
        );
        assert!(
            body.get("message").is_some()
                && body.get("details").is_some()
                && body.get("hint").is_some()
        );
    }
    let (status, body) = status_json(
        s.user(&user, Method::GET, "/rest/v1/wallets")
            .header("Range", "9-2")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (416, Some("PGRST103")));
    let (status, _) = status_json(
        s.user(&user, Method::GET, "/rest/v1/wallets?select=id")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "the stack keeps serving after bad requests");
    s.stop().await;
}
