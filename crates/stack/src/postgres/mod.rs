//! A throwaway PostgreSQL cluster for the embedded stack and for tests.
//!
//! `Cluster::start` fills a fresh directory from a cached `initdb` template (see `template`),
//! starts `postgres` on a free loopback port with the plan's settings and waits until it
//! accepts connections. Dropping the `Cluster` (or `stop`) shuts the server down and removes
//! the directory; see `process` for how abrupt exits are covered. Superuser `postgres`, trust
//! authentication on 127.0.0.1.

mod binaries;
mod config;
mod process;
mod template;
mod testing;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use binaries::{BINDIR_ENV, Binaries};
pub use config::ClusterOptions;
pub use process::stop_all;
pub use template::NO_TEMPLATE_ENV;
pub use testing::shared_test_cluster;

use process::{RunAs, Running, Shared};

/// The superuser initdb creates, whatever OS user runs the server.
pub const SUPERUSER: &str = "postgres";

/// How long a fresh server may take to accept connections (2 shared cores, busy neighbours).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Ports are picked by binding port 0 and releasing it; another process may grab one first.
const PORT_ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(
        "PostgreSQL server binaries (initdb, postgres) were not found ({BINDIR_ENV} if set, else PATH, `pg_config --bindir` and /usr/lib/postgresql/*/bin); install them (`apt-get install postgresql-15`), point {BINDIR_ENV} at their directory, or pass --database-url to use an existing database"
    )]
    BinariesNotFound,
    #[error(
        "PostgreSQL refuses to run as root and there is no `postgres` OS user to run it as; create one (`useradd --system postgres`) or run syncstorm as a normal user"
    )]
    NoPostgresUser,
    #[error("cannot prepare the cluster directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the `postgres` OS user (the server cannot run as root) cannot enter {path}; put the run directory and the PostgreSQL binaries where every user can reach them, e.g. under /tmp"
    )]
    Unreachable { path: PathBuf },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("initdb failed ({status}): {output}")]
    Initdb { status: String, output: String },
    #[error("postgres exited while starting ({status}); its log ends with:\n{log}")]
    Exited { status: String, log: String },
    #[error("postgres did not accept connections within {}s; its log ends with:\n{log}", READY_TIMEOUT.as_secs())]
    NotReady { log: String },
    #[error("cannot stop postgres cleanly: {0}")]
    Stop(String),
}

/// A running throwaway cluster. Dropping it stops the server and removes its directory.
#[derive(Debug)]
pub struct Cluster {
    port: u16,
    dir: PathBuf,
    running: Shared,
}

impl Cluster {
    pub async fn start(opts: ClusterOptions) -> Result<Cluster, LaunchError> {
        let bins = Binaries::discover().ok_or(LaunchError::BinariesNotFound)?;
        let run_as = process::run_as().map_err(|()| LaunchError::NoPostgresUser)?;
        let parent = opts.run_dir.clone().unwrap_or_else(std::env::temp_dir);
        let prepared = tokio::task::spawn_blocking(move || prepare(&bins, &opts, &parent, run_as))
            .await
            .expect("cluster preparation panicked")?;
        let running = Arc::new(Mutex::new(Running {
            child: None,
            cluster_dir: prepared.dir.clone(),
        }));
        process::register(&running);
        let cluster = Cluster {
            port: 0,
            dir: prepared.dir.clone(),
            running,
        };
        // From here on, an error drops `cluster`, which removes the directory.
        cluster.boot(&prepared).await
    }

    async fn boot(mut self, prepared: &Prepared) -> Result<Cluster, LaunchError> {
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port().map_err(|source| self.dir_error(source))?;
            let child = prepared.spawn_postgres(port)?;
            self.lock().child = Some(child);
            self.port = port;
            match self.wait_ready().await {
                Ok(()) => return Ok(self),
                Err(LaunchError::Exited { status, log }) if log.contains("could not bind") => {
                    last_error = Some(LaunchError::Exited { status, log });
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.expect("at least one port attempt"))
    }

    /// Connects until the server answers, giving up if it exits or `READY_TIMEOUT` passes.
    async fn wait_ready(&self) -> Result<(), LaunchError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = self.superuser_url();
        loop {
            if let Some(status) = self.exit_status() {
                return Err(LaunchError::Exited {
                    status,
                    log: self.log_tail(),
                });
            }
            let attempt = tokio_postgres::connect(&url, tokio_postgres::NoTls);
            if let Ok(Ok((client, conn))) =
                tokio::time::timeout(Duration::from_secs(2), attempt).await
            {
                drop(client);
                let _ = conn.await;
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LaunchError::NotReady {
                    log: self.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn exit_status(&self) -> Option<String> {
        let mut running = self.lock();
        let status = running.child.as_mut()?.try_wait().ok()??;
        running.child = None;
        Some(status.to_string())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`
    pub fn superuser_url(&self) -> String {
        self.url_as(SUPERUSER)
    }

    /// A URL logging in as `role` (trust auth: no password), e.g. `authenticator`.
    pub fn url_as(&self, role: &str) -> String {
        format!("postgres://{role}@127.0.0.1:{}/postgres", self.port)
    }

    /// The cluster's own directory (data in `data/`, server log in `postgres.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The postmaster's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.lock().child.as_ref().map(|c| c.id())
    }

    pub async fn stop(self) -> Result<(), LaunchError> {
        let running = self.running.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            running.lock().unwrap_or_else(|e| e.into_inner()).shutdown()
        })
        .await
        .expect("cluster shutdown panicked");
        drop(self); // already stopped: Drop only unregisters
        outcome.map_err(LaunchError::Stop)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log_tail(&self) -> String {
        log_tail(&self.dir.join("postgres.log"))
    }

    fn dir_error(&self, source: std::io::Error) -> LaunchError {
        LaunchError::Dir {
            path: self.dir.clone(),
            source,
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = self.lock().shutdown() {
            eprintln!("syncstorm: {e}");
        }
        process::unregister(&self.running);
    }
}

/// An initialised data directory, ready to start.
struct Prepared {
    bins: Binaries,
    dir: PathBuf,
    run_as: Option<RunAs>,
}

impl Prepared {
    fn spawn_postgres(&self, port: u16) -> Result<std::process::Child, LaunchError> {
        let log_path = self.dir.join("postgres.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| LaunchError::Dir {
                path: log_path,
                source,
            })?;
        let log_err = log.try_clone().map_err(|source| LaunchError::Dir {
            path: self.dir.clone(),
            source,
        })?;
        let mut cmd = Command::new(self.bins.postgres());
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .arg("-p")
            .arg(port.to_string())
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        // Own process group: a terminal's Ctrl-C reaches syncstorm, which stops the server in
        // order, instead of killing the server under it.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        process::apply_run_as(&mut cmd, self.run_as);
        process::spawn_guarded(cmd).map_err(|source| LaunchError::Spawn {
            program: self.bins.postgres(),
            source,
        })
    }
}

/// Makes the cluster directory, runs initdb and writes the configuration (blocking).
fn prepare(
    bins: &Binaries,
    opts: &ClusterOptions,
    parent: &Path,
    run_as: Option<RunAs>,
) -> Result<Prepared, LaunchError> {
    let dir_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LaunchError::Dir { path, source }
    };
    std::fs::create_dir_all(parent).map_err(dir_err(parent))?;
    process::sweep_stale_dirs(parent);
    let dir = tempfile::Builder::new()
        .prefix(process::DIR_PREFIX)
        .tempdir_in(parent)
        .map_err(dir_err(parent))?
        .keep();
    let prepared = Prepared {
        bins: bins.clone(),
        dir: dir.clone(),
        run_as,
    };
    let result = init_data_dir(&prepared, opts);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result.map(|()| prepared)
}

fn init_data_dir(prepared: &Prepared, opts: &ClusterOptions) -> Result<(), LaunchError> {
    let dir = &prepared.dir;
    let dir_err = |source| LaunchError::Dir {
        path: dir.clone(),
        source,
    };
    std::fs::write(
        dir.join(process::OWNER_FILE),
        std::process::id().to_string(),
    )
    .map_err(dir_err)?;
    process::chown_tree(dir, prepared.run_as).map_err(dir_err)?;
    template::init_data(prepared)?;
    let data = dir.join("data");
    let conf_lines = opts.conf_lines(config::socket_dir_if_short(dir));
    append(&data.join("postgresql.conf"), &conf_lines).map_err(dir_err)?;
    std::fs::write(data.join("pg_hba.conf"), config::PG_HBA).map_err(dir_err)?;
    process::chown_tree(&data.join("pg_hba.conf"), prepared.run_as).map_err(dir_err)
}

fn run_initdb(prepared: &Prepared) -> Result<(), LaunchError> {
    let mut cmd = Command::new(prepared.bins.initdb());
    cmd.arg("-D")
        .arg(prepared.dir.join("data"))
        .args(template::INITDB_ARGS)
        .current_dir(&prepared.dir)
        .stdin(Stdio::null());
    process::apply_run_as(&mut cmd, prepared.run_as);
    let out = cmd.output().map_err(|source| {
        if prepared.run_as.is_some() && source.kind() == std::io::ErrorKind::PermissionDenied {
            return unreachable(prepared);
        }
        LaunchError::Spawn {
            program: prepared.bins.initdb(),
            source,
        }
    })?;
    if out.status.success() {
        return Ok(());
    }
    let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stdout));
    if prepared.run_as.is_some() && output.contains("Permission denied") {
        return Err(unreachable(prepared));
    }
    Err(LaunchError::Initdb {
        status: out.status.to_string(),
        output: output.trim().to_string(),
    })
}

/// The directory the `postgres` user could not enter: the binaries' (e.g. a copy under a
/// private temp dir) when those are out of its reach, else the run directory.
fn unreachable(prepared: &Prepared) -> LaunchError {
    let bins_out_of_reach = prepared
        .run_as
        .is_some_and(|run_as| !template::reachable_by(&prepared.bins.bindir, run_as));
    LaunchError::Unreachable {
        path: match bins_out_of_reach {
            true => prepared.bins.bindir.clone(),
            false => prepared.dir.clone(),
        },
    }
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
    file.write_all(text.as_bytes())
}

fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// The last lines of the server log, for error messages.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
