use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn open(from: f64, to: f64, duration: u64) -> PhaseShape {
    PhaseShape {
        name: "open".into(),
        duration: secs(duration),
        load: Load::Open {
            from,
            to,
            poisson: false,
        },
    }
}

fn closed(to: u64, ramp: u64, duration: u64) -> PhaseShape {
    PhaseShape {
        name: "closed".into(),
        duration: secs(duration),
        load: Load::Closed {
            to,
            ramp: secs(ramp),
        },
    }
}

#[test]
fn constant_rate_spaces_arrivals_evenly() {
    assert_eq!(arrival_offset(10.0, 10.0, secs(2), 0.0), Some(0.0));
    assert_eq!(arrival_offset(10.0, 10.0, secs(2), 5.0), Some(0.5));
    assert_eq!(arrival_offset(10.0, 10.0, secs(2), 19.0), Some(1.9));
    assert_eq!(arrival_offset(10.0, 10.0, secs(2), 20.0), None);
    assert_eq!(arrivals_in_phase(10.0, 10.0, secs(2)), 20);
}

#[test]
fn ramp_from_zero_follows_the_square_root_of_the_count() {
    // N(t) = 100·t²/(2·10) = 5t²: arrival j is at sqrt(j/5).
    for j in [1u64, 5, 20, 125, 499] {
        let t = arrival_offset(0.0, 100.0, secs(10), j as f64).unwrap();
        assert!((t - (j as f64 / 5.0).sqrt()).abs() < 1e-9, "j={j} t={t}");
    }
    assert_eq!(arrivals_in_phase(0.0, 100.0, secs(10)), 500);
    assert_eq!(arrival_offset(0.0, 100.0, secs(10), 500.0), None);
}

#[test]
fn ramp_down_offers_the_trapezoid_and_stays_monotonic() {
    let mut last = -1.0;
    let mut count = 0;
    while let Some(t) = arrival_offset(100.0, 0.0, secs(10), count as f64) {
        assert!(t > last && t <= 10.0, "arrival {count} at {t} after {last}");
        last = t;
        count += 1;
    }
    assert_eq!(count, 500);
}

#[test]
fn zero_rate_phase_offers_nothing() {
    assert_eq!(arrivals_in_phase(0.0, 0.0, secs(10)), 0);
    assert_eq!(arrival_offset(0.0, 0.0, secs(10), 0.0), None);
}

#[test]
fn device_order_is_a_permutation() {
    for devices in [1u64, 2, 7, 10, 1000, 1001] {
        let order = DeviceOrder::new(devices, 42);
        let mut seen: Vec<u64> = (0..devices).map(|k| order.device(k)).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..devices).collect::<Vec<_>>(), "devices={devices}");
        assert_eq!(order.device(devices), order.device(0));
    }
}

#[test]
fn open_phases_chain_and_number_arrivals_across_phases() {
    let phases = [open(10.0, 10.0, 1), open(0.0, 20.0, 1)];
    let all: Vec<_> = activations(&phases, DeviceOrder::new(1_000, 1), 7, |_| true).collect();
    assert_eq!(all.len(), 20);
    assert!(all.windows(2).all(|w| w[0].at() <= w[1].at()));
    assert_eq!(all[10].at(), secs(1));
    let devices: std::collections::HashSet<_> = all.iter().map(|a| a.device()).collect();
    assert_eq!(
        devices.len(),
        20,
        "arrivals numbered across phases hit distinct devices"
    );
}

#[test]
fn closed_ramp_starts_then_stops_devices_at_the_crossings() {
    let phases = [closed(4, 4, 4), closed(2, 2, 2)];
    let all: Vec<_> = activations(&phases, DeviceOrder::new(10, 3), 7, |_| true).collect();
    let starts: Vec<_> = all
        .iter()
        .filter(|a| matches!(a, Activation::Start { .. }))
        .map(|a| a.at())
        .collect();
    assert_eq!(starts, vec![secs(0), secs(1), secs(2), secs(3)]);
    let stops: Vec<_> = all
        .iter()
        .filter(|a| matches!(a, Activation::Stop { .. }))
        .collect();
    assert_eq!(stops.len(), 2);
    assert_eq!(stops[0].at(), secs(5));
    assert_eq!(stops[1].at(), secs(6));
    // The last two started are the first two stopped.
    assert_eq!(stops[0].device(), all[3].device());
    assert_eq!(stops[1].device(), all[2].device());
}

#[test]
fn closed_phase_without_ramp_starts_everyone_at_once() {
    let phases = [closed(3, 0, 5)];
    let all: Vec<_> = activations(&phases, DeviceOrder::new(10, 0), 7, |_| true).collect();
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|a| a.at() == Duration::ZERO));
}

#[test]
fn owner_filter_partitions_the_schedule() {
    let mut poisson = open(50.0, 150.0, 4);
    poisson.load = Load::Open {
        from: 50.0,
        to: 150.0,
        poisson: true,
    };
    let phases = [open(20.0, 10.0, 2), poisson, closed(30, 3, 3)];
    let order = DeviceOrder::new(60, 9);
    let whole: Vec<_> = activations(&phases, order, 11, |_| true).collect();
    let mut parts: Vec<_> = (0..3u64)
        .flat_map(|shard| {
            activations(&phases, order, 11, move |d| d % 3 == shard).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(parts.len(), whole.len());
    let key = |a: &Activation| (a.at(), a.device());
    parts.sort_by_key(key);
    let mut sorted = whole.clone();
    sorted.sort_by_key(key);
    assert_eq!(parts, sorted);
}

#[test]
fn phase_lookup_by_elapsed_time() {
    let phases = [open(1.0, 1.0, 10), closed(1, 1, 5)];
    assert_eq!(phase_at(&phases, secs(0)), 0);
    assert_eq!(phase_at(&phases, secs(10)), 1);
    assert_eq!(phase_at(&phases, secs(99)), 1);
    assert_eq!(total_duration(&phases), secs(15));
}

#[test]
fn poisson_arrivals_average_the_rate_and_are_reproducible() {
    let mut phase = open(200.0, 200.0, 50);
    phase.load = Load::Open {
        from: 200.0,
        to: 200.0,
        poisson: true,
    };
    let phases = [phase];
    let order = DeviceOrder::new(100_000, 0);
    let first: Vec<_> = activations(&phases, order, 5, |_| true).collect();
    let again: Vec<_> = activations(&phases, order, 5, |_| true).collect();
    assert_eq!(first, again);
    // 10,000 expected; a Poisson count's σ is 100, so ±500 cannot fail by chance.
    assert!((9_500..=10_500).contains(&first.len()), "{}", first.len());
    assert!(first.windows(2).all(|w| w[0].at() <= w[1].at()));
}
