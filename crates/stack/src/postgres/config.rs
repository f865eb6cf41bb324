//! Cluster settings: what the plan asks for, written into `postgresql.conf` and `pg_hba.conf`.

use std::path::{Path, PathBuf};

use syncstorm_plans::SupabasePlan;

/// How to size the throwaway cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    pub max_connections: u32,
    pub shared_buffers_mb: u32,
    pub max_replication_slots: u32,
    pub max_wal_senders: u32,
    /// Crash-safe commits (`fsync`, `full_page_writes`), as on Supabase. Off, a commit costs
    /// no disk flush, which flatters every write the run measures.
    pub durable: bool,
    /// Parent directory for the cluster's own fresh directory (`syncstorm-pg-XXXXXX`), which is
    /// removed when the cluster stops. `None`: the system temp dir. The parent itself is never
    /// removed, so pointing this at an existing directory is safe.
    pub run_dir: Option<PathBuf>,
}

impl Default for ClusterOptions {
    /// PostgreSQL's and Supabase's image defaults (100 connections, 128 MB), with room for the
    /// replication slots several tests sharing one cluster may create.
    fn default() -> Self {
        ClusterOptions {
            max_connections: 100,
            shared_buffers_mb: 128,
            max_replication_slots: 20,
            max_wal_senders: 20,
            durable: true,
            run_dir: None,
        }
    }
}

impl ClusterOptions {
    /// The plan's connection limit and memory; replication settings as Supabase's image
    /// (`max_wal_senders = 10`), with 10 slots rather than the image's 5 so a realtime
    /// service and a few probes fit side by side.
    pub fn for_plan(plan: &SupabasePlan) -> Self {
        ClusterOptions {
            max_connections: plan.db_max_connections,
            shared_buffers_mb: plan.shared_buffers_mb,
            max_replication_slots: 10,
            max_wal_senders: 10,
            durable: true,
            run_dir: None,
        }
    }

    /// Lines appended to the `postgresql.conf` initdb wrote. The port is passed on the
    /// command line instead, so a port clash can be retried without rewriting the file.
    pub(crate) fn conf_lines(&self, socket_dir: Option<&Path>) -> String {
        let sockets = socket_dir
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        format!(
            "\n# --- syncstorm embedded stack ---\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{sockets}'\n\
             max_connections = {max_connections}\n\
             shared_buffers = '{shared_buffers}MB'\n\
             wal_level = logical\n\
             max_replication_slots = {slots}\n\
             max_wal_senders = {senders}\n\
             # Durable as Supabase is, unless asked otherwise; synchronous_commit stays on\n\
             # either way: with it off, commits reach the WAL (and so Realtime's slot) only at\n\
             # the WAL writer's next 200 ms round, adding that to every pulse's delivery.\n\
             fsync = {durable}\n\
             synchronous_commit = on\n\
             full_page_writes = {durable}\n\
             huge_pages = off\n\
             timezone = 'UTC'\n\
             log_timezone = 'UTC'\n\
             log_line_prefix = '%m [%p] %q%u@%d '\n\
             log_min_messages = warning\n",
            max_connections = self.max_connections,
            shared_buffers = self.shared_buffers_mb,
            slots = self.max_replication_slots,
            senders = self.max_wal_senders,
            durable = if self.durable { "on" } else { "off" },
        )
    }
}

/// Trust on loopback for everyone, replication included: the cluster is private to this
/// process, listens on 127.0.0.1 only, and is deleted on exit.
pub(crate) const PG_HBA: &str = "\
# syncstorm embedded stack: throwaway cluster, loopback only
local   all          all                 trust
host    all          all   127.0.0.1/32  trust
local   replication  all                 trust
host    replication  all   127.0.0.1/32  trust
";

/// Unix socket paths are limited to 107 bytes; a longer run dir gets TCP only.
pub(crate) fn socket_dir_if_short(dir: &Path) -> Option<&Path> {
    (dir.as_os_str().len() + "/.s.PGSQL.65535".len() < 100).then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_figures_reach_the_config() {
        let mut plan = SupabasePlan::preset("pro").unwrap();
        plan.db_max_connections = 77;
        plan.shared_buffers_mb = 96;
        let conf = ClusterOptions::for_plan(&plan).conf_lines(None);
        assert!(conf.contains("max_connections = 77\n"), "{conf}");
        assert!(conf.contains("shared_buffers = '96MB'\n"), "{conf}");
        assert!(conf.contains("wal_level = logical\n"), "{conf}");
        assert!(conf.contains("listen_addresses = '127.0.0.1'\n"), "{conf}");
    }

    #[test]
    fn long_run_dirs_get_no_socket() {
        let long = PathBuf::from(format!("/tmp/{}", "x".repeat(120)));
        assert_eq!(socket_dir_if_short(&long), None);
        assert!(socket_dir_if_short(Path::new("/tmp/syncstorm-pg-abc")).is_some());
    }
}
