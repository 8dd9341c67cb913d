//! The named cases: `agx.<group>.<case>`, each run with its own fresh simulated device(s).
//!
//! A case receives a [`CaseCtx`] that opens devices and contexts, submits and remembers every
//! job, and at the end ([`CaseCtx::finish`]) checks the suite's invariants on top of the case's
//! own point:
//!
//! 1. every job the case submitted returned an outcome within its bound (no wait timed out) and
//!    every simulated device has no pending command left (`pending_commands() == 0`);
//! 2. no context told nothing (all its jobs `Complete`/`Replayed`) has memory different from
//!    the fault-free expectation the case registered ([`CaseCtx::expect_memory`]);
//! 3. guilt is right: no job of an innocent context is told guilty, and every job that ended
//!    `Faulted`/`TimedOut` belongs to a context the case declared a culprit.

pub mod api;
pub mod device;
pub mod guilty;
pub mod innocent;
pub mod policy;
pub mod stress;
pub mod submit;
pub mod sync;
pub mod teardown;
pub mod upstream;

use std::fmt::Display;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use agx_sim::stream::StreamBuilder;
use agx_winsys::cmd::CommandBuffer;
use agx_winsys::kit::Context;
use agx_winsys::sim::{Injection, SimControl};
use agx_winsys::{
    Deadline, Device, DeviceSpec, FaultKind, FenceStatus, Guilt, Job, JobOutcome, SyncPoint,
};

/// Bound on every wait a case makes for a job that must end.
pub const BOUND: Duration = Duration::from_secs(10);

/// An address no VM ever maps.
pub use agx_sim::config::UNMAPPED_VA as HOLE;

/// Why a case did not pass.
#[derive(Debug)]
pub enum CaseError {
    Fail(String),
    Skip(String),
}

impl<E: Display> From<E> for CaseError {
    fn from(e: E) -> Self {
        CaseError::Fail(e.to_string())
    }
}

pub type CaseResult = Result<(), CaseError>;

/// Fails the case with a message unless `cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::cases::CaseError::Fail(format!($($fmt)+)));
        }
    };
}

/// Fails the case unless `a == b`.
#[macro_export]
macro_rules! check_eq {
    ($a:expr, $b:expr, $($fmt:tt)+) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            return Err($crate::cases::CaseError::Fail(format!(
                "{}: got {:?}, expected {:?}", format!($($fmt)+), a, b
            )));
        }
    }};
}

/// Shorthand for a failure.
pub fn fail<T>(msg: impl Into<String>) -> Result<T, CaseError> {
    Err(CaseError::Fail(msg.into()))
}

/// One named case.
#[derive(Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    pub run: fn(&mut CaseCtx) -> CaseResult,
}

/// Every case, in a stable order.
pub fn all() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(submit::cases());
    v.extend(sync::cases());
    v.extend(guilty::cases());
    v.extend(innocent::cases());
    v.extend(policy::cases());
    v.extend(teardown::cases());
    v.extend(device::cases());
    v.extend(api::cases());
    v.extend(upstream::cases());
    v.extend(stress::cases());
    v
}

pub fn find(name: &str) -> Option<Case> {
    all().into_iter().find(|c| c.name == name)
}

/// What a context is to the case: the guilt it must (not) be told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Its work faults or hangs: it may be told guilty.
    Culprit,
    /// It must never be told guilty.
    Innocent,
}

/// A context of a case: a kit context with a name and a role.
#[derive(Debug)]
pub struct Ctx {
    pub name: String,
    pub role: Role,
    pub c: Context,
}

impl std::ops::Deref for Ctx {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.c
    }
}

struct Tracked {
    who: String,
    role: Role,
    job: Arc<Job>,
}

struct MemExpect {
    who: String,
    ctx: Weak<Ctx>,
    va: u64,
    want: Vec<u8>,
}

/// The state of one running case: devices it opened, jobs it submitted, memory it expects.
pub struct CaseCtx {
    /// `--device` of `run`/`run-one`, if given.
    device: Option<String>,
    sims: Vec<Arc<dyn SimControl>>,
    jobs: Mutex<Vec<Tracked>>,
    memory: Vec<MemExpect>,
    allow_corruption: bool,
}

impl CaseCtx {
    pub fn new(device: Option<String>) -> CaseCtx {
        CaseCtx {
            device,
            sims: Vec::new(),
            jobs: Mutex::new(Vec::new()),
            memory: Vec::new(),
            allow_corruption: false,
        }
    }

    /// The simulated devices the case opened, first first (the trace is the first one's).
    pub fn simulators(&self) -> &[Arc<dyn SimControl>] {
        &self.sims
    }

    /// Opens a new simulated device with `spec` (`sim:...`). A `--device` that is not a
    /// simulated device skips the case: it needs fault control a real GPU does not offer.
    pub fn sim(&mut self, spec: &str) -> Result<Device, CaseError> {
        if let Some(d) = &self.device {
            if !d.trim().starts_with("sim") {
                return Err(CaseError::Skip(format!(
                    "needs the simulated device (--device {d})"
                )));
            }
        }
        let dev = Device::open(&DeviceSpec::parse(spec)?)?;
        let sim = dev
            .sim_control()
            .ok_or_else(|| CaseError::Fail("no simulator behind a sim device".into()))?
            .clone();
        self.sims.push(sim);
        Ok(dev)
    }

    /// Another file (another process's view) of the same simulated GPU as `dev`.
    pub fn file(&self, dev: &Device) -> Result<Device, CaseError> {
        let sim = dev
            .sim_control()
            .ok_or_else(|| CaseError::Skip("needs the simulated device".into()))?;
        Ok(sim.open_peer()?)
    }

    /// A context (VM, queue, 256 KiB of data) on `dev`.
    pub fn ctx(&self, dev: &Device, name: &str, role: Role) -> Result<Arc<Ctx>, CaseError> {
        self.ctx_sized(dev, name, role, 256 << 10)
    }

    pub fn ctx_sized(
        &self,
        dev: &Device,
        name: &str,
        role: Role,
        bytes: u64,
    ) -> Result<Arc<Ctx>, CaseError> {
        Ok(Arc::new(Ctx {
            name: name.to_owned(),
            role,
            c: Context::new(dev, bytes)?,
        }))
    }

    /// Submits `cb` on `ctx`'s queue and remembers the job.
    pub fn submit(
        &self,
        ctx: &Ctx,
        cb: &CommandBuffer,
        waits: &[SyncPoint<'_>],
        signals: &[SyncPoint<'_>],
    ) -> Result<Arc<Job>, agx_winsys::Error> {
        let job = Arc::new(ctx.queue.submit(cb, waits, signals)?);
        self.track(ctx, job.clone());
        Ok(job)
    }

    /// Remembers a job submitted elsewhere (e.g. on another thread).
    pub fn track(&self, ctx: &Ctx, job: Arc<Job>) {
        self.track_as(&ctx.name, ctx.role, job);
    }

    pub fn track_as(&self, who: &str, role: Role, job: Arc<Job>) {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Tracked {
                who: who.to_owned(),
                role,
                job,
            });
    }

    /// After the case: if `ctx` is still alive and was told nothing, `va` must hold `want`.
    pub fn expect_memory(&mut self, ctx: &Arc<Ctx>, va: u64, want: Vec<u8>) {
        self.memory.push(MemExpect {
            who: ctx.name.clone(),
            ctx: Arc::downgrade(ctx),
            va,
            want,
        });
    }

    /// The case demonstrates silent corruption (the `continue` policy): invariant 2 is its
    /// point, not a failure.
    pub fn allow_silent_corruption(&mut self) {
        self.allow_corruption = true;
    }

    /// Checks the invariants (see the module documentation).
    pub fn finish(&mut self) -> CaseResult {
        let jobs = std::mem::take(&mut *self.jobs.lock().unwrap_or_else(|e| e.into_inner()));
        let mut told: std::collections::HashMap<String, bool> = Default::default();
        for t in &jobs {
            let t0 = Instant::now();
            let o = match t.job.wait(Deadline::After(BOUND)) {
                Ok(o) => o,
                Err(e) => {
                    return fail(format!(
                        "invariant 1: a job of {} did not end within {:?} ({e}, after {:?})",
                        t.who,
                        BOUND,
                        t0.elapsed()
                    ))
                }
            };
            let (tl, point) = t.job.fence();
            if let FenceStatus::Pending = tl.status(Some(point))? {
                return fail(format!(
                    "invariant 1: {}'s job has an outcome ({o:?}) but its fence is pending",
                    t.who
                ));
            }
            *told.entry(t.who.clone()).or_default() |= !o.succeeded();
            if t.role == Role::Innocent && o.guilt() == Some(Guilt::Guilty) {
                return fail(format!(
                    "invariant 3: innocent context {} told guilty ({o:?})",
                    t.who
                ));
            }
            if t.role == Role::Innocent
                && matches!(o, JobOutcome::Faulted { .. } | JobOutcome::TimedOut)
            {
                return fail(format!(
                    "invariant 3: innocent context {} has a job ending {o:?}",
                    t.who
                ));
            }
        }
        for (i, s) in self.sims.iter().enumerate() {
            let n = s.pending_commands();
            if n != 0 {
                return fail(format!(
                    "invariant 1: device {i} still has {n} accepted command(s) pending"
                ));
            }
        }
        if !self.allow_corruption {
            for m in &self.memory {
                let Some(ctx) = m.ctx.upgrade() else { continue };
                if told.get(&m.who).copied().unwrap_or(false) {
                    continue;
                }
                let got = ctx.read(m.va, m.want.len())?;
                if let Some(i) = first_diff(&got, &m.want) {
                    return fail(format!(
                        "invariant 2: {} was told nothing but byte {i} at {:#x} is {:#04x}, \
                         a fault-free run gives {:#04x}",
                        m.who,
                        m.va + i as u64,
                        got[i],
                        m.want[i]
                    ));
                }
            }
        }
        Ok(())
    }
}

pub fn first_diff(a: &[u8], b: &[u8]) -> Option<usize> {
    if a.len() != b.len() {
        return Some(a.len().min(b.len()));
    }
    a.iter().zip(b).position(|(x, y)| x != y)
}

// ----- helpers shared by the cases -----

/// Waits for `job` within [`BOUND`].
pub fn wait(job: &impl std::ops::Deref<Target = Job>) -> Result<JobOutcome, CaseError> {
    Ok(job.wait(Deadline::After(BOUND))?)
}

/// A command buffer with one render command running `s` (no declared accesses).
pub fn render_stream(ctx: &Ctx, s: &mut StreamBuilder) -> Result<CommandBuffer, CaseError> {
    let mut cb = ctx.command_buffer();
    cb.render(ctx.render(s, Default::default(), &[])?)?;
    Ok(cb)
}

/// A command buffer with one compute command running `s` (undeclared accesses).
pub fn compute_stream(ctx: &Ctx, s: &mut StreamBuilder) -> Result<CommandBuffer, CaseError> {
    let mut cb = ctx.command_buffer();
    cb.compute(ctx.compute(s, None)?)?;
    Ok(cb)
}

/// A clear pass of `len` bytes at a new allocation: (command buffer, address).
pub fn clear_cb(ctx: &Ctx, len: u64, pattern: u32) -> Result<(CommandBuffer, u64), CaseError> {
    let va = ctx.alloc(len)?;
    let mut cb = ctx.command_buffer();
    cb.render(ctx.clear_pass(va, len, pattern)?)?;
    Ok((cb, va))
}

/// The ways a culprit goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    UnmappedRead,
    UnmappedWrite,
    ReadonlyWrite,
    Hang,
    Injected,
}

impl Fault {
    /// The fault kind a guilty job reports.
    pub fn kind(self) -> FaultKind {
        match self {
            Fault::UnmappedRead | Fault::UnmappedWrite => FaultKind::Unmapped,
            Fault::ReadonlyWrite => FaultKind::Permission,
            Fault::Hang => FaultKind::Timeout,
            Fault::Injected => FaultKind::Injected,
        }
    }

    /// Appends the faulting op (nothing for an injection: the queue is armed instead).
    pub fn emit(self, s: &mut StreamBuilder, ctx: &Ctx) {
        match self {
            Fault::UnmappedRead => {
                s.load(HOLE, 64);
            }
            Fault::UnmappedWrite => {
                s.store(HOLE + 8, 1);
            }
            Fault::ReadonlyWrite => {
                s.store(ctx.code.va, 1);
            }
            Fault::Hang => {
                s.hang();
            }
            Fault::Injected => {
                s.spin(1_000_000);
            }
        }
    }
}

/// Submits a culprit render job on `ctx` that runs `delay_ns` and then goes wrong with `f`.
pub fn culprit_job(
    cx: &CaseCtx,
    ctx: &Ctx,
    f: Fault,
    delay_ns: u64,
) -> Result<Arc<Job>, CaseError> {
    let mut s = StreamBuilder::new();
    if f == Fault::Injected {
        ctx.queue.inject(Injection::Fault { after_ns: delay_ns })?;
    } else if delay_ns > 0 {
        s.spin(delay_ns);
    }
    f.emit(&mut s, ctx);
    let cb = render_stream(ctx, &mut s)?;
    Ok(cx.submit(ctx, &cb, &[], &[])?)
}

/// What the victim of a collision runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Victim {
    /// `draw_pass`: clear + copy, restartable.
    Draw,
    /// `blend_pass`: average onto loaded data, not restartable.
    Blend,
    /// `compute_copy`: restartable.
    Copy,
    /// `compute_accumulate`: not restartable.
    Accumulate,
}

/// Two contexts (two files) whose work overlaps: the victim moves 2 MiB (tens of µs of GPU
/// time) and the culprit goes wrong in the middle of the victim's last memory operation.
pub struct Collision {
    pub dev: Device,
    pub victim: Arc<Ctx>,
    pub culprit: Arc<Ctx>,
    pub vj: Arc<Job>,
    pub cj: Arc<Job>,
    pub dst: u64,
    pub expected: Vec<u8>,
}

pub const COLLIDE_LEN: u64 = 2 << 20;

pub fn collide(cx: &mut CaseCtx, spec: &str, v: Victim, f: Fault) -> Result<Collision, CaseError> {
    let dev = cx.sim(spec)?;
    let sim = dev.sim_control().expect("sim device").clone();
    let victim = cx.ctx_sized(&dev, "victim", Role::Innocent, 8 << 20)?;
    let culprit = cx.ctx(&cx.file(&dev)?, "culprit", Role::Culprit)?;
    let len = COLLIDE_LEN;
    let (dst, src) = (victim.alloc(len)?, victim.alloc(len)?);
    victim.write(src, &vec![0x40; len as usize])?;
    victim.write(dst, &vec![0x10; len as usize])?;
    let mut cb = victim.command_buffer();
    // Fill 0-32 µs then copy 32-64 µs (draw); one 32 µs op otherwise.
    let (expected, delay) = match v {
        Victim::Draw => {
            cb.render(victim.draw_pass(dst, src, len)?)?;
            (0x40, 40_000)
        }
        Victim::Blend => {
            cb.render(victim.blend_pass(dst, src, len)?)?;
            (0x28, 10_000)
        }
        Victim::Copy => {
            cb.compute(victim.compute_copy(dst, src, len)?)?;
            (0x40, 10_000)
        }
        Victim::Accumulate => {
            cb.compute(victim.compute_accumulate(dst, src, len)?)?;
            (0x50, 10_000)
        }
    };
    sim.hold();
    let vj = cx.submit(&victim, &cb, &[], &[])?;
    let cj = culprit_job(cx, &culprit, f, delay)?;
    sim.release();
    cx.expect_memory(&victim, dst, vec![expected; len as usize]);
    Ok(Collision {
        dev,
        victim,
        culprit,
        vj,
        cj,
        dst,
        expected: vec![expected; len as usize],
    })
}

/// Whether `o` is the guilty outcome of fault `f`.
pub fn is_guilty_of(o: &JobOutcome, f: Fault) -> bool {
    match (o, f) {
        (JobOutcome::TimedOut, Fault::Hang) => true,
        (JobOutcome::Faulted { fault, guilt }, _) => {
            *guilt == Guilt::Guilty && fault.kind == f.kind()
        }
        _ => false,
    }
}

/// Whether the trace of `sim` has an event named `name`.
pub fn trace_has(sim: &Arc<dyn SimControl>, name: &str) -> bool {
    sim.trace_events().iter().any(|e| e.kind.name() == name)
}

/// Macro to list a group's cases: `cases![("agx.x.y", fn_name), ...]`.
#[macro_export]
macro_rules! cases {
    ($($name:literal => $f:path),* $(,)?) => {
        vec![$($crate::cases::Case { name: $name, run: $f }),*]
    };
}
