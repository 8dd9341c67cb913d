//! Checking the invariants after a run, and shrinking a failing scenario.

use super::*;

/// One violated invariant.
#[derive(Clone, Debug)]
pub struct Violation {
    pub invariant: u32,
    pub what: String,
}

/// What a checked scenario contributes to the table.
#[derive(Debug, Default, Clone)]
pub(super) struct Tally {
    pub(super) scenarios: u64,
    pub(super) contexts: u64,
    pub(super) accepted: u64,
    pub(super) signalled: u64,
    pub(super) faults: u64,
    pub(super) crashes: u64,
    pub(super) recoveries: u64,
    pub(super) recovery_span_ns: u64,
    pub(super) recoveries_closed: u64,
    pub(super) replays: u64,
    /// GPU time in stop-the-world cycles (the model's cost of each).
    pub(super) stw_ns: u64,
    pub(super) innocent_redone_ns: u64,
    pub(super) innocent_lost_ns: u64,
    pub(super) ctx_guilty: u64,
    pub(super) ctx_innocent_reset: u64,
    pub(super) innocent_contexts: u64,
    pub(super) innocent_survived: u64,
    /// Innocent contexts told nothing whose memory is wrong.
    pub(super) innocent_corrupted: u64,
    pub(super) silent_corruptions: u64,
    pub(super) violations: [u64; 5],
    pub(super) failed_scenarios: u64,
}

impl Tally {
    pub(super) fn add(&mut self, o: &Tally) {
        self.scenarios += o.scenarios;
        self.contexts += o.contexts;
        self.accepted += o.accepted;
        self.signalled += o.signalled;
        self.faults += o.faults;
        self.crashes += o.crashes;
        self.recoveries += o.recoveries;
        self.recovery_span_ns += o.recovery_span_ns;
        self.recoveries_closed += o.recoveries_closed;
        self.replays += o.replays;
        self.stw_ns += o.stw_ns;
        self.innocent_redone_ns += o.innocent_redone_ns;
        self.innocent_lost_ns += o.innocent_lost_ns;
        self.ctx_guilty += o.ctx_guilty;
        self.ctx_innocent_reset += o.ctx_innocent_reset;
        self.innocent_contexts += o.innocent_contexts;
        self.innocent_survived += o.innocent_survived;
        self.innocent_corrupted += o.innocent_corrupted;
        self.silent_corruptions += o.silent_corruptions;
        for i in 0..5 {
            self.violations[i] += o.violations[i];
        }
        self.failed_scenarios += o.failed_scenarios;
    }

    pub(super) fn violation_total(&self) -> u64 {
        self.violations.iter().sum()
    }
}

/// Runs scenario `sc` under `policy` (and its fault-free twin) and checks the invariants.
pub(super) fn check(sc: &Scenario, policy: RecoveryPolicy) -> (Vec<Violation>, Tally) {
    let mut v = Vec::new();
    let mut t = Tally {
        scenarios: 1,
        contexts: sc.ctxs.len() as u64,
        crashes: sc.crash.is_some() as u64,
        ..Tally::default()
    };
    let run = match execute(sc, policy) {
        Ok(r) => r,
        Err(e) => {
            v.push(Violation {
                invariant: 0,
                what: format!("scenario could not run: {e}"),
            });
            t.violations[0] += 1;
            t.failed_scenarios = 1;
            return (v, t);
        }
    };
    let reference = if sc.has_faults() {
        match execute(&sc.fault_free(), policy) {
            Ok(r) => Some(r),
            Err(e) => {
                v.push(Violation {
                    invariant: 0,
                    what: format!("fault-free run failed: {e}"),
                });
                None
            }
        }
    } else {
        None
    };
    t.accepted = run.accepted;
    t.signalled = run.signalled;
    t.recoveries = run.recoveries;
    t.recovery_span_ns = run.recovery_span_ns;
    t.recoveries_closed = run.recoveries_closed;
    t.replays = run.replays;
    t.stw_ns = run.stw_ns;
    t.innocent_redone_ns = run.innocent_redone_ns;
    t.innocent_lost_ns = run.innocent_lost_ns;
    for b in &run.bound_violations {
        v.push(Violation {
            invariant: 1,
            what: b.clone(),
        });
    }
    if let Some(r) = &reference {
        if r.outcomes
            .iter()
            .flatten()
            .any(|o| *o != Some(JobOutcome::Complete))
        {
            v.push(Violation {
                invariant: 0,
                what: format!("the fault-free run did not complete: {:?}", r.outcomes),
            });
        }
    }
    let limit_reachable = run.recoveries > REPLAY_LIMIT as u64;
    for (ci, c) in sc.ctxs.iter().enumerate() {
        let outs = &run.outcomes[ci];
        let told = outs.iter().any(|o| !o.is_some_and(|o| o.succeeded()));
        let told_guilty = outs
            .iter()
            .flatten()
            .any(|o| o.guilt() == Some(Guilt::Guilty));
        let culprit = sc.culprit(ci);
        t.ctx_guilty += told_guilty as u64;
        let innocent_reset = outs.iter().flatten().any(|o| {
            matches!(
                o,
                JobOutcome::Killed {
                    guilt: Guilt::Innocent,
                    ..
                }
            )
        });
        t.ctx_innocent_reset += (innocent_reset && !told_guilty) as u64;
        if !culprit {
            t.innocent_contexts += 1;
            t.innocent_survived += (!told) as u64;
        }
        // Invariant 2.
        if !told {
            let same = match &reference {
                Some(r) => r.snapshots[ci] == run.snapshots[ci],
                None => true,
            };
            if !same {
                t.silent_corruptions += 1;
                t.innocent_corrupted += u64::from(!culprit);
                let r = reference.as_ref().expect("compared");
                let i = r.snapshots[ci]
                    .iter()
                    .zip(&run.snapshots[ci])
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                v.push(Violation {
                    invariant: 2,
                    what: format!(
                        "ctx{ci} was told nothing ({outs:?}) but its memory differs from a \
                         fault-free run (first at byte {i}: {:#04x}, expected {:#04x})",
                        run.snapshots[ci][i], r.snapshots[ci][i]
                    ),
                });
            }
        }
        // Invariant 3.
        if told_guilty && !culprit {
            v.push(Violation {
                invariant: 3,
                what: format!("ctx{ci} has no fault but was told guilty: {outs:?}"),
            });
        }
        for (ji, j) in c.jobs.iter().enumerate() {
            let o = outs[ji];
            if matches!(o, Some(JobOutcome::Faulted { .. } | JobOutcome::TimedOut)) {
                t.faults += 1;
            }
            if let Some(fo) = j.fault {
                match o {
                    Some(x) if x.succeeded() => v.push(Violation {
                        invariant: 3,
                        what: format!("ctx{ci} job{ji}: its {fo:?} was lost ({x:?})"),
                    }),
                    Some(JobOutcome::Faulted { guilt, .. }) if guilt != Guilt::Guilty => {
                        v.push(Violation {
                            invariant: 3,
                            what: format!("ctx{ci} job{ji}: faulted but told {guilt:?}"),
                        })
                    }
                    _ => {}
                }
            } else if !culprit {
                if let Some(x @ (JobOutcome::Faulted { .. } | JobOutcome::TimedOut)) = o {
                    v.push(Violation {
                        invariant: 3,
                        what: format!("ctx{ci} job{ji}: innocent work ended {x:?}"),
                    });
                }
            }
        }
        if told_guilty {
            if let Some(g) = run.queue_guilt[ci] {
                if g != Some(Guilt::Guilty) {
                    v.push(Violation {
                        invariant: 3,
                        what: format!("ctx{ci} told guilty but its queue state says {g:?}"),
                    });
                }
            }
        }
        // Invariant 4.
        if policy == RecoveryPolicy::Replay && !limit_reachable {
            for (ji, o) in outs.iter().enumerate() {
                if run.restartable[ci][ji]
                    && matches!(
                        o,
                        Some(JobOutcome::Killed {
                            guilt: Guilt::Innocent,
                            ..
                        })
                    )
                {
                    v.push(Violation {
                        invariant: 4,
                        what: format!(
                            "ctx{ci} job{ji}: restartable innocent work killed ({o:?}) with \
                             {} recoveries (limit {REPLAY_LIMIT})",
                            run.recoveries
                        ),
                    });
                }
            }
        }
    }
    for x in &v {
        t.violations[x.invariant as usize] += 1;
    }
    t.failed_scenarios = (!v.is_empty()) as u64;
    (v, t)
}

/// Greedily drops contexts, jobs and commands while the scenario still violates `invariant`.
pub(super) fn shrink(sc: &Scenario, policy: RecoveryPolicy, invariant: u32) -> Scenario {
    let fails = |s: &Scenario| check(s, policy).0.iter().any(|v| v.invariant == invariant);
    let mut cur = sc.clone();
    loop {
        let mut progressed = false;
        let mut c = 0;
        while c < cur.ctxs.len() && cur.ctxs.len() > 1 {
            let cand = cur.without_ctx(c);
            if fails(&cand) {
                cur = cand;
                progressed = true;
            } else {
                c += 1;
            }
        }
        for c in 0..cur.ctxs.len() {
            let mut j = 0;
            while j < cur.ctxs[c].jobs.len() {
                let cand = cur.without_job(c, j);
                if fails(&cand) {
                    cur = cand;
                    progressed = true;
                } else {
                    j += 1;
                }
            }
        }
        for c in 0..cur.ctxs.len() {
            for j in 0..cur.ctxs[c].jobs.len() {
                let mut k = 0;
                while cur.ctxs[c].jobs[j].cmds.len() > 1 && k < cur.ctxs[c].jobs[j].cmds.len() {
                    let mut cand = cur.clone();
                    cand.ctxs[c].jobs[j].cmds.remove(k);
                    if fails(&cand) {
                        cur = cand;
                        progressed = true;
                    } else {
                        k += 1;
                    }
                }
                if cur.ctxs[c].jobs[j].wait_on.is_some() {
                    let mut cand = cur.clone();
                    cand.ctxs[c].jobs[j].wait_on = None;
                    if fails(&cand) {
                        cur = cand;
                        progressed = true;
                    }
                }
            }
        }
        if !progressed {
            return cur;
        }
    }
}
