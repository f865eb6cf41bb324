//! The counters Realtime's caps are checked against, shared by every process of one stack: a
//! small file mapped `MAP_SHARED` into each process (the parent creates it, workers map the
//! same path), or an anonymous mapping when one process serves everything — one code path
//! either way. Lock-free 64-bit atomics are address-free on the targets we build for, so a
//! compare-and-swap in one process is seen by every other.
//!
//! Layout, one `AtomicU64` per slot: [`CONNECTIONS`] (held across all workers), the per-second
//! windows, from [`WORKER_BASE`] one slot per worker holding the connections that worker took
//! (so the parent can give back a dead worker's places), and from [`CDC_AVERAGE`] the change
//! deliveries' 60-second moving average (its start second, then one bucket per second).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Connections held by every worker together.
pub const CONNECTIONS: usize = 0;
/// Joins this second (packed: second in the high 32 bits, count in the low 32).
pub const JOINS: usize = 1;
/// Channel messages this second (packed like [`JOINS`]).
pub const CHANNEL_EVENTS: usize = 2;
/// Worker `w`'s own connections live in slot `WORKER_BASE + w` (`w` 0 is the parent).
pub const WORKER_BASE: usize = 8;
/// The change deliveries' moving average: [`super::caps::MovingAverage::SLOTS`] slots from here.
pub const CDC_AVERAGE: usize = 64;
/// Slots in a region: room for [`crate::config::MAX_WORKERS`] workers, the moving average and
/// spare.
pub const SLOTS: usize = 128;
const BYTES: usize = SLOTS * std::mem::size_of::<AtomicU64>();

/// A mapping of [`SLOTS`] zero-initialised atomics.
pub struct CounterRegion {
    base: NonNull<AtomicU64>,
}

// SAFETY: the mapping is only ever accessed through atomics and lives until `drop`.
unsafe impl Send for CounterRegion {}
unsafe impl Sync for CounterRegion {}

impl CounterRegion {
    /// A region only this process sees (single-process stack, tests).
    pub fn private() -> io::Result<CounterRegion> {
        let flags = libc::MAP_SHARED | libc::MAP_ANONYMOUS;
        map(-1, flags)
    }

    /// Sizes `file` (fresh, empty) as a region and maps it; other processes map the same path
    /// with [`CounterRegion::open`].
    pub fn create_in(file: &File) -> io::Result<CounterRegion> {
        file.set_len(BYTES as u64)?;
        map(std::os::fd::AsRawFd::as_raw_fd(file), libc::MAP_SHARED)
    }

    /// Maps the region another process created at `path`.
    pub fn open(path: &Path) -> io::Result<CounterRegion> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len();
        if len != BYTES as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is {len} bytes, not a {BYTES}-byte counter region",
                    path.display()
                ),
            ));
        }
        // The mapping outlives the descriptor, and the parent may remove the file meanwhile.
        map(std::os::fd::AsRawFd::as_raw_fd(&file), libc::MAP_SHARED)
    }

    /// Slot `i` (panics past [`SLOTS`]: a layout bug, not input).
    pub fn slot(&self, i: usize) -> &AtomicU64 {
        &self.slots(i, 1)[0]
    }

    /// `len` slots from `start` (panics past [`SLOTS`]: a layout bug, not input).
    pub fn slots(&self, start: usize, len: usize) -> &[AtomicU64] {
        assert!(
            start + len <= SLOTS,
            "counter slots {start}+{len} are outside the region"
        );
        // SAFETY: `base` points at SLOTS atomics, mapped for the life of `self`.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(start), len) }
    }
}

fn map(fd: libc::c_int, flags: libc::c_int) -> io::Result<CounterRegion> {
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    // SAFETY: a fresh mapping of BYTES bytes; the kernel zero-fills anonymous and extended
    // file pages, and zero is a valid AtomicU64.
    let ptr = unsafe { libc::mmap(std::ptr::null_mut(), BYTES, prot, flags, fd, 0) };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let base = NonNull::new(ptr.cast::<AtomicU64>()).ok_or_else(io::Error::last_os_error)?;
    Ok(CounterRegion { base })
}

impl Drop for CounterRegion {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped; no reference outlives `self`.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), BYTES);
        }
    }
}

impl fmt::Debug for CounterRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CounterRegion {{ connections: {} }}",
            self.slot(CONNECTIONS).load(Ordering::Relaxed)
        )
    }
}

/// One worker's view of a region: the shared slots plus its own connection slot.
#[derive(Debug, Clone)]
pub struct SharedCounters {
    region: Arc<CounterRegion>,
    worker: usize,
}

impl SharedCounters {
    /// Worker `worker` (0-based, the parent is 0) of the stack whose region this is.
    pub fn new(region: Arc<CounterRegion>, worker: usize) -> SharedCounters {
        assert!(
            WORKER_BASE + worker < SLOTS,
            "worker {worker} has no counter slot"
        );
        SharedCounters { region, worker }
    }

    /// A private region with this process as its only worker.
    pub fn private() -> io::Result<SharedCounters> {
        Ok(SharedCounters::new(Arc::new(CounterRegion::private()?), 0))
    }

    pub fn slot(&self, i: usize) -> &AtomicU64 {
        self.region.slot(i)
    }

    pub fn slots(&self, start: usize, len: usize) -> &[AtomicU64] {
        self.region.slots(start, len)
    }

    /// Whether this is the stack's first process (it reports the stack-wide figures).
    pub fn is_first(&self) -> bool {
        self.worker == 0
    }

    /// This worker's own connection count.
    pub fn own_connections(&self) -> &AtomicU64 {
        self.region.slot(WORKER_BASE + self.worker)
    }

    /// Gives back every place `worker` still holds (it exited, so its sockets are gone);
    /// returns how many.
    pub fn release_worker(&self, worker: usize) -> u64 {
        let held = self
            .region
            .slot(WORKER_BASE + worker)
            .swap(0, Ordering::AcqRel);
        let _ =
            self.region
                .slot(CONNECTIONS)
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    Some(n.saturating_sub(held))
                });
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_mappings_of_one_file_see_each_others_writes() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let a = CounterRegion::create_in(file.as_file()).unwrap();
        let b = CounterRegion::open(file.path()).unwrap();
        a.slot(CONNECTIONS).fetch_add(3, Ordering::AcqRel);
        assert_eq!(b.slot(CONNECTIONS).load(Ordering::Acquire), 3);
        assert_eq!(b.slot(SLOTS - 1).load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_dead_workers_places_are_given_back() {
        let region = Arc::new(CounterRegion::private().unwrap());
        let parent = SharedCounters::new(Arc::clone(&region), 0);
        let child = SharedCounters::new(region, 1);
        parent.slot(CONNECTIONS).fetch_add(5, Ordering::AcqRel);
        parent.own_connections().fetch_add(2, Ordering::AcqRel);
        child.own_connections().fetch_add(3, Ordering::AcqRel);
        assert_eq!(parent.release_worker(1), 3);
        assert_eq!(parent.slot(CONNECTIONS).load(Ordering::Acquire), 2);
        assert_eq!(parent.release_worker(1), 0);
    }

    #[test]
    fn a_file_of_the_wrong_size_is_refused() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = CounterRegion::open(file.path()).unwrap_err();
        assert!(
            err.to_string().contains("not a 1024-byte counter region"),
            "{err}"
        );
    }
}
