//! Overruled writes: Precision-LWW compares the devices' own clocks, so a device whose clock is
//! behind stamps its later edit earlier and loses to an edit made before it in real time. A
//! write (acknowledged or refused) is overruled when the server kept another device's write
//! with a greater stamp that was made *earlier* in true time (stamp minus that device's skew).
//! Counted under every push mode: with `upsert` the later push wins anyway, with `client_lww`
//! and `server_lww` the later edit is refused.

use std::collections::HashMap;

use super::judge::{DeviceView, Judge};
use super::{AnomalyKind, OracleVerdict};
use syncstorm_device::Row;
use syncstorm_device::row::format_timestamp_ms;
use uuid::Uuid;

/// A write as the oracle sees it: its stamp, and when it was really made.
struct Made {
    device: usize,
    stamp_ms: i64,
    true_ms: i64,
}

/// Counts, and names a few of, the user's overruled writes against the rows the server kept.
pub fn check(
    user: Uuid,
    server: &HashMap<Uuid, &Row>,
    devices: &[DeviceView],
    verdict: &mut OracleVerdict,
) {
    let mut writes: HashMap<Uuid, Vec<Made>> = HashMap::new();
    for (i, d) in devices.iter().enumerate() {
        for w in d.acked.iter().chain(&d.refused) {
            writes.entry(w.id).or_default().push(Made {
                device: i,
                stamp_ms: w.updated_at_ms,
                true_ms: w.updated_at_ms - d.clock_skew_ms,
            });
        }
    }
    for (id, made) in &writes {
        let Some(kept) = server.get(id) else { continue };
        // The write the server kept; a row no device wrote (seeded) has no known true time.
        let Some(winner) = made.iter().find(|m| m.stamp_ms == kept.updated_at_ms) else {
            continue;
        };
        for loser in made
            .iter()
            .filter(|m| m.stamp_ms < kept.updated_at_ms && m.true_ms > winner.true_ms)
        {
            verdict.overruled_writes += 1;
            let what = format!(
                "device {} wrote at {} (its clock stamped {}) but lost to device {}'s earlier edit made at {} (stamped {}): clock skew decided",
                devices[loser.device].device,
                format_timestamp_ms(loser.true_ms),
                format_timestamp_ms(loser.stamp_ms),
                devices[winner.device].device,
                format_timestamp_ms(winner.true_ms),
                format_timestamp_ms(winner.stamp_ms),
            );
            let mut judge = Judge {
                user,
                device: &devices[loser.device],
                verdict,
            };
            judge.example(AnomalyKind::OverruledWrite, kept.table, *id, what);
        }
    }
}
