//! Shards: which slice of the population a process runs.
//!
//! A shard owns a contiguous range of users and every device of those users, so the oracle's
//! per-user checks never straddle two shards. `--shard i/n` (0-based, like a Kubernetes Indexed
//! Job's `JOB_COMPLETION_INDEX`) picks one slice; the local worker processes split a slice again
//! the same way, so "n pods × w workers" and "one machine × w workers" are the same arithmetic.

use std::ops::Range;
use std::str::FromStr;

/// `i/n`: run slice `i` of `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Users `[lo, hi)` of a population of `users` this shard owns.
    pub fn users(&self, users: u64) -> Range<u64> {
        split(0..users, self.index, self.count)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Why `--shard` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "--shard {0:?} is not valid: give i/n with 0 <= i < n, e.g. --shard 0/4 for the first of four"
)]
pub struct BadShard(String);

impl FromStr for Shard {
    type Err = BadShard;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadShard(text.to_string());
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = index.trim().parse().map_err(|_| bad())?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// Part `index` of `parts` of `range`, sizes differing by at most one.
pub fn split(range: Range<u64>, index: u32, parts: u32) -> Range<u64> {
    let len = range.end.saturating_sub(range.start);
    let parts = u64::from(parts.max(1));
    let index = u64::from(index).min(parts);
    let at = |i: u64| range.start + (len as u128 * i as u128 / parts as u128) as u64;
    at(index)..at(index + 1)
}

/// The devices of a user range: device `d` belongs to user `d / devices_per_user`.
pub fn devices_of(users: &Range<u64>, devices_per_user: u64) -> Range<u64> {
    users.start * devices_per_user..users.end * devices_per_user
}

/// The user a device belongs to.
pub fn user_of(device: u64, devices_per_user: u64) -> u64 {
    device / devices_per_user.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_zero_based_index_over_count() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(" 0 / 1 ".parse(), Ok(Shard::WHOLE));
        for bad in ["4/4", "1/0", "a/2", "3", "-1/2", ""] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.to_string().contains("0 <= i < n"), "{bad}: {err}");
        }
    }

    #[test]
    fn shards_partition_the_users_exactly() {
        for (users, count) in [(0u64, 3u32), (1, 4), (10, 3), (1_000, 7), (100_000, 12)] {
            let mut next = 0;
            for index in 0..count {
                let part = Shard { index, count }.users(users);
                assert_eq!(part.start, next, "users={users} count={count}");
                assert!(part.end - part.start <= users.div_ceil(u64::from(count)));
                next = part.end;
            }
            assert_eq!(next, users);
        }
    }

    #[test]
    fn workers_split_a_shard_like_shards_split_the_whole() {
        let shard = Shard { index: 1, count: 3 }.users(1_000);
        let mut next = shard.start;
        for worker in 0..4 {
            let part = split(shard.clone(), worker, 4);
            assert_eq!(part.start, next);
            next = part.end;
        }
        assert_eq!(next, shard.end);
    }

    #[test]
    fn devices_follow_their_users() {
        let users = 10..20;
        let devices = devices_of(&users, 3);
        assert_eq!(devices, 30..60);
        assert!(devices.clone().all(|d| users.contains(&user_of(d, 3))));
    }
}
