//! A counting allocator: live heap bytes, and live allocations by size class, so the bench can
//! say where an idle device's bytes go (the resident set also holds allocator slack and
//! fragmentation, which this does not).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

/// Size classes by powers of two: ≤16 B, ≤32 B, … ≤256 KiB, larger.
const CLASSES: usize = 16;

static COUNT: [AtomicI64; CLASSES] = [const { AtomicI64::new(0) }; CLASSES];
static BYTES: [AtomicI64; CLASSES] = [const { AtomicI64::new(0) }; CLASSES];

pub struct Counting;

fn class(size: usize) -> usize {
    let bits = usize::BITS - (size.max(16) - 1).leading_zeros();
    (bits as usize).saturating_sub(4).min(CLASSES - 1)
}

fn note(size: usize, sign: i64) {
    let c = class(size);
    COUNT[c].fetch_add(sign, Relaxed);
    BYTES[c].fetch_add(sign * size as i64, Relaxed);
}

// SAFETY: every call is passed on to the system allocator unchanged; only counters move.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size(), 1);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size(), 1);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(layout.size(), -1);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(layout.size(), -1);
            note(new_size, 1);
        }
        p
    }
}

/// Live allocations at one moment.
#[derive(Debug, Clone)]
pub struct Heap {
    count: [i64; CLASSES],
    bytes: [i64; CLASSES],
}

pub fn now() -> Heap {
    Heap {
        count: COUNT.each_ref().map(|c| c.load(Relaxed)),
        bytes: BYTES.each_ref().map(|b| b.load(Relaxed)),
    }
}

impl Heap {
    /// What `n` devices added since `before`, per device: the total, then each size class
    /// holding at least 0.1 KiB (allocations per device × class, and their bytes).
    pub fn per_device(&self, before: &Heap, n: usize) -> String {
        let n = n.max(1) as f64;
        let total: i64 = (0..CLASSES).map(|c| self.bytes[c] - before.bytes[c]).sum();
        let mut text = format!("{:.1} KiB live heap per device;", total as f64 / n / 1024.0);
        for c in 0..CLASSES {
            let bytes = (self.bytes[c] - before.bytes[c]) as f64 / n;
            if bytes.abs() < 102.4 {
                continue;
            }
            let count = (self.count[c] - before.count[c]) as f64 / n;
            let label = match 16usize << c {
                s if c == CLASSES - 1 => format!(">{} KiB", s / 2048),
                s if s >= 1024 => format!("≤{} KiB", s / 1024),
                s => format!("≤{s} B"),
            };
            text.push_str(&format!(
                " {label} ×{count:.1} = {:.1} KiB,",
                bytes / 1024.0
            ));
        }
        text.pop();
        text
    }
}
