//! GoTrue client: password sign-in, rotating refresh, admin user creation.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::http::{HttpClient, Method, Request};
use super::{ClientError, Endpoint};
use crate::error::ErrorKind;
use crate::gotrue::{AdminCreateUser, PasswordGrant, RefreshGrant, TokenResponse, User};

/// What a device keeps of a GoTrue session: the two tokens, the expiry and the user id (the
/// `user` object of the token response is dropped to keep devices small).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub access_token: String,
    /// Rotating: each refresh returns a new one and the old one is refused after.
    pub refresh_token: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub user_id: String,
}

impl Session {
    fn from_response(r: TokenResponse) -> Session {
        Session {
            access_token: r.access_token,
            refresh_token: r.refresh_token,
            expires_at: r.expires_at,
            user_id: r.user.id,
        }
    }

    /// True when the access token expires within `margin_s` seconds of `now_s` (refresh before
    /// expiry, as supabase-js does with its own margin).
    pub fn needs_refresh(&self, now_s: i64, margin_s: i64) -> bool {
        now_s + margin_s >= self.expires_at
    }
}

/// `…/auth/v1` of one project.
#[derive(Debug, Clone)]
pub struct AuthClient {
    http: HttpClient,
    endpoint: Endpoint,
}

impl AuthClient {
    pub fn new(http: impl Into<HttpClient>, endpoint: Endpoint) -> AuthClient {
        AuthClient {
            http: http.into(),
            endpoint,
        }
    }

    /// `POST /auth/v1/token?grant_type=password`.
    pub async fn sign_in_with_password(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Session, ClientError> {
        let body = PasswordGrant {
            email: email.to_owned(),
            password: password.to_owned(),
        };
        let response: TokenResponse = self
            .post("/auth/v1/token?grant_type=password", None, &body)
            .await?;
        Ok(Session::from_response(response))
    }

    /// `POST /auth/v1/token?grant_type=refresh_token`; the returned session carries the new
    /// refresh token, which the caller must keep (the old one is now used up).
    pub async fn refresh(&self, session: &Session) -> Result<Session, ClientError> {
        let body = RefreshGrant {
            refresh_token: session.refresh_token.clone(),
        };
        let response: TokenResponse = self
            .post("/auth/v1/token?grant_type=refresh_token", None, &body)
            .await?;
        Ok(Session::from_response(response))
    }

    /// `POST /auth/v1/admin/users` with the service-role key: a confirmed user.
    pub async fn admin_create_user(
        &self,
        service_key: &str,
        email: &str,
        password: &str,
    ) -> Result<User, ClientError> {
        let body = AdminCreateUser {
            email: email.to_owned(),
            password: password.to_owned(),
            email_confirm: true,
            ..AdminCreateUser::default()
        };
        self.post("/auth/v1/admin/users", Some(service_key), &body)
            .await
    }

    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        bearer: Option<&str>,
        body: &B,
    ) -> Result<R, ClientError> {
        let json = serde_json::to_vec(body).map_err(|e| {
            ClientError::new(ErrorKind::Decode, format!("cannot encode the body: {e}"))
        })?;
        let request = Request {
            method: Method::Post,
            path: &[path],
            bearer,
            prefer: None,
            json: Some(json),
        };
        self.http
            .exchange(&self.endpoint, request, |status, bytes| {
                if !(200..300).contains(&status) {
                    return Err(ClientError::from_gotrue(status, bytes));
                }
                serde_json::from_slice(bytes).map_err(|e| {
                    ClientError::new(ErrorKind::Decode, format!("GoTrue answer on {path}: {e}"))
                })
            })
            .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_is_due_inside_the_margin() {
        let s = Session {
            access_token: String::new(),
            refresh_token: String::new(),
            expires_at: 1_000,
            user_id: String::new(),
        };
        assert!(!s.needs_refresh(900, 60));
        assert!(s.needs_refresh(940, 60));
        assert!(s.needs_refresh(1_001, 0));
    }
}
