//! The run's shape in sockets, and the fd and port budget check before anything connects.

use syncstorm_device::{ConnectionModel, PulseMode};
use syncstorm_scenario::{Load, RunPlan, Workers};

use super::RunError;
use crate::swarm::budget::{self, BudgetInput};
use crate::swarm::shard::Shard;

/// How many devices this process runs at the peak, and what each holds open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub devices: u64,
    pub http_per_device: u64,
    pub ws_per_device: u64,
}

impl Shape {
    /// Sockets the target holds at the peak: websockets beyond the plan's connection cap are
    /// refused at the upgrade and closed, so they never occupy a server file.
    pub fn held_sockets(&self, plan: &RunPlan) -> u64 {
        let cap = u64::from(plan.target.plan.realtime.max_connections);
        self.devices * self.http_per_device + (self.devices * self.ws_per_device).min(cap)
    }
}

/// The shard's peak: all its devices when any phase is open-model (any device may be opened),
/// else its share of the largest closed-model count.
pub fn shape(plan: &RunPlan, shard: Shard) -> Shape {
    let users = shard.users(plan.population.users);
    let in_shard = (users.end - users.start) * u64::from(plan.population.devices_per_user);
    let any_open = plan
        .phases
        .iter()
        .any(|p| matches!(p.load, Load::Open { .. }));
    let total = plan.total_devices().max(1);
    let devices = if any_open {
        in_shard
    } else {
        (plan.peak_closed_devices() as u128 * in_shard as u128).div_ceil(total as u128) as u64
    };
    Shape {
        devices: devices.min(in_shard),
        http_per_device: match plan.device.connections {
            ConnectionModel::Owned => 1,
            ConnectionModel::Pooled => 0,
        },
        ws_per_device: u64::from(plan.device.pulse.mode == PulseMode::Websocket),
    }
}

/// Checks the budget (`sources`, `targets`: the source and target addresses given, 0 when
/// none); on success returns the worker count to use.
pub fn check(
    plan: &RunPlan,
    shape: &Shape,
    sources: usize,
    targets: usize,
) -> Result<u32, RunError> {
    let (destinations, server_capacity) = super::target::expected(plan, shape.held_sockets(plan));
    let destinations = destinations.max(targets as u64);
    let fds_per_worker = budget::raise_fd_limit();
    let per_device = shape.http_per_device + shape.ws_per_device;
    let workers = match plan.run.workers {
        Workers::Count(n) => u64::from(n),
        Workers::Auto => budget::workers_needed(shape.devices, per_device, fds_per_worker),
    };
    let input = BudgetInput {
        devices: shape.devices,
        http_per_device: shape.http_per_device,
        ws_per_device: shape.ws_per_device,
        workers,
        fds_per_worker,
        ephemeral_ports: budget::ephemeral_ports(),
        http_destinations: destinations,
        ws_destinations: destinations,
        sources: sources.max(1) as u64,
        server_capacity,
        same_destination: true,
        ws_cap: Some(u64::from(plan.target.plan.realtime.max_connections)),
    };
    match budget::check(&input) {
        Ok(_) => Ok(workers.clamp(1, u64::from(u32::MAX)) as u32),
        Err(short) => {
            let lines: Vec<String> = short.iter().map(ToString::to_string).collect();
            Err(RunError::BadInput(format!(
                "the run does not fit this machine: {}",
                lines.join("; ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(cap: &str) -> RunPlan {
        let text = format!(
            "[scenario]\nname = \"t\"\n[target]\nkind = \"embedded\"\nplan = \"team\"\n\
             plan_overrides = {{ \"realtime.max_connections\" = {cap} }}\n\
             [population]\nusers = 50000\ndevices_per_user = 2\n\
             [[phases]]\nname = \"hold\"\nduration = \"10s\"\ndevices = \"100%\"\n"
        );
        syncstorm_scenario::from_str_with("t.toml", &text, &[], &[]).unwrap()
    }

    #[test]
    fn refused_websockets_hold_no_server_socket() {
        let shape = Shape {
            devices: 100_000,
            http_per_device: 1,
            ws_per_device: 1,
        };
        assert_eq!(shape.held_sockets(&plan("10000")), 110_000);
        assert_eq!(shape.held_sockets(&plan("500000")), 200_000);
    }
}
