//! Risk 2: the plan's cap on concurrent realtime (websocket) connections.

use syncstorm_metrics::{counter, gauge, op};

use super::clauses::Clauses;
use super::{Finding, Verdict, top_kinds};
use crate::report::charts::{Chart, Line};
use crate::report::html::{count, ms};
use crate::report::series::{op_per_second, op_rate, per_sample, per_second, realtime_peak};
use crate::result::RunResult;

const CLAIM: &str = "Small plans cap concurrent realtime connections; 100,000 users need a bigger plan or a fallback (long polling, periodic batches).";
const SLOW_PULSE_P99_MS: f64 = 1_000.0;

pub fn assess(r: &RunResult) -> Finding {
    let mut finding = Finding {
        number: 2,
        title: "Websocket connection limit",
        claim: CLAIM,
        verdict: Verdict::NotExercised,
        summary: String::new(),
        evidence: Vec::new(),
        charts: charts(r),
        on_latency: false,
    };
    let ops = |name| r.operations.get(name).map_or(0, |o| o.count);
    let rejected = r.counters.get(counter::WS_REJECTED).copied().unwrap_or(0);
    let polls = ops(op::LONG_POLL) + ops(op::PERIODIC_POLL);
    // The server's own count wins over the devices' view (a device counts a socket it is
    // still upgrading or has not yet seen closed).
    let server_peak = realtime_peak(r, "connections").map(|v| v as u64);
    let peak = server_peak.unwrap_or(r.peak.websockets);
    let dropped = realtime_peak(r, "events_dropped_budget_total").unwrap_or(0.0) as u64;
    if ops(op::WS_CONNECT) == 0 && r.peak.websockets == 0 && peak == 0 && rejected == 0 {
        finding.summary = if polls > 0 {
            format!(
                "no websockets were opened; devices used the fallback ({} polls).",
                count(polls)
            )
        } else {
            "the scenario opened no realtime connections.".into()
        };
        finding.evidence = fallback_evidence(r);
        return finding;
    }
    let cap = r
        .plan
        .as_ref()
        .map(|p| u64::from(p.realtime.max_connections));
    let pulse = r.operations.get(op::PULSE_DELIVERY);
    let pulse_p99 = pulse.map_or(0.0, |p| p.p99_ms);

    let mut clauses = Clauses::default();
    if rejected > 0 {
        clauses.hard(format!(
            "{} websocket upgrades were refused",
            count(rejected)
        ));
    }
    match cap {
        Some(cap) if peak >= cap => {
            clauses.hard(format!("connections hit the plan's cap of {}", count(cap)))
        }
        Some(cap) if peak as f64 >= 0.8 * cap as f64 => clauses.soft(format!(
            "connections reached {} of the plan's cap of {}",
            count(peak),
            count(cap)
        )),
        _ => {}
    }
    // As Supabase counts the budget (a 60 s average), one burst over it is strain; drops
    // that go on are the plan's limit reached.
    let drop_seconds = super::realtime_backlog::budget_drop_seconds(r);
    if dropped > 0 {
        let clause = format!(
            "{} realtime events were dropped by the plan's events-per-second budget in {} s",
            count(dropped),
            drop_seconds.max(1)
        );
        if drop_seconds >= super::realtime_backlog::SUSTAINED_DROP_SECONDS {
            clauses.hard(clause);
        } else {
            clauses.soft(clause);
        }
    }
    if pulse_p99 >= SLOW_PULSE_P99_MS {
        clauses.soft(format!("pulse delivery p99 was {}", ms(pulse_p99)));
    }
    let scale = format!(
        "with {} devices and a peak of {} open websockets",
        count(r.peak.devices),
        count(peak)
    );
    finding.on_latency = !clauses.confirms() && pulse_p99 >= SLOW_PULSE_P99_MS;
    (finding.verdict, finding.summary) = clauses.verdict(&scale, ", ", || {
        let cap_text = cap.map_or(String::new(), |c| format!(" (cap {})", count(c)));
        format!("{scale}{cap_text}, no upgrade was refused.")
    });
    finding.evidence = evidence(r, cap, rejected);
    if let Some(server) = server_peak {
        finding.evidence.insert(
            1,
            format!(
                "The realtime server counted at most {} connections (the devices counted {}).",
                count(server),
                count(r.peak.websockets)
            ),
        );
    }
    if dropped > 0 {
        finding.evidence.push(format!(
            "Events dropped by the events-per-second budget: {}.",
            count(dropped)
        ));
    }
    let backlog = super::realtime_backlog::assess(r);
    finding.evidence.extend(backlog.attribution);
    finding.charts.extend(backlog.charts);
    finding
}

fn evidence(r: &RunResult, cap: Option<u64>, rejected: u64) -> Vec<String> {
    let mut out = vec![format!(
        "Peak open websockets (the devices' count): {}; the plan's cap: {}.",
        count(r.peak.websockets),
        cap.map_or("unknown (no plan)".into(), count)
    )];
    out.push(format!("Upgrades refused: {}.", count(rejected)));
    if let Some(c) = r.operations.get(op::WS_CONNECT) {
        out.push(format!(
            "Websocket connects: {} attempted, {} failed{}; p99 {}.",
            count(c.count),
            count(c.errors),
            if c.errors > 0 {
                format!(" ({})", top_kinds(&c.errors_by_kind))
            } else {
                String::new()
            },
            ms(c.p99_ms)
        ));
    }
    if let Some(p) = r.operations.get(op::PULSE_DELIVERY) {
        out.push(format!(
            "Pulse delivery (commit to device): {} delivered; p50 {}, p99 {}, max {}.",
            count(p.count),
            ms(p.p50_ms),
            ms(p.p99_ms),
            ms(p.max_ms)
        ));
    }
    out.extend(fallback_evidence(r));
    out
}

fn fallback_evidence(r: &RunResult) -> Vec<String> {
    [op::LONG_POLL, op::PERIODIC_POLL]
        .iter()
        .filter_map(|name| {
            r.operations
                .get(*name)
                .filter(|o| o.count > 0)
                .map(|o| (name, o))
        })
        .map(|(name, o)| {
            format!(
                "Fallback {name}: {} requests, {} failed; p99 {}.",
                count(o.count),
                count(o.errors),
                ms(o.p99_ms)
            )
        })
        .collect()
}

fn charts(r: &RunResult) -> Vec<Chart> {
    // Sockets and devices on separate charts: 100k running devices would squeeze a 10k cap
    // and the sockets held at it into the bottom tenth of one axis.
    let mut sockets = Chart::new("Open websockets vs the plan's cap", "connections")
        .line(Line::new(
            "open websockets (devices)",
            per_second(r, |p| p.gauge(gauge::SOCKETS_OPEN) as f64),
        ))
        .line(Line::new(
            "server connections",
            per_sample(r, |s| s.realtime.get("connections").copied().unwrap_or(0.0)),
        ));
    if let Some(plan) = &r.plan {
        sockets = sockets.limit(
            f64::from(plan.realtime.max_connections),
            format!("{} cap", plan.name),
        );
    }
    let refused = Chart::new(
        "Refused upgrades and failed connects per second",
        "per second",
    )
    .line(Line::new(
        "refused upgrades/s",
        per_second(r, |p| p.counter(counter::WS_REJECTED) as f64),
    ))
    .line(Line::new(
        "failed connects/s",
        op_rate(r, op::WS_CONNECT, |o| o.errors as f64),
    ));
    let pulse = Chart::new("Pulse delivery latency", "ms")
        .line(Line::new(
            "p50",
            op_per_second(r, op::PULSE_DELIVERY, |o| o.p50_ms),
        ))
        .line(Line::new(
            "p99",
            op_per_second(r, op::PULSE_DELIVERY, |o| o.p99_ms),
        ));
    let devices = Chart::new("Devices running, and those without a websocket", "devices")
        .line(Line::new(
            "running devices",
            per_second(r, |p| p.gauge(gauge::DEVICES_ACTIVE) as f64),
        ))
        .line(Line::new(
            "running without a websocket",
            per_second(r, |p| {
                (p.gauge(gauge::DEVICES_ACTIVE) - p.gauge(gauge::SOCKETS_OPEN)).max(0) as f64
            }),
        ));
    vec![sockets, devices, refused, pulse]
}
