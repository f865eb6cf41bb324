//! Prints what recording costs: ns per `record`, bytes per histogram, and the aggregator's
//! work per second of a run. Run with `cargo bench -p syncstorm-metrics`.

use std::hint::black_box;
use std::time::Instant;

use syncstorm_metrics::{Aggregator, Recorder, histogram, op};

const OPS: [&str; 10] = [
    op::SIGN_IN,
    op::TOKEN_REFRESH,
    op::TOKEN_CHECK,
    op::PULL,
    op::PUSH,
    op::SYNC,
    op::WS_CONNECT,
    op::WS_JOIN,
    op::PULSE_DELIVERY,
    op::LONG_POLL,
];

/// Latencies between 1 ms and ~2 s, spread like a long-tailed service.
fn latency(i: u64) -> u64 {
    let x = i.wrapping_mul(2_654_435_761) % 1_000;
    1_000 + x * x * 2
}

fn record_cost() {
    let n = 20_000_000u64;
    let mut r = Recorder::new();
    let start = Instant::now();
    for i in 0..n {
        r.record(OPS[(i % 10) as usize], latency(i));
    }
    let took = start.elapsed();
    black_box(r.take());
    println!(
        "record: {:.1} ns per call ({n} calls over 10 operation names)",
        took.as_nanos() as f64 / n as f64
    );
}

fn histogram_size() {
    let mut h = histogram::new_histogram();
    for i in 0..100_000 {
        histogram::record_micros(&mut h, latency(i));
    }
    let encoded = histogram::encode(&h).unwrap();
    println!(
        "histogram of 100k latencies up to {} ms: {} KiB in memory, {} bytes encoded (base64 V2-deflate)",
        h.max() / 1000,
        h.distinct_values() * 8 / 1024,
        encoded.len()
    );
}

/// One second of a run with 8 worker processes reporting 10 operations each.
fn aggregator_cost() {
    let (workers, seconds) = (8u32, 120u64);
    let mut agg = Aggregator::new();
    let mut snaps = Vec::new();
    for t in 0..seconds {
        for w in 0..workers {
            let mut r = Recorder::new();
            for i in 0..2_000 {
                r.record(OPS[(i % 10) as usize], latency(i + t * 7 + u64::from(w)));
            }
            r.gauge_add("sockets_open", 1_000);
            snaps.push((t, w, r.take()));
        }
    }
    let start = Instant::now();
    for (t, w, snap) in snaps {
        agg.add(t, w, snap).unwrap();
        if w == workers - 1 {
            agg.seal_before(t.saturating_sub(1)).unwrap();
        }
    }
    let (_, series) = agg.finish().unwrap();
    let took = start.elapsed();
    let json = serde_json::to_string(&series).unwrap();
    println!(
        "aggregator: {:.2} ms of CPU per run second ({workers} workers × 10 operations); series JSON {} KiB for {seconds} s",
        took.as_secs_f64() * 1000.0 / seconds as f64,
        json.len() / 1024
    );
}

fn main() {
    record_cost();
    histogram_size();
    aggregator_cost();
}
