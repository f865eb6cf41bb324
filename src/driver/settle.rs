//! Leaving the machine consistent when the driver stops mid-sync (the app is backgrounded or
//! the run ends): requests in flight are dropped, so the machine would wait for answers that
//! never come and hold every later trigger. Their failures are fed back instead, as are the
//! retries the machine schedules for them, until the sync has failed and the machine is idle.
//! Nothing of this is recorded: it is bookkeeping, not traffic.

use std::collections::VecDeque;

use syncstorm_device::{Action, Device, Event, Timer};

use super::requests::{failure_event, is_request};

/// Bound on steps (`usap.max_attempts` retries plus a pull or push per table fit easily).
const MAX_STEPS: usize = 10_000;

/// Feeds `failures` (stand-ins for dropped requests) and, if set, the pending USAP retry timer
/// (`retry_at_ms`), then every request and retry they cause, as failures, at once.
pub(crate) fn settle(
    device: &mut Device,
    failures: Vec<Event>,
    retry_at_ms: Option<i64>,
    now_ms: i64,
) {
    let mut queue: VecDeque<(Event, i64)> = failures.into_iter().map(|e| (e, now_ms)).collect();
    if let Some(at_ms) = retry_at_ms {
        queue.push_back((Event::TimerFired(Timer::UsapRetry), at_ms.max(now_ms)));
    }
    let mut steps = 0;
    while let Some((event, at_ms)) = queue.pop_front() {
        steps += 1;
        if steps > MAX_STEPS {
            break;
        }
        for action in device.step(event, at_ms) {
            match action {
                Action::SetTimer {
                    timer: Timer::UsapRetry,
                    at_ms: due,
                } => {
                    queue.push_back((Event::TimerFired(Timer::UsapRetry), due.max(at_ms)));
                }
                request if is_request(&request) => {
                    queue.push_back((failure_event(&request), at_ms))
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use syncstorm_device::{DeviceKnobs, Event};
    use uuid::Uuid;

    use super::*;

    #[test]
    fn a_device_stopped_mid_check_ends_idle_and_syncs_again_next_time() {
        let mut device = Device::new(
            1,
            Uuid::from_u128(1),
            Arc::new(DeviceKnobs::default()),
            0,
            1,
        );
        let actions = device.step(Event::AppOpened, 1_000);
        assert!(actions.contains(&Action::CheckToken), "{actions:?}");
        assert!(device.is_syncing());
        settle(
            &mut device,
            vec![Event::TokenChecked(Err(syncstorm_device::RequestFailed))],
            None,
            2_000,
        );
        assert!(!device.is_syncing() && !device.sync_again_pending());
        let reopened = device.step(Event::AppOpened, 100_000);
        assert!(reopened.contains(&Action::CheckToken), "{reopened:?}");
    }
}
