//! Stop-the-world recovery after a fault or hang (docs/uapi-fault-extension.md section 5).

use super::exec::{Exec, Fault};
use super::{Ban, Gpu, Guilt, Status};
use crate::config::RecoveryPolicy;
use crate::trace::EventKind;

impl Gpu {
    /// Recovers from the faults of one slice: culprits are guilty, their queues banned and
    /// drained; every other running command is a victim handled by the recovery policy.
    pub(super) fn recover(&mut self, faults: Vec<(u64, Fault, Status)>) {
        let now = self.now_ns;
        self.stats.recoveries += 1;
        let rid = self.alloc_id();
        let back = now + self.config.recovery_cost_ns;
        let mut replayed = 0u32;
        self.trace.push(
            now,
            EventKind::RecoveryStart,
            0,
            0,
            format!("{} culprit(s)", faults.len()),
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
            let replay = match self.config.policy {
                RecoveryPolicy::Continue => {
                    // On-chip state (tile memory, the op in progress) does not survive a
                    // reset: the command resumes after the op it was in, silently short.
                    if let Some(exec) = job.exec.as_mut() {
                        exec.abandon_current_op();
                    }
                    // The reset's time is not the command's: its watchdog does not count it.
                    job.run_start_ns += self.config.recovery_cost_ns;
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
                job.run_start_ns = now + self.config.recovery_cost_ns;
                self.stats.replays += 1;
                replayed += 1;
                let detail = format!("replay {}", job.replay_count);
                self.trace.push(
                    now + self.config.recovery_cost_ns,
                    EventKind::Replay,
                    qid,
                    jid,
                    detail,
                );
                // Stopped again before it was back: its previous recovery ends here.
                if let Some(p) = previous {
                    self.victim_done(p, back);
                }
            } else {
                let seqno = job.seqno;
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
        self.now_ns += self.config.recovery_cost_ns;
        self.stats.recovery_ns += self.config.recovery_cost_ns;
        if replayed == 0 {
            self.stats.recovery_span_ns += self.config.recovery_cost_ns;
            self.stats.recoveries_closed += 1;
        } else {
            self.open_recoveries.insert(rid, (now, back, replayed));
        }
        self.trace
            .push(self.now_ns, EventKind::RecoveryEnd, 0, 0, "");
    }
}
