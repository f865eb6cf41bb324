//! Auth's answers checked member by member against GoTrue v2.186.0's own description
//! (`fixtures/gotrue_v2.186.0_schemas.json`: its OpenAPI schemas, with the members its Go types
//! always send as `required`). Strict clients (supabase-py's pydantic models) reject a body
//! that lacks one, so a missing member, an extra one, a wrong type or a malformed date fails here.

mod stack_support;

use reqwest::Method;
use serde_json::{Map, Value, json};
use stack_support::{boot, status_json};

/// The fixture's schemas by name.
fn schemas() -> Map<String, Value> {
    let text = include_str!("fixtures/gotrue_v2.186.0_schemas.json");
    let doc: Value = serde_json::from_str(text).expect("the fixture is JSON");
    doc["schemas"]
        .as_object()
        .expect("a schemas object")
        .clone()
}

/// Every way `value` departs from `schema`, as `path: what` lines. The subset GoTrue's
/// description uses: type, format (uuid, date-time, email), required, properties,
/// additionalProperties = false, items, enum and `$ref` by schema name. An own walker rather
/// than a JSON Schema crate: the description is OpenAPI 3.0, whose `$ref` and formats a
/// JSON Schema validator reads differently, and the subset is this small.
fn violations(
    schemas: &Map<String, Value>,
    schema: &Value,
    value: &Value,
    path: &str,
) -> Vec<String> {
    if let Some(name) = schema["$ref"].as_str() {
        let target = schemas
            .get(name)
            .unwrap_or_else(|| panic!("no schema {name}"));
        return violations(schemas, target, value, path);
    }
    let mut found = Vec::new();
    let type_ok = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("boolean") => value.is_boolean(),
        Some(other) => panic!("the walker does not know type {other}"),
        None => true,
    };
    if !type_ok {
        found.push(format!("{path}: expected {}, got {value}", schema["type"]));
        return found;
    }
    if let (Some(format), Some(text)) = (schema["format"].as_str(), value.as_str()) {
        let format_ok = match format {
            "uuid" => uuid::Uuid::parse_str(text).is_ok(),
            "date-time" => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            "email" => text.contains('@'),
            _ => true,
        };
        if !format_ok {
            found.push(format!("{path}: {text:?} is not a {format}"));
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        found.push(format!("{path}: {value} is not one of {allowed:?}"));
    }
    if let Some(object) = value.as_object() {
        let properties = schema["properties"].as_object();
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap();
            if !object.contains_key(name) {
                found.push(format!("{path}: missing {name}"));
            }
        }
        for (name, member) in object {
            let member_path = format!("{path}.{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(member_schema) => {
                    found.extend(violations(schemas, member_schema, member, &member_path))
                }
                None if schema["additionalProperties"] == json!(false) => {
                    found.push(format!("{member_path}: not in GoTrue's description"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            found.extend(violations(schemas, items, item, &format!("{path}[{i}]")));
        }
    }
    found
}

fn assert_shape(schemas: &Map<String, Value>, name: &str, value: &Value) {
    let found = violations(schemas, &json!({"$ref": name}), value, name);
    assert!(found.is_empty(), "{}\nbody: {value:#}", found.join("\n"));
}

#[test]
fn the_walker_catches_what_a_strict_client_would() {
    let s = schemas();
    let identity = json!({
        "identity_id": "6d3c0a53-5b2b-4f0e-9f43-6b1f0c9d2a10",
        "id": "0b9d6f1e-2c7a-4a57-8d1e-3f2a9c8b7e61",
        "user_id": "0b9d6f1e-2c7a-4a57-8d1e-3f2a9c8b7e61",
        "provider": "email",
        "created_at": "2026-12-05T07:00:00.123456Z",
        "updated_at": "2026-12-05T07:00:00.123456Z"
    });
    assert!(violations(&s, &json!({"$ref": "IdentitySchema"}), &identity, "i").is_empty());
    let mut missing = identity.clone();
    missing.as_object_mut().unwrap().remove("identity_id");
    let mut null_date = identity.clone();
    null_date["created_at"] = Value::Null;
    let mut extra = identity.clone();
    extra["nickname"] = json!("x");
    let mut bad_uuid = identity;
    bad_uuid["id"] = json!("42");
    for (body, expected) in [
        (missing, "i: missing identity_id"),
        (null_date, "i.created_at: expected \"string\", got null"),
        (extra, "i.nickname: not in GoTrue's description"),
        (bad_uuid, "i.id: \"42\" is not a uuid"),
    ] {
        let found = violations(&s, &json!({"$ref": "IdentitySchema"}), &body, "i");
        assert_eq!(found, [expected.to_string()]);
    }
}

#[tokio::test]
async fn users_sessions_lists_and_errors_match_gotrue_v2_186() {
    let s = boot().await;
    let schemas = schemas();
    let email = format!("schema-{}@example.com", uuid::Uuid::new_v4().simple());
    let password = "correct horse";

    let created = s
        .service(Method::POST, "/auth/v1/admin/users")
        .json(&json!({"email": email, "password": password, "email_confirm": true}))
        .send()
        .await
        .unwrap();
    let (status, user) = status_json(created).await;
    assert_eq!(status, 200, "{user}");
    assert_shape(&schemas, "UserSchema", &user);

    let signed_in = s
        .anon(Method::POST, "/auth/v1/token?grant_type=password")
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let (status, session) = status_json(signed_in).await;
    assert_eq!(status, 200, "{session}");
    assert_shape(&schemas, "AccessTokenResponseSchema", &session);
    assert!(
        session["user"]["identities"][0]["last_sign_in_at"].is_string(),
        "a signed-in identity carries last_sign_in_at: {session:#}"
    );

    let refreshed = s
        .anon(Method::POST, "/auth/v1/token?grant_type=refresh_token")
        .json(&json!({"refresh_token": session["refresh_token"]}))
        .send()
        .await
        .unwrap();
    let (status, refreshed) = status_json(refreshed).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_shape(&schemas, "AccessTokenResponseSchema", &refreshed);

    let access = session["access_token"].as_str().unwrap();
    let me = s
        .anon(Method::GET, "/auth/v1/user")
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    let (status, me) = status_json(me).await;
    assert_eq!(status, 200, "{me}");
    assert_shape(&schemas, "UserSchema", &me);

    let listed = s
        .service(Method::GET, "/auth/v1/admin/users?page=1&per_page=5")
        .send()
        .await
        .unwrap();
    let (status, list) = status_json(listed).await;
    assert_eq!(status, 200, "{list}");
    assert_shape(&schemas, "AdminUserListSchema", &list);
    assert!(!list["users"].as_array().unwrap().is_empty());

    let weak = json!({"email": "weak-schema@example.com", "password": "abc"});
    let wrong = json!({"email": email, "password": "wrong password"});
    let bad_requests = [
        ("/auth/v1/signup", weak.clone()),
        ("/auth/v1/token?grant_type=password", wrong.clone()),
        (
            "/auth/v1/token?grant_type=refresh_token",
            json!({"refresh_token": "nope"}),
        ),
    ];
    for (path, body) in bad_requests {
        for version in [None, Some("2024-01-01")] {
            let mut request = s.anon(Method::POST, path).json(&body);
            let name = match version {
                Some(v) => {
                    request = request.header("x-supabase-api-version", v);
                    "ErrorSchema20240101"
                }
                None => "ErrorSchema",
            };
            let (status, err) = status_json(request.send().await.unwrap()).await;
            assert!(status >= 400, "{path}: {status} {err}");
            assert_shape(&schemas, name, &err);
        }
    }
    s.stop().await;
}
