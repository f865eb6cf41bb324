//! Setup before the load: the shard's users, their rows and their devices' stored sessions.
//!
//! On a stack whose JWT secret we hold (the embedded one) everything goes by SQL
//! (`crate::fast_setup`); on a real project users go through the admin API and sessions come
//! from password sign-ins, paced, as a sign-up flow would be (`crate::population`,
//! `crate::sessions`). Either way every wait watches `stop`.

use std::ops::Range;
use std::time::Instant;

use syncstorm_scenario::RunPlan;
use syncstorm_wire::client::{Endpoint, Session};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::target::Prepared;
use crate::fast_setup::{self, SqlSetup};
use crate::population;
use crate::progress::Progress;
use crate::result::SetupInfo;

/// What the load starts from.
pub(super) struct Seeded {
    pub ids: Vec<Uuid>,
    pub sessions: Vec<Session>,
}

/// Sets up `users`; the setup record is filled even when setup fails or is stopped.
pub(super) async fn seed(
    plan: &RunPlan,
    prepared: &Prepared,
    users: Range<u64>,
    tag: &str,
    stop: &CancellationToken,
    progress: &mut Progress,
) -> (Result<Seeded, String>, SetupInfo) {
    let began = Instant::now();
    let mut info = SetupInfo {
        users: users.end - users.start,
        ..SetupInfo::default()
    };
    let outcome = seed_into(plan, prepared, users, tag, stop, progress, &mut info).await;
    info.duration_s = began.elapsed().as_secs_f64();
    if outcome.is_ok() {
        progress.note(&format!(
            "setup took {:.1} s ({})",
            info.duration_s, info.method
        ));
    }
    (outcome, info)
}

async fn seed_into(
    plan: &RunPlan,
    prepared: &Prepared,
    users: Range<u64>,
    tag: &str,
    stop: &CancellationToken,
    progress: &mut Progress,
    info: &mut SetupInfo,
) -> Result<Seeded, String> {
    let stored = plan.device.session == syncstorm_device::SessionStart::Stored;
    let per_user = u64::from(plan.population.devices_per_user);
    let db = prepared.endpoints.database_url.as_deref();
    let seeded = match (&prepared.stack_auth, db) {
        (Some(auth), Some(database_url)) => {
            info.method = "sql".into();
            progress.note(&format!(
                "seeding {} users by SQL …",
                users.end - users.start
            ));
            let setup = SqlSetup {
                database_url,
                tag,
                devices_per_user: per_user,
                auth,
                sessions: stored,
            };
            let created = fast_setup::create(&setup, users.clone(), stop)
                .await
                .map_err(|e| e.to_string())?;
            progress.note(&format!(
                "created {} users and {} sessions",
                created.ids.len(),
                created.sessions.len()
            ));
            Seeded {
                ids: created.ids,
                sessions: created.sessions,
            }
        }
        _ => {
            info.method = "admin_api".into();
            by_admin_api(plan, prepared, users.clone(), tag, stop, progress).await?
        }
    };
    if let Some(db) = db {
        let seed = plan.run.seed;
        // Only the embedded stack's superuser may turn the triggers off for a bulk load.
        let how = match prepared.stack_auth {
            Some(_) => population::RowSeeding::Bulk,
            None => population::RowSeeding::Triggers,
        };
        let ids = &seeded.ids;
        let rows = population::seed_rows(db, &plan.population, seed, users.clone(), ids, how, stop)
            .await
            .map_err(|e| e.to_string())?;
        info.rows = rows;
        progress.note(&format!("seeded {rows} rows"));
    }
    info.sessions = seeded.sessions.len() as u64;
    Ok(seeded)
}

/// Users through the admin API, then one password sign-in per device for its stored session.
async fn by_admin_api(
    plan: &RunPlan,
    prepared: &Prepared,
    users: Range<u64>,
    tag: &str,
    stop: &CancellationToken,
    progress: &mut Progress,
) -> Result<Seeded, String> {
    progress.note(&format!("seeding {} users …", users.end - users.start));
    let endpoint = Endpoint::new(&prepared.endpoints.base_url, &prepared.endpoints.anon_key)
        .map_err(|e| format!("the target URL is not usable: {e}"))?;
    let ids = population::create_users(
        &endpoint,
        &prepared.service_role_key,
        tag,
        users.clone(),
        plan.target.max_request_rate,
        stop,
    )
    .await
    .map_err(|e| e.to_string())?;
    let sessions = stored_sessions(plan, &endpoint, users, tag, stop, progress)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Seeded { ids, sessions })
}

/// The sessions devices start with: signed in during setup unless the scenario models fresh
/// installs (see `crate::sessions`).
async fn stored_sessions(
    plan: &RunPlan,
    endpoint: &Endpoint,
    users: Range<u64>,
    tag: &str,
    stop: &CancellationToken,
    progress: &mut Progress,
) -> Result<Vec<Session>, crate::sessions::SessionError> {
    if plan.device.session != syncstorm_device::SessionStart::Stored {
        return Ok(Vec::new());
    }
    let per_user = u64::from(plan.population.devices_per_user);
    progress.note(&format!(
        "signing in {} devices (their stored sessions) …",
        (users.end - users.start) * per_user
    ));
    let setup = crate::sessions::SignInSetup {
        endpoint,
        tag,
        devices_per_user: per_user,
        max_request_rate: plan.target.max_request_rate,
    };
    crate::sessions::sign_in_devices(&setup, users, stop).await
}
