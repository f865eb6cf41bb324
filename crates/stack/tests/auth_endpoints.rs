//! Auth (`/auth/v1`) over real HTTP on a real PostgreSQL: every endpoint, its GoTrue-shaped
//! answers and refusals.

mod stack_support;

use reqwest::Method;
use serde_json::json;
use stack_support::{boot, boot_with, status_json};
use syncstorm_wire::jwt;

#[tokio::test]
async fn admin_create_user_needs_the_service_role_and_refuses_duplicates() {
    let s = boot().await;
    let body =
        json!({"email": "Admin.Made@example.com", "password": "secret12", "email_confirm": true});
    let path = "/auth/v1/admin/users";
    let (status, err) =
        status_json(s.anon(Method::POST, path).json(&body).send().await.unwrap()).await;
    assert_eq!(
        (status, err["error_code"].as_str()),
        (401, Some("no_authorization"))
    );
    let anon_bearer = s
        .anon(Method::POST, path)
        .bearer_auth(&s.stack.anon_key)
        .json(&body);
    let (status, err) = status_json(anon_bearer.send().await.unwrap()).await;
    assert_eq!(
        (status, err["error_code"].as_str()),
        (403, Some("not_admin"))
    );

    let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
    let body = json!({"email": email, "password": "secret12", "email_confirm": true, "user_metadata": {"k": 1}});
    let (status, user) = status_json(
        s.service(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["email"], email.as_str());
    assert_eq!(user["aud"], "authenticated");
    assert_eq!(user["user_metadata"]["k"], 1);
    assert!(user["email_confirmed_at"].is_string());
    // GoTrue v2.186's email identity: every field of models.Identity, provider id = user id;
    // `last_sign_in_at` (omitempty) only after a sign-in.
    let identity = &user["identities"][0];
    let mut keys: Vec<&str> = identity
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at",
            "email",
            "id",
            "identity_data",
            "identity_id",
            "provider",
            "updated_at",
            "user_id"
        ]
    );
    assert_eq!(identity["id"], user["id"]);
    assert_eq!(identity["identity_data"]["email_verified"], true);
    let (status, err) = status_json(
        s.service(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error_code"].as_str()),
        (422, Some("email_exists"))
    );
    s.stop().await;
}

#[tokio::test]
async fn signup_returns_a_session_and_validates_input() {
    let s = boot().await;
    let email = format!("signup-{}@example.com", uuid::Uuid::new_v4().simple());
    let body = json!({"email": email, "password": "secret12"});
    let (status, session) = status_json(
        s.anon(Method::POST, "/auth/v1/signup")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["token_type"], "bearer");
    assert_eq!(session["user"]["email"], email.as_str());
    let (status, err) = status_json(
        s.anon(Method::POST, "/auth/v1/signup")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error_code"].as_str()),
        (422, Some("user_already_exists"))
    );

    let weak = json!({"email": "weak@example.com", "password": "123"});
    let (status, err) = status_json(
        s.anon(Method::POST, "/auth/v1/signup")
            .json(&weak)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error_code"].as_str()),
        (422, Some("weak_password"))
    );
    let bad_email = json!({"email": "not-an-email", "password": "secret12"});
    let (status, err) = status_json(
        s.anon(Method::POST, "/auth/v1/signup")
            .json(&bad_email)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error_code"].as_str()),
        (400, Some("validation_failed"))
    );
    let garbage = s
        .anon(Method::POST, "/auth/v1/signup")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, err) = status_json(garbage).await;
    assert_eq!((status, err["code"].as_u64()), (400, Some(400)));
    assert_eq!(err["error_code"], "bad_json");
    s.stop().await;
}

#[tokio::test]
async fn password_grant_issues_supabase_claims_and_refuses_wrong_passwords() {
    let s = boot().await;
    let user = s.new_user().await;
    let claims = jwt::decode(&s.stack.jwt_secret, &user.session.access_token).unwrap();
    assert_eq!(claims.sub.as_deref(), Some(user.id.to_string().as_str()));
    assert_eq!(
        (claims.role.as_str(), claims.aud.as_deref()),
        ("authenticated", Some("authenticated"))
    );
    assert_eq!(claims.email.as_deref(), Some(user.email.as_str()));
    assert!(claims.session_id.is_some() && claims.exp - claims.iat == 3600);
    assert_eq!(user.session.expires_in, 3600);
    assert!(user.session.user.last_sign_in_at.is_some());

    let wrong = json!({"email": user.email, "password": "wrong password"});
    let response = s
        .anon(Method::POST, "/auth/v1/token?grant_type=password")
        .json(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-sb-error-code"], "invalid_credentials");
    let (status, err) = status_json(response).await;
    assert_eq!(
        (status, err["msg"].as_str()),
        (400, Some("Invalid login credentials"))
    );
    let nobody = json!({"email": "nobody@example.com", "password": "whatever1"});
    let (status, _) = status_json(
        s.anon(Method::POST, "/auth/v1/token?grant_type=password")
            .json(&nobody)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    let (status, err) = status_json(
        s.anon(Method::POST, "/auth/v1/token?grant_type=magic")
            .json(&nobody)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error_code"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    s.stop().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_used_one_is_refused() {
    let s = boot().await;
    let user = s.new_user().await;
    let refresh = |token: &str| {
        s.anon(Method::POST, "/auth/v1/token?grant_type=refresh_token")
            .json(&json!({"refresh_token": token}))
            .send()
    };
    let (status, next) = status_json(refresh(&user.session.refresh_token).await.unwrap()).await;
    assert_eq!(status, 200, "{next}");
    let next_token = next["refresh_token"].as_str().unwrap();
    assert_ne!(next_token, user.session.refresh_token);
    let old_claims = jwt::decode(&s.stack.jwt_secret, &user.session.access_token).unwrap();
    let new_claims =
        jwt::decode(&s.stack.jwt_secret, next["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(
        old_claims.session_id, new_claims.session_id,
        "a refresh stays in its session"
    );

    let (status, err) = status_json(refresh(&user.session.refresh_token).await.unwrap()).await;
    assert_eq!(
        (status, err["error_code"].as_str()),
        (400, Some("refresh_token_already_used"))
    );
    let (status, err) = status_json(refresh("no-such-token").await.unwrap()).await;
    assert_eq!(
        (status, err["error_code"].as_str()),
        (400, Some("refresh_token_not_found"))
    );
    let (status, _) = status_json(refresh(next_token).await.unwrap()).await;
    assert_eq!(status, 200, "the child token is live");
    s.stop().await;
}

#[tokio::test]
async fn current_user_needs_a_valid_bearer() {
    let s = boot().await;
    let user = s.new_user().await;
    let (status, me) = status_json(
        s.user(&user, Method::GET, "/auth/v1/user")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, me["id"].as_str()),
        (200, Some(user.id.to_string().as_str()))
    );
    let (status, err) =
        status_json(s.anon(Method::GET, "/auth/v1/user").send().await.unwrap()).await;
    assert_eq!(
        (status, err["error_code"].as_str()),
        (401, Some("no_authorization"))
    );
    let mut forged_claims = jwt::decode(&s.stack.jwt_secret, &user.session.access_token).unwrap();
    forged_claims.role = "service_role".into();
    let forged = jwt::encode("not-the-secret", &forged_claims);
    let (status, err) = status_json(
        s.anon(Method::GET, "/auth/v1/user")
            .bearer_auth(forged)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, err["error_code"].as_str()), (403, Some("bad_jwt")));
    s.stop().await;
}

#[tokio::test]
async fn token_rate_limit_applies_when_switched_on() {
    let s = boot_with(|c| {
        c.plan.set("auth_token_rate_limit", "1/3600/3").unwrap();
        c.token_rate_limit = true;
    })
    .await;
    let body = json!({"email": "nobody@example.com", "password": "whatever1"});
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let request = s
            .anon(Method::POST, "/auth/v1/token?grant_type=password")
            .header("x-forwarded-for", "10.1.2.3");
        statuses.push(request.json(&body).send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [400, 400, 400, 429]);
    let other_address = s
        .anon(Method::POST, "/auth/v1/token?grant_type=password")
        .header("x-forwarded-for", "10.9.9.9");
    let (status, _) = status_json(other_address.json(&body).send().await.unwrap()).await;
    assert_eq!(status, 400, "another address has its own bucket");
    s.stop().await;
}

#[tokio::test]
async fn token_rate_limit_is_off_by_default() {
    let s = boot_with(|c| c.plan = syncstorm_plans::SupabasePlan::preset("free").unwrap()).await;
    let body = json!({"email": "nobody@example.com", "password": "whatever1"});
    for _ in 0..35 {
        let response = s
            .anon(Method::POST, "/auth/v1/token?grant_type=password")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            400,
            "the free plan's burst of 30 is not enforced unless asked"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn admin_list_pages_with_gotrue_link_and_total_headers() {
    let s = boot().await;
    for _ in 0..3 {
        let email = format!("list-{}@example.com", uuid::Uuid::new_v4().simple());
        let body = json!({"email": email, "password": "secret12", "email_confirm": true});
        let sent = s.service(Method::POST, "/auth/v1/admin/users").json(&body);
        assert_eq!(sent.send().await.unwrap().status(), 200);
    }
    let list = |page: i64| {
        s.service(
            Method::GET,
            &format!("/auth/v1/admin/users?per_page=2&page={page}"),
        )
        .send()
    };
    let first = list(1).await.unwrap();
    let header =
        |r: &reqwest::Response, name: &str| r.headers()[name].to_str().unwrap().to_string();
    let total: i64 = header(&first, "x-total-count").parse().unwrap();
    assert!(total >= 3, "{total}");
    let last = (total + 1) / 2;
    assert_eq!(
        header(&first, "link"),
        format!(
            "</admin/users?page=2&per_page=2>; rel=\"next\", </admin/users?page={last}&per_page=2>; rel=\"last\""
        )
    );
    let (status, body) = status_json(first).await;
    assert_eq!((status, body["users"].as_array().unwrap().len()), (200, 2));
    assert_eq!(body["aud"], "authenticated");
    let final_page = list(last).await.unwrap();
    assert_eq!(
        header(&final_page, "link"),
        format!("</admin/users?page={last}&per_page=2>; rel=\"last\"")
    );
    s.stop().await;
}

#[tokio::test]
async fn errors_answer_in_the_requested_api_version() {
    let s = boot().await;
    let wrong = json!({"email": "nobody@example.com", "password": "wrong-password"});
    let sign_in = |version: Option<&str>| {
        let mut req = s
            .anon(Method::POST, "/auth/v1/token?grant_type=password")
            .json(&wrong);
        if let Some(v) = version {
            req = req.header("x-supabase-api-version", v);
        }
        req.send()
    };
    for version in [None, Some("2023-06-01"), Some("not-a-date")] {
        let response = sign_in(version).await.unwrap();
        assert!(response.headers().get("x-supabase-api-version").is_none());
        let (status, err) = status_json(response).await;
        assert_eq!(
            err,
            json!({"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"}),
            "{version:?}"
        );
        assert_eq!(status, 400);
    }
    let response = sign_in(Some("2024-01-01")).await.unwrap();
    assert_eq!(response.headers()["x-supabase-api-version"], "2024-01-01");
    assert_eq!(response.headers()["x-sb-error-code"], "invalid_credentials");
    let (status, err) = status_json(response).await;
    assert_eq!(status, 400);
    assert_eq!(
        err,
        json!({"code": "invalid_credentials", "message": "Invalid login credentials"})
    );

    let weak = json!({"email": "weak@example.com", "password": "abc"});
    let legacy = s.anon(Method::POST, "/auth/v1/signup").json(&weak);
    let (status, err) = status_json(legacy.send().await.unwrap()).await;
    assert_eq!(status, 422);
    assert_eq!(err["error_code"], "weak_password");
    assert_eq!(err["weak_password"], json!({"reasons": ["length"]}));
    let versioned = s
        .anon(Method::POST, "/auth/v1/signup")
        .header("x-supabase-api-version", "2024-01-01")
        .json(&weak);
    let (status, err) = status_json(versioned.send().await.unwrap()).await;
    assert_eq!(status, 422);
    assert_eq!(
        err,
        json!({"code": "weak_password", "message": "Password should be at least 6 characters.",
               "weak_password": {"reasons": ["length"]}})
    );
    s.stop().await;
}

#[tokio::test]
async fn admin_list_refuses_bad_pagination_like_gotrue() {
    let s = boot().await;
    for query in ["page=abc", "per_page=-1", "page=1.5"] {
        let response = s
            .service(Method::GET, &format!("/auth/v1/admin/users?{query}"))
            .send()
            .await
            .unwrap();
        let (status, err) = status_json(response).await;
        assert_eq!(
            (status, err["error_code"].as_str()),
            (400, Some("validation_failed")),
            "{query}: {err}"
        );
        let msg = err["msg"].as_str().unwrap();
        assert!(msg.starts_with("Bad Pagination Parameters: "), "{msg}");
    }
    let (status, body) = status_json(
        s.service(Method::GET, "/auth/v1/admin/users?page=&per_page=0")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    s.stop().await;
}
