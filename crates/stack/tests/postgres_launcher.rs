//! The launcher against the machine's real PostgreSQL binaries: settings, URLs, and that no
//! server process or directory outlives a cluster however its owner ends.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use syncstorm_stack::postgres::{Cluster, ClusterOptions};

/// Live processes whose command line mentions `dir` (the postmaster and its backends).
fn processes_using(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(&needle) && !is_zombie(*pid)
        })
        .collect()
}

fn is_zombie(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')')
        .next()
        .is_some_and(|rest| rest.trim_start().starts_with('Z'))
}

async fn show(url: &str, setting: &str) -> String {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let row = client
        .query_one(&format!("show {setting}"), &[])
        .await
        .unwrap();
    row.get(0)
}

#[tokio::test]
async fn starts_with_the_requested_settings_and_cleans_up_on_stop() {
    let opts = ClusterOptions {
        max_connections: 37,
        shared_buffers_mb: 48,
        max_replication_slots: 7,
        max_wal_senders: 6,
        durable: false,
        run_dir: None,
    };
    let cluster = Cluster::start(opts).await.unwrap();
    let url = cluster.superuser_url();
    assert_eq!(
        url,
        format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port())
    );
    assert_eq!(show(&url, "max_connections").await, "37");
    assert_eq!(show(&url, "shared_buffers").await, "48MB");
    assert_eq!(show(&url, "wal_level").await, "logical");
    assert_eq!(show(&url, "max_replication_slots").await, "7");
    assert_eq!(show(&url, "max_wal_senders").await, "6");
    assert_eq!(show(&url, "listen_addresses").await, "127.0.0.1");
    assert_eq!(show(&url, "fsync").await, "off", "asked for speed");
    assert_eq!(show(&url, "full_page_writes").await, "off");
    assert_eq!(
        show(&url, "synchronous_commit").await,
        "on",
        "kept for Realtime"
    );

    let dir = cluster.dir().to_path_buf();
    assert!(!processes_using(&dir).is_empty());
    cluster.stop().await.unwrap();
    assert!(processes_using(&dir).is_empty());
    assert!(!dir.exists());
}

#[tokio::test]
async fn drop_stops_the_server_and_removes_its_directory() {
    let cluster = Cluster::start(ClusterOptions::default()).await.unwrap();
    let dir = cluster.dir().to_path_buf();
    let pid = cluster.pid().unwrap();
    drop(cluster);
    assert!(
        processes_using(&dir).is_empty(),
        "postmaster {pid} or a backend survived"
    );
    assert!(!dir.exists());
}

#[tokio::test]
async fn logical_replication_slots_can_be_made_with_pgoutput_and_wal2json_where_installed() {
    let cluster = Cluster::start(ClusterOptions::default()).await.unwrap();
    let (client, conn) = tokio_postgres::connect(&cluster.superuser_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let create = "select pg_create_logical_replication_slot($1, $2)";
    client
        .execute(create, &[&"probe_pg", &"pgoutput"])
        .await
        .unwrap();
    match client.execute(create, &[&"probe_w2j", &"wal2json"]).await {
        Ok(_) => {}
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_FILE) => {
            eprintln!("SKIPPED the wal2json half: the plugin is not installed here");
        }
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn a_user_supplied_run_dir_is_kept_and_only_the_cluster_dir_removed() {
    let parent = tempfile::tempdir().unwrap();
    let opts = ClusterOptions {
        run_dir: Some(parent.path().to_path_buf()),
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start(opts).await.unwrap();
    assert!(cluster.dir().starts_with(parent.path()));
    let dir = cluster.dir().to_path_buf();
    drop(cluster);
    assert!(!dir.exists());
    assert!(parent.path().exists());
}

/// Child mode: when set, the test process starts a cluster, prints its directory on stdout,
/// then panics or waits to be killed, per the variable's value.
const CHILD_ENV: &str = "SYNCSTORM_LAUNCHER_CHILD";
const DIR_LINE: &str = "CLUSTER_DIR=";

#[tokio::test]
async fn child_process_body() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return; // only meaningful when spawned by the tests below
    };
    let (mode, parent) = spec.split_once(':').unwrap();
    let opts = ClusterOptions {
        run_dir: Some(PathBuf::from(parent)),
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start(opts).await.unwrap();
    println!("{DIR_LINE}{}", cluster.dir().display());
    if mode == "panic" {
        panic!("deliberate panic while holding a cluster");
    }
    // Wait for SIGKILL; bounded so a broken parent cannot leave us running forever.
    tokio::time::sleep(std::time::Duration::from_secs(120)).await;
}

/// Runs `child_process_body` in a fresh test process; returns it once it reports its
/// cluster directory (its cluster accepts connections by then). The cluster lives under a
/// private parent, so no other process's stale-directory sweep can stop it: what stops it
/// is this process's doing alone.
fn spawn_child(mode: &str, parent: &Path) -> (Child, PathBuf) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_body",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{mode}:{}", parent.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let dir = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| Some(PathBuf::from(line.split_once(DIR_LINE)?.1)))
        .expect("the child never reported a cluster directory");
    // Keep draining, so the child never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, dir)
}

#[test]
fn a_panicking_owner_leaves_no_server_behind() {
    let parent = tempfile::tempdir().unwrap();
    let (mut child, dir) = spawn_child("panic", parent.path());
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was meant to panic");
    assert!(processes_using(&dir).is_empty());
    assert!(!dir.exists());
}

#[test]
fn a_killed_owner_leaves_no_server_behind() {
    let parent = tempfile::tempdir().unwrap();
    let (mut child, dir) = spawn_child("wait", parent.path());
    assert!(!processes_using(&dir).is_empty());
    child.kill().unwrap(); // SIGKILL: no destructor, no atexit hook
    child.wait().unwrap();
    // The parent-death signal makes the postmaster shut down by itself; watch it go (bounded).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !processes_using(&dir).is_empty() {
        assert!(
            Instant::now() < deadline,
            "postgres outlived its killed owner"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The next launch under the same parent directory sweeps the orphaned directory.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let opts = ClusterOptions {
        run_dir: Some(dir.parent().unwrap().to_path_buf()),
        ..ClusterOptions::default()
    };
    runtime.block_on(async { drop(Cluster::start(opts).await.unwrap()) });
    assert!(!dir.exists(), "orphaned cluster directory was not swept");
}

#[tokio::test]
async fn the_largest_plan_preset_boots() {
    let largest = syncstorm_plans::names()
        .into_iter()
        .map(|name| syncstorm_plans::SupabasePlan::preset(name).unwrap())
        .max_by_key(|plan| (plan.db_max_connections, plan.shared_buffers_mb))
        .unwrap();
    let cluster = Cluster::start(ClusterOptions::for_plan(&largest))
        .await
        .unwrap();
    let expected = largest.db_max_connections.to_string();
    assert_eq!(
        show(&cluster.superuser_url(), "max_connections").await,
        expected
    );
}

/// As root the server runs as `postgres`, which cannot enter a root-only directory: the error
/// says so instead of leaving the user with initdb's bare "Permission denied".
#[tokio::test]
async fn an_unreachable_run_dir_is_one_clear_error() {
    if !nix::unistd::geteuid().is_root() {
        return; // the server runs as ourselves: every directory we can reach, it can too
    }
    use std::os::unix::fs::PermissionsExt;
    let locked = tempfile::tempdir().unwrap();
    std::fs::set_permissions(locked.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let opts = ClusterOptions {
        run_dir: Some(locked.path().join("inner")),
        ..ClusterOptions::default()
    };
    let err = Cluster::start(opts).await.unwrap_err().to_string();
    assert!(
        err.contains("`postgres` OS user") && err.contains("cannot enter"),
        "{err}"
    );
    let leftovers = std::fs::read_dir(locked.path().join("inner"))
        .unwrap()
        .count();
    assert_eq!(
        leftovers, 0,
        "the failed cluster's directory was left behind"
    );
}
