//! Randomized fault campaigns.
//!
//! A scenario (fully determined by `--seed` and its index) is a small random workload on one
//! simulated GPU: 2-4 contexts, each its own DRM file, VM and queue, submitting render and
//! compute commands (restartable and not) that read and write the context's buffers, some
//! gated on other contexts' jobs through sync objects (exported and imported as sync_files);
//! submitted in one or two waves with the GPU clock held so work overlaps. Into that go random
//! faults at random times: unmapped reads and writes, writes to read-only memory, hangs,
//! injected faults and hangs after a random GPU time, and now and then a firmware crash.
//!
//! After the run the invariants are checked:
//!
//! 1. every accepted job's fence signalled and every wait returned within its bound; nothing
//!    is left pending on the device;
//! 2. no silent corruption: a context told nothing (every job `Complete`/`Replayed`) has
//!    exactly the memory of a fault-free run of the same workload on a fresh device;
//! 3. guilt is right: a context whose fault fired is told guilty (and its queue says so); no
//!    context without a fault is told guilty; a fault is never lost (its job never
//!    "succeeds");
//! 4. under `replay`, no restartable work was lost: a restartable job in flight during a
//!    recovery is replayed, not killed, unless the replay limit was reached.
//!
//! A failing scenario is shrunk (contexts, jobs, commands dropped greedily while the same
//! invariant still fails) and printed with a one-line command that reproduces it.

use crate::rng::Rng;
use std::collections::BTreeMap;
use std::fmt;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use agx_sim::stream::{RmwFn, StreamBuilder};
use agx_sim::RecoveryPolicy;
use agx_winsys::analysis::{
    ColorAttachment, ComputeCommand, Dispatch, LoadOp, Region, RenderPass, ShaderAccessKind,
    StoreOp,
};
use agx_winsys::cmd::CommandBuffer;
use agx_winsys::kit::Context;
use agx_winsys::{
    Deadline, Device, DeviceSpec, FenceStatus, Guilt, Injection, JobOutcome, SyncObj, SyncPoint,
};

use crate::CampaignOpts;

/// Replay limit of campaign devices.
const REPLAY_LIMIT: u32 = 3;
/// Watchdog of campaign devices: far above any legitimate command plus a few recoveries.
const HANG_TIMEOUT_MS: u64 = 5;
/// Bound of every wait.
const BOUND: Duration = Duration::from_secs(10);
/// Buffers per context.
const BUFFERS: usize = 4;
/// An address no VM maps.
const HOLE: u64 = 0x30_0000_0000;

/// The seed of scenario `index` of campaign `seed`.
fn scenario_seed(seed: u64, index: u64) -> u64 {
    let mut r = Rng::new(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
    r.next_u64()
}

// ----- scenarios -----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FaultOp {
    UnmappedRead,
    UnmappedWrite,
    ReadonlyWrite,
    Hang,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Inject {
    Fault(u64),
    Hang(u64),
}

#[derive(Clone, Debug)]
struct Cmd {
    op: Op,
    dst: usize,
    src: usize,
    pattern: u32,
    spin_ns: u64,
}

#[derive(Clone, Debug)]
struct JobSpec {
    wave: u32,
    cmds: Vec<Cmd>,
    /// The last command goes wrong after its work.
    fault: Option<FaultOp>,
    /// Waits for this (context, job), submitted earlier, through a sync_file.
    wait_on: Option<(usize, usize)>,
}

#[derive(Clone, Debug)]
struct CtxSpec {
    fill: u8,
    jobs: Vec<JobSpec>,
    /// Armed on the queue at the start of this wave.
    inject: Option<(u32, Inject)>,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    index: u64,
    buf_len: u64,
    waves: u32,
    ctxs: Vec<CtxSpec>,
    /// Firmware crash in this wave: while the work is held (true) or after it ran (false).
    crash: Option<(u32, bool)>,
    /// Global submission order: (context, job).
    order: Vec<(usize, usize)>,
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
                            r.pick(&[Op::Blend, Op::Accumulate])
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

    fn culprit(&self, c: usize) -> bool {
        self.ctxs[c].inject.is_some() || self.ctxs[c].jobs.iter().any(|j| j.fault.is_some())
    }

    fn has_faults(&self) -> bool {
        self.crash.is_some() || (0..self.ctxs.len()).any(|c| self.culprit(c))
    }

    /// The same workload without any fault, injection or crash.
    fn fault_free(&self) -> Scenario {
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
    fn without_job(&self, c: usize, j: usize) -> Scenario {
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
    fn without_ctx(&self, c: usize) -> Scenario {
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

// ----- running a scenario -----

/// What one run of a scenario produced.
#[derive(Debug, Default)]
struct Run {
    /// Per context, per job: the outcome (refused submits included).
    outcomes: Vec<Vec<Option<JobOutcome>>>,
    /// Per context, per job: every command restartable.
    restartable: Vec<Vec<bool>>,
    snapshots: Vec<Vec<u8>>,
    queue_guilt: Vec<Option<Option<Guilt>>>,
    /// Invariant 1 violations found while running.
    bound_violations: Vec<String>,
    accepted: u64,
    signalled: u64,
    recoveries: u64,
    recovery_span_ns: u64,
    recoveries_closed: u64,
    replays: u64,
}

fn spec(policy: RecoveryPolicy) -> String {
    format!(
        "sim:policy={},replay-limit={REPLAY_LIMIT},hang-timeout-ms={HANG_TIMEOUT_MS}",
        policy.name()
    )
}

fn build_cmd(
    ctx: &Context,
    bufs: &[u64],
    len: u64,
    cmd: &Cmd,
    fault: Option<FaultOp>,
    cb: &mut CommandBuffer,
) -> agx_winsys::Result<()> {
    let (dst, src) = (bufs[cmd.dst], bufs[cmd.src]);
    let mut s = StreamBuilder::new();
    if cmd.spin_ns > 0 {
        s.spin(cmd.spin_ns);
    }
    match cmd.op {
        Op::Clear => s.fill(dst, len, cmd.pattern),
        Op::Draw => s.fill(dst, len, 0).copy(dst, src, len),
        Op::Copy => s.copy(dst, src, len),
        Op::Blend => s.rmw(dst, src, len, RmwFn::Average),
        Op::Accumulate => s.rmw(dst, src, len, RmwFn::Add),
    };
    match fault {
        Some(FaultOp::UnmappedRead) => {
            s.load(HOLE, 64);
        }
        Some(FaultOp::UnmappedWrite) => {
            s.store(HOLE + 8, 1);
        }
        Some(FaultOp::ReadonlyWrite) => {
            s.store(ctx.code.va, 1);
        }
        Some(FaultOp::Hang) => {
            s.hang();
        }
        None => {}
    }
    let dreg = Region::va(dst, len);
    let sreg = Region::va(src, len);
    match cmd.op {
        Op::Clear | Op::Draw | Op::Blend => {
            let mut pass = match cmd.op {
                Op::Blend => RenderPass::new()
                    .color(ColorAttachment::new(dreg, LoadOp::Load, StoreOp::Store).blended()),
                _ => RenderPass::new().color(ColorAttachment::new(
                    dreg,
                    LoadOp::Clear,
                    StoreOp::Store,
                )),
            };
            if cmd.op != Op::Clear {
                pass = pass.shader_access(ShaderAccessKind::Read, sreg);
            }
            cb.render(ctx.render(&mut s, pass, &[(dst, len)])?)?;
        }
        Op::Copy => {
            let access = ComputeCommand::new().dispatch(Dispatch::new().read(sreg).overwrite(dreg));
            cb.compute(ctx.compute(&mut s, Some(access))?)?;
        }
        Op::Accumulate => {
            let access =
                ComputeCommand::new().dispatch(Dispatch::new().read(sreg).read_write(dreg));
            cb.compute(ctx.compute(&mut s, Some(access))?)?;
        }
    }
    Ok(())
}

fn execute(sc: &Scenario, policy: RecoveryPolicy) -> Result<Run, String> {
    let e = |e: agx_winsys::Error| e.to_string();
    let dev0 = Device::open(&DeviceSpec::parse(&spec(policy)).map_err(e)?).map_err(e)?;
    let sim = dev0.simulator().ok_or("no simulator")?.clone();
    let mut devs = Vec::new();
    let mut ctxs = Vec::new();
    let mut bufs = Vec::new();
    let len = sc.buf_len;
    for (ci, c) in sc.ctxs.iter().enumerate() {
        let d = if ci == 0 {
            dev0.clone()
        } else {
            Device::open_sim(&sim).map_err(e)?
        };
        let ctx = Context::new(&d, len * BUFFERS as u64).map_err(e)?;
        // Mapped now: after a firmware crash GEM_MMAP_OFFSET (a driver ioctl) fails, and
        // building a command writes its stream into the code arena.
        ctx.code.bo.map().map_err(e)?;
        let mut b = Vec::new();
        for i in 0..BUFFERS {
            let va = ctx.alloc(len).map_err(e)?;
            ctx.write(va, &vec![c.fill.wrapping_add(i as u8 * 29); len as usize])
                .map_err(e)?;
            b.push(va);
        }
        devs.push(d);
        ctxs.push(ctx);
        bufs.push(b);
    }
    let mut run = Run {
        outcomes: sc.ctxs.iter().map(|c| vec![None; c.jobs.len()]).collect(),
        restartable: sc.ctxs.iter().map(|c| vec![true; c.jobs.len()]).collect(),
        ..Run::default()
    };
    let mut jobs: BTreeMap<(usize, usize), agx_winsys::Job> = BTreeMap::new();
    // Out-fences of jobs others wait for.
    let mut outs: BTreeMap<(usize, usize), SyncObj> = BTreeMap::new();
    let waited: Vec<(usize, usize)> = sc
        .ctxs
        .iter()
        .flat_map(|c| c.jobs.iter().filter_map(|j| j.wait_on))
        .collect();
    for w in 0..sc.waves {
        sim.hold();
        for (ci, c) in sc.ctxs.iter().enumerate() {
            if let Some((iw, inj)) = c.inject {
                if iw == w {
                    let i = match inj {
                        Inject::Fault(after_ns) => Injection::Fault { after_ns },
                        Inject::Hang(after_ns) => Injection::Hang { after_ns },
                    };
                    // A crashed device refuses; the injection is moot then.
                    let _ = ctxs[ci].queue.inject(i);
                }
            }
        }
        for &(ci, ji) in sc
            .order
            .iter()
            .filter(|&&(c, j)| sc.ctxs[c].jobs[j].wave == w)
        {
            let spec = &sc.ctxs[ci].jobs[ji];
            let ctx = &ctxs[ci];
            let mut cb = ctx.command_buffer();
            for (k, cmd) in spec.cmds.iter().enumerate() {
                let last = k + 1 == spec.cmds.len();
                build_cmd(
                    ctx,
                    &bufs[ci],
                    len,
                    cmd,
                    spec.fault.filter(|_| last),
                    &mut cb,
                )
                .map_err(e)?;
            }
            run.restartable[ci][ji] = cb.commands().iter().all(|c| c.verdict().restartable());
            // The in-fence: the other context's out-fence, through a sync_file.
            let gate = match spec.wait_on.and_then(|k| outs.get(&k)) {
                Some(src) => match src.export_sync_file(None) {
                    Ok(fd) => {
                        let g = SyncObj::new(&devs[ci], false).map_err(e)?;
                        g.import_sync_file(fd.as_fd(), None).map_err(e)?;
                        Some(g)
                    }
                    Err(_) => None,
                },
                None => None,
            };
            let out = if waited.contains(&(ci, ji)) {
                Some(SyncObj::new(&devs[ci], false).map_err(e)?)
            } else {
                None
            };
            let waits: Vec<SyncPoint<'_>> = gate.iter().map(SyncPoint::binary).collect();
            let signals: Vec<SyncPoint<'_>> = out.iter().map(SyncPoint::binary).collect();
            match ctx.queue.submit(&cb, &waits, &signals) {
                Ok(j) => {
                    run.accepted += 1;
                    jobs.insert((ci, ji), j);
                    if let Some(o) = out {
                        outs.insert((ci, ji), o);
                    }
                }
                Err(err) => match JobOutcome::from_submit_error(&err) {
                    Some(o) => run.outcomes[ci][ji] = Some(o),
                    None => return Err(format!("ctx{ci} job{ji}: submit failed: {err}")),
                },
            }
        }
        if sc.crash == Some((w, true)) {
            sim.crash_firmware();
        }
        sim.release();
        if sc.crash == Some((w, false)) {
            sim.crash_firmware();
        }
    }
    for (&(ci, ji), j) in &jobs {
        let t = Instant::now();
        match j.wait(Deadline::After(BOUND)) {
            Ok(o) => {
                run.outcomes[ci][ji] = Some(o);
                let (tl, p) = j.fence();
                match tl.status(Some(p)) {
                    Ok(FenceStatus::Pending) | Err(_) => run.bound_violations.push(format!(
                        "ctx{ci} job{ji}: outcome {o:?} but fence not signalled"
                    )),
                    Ok(_) => run.signalled += 1,
                }
            }
            Err(err) => run.bound_violations.push(format!(
                "ctx{ci} job{ji}: wait failed after {:?}: {err}",
                t.elapsed()
            )),
        }
    }
    let pending = sim.pending_commands();
    if pending != 0 {
        run.bound_violations
            .push(format!("{pending} command(s) still pending on the device"));
    }
    for ctx in &ctxs {
        run.snapshots.push(ctx.snapshot().map_err(e)?);
        run.queue_guilt
            .push(ctx.queue.state().ok().map(|s| s.guilt));
    }
    let st = sim.stats();
    run.recoveries = st.recoveries;
    run.recovery_span_ns = st.recovery_span_ns;
    run.recoveries_closed = st.recoveries_closed;
    run.replays = st.replays;
    Ok(run)
}

// ----- checking -----

/// One violated invariant.
#[derive(Clone, Debug)]
pub struct Violation {
    pub invariant: u32,
    pub what: String,
}

/// What a checked scenario contributes to the table.
#[derive(Debug, Default, Clone)]
struct Tally {
    scenarios: u64,
    contexts: u64,
    accepted: u64,
    signalled: u64,
    faults: u64,
    crashes: u64,
    recoveries: u64,
    recovery_span_ns: u64,
    recoveries_closed: u64,
    replays: u64,
    ctx_guilty: u64,
    ctx_innocent_reset: u64,
    innocent_contexts: u64,
    innocent_survived: u64,
    silent_corruptions: u64,
    violations: [u64; 5],
    failed_scenarios: u64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
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
        self.ctx_guilty += o.ctx_guilty;
        self.ctx_innocent_reset += o.ctx_innocent_reset;
        self.innocent_contexts += o.innocent_contexts;
        self.innocent_survived += o.innocent_survived;
        self.silent_corruptions += o.silent_corruptions;
        for i in 0..5 {
            self.violations[i] += o.violations[i];
        }
        self.failed_scenarios += o.failed_scenarios;
    }

    fn violation_total(&self) -> u64 {
        self.violations.iter().sum()
    }
}

/// Runs scenario `sc` under `policy` (and its fault-free twin) and checks the invariants.
fn check(sc: &Scenario, policy: RecoveryPolicy) -> (Vec<Violation>, Tally) {
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
fn shrink(sc: &Scenario, policy: RecoveryPolicy, invariant: u32) -> Scenario {
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

// ----- driving -----

struct Outcome {
    tally: Tally,
    /// Failing scenarios: (index, violations).
    failures: Vec<(u64, Vec<Violation>)>,
    elapsed: Duration,
}

fn run_many(seed: u64, first: u64, count: u64, policy: RecoveryPolicy, bar: bool) -> Outcome {
    let t0 = Instant::now();
    let next = AtomicU64::new(0);
    let tally = Mutex::new(Tally::default());
    let failures = Mutex::new(Vec::new());
    let pb = (bar && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(count);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} scenarios ({per_sec}, eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads.min(count.max(1) as usize) {
            s.spawn(|| {
                let mut local = Tally::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let index = first + i;
                    let sc = Scenario::generate(seed, index);
                    let (v, t) = check(&sc, policy);
                    local.add(&t);
                    if !v.is_empty() {
                        failures
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((index, v));
                        if let Some(pb) = &pb {
                            pb.set_message(format!("{} failing", local.failed_scenarios));
                        }
                    }
                    if let Some(pb) = &pb {
                        pb.inc(1);
                    }
                }
                tally.lock().unwrap_or_else(|e| e.into_inner()).add(&local);
            });
        }
    });
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort_by_key(|(i, _)| *i);
    Outcome {
        tally: tally.into_inner().unwrap_or_else(|e| e.into_inner()),
        failures,
        elapsed: t0.elapsed(),
    }
}

fn pct(a: u64, b: u64) -> String {
    if b == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * a as f64 / b as f64)
    }
}

/// Mean GPU time from a fault until the innocent work it stopped is back (replayed victims
/// finished again), or the stop-the-world cost when nothing was replayed.
fn mean_recovery_us(t: &Tally) -> String {
    if t.recoveries_closed == 0 {
        "-".into()
    } else {
        format!(
            "{:.1}",
            t.recovery_span_ns as f64 / t.recoveries_closed as f64 / 1000.0
        )
    }
}

pub const INVARIANTS: [&str; 5] = [
    "scenario ran",
    "fences signalled, waits bounded",
    "no silent corruption",
    "guilt right",
    "no restartable work lost (replay)",
];

pub fn campaign(o: &CampaignOpts) -> u8 {
    let Some(policy) = RecoveryPolicy::from_name(&o.policy) else {
        eprintln!(
            "agx-fault-suite: unknown policy {:?} (kill-inflight, replay, continue)",
            o.policy
        );
        return 2;
    };
    let first = o.scenario.unwrap_or(0);
    let count = o.iterations;
    if o.scenario.is_some() && count == 1 {
        println!("{}", Scenario::generate(o.seed, first));
    }
    let out = run_many(o.seed, first, count, policy, true);
    let t = &out.tally;
    let per_min = t.scenarios as f64 / out.elapsed.as_secs_f64().max(1e-9) * 60.0;
    println!(
        "campaign: seed {}, policy {}, {} scenario(s) in {:.1} s ({:.0} scenarios/min)",
        o.seed,
        policy.name(),
        t.scenarios,
        out.elapsed.as_secs_f64(),
        per_min
    );
    let rows: Vec<(&str, String)> = vec![
        ("scenarios", t.scenarios.to_string()),
        ("contexts", t.contexts.to_string()),
        ("jobs accepted", t.accepted.to_string()),
        (
            "fences signalled",
            format!("{}/{}", t.signalled, t.accepted),
        ),
        ("faults (guilty jobs)", t.faults.to_string()),
        ("firmware crashes", t.crashes.to_string()),
        ("recoveries", t.recoveries.to_string()),
        ("replays", t.replays.to_string()),
        ("contexts reset guilty", t.ctx_guilty.to_string()),
        ("contexts reset innocent", t.ctx_innocent_reset.to_string()),
        (
            "innocent contexts untouched",
            format!(
                "{}/{} ({})",
                t.innocent_survived,
                t.innocent_contexts,
                pct(t.innocent_survived, t.innocent_contexts)
            ),
        ),
        ("mean recovery (GPU us)", mean_recovery_us(t)),
        ("invariant violations", t.violation_total().to_string()),
    ];
    for (k, v) in rows {
        println!("  {k:<30} {v}");
    }
    for (i, name) in INVARIANTS.iter().enumerate() {
        if i == 0 && t.violations[0] == 0 {
            continue;
        }
        println!("    {}. {name:<34} {}", i, t.violations[i]);
    }
    if out.failures.is_empty() {
        return 0;
    }
    println!(
        "{} failing scenario(s){}:",
        out.failures.len(),
        if policy == RecoveryPolicy::Continue {
            " (expected under continue: it silently corrupts)"
        } else {
            ""
        }
    );
    for (index, v) in out.failures.iter().take(5) {
        println!(
            "  agx-fault-suite campaign --seed {} --iterations 1 --scenario {index} --policy {}",
            o.seed,
            policy.name()
        );
        for x in v.iter().take(3) {
            println!("      invariant {}: {}", x.invariant, x.what);
        }
    }
    if out.failures.len() > 5 {
        println!("  ... and {} more", out.failures.len() - 5);
    }
    let (index, v) = &out.failures[0];
    let sc = Scenario::generate(o.seed, *index);
    let small = shrink(&sc, policy, v[0].invariant);
    println!(
        "shrunk (invariant {} still fails; reproduce with the first command above):",
        v[0].invariant
    );
    println!("{small}");
    1
}

pub fn compare_policies(iterations: u64, seed: u64) -> u8 {
    println!("compare-policies: the same {iterations} scenario(s) (seed {seed}) under each policy");
    let mut rows = Vec::new();
    for p in RecoveryPolicy::ALL {
        let out = run_many(seed, 0, iterations, p, true);
        rows.push((p, out));
    }
    println!();
    println!(
        "| policy | innocent contexts untouched | silent corruptions | fences signalled | mean recovery (GPU µs) | replays | invariant violations |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (p, out) in &rows {
        let t = &out.tally;
        println!(
            "| {} | {} ({}/{}) | {} | {}/{} | {} | {} | {} |",
            p.name(),
            pct(t.innocent_survived, t.innocent_contexts),
            t.innocent_survived,
            t.innocent_contexts,
            t.silent_corruptions,
            t.signalled,
            t.accepted,
            mean_recovery_us(t),
            t.replays,
            t.violation_total()
        );
    }
    println!();
    println!(
        "innocent contexts untouched: contexts without a fault of their own that were told \
         nothing (every job complete or invisibly replayed); silent corruptions: contexts told \
         nothing whose memory differs from a fault-free run; mean recovery: virtual GPU time from \
         a fault until the innocent work it stopped is back (replayed victims finished again), \
         or the stop-the-world cost (200 us) when nothing was replayed."
    );
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_determine_scenarios() {
        let a = Scenario::generate(7, 42);
        let b = Scenario::generate(7, 42);
        assert_eq!(a.to_string(), b.to_string());
        assert_ne!(a.to_string(), Scenario::generate(7, 43).to_string());
        assert_ne!(a.to_string(), Scenario::generate(8, 42).to_string());
    }

    #[test]
    fn scenarios_are_well_formed() {
        for i in 0..500 {
            let s = Scenario::generate(1, i);
            let n: usize = s.ctxs.iter().map(|c| c.jobs.len()).sum();
            assert_eq!(s.order.len(), n);
            for (k, &(c, j)) in s.order.iter().enumerate() {
                if let Some(w) = s.ctxs[c].jobs[j].wait_on {
                    assert!(s.order[..k].contains(&w), "waits on a later job");
                }
            }
        }
    }

    #[test]
    fn shrinking_helpers_keep_indices_valid() {
        let s = Scenario::generate(3, 9);
        let t = s.without_ctx(0).without_job(0, 0);
        for &(c, j) in &t.order {
            assert!(j < t.ctxs[c].jobs.len());
        }
    }
}
