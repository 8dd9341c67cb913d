//! Running on the simulated GPU.

use super::*;

/// A command placed in the victim's code arena, with its real and its forced-restartable
/// descriptors.
#[derive(Clone, Debug)]
pub(super) enum Desc {
    Render(Box<RenderDesc>),
    Compute(ComputeDesc),
}

pub(super) struct Placed {
    pub(super) real: Desc,
    pub(super) forced: Desc,
    /// Verdict the winsys computed from the real descriptor (what the job info carries).
    pub(super) winsys_verdict: Verdict,
}

/// One simulated GPU with a victim context and a culprit file, reused for every command.
pub struct Rig {
    pub(super) sim: std::sync::Arc<dyn agx_winsys::sim::SimControl>,
    pub(super) victim: Context,
    /// Each on its own file of the same GPU.
    pub(super) culprits: Vec<Context>,
    /// Reused snapshot buffer.
    pub(super) buf: Vec<u8>,
    /// Random bytes initial images are cut from.
    pub(super) pool: Vec<u8>,
}

/// What one interrupted run gave.
pub(super) struct Interrupted {
    pub(super) outcome: JobOutcome,
    /// First offset that differs from the fault-free memory (the snapshot stays in `buf`).
    pub(super) diff: Option<usize>,
    /// Victim GPU time when stopped, when it was stopped.
    pub(super) progress: Option<u64>,
}

impl Rig {
    pub fn new() -> Res<Rig> {
        let dev = Device::open(&DeviceSpec::parse("sim:policy=replay").map_err(e)?).map_err(e)?;
        let sim = dev.sim_control().ok_or("not a simulated device")?.clone();
        let victim = Context::new(&dev, ARENA).map_err(e)?;
        let culprits = (0..2)
            .map(|_| Context::new(&sim.open_peer().map_err(e)?, 1 << 16).map_err(e))
            .collect::<Res<Vec<_>>>()?;
        Ok(Rig {
            sim,
            victim,
            culprits,
            buf: Vec::new(),
            pool: {
                let mut p = vec![0u8; (ARENA + POOL_SLACK) as usize];
                Rng::new(0x9001).fill_bytes(&mut p);
                p
            },
        })
    }

    pub(super) fn base(&self) -> u64 {
        self.victim.data.va
    }

    /// A random initial memory image of `len` bytes: a random window of the random pool,
    /// xored with a random word (cheaper than generating every byte).
    pub(super) fn image(&self, rng: &mut Rng, len: usize) -> Vec<u8> {
        let off = rng.below(POOL_SLACK) as usize;
        let key = rng.next_u64().to_le_bytes();
        let mut v = self.pool[off..off + len].to_vec();
        for c in v.chunks_mut(8) {
            for (b, k) in c.iter_mut().zip(key) {
                *b ^= k;
            }
        }
        v
    }

    /// Places `ops` as the stream of `spec` (the caller resets the code arena per command).
    pub(super) fn place(&self, spec: &Spec, ops: &[MOp]) -> Res<Placed> {
        let v = &self.victim;
        let base = self.base();
        let mut s = emit(ops, base);
        let (real, forced) = match spec {
            Spec::Render(r) => {
                let d = v
                    .render(&mut s, r.describe(base), &r.attachments(base))
                    .map_err(e)?;
                let mut f = d.clone();
                f.access = Some(RenderPass::new().partial_render_spills(false));
                (Desc::Render(Box::new(d)), Desc::Render(Box::new(f)))
            }
            Spec::Compute(c) => {
                let d = v.compute(&mut s, c.describe(base)).map_err(e)?;
                let mut f = d.clone();
                f.access = Some(ComputeCommand::new());
                (Desc::Compute(d), Desc::Compute(f))
            }
        };
        let mut cb = v.command_buffer();
        push(&mut cb, &real)?;
        let winsys_verdict = cb.command(0).ok_or("no command")?.verdict();
        Ok(Placed {
            real,
            forced,
            winsys_verdict,
        })
    }

    pub(super) fn reset(&self, image: &[u8]) -> Res<()> {
        self.victim.write(self.base(), image).map_err(e)
    }

    pub(super) fn snapshot(&self, len: usize) -> Res<Vec<u8>> {
        self.victim.read(self.base(), len).map_err(e)
    }

    /// Runs `times` copies of `d` back to back from `image`; returns memory and GPU time.
    pub(super) fn clean(&self, image: &[u8], d: &Desc, times: usize) -> Res<(Vec<u8>, u64)> {
        self.reset(image)?;
        let mut cb = self.victim.command_buffer();
        for _ in 0..times {
            push(&mut cb, d)?;
        }
        let t0 = self.victim.dev.gpu_time_ns().map_err(e)?;
        let job = self.victim.queue.submit(&cb, &[], &[]).map_err(e)?;
        let o = job.wait(WAIT).map_err(e)?;
        if o != JobOutcome::Complete {
            return Err(format!("fault-free run: {o:?}"));
        }
        let t1 = self.victim.dev.gpu_time_ns().map_err(e)?;
        Ok((self.snapshot(image.len())?, t1 - t0))
    }

    /// Runs `d` from `image` as an innocent victim of a culprit faulting after `t` ns; compares
    /// the memory with `r1`.
    pub(super) fn interrupted(
        &mut self,
        image: &[u8],
        d: &Desc,
        (t, dur): (u64, u64),
        r1: &[u8],
    ) -> Res<Interrupted> {
        self.interrupted_by(image, d, &[t], dur, r1)
    }

    /// Runs `d` from `image` while one culprit per entry of `times` faults that many ns into
    /// its run. A culprit still running when another faults is itself an innocent (restartable)
    /// victim: it is replayed, and faults `times[i]` ns into its replay, so with two culprits
    /// the victim is typically stopped twice (once in its first run, once in its replay).
    pub(super) fn interrupted_by(
        &mut self,
        image: &[u8],
        d: &Desc,
        times: &[u64],
        dur: u64,
        r1: &[u8],
    ) -> Res<Interrupted> {
        self.reset(image)?;
        let mut ccbs = Vec::new();
        for (c, &t) in self.culprits.iter_mut().zip(times) {
            c.code.reset();
            c.queue = Queue::new(&c.vm, Priority::Medium).map_err(e)?;
            let mut cs = StreamBuilder::new();
            // Two op decodes before the faulting access.
            cs.spin(t.saturating_sub(2 * OP_COST_NS).max(1))
                .load(HOLE, 8);
            let cd = c.render(&mut cs, RenderPass::new(), &[]).map_err(e)?;
            let mut ccb = c.command_buffer();
            ccb.render(cd).map_err(|x| x.to_string())?;
            ccbs.push(ccb);
        }
        let mut vcb = self.victim.command_buffer();
        push(&mut vcb, d)?;

        let t0 = self.victim.dev.gpu_time_ns().map_err(e)?;
        let stalled0 = self.sim.stats().recovery_ns;
        self.sim.hold();
        let vj = self.victim.queue.submit(&vcb, &[], &[]);
        let cjs: Vec<_> = self
            .culprits
            .iter()
            .zip(&ccbs)
            .map(|(c, cb)| c.queue.submit(cb, &[], &[]))
            .collect();
        self.sim.release();
        let vj = vj.map_err(e)?;
        for cj in cjs {
            let co = cj.map_err(e)?.wait(WAIT).map_err(e)?;
            if !matches!(
                co,
                JobOutcome::Faulted {
                    guilt: Guilt::Guilty,
                    ..
                }
            ) {
                return Err(format!("culprit: {co:?}"));
            }
        }
        let outcome = vj.wait(WAIT).map_err(e)?;
        let t1 = self.victim.dev.gpu_time_ns().map_err(e)?;
        let el = t1 - t0;
        // The stop-the-world time (the model's, which depends on what was running).
        let stalled = self.sim.stats().recovery_ns - stalled0;
        let progress = match outcome {
            _ if times.len() > 1 => None,
            JobOutcome::Replayed(_) => Some(el.saturating_sub(stalled + dur)),
            JobOutcome::Killed { .. } => Some(el.saturating_sub(stalled)),
            _ => None,
        };
        if matches!(outcome, JobOutcome::Killed { .. }) {
            // Its queue is banned: a fresh one for the next run.
            self.victim.queue = Queue::new(&self.victim.vm, Priority::Medium).map_err(e)?;
        }
        Ok(Interrupted {
            outcome,
            diff: {
                self.buf.resize(image.len(), 0);
                self.victim.data.bo.read(0, &mut self.buf).map_err(e)?;
                first_diff(r1, &self.buf).map(|d| d.0)
            },
            progress,
        })
    }
}

pub(super) fn push(cb: &mut agx_winsys::cmd::CommandBuffer, d: &Desc) -> Res<()> {
    match d {
        Desc::Render(r) => cb.render((**r).clone()),
        Desc::Compute(c) => cb.compute(c.clone()),
    }
    .map(|_| ())
    .map_err(|x| x.to_string())
}

/// (first differing offset, differing bytes), `None` when equal.
pub(super) fn first_diff(a: &[u8], b: &[u8]) -> Option<(usize, usize)> {
    if a == b {
        return None;
    }
    let first = a.iter().zip(b).position(|(x, y)| x != y)?;
    let count = a.iter().zip(b).filter(|(x, y)| x != y).count();
    Some((first, count))
}
