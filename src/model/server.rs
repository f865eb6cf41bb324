//! The server side of the capacity model as queues: a FIFO connection pool per service
//! (PostgREST's, GoTrue's) with an acquisition timeout, in front of one processor-sharing
//! server (PostgreSQL and the API processes on the same cores): each statement holding a
//! connection progresses at `min(1, capacity / running)` of its quiet-load speed.

use std::collections::VecDeque;

/// Which pool a request queues for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolId {
    Rest = 0,
    Auth = 1,
}

/// A FIFO pool of `size` connections; waiters give up after `timeout_us`.
#[derive(Debug)]
pub struct Pool {
    pub size: u32,
    pub in_use: u32,
    pub timeout_us: u64,
    /// Waiting requests (slot, serial) with the instant they arrived; entries of requests
    /// that already timed out (their slot may since hold another request) are skipped.
    queue: VecDeque<(usize, u32, u64)>,
    pub waiting: u32,
    /// Longest wait since the last probe sample (µs).
    pub max_wait_us: u64,
    pub timeouts: u64,
}

impl Pool {
    pub fn new(size: u32, timeout_us: u64) -> Pool {
        Pool {
            size: size.max(1),
            in_use: 0,
            timeout_us,
            queue: VecDeque::new(),
            waiting: 0,
            max_wait_us: 0,
            timeouts: 0,
        }
    }

    /// A connection at once (`true`), or the request waits (`false`).
    pub fn acquire(&mut self, request: usize, serial: u32, now_us: u64) -> bool {
        if self.in_use < self.size && self.waiting == 0 {
            self.in_use += 1;
            return true;
        }
        self.queue.push_back((request, serial, now_us));
        self.waiting += 1;
        false
    }

    /// A waiter gave up (its timeout fired while queued).
    pub fn give_up(&mut self, waited_us: u64) {
        self.waiting -= 1;
        self.timeouts += 1;
        self.max_wait_us = self.max_wait_us.max(waited_us);
    }

    /// A connection returns; the next live waiter (per `alive`) takes it.
    pub fn release(&mut self, now_us: u64, alive: impl Fn(usize, u32) -> bool) -> Option<usize> {
        while let Some((request, serial, since)) = self.queue.pop_front() {
            if !alive(request, serial) {
                continue;
            }
            self.waiting -= 1;
            self.max_wait_us = self.max_wait_us.max(now_us - since);
            return Some(request);
        }
        self.in_use -= 1;
        None
    }
}

/// Processor sharing over the statements holding connections.
#[derive(Debug)]
pub struct Cpu {
    /// Quiet-load seconds of work completed per second when busy.
    capacity: f64,
    /// (request, remaining quiet-load µs of work).
    running: Vec<(usize, f64)>,
    last_us: u64,
    /// Bumped at every change; a scheduled completion of an older generation is stale.
    pub generation: u64,
}

impl Cpu {
    pub fn new(capacity: f64) -> Cpu {
        Cpu {
            capacity: capacity.max(1e-3),
            running: Vec::new(),
            last_us: 0,
            generation: 0,
        }
    }

    fn rate(&self) -> f64 {
        (self.capacity / self.running.len().max(1) as f64).min(1.0)
    }

    fn advance(&mut self, now_us: u64) {
        let done = (now_us - self.last_us) as f64 * self.rate();
        for (_, remaining) in &mut self.running {
            *remaining -= done;
        }
        self.last_us = now_us;
    }

    /// Starts `work_us` of work for `request`; returns when the next completion is due.
    pub fn start(&mut self, request: usize, work_us: f64, now_us: u64) -> Option<u64> {
        self.advance(now_us);
        self.running.push((request, work_us.max(1.0)));
        self.generation += 1;
        self.next_due()
    }

    /// Removes every request finished by `now_us`; returns them and the next due instant.
    pub fn finish(&mut self, now_us: u64) -> (Vec<usize>, Option<u64>) {
        self.advance(now_us);
        let mut done = Vec::new();
        self.running.retain(|(request, remaining)| {
            // Within a microsecond of done counts as done (the clock ticks in µs).
            let finished = *remaining <= 1.0;
            if finished {
                done.push(*request);
            }
            !finished
        });
        self.generation += 1;
        (done, self.next_due())
    }

    /// When the next running statement finishes.
    pub fn next_due(&self) -> Option<u64> {
        let least = self
            .running
            .iter()
            .map(|(_, r)| *r)
            .min_by(f64::total_cmp)?;
        Some(self.last_us + (least.max(0.0) / self.rate()).ceil() as u64)
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_pool_queues_fifo_and_skips_requests_that_gave_up() {
        let mut pool = Pool::new(1, 10_000);
        assert!(pool.acquire(1, 1, 0));
        assert!(!pool.acquire(2, 2, 5));
        assert!(!pool.acquire(3, 3, 6));
        pool.give_up(10_000);
        // Request 2 gave up (and its slot now holds serial 9); 3 gets the connection after
        // waiting 94 µs.
        assert_eq!(
            pool.release(100, |r, serial| r != 2 && serial != 9),
            Some(3)
        );
        assert_eq!((pool.in_use, pool.waiting), (1, 0));
        assert_eq!(pool.release(200, |_, _| true), None);
        assert_eq!(pool.in_use, 0);
        assert_eq!(pool.timeouts, 1);
    }

    #[test]
    fn processor_sharing_slows_statements_past_the_capacity() {
        // Capacity 1: two statements of 100 µs started together finish together at 200 µs.
        let mut cpu = Cpu::new(1.0);
        cpu.start(1, 100.0, 0);
        let due = cpu.start(2, 100.0, 0).unwrap();
        assert_eq!(due, 200);
        let (done, next) = cpu.finish(due);
        assert_eq!((done.len(), next), (2, None));
        // Capacity 2: two statements run at full speed.
        let mut cpu = Cpu::new(2.0);
        cpu.start(1, 100.0, 0);
        assert_eq!(cpu.start(2, 100.0, 0), Some(100));
        // One started later finishes later; the first is unaffected by a third while ≤ 2 run.
        let mut cpu = Cpu::new(1.0);
        cpu.start(1, 100.0, 0);
        let due = cpu.start(2, 100.0, 50).unwrap();
        // At 50: #1 has 50 left, both at half speed → #1 done at 150.
        assert_eq!(due, 150);
        let (done, next) = cpu.finish(150);
        assert_eq!(done, vec![1]);
        // #2 had 100 − 50 = 50 left at 150, alone: done at 200.
        assert_eq!(next, Some(200));
    }
}
