//! One cluster per test binary: booting costs 1–2 s, so tests in a binary share one.

use std::sync::OnceLock;

use super::{Cluster, ClusterOptions};

/// A cluster with the schema applied (compat SQL + migrations), started on first use and
/// shared by every test in the binary. Callable from sync and async tests alike (it boots on
/// its own thread and runtime). It is never dropped: the `atexit` hook stops it and removes
/// its directory when the test binary exits, and the parent-death signal covers a kill.
///
/// Tests sharing it must not interfere: create your own users (fresh uuids) and rows, and
/// don't change cluster-wide settings. Panics if the cluster cannot start — test support only.
pub fn shared_test_cluster() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(|| {
        let booted = std::thread::spawn(boot_with_schema)
            .join()
            .expect("shared test cluster boot thread panicked");
        booted.unwrap_or_else(|e| panic!("shared test cluster: {e}"))
    })
}

fn boot_with_schema() -> Result<Cluster, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        // Durability is not what these tests are about; commits that skip the disk flush
        // keep a suite of hundreds of writes quick on a shared machine.
        let options = ClusterOptions {
            durable: false,
            ..ClusterOptions::default()
        };
        let cluster = Cluster::start(options).await.map_err(|e| e.to_string())?;
        crate::schema::apply(&cluster.superuser_url())
            .await
            .map_err(|e| e.to_string())?;
        Ok(cluster)
    })
}
