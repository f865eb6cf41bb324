//! The fd and port budget, checked before a single connection is opened.
//!
//! Two walls stop a big run on one machine (architecture.md, "Limits of one machine"): the
//! per-process open-file limit (each connection is one fd in a worker) and the ephemeral ports
//! of one (source address, destination address:port) pair. The check turns the scenario's shape
//! into sockets and says exactly what is short and which knob fixes it.

use std::fmt;

/// File descriptors a worker keeps for itself (stdio, runtime, epoll, logs, DNS, spare).
pub const WORKER_FD_RESERVE: u64 = 256;

/// Linux's default `ip_local_port_range` (32768–60999): used when /proc cannot be read.
pub const DEFAULT_EPHEMERAL_PORTS: u64 = 28_232;

/// What the run asks for and what the machine offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetInput {
    /// Devices this process (and its workers) will run concurrently at the peak.
    pub devices: u64,
    /// HTTP connections a device holds (keep-alive pool of one).
    pub http_per_device: u64,
    /// Websockets a device holds (1 with `pulse.mode = "websocket"`, else 0).
    pub ws_per_device: u64,
    /// Worker processes the devices are spread over.
    pub workers: u64,
    /// Open-file limit of one worker (the hard limit; soft is raised to it).
    pub fds_per_worker: u64,
    /// Ephemeral ports per (source, destination) pair.
    pub ephemeral_ports: u64,
    /// Destination addresses the HTTP endpoint listens on.
    pub http_destinations: u64,
    /// Destination addresses the realtime endpoint listens on.
    pub ws_destinations: u64,
    /// Source addresses the connections leave from (`run --source-address`; 1 when the
    /// kernel picks): each (source, destination) pair has its own ephemeral ports.
    pub sources: u64,
    /// Connections the server side can accept (fds of the stack processes), if known.
    pub server_capacity: Option<u64>,
    /// HTTP and websockets go to the same address:port (one API origin, like Supabase's),
    /// so they draw on the same ephemeral ports.
    pub same_destination: bool,
    /// Websockets the target keeps at most (the plan's connection cap): upgrades beyond it are
    /// refused and closed, so they take no lasting port or server file. The harness's own
    /// files are still counted for every device (a refused device retries).
    pub ws_cap: Option<u64>,
}

/// One thing that is short, with the numbers and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shortfall {
    Fds {
        devices: u64,
        per_device: u64,
        workers: u64,
        fds_per_worker: u64,
        workers_needed: u64,
    },
    Ports {
        what: &'static str,
        connections: u64,
        ports: u64,
        destinations: u64,
        sources: u64,
        sources_needed: u64,
    },
    Server {
        connections: u64,
        capacity: u64,
    },
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shortfall::Fds {
                devices,
                per_device,
                workers,
                fds_per_worker,
                workers_needed,
            } => write!(
                f,
                "{} devices need {} connections each = {} sockets; {} workers × {} fds \
                 (less {} reserved each) = {} available: raise `run.workers` to {}",
                group(*devices),
                per_device,
                group(devices * per_device),
                workers,
                group(*fds_per_worker),
                WORKER_FD_RESERVE,
                group(workers * usable_fds(*fds_per_worker)),
                workers_needed
            ),
            Shortfall::Ports {
                what,
                connections,
                ports,
                destinations,
                sources,
                sources_needed,
            } => write!(
                f,
                "{} {what} connections need {} ephemeral ports; {} ports per (source, \
                 destination) pair × {} destination address(es) × {} source address(es) = {} \
                 available: give {} source addresses in all (`--source-address`, repeatable) \
                 or widen net.ipv4.ip_local_port_range",
                group(*connections),
                group(*connections),
                group(*ports),
                destinations,
                sources,
                group(ports * destinations * sources),
                sources_needed
            ),
            Shortfall::Server {
                connections,
                capacity,
            } => write!(
                f,
                "{} connections exceed the {} the target's server processes can accept: \
                 lower the device count or give the stack more processes",
                group(*connections),
                group(*capacity)
            ),
        }
    }
}

/// The budget that passed: recorded in the result so a reader sees the headroom.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Budget {
    pub sockets: u64,
    pub fds_available: u64,
    pub http_connections: u64,
    pub http_ports_available: u64,
    pub ws_connections: u64,
    pub ws_ports_available: u64,
}

fn usable_fds(fds_per_worker: u64) -> u64 {
    fds_per_worker.saturating_sub(WORKER_FD_RESERVE)
}

/// Checks the budget; every shortfall is returned, not just the first.
pub fn check(input: &BudgetInput) -> Result<Budget, Vec<Shortfall>> {
    let per_device = input.http_per_device + input.ws_per_device;
    let sockets = input.devices * per_device;
    let fds_available = input.workers * usable_fds(input.fds_per_worker);
    let http_connections = input.devices * input.http_per_device;
    let ws_connections =
        (input.devices * input.ws_per_device).min(input.ws_cap.unwrap_or(u64::MAX));
    let held = http_connections + ws_connections;
    let mut short = Vec::new();
    if sockets > fds_available {
        short.push(Shortfall::Fds {
            devices: input.devices,
            per_device,
            workers: input.workers,
            fds_per_worker: input.fds_per_worker,
            workers_needed: sockets.div_ceil(usable_fds(input.fds_per_worker).max(1)),
        });
    }
    let ports = input.ephemeral_ports.max(1);
    let sources = input.sources.max(1);
    let kinds = if input.same_destination {
        vec![("HTTP and websocket", held, input.http_destinations)]
    } else {
        vec![
            ("HTTP", http_connections, input.http_destinations),
            ("websocket", ws_connections, input.ws_destinations),
        ]
    };
    for (what, connections, destinations) in kinds {
        if connections > ports * destinations * sources {
            short.push(Shortfall::Ports {
                what,
                connections,
                ports,
                destinations,
                sources,
                sources_needed: connections.div_ceil(ports * destinations.max(1)),
            });
        }
    }
    if let Some(capacity) = input.server_capacity.filter(|c| held > *c) {
        short.push(Shortfall::Server {
            connections: held,
            capacity,
        });
    }
    if !short.is_empty() {
        return Err(short);
    }
    Ok(Budget {
        sockets,
        fds_available,
        http_connections,
        http_ports_available: ports * input.http_destinations * sources,
        ws_connections,
        ws_ports_available: ports * input.ws_destinations * sources,
    })
}

/// Workers needed so every worker stays inside its fd limit.
pub fn workers_needed(devices: u64, per_device: u64, fds_per_worker: u64) -> u64 {
    (devices * per_device)
        .div_ceil(usable_fds(fds_per_worker).max(1))
        .max(1)
}

/// Ephemeral ports from `/proc/sys/net/ipv4/ip_local_port_range` (default when unreadable).
pub fn ephemeral_ports() -> u64 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| parse_port_range(&text))
        .unwrap_or(DEFAULT_EPHEMERAL_PORTS)
}

fn parse_port_range(text: &str) -> Option<u64> {
    let mut parts = text.split_whitespace().map(|p| p.parse::<u64>().ok());
    let (low, high) = (parts.next()??, parts.next()??);
    (high >= low).then(|| high - low + 1)
}

/// Raises this process's soft open-file limit to the hard one and returns it.
/// The hard limit is never assumed to be higher than the kernel reports.
pub fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => 1024,
    }
}

/// `100000` → `100,000`: budget messages are read by people.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(devices: u64, workers: u64) -> BudgetInput {
        BudgetInput {
            devices,
            http_per_device: 1,
            ws_per_device: 1,
            workers,
            fds_per_worker: 20_000,
            ephemeral_ports: 28_232,
            http_destinations: 4,
            ws_destinations: 4,
            sources: 1,
            server_capacity: None,
            same_destination: false,
            ws_cap: None,
        }
    }

    #[test]
    fn hundred_thousand_devices_on_four_workers_names_the_worker_count() {
        let short = check(&input(100_000, 4)).unwrap_err();
        assert_eq!(short.len(), 1);
        let text = short[0].to_string();
        assert!(
            text.starts_with(
                "100,000 devices need 2 connections each = 200,000 sockets; 4 workers × 20,000 fds"
            ),
            "{text}"
        );
        assert!(text.contains("= 78,976 available"), "{text}");
        assert!(text.ends_with("raise `run.workers` to 11"), "{text}");
    }

    #[test]
    fn enough_workers_and_addresses_pass_with_headroom_reported() {
        let budget = check(&input(100_000, 11)).unwrap();
        assert_eq!(budget.sockets, 200_000);
        assert_eq!(budget.fds_available, 11 * 19_744);
        assert_eq!(budget.ws_ports_available, 4 * 28_232);
    }

    #[test]
    fn one_destination_address_is_short_of_ports_for_both_kinds() {
        let mut one = input(50_000, 6);
        one.http_destinations = 1;
        one.ws_destinations = 1;
        let short = check(&one).unwrap_err();
        assert_eq!(short.len(), 2);
        let text = short[1].to_string();
        assert!(
            text.starts_with(
                "50,000 websocket connections need 50,000 ephemeral ports; 28,232 ports"
            ),
            "{text}"
        );
        assert!(text.contains("give 2 source addresses in all"), "{text}");
    }

    #[test]
    fn one_origin_pools_http_and_websockets_on_the_same_ports() {
        let mut shared = input(20_000, 3);
        shared.same_destination = true;
        shared.http_destinations = 1;
        let short = check(&shared).unwrap_err();
        assert_eq!(short.len(), 1);
        let text = short[0].to_string();
        assert!(
            text.starts_with("40,000 HTTP and websocket connections need 40,000 ephemeral ports"),
            "{text}"
        );
        shared.http_destinations = 2;
        assert_eq!(check(&shared).unwrap().sockets, 40_000);
    }

    #[test]
    fn each_source_address_brings_its_own_ports_to_one_destination() {
        // A remote target has one address: more source addresses are the only way past 28k.
        let mut remote = input(20_000, 3);
        remote.same_destination = true;
        remote.http_destinations = 1;
        let text = check(&remote).unwrap_err()[0].to_string();
        assert!(text.contains("× 1 source address(es)"), "{text}");
        assert!(
            text.contains("give 2 source addresses in all (`--source-address`"),
            "{text}"
        );
        remote.sources = 2;
        let budget = check(&remote).unwrap();
        assert_eq!(budget.http_ports_available, 2 * 28_232);
    }

    #[test]
    fn websockets_beyond_the_plan_cap_take_no_ports_or_server_files() {
        let mut capped = input(100_000, 11);
        capped.same_destination = true;
        capped.http_destinations = 4;
        capped.server_capacity = Some(120_000);
        assert_eq!(
            check(&capped).unwrap_err().len(),
            2,
            "200k sockets: ports and server"
        );
        capped.ws_cap = Some(10_000);
        assert!(check(&capped).is_ok(), "100k HTTP + 10k websockets fit");
    }

    #[test]
    fn server_capacity_is_checked_when_known() {
        let mut small = input(1_000, 1);
        small.server_capacity = Some(1_500);
        let short = check(&small).unwrap_err();
        assert_eq!(
            short,
            vec![Shortfall::Server {
                connections: 2_000,
                capacity: 1_500
            }]
        );
    }

    #[test]
    fn workers_needed_rounds_up_and_is_never_zero() {
        assert_eq!(workers_needed(100_000, 2, 20_000), 11);
        assert_eq!(workers_needed(0, 2, 20_000), 1);
        assert_eq!(workers_needed(9_872, 2, 20_000), 1);
        assert_eq!(workers_needed(9_873, 2, 20_000), 2);
    }

    #[test]
    fn port_range_parses_like_proc_prints_it() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(28_232));
        assert_eq!(parse_port_range("1024 65535"), Some(64_512));
        assert_eq!(parse_port_range("garbage"), None);
        assert_eq!(parse_port_range("5 4"), None);
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(28_232), "28,232");
        assert_eq!(group(1_234_567), "1,234,567");
    }
}
