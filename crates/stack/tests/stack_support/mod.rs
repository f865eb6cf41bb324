//! The one test helper for the stack's HTTP tests: boots a stack on the test binary's shared
//! PostgreSQL cluster on a free port, and makes users and requests the way supabase-js does.
#![allow(dead_code)]

use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};
use syncstorm_plans::SupabasePlan;
use syncstorm_stack::{RunningStack, Stack, StackConfig};
use syncstorm_wire::gotrue::TokenResponse;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct TestStack {
    pub stack: RunningStack,
    pub http: reqwest::Client,
}

/// A signed-in user.
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub password: String,
    pub session: TokenResponse,
}

/// A stack on the `unlimited` plan.
pub async fn boot() -> TestStack {
    boot_with(|_| {}).await
}

/// A stack whose configuration `tweak` adjusts first.
pub async fn boot_with(tweak: impl FnOnce(&mut StackConfig)) -> TestStack {
    let mut config = StackConfig::new(SupabasePlan::preset("unlimited").unwrap());
    tweak(&mut config);
    let stack = Stack::start_for_tests(config, CancellationToken::new())
        .await
        .expect("test stack starts");
    TestStack {
        stack,
        http: reqwest::Client::new(),
    }
}

impl TestStack {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.url)
    }

    /// A request with the anon key and no bearer (supabase-js before sign-in sends the anon
    /// key as bearer too; PostgREST treats both as `anon`).
    pub fn anon(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("apikey", &self.stack.anon_key)
    }

    /// A request as the service role (apikey and bearer).
    pub fn service(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("apikey", &self.stack.service_role_key)
            .bearer_auth(&self.stack.service_role_key)
    }

    /// A request as a signed-in user.
    pub fn user(&self, user: &TestUser, method: Method, path: &str) -> RequestBuilder {
        self.anon(method, path)
            .bearer_auth(&user.session.access_token)
    }

    /// Creates a confirmed user through the admin API and signs it in.
    pub async fn new_user(&self) -> TestUser {
        let email = format!("u{}@example.com", Uuid::new_v4().simple());
        let password = "correct horse".to_string();
        let created = self
            .service(Method::POST, "/auth/v1/admin/users")
            .json(&json!({"email": email, "password": password, "email_confirm": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 200, "{}", created.text().await.unwrap());
        let session = self.sign_in(&email, &password).await;
        TestUser {
            id: session.user.id.parse().unwrap(),
            email,
            password,
            session,
        }
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> TokenResponse {
        let response = self
            .anon(Method::POST, "/auth/v1/token?grant_type=password")
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Inserts a wallet for `user` and returns its id.
    pub async fn wallet(&self, user: &TestUser, name: &str) -> Uuid {
        let id = Uuid::new_v4();
        let response = self
            .user(user, Method::POST, "/rest/v1/wallets")
            .json(&json!({"id": id, "user_id": user.id, "name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        id
    }

    pub async fn stop(self) {
        self.stack.stop().await.expect("stack stops cleanly");
    }
}

/// Status and JSON body (Null when empty).
pub async fn status_json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}
