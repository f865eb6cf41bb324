//! The swarm: devices on the plan's schedule, spread over worker processes, with budgets,
//! shards and faults. Protocol details live in the driver; the swarm only decides who runs
//! when and where.

pub mod behaviour;
pub mod budget;
pub mod coordinator;
pub mod faults;
pub mod fleet;
pub mod ipc;
mod oracle_adapter;
pub mod saturation;
pub mod schedule;
pub mod shard;
pub mod snoop;
pub mod task;
pub mod worker;
