//! Running the server processes so that none outlives this process.
//!
//! Three layers, from the normal path to the abrupt one:
//! 1. `Cluster`'s `Drop` (normal exit, panic unwind) and `stop_all` (for a signal handler, and
//!    an `atexit` hook, which also covers clusters held in statics that are never dropped);
//! 2. `PR_SET_PDEATHSIG`: the postmaster gets SIGQUIT (immediate shutdown) when its parent dies.
//!    The signal fires when the *thread* that forked exits, so every postmaster is forked by one
//!    spawner thread that lives as long as the process;
//! 3. `sweep_stale_dirs`: a cluster whose owner died without cleanup (SIGKILL) has its
//!    directory removed, and any postmaster still serving it stopped, by the next launch.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The OS user the server runs as: `postgres` when we are root (PostgreSQL refuses root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

/// `Ok(None)` when not root (run as ourselves); `Err(())` when root and no `postgres` user.
pub(crate) fn run_as() -> Result<Option<RunAs>, ()> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match nix::unistd::User::from_name("postgres") {
        Ok(Some(user)) => Ok(Some(RunAs {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        })),
        _ => Err(()),
    }
}

/// Applies the user switch to a command (std sets groups, gid, uid before `pre_exec` hooks).
pub(crate) fn apply_run_as(cmd: &mut Command, run_as: Option<RunAs>) {
    use std::os::unix::process::CommandExt;
    if let Some(RunAs { uid, gid }) = run_as {
        cmd.gid(gid).uid(uid);
    }
}

/// Changes the owner of `path` and everything below it.
pub(crate) fn chown_tree(path: &Path, run_as: Option<RunAs>) -> std::io::Result<()> {
    let Some(RunAs { uid, gid }) = run_as else {
        return Ok(());
    };
    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), run_as)?;
        }
    }
    Ok(())
}

type SpawnJob = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Forks `cmd` from the process-lifetime spawner thread with a parent-death signal set.
pub(crate) fn spawn_guarded(mut cmd: Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let parent = nix::unistd::getpid();
    // SAFETY: the hook only makes async-signal-safe syscalls (prctl, getppid).
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGQUIT)?;
            // The parent may have died between fork and prctl: then nobody would signal us.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other("parent exited during spawn"));
            }
            Ok(())
        });
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?
}

fn spawner() -> &'static Mutex<mpsc::Sender<SpawnJob>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("postgres-spawner".into())
            .spawn(move || {
                // The sender lives in a static, so this loop ends only with the process.
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("cannot start the postgres spawner thread");
        Mutex::new(tx)
    })
}

/// A running (or stopped) postmaster and the directory it lives in.
#[derive(Debug)]
pub(crate) struct Running {
    pub child: Option<Child>,
    pub cluster_dir: PathBuf,
}

impl Running {
    /// Fast shutdown (SIGINT: abort transactions, disconnect), escalating to immediate
    /// (SIGQUIT) and SIGKILL if the server does not exit in time; then removes the directory.
    pub fn shutdown(&mut self) -> Result<(), String> {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child)?;
        }
        match std::fs::remove_dir_all(&self.cluster_dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove {}: {e}", self.cluster_dir.display())),
        }
    }
}

fn stop_child(child: &mut Child) -> Result<(), String> {
    let pid = Pid::from_raw(child.id() as i32);
    let steps = [
        (Signal::SIGINT, Duration::from_secs(15)),
        (Signal::SIGQUIT, Duration::from_secs(5)),
        (Signal::SIGKILL, Duration::from_secs(5)),
    ];
    for (signal, patience) in steps {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return Ok(());
        }
        let _ = kill(pid, signal);
        if wait_exit(child, patience) {
            return Ok(());
        }
    }
    Err(format!("postmaster {pid} did not exit after SIGKILL"))
}

/// Polls for the child's exit for at most `patience`.
pub(crate) fn wait_exit(child: &mut Child, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if Instant::now() >= deadline => return false,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

pub(crate) type Shared = Arc<Mutex<Running>>;

fn registry() -> &'static Mutex<Vec<Shared>> {
    static LIVE: OnceLock<Mutex<Vec<Shared>>> = OnceLock::new();
    LIVE.get_or_init(|| {
        // SAFETY: registering a plain extern "C" fn with libc's atexit.
        unsafe { libc::atexit(stop_all_at_exit) };
        Mutex::new(Vec::new())
    })
}

extern "C" fn stop_all_at_exit() {
    stop_all();
}

pub(crate) fn register(running: &Shared) {
    let mut live = registry().lock().unwrap_or_else(|e| e.into_inner());
    live.retain(|r| Arc::strong_count(r) > 1);
    live.push(running.clone());
}

pub(crate) fn unregister(running: &Shared) {
    let mut live = registry().lock().unwrap_or_else(|e| e.into_inner());
    live.retain(|r| !Arc::ptr_eq(r, running));
}

/// Stops every cluster this process started and removes their directories. Synchronous and
/// safe to call more than once; meant for a Ctrl-C/SIGTERM handler that exits afterwards.
pub fn stop_all() {
    let live: Vec<Shared> =
        std::mem::take(&mut *registry().lock().unwrap_or_else(|e| e.into_inner()));
    for running in live {
        let _ = running.lock().unwrap_or_else(|e| e.into_inner()).shutdown();
    }
}

/// Name prefix of cluster directories, and the file in each that names its owner process.
pub(crate) const DIR_PREFIX: &str = "syncstorm-pg-";
pub(crate) const OWNER_FILE: &str = "syncstorm-owner.pid";

/// Removes cluster directories under `parent` whose owner process is gone, first stopping a
/// postmaster still serving one (only if its command line names that directory).
pub(crate) fn sweep_stale_dirs(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let is_ours = entry.file_name().to_string_lossy().starts_with(DIR_PREFIX);
        if !is_ours || !owner_is_gone(&dir) {
            continue;
        }
        if let Some(pid) = read_pid(&dir.join("data/postmaster.pid"))
            && cmdline_mentions(pid, &dir)
        {
            let _ = kill(pid, Signal::SIGQUIT);
            wait_pid_gone(pid, Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn owner_is_gone(dir: &Path) -> bool {
    match read_pid(&dir.join(OWNER_FILE)) {
        Some(pid) => !pid_alive(pid),
        // No owner file: a directory being set up right now, or not ours; leave it.
        None => false,
    }
}

fn read_pid(path: &Path) -> Option<Pid> {
    let text = std::fs::read_to_string(path).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    Some(Pid::from_raw(pid))
}

fn pid_alive(pid: Pid) -> bool {
    !matches!(kill(pid, None), Err(nix::errno::Errno::ESRCH))
}

fn cmdline_mentions(pid: Pid, dir: &Path) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let needle = dir.as_os_str().as_encoded_bytes();
    cmdline.windows(needle.len()).any(|w| w == needle)
}

fn wait_pid_gone(pid: Pid, patience: Duration) {
    let deadline = Instant::now() + patience;
    while pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}
