//! Stop-the-world recovery after a fault or hang (docs/uapi-fault-extension.md section 5; the
//! cost and `continue`'s losses are modelled as docs/recovery-model.md says).

use super::exec::{zero_va, Exec, Fault};
use super::{Ban, Gpu, Guilt, Status, Sub};
use crate::config::RecoveryPolicy;
use crate::trace::EventKind;

impl Gpu {
    /// Recovers from the faults of one slice: culprits are guilty, their queues banned and
    /// drained; every other running command is a victim handled by the recovery policy. The
    /// world then stays stopped for the modelled stop-the-world time ([`Gpu::stall`]): the clock
    /// runs, nothing else does.
    pub(super) fn recover(&mut self, faults: Vec<(u64, Fault, Status)>) {
        let now = self.now_ns;
        self.stats.recoveries += 1;
        let rid = self.alloc_id();
        let stopped = self
            .queues
            .values()
            .flat_map(|q| q.running.iter().flatten())
            .count() as u64;
        let cost = self.config.stop_the_world_ns(stopped);
        let back = now + cost;
        let mut replayed = 0u32;
        let mut continued = 0u32;
        self.trace.push(
            now,
            EventKind::RecoveryStart,
            0,
            0,
            format!("{} culprit(s), {stopped} command(s) stopped", faults.len()),
        );
        let culprit_fault = faults[0].1;

        let mut guilty_queues = Vec::new();
        for &(jid, fault, status) in &faults {
            let Some(job) = self.jobs.get(&jid) else {
                continue;
            };
            let (qid, seqno) = (job.queue, job.seqno);
            self.finish(jid, status, Guilt::Guilty, Some(fault));
            if let Some(q) = self.queues.get_mut(&qid) {
                q.ban.get_or_insert(Ban {
                    guilt: Guilt::Guilty,
                    fault: Some(fault),
                    seqno,
                });
                guilty_queues.push(qid);
            }
        }
        // The rest of a guilty context: running work is its own (guilty), queued work never ran.
        for &qid in &guilty_queues {
            self.end_queue_work(
                qid,
                (Status::Killed, Guilt::Guilty),
                (Status::Cancelled, Guilt::None),
                Some(culprit_fault),
            );
        }

        let victims: Vec<u64> = self
            .queues
            .values()
            .flat_map(|q| q.running.iter().flatten().copied())
            .collect();
        let mut touched: Vec<u64> = guilty_queues.clone();
        for jid in victims {
            // Killing an earlier victim ends its queue's other running command too.
            let Some(job) = self.jobs.get_mut(&jid) else {
                continue;
            };
            let qid = job.queue;
            touched.push(qid);
            self.trace
                .push(now, EventKind::Preempt, qid, jid, "stopped by recovery");
            let progress = now.saturating_sub(job.run_start_ns);
            let replay = match self.config.policy {
                RecoveryPolicy::Continue => {
                    // Nothing on chip survives the reset. A render's tiles held everything it
                    // had produced since it started (the model stores them when the pass ends):
                    // that is gone, and the tile memory it goes on with reads as zero. The op in
                    // progress is lost too; the command resumes after it.
                    if job.sub == Sub::Render {
                        let pt = &self.vms[&self.queues[&qid].vm].pt;
                        lose_tiles(pt, &job.render_targets, &job.written);
                        job.written.clear();
                    }
                    if let Some(exec) = job.exec.as_mut() {
                        exec.abandon_current_op();
                    }
                    // The reset's time is not the command's: its watchdog does not count it.
                    job.run_start_ns += cost;
                    continued += 1;
                    continue;
                }
                RecoveryPolicy::Replay => {
                    job.restartable && job.replay_count < self.config.replay_limit
                }
                RecoveryPolicy::KillInflight => false,
            };
            if replay {
                // Re-run from the start: reset the execution state, nothing else (no allocation).
                job.replay_count += 1;
                let previous = job.recovering.replace(rid);
                job.exec = Some(Exec::new(job.stream));
                job.run_start_ns = back;
                self.stats.replays += 1;
                self.stats.innocent_redone_ns += progress;
                replayed += 1;
                let detail = format!("replay {}", job.replay_count);
                self.trace.push(back, EventKind::Replay, qid, jid, detail);
                // Stopped again before it was back: its previous recovery ends here.
                if let Some(p) = previous {
                    self.victim_done(p, back, true);
                }
            } else {
                let seqno = job.seqno;
                self.stats.innocent_lost_ns += progress;
                self.finish(jid, Status::Killed, Guilt::Innocent, Some(culprit_fault));
                // Later work may depend on the lost output: the queue is banned, its queue drained.
                if let Some(q) = self.queues.get_mut(&qid) {
                    q.ban.get_or_insert(Ban {
                        guilt: Guilt::Innocent,
                        fault: Some(culprit_fault),
                        seqno,
                    });
                }
                self.end_queue_work(
                    qid,
                    (Status::Killed, Guilt::Innocent),
                    (Status::Cancelled, Guilt::None),
                    Some(culprit_fault),
                );
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for qid in touched {
            if let Some(q) = self.queues.get_mut(&qid) {
                q.reset_count += 1;
            }
        }
        if replayed > 0 {
            self.open_recoveries.insert(
                rid,
                super::OpenRecovery {
                    start: now,
                    end: back,
                    waiting: replayed,
                    back: false,
                },
            );
        } else if continued > 0 {
            // Continued victims are back when the world restarts.
            self.stats.recovery_span_ns += cost;
            self.stats.recoveries_closed += 1;
        }
        self.stall = Some((back, cost));
    }
}

/// `continue`: the tile content of a render stopped by a reset is lost. The bytes of its
/// render targets it had written since it started end up as the zeros of reset tile memory;
/// bytes it had not written yet keep what memory holds (their load has not happened).
fn lose_tiles(pt: &crate::vm::PageTable, targets: &[(u64, u64)], written: &[(u64, u64)]) {
    for &(t, len) in targets {
        let t_end = t.saturating_add(len);
        for &(w, w_end) in written {
            let (lo, hi) = (t.max(w), t_end.min(w_end));
            if lo < hi {
                zero_va(pt, lo, hi - lo);
            }
        }
    }
}
