//! `syncstorm cleanup --run-tag T`: removes every user a run created, and with them their rows
//! (every FinOS table's `user_id` references `auth.users` with `on delete cascade`).
//!
//! A run's users are `u<index>@<run tag>` (see `population::credential_tag`), so the tag is the
//! e-mail domain and nothing else matches it. Through the admin API the users are listed page
//! by page, then deleted one by one at a bounded rate; with a database URL one SQL statement
//! does it. Both are idempotent, so a second cleanup finishes what a broken first one left.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, stream};
use serde::{Deserialize, Serialize};

use crate::target::{RequestLimiter, SupabaseTarget, TargetError};

/// Every run tag ends with this: the reserved `.test` TLD, so no real user can ever match.
pub const RUN_TAG_SUFFIX: &str = ".syncstorm.test";
/// Users per admin list page.
pub const PAGE_SIZE: u32 = 500;
/// Deletions in flight at once (the rate limiter is the real bound).
const DELETE_CONCURRENCY: usize = 8;
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error(
        "run tag {0:?} is not a syncstorm run tag (expected `<scenario>-<seed>-<run id>{RUN_TAG_SUFFIX}`, \
         the e-mail domain of the run's users)"
    )]
    BadTag(String),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("the admin API refused {what}: HTTP {status}: {body}")]
    Admin {
        what: String,
        status: u16,
        body: String,
    },
    #[error("cannot reach the admin API: {0}")]
    Http(String),
    #[error("cleanup by SQL failed: {0}")]
    Sql(#[from] tokio_postgres::Error),
}

/// What one cleanup did; printed as JSON by the subcommand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupReport {
    pub run_tag: String,
    /// `admin-api` or `sql`.
    pub via: String,
    /// Users of the run found (and removed, unless another cleanup removed them first).
    pub users_found: u64,
    pub users_deleted: u64,
    /// Found but already gone when deleted (a concurrent or earlier cleanup).
    pub already_gone: u64,
}

/// Checks that `tag` names a run (so a cleanup can never match real users' addresses).
pub fn validate_run_tag(tag: &str) -> Result<(), CleanupError> {
    let body = tag.strip_suffix(RUN_TAG_SUFFIX).unwrap_or("");
    let well_formed = !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if well_formed {
        Ok(())
    } else {
        Err(CleanupError::BadTag(tag.to_owned()))
    }
}

/// True for an e-mail address of run `tag`'s users.
pub fn is_run_user(email: &str, tag: &str) -> bool {
    email
        .rsplit_once('@')
        .is_some_and(|(_, domain)| domain.eq_ignore_ascii_case(tag))
}

/// Removes run `tag`'s users by SQL (cascading to their rows). The URL must have passed
/// `target::guard_database_url`.
pub async fn cleanup_by_sql(database_url: &str, tag: &str) -> Result<CleanupReport, CleanupError> {
    validate_run_tag(tag)?;
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(async move {
        let _ = connection.await;
    });
    // `like` on the literal `@tag`: the tag holds no `%` or `_` wildcards (validated above
    // allows only [a-z0-9-.], and `.` is not a wildcard).
    let deleted = client
        .execute(
            "delete from auth.users where lower(email) like '%@' || $1",
            &[&tag.to_ascii_lowercase()],
        )
        .await?;
    drop(client);
    let _ = connection.await;
    Ok(CleanupReport {
        run_tag: tag.to_owned(),
        via: "sql".to_owned(),
        users_found: deleted,
        users_deleted: deleted,
        already_gone: 0,
    })
}

#[derive(Deserialize)]
struct UserPage {
    #[serde(default)]
    users: Vec<ListedUser>,
}

#[derive(Deserialize)]
struct ListedUser {
    id: String,
    #[serde(default)]
    email: Option<String>,
}

/// The admin API of one target, with every request passing the limiter first.
struct Admin {
    http: reqwest::Client,
    base: String,
    target: SupabaseTarget,
    limiter: RequestLimiter,
}

impl Admin {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/auth/v1{path}", self.base))
            .header("apikey", &self.target.service_role_key)
            .bearer_auth(&self.target.service_role_key)
    }

    /// Ids of run `tag`'s users, over every page of the user list.
    async fn list_run_users(&self, tag: &str) -> Result<Vec<String>, CleanupError> {
        let mut ids = Vec::new();
        for page in 1.. {
            self.limiter.acquire().await;
            let path = format!("/admin/users?page={page}&per_page={PAGE_SIZE}");
            let response = self.request(reqwest::Method::GET, &path).send().await;
            let body = read_ok(response, || format!("listing users (page {page})")).await?;
            let users = serde_json::from_slice::<UserPage>(&body)
                .map_err(|e| CleanupError::Http(format!("unexpected user list: {e}")))?
                .users;
            let last_page = users.len() < PAGE_SIZE as usize;
            ids.extend(
                users
                    .into_iter()
                    .filter(|u| u.email.as_deref().is_some_and(|e| is_run_user(e, tag)))
                    .map(|u| u.id),
            );
            if last_page {
                break;
            }
        }
        Ok(ids)
    }

    /// Deletes one user: `Ok(true)` if deleted, `Ok(false)` if it was already gone.
    async fn delete_user(&self, id: &str) -> Result<bool, CleanupError> {
        self.limiter.acquire().await;
        let response = self
            .request(reqwest::Method::DELETE, &format!("/admin/users/{id}"))
            .send()
            .await
            .map_err(|e| CleanupError::Http(e.without_url().to_string()))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(false);
        }
        read_ok(Ok(response), || format!("deleting user {id}")).await?;
        Ok(true)
    }
}

/// The body of a 2xx response, or the error saying what was refused.
async fn read_ok(
    response: Result<reqwest::Response, reqwest::Error>,
    what: impl FnOnce() -> String,
) -> Result<Vec<u8>, CleanupError> {
    let response = response.map_err(|e| CleanupError::Http(e.without_url().to_string()))?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| CleanupError::Http(e.without_url().to_string()))?;
    if (200..300).contains(&status) {
        return Ok(body.to_vec());
    }
    Err(CleanupError::Admin {
        what: what(),
        status,
        body: String::from_utf8_lossy(&body).chars().take(200).collect(),
    })
}

/// Removes run `tag`'s users through the target's admin API, at most `rate` requests per
/// second. The target must come from `target::resolve_supabase` (the guard has run).
pub async fn cleanup_by_admin_api(
    target: SupabaseTarget,
    tag: &str,
    rate: f64,
) -> Result<CleanupReport, CleanupError> {
    validate_run_tag(tag)?;
    let http = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| CleanupError::Http(e.to_string()))?;
    let limiter = RequestLimiter::new(rate, 1)
        .ok_or_else(|| CleanupError::Http(format!("request rate {rate} must be positive")))?;
    let admin = Arc::new(Admin {
        http,
        base: target.url.as_str().trim_end_matches('/').to_owned(),
        target,
        limiter,
    });
    let ids = admin.list_run_users(tag).await?;
    let outcomes: Vec<Result<bool, CleanupError>> = stream::iter(ids.iter())
        .map(|id| {
            let admin = admin.clone();
            async move { admin.delete_user(id).await }
        })
        .buffer_unordered(DELETE_CONCURRENCY)
        .collect()
        .await;
    let mut report = CleanupReport {
        run_tag: tag.to_owned(),
        via: "admin-api".to_owned(),
        users_found: ids.len() as u64,
        ..CleanupReport::default()
    };
    for outcome in outcomes {
        if outcome? {
            report.users_deleted += 1;
        } else {
            report.already_gone += 1;
        }
    }
    Ok(report)
}

/// Admin requests per second a cleanup sends by default (GoTrue's admin routes are not rate
/// limited, but a shared project's Auth should not feel the cleanup).
pub const DEFAULT_RATE: f64 = 20.0;

/// Options of `syncstorm cleanup`.
#[derive(Debug, clap::Args)]
pub struct CleanupArgs {
    /// The run's tag: its users' e-mail domain, `<scenario>-<seed>-<run id>.syncstorm.test`.
    #[arg(long)]
    pub run_tag: String,
    /// Delete by SQL through this database (superuser or `postgres` role) instead of the admin API.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Supabase URL (default: `$SUPABASE_URL`); keys come from `$SUPABASE_SERVICE_ROLE_KEY`.
    #[arg(long)]
    pub url: Option<String>,
    /// A non-loopback host this cleanup may reach; repeatable.
    #[arg(long = "allow-host")]
    pub allow_hosts: Vec<String>,
    /// At most this many admin API requests per second.
    #[arg(long, default_value_t = DEFAULT_RATE)]
    pub max_request_rate: f64,
}

/// Runs the cleanup and prints its report as JSON; returns the process exit code.
pub fn run(args: &CleanupArgs) -> i32 {
    use crate::cli::exit;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("syncstorm cleanup: cannot start the async runtime: {e}");
            return exit::RUN_FAILED;
        }
    };
    match runtime.block_on(cleanup(args, |name| std::env::var(name).ok())) {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).expect("a report serializes")
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("syncstorm cleanup: {e}");
            match e {
                CleanupError::BadTag(_) | CleanupError::Target(_) => exit::BAD_INPUT,
                _ => exit::RUN_FAILED,
            }
        }
    }
}

/// The guard first (no connection before it), then SQL or the admin API.
pub async fn cleanup(
    args: &CleanupArgs,
    env: impl Fn(&str) -> Option<String>,
) -> Result<CleanupReport, CleanupError> {
    validate_run_tag(&args.run_tag)?;
    if let Some(db) = &args.database_url {
        crate::target::guard_database_url(db, &args.allow_hosts)?;
        return cleanup_by_sql(db, &args.run_tag).await;
    }
    let target =
        crate::target::resolve_supabase(args.url.as_deref(), &args.allow_hosts, None, env)?;
    cleanup_by_admin_api(target, &args.run_tag, args.max_request_rate).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_tags_are_what_population_makes_and_nothing_broader() {
        let tag = crate::population::credential_tag("Risk 2: pool", 7, 1_764_000_000);
        assert!(validate_run_tag(&tag).is_ok(), "{tag}");
        for bad in [
            "gmail.com",
            ".syncstorm.test",
            "syncstorm.test",
            "a%b.syncstorm.test",
            "x.y.syncstorm.test",
            "",
        ] {
            assert!(validate_run_tag(bad).is_err(), "{bad}");
        }
        assert!(is_run_user(
            "u3@risk-2--pool-7-1.syncstorm.test",
            "risk-2--pool-7-1.syncstorm.test"
        ));
        assert!(!is_run_user(
            "u3@other-7-1.syncstorm.test",
            "risk-2--pool-7-1.syncstorm.test"
        ));
        assert!(!is_run_user(
            "u3@x.risk-7-1.syncstorm.test",
            "risk-7-1.syncstorm.test"
        ));
    }
}
