//! From a polled batch to frames in subscribers' queues: match bindings, check row visibility
//! once per (change, subscriber identity), take the deliveries from the events budget, merge
//! the ids of one channel into one frame, and queue without ever waiting on a slow client.

use super::Shared;
use super::authz::{self, CheckGroup};
use super::capture::Change;
use super::frame;
use super::metrics::DropReason;
use super::registry::Target;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::error::TrySendError;
use tokio_postgres::Client;

type IdentityKey = (String, Option<String>);
type CheckIndex = HashMap<(usize, IdentityKey), (usize, usize)>;

fn identity(t: &Target) -> IdentityKey {
    (t.claims.role.clone(), t.claims.sub.clone())
}

/// Delivers one batch to this process's subscribers.
pub async fn dispatch(shared: &Shared, client: &Client, batch: &[Change]) {
    if shared.registry.is_empty() {
        return;
    }
    let targets = shared.registry.matching(batch);
    let (groups, checked) = plan_checks(batch, &targets);
    let m = &shared.metrics;
    let started = Instant::now();
    let visible = match authz::visible(client, &groups).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("realtime: authorization query failed, batch not delivered: {e}");
            HashSet::new()
        }
    };
    if !groups.is_empty() {
        m.add(&m.authz_queries_total, 1);
        m.add(&m.authz_checks_total, checked.len() as u64);
        m.add(&m.authz_micros_total, started.elapsed().as_micros() as u64);
    }
    for (i, (change, targets)) in batch.iter().zip(&targets).enumerate() {
        let allowed: Vec<&Target> = targets
            .iter()
            .filter(|t| {
                !change.needs_rls_check
                    || checked
                        .get(&(i, identity(t)))
                        .is_some_and(|pair| visible.contains(pair))
            })
            .collect();
        deliver(shared, change, &allowed);
    }
}

/// Groups the rows to check by (table, identity): one `CheckGroup` each.
fn plan_checks(batch: &[Change], targets: &[Vec<Target>]) -> (Vec<CheckGroup>, CheckIndex) {
    let mut groups: Vec<CheckGroup> = Vec::new();
    let mut group_of: HashMap<(String, String, IdentityKey), usize> = HashMap::new();
    let mut checked = HashMap::new();
    for (i, (change, targets)) in batch.iter().zip(targets).enumerate() {
        if !change.needs_rls_check || change.pk.is_empty() {
            continue;
        }
        for t in targets {
            let who = identity(t);
            if checked.contains_key(&(i, who.clone())) {
                continue;
            }
            let gkey = (change.schema.clone(), change.table.clone(), who.clone());
            let g = *group_of.entry(gkey).or_insert_with(|| {
                groups.push(CheckGroup {
                    role: t.claims.role.clone(),
                    claims_json: t.claims.json.clone(),
                    schema: change.schema.clone(),
                    table: change.table.clone(),
                    pk: change
                        .pk
                        .iter()
                        .map(|(n, ty, _)| (n.clone(), ty.clone()))
                        .collect(),
                    rows: Vec::new(),
                });
                groups.len() - 1
            });
            groups[g]
                .rows
                .push(change.pk.iter().map(|(_, _, v)| v.clone()).collect());
            checked.insert((i, who), (g, groups[g].rows.len() - 1));
        }
    }
    (groups, checked)
}

/// One frame per channel (ids of all its matching bindings), budget first, never blocking.
fn deliver(shared: &Shared, change: &Change, allowed: &[&Target]) {
    let mut frames: Vec<(&Target, Vec<u32>)> = Vec::with_capacity(allowed.len());
    let mut frame_of: HashMap<(usize, &str), usize> = HashMap::with_capacity(allowed.len());
    for t in allowed {
        let key = (Arc::as_ptr(&t.outbox) as usize, &*t.topic);
        match frame_of.get(&key) {
            Some(&f) if !frames[f].1.contains(&t.id) => frames[f].1.push(t.id),
            Some(_) => {}
            None => {
                frame_of.insert(key, frames.len());
                frames.push((t, vec![t.id]));
            }
        }
    }
    if frames.is_empty() {
        return;
    }
    let m = &shared.metrics;
    if !shared.caps.try_deliver(frames.len() as u32) {
        m.dropped(DropReason::Budget, frames.len() as u64);
        return;
    }
    for (t, ids) in frames {
        let text = frame::change_frame(t.outbox.vsn, &t.topic, &ids, &change.data_json);
        match t.outbox.tx.try_send(text) {
            Ok(()) => m.add(&m.events_delivered_total, 1),
            Err(TrySendError::Full(_)) => m.dropped(DropReason::SlowClient, 1),
            Err(TrySendError::Closed(_)) => {}
        }
    }
}
