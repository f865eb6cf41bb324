//! One sync: USAP check (with retries), tiered delta pull with keyset pages, push by tier in
//! batches, in the order `sync.order` names. Runs as `impl Device` over `SyncRun` state.

use crate::event::{
    Action, Keyset, PageQuery, RequestFailed, SyncOutcome, SyncStage, Timer, Trigger,
};
use crate::knobs::{PulseMode, SyncOrder, TierConcurrency};
use crate::machine::Device;
use crate::push::PushState;
use crate::retry::check_delay_ms;
use crate::row::Row;
use crate::table::Table;
use uuid::Uuid;

/// The state of the sync in progress.
#[derive(Debug)]
pub(crate) struct SyncRun {
    /// The token read by this sync's check (becomes `local_token` after the pull).
    server_token: Option<i64>,
    pull_skipped: bool,
    rows_pulled: u32,
    pub(crate) rows_pushed: u32,
    pub(crate) stage: Stage,
}

#[derive(Debug)]
pub(crate) enum Stage {
    Check {
        attempt: u32,
        waiting: bool,
    },
    Pull {
        tier: u8,
        not_started: Vec<Table>,
        in_flight: Vec<Table>,
    },
    Push(PushState),
}

impl SyncRun {
    pub fn heap_bytes(&self) -> usize {
        let stage = match &self.stage {
            Stage::Check { .. } => 0,
            Stage::Pull {
                not_started,
                in_flight,
                ..
            } => (not_started.capacity() + in_flight.capacity()) * size_of::<Table>(),
            Stage::Push(p) => {
                p.queue.capacity() * size_of::<Uuid>() + p.batch.capacity() * size_of::<Row>()
            }
        };
        size_of::<SyncRun>() + stage
    }
}

impl Device {
    pub(crate) fn start_sync(
        &mut self,
        trigger: Trigger,
        triggered_at_ms: i64,
        out: &mut Vec<Action>,
    ) {
        self.stats.syncs_started += 1;
        out.push(Action::SyncStarted {
            trigger,
            triggered_at_ms,
        });
        self.run = Some(Box::new(SyncRun {
            server_token: None,
            pull_skipped: false,
            rows_pulled: 0,
            rows_pushed: 0,
            stage: Stage::Check {
                attempt: 1,
                waiting: false,
            },
        }));
        match self.knobs.sync.order {
            SyncOrder::CheckPullPush => self.begin_check(out),
            SyncOrder::PushThenPull => self.begin_push(triggered_at_ms, out),
        }
    }

    pub(crate) fn run_mut(&mut self) -> &mut SyncRun {
        self.run.as_mut().expect("a sync is running")
    }

    pub(crate) fn begin_check(&mut self, out: &mut Vec<Action>) {
        self.run_mut().stage = Stage::Check {
            attempt: 1,
            waiting: false,
        };
        out.push(Action::CheckToken);
    }

    pub(crate) fn on_token(
        &mut self,
        result: Result<i64, RequestFailed>,
        now_ms: i64,
        out: &mut Vec<Action>,
    ) {
        let Some(Stage::Check {
            attempt,
            waiting: false,
        }) = self.run.as_ref().map(|r| &r.stage)
        else {
            return; // an answer nobody waits for (stale after a failed sync)
        };
        let attempt = *attempt;
        match result {
            Ok(server_token) => {
                let local = self.store.local_token;
                let run = self.run_mut();
                run.server_token = Some(server_token);
                if local.is_some_and(|l| server_token <= l) {
                    run.pull_skipped = true;
                    self.after_pull(now_ms, out);
                } else {
                    self.begin_tier(1, now_ms, out);
                }
            }
            Err(RequestFailed) => {
                self.stats.check_attempts_failed += 1;
                if attempt >= self.knobs.usap.max_attempts {
                    return self.finish(Some(SyncStage::Check), now_ms, out);
                }
                let delay = check_delay_ms(&self.knobs.usap, attempt, &mut self.rng);
                self.run_mut().stage = Stage::Check {
                    attempt,
                    waiting: true,
                };
                out.push(Action::SetTimer {
                    timer: Timer::UsapRetry,
                    at_ms: now_ms.saturating_add(delay),
                });
            }
        }
    }

    pub(crate) fn on_retry_timer(&mut self, _now_ms: i64, out: &mut Vec<Action>) {
        if let Some(run) = self.run.as_mut()
            && let Stage::Check {
                attempt,
                waiting: true,
            } = run.stage
        {
            run.stage = Stage::Check {
                attempt: attempt + 1,
                waiting: false,
            };
            out.push(Action::CheckToken);
        }
    }

    /// Starts pulling tier `tier` (1..=3); past tier 3 the pull is done.
    fn begin_tier(&mut self, tier: u8, now_ms: i64, out: &mut Vec<Action>) {
        if tier > 3 {
            return self.after_pull(now_ms, out);
        }
        let mut not_started: Vec<Table> = Table::of_tier(tier).collect();
        let starting = match self.knobs.pull.tier_concurrency {
            TierConcurrency::Sequential => 1,
            TierConcurrency::Concurrent => not_started.len(),
        };
        let in_flight: Vec<Table> = not_started.drain(..starting).collect();
        for &table in &in_flight {
            out.push(self.first_page(table));
        }
        self.run_mut().stage = Stage::Pull {
            tier,
            not_started,
            in_flight,
        };
    }

    fn first_page(&self, table: Table) -> Action {
        let after = self.store.cursor(table).map(|updated_at_ms| Keyset {
            updated_at_ms,
            id: None,
        });
        Action::FetchPage(PageQuery {
            table,
            after,
            limit: self.knobs.pull.page_size,
        })
    }

    pub(crate) fn on_page(
        &mut self,
        table: Table,
        result: Result<Vec<Row>, RequestFailed>,
        now_ms: i64,
        out: &mut Vec<Action>,
    ) {
        let Some(Stage::Pull { in_flight, .. }) = self.run.as_ref().map(|r| &r.stage) else {
            return;
        };
        if !in_flight.contains(&table) {
            return;
        }
        let Ok(rows) = result else {
            return self.finish(Some(SyncStage::Pull), now_ms, out);
        };
        self.apply_page(table, &rows);
        let page_full = rows.len() >= self.knobs.pull.page_size as usize;
        match rows.last() {
            Some(last) if page_full => {
                let after = Some(Keyset {
                    updated_at_ms: last.updated_at_ms,
                    id: Some(last.id),
                });
                out.push(Action::FetchPage(PageQuery {
                    table,
                    after,
                    limit: self.knobs.pull.page_size,
                }));
            }
            _ => self.table_pulled(table, now_ms, out),
        }
    }

    /// Applies a page with LWW, counts FK errors, and moves the cursor. After a full page the
    /// cursor stops just below the page's last timestamp: rows sharing that timestamp may sit
    /// on the next page, and if the pull fails before it, `updated_at > cursor` must still
    /// find them next time (re-applying the ones already seen is harmless).
    fn apply_page(&mut self, table: Table, rows: &[Row]) {
        let stored = self.store.apply_page(table, rows);
        self.store.count_fk_errors(rows);
        self.stats.rows_pulled += rows.len() as u64;
        self.stats.local_wins += (rows.len() as u32 - stored) as u64;
        let run = self.run_mut();
        run.rows_pulled = run.rows_pulled.saturating_add(rows.len() as u32);
        let Some(last) = rows.last() else { return };
        let cursor = if rows.len() >= self.knobs.pull.page_size as usize {
            rows.iter()
                .map(|r| r.updated_at_ms)
                .filter(|&t| t < last.updated_at_ms)
                .max()
        } else {
            rows.iter().map(|r| r.updated_at_ms).max()
        };
        if let Some(cursor) = cursor {
            self.store.set_cursor(table, cursor);
        }
    }

    fn table_pulled(&mut self, table: Table, now_ms: i64, out: &mut Vec<Action>) {
        let Some(Stage::Pull {
            tier,
            not_started,
            in_flight,
        }) = self.run.as_mut().map(|r| &mut r.stage)
        else {
            return;
        };
        in_flight.retain(|&t| t != table);
        let tier = *tier;
        if !not_started.is_empty() && in_flight.is_empty() {
            let next = not_started.remove(0);
            in_flight.push(next);
            out.push(self.first_page(next));
        } else if not_started.is_empty() && in_flight.is_empty() {
            self.begin_tier(tier + 1, now_ms, out);
        }
    }

    /// The pull is over (or skipped): adopt the token this sync's check read.
    fn after_pull(&mut self, now_ms: i64, out: &mut Vec<Action>) {
        if let Some(token) = self.run_mut().server_token {
            let local = self.store.local_token.get_or_insert(token);
            *local = (*local).max(token);
        }
        match self.knobs.sync.order {
            SyncOrder::CheckPullPush => self.begin_push(now_ms, out),
            SyncOrder::PushThenPull => self.finish(None, now_ms, out),
        }
    }

    /// Ends the sync (`failed` names the stage that failed), then starts the held trigger.
    pub(crate) fn finish(&mut self, failed: Option<SyncStage>, now_ms: i64, out: &mut Vec<Action>) {
        let Some(run) = self.run.take() else { return };
        let outcome = match failed {
            Some(stage) => {
                self.stats.syncs_failed += 1;
                SyncOutcome::Failed { stage }
            }
            None => {
                self.stats.syncs_completed += 1;
                self.stats.pulls_skipped += u32::from(run.pull_skipped);
                SyncOutcome::Completed {
                    pull_skipped: run.pull_skipped,
                    rows_pulled: run.rows_pulled,
                    rows_pushed: run.rows_pushed,
                }
            }
        };
        out.push(Action::SyncFinished { outcome });
        if failed.is_none() {
            self.after_first_success(now_ms, out);
        }
        if let Some((trigger, at)) = self.again.take() {
            self.trigger(trigger, at, out);
        }
    }

    fn after_first_success(&mut self, now_ms: i64, out: &mut Vec<Action>) {
        match self.knobs.pulse.mode {
            PulseMode::Websocket | PulseMode::LongPoll if !self.pulse_opened => {
                self.pulse_opened = true;
                out.push(Action::OpenPulse);
            }
            PulseMode::Periodic if !self.periodic_armed => self.arm_periodic(now_ms, out),
            _ => {}
        }
    }
}
