//! Where a run's traffic goes, and the guard that keeps it from going anywhere by accident.
//!
//! A target is the embedded stack (always loopback) or a real Supabase project named by URL.
//! Any host that is not loopback must be allowed explicitly (`[target] allow_hosts` or
//! `--allow-host`), and the check happens before a single connection is attempted.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Environment variables a `supabase` target reads its keys from.
pub const ENV_URL: &str = "SUPABASE_URL";
pub const ENV_ANON_KEY: &str = "SUPABASE_ANON_KEY";
pub const ENV_SERVICE_ROLE_KEY: &str = "SUPABASE_SERVICE_ROLE_KEY";
/// The JWT secret a standalone `syncstorm stack` prints: with it, a run sets up by SQL.
pub const ENV_JWT_SECRET: &str = "SUPABASE_JWT_SECRET";

/// A resolved real-Supabase target: where to send traffic and with which keys.
#[derive(Clone)]
pub struct SupabaseTarget {
    pub url: url::Url,
    pub anon_key: String,
    pub service_role_key: String,
    /// Direct database access for SQL seeding and probes, if given.
    pub database_url: Option<String>,
}

impl std::fmt::Debug for SupabaseTarget {
    // Keys never reach logs, results or reports.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupabaseTarget")
            .field("url", &self.url.as_str())
            .field("anon_key", &"<redacted>")
            .field("service_role_key", &"<redacted>")
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .finish()
    }
}

/// Why a target was refused. Every message is one sentence that says what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("target url {0:?} is not a valid http(s) URL; give e.g. https://<project>.supabase.co")]
    BadUrl(String),
    #[error(
        "target host {host:?} is not loopback and not allowed; to load it on purpose add it to \
         [target] allow_hosts in the scenario or pass --allow-host {host}"
    )]
    HostNotAllowed { host: String },
    #[error("the supabase target needs {0} in the environment (see .env.example)")]
    MissingEnv(&'static str),
}

/// True for `localhost`, `127.0.0.0/8` and `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") || bare.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Refuses a URL whose host is neither loopback nor in `allow_hosts` (exact, case-insensitive).
pub fn guard(url: &str, allow_hosts: &[String]) -> Result<url::Url, TargetError> {
    let parsed = url::Url::parse(url).map_err(|_| TargetError::BadUrl(url.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(TargetError::BadUrl(url.to_string()));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| TargetError::BadUrl(url.to_string()))?
        .to_string();
    let allowed = allow_hosts.iter().any(|a| a.eq_ignore_ascii_case(&host));
    if is_loopback_host(&host) || allowed {
        Ok(parsed)
    } else {
        Err(TargetError::HostNotAllowed { host })
    }
}

/// Resolves a `supabase` target: the URL (from the scenario, else `SUPABASE_URL`) passes the
/// guard first; only then are the keys read.
pub fn resolve_supabase(
    url: Option<&str>,
    allow_hosts: &[String],
    database_url: Option<String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<SupabaseTarget, TargetError> {
    let url = match url {
        Some(u) => u.to_string(),
        None => env(ENV_URL).ok_or(TargetError::MissingEnv(ENV_URL))?,
    };
    let url = guard(&url, allow_hosts)?;
    if let Some(db) = &database_url {
        guard_database_url(db, allow_hosts)?;
    }
    let key = |name: &'static str| {
        env(name)
            .filter(|v| !v.is_empty())
            .ok_or(TargetError::MissingEnv(name))
    };
    Ok(SupabaseTarget {
        url,
        anon_key: key(ENV_ANON_KEY)?,
        service_role_key: key(ENV_SERVICE_ROLE_KEY)?,
        database_url,
    })
}

/// The database URL is traffic too: the same guard applies to its host.
pub fn guard_database_url(db_url: &str, allow_hosts: &[String]) -> Result<(), TargetError> {
    let parsed = url::Url::parse(db_url).map_err(|_| TargetError::BadUrl(redact_url(db_url)))?;
    let host = parsed.host_str().unwrap_or("").to_string();
    // A unix-socket URL (no host) stays on this machine.
    if host.is_empty()
        || is_loopback_host(&host)
        || allow_hosts.iter().any(|a| a.eq_ignore_ascii_case(&host))
    {
        Ok(())
    } else {
        Err(TargetError::HostNotAllowed { host })
    }
}

/// A URL with its password replaced, for logs and results.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable url>".to_string(),
    }
}

/// The scenario as written, safe to copy into results and reports: every string that is a URL
/// with a password (e.g. `[target] database_url`) gets it replaced, wherever it sits.
pub fn redact_document(mut doc: serde_json::Value) -> serde_json::Value {
    redact_in_place(&mut doc);
    doc
}

fn redact_in_place(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text)
            if text.contains("://")
                && url::Url::parse(text).is_ok_and(|u| u.password().is_some()) =>
        {
            *text = redact_url(text);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_in_place),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(redact_in_place),
        _ => {}
    }
}

/// The per-run ceiling on request rate (`[target] max_request_rate`), shared by all tasks of
/// one process: each request first takes a slot with `acquire`. A run with several worker
/// processes gives each `per_worker(rate, workers)`, so the whole run stays under the ceiling.
///
/// Slots are spaced `1/rate` apart, with up to `burst` taken at once after an idle spell
/// (the generic cell rate algorithm: one timestamp, no refill task).
#[derive(Debug)]
pub struct RequestLimiter {
    interval: Duration,
    /// How far ahead of its slot a request may go: `(burst - 1) * interval`.
    tolerance: Duration,
    next_slot: Mutex<Instant>,
}

impl RequestLimiter {
    /// `rate` requests per second, `burst` at once; `None` for a rate that is not positive.
    pub fn new(rate: f64, burst: u32) -> Option<RequestLimiter> {
        if !(rate.is_finite() && rate > 0.0) {
            return None;
        }
        let interval = Duration::from_secs_f64(1.0 / rate);
        Some(RequestLimiter {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            next_slot: Mutex::new(Instant::now()),
        })
    }

    /// One worker's share of a run's ceiling (`rate / workers`), with a burst of a tenth of a
    /// second's worth (at least 1). `None` when the run has no ceiling.
    pub fn per_worker(run_rate: Option<f64>, workers: u32) -> Option<RequestLimiter> {
        let share = run_rate? / f64::from(workers.max(1));
        RequestLimiter::new(share, (share / 10.0).floor() as u32)
    }

    /// Waits until this request may go.
    pub async fn acquire(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Books the next slot and says how long to wait for it.
    fn reserve(&self, now: Instant) -> Duration {
        let mut next = self.next_slot.lock().unwrap_or_else(|e| e.into_inner());
        let slot = (*next).max(now);
        *next = slot + self.interval;
        (slot - now).saturating_sub(self.tolerance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with_keys(name: &str) -> Option<String> {
        match name {
            ENV_ANON_KEY => Some("anon".into()),
            ENV_SERVICE_ROLE_KEY => Some("service".into()),
            _ => None,
        }
    }

    #[test]
    fn loopback_forms_are_recognised() {
        for host in [
            "localhost",
            "127.0.0.1",
            "127.3.2.1",
            "[::1]",
            "::1",
            "realtime-dev.localhost",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "10.0.0.1",
            "192.168.1.2",
            "example.supabase.co",
            "localhost.evil.com",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn remote_host_is_refused_unless_allowed() {
        let err = guard("https://abc.supabase.co", &[]).unwrap_err();
        assert_eq!(
            err,
            TargetError::HostNotAllowed {
                host: "abc.supabase.co".into()
            }
        );
        assert!(err.to_string().contains("--allow-host abc.supabase.co"));
        assert!(guard("https://ABC.supabase.co", &["abc.supabase.co".into()]).is_ok());
        assert!(guard("http://127.0.0.1:8000", &[]).is_ok());
    }

    #[test]
    fn guard_runs_before_keys_are_needed() {
        // No keys in the environment, remote URL: the answer is the guard, not the keys.
        let err =
            resolve_supabase(Some("https://staging.example.com"), &[], None, |_| None).unwrap_err();
        assert!(matches!(err, TargetError::HostNotAllowed { .. }));
        let err = resolve_supabase(Some("http://127.0.0.1:1"), &[], None, |_| None).unwrap_err();
        assert_eq!(err, TargetError::MissingEnv(ENV_ANON_KEY));
    }

    #[test]
    fn database_url_is_guarded_and_redacted() {
        let remote = "postgres://u:secret@db.example.com/postgres";
        let err = resolve_supabase(
            Some("http://127.0.0.1:1"),
            &[],
            Some(remote.into()),
            env_with_keys,
        )
        .unwrap_err();
        assert!(matches!(err, TargetError::HostNotAllowed { .. }));
        assert!(!redact_url(remote).contains("secret"));
        let target = resolve_supabase(None, &[], None, |n| {
            if n == ENV_URL {
                Some("http://localhost:54321".into())
            } else {
                env_with_keys(n)
            }
        })
        .unwrap();
        assert!(!format!("{target:?}").contains("service\""));
    }

    #[test]
    fn bad_urls_get_one_sentence() {
        for bad in ["not a url", "ftp://127.0.0.1", "postgres://127.0.0.1"] {
            let msg = guard(bad, &[]).unwrap_err().to_string();
            assert!(msg.contains("not a valid http(s) URL"), "{msg}");
        }
    }

    #[test]
    fn limiter_spaces_requests_after_the_burst() {
        let limiter = RequestLimiter::new(100.0, 3).unwrap();
        let now = Instant::now();
        let waits: Vec<u128> = (0..6).map(|_| limiter.reserve(now).as_millis()).collect();
        assert_eq!(waits, [0, 0, 0, 10, 20, 30]);
        // After an idle second the burst is available again, and no more than it.
        let later = now + Duration::from_secs(1);
        let waits: Vec<u128> = (0..4).map(|_| limiter.reserve(later).as_millis()).collect();
        assert_eq!(waits, [0, 0, 0, 10]);
    }

    #[test]
    fn limiter_splits_the_run_ceiling_across_workers() {
        assert!(RequestLimiter::per_worker(None, 4).is_none());
        assert!(RequestLimiter::new(0.0, 1).is_none());
        assert!(RequestLimiter::new(f64::NAN, 1).is_none());
        let share = RequestLimiter::per_worker(Some(1_000.0), 4).unwrap();
        assert_eq!(share.interval, Duration::from_millis(4));
        assert_eq!(share.tolerance, Duration::from_millis(4) * 24);
        // Over any long window, a worker takes at most its share (plus the burst).
        let now = Instant::now();
        let last = (0..1_000).map(|_| share.reserve(now)).last().unwrap();
        assert_eq!(last, Duration::from_millis(4 * 999 - 4 * 24));
    }

    #[test]
    fn scenario_documents_lose_url_passwords_wherever_they_sit() {
        let doc = serde_json::json!({
            "target": {"kind": "supabase", "url": "https://x.supabase.co",
                       "database_url": "postgres://postgres:s3cret@127.0.0.1:5432/postgres"},
            "notes": ["postgresql://a:b@h/d", "plain text"],
        });
        let text = redact_document(doc).to_string();
        assert!(!text.contains("s3cret") && !text.contains(":b@"), "{text}");
        assert!(text.contains("postgres://postgres:redacted@127.0.0.1:5432/postgres"));
        assert!(text.contains("https://x.supabase.co") && text.contains("plain text"));
    }
}
