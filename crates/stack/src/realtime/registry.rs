//! Who listens to what: the `postgres_changes` bindings of every channel in this process,
//! indexed so a change finds its subscribers without scanning them all (`eq` filters by value,
//! others per table, wildcards apart).

use super::capture::{Change, ChangeKind};
use super::filter::{self, Filter};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use syncstorm_wire::phoenix::Vsn;
use tokio::sync::mpsc;

/// A connection's outbound queue: encoded text frames.
#[derive(Debug)]
pub struct Outbox {
    pub tx: mpsc::Sender<String>,
    pub vsn: Vsn,
}

/// The identity a subscriber is authorized as. Our policies read only `role` and `sub`, so
/// subscribers agreeing on both get the same answers and share one visibility check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubClaims {
    pub role: String,
    pub sub: Option<String>,
    /// The full claims, set as `request.jwt.claims` during the check.
    pub json: String,
}

/// One binding of one channel.
#[derive(Debug, Clone)]
pub struct Sub {
    pub outbox: Arc<Outbox>,
    pub topic: Arc<str>,
    pub id: u32,
    /// `None` = every event (`*`).
    pub event: Option<ChangeKind>,
    pub schema: String,
    /// `None` = every table (`*`).
    pub table: Option<String>,
    pub filter: Option<Filter>,
    pub claims: Arc<SubClaims>,
}

impl Sub {
    fn accepts(&self, change: &Change) -> bool {
        self.event.is_none_or(|e| e == change.kind)
            && (self.schema == "*" || self.schema == change.schema)
            && self.table.as_ref().is_none_or(|t| *t == change.table)
            && self
                .filter
                .as_ref()
                .is_none_or(|f| change.filter_record().is_some_and(|r| f.matches(r)))
    }

    fn eq_index(&self) -> Option<(String, String)> {
        let f = self.filter.as_ref()?;
        Some((f.column.clone(), f.eq_key()?))
    }
}

/// Where one matching binding's frame goes.
#[derive(Debug, Clone)]
pub struct Target {
    pub outbox: Arc<Outbox>,
    pub topic: Arc<str>,
    pub id: u32,
    pub claims: Arc<SubClaims>,
}

#[derive(Debug, Default)]
struct TableSubs {
    plain: HashSet<u64>,
    eq: HashMap<String, HashMap<String, HashSet<u64>>>,
}

#[derive(Debug, Default)]
struct Inner {
    next_key: u64,
    subs: HashMap<u64, Sub>,
    tables: HashMap<(String, String), TableSubs>,
    wildcard: HashSet<u64>,
}

#[derive(Debug, Default)]
pub struct Registry(Mutex<Inner>);

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a binding; the key removes it later.
    pub fn add(&self, sub: Sub) -> u64 {
        let mut inner = self.lock();
        inner.next_key += 1;
        let key = inner.next_key;
        match (sub.schema.as_str(), &sub.table) {
            (schema, Some(table)) if schema != "*" => {
                let slot = inner
                    .tables
                    .entry((schema.to_string(), table.clone()))
                    .or_default();
                match sub.eq_index() {
                    Some((col, value)) => {
                        slot.eq
                            .entry(col)
                            .or_default()
                            .entry(value)
                            .or_default()
                            .insert(key);
                    }
                    None => {
                        slot.plain.insert(key);
                    }
                }
            }
            _ => {
                inner.wildcard.insert(key);
            }
        }
        inner.subs.insert(key, sub);
        key
    }

    pub fn remove(&self, key: u64) {
        let mut inner = self.lock();
        let Some(sub) = inner.subs.remove(&key) else {
            return;
        };
        inner.wildcard.remove(&key);
        let index = sub.eq_index();
        let Some(table) = sub.table else { return };
        let Some(slot) = inner.tables.get_mut(&(sub.schema, table)) else {
            return;
        };
        slot.plain.remove(&key);
        let Some((col, value)) = index else { return };
        if let Some(by_value) = slot.eq.get_mut(&col)
            && let Some(keys) = by_value.get_mut(&value)
        {
            keys.remove(&key);
            if keys.is_empty() {
                by_value.remove(&value);
            }
        }
    }

    /// Gives the bindings `keys` a new identity (after an `access_token` refresh).
    pub fn set_claims(&self, keys: &[u64], claims: Arc<SubClaims>) {
        let mut inner = self.lock();
        for key in keys {
            if let Some(sub) = inner.subs.get_mut(key) {
                sub.claims = Arc::clone(&claims);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lock().subs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bindings each change matches (event, schema, table and filter), in batch order.
    pub fn matching(&self, batch: &[Change]) -> Vec<Vec<Target>> {
        let inner = self.lock();
        batch.iter().map(|change| inner.matching(change)).collect()
    }
}

impl Inner {
    fn matching(&self, change: &Change) -> Vec<Target> {
        let mut keys: Vec<u64> = self.wildcard.iter().copied().collect();
        if let Some(slot) = self
            .tables
            .get(&(change.schema.clone(), change.table.clone()))
        {
            keys.extend(slot.plain.iter().copied());
            if let Some(record) = change.filter_record() {
                for (col, by_value) in &slot.eq {
                    let hit = record
                        .get(col)
                        .and_then(filter::index_key)
                        .and_then(|k| by_value.get(&k));
                    keys.extend(hit.into_iter().flatten().copied());
                }
            }
        }
        keys.iter()
            .filter_map(|k| self.subs.get(k))
            .filter(|s| s.accepts(change))
            .map(|s| Target {
                outbox: Arc::clone(&s.outbox),
                topic: Arc::clone(&s.topic),
                id: s.id,
                claims: Arc::clone(&s.claims),
            })
            .collect()
    }
}
