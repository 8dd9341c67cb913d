//! Scenarios: random multi-context workloads with random faults, fully determined by a seed.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    /// Render: clear `dst` (restartable).
    Clear,
    /// Render: clear `dst`, copy `src` into it (restartable).
    Draw,
    /// Compute: copy `src` to `dst` (restartable).
    Copy,
    /// Render: blend `src` onto loaded `dst` (not restartable).
    Blend,
    /// Compute: `dst += src` (not restartable).
    Accumulate,
    // Work that is not idempotent either, each in a way a different analysis mistake would
    // miss (the mutation check, `agx-fault-suite mutants`): the verdict comes from the real
    // analysis of its description, and the work is done before the command's spin, so a replay
    // from an interruption redoes it.
    /// Compute: atomic adds into the first words of `dst` (counters that are not reset).
    Count,
    /// Compute: `dst[d..] = dst[..len - d]`, two ranges over the same buffer (a memmove).
    Shift,
    /// Compute, three dispatches through a temporary: `tmp = dst; tmp += src; dst = tmp`.
    Transform,
    /// Render with bindless (undeclared) side effects: `dst += src`.
    Bindless,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FaultOp {
    UnmappedRead,
    UnmappedWrite,
    ReadonlyWrite,
    Hang,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Inject {
    Fault(u64),
    Hang(u64),
}

#[derive(Clone, Debug)]
pub(super) struct Cmd {
    pub(super) op: Op,
    pub(super) dst: usize,
    pub(super) src: usize,
    pub(super) pattern: u32,
    pub(super) spin_ns: u64,
}

#[derive(Clone, Debug)]
pub(super) struct JobSpec {
    pub(super) wave: u32,
    pub(super) cmds: Vec<Cmd>,
    /// The last command goes wrong after its work.
    pub(super) fault: Option<FaultOp>,
    /// Waits for this (context, job), submitted earlier, through a sync_file.
    pub(super) wait_on: Option<(usize, usize)>,
}

#[derive(Clone, Debug)]
pub(super) struct CtxSpec {
    pub(super) fill: u8,
    pub(super) jobs: Vec<JobSpec>,
    /// Armed on the queue at the start of this wave.
    pub(super) inject: Option<(u32, Inject)>,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub(super) index: u64,
    pub(super) buf_len: u64,
    pub(super) waves: u32,
    pub(super) ctxs: Vec<CtxSpec>,
    /// Firmware crash in this wave: while the work is held (true) or after it ran (false).
    pub(super) crash: Option<(u32, bool)>,
    /// Global submission order: (context, job).
    pub(super) order: Vec<(usize, usize)>,
}

impl Scenario {
    pub fn generate(seed: u64, index: u64) -> Scenario {
        let mut r = Rng::new(scenario_seed(seed, index));
        let buf_len = r.pick(&[16u64 << 10, 64 << 10, 256 << 10, 256 << 10]);
        let waves = 1 + r.below(2) as u32;
        let nctx = 2 + r.below(3) as usize;
        let mut ctxs = Vec::new();
        for c in 0..nctx {
            let njobs = 1 + r.below(3) as usize;
            let mut jobs = Vec::new();
            for _ in 0..njobs {
                let restartable = r.chance(60);
                let ncmds = 1 + r.below(2) as usize;
                let cmds = (0..ncmds)
                    .map(|_| {
                        let op = if restartable {
                            r.pick(&[Op::Clear, Op::Draw, Op::Draw, Op::Copy, Op::Copy])
                        } else {
                            r.pick(&[
                                Op::Blend,
                                Op::Accumulate,
                                Op::Count,
                                Op::Shift,
                                Op::Transform,
                                Op::Bindless,
                            ])
                        };
                        let dst = r.below(BUFFERS as u64) as usize;
                        let src = (dst + 1 + r.below(BUFFERS as u64 - 1) as usize) % BUFFERS;
                        Cmd {
                            op,
                            dst,
                            src,
                            pattern: r.next_u64() as u32,
                            spin_ns: r
                                .pick(&[0, 1_000, 3_000, 6_000, 8_000, 9_000, 12_000, 25_000]),
                        }
                    })
                    .collect();
                jobs.push(JobSpec {
                    wave: r.below(waves as u64) as u32,
                    cmds,
                    fault: None,
                    wait_on: None,
                });
            }
            // Each context's jobs in wave order.
            jobs.sort_by_key(|j| j.wave);
            ctxs.push(CtxSpec {
                fill: (c as u8).wrapping_mul(37).wrapping_add(r.next_u64() as u8) | 1,
                jobs,
                inject: None,
            });
        }
        // Faults: usually one, sometimes none or two.
        let nfaults = r.pick(&[0u32, 1, 1, 1, 1, 2, 2]);
        for _ in 0..nfaults {
            let c = r.below(nctx as u64) as usize;
            let kind = r.below(100);
            if kind < 60 {
                let j = r.below(ctxs[c].jobs.len() as u64) as usize;
                ctxs[c].jobs[j].fault = Some(r.pick(&[
                    FaultOp::UnmappedRead,
                    FaultOp::UnmappedWrite,
                    FaultOp::ReadonlyWrite,
                    FaultOp::ReadonlyWrite,
                    FaultOp::UnmappedRead,
                    FaultOp::Hang,
                ]));
            } else if ctxs[c].inject.is_none() {
                let after = r.pick(&[0u64, 500, 2_000, 5_000, 11_000, 20_000]);
                let inj = if kind < 90 {
                    Inject::Fault(after)
                } else {
                    Inject::Hang(after)
                };
                ctxs[c].inject = Some((r.below(waves as u64) as u32, inj));
            }
        }
        let crash = r
            .chance(4)
            .then(|| (r.below(waves as u64) as u32, r.chance(50)));
        // Submission order: per wave, contexts interleaved at random, each in its own order.
        let mut order = Vec::new();
        for w in 0..waves {
            let mut next: Vec<usize> = vec![0; nctx];
            for (c, n) in next.iter_mut().enumerate() {
                *n = ctxs[c]
                    .jobs
                    .iter()
                    .position(|j| j.wave == w)
                    .unwrap_or(usize::MAX);
            }
            loop {
                let ready: Vec<usize> = (0..nctx)
                    .filter(|&c| next[c] < ctxs[c].jobs.len() && ctxs[c].jobs[next[c]].wave == w)
                    .collect();
                if ready.is_empty() {
                    break;
                }
                let c = r.pick(&ready);
                order.push((c, next[c]));
                next[c] += 1;
            }
        }
        // Cross-context dependencies on jobs submitted earlier.
        for i in 1..order.len() {
            if r.chance(25) {
                let (c, j) = order[i];
                let earlier: Vec<(usize, usize)> = order[..i]
                    .iter()
                    .copied()
                    .filter(|&(oc, _)| oc != c)
                    .collect();
                if !earlier.is_empty() {
                    ctxs[c].jobs[j].wait_on = Some(r.pick(&earlier));
                }
            }
        }
        Scenario {
            index,
            buf_len,
            waves,
            ctxs,
            crash,
            order,
        }
    }

    pub(super) fn culprit(&self, c: usize) -> bool {
        self.ctxs[c].inject.is_some() || self.ctxs[c].jobs.iter().any(|j| j.fault.is_some())
    }

    pub(super) fn has_faults(&self) -> bool {
        self.crash.is_some() || (0..self.ctxs.len()).any(|c| self.culprit(c))
    }

    /// The same workload without any fault, injection or crash.
    pub(super) fn fault_free(&self) -> Scenario {
        let mut s = self.clone();
        s.crash = None;
        for c in &mut s.ctxs {
            c.inject = None;
            for j in &mut c.jobs {
                j.fault = None;
            }
        }
        s
    }

    /// Removes job `j` of context `c` (and dependencies on it).
    pub(super) fn without_job(&self, c: usize, j: usize) -> Scenario {
        let mut s = self.clone();
        s.ctxs[c].jobs.remove(j);
        s.order.retain(|&o| o != (c, j));
        for o in &mut s.order {
            if o.0 == c && o.1 > j {
                o.1 -= 1;
            }
        }
        for ctx in &mut s.ctxs {
            for job in &mut ctx.jobs {
                job.wait_on = match job.wait_on {
                    Some((wc, wj)) if wc == c && wj == j => None,
                    Some((wc, wj)) if wc == c && wj > j => Some((wc, wj - 1)),
                    w => w,
                };
            }
        }
        s
    }

    /// Removes context `c` entirely.
    pub(super) fn without_ctx(&self, c: usize) -> Scenario {
        let mut s = self.clone();
        s.ctxs.remove(c);
        s.order.retain(|&o| o.0 != c);
        for o in &mut s.order {
            if o.0 > c {
                o.0 -= 1;
            }
        }
        for ctx in &mut s.ctxs {
            for job in &mut ctx.jobs {
                job.wait_on = match job.wait_on {
                    Some((wc, _)) if wc == c => None,
                    Some((wc, wj)) if wc > c => Some((wc - 1, wj)),
                    w => w,
                };
            }
        }
        s
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scenario {}: {} context(s), buffers {} KiB, {} wave(s){}",
            self.index,
            self.ctxs.len(),
            self.buf_len >> 10,
            self.waves,
            match self.crash {
                Some((w, true)) => format!(", firmware crash in wave {w} (held)"),
                Some((w, false)) => format!(", firmware crash after wave {w}"),
                None => String::new(),
            }
        )?;
        for (ci, c) in self.ctxs.iter().enumerate() {
            write!(f, "  ctx{ci}")?;
            if let Some((w, i)) = c.inject {
                write!(f, " (inject {i:?} in wave {w})")?;
            }
            writeln!(f, ":")?;
            for (ji, j) in c.jobs.iter().enumerate() {
                write!(f, "    job{ji} wave {}:", j.wave)?;
                for cmd in &j.cmds {
                    write!(
                        f,
                        " [spin {}us {:?} b{}<-b{}]",
                        cmd.spin_ns / 1000,
                        cmd.op,
                        cmd.dst,
                        cmd.src
                    )?;
                }
                if let Some(fo) = j.fault {
                    write!(f, " then {fo:?}")?;
                }
                if let Some((wc, wj)) = j.wait_on {
                    write!(f, " (waits for ctx{wc} job{wj})")?;
                }
                writeln!(f)?;
            }
        }
        write!(f, "  submission order:")?;
        for (c, j) in &self.order {
            write!(f, " ctx{c}.job{j}")?;
        }
        Ok(())
    }
}
