//! How a driver records: a small trait over the metrics crate's per-task [`Recorder`], so the
//! swarm decides how devices share one (a `RefCell` per thread-local cohort, or a `Mutex` per
//! shard of devices) — never one channel message per request.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use syncstorm_metrics::Recorder;
use syncstorm_wire::error::ErrorKind;

/// Operation names the driver records. Shared names come from `syncstorm_metrics::op`; the
/// rest are the driver's own (per-table and per-tier pulls, the `client_lww` read).
pub mod op {
    pub use syncstorm_metrics::op::{
        BULK_PUSH, PERIODIC_POLL, PULL, PULSE_DELIVERY, PUSH, SIGN_IN, SYNC, TOKEN_CHECK,
        TOKEN_REFRESH, WS_CONNECT, WS_JOIN,
    };
    /// Push reads of `client_lww` (the read before the write).
    pub const PUSH_READ: &str = "push.read";
    /// An attempt on another user's rows (`behaviour.snoop_fraction`): counted by the
    /// device, never recorded as an operation, so RLS refusals are not the run's errors.
    pub const SNOOP: &str = "snoop";

    /// `pull.<table>`.
    pub fn pull_table(table: syncstorm_device::Table) -> &'static str {
        match table {
            syncstorm_device::Table::Wallets => "pull.wallets",
            syncstorm_device::Table::Channels => "pull.channels",
            syncstorm_device::Table::CategoriesUser => "pull.categories_user",
            syncstorm_device::Table::Transactions => "pull.transactions",
            syncstorm_device::Table::Plans => "pull.plans",
        }
    }

    /// `pull.tier<N>`.
    pub fn pull_tier(table: syncstorm_device::Table) -> &'static str {
        match table.tier() {
            1 => "pull.tier1",
            2 => "pull.tier2",
            _ => "pull.tier3",
        }
    }
}

/// Where a driver puts what it measures. `&self`: the implementor picks its interior
/// mutability.
pub trait Metrics {
    fn latency(&self, op: &str, took: Duration);
    fn error(&self, op: &str, kind: ErrorKind);
    fn count(&self, name: &str, n: u64);
    fn gauge(&self, name: &str, delta: i64);
}

impl Metrics for RefCell<Recorder> {
    fn latency(&self, op: &str, took: Duration) {
        self.borrow_mut().record_duration(op, took);
    }
    fn error(&self, op: &str, kind: ErrorKind) {
        self.borrow_mut().record_error(op, kind.name());
    }
    fn count(&self, name: &str, n: u64) {
        self.borrow_mut().count(name, n);
    }
    fn gauge(&self, name: &str, delta: i64) {
        self.borrow_mut().gauge_add(name, delta);
    }
}

/// A poisoned lock only means another device panicked mid-record; keep recording.
fn locked(m: &Mutex<Recorder>) -> std::sync::MutexGuard<'_, Recorder> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Metrics for Mutex<Recorder> {
    fn latency(&self, op: &str, took: Duration) {
        locked(self).record_duration(op, took);
    }
    fn error(&self, op: &str, kind: ErrorKind) {
        locked(self).record_error(op, kind.name());
    }
    fn count(&self, name: &str, n: u64) {
        locked(self).count(name, n);
    }
    fn gauge(&self, name: &str, delta: i64) {
        locked(self).gauge_add(name, delta);
    }
}

macro_rules! forward_metrics {
    ($ptr:ident) => {
        impl<T: Metrics + ?Sized> Metrics for $ptr<T> {
            fn latency(&self, op: &str, took: Duration) {
                (**self).latency(op, took)
            }
            fn error(&self, op: &str, kind: ErrorKind) {
                (**self).error(op, kind)
            }
            fn count(&self, name: &str, n: u64) {
                (**self).count(name, n)
            }
            fn gauge(&self, name: &str, delta: i64) {
                (**self).gauge(name, delta)
            }
        }
    };
}
forward_metrics!(Arc);
forward_metrics!(Rc);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_recorders_collect_from_several_holders() {
        let shared = Arc::new(Mutex::new(Recorder::new()));
        let (a, b) = (shared.clone(), shared.clone());
        a.latency(op::PULL, Duration::from_millis(3));
        b.latency(op::PULL, Duration::from_millis(5));
        b.error(op::PUSH, ErrorKind::PoolTimeout);
        a.count("rows_pulled", 7);
        let snap = locked(&shared).take();
        assert_eq!(snap.ops[op::PULL].ok(), 2);
        assert_eq!(snap.errors_by_kind()["pool_timeout"], 1);
        assert_eq!(snap.counter("rows_pulled"), 7);
    }
}
