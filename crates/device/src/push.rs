//! The push stage: dirty rows tier by tier (parents before children), in batches of
//! `push.batch_size`, in the mode `push.mode` names.

use crate::event::{AckedWrite, Action, PushAnswer, RequestFailed, SyncStage};
use crate::knobs::{PushMode, SyncOrder};
use crate::machine::Device;
use crate::row::Row;
use crate::sync::Stage;
use crate::table::Table;
use uuid::Uuid;

/// Progress of the push stage.
#[derive(Debug)]
pub(crate) struct PushState {
    pub table: Table,
    /// Dirty ids of `table` not yet sent, in push order (taken from the front).
    pub queue: Vec<Uuid>,
    /// The rows of the request in flight, exactly as sent.
    pub batch: Vec<Row>,
    /// `client_lww`: the read of the server's copies is in flight (the write comes next).
    pub reading: bool,
}

impl Device {
    pub(crate) fn begin_push(&mut self, now_ms: i64, out: &mut Vec<Action>) {
        let queue = self.store.dirty_ids(Table::Wallets);
        self.run_mut().stage = Stage::Push(PushState {
            table: Table::Wallets,
            queue,
            batch: Vec::new(),
            reading: false,
        });
        self.next_push(now_ms, out);
    }

    /// Sends the next batch, moving on table by table (tier order); past the last table the
    /// push is done.
    fn next_push(&mut self, now_ms: i64, out: &mut Vec<Action>) {
        let Some((table, batch)) = self.take_batch() else {
            return self.after_push(now_ms, out);
        };
        let action = match self.knobs.push.mode {
            PushMode::Upsert => Action::Upsert {
                table,
                rows: batch.clone(),
            },
            PushMode::ClientLww => Action::ReadRows {
                table,
                ids: batch.iter().map(|r| r.id).collect(),
            },
            PushMode::ServerLww => Action::PushRpc {
                table,
                rows: batch.clone(),
            },
        };
        if let Some(Stage::Push(push)) = self.run.as_mut().map(|r| &mut r.stage) {
            push.batch = batch;
            push.reading = matches!(action, Action::ReadRows { .. });
        }
        out.push(action);
    }

    /// The next up to `push.batch_size` rows still dirty, moving to the next table when one
    /// is done; `None` when every table is.
    fn take_batch(&mut self) -> Option<(Table, Vec<Row>)> {
        let batch_size = self.knobs.push.batch_size as usize;
        let user_id = self.user_id();
        let Some(Stage::Push(push)) = self.run.as_mut().map(|r| &mut r.stage) else {
            return None;
        };
        loop {
            if push.queue.is_empty() {
                push.table = *Table::ALL.get(push.table.index() + 1)?;
                push.queue = self.store.dirty_ids(push.table);
                continue;
            }
            let take = batch_size.min(push.queue.len());
            let table = push.table;
            let batch: Vec<Row> = push
                .queue
                .drain(..take)
                .filter_map(|id| self.store.get(table, id).filter(|e| e.dirty()))
                .map(|e| e.to_row(table, user_id))
                .collect();
            if !batch.is_empty() {
                return Some((table, batch));
            }
        }
    }

    /// The batch in flight for `table`, if the machine waits for a read (`reading`) or for
    /// the write's answer; answers nobody waits for are ignored.
    fn pending_batch(&mut self, table: Table, reading: bool) -> Option<&mut PushState> {
        match self.run.as_mut().map(|r| &mut r.stage) {
            Some(Stage::Push(push))
                if push.table == table && !push.batch.is_empty() && push.reading == reading =>
            {
                Some(push)
            }
            _ => None,
        }
    }

    /// `client_lww`, after reading the server's copies: write only rows whose local
    /// `updated_at` is strictly newer; for the others take the server's copy.
    pub(crate) fn on_rows_read(
        &mut self,
        table: Table,
        result: Result<Vec<Row>, RequestFailed>,
        now_ms: i64,
        out: &mut Vec<Action>,
    ) {
        if self.pending_batch(table, true).is_none() {
            return;
        }
        let Ok(server_rows) = result else {
            return self.finish(Some(SyncStage::Push), now_ms, out);
        };
        let push = self.pending_batch(table, true).expect("checked above");
        let mut batch = std::mem::take(&mut push.batch);
        let mut refused = Vec::new();
        batch.retain(
            |local| match server_rows.iter().find(|s| s.id == local.id) {
                Some(server) if server.updated_at_ms >= local.updated_at_ms => {
                    refused.push((local.clone(), server.clone()));
                    false
                }
                _ => true,
            },
        );
        self.stats.rows_refused += refused.len() as u64;
        for (local, server) in &refused {
            self.store.refuse(AckedWrite::of(table, local));
            self.store.take_server_copy(server);
        }
        if batch.is_empty() {
            return self.next_push(now_ms, out);
        }
        out.push(Action::Upsert {
            table,
            rows: batch.clone(),
        });
        if let Some(Stage::Push(push)) = self.run.as_mut().map(|r| &mut r.stage) {
            push.batch = batch;
            push.reading = false;
        }
    }

    pub(crate) fn on_pushed(
        &mut self,
        table: Table,
        result: Result<PushAnswer, RequestFailed>,
        now_ms: i64,
        out: &mut Vec<Action>,
    ) {
        let Some(push) = self.pending_batch(table, false) else {
            return;
        };
        let Ok(answer) = result else {
            return self.finish(Some(SyncStage::Push), now_ms, out);
        };
        let batch = std::mem::take(&mut push.batch);
        let mut acked = 0u32;
        for row in &batch {
            if answer.rejected.contains(&row.id) {
                self.store.clear_dirty(table, row.id);
                self.store.refuse(AckedWrite::of(table, row));
                self.stats.rows_refused += 1;
                continue;
            }
            acked += 1;
            self.store.acknowledge(AckedWrite {
                table,
                id: row.id,
                updated_at_ms: row.updated_at_ms,
                value: row.value,
                deleted: row.deleted,
            });
        }
        self.stats.rows_pushed += u64::from(acked);
        let run = self.run_mut();
        run.rows_pushed = run.rows_pushed.saturating_add(acked);
        self.next_push(now_ms, out);
    }

    fn after_push(&mut self, now_ms: i64, out: &mut Vec<Action>) {
        match self.knobs.sync.order {
            SyncOrder::CheckPullPush => self.finish(None, now_ms, out),
            SyncOrder::PushThenPull => self.begin_check(out),
        }
    }
}
