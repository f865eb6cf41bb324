//! This machine's clock against the target's, from the `Date` header every HTTP answer carries
//! (RFC 9110 §6.6.1: the server's time, to the second).
//!
//! One answer only says which second the server is in. The moment the header turns to the next
//! second says more: that turn happened after the last old-second request was sent and before
//! the first new-second answer arrived. Asking every [`POLL`] until the header turns pins the
//! server's clock to within about (poll + round trip) / 2, the way `htpdate` does. Shards on
//! several machines measure this before their load so the merge can put them on the server's
//! clock.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::result::ClockOffset;

/// Pause between requests while waiting for the server's second to turn.
const POLL: Duration = Duration::from_millis(20);
/// Three turns at one request per [`POLL`] or so, with spare requests for slow answers.
const MAX_REQUESTS: u32 = 200;
/// Per-request deadline: a slow answer is useless for timing anyway.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The whole measurement gives up after this long (it runs beside the setup or the wait for
/// `--start-at`), keeping the best turn it saw.
pub const DEADLINE: Duration = Duration::from_secs(4);
/// A turn pinned this tightly ends the measurement; a looser one (a busy server answers
/// slowly) is improved on by the next turns, up to [`MAX_TURNS`].
const GOOD_ENOUGH_MS: f64 = 25.0;
const MAX_TURNS: u32 = 3;

/// One answer: when it was asked locally, when it came back, the server's second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub sent: DateTime<Utc>,
    pub received: DateTime<Utc>,
    /// Unix seconds of the answer's `Date` header.
    pub server_s: i64,
}

/// Measures against `{base_url}/auth/v1/user` (an answer without work: 401 without a session,
/// on GoTrue and on the embedded stack alike). Err is one sentence.
pub async fn measure(base_url: &str, api_key: &str) -> Result<ClockOffset, String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build the clock probe's HTTP client: {e}"))?;
    let url = format!("{}/auth/v1/user", base_url.trim_end_matches('/'));
    // The best turn seen so far, shared with the deadline below.
    let best = std::sync::Mutex::new(None::<ClockOffset>);
    let probe = async {
        let mut previous: Option<Reading> = None;
        let mut turns = 0;
        for asked in 1..=MAX_REQUESTS {
            let sent = Utc::now();
            let answer = client
                .get(&url)
                .header("apikey", api_key)
                .send()
                .await
                .map_err(|e| format!("the clock probe could not reach {url}: {e}"))?;
            let received = Utc::now();
            let date = answer
                .headers()
                .get(reqwest::header::DATE)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| format!("{url} answered without a Date header"))?;
            let server = httpdate::parse_http_date(date)
                .map_err(|_| format!("{url} answered with an unreadable Date header {date:?}"))?;
            let server_s = server
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let reading = Reading {
                sent,
                received,
                server_s,
            };
            if let Some(offset) = previous.and_then(|p| offset_at_turn(&p, &reading)) {
                turns += 1;
                let offset = ClockOffset {
                    requests: asked,
                    ..offset
                };
                let mut kept = best.lock().unwrap_or_else(|p| p.into_inner());
                if kept.is_none_or(|k| offset.uncertainty_ms < k.uncertainty_ms) {
                    *kept = Some(offset);
                }
                let good = kept.is_some_and(|k| k.uncertainty_ms <= GOOD_ENOUGH_MS);
                if good || turns == MAX_TURNS {
                    return Ok(());
                }
            }
            previous = Some(reading);
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    };
    let outcome = tokio::time::timeout(DEADLINE, probe).await;
    let kept = *best.lock().unwrap_or_else(|p| p.into_inner());
    match (kept, outcome) {
        (Some(offset), _) => Ok(offset),
        (None, Ok(Err(why))) => Err(why),
        (None, Ok(Ok(()))) => Err(format!(
            "the Date header of {url} did not turn to a new second in {MAX_REQUESTS} requests"
        )),
        (None, Err(_)) => Err(format!(
            "the clock probe against {url} saw no new second within {} s",
            DEADLINE.as_secs()
        )),
    }
}

/// The offset when `later` is the first answer of a new server second after `earlier`: the
/// second began between `earlier.sent` and `later.received`, so take the middle.
pub fn offset_at_turn(earlier: &Reading, later: &Reading) -> Option<ClockOffset> {
    if later.server_s <= earlier.server_s {
        return None;
    }
    let from = earlier.sent.timestamp_micros() as f64 / 1000.0;
    let to = later.received.timestamp_micros() as f64 / 1000.0;
    let turn_local_ms = (from + to) / 2.0;
    Some(ClockOffset {
        offset_ms: later.server_s as f64 * 1000.0 - turn_local_ms,
        uncertainty_ms: (to - from) / 2.0,
        requests: 2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    /// A server whose clock runs `ahead_ms` in front of ours, read at `local_ms`.
    fn reading(local_ms: i64, ahead_ms: i64) -> Reading {
        Reading {
            sent: at(local_ms - 1),
            received: at(local_ms + 1),
            server_s: (local_ms + ahead_ms).div_euclid(1000),
        }
    }

    #[test]
    fn the_turn_of_the_servers_second_gives_its_offset_to_a_few_ms() {
        for ahead in [-1_730, -250, 0, 40, 999, 86_400_123] {
            let base = 1_765_000_000_000;
            let readings: Vec<Reading> = (0..60).map(|i| reading(base + i * 21, ahead)).collect();
            let offset = readings
                .windows(2)
                .find_map(|w| offset_at_turn(&w[0], &w[1]))
                .unwrap();
            assert!(
                (offset.offset_ms - ahead as f64).abs() <= offset.uncertainty_ms,
                "ahead {ahead}: {offset:?}"
            );
            assert!(offset.uncertainty_ms < 15.0, "{offset:?}");
        }
    }

    #[test]
    fn answers_of_one_second_say_nothing_yet() {
        let a = reading(1_000_100, 0);
        let b = reading(1_000_300, 0);
        assert_eq!(offset_at_turn(&a, &b), None);
    }
}
