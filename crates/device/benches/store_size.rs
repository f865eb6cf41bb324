//! Prints what one device costs in memory (goal: ≤ 4 KiB per device plus its rows) and how
//! fast the pure machine steps. Run: `cargo bench -p syncstorm-device --bench store_size`.

use std::sync::Arc;
use std::time::Instant;
use syncstorm_device::{Action, Device, DeviceKnobs, Event, PushAnswer, Row, Table};
use uuid::Uuid;

const T0: i64 = 1_790_000_000_000;

/// Rows a user's other device made: one bulk import of `count` transactions (plus parents).
fn rows_from_another_device(count: u32) -> Vec<Row> {
    let mut other = Device::new(
        0,
        Uuid::from_u128(1),
        Arc::new(DeviceKnobs::default()),
        0,
        9,
    );
    other.step(Event::BulkImport { rows: count }, T0);
    Table::ALL
        .into_iter()
        .flat_map(|t| other.rows(t).collect::<Vec<_>>())
        .collect()
}

/// Runs one sync that pulls `rows`, answering every request at once.
fn sync_pulling(device: &mut Device, rows: &[Row], token: i64) {
    let mut pending = device.step(Event::Pulse, T0);
    while let Some(action) = pending.pop() {
        let answer = match action {
            Action::CheckToken => Event::TokenChecked(Ok(token)),
            Action::FetchPage(q) => {
                let page = if q.after.is_none() {
                    rows.iter()
                        .filter(|r| r.table == q.table)
                        .cloned()
                        .collect()
                } else {
                    Vec::new()
                };
                Event::PageFetched {
                    table: q.table,
                    result: Ok(page),
                }
            }
            Action::Upsert { table, .. } | Action::PushRpc { table, .. } => Event::Pushed {
                table,
                result: Ok(PushAnswer::default()),
            },
            _ => continue,
        };
        pending.extend(device.step(answer, T0));
    }
}

fn main() {
    let knobs = Arc::new(DeviceKnobs::default());
    let fresh = Device::new(1, Uuid::from_u128(1), knobs.clone(), 0, 1);
    println!(
        "size_of::<Device>()            {:>8} B",
        size_of::<Device>()
    );
    println!(
        "fresh device footprint          {:>8} B",
        fresh.footprint_bytes()
    );
    for count in [0u32, 100, 1_000, 10_000] {
        let rows = if count == 0 {
            Vec::new()
        } else {
            rows_from_another_device(count)
        };
        let mut device = Device::new(1, Uuid::from_u128(1), knobs.clone(), 0, 1);
        let started = Instant::now();
        sync_pulling(&mut device, &rows, 1);
        let elapsed = started.elapsed();
        let total = device.footprint_bytes();
        let row_bytes = device.row_bytes();
        println!(
            "synced {:>6} rows: {:>9} B total, {:>6} B without rows, {:>5.1} B/row, sync {:>8.2?}",
            device.row_count(),
            total,
            total - row_bytes,
            row_bytes as f64 / device.row_count().max(1) as f64,
            elapsed
        );
    }
    step_throughput(&knobs);
}

/// Edits and full syncs (check, empty pull, one push) on one device: steps per second.
fn step_throughput(knobs: &Arc<DeviceKnobs>) {
    let mut device = Device::new(1, Uuid::from_u128(1), knobs.clone(), 0, 1);
    sync_pulling(&mut device, &[], 1);
    let rounds = 20_000;
    let started = Instant::now();
    let mut steps = 0u64;
    for i in 0..rounds {
        device.step(Event::UserEdit, T0 + i);
        let mut pending = device.step(Event::Pulse, T0 + i);
        steps += 2;
        while let Some(action) = pending.pop() {
            let answer = match action {
                Action::CheckToken => Event::TokenChecked(Ok(1)),
                Action::Upsert { table, .. } => Event::Pushed {
                    table,
                    result: Ok(PushAnswer::default()),
                },
                _ => continue,
            };
            steps += 1;
            pending.extend(device.step(answer, T0 + i));
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{} edit+sync rounds: {} steps in {:.2?} = {:.0} steps/s ({} rows held at the end)",
        rounds,
        steps,
        elapsed,
        steps as f64 / elapsed.as_secs_f64(),
        device.row_count()
    );
}
