//! Restartability soundness and precision campaign (issue "Restartability").
//!
//! Random render passes and compute commands are generated from a seed. From ONE description
//! (a [`RenderSpec`] or [`ComputeSpec`]) two things are derived:
//!
//! - (a) the access description the analysis reads ([`RenderPass`] / [`ComputeCommand`], handed
//!   to [`Context::render`] / [`Context::compute`], so the winsys computes the verdict and the
//!   job-info restartable flag exactly as for any other submission);
//! - (b) the simulated command stream, which really performs those accesses, phase by phase.
//!
//! Each command is run fault-free from a random memory image (result `R1`), then as an innocent
//! victim stopped at random points by a culprit on another file of the same GPU, under the
//! `replay` policy. Every command the analysis calls restartable must leave `R1` byte for byte
//! (a difference is a *mismatch*: the analysis is unsound). Commands it does not call
//! restartable must be killed (`Killed { Innocent }`). Precision: a command is *in fact
//! idempotent* when it leaves `R1` after a complete run followed by a second one, and after each
//! of [`POINTS`] replays from a random partial execution (forced with a trivially restartable
//! description, so the simulator replays it); precision is the share of those the analysis
//! calls restartable.
//!
//! # From description to stream (the heart of the soundness argument)
//!
//! Every stream access is generated from a declared access, inside its declared bytes and in
//! its declared phase, so a stream doing something its description does not allow is impossible
//! by construction. All offsets are inside the victim's data arena; `[0, decl)` holds every
//! declared range (ranges overlap and alias freely, at odd offsets), `[decl, ..)` holds
//! *private* memory (tiles), which the command always writes completely before reading it (the
//! analysis's "memory the command privately initialises before use").
//!
//! Render pass, phase by phase (ops of a phase are emitted in a random order, since the analysis
//! lets the accesses of a phase interleave in any order; a phase's ops all come before the next
//! phase's):
//!
//! | description | stream |
//! | --- | --- |
//! | attachment, `LoadOp::Load` | load phase: `COPY tile <- A` (or a bare `LOAD A` when the tile is never used) |
//! | `LoadOp::Clear` | load phase: `FILL tile, clear` (no tile: the store is a `FILL A`) |
//! | `LoadOp::DontCare` | load phase: `FILL tile, garbage` (deterministic "undefined" content) |
//! | draws (not read-only) | draw phase: `COPY tile[w] <- src`, `FILL tile[w]`; `src` is a declared shader `Read`/`ReadWrite` range or another attachment's tile (framebuffer fetch) |
//! | blend | draw phase: `RMW(Average) tile[w] <- src` |
//! | partial-render spills (declared on) | sometimes, at a random point of the draw phase: `COPY A <- tile; COPY tile <- A` for every tiled attachment (also read-only ones: the "preserved" claim is tested) |
//! | `StoreOp::Store` | end phase: `COPY A <- tile` over all of `A`, in 1-3 pieces in random order (`FILL A` without a tile) |
//! | shader `Read` | draw phase: `LOAD` windows; sources of draws and shader writes |
//! | shader `Write` (may write) | draw phase: 0-2 of `FILL`/`STORE`/`COPY <- readable` into windows |
//! | shader `ReadWrite` | draw phase: `RMW(Add/Xor/Average/Max) w <- readable` (may be itself), `COPY` within |
//! | shader `Atomic` | draw phase: `ATOMIC_ADD` (1..1000) on aligned u64s inside |
//! | occlusion query | load phase `STORE 0` when reset in the command; draw phase 1-3 `ATOMIC_ADD` |
//! | transform feedback | draw phase writes to the buffer; counter: `ATOMIC_ADD` (append) or end-phase `STORE` |
//! | timestamp | end phase `STORE` (a fixed value, so runs compare) |
//! | `SideEffects::Unknown` | draw phase: 1-2 writes (`FILL`/`RMW`/`COPY`) anywhere in `[0, decl)`, undeclared |
//!
//! Compute: dispatch `i` is phase `i` unless concurrent with the previous one (then their ops are
//! shuffled together). `reads` -> `LOAD`s and copy sources; `writes` (may write) -> 0-2 partial
//! writes; `read_writes` -> `RMW`/`COPY` within; `atomics` -> `ATOMIC_ADD`; `overwrites` -> every
//! byte written (`FILL` or `COPY <- readable`, 1-3 pieces); undeclared dispatches (or a command
//! without a description) also write anywhere in `[0, decl)`.
//!
//! `SPIN`s between ops stretch commands over several 10 µs quanta without memory traffic, so a
//! culprit's fault lands at many different points. Of the interruption points of a command,
//! some take a random culprit time on the stream as generated (mostly between ops), some are
//! *aimed* inside a random multi-chunk memory op (the stream's spins are replaced by one leading
//! spin that puts a quantum boundary there, see [`targeted`]: partial writes left behind), and
//! some use two culprits, so the victim is stopped in its first run and again in its replay.
//!
//! Beside the declared verdict, the campaign also analyses the stream's *exact* access list
//! (each op its own phase: `COPY` = read src + write dst, `RMW` = read src + read-modify-write
//! dst, ...), the tightest description a range-based analysis can get: it must be sound too,
//! and it splits the precision gap into description conservatism and value-level facts (loaded
//! bytes written back unchanged, dead reads and writes, idempotent functions such as `max`) no
//! range-based analysis sees. [`analyse`] on the exact list is also checked against a byte-level
//! reference of its documented semantics ([`reference_restartable`]).
//!
//! Every command is reproducible alone: command `i` of `--seed S` is `--commands 1 --seed S+i`
//! (`SOUNDNESS_DUMP=value-gap,declared-only` prints the commands of those categories).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use agx_sim::stream::{RmwFn, StreamBuilder};
use agx_winsys::analysis::{
    analyse, Access, AccessKind, Cause, ColorAttachment, ComputeCommand, DepthStencilAttachment,
    Dispatch, LoadOp, Reasons, Region, RenderPass, ShaderAccessKind, StoreOp, TransformFeedback,
    Va, Verdict,
};
use agx_winsys::cmd::{ComputeDesc, RenderDesc};
use agx_winsys::kit::Context;
use agx_winsys::{Deadline, Device, DeviceSpec, Guilt, JobOutcome, Priority, Queue};

/// Interruption points per command for the idempotency / soundness replays.
pub const POINTS: usize = 3;
/// More points for commands that look idempotent after [`POINTS`] (restartable ones included),
/// to measure how much sampling misses.
pub const EXTRA_POINTS: usize = 5;
/// The victim's data arena.
const ARENA: u64 = 8 << 20;
/// Random offsets into the pool initial images are cut from.
const POOL_SLACK: u64 = 1 << 20;
/// Never bound: the culprit's fault address.
const HOLE: u64 = 0x30_0000_0000;
const WAIT: Deadline = Deadline::After(Duration::from_secs(30));
/// Executor constants (sim/src/gpu/exec.rs), for classifying interruption points.
const OP_COST_NS: u64 = 20;
const CHUNK: u64 = 4096;

type Res<T> = Result<T, String>;

fn e(err: agx_winsys::Error) -> String {
    err.to_string()
}

// ---------------------------------------------------------------------------------------------
// Seeded randomness (SplitMix64: tiny, stable across crate versions, so seeds reproduce forever).

/// A seeded random generator.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5eed_cafe_f00d_d00d)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[lo, hi]`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `pct` %.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.index(i + 1);
            v.swap(i, j);
        }
    }

    fn fill_bytes(&mut self, out: &mut [u8]) {
        for c in out.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            c.copy_from_slice(&r[..c.len()]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ranges and stream ops (offsets are relative to the victim's data arena).

/// `[off, off + len)` in the data arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reg {
    pub off: u64,
    pub len: u64,
}

impl Reg {
    fn new(off: u64, len: u64) -> Reg {
        Reg { off, len }
    }

    fn end(self) -> u64 {
        self.off + self.len
    }

    fn va(self, base: u64) -> Region<Va> {
        Region::va(base + self.off, self.len)
    }

    /// A random window of `n` bytes inside (`n <= len`).
    fn window(self, rng: &mut Rng, n: u64) -> u64 {
        self.off + rng.below(self.len - n + 1)
    }

    /// A random window length: often all of it, else anything from 1 byte.
    fn window_len(self, rng: &mut Rng) -> u64 {
        if rng.chance(40) {
            self.len
        } else {
            rng.range(1, self.len)
        }
    }

    /// The 8-aligned u64 slots entirely inside.
    fn slots(self) -> Vec<u64> {
        let first = self.off.next_multiple_of(8);
        (first..)
            .step_by(8)
            .take_while(|a| a + 8 <= self.end())
            .collect()
    }
}

/// One simulator op, on arena offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MOp {
    Fill {
        dst: u64,
        len: u64,
        pattern: u32,
    },
    Copy {
        dst: u64,
        src: u64,
        len: u64,
    },
    Rmw {
        dst: u64,
        src: u64,
        len: u64,
        f: RmwFn,
    },
    Atomic {
        addr: u64,
        value: u64,
    },
    Load {
        addr: u64,
        len: u64,
    },
    Store {
        addr: u64,
        value: u64,
    },
    Spin {
        ns: u64,
    },
}

impl MOp {
    fn bytes(self) -> u64 {
        match self {
            MOp::Fill { len, .. }
            | MOp::Copy { len, .. }
            | MOp::Rmw { len, .. }
            | MOp::Load { len, .. } => len,
            MOp::Atomic { .. } | MOp::Store { .. } => 8,
            MOp::Spin { .. } => 0,
        }
    }

    /// Highest arena offset touched (exclusive).
    fn extent(self) -> u64 {
        match self {
            MOp::Fill { dst, len, .. } | MOp::Load { addr: dst, len } => dst + len,
            MOp::Copy { dst, src, len } | MOp::Rmw { dst, src, len, .. } => dst.max(src) + len,
            MOp::Atomic { addr, .. } | MOp::Store { addr, .. } => addr + 8,
            MOp::Spin { .. } => 0,
        }
    }
}

fn emit(ops: &[MOp], base: u64) -> StreamBuilder {
    let mut s = StreamBuilder::new();
    for op in ops {
        match *op {
            MOp::Fill { dst, len, pattern } => s.fill(base + dst, len, pattern),
            MOp::Copy { dst, src, len } => s.copy(base + dst, base + src, len),
            MOp::Rmw { dst, src, len, f } => s.rmw(base + dst, base + src, len, f),
            MOp::Atomic { addr, value } => s.atomic_add(base + addr, value),
            MOp::Load { addr, len } => s.load(base + addr, len),
            MOp::Store { addr, value } => s.store(base + addr, value),
            MOp::Spin { ns } => s.spin(ns),
        };
    }
    s
}

/// The stream's exact access list: each op is its own phase.
fn exact_accesses(ops: &[MOp], base: u64) -> Vec<Access<Va>> {
    let mut out = Vec::new();
    let r = |a: u64, n: u64| Region::va(base + a, n);
    for (i, op) in ops.iter().enumerate() {
        let p = i as u32;
        let mut push = |kind, region| out.push(Access::new(p, kind, region, Cause::Transfer));
        match *op {
            MOp::Fill { dst, len, .. } => push(AccessKind::Write, r(dst, len)),
            MOp::Copy { dst, src, len } => {
                push(AccessKind::Read, r(src, len));
                push(AccessKind::Write, r(dst, len));
            }
            MOp::Rmw { dst, src, len, .. } => {
                push(AccessKind::Read, r(src, len));
                push(AccessKind::ReadModifyWrite, r(dst, len));
            }
            MOp::Atomic { addr, .. } => push(AccessKind::Atomic, r(addr, 8)),
            MOp::Load { addr, len } => push(AccessKind::Read, r(addr, len)),
            MOp::Store { addr, .. } => push(AccessKind::Write, r(addr, 8)),
            MOp::Spin { .. } => {}
        }
    }
    out
}

/// A byte-level reference for the exact access list (ops in order, each its own phase): a
/// byte read before any covering write of an earlier op (a `FILL`, `COPY` destination,
/// `STORE` or `RMW` destination) is exposed; the command is restartable when no exposed byte
/// is written by any op (atomics read and write their 8 bytes, and do not cover). What
/// [`analyse`] must answer on [`exact_accesses`], by its documented semantics.
fn reference_restartable(ops: &[MOp], extent: u64) -> bool {
    const COVERED: u8 = 1;
    const EXPOSED: u8 = 2;
    const WRITTEN: u8 = 4;
    let mut st = vec![0u8; extent as usize];
    let read = |st: &mut Vec<u8>, a: u64, n: u64| {
        for b in &mut st[a as usize..(a + n) as usize] {
            if *b & COVERED == 0 {
                *b |= EXPOSED;
            }
        }
    };
    let write = |st: &mut Vec<u8>, a: u64, n: u64, covers: bool| {
        for b in &mut st[a as usize..(a + n) as usize] {
            *b |= WRITTEN | if covers { COVERED } else { 0 };
        }
    };
    for op in ops {
        // Reads of an op are not covered by its own writes (same phase).
        match *op {
            MOp::Fill { dst, len, .. } => write(&mut st, dst, len, true),
            MOp::Copy { dst, src, len } => {
                read(&mut st, src, len);
                write(&mut st, dst, len, true);
            }
            MOp::Rmw { dst, src, len, .. } => {
                read(&mut st, src, len);
                read(&mut st, dst, len);
                write(&mut st, dst, len, true);
            }
            MOp::Atomic { addr, .. } => {
                read(&mut st, addr, 8);
                write(&mut st, addr, 8, false);
            }
            MOp::Load { addr, len } => read(&mut st, addr, len),
            MOp::Store { addr, .. } => write(&mut st, addr, 8, true),
            MOp::Spin { .. } => {}
        }
    }
    !st.iter()
        .any(|&b| b & (EXPOSED | WRITTEN) == EXPOSED | WRITTEN)
}

/// Where in its stream a victim was when it was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Point {
    /// Inside a memory op: some chunks done (partial writes left behind).
    MidOp,
    /// Between ops or inside a spin.
    Between,
}

/// One op on the victim's GPU-time line (the executor's cost model: every op costs
/// [`OP_COST_NS`] to decode, a memory op 1 ns per 64 bytes of each chunk of at most [`CHUNK`]
/// bytes (split at 4 KiB boundaries of its addresses), `STORE`/`ATOMIC_ADD` 1 ns).
#[derive(Clone, Copy, Debug)]
struct Span {
    /// Decoded; work starts.
    work: u64,
    /// Finished.
    end: u64,
    /// Start of its last chunk (memory ops; `work` otherwise).
    last_chunk: u64,
    memory: bool,
}

fn timeline(ops: &[MOp], base: u64) -> Vec<Span> {
    let mut t = 0u64;
    ops.iter()
        .map(|op| {
            let work = t + OP_COST_NS;
            let (cost, last, memory) = match *op {
                MOp::Spin { ns } => (ns, 0, false),
                MOp::Atomic { .. } | MOp::Store { .. } => (1, 0, false),
                MOp::Fill { dst, len, .. } | MOp::Load { addr: dst, len } => {
                    let (c, l) = chunk_cost(base + dst, None, len);
                    (c, l, true)
                }
                MOp::Copy { dst, src, len } | MOp::Rmw { dst, src, len, .. } => {
                    let (c, l) = chunk_cost(base + dst, Some(base + src), len);
                    (c, l, true)
                }
            };
            t = work + cost;
            Span {
                work,
                end: t,
                last_chunk: t - last,
                memory,
            }
        })
        .collect()
}

/// GPU time of a complete run (the `END` op costs a decode too).
fn duration(ops: &[MOp], base: u64) -> u64 {
    timeline(ops, base).last().map_or(0, |s| s.end) + OP_COST_NS
}

/// Classifies a victim's progress `p` (its GPU time when stopped).
fn classify(ops: &[MOp], base: u64, p: u64) -> Point {
    for s in timeline(ops, base) {
        if p < s.end {
            return if s.memory && p > s.work {
                Point::MidOp
            } else {
                Point::Between
            };
        }
    }
    Point::Between
}

/// (total cost, cost of the last chunk) of a memory op.
fn chunk_cost(dst: u64, src: Option<u64>, len: u64) -> (u64, u64) {
    let (mut done, mut cost, mut last) = (0, 0, 0);
    while done < len {
        let d = dst + done;
        let mut n = (len - done).min(CHUNK - d % CHUNK);
        if let Some(s) = src {
            n = n.min(CHUNK - (s + done) % CHUNK);
        }
        done += n;
        last = n.div_ceil(64);
        cost += last;
    }
    (cost, last)
}

/// Quantum of the simulated GPU (sim/src/gpu/mod.rs).
const QUANTUM_NS: u64 = 10_000;

/// An interruption aimed inside a memory op: the victim runs `ops` (its spins replaced by one
/// leading spin) and the culprit faults after `t` ns, so that the victim is stopped in the
/// middle of the chosen op, with some of its chunks done.
///
/// With no spin but the leading one (shorter than a quantum), every step gives the victim a
/// full quantum: it is stopped at GPU time `k * QUANTUM_NS` (plus the few ns by which a chunk
/// overruns a step), i.e. at op time `k * QUANTUM_NS - 20 - lead`; `lead` moves that point to
/// the target. The culprit (`SPIN t; LOAD hole`) faults in step `k` when `t + 40` falls in it.
fn targeted(rng: &mut Rng, ops: &[MOp], base: u64) -> Option<(Vec<MOp>, u64)> {
    let core: Vec<MOp> = ops
        .iter()
        .copied()
        .filter(|o| !matches!(o, MOp::Spin { .. }))
        .collect();
    let spans = timeline(&core, base);
    let multi: Vec<&Span> = spans
        .iter()
        .filter(|s| s.memory && s.last_chunk > s.work)
        .collect();
    if multi.is_empty() {
        return None;
    }
    let s = multi[rng.index(multi.len())];
    // Any point before its last chunk starts: the chunk in progress there completes, others
    // do not.
    let target = rng.range(s.work, s.last_chunk - 1);
    let k = (target + OP_COST_NS).div_ceil(QUANTUM_NS).max(1);
    let lead = k * QUANTUM_NS - OP_COST_NS - target;
    let mut v = Vec::with_capacity(core.len() + 1);
    v.push(MOp::Spin { ns: lead });
    v.extend(core);
    Some((v, (k - 1) * QUANTUM_NS + QUANTUM_NS / 2))
}

// ---------------------------------------------------------------------------------------------
// Descriptions.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aspect {
    Color,
    Depth,
    Stencil,
}

/// One attachment of a render pass.
#[derive(Clone, Debug)]
pub struct AttSpec {
    pub aspect: Aspect,
    pub reg: Reg,
    pub load: LoadOp,
    pub store: StoreOp,
    /// Color: blending onto the tile.
    pub blend: bool,
    /// Depth/stencil: no draw writes it.
    pub read_only: bool,
    /// Draws into the tile (0 when read-only).
    pub draws: u32,
    pub clear: u32,
}

#[derive(Clone, Debug)]
pub struct XfbSpec {
    pub buffer: Reg,
    pub counter: Option<Reg>,
    pub append: bool,
}

/// A render pass: the description and what the stream does, in one.
#[derive(Clone, Debug)]
pub struct RenderSpec {
    pub atts: Vec<AttSpec>,
    pub shader: Vec<(ShaderAccessKind, Reg)>,
    /// `SideEffects::Unknown`: the stream also writes undeclared memory.
    pub unknown: bool,
    /// Occlusion counters (8 aligned bytes) and whether the pass resets them.
    pub queries: Vec<(Reg, bool)>,
    pub xfb: Vec<XfbSpec>,
    pub timestamps: Vec<Reg>,
    /// `RenderPass::partial_render_spills`.
    pub spills_declared: bool,
    /// The stream really spills (only when declared).
    pub spill_happens: bool,
}

#[derive(Clone, Debug, Default)]
pub struct DispatchSpec {
    pub reads: Vec<Reg>,
    pub writes: Vec<Reg>,
    pub read_writes: Vec<Reg>,
    pub atomics: Vec<Reg>,
    pub overwrites: Vec<Reg>,
    pub undeclared: bool,
    pub concurrent: bool,
}

#[derive(Clone, Debug)]
pub struct ComputeSpec {
    pub dispatches: Vec<DispatchSpec>,
    /// `access: None`: the whole command is undeclared.
    pub described: bool,
}

#[derive(Clone, Debug)]
pub enum Spec {
    Render(RenderSpec),
    Compute(ComputeSpec),
}

impl RenderSpec {
    /// (a): the analysis's description.
    pub fn describe(&self, base: u64) -> RenderPass<Va> {
        let mut p = RenderPass::new().partial_render_spills(self.spills_declared);
        for a in &self.atts {
            let r = a.reg.va(base);
            match a.aspect {
                Aspect::Color => {
                    let mut c = ColorAttachment::new(r, a.load, a.store);
                    c.blend = a.blend;
                    p = p.color(c);
                }
                Aspect::Depth | Aspect::Stencil => {
                    let mut d = DepthStencilAttachment::new(r, a.load, a.store);
                    d.read_only = a.read_only;
                    p = if a.aspect == Aspect::Depth {
                        p.depth(d)
                    } else {
                        p.stencil(d)
                    };
                }
            }
        }
        for &(k, r) in &self.shader {
            p = p.shader_access(k, r.va(base));
        }
        if self.unknown {
            p = p.shader_unknown();
        }
        for &(q, reset) in &self.queries {
            p = p.occlusion_query(q.va(base), reset);
        }
        for x in &self.xfb {
            p = p.transform_feedback(TransformFeedback {
                buffer: x.buffer.va(base),
                counter: x.counter.map(|c| c.va(base)),
                append: x.append,
            });
        }
        for t in &self.timestamps {
            p = p.timestamp(t.va(base));
        }
        p
    }

    fn attachments(&self, base: u64) -> Vec<(u64, u64)> {
        self.atts
            .iter()
            .map(|a| (base + a.reg.off, a.reg.len))
            .collect()
    }
}

impl ComputeSpec {
    /// (a): the analysis's description (`None`: undeclared command).
    pub fn describe(&self, base: u64) -> Option<ComputeCommand<Va>> {
        if !self.described {
            return None;
        }
        let mut c = ComputeCommand::new();
        for d in &self.dispatches {
            let mut x = if d.undeclared {
                Dispatch::undeclared()
            } else {
                Dispatch::new()
            };
            for r in &d.reads {
                x = x.read(r.va(base));
            }
            for r in &d.writes {
                x = x.write(r.va(base));
            }
            for r in &d.read_writes {
                x = x.read_write(r.va(base));
            }
            for r in &d.atomics {
                x = x.atomic(r.va(base));
            }
            for r in &d.overwrites {
                x = x.overwrite(r.va(base));
            }
            x.concurrent_with_previous = d.concurrent;
            c = c.dispatch(x);
        }
        Some(c)
    }
}

impl Spec {
    /// Whether every access is declared (no unknown side effects, no undeclared dispatch).
    pub fn all_declared(&self) -> bool {
        match self {
            Spec::Render(r) => !r.unknown,
            Spec::Compute(c) => c.described && c.dispatches.iter().all(|d| !d.undeclared),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Spec::Render(_) => "render",
            Spec::Compute(_) => "compute",
        }
    }

    /// The verdict of the description, as the winsys computes it.
    pub fn verdict(&self, base: u64) -> Verdict {
        match self {
            Spec::Render(r) => r.describe(base).analyse(),
            Spec::Compute(c) => match c.describe(base) {
                Some(cmd) => cmd.analyse(),
                None => Verdict {
                    reasons: Reasons::COMPUTE_UNDECLARED,
                },
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Generation.

/// Region allocation for one command.
struct Gen<'a> {
    rng: &'a mut Rng,
    /// Declared area size.
    decl: u64,
    /// Size multiplier (heavy commands move more memory).
    scale: u64,
    pool: Vec<Reg>,
    /// Sparse layout: fresh regions do not overlap each other.
    bump: Option<u64>,
    /// Next free private byte.
    private: u64,
}

impl Gen<'_> {
    fn size(&mut self) -> u64 {
        let s = match self.rng.below(100) {
            0..50 => self.rng.range(1, 2048),
            50..85 => self.rng.range(2048, 16 << 10),
            _ => self.rng.range(16 << 10, 64 << 10),
        };
        (s * self.scale).min(self.decl / 2)
    }

    fn fresh(&mut self, len: u64) -> Reg {
        if let Some(b) = self.bump {
            let off = b + self.rng.below(64);
            if off + len <= self.decl {
                self.bump = Some(off + len);
                return Reg::new(off, len);
            }
        }
        Reg::new(self.rng.below(self.decl - len + 1), len)
    }

    /// A region: an exact alias of an earlier one (`alias` %), a partial overlap at an odd
    /// offset (`partial` %), or fresh.
    fn region(&mut self, alias: u64, partial: u64) -> Reg {
        let roll = self.rng.below(100);
        let r = if !self.pool.is_empty() && roll < alias {
            self.pool[self.rng.index(self.pool.len())]
        } else if !self.pool.is_empty() && roll < alias + partial {
            let o = self.pool[self.rng.index(self.pool.len())];
            let len = self.size();
            // Start anywhere from `len - 1` bytes before `o` to its last byte, odd offsets too.
            let lo = o.off.saturating_sub(len - 1);
            let off = self.rng.range(lo, o.end() - 1) | 1;
            let off = off.min(self.decl - len);
            Reg::new(off, len)
        } else {
            let len = self.size();
            self.fresh(len)
        };
        self.pool.push(r);
        r
    }

    /// An 8-aligned counter region of 8..=`max_slots`*8 bytes (sometimes an earlier one).
    fn counter(&mut self, max_slots: u64, reuse: &[Reg]) -> Reg {
        if !reuse.is_empty() && self.rng.chance(75) {
            return reuse[self.rng.index(reuse.len())];
        }
        let len = 8 * self.rng.range(1, max_slots);
        let r = self.fresh(len + 8);
        let off = r.off.next_multiple_of(8);
        let r = Reg::new(off.min((self.decl - len) & !7), len);
        self.pool.push(r);
        r
    }

    /// Sometimes moves a counter region by one slot or grows it by one, so that atomics are only
    /// partly on memory reset earlier.
    fn misalign_counter(&mut self, c: Reg) -> Reg {
        if !self.rng.chance(20) {
            return c;
        }
        let r = match self.rng.below(3) {
            0 if c.off >= 8 => Reg::new(c.off - 8, c.len),
            1 => Reg::new(c.off + 8, c.len),
            _ => Reg::new(c.off, c.len + 8),
        };
        if r.end() <= self.decl {
            r
        } else {
            c
        }
    }

    fn tile(&mut self, len: u64) -> u64 {
        let off = self.private.next_multiple_of(64) + self.rng.below(64);
        self.private = off + len;
        off
    }
}

/// A generated command: spec, stream ops and the memory extent they touch.
#[derive(Clone, Debug)]
pub struct Built {
    pub spec: Spec,
    pub ops: Vec<MOp>,
    /// Bytes of the arena the command may touch (reset and compared): `[0, extent)`.
    pub extent: u64,
    /// Memory traffic of one run, bytes.
    pub traffic: u64,
}

/// Generates command `seed`.
pub fn generate(seed: u64) -> Built {
    let mut rng = Rng::new(seed);
    let heavy = rng.chance(15);
    let decl = if heavy { 2 << 20 } else { 256 << 10 };
    let sparse = rng.chance(70);
    let mut g = Gen {
        rng: &mut rng,
        decl,
        scale: if heavy { 8 } else { 1 },
        pool: Vec::new(),
        bump: sparse.then_some(0),
        private: decl,
    };
    let (spec, mut ops) = if g.rng.chance(55) {
        let spec = gen_render(&mut g);
        let ops = lower_render(&spec, &mut g);
        (Spec::Render(spec), ops)
    } else {
        let spec = gen_compute(&mut g);
        let ops = lower_compute(&spec, &mut g);
        (Spec::Compute(spec), ops)
    };
    let traffic: u64 = ops.iter().map(|o| o.bytes()).sum();
    stretch(&mut rng, &mut ops, heavy);
    let extent = ops.iter().map(|o| o.extent()).max().unwrap_or(0).max(decl);
    Built {
        spec,
        ops,
        extent,
        traffic,
    }
}

/// Inserts spins so the command spans several quanta (25-80 µs; heavy ones are long anyway).
fn stretch(rng: &mut Rng, ops: &mut Vec<MOp>, heavy: bool) {
    let mem_ns: u64 = ops
        .iter()
        .map(|o| OP_COST_NS + o.bytes().div_ceil(64))
        .sum();
    let target = if heavy {
        rng.range(0, 20_000)
    } else {
        rng.range(25_000, 80_000)
    };
    let mut spin_left = target.saturating_sub(mem_ns);
    let mut out = Vec::with_capacity(ops.len() * 2);
    let n = ops.len().max(1) as u64;
    for op in ops.iter() {
        if spin_left > 0 && rng.chance(60) {
            let ns = rng.range(1, (2 * spin_left / n).max(1)).min(spin_left);
            spin_left -= ns;
            out.push(MOp::Spin { ns });
        }
        out.push(*op);
    }
    if spin_left > 0 {
        let at = rng.index(out.len() + 1);
        out.insert(at, MOp::Spin { ns: spin_left });
    }
    *ops = out;
}

fn load_op(rng: &mut Rng) -> LoadOp {
    match rng.below(100) {
        0..25 => LoadOp::Load,
        25..65 => LoadOp::Clear,
        _ => LoadOp::DontCare,
    }
}

fn store_op(rng: &mut Rng) -> StoreOp {
    if rng.chance(70) {
        StoreOp::Store
    } else {
        StoreOp::DontCare
    }
}

fn gen_render(g: &mut Gen) -> RenderSpec {
    let mut atts = Vec::new();
    let min_colors = u64::from(g.rng.chance(85));
    let colors = g.rng.range(min_colors, 4);
    for _ in 0..colors {
        let reg = g.region(8, 8);
        atts.push(AttSpec {
            aspect: Aspect::Color,
            reg,
            load: load_op(g.rng),
            store: store_op(g.rng),
            blend: g.rng.chance(35),
            read_only: false,
            draws: g.rng.range(0, 3) as u32,
            clear: g.rng.next_u64() as u32,
        });
    }
    let mut depth_reg = None;
    for aspect in [Aspect::Depth, Aspect::Stencil] {
        if !g.rng.chance(40) && !atts.is_empty() {
            continue;
        }
        // Combined depth/stencil formats describe the same memory twice.
        let reg = match depth_reg {
            Some(r) if g.rng.chance(50) => r,
            _ => g.region(8, 8),
        };
        depth_reg = Some(reg);
        let read_only = g.rng.chance(40);
        atts.push(AttSpec {
            aspect,
            reg,
            load: load_op(g.rng),
            store: store_op(g.rng),
            blend: false,
            read_only,
            draws: if read_only {
                0
            } else {
                g.rng.range(0, 2) as u32
            },
            clear: g.rng.next_u64() as u32,
        });
    }
    let mut queries = Vec::new();
    if g.rng.chance(25) {
        for _ in 0..g.rng.range(1, 2) {
            let q = g.counter(1, &[]);
            queries.push((q, g.rng.chance(60)));
        }
    }
    // Shader atomics sometimes land on a query counter the pass resets (a reset from another
    // cause, in an earlier phase), sometimes only partly on it.
    let reset: Vec<Reg> = queries.iter().filter(|q| q.1).map(|q| q.0).collect();
    let mut shader = Vec::new();
    for _ in 0..g.rng.range(0, 4) {
        let kind = match g.rng.below(100) {
            0..50 => ShaderAccessKind::Read,
            50..84 => ShaderAccessKind::Write,
            84..93 => ShaderAccessKind::ReadWrite,
            _ => ShaderAccessKind::Atomic,
        };
        let reg = if kind == ShaderAccessKind::Atomic {
            let c = g.counter(4, &reset);
            g.misalign_counter(c)
        } else {
            // Sampling an attachment (feedback loops) and partial overlaps happen.
            g.region(6, 6)
        };
        shader.push((kind, reg));
    }
    let mut xfb = Vec::new();
    if g.rng.chance(12) {
        let buffer = g.region(5, 5);
        let counter = g.rng.chance(70).then(|| g.counter(1, &[]));
        xfb.push(XfbSpec {
            buffer,
            counter,
            append: g.rng.chance(50),
        });
    }
    let mut timestamps = Vec::new();
    if g.rng.chance(15) {
        timestamps.push(g.counter(1, &[]));
    }
    let spills_declared = g.rng.chance(50);
    RenderSpec {
        atts,
        shader,
        unknown: g.rng.chance(8),
        queries,
        xfb,
        timestamps,
        spills_declared,
        spill_happens: spills_declared && g.rng.chance(50),
    }
}

fn gen_compute(g: &mut Gen) -> ComputeSpec {
    let n = g.rng.range(1, 4);
    let mut dispatches: Vec<DispatchSpec> = Vec::new();
    let mut counters: Vec<Reg> = Vec::new();
    for i in 0..n {
        let mut d = DispatchSpec {
            concurrent: i > 0 && g.rng.chance(25),
            undeclared: g.rng.chance(6),
            ..DispatchSpec::default()
        };
        // What earlier dispatches produced: consumers read it.
        let produced: Vec<Reg> = dispatches
            .iter()
            .flat_map(|p| {
                let may: &[Reg] = if g.rng.chance(25) { &p.writes } else { &[] };
                p.overwrites.iter().chain(may).copied().collect::<Vec<_>>()
            })
            .collect();
        for _ in 0..g.rng.range(0, 2) {
            let r = if !produced.is_empty() && g.rng.chance(40) {
                produced[g.rng.index(produced.len())]
            } else {
                g.region(6, 6)
            };
            d.reads.push(r);
        }
        for _ in 0..g.rng.range(0, 2) {
            let r = if g.rng.chance(15) {
                let c = g.counter(4, &[]);
                counters.push(c);
                c
            } else {
                g.region(5, 4)
            };
            d.overwrites.push(r);
        }
        for _ in 0..g.rng.range(0, 2) {
            d.writes.push(g.region(5, 4));
        }
        if g.rng.chance(10) {
            d.read_writes.push(g.region(10, 8));
        }
        if g.rng.chance(if counters.is_empty() { 8 } else { 30 }) {
            let c = g.counter(4, &counters);
            let c = g.misalign_counter(c);
            d.atomics.push(c);
        }
        dispatches.push(d);
    }
    ComputeSpec {
        dispatches,
        described: !g.rng.chance(4),
    }
}

/// Ops of one unit (kept together when a phase is shuffled).
type Unit = Vec<MOp>;

/// A window of `len` bytes from a random readable source, if any is large enough.
fn source(rng: &mut Rng, readable: &[Reg], len: u64) -> Option<u64> {
    let fits: Vec<Reg> = readable.iter().copied().filter(|r| r.len >= len).collect();
    if fits.is_empty() {
        return None;
    }
    let r = fits[rng.index(fits.len())];
    Some(r.window(rng, len))
}

/// Writes covering every byte of `dst`, in 1-3 pieces in random order, from `data(piece)`.
fn covering(rng: &mut Rng, dst: Reg, mut piece: impl FnMut(&mut Rng, Reg) -> MOp) -> Vec<Unit> {
    let k = rng.range(1, 3).min(dst.len);
    let mut cuts: Vec<u64> = (1..k).map(|_| rng.range(1, dst.len - 1)).collect();
    cuts.push(0);
    cuts.push(dst.len);
    cuts.sort_unstable();
    cuts.dedup();
    let mut units: Vec<Unit> = cuts
        .windows(2)
        .map(|w| vec![piece(rng, Reg::new(dst.off + w[0], w[1] - w[0]))])
        .collect();
    rng.shuffle(&mut units);
    units
}

/// Some writes (possibly none) inside `r`, with data from `readable` or constants.
fn may_writes(rng: &mut Rng, r: Reg, readable: &[Reg], max: u64) -> Vec<Unit> {
    let mut units = Vec::new();
    for _ in 0..rng.range(0, max) {
        let n = r.window_len(rng);
        let dst = r.window(rng, n);
        let slots = r.slots();
        let op = match rng.below(3) {
            0 if !slots.is_empty() => MOp::Store {
                addr: slots[rng.index(slots.len())],
                value: rng.next_u64(),
            },
            1 => match source(rng, readable, n) {
                Some(src) => MOp::Copy { dst, src, len: n },
                None => MOp::Fill {
                    dst,
                    len: n,
                    pattern: rng.next_u64() as u32,
                },
            },
            _ => MOp::Fill {
                dst,
                len: n,
                pattern: rng.next_u64() as u32,
            },
        };
        units.push(vec![op]);
    }
    units
}

/// Read-modify-writes inside `r` (with `r` itself readable too). Sources differ from the
/// destination window (an identity copy or a self-`Max` would be trivially idempotent).
fn read_writes(rng: &mut Rng, r: Reg, readable: &[Reg]) -> Vec<Unit> {
    let mut units = Vec::new();
    for _ in 0..rng.range(1, 2) {
        let n = r.window_len(rng);
        let dst = r.window(rng, n);
        let op = if n < r.len && rng.chance(25) {
            let mut src = r.window(rng, n);
            if src == dst {
                src = if dst > r.off { dst - 1 } else { dst + 1 };
            }
            MOp::Copy { dst, src, len: n }
        } else {
            let f = match rng.below(100) {
                0..35 => RmwFn::Add,
                35..55 => RmwFn::Xor,
                55..85 => RmwFn::Average,
                _ => RmwFn::Max,
            };
            let mut src = source(rng, readable, n).unwrap_or_else(|| r.window(rng, n));
            let f = if src == dst {
                src = source(rng, readable, n).unwrap_or(src);
                if src == dst {
                    RmwFn::Add
                } else {
                    f
                }
            } else {
                f
            };
            MOp::Rmw {
                dst,
                src,
                len: n,
                f,
            }
        };
        units.push(vec![op]);
    }
    units
}

fn atomics(rng: &mut Rng, r: Reg, max: u64) -> Vec<Unit> {
    let slots = r.slots();
    (0..rng.range(1, max))
        .map(|_| {
            vec![MOp::Atomic {
                addr: slots[rng.index(slots.len())],
                value: rng.range(1, 1000),
            }]
        })
        .collect()
}

fn touches(rng: &mut Rng, r: Reg) -> Vec<Unit> {
    if rng.chance(50) {
        let n = r.window_len(rng);
        vec![vec![MOp::Load {
            addr: r.window(rng, n),
            len: n,
        }]]
    } else {
        Vec::new()
    }
}

/// Undeclared writes anywhere in the declared area.
fn wild(rng: &mut Rng, decl: u64) -> Vec<Unit> {
    let area = Reg::new(0, decl);
    (0..rng.range(1, 2))
        .map(|_| {
            let n = rng.range(1, 8192);
            let dst = area.window(rng, n);
            let op = match rng.below(3) {
                0 => MOp::Fill {
                    dst,
                    len: n,
                    pattern: rng.next_u64() as u32,
                },
                1 => MOp::Rmw {
                    dst,
                    src: area.window(rng, n),
                    len: n,
                    f: RmwFn::Add,
                },
                _ => MOp::Copy {
                    dst,
                    src: area.window(rng, n),
                    len: n,
                },
            };
            vec![op]
        })
        .collect()
}

fn flatten(rng: &mut Rng, mut units: Vec<Unit>) -> Vec<MOp> {
    rng.shuffle(&mut units);
    units.into_iter().flatten().collect()
}

/// (b) for a render pass: the load, draw and end phases, each in a random order.
fn lower_render(s: &RenderSpec, g: &mut Gen) -> Vec<MOp> {
    let spill = s.spill_happens;
    // Private tile per attachment, when the stream needs one.
    let tiles: Vec<Option<u64>> = s
        .atts
        .iter()
        .map(|a| {
            let needed =
                spill || a.draws > 0 || (a.store == StoreOp::Store && a.load == LoadOp::Load);
            needed.then(|| g.tile(a.reg.len))
        })
        .collect();
    let readable: Vec<Reg> = s
        .shader
        .iter()
        .filter(|(k, _)| matches!(k, ShaderAccessKind::Read | ShaderAccessKind::ReadWrite))
        .map(|&(_, r)| r)
        .collect();
    let tile_regs: Vec<Reg> = s
        .atts
        .iter()
        .zip(&tiles)
        .filter_map(|(a, t)| t.map(|t| Reg::new(t, a.reg.len)))
        .collect();
    let garbage = 0xdead_beef_u32 ^ (g.rng.next_u64() as u32);

    let (mut load, mut draw, mut end) =
        (Vec::<Unit>::new(), Vec::<Unit>::new(), Vec::<Unit>::new());
    for (a, tile) in s.atts.iter().zip(&tiles) {
        let fill_of = |a: &AttSpec| match a.load {
            LoadOp::Clear => a.clear,
            _ => garbage,
        };
        match *tile {
            Some(t) => {
                let tr = Reg::new(t, a.reg.len);
                load.push(vec![match a.load {
                    LoadOp::Load => MOp::Copy {
                        dst: t,
                        src: a.reg.off,
                        len: a.reg.len,
                    },
                    _ => MOp::Fill {
                        dst: t,
                        len: a.reg.len,
                        pattern: fill_of(a),
                    },
                }]);
                for _ in 0..a.draws {
                    let n = tr.window_len(g.rng);
                    let dst = tr.window(g.rng, n);
                    // Draw data: a texture, another attachment's tile (framebuffer fetch), or a
                    // constant.
                    let mut srcs = readable.clone();
                    srcs.extend(tile_regs.iter().filter(|r| r.off != t));
                    let src = source(g.rng, &srcs, n);
                    let op = match (a.blend, src) {
                        (true, s) => MOp::Rmw {
                            dst,
                            src: s.unwrap_or_else(|| tr.window(g.rng, n)),
                            len: n,
                            f: RmwFn::Average,
                        },
                        (false, Some(src)) if g.rng.chance(70) => MOp::Copy { dst, src, len: n },
                        _ => MOp::Fill {
                            dst,
                            len: n,
                            pattern: g.rng.next_u64() as u32,
                        },
                    };
                    draw.push(vec![op]);
                }
                if a.store == StoreOp::Store {
                    end.extend(covering(g.rng, a.reg, |_, p| MOp::Copy {
                        dst: p.off,
                        src: t + (p.off - a.reg.off),
                        len: p.len,
                    }));
                }
            }
            None => {
                if a.load == LoadOp::Load && g.rng.chance(70) {
                    load.push(vec![MOp::Load {
                        addr: a.reg.off,
                        len: a.reg.len,
                    }]);
                }
                if a.store == StoreOp::Store {
                    let pattern = fill_of(a);
                    end.extend(covering(g.rng, a.reg, |_, p| MOp::Fill {
                        dst: p.off,
                        len: p.len,
                        pattern: pattern.rotate_right(8 * ((p.off - a.reg.off) % 4) as u32),
                    }));
                }
            }
        }
    }
    if spill {
        // A partial render: every tile to its memory, then reloaded.
        let mut u = Vec::new();
        for (a, tile) in s.atts.iter().zip(&tiles) {
            if let Some(t) = *tile {
                u.push(MOp::Copy {
                    dst: a.reg.off,
                    src: t,
                    len: a.reg.len,
                });
                u.push(MOp::Copy {
                    dst: t,
                    src: a.reg.off,
                    len: a.reg.len,
                });
            }
        }
        draw.push(u);
    }
    for &(k, r) in &s.shader {
        match k {
            ShaderAccessKind::Read => draw.extend(touches(g.rng, r)),
            ShaderAccessKind::Write => draw.extend(may_writes(g.rng, r, &readable, 2)),
            ShaderAccessKind::ReadWrite => draw.extend(read_writes(g.rng, r, &readable)),
            ShaderAccessKind::Atomic => draw.extend(atomics(g.rng, r, 2)),
        }
    }
    for &(q, reset) in &s.queries {
        if reset {
            load.push(vec![MOp::Store {
                addr: q.off,
                value: 0,
            }]);
        }
        draw.extend(atomics(g.rng, q, 3));
    }
    for x in &s.xfb {
        draw.extend(may_writes(g.rng, x.buffer, &readable, 2));
        if let Some(c) = x.counter {
            if x.append {
                draw.extend(atomics(g.rng, c, 1));
            } else {
                end.push(vec![MOp::Store {
                    addr: c.off,
                    value: g.rng.next_u64(),
                }]);
            }
        }
    }
    for t in &s.timestamps {
        end.push(vec![MOp::Store {
            addr: t.off,
            value: 0x7157_0000 + t.off,
        }]);
    }
    if s.unknown {
        draw.extend(wild(g.rng, g.decl));
    }
    let mut ops = flatten(g.rng, load);
    ops.extend(flatten(g.rng, draw));
    ops.extend(flatten(g.rng, end));
    ops
}

/// (b) for a compute command: dispatch by dispatch, concurrent ones shuffled together.
fn lower_compute(s: &ComputeSpec, g: &mut Gen) -> Vec<MOp> {
    let mut ops = Vec::new();
    let mut group: Vec<Unit> = Vec::new();
    for (i, d) in s.dispatches.iter().enumerate() {
        if i > 0 && !d.concurrent {
            ops.extend(flatten(g.rng, std::mem::take(&mut group)));
        }
        let readable: Vec<Reg> = d.reads.iter().chain(&d.read_writes).copied().collect();
        for r in &d.reads {
            group.extend(touches(g.rng, *r));
        }
        for r in &d.overwrites {
            group.extend(covering(g.rng, *r, |rng, p| {
                match source(rng, &readable, p.len) {
                    Some(src) if rng.chance(60) => MOp::Copy {
                        dst: p.off,
                        src,
                        len: p.len,
                    },
                    _ => MOp::Fill {
                        dst: p.off,
                        len: p.len,
                        pattern: rng.next_u64() as u32,
                    },
                }
            }));
        }
        for r in &d.writes {
            group.extend(may_writes(g.rng, *r, &readable, 2));
        }
        for r in &d.read_writes {
            group.extend(read_writes(g.rng, *r, &readable));
        }
        for r in &d.atomics {
            group.extend(atomics(g.rng, *r, 2));
        }
        if d.undeclared || !s.described {
            group.extend(wild(g.rng, g.decl));
        }
    }
    ops.extend(flatten(g.rng, group));
    ops
}

// ---------------------------------------------------------------------------------------------
// Running on the simulated GPU.

/// A command placed in the victim's code arena, with its real and its forced-restartable
/// descriptors.
#[derive(Clone, Debug)]
enum Desc {
    Render(Box<RenderDesc>),
    Compute(ComputeDesc),
}

struct Placed {
    real: Desc,
    forced: Desc,
    /// Verdict the winsys computed from the real descriptor (what the job info carries).
    winsys_verdict: Verdict,
}

/// One simulated GPU with a victim context and a culprit file, reused for every command.
pub struct Rig {
    sim: agx_sim::SimDevice,
    victim: Context,
    /// Each on its own file of the same GPU.
    culprits: Vec<Context>,
    recovery_ns: u64,
    /// Reused snapshot buffer.
    buf: Vec<u8>,
    /// Random bytes initial images are cut from.
    pool: Vec<u8>,
}

/// What one interrupted run gave.
struct Interrupted {
    outcome: JobOutcome,
    /// First offset that differs from the fault-free memory (the snapshot stays in `buf`).
    diff: Option<usize>,
    /// Victim GPU time when stopped, when it was stopped.
    progress: Option<u64>,
}

impl Rig {
    pub fn new() -> Res<Rig> {
        let dev = Device::open(&DeviceSpec::parse("sim:policy=replay").map_err(e)?).map_err(e)?;
        let sim = dev.simulator().ok_or("not a simulated device")?.clone();
        let victim = Context::new(&dev, ARENA).map_err(e)?;
        let culprits = (0..2)
            .map(|_| Context::new(&Device::open_sim(&sim).map_err(e)?, 1 << 16).map_err(e))
            .collect::<Res<Vec<_>>>()?;
        let recovery_ns = sim.config().recovery_cost_ns;
        Ok(Rig {
            sim,
            victim,
            culprits,
            recovery_ns,
            buf: Vec::new(),
            pool: {
                let mut p = vec![0u8; (ARENA + POOL_SLACK) as usize];
                Rng::new(0x9001).fill_bytes(&mut p);
                p
            },
        })
    }

    fn base(&self) -> u64 {
        self.victim.data.va
    }

    /// A random initial memory image of `len` bytes: a random window of the random pool,
    /// xored with a random word (cheaper than generating every byte).
    fn image(&self, rng: &mut Rng, len: usize) -> Vec<u8> {
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
    fn place(&self, spec: &Spec, ops: &[MOp]) -> Res<Placed> {
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

    fn reset(&self, image: &[u8]) -> Res<()> {
        self.victim.write(self.base(), image).map_err(e)
    }

    fn snapshot(&self, len: usize) -> Res<Vec<u8>> {
        self.victim.read(self.base(), len).map_err(e)
    }

    /// Runs `times` copies of `d` back to back from `image`; returns memory and GPU time.
    fn clean(&self, image: &[u8], d: &Desc, times: usize) -> Res<(Vec<u8>, u64)> {
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
    fn interrupted(
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
    fn interrupted_by(
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
        let progress = match outcome {
            _ if times.len() > 1 => None,
            JobOutcome::Replayed(_) => Some(el.saturating_sub(self.recovery_ns + dur)),
            JobOutcome::Killed { .. } => Some(el.saturating_sub(self.recovery_ns)),
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

fn push(cb: &mut agx_winsys::cmd::CommandBuffer, d: &Desc) -> Res<()> {
    match d {
        Desc::Render(r) => cb.render((**r).clone()),
        Desc::Compute(c) => cb.compute(c.clone()),
    }
    .map(|_| ())
    .map_err(|x| x.to_string())
}

/// (first differing offset, differing bytes), `None` when equal.
fn first_diff(a: &[u8], b: &[u8]) -> Option<(usize, usize)> {
    if a == b {
        return None;
    }
    let first = a.iter().zip(b).position(|(x, y)| x != y)?;
    let count = a.iter().zip(b).filter(|(x, y)| x != y).count();
    Some((first, count))
}

// ---------------------------------------------------------------------------------------------
// The campaign.

/// Figures of a campaign.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub commands: u64,
    pub render: u64,
    pub compute: u64,
    /// Commands whose accesses are all declared.
    pub declared: u64,
    /// The analysis said restartable (the description's verdict).
    pub restartable: u64,
    /// The stream's exact access list is restartable.
    pub exact_restartable: u64,
    pub idempotent: u64,
    /// Idempotent judged on the first [`POINTS`] points only.
    pub idempotent_base: u64,
    pub restartable_idempotent_base: u64,
    pub restartable_idempotent: u64,
    pub exact_idempotent: u64,
    pub declared_idempotent: u64,
    pub declared_restartable_idempotent: u64,
    /// Restartable (by either verdict) but a replay or a second run changed memory.
    pub mismatches: u64,
    /// Unexpected outcomes (a restartable victim not replayed, a non-restartable one not
    /// killed innocent, the winsys verdict differing from the description's).
    pub outcome_errors: u64,
    /// Description restartable but exact list not (value-level knowledge in the description,
    /// e.g. read-only depth written back bit for bit).
    pub declared_only: u64,
    pub reasons: BTreeMap<&'static str, u64>,
    /// Idempotent but not restartable, by where the precision goes.
    pub gap_unknown: u64,
    pub gap_spills: u64,
    pub gap_description: u64,
    pub gap_value: u64,
    /// The value-level gap by the most likely cause (see [`value_gap_kind`]).
    pub value_gap_kinds: BTreeMap<&'static str, u64>,
    pub runs: u64,
    pub interrupted: u64,
    pub mid_op: u64,
    /// Aimed interruptions that did not land inside a memory op.
    pub aim_missed: u64,
    /// Commands whose exact access list [`analyse`] judges unlike the byte-level reference.
    pub reference_disagreements: u64,
    /// Fault-free runs whose GPU time differs from the cost model's (should be 0).
    pub cost_model_misses: u64,
    pub replayed: u64,
    /// Victims stopped twice (in their first run and in their replay), then replayed again.
    pub replayed_twice: u64,
    pub killed_innocent: u64,
    pub traffic: u64,
    pub gpu_ns: u64,
    pub failures: Vec<String>,
}

impl Summary {
    fn pct(a: u64, b: u64) -> f64 {
        if b == 0 {
            100.0
        } else {
            100.0 * a as f64 / b as f64
        }
    }

    /// Restartable & idempotent over idempotent.
    pub fn precision(&self) -> f64 {
        Self::pct(self.restartable_idempotent, self.idempotent)
    }

    pub fn precision_declared(&self) -> f64 {
        Self::pct(
            self.declared_restartable_idempotent,
            self.declared_idempotent,
        )
    }

    pub fn precision_exact(&self) -> f64 {
        Self::pct(self.exact_idempotent, self.idempotent)
    }
}

/// Why a command that is idempotent in fact is not restartable even on its exact access list:
/// a value-level fact no range-based analysis sees. A heuristic tag (the first that applies).
fn value_gap_kind(b: &Built) -> &'static str {
    if let Spec::Render(r) = &b.spec {
        let writes_back = r.atts.iter().any(|a| {
            a.load == LoadOp::Load
                && !a.read_only
                && (a.store == StoreOp::Store || r.spill_happens)
                && (!a.blend || a.draws == 0)
        });
        if writes_back {
            // The tile's loaded bytes go back unchanged, or are overwritten by draws whose data
            // does not depend on them.
            return "loaded bytes written back unchanged";
        }
    }
    let max = b
        .ops
        .iter()
        .any(|o| matches!(o, MOp::Rmw { f: RmwFn::Max, .. }));
    if max {
        return "idempotent function (max)";
    }
    "dead reads/writes (read values never reach memory, or results overwritten)"
}

/// With `SOUNDNESS_DUMP=<what>` in the environment, prints the commands of that category
/// (`value-gap`, `declared-only`) to stderr, for inspection.
fn dump(what: &str, seed: u64, b: &Built) {
    if std::env::var("SOUNDNESS_DUMP").is_ok_and(|v| v.split(',').any(|x| x == what)) {
        eprintln!(
            "{what}: seed {seed}\n  spec {:?}\n  ops {:?}",
            b.spec, b.ops
        );
    }
}

/// Runs command `seed` through every check, updating `s`.
pub fn check_command(rig: &mut Rig, seed: u64, s: &mut Summary) -> Res<()> {
    let b = generate(seed);
    let base = rig.base();
    let mut rng = Rng::new(seed ^ 0x1234_5678_9abc_def0);
    let image = rig.image(&mut rng, b.extent as usize);

    let verdict = b.spec.verdict(base);
    let exact = analyse(&exact_accesses(&b.ops, base));
    if exact.restartable() != reference_restartable(&b.ops, b.extent) {
        s.reference_disagreements += 1;
        s.failures.push(format!(
            "seed {seed}: analyse() on the exact access list says {exact}, the byte-level \
             reference disagrees (agx-fault-suite soundness --commands 1 --seed {seed})"
        ));
    }
    rig.victim.code.reset();
    let placed = rig.place(&b.spec, &b.ops)?;
    s.commands += 1;
    s.traffic += b.traffic;
    match b.spec {
        Spec::Render(_) => s.render += 1,
        Spec::Compute(_) => s.compute += 1,
    }
    let declared = b.spec.all_declared();
    s.declared += u64::from(declared);
    let restartable = verdict.restartable();
    s.restartable += u64::from(restartable);
    s.exact_restartable += u64::from(exact.restartable());
    if restartable && !exact.restartable() {
        s.declared_only += 1;
        dump("declared-only", seed, &b);
    }
    for r in verdict.reasons.short_names() {
        *s.reasons.entry(r).or_default() += 1;
    }
    let repro = format!("agx-fault-suite soundness --commands 1 --seed {seed}");
    if placed.winsys_verdict != verdict {
        s.outcome_errors += 1;
        s.failures.push(format!(
            "seed {seed}: winsys verdict {} != description verdict {verdict} ({repro})",
            placed.winsys_verdict
        ));
    }
    // Soundness obligations: what either verdict promises.
    let must_replay_exactly = restartable || exact.restartable();

    let (r1, dur) = rig.clean(&image, &placed.real, 1)?;
    s.runs += 1;
    s.gpu_ns += dur;
    if dur != duration(&b.ops, base) {
        s.cost_model_misses += 1;
    }
    let mut idempotent = true;
    let mut idempotent_at_base = true;
    let mismatch = |what: String, (at, n): (usize, usize), s: &mut Summary| {
        s.failures.push(format!(
            "MISMATCH seed {seed} ({kind}, {verdict}, exact list {exact}): {what}: {n} bytes \
             differ from the fault-free run, first at arena offset {at:#x}\n  reproduce: {repro}\n  \
             spec: {spec:?}\n  ops: {ops:?}",
            kind = b.spec.kind(),
            spec = b.spec,
            ops = b.ops,
        ));
    };

    // A complete run, then a second one.
    let (twice, _) = rig.clean(&image, &placed.real, 2)?;
    s.runs += 1;
    if let Some(diff) = first_diff(&r1, &twice) {
        idempotent = false;
        idempotent_at_base = false;
        if must_replay_exactly {
            mismatch("run twice".into(), diff, s);
        }
    }
    // Point 0: a random culprit time on the stream as generated (mostly between ops); the
    // others aimed inside memory ops.
    let t0 = rng.below(dur.max(1));
    for i in 0..POINTS + EXTRA_POINTS {
        if !idempotent && !must_replay_exactly {
            break;
        }
        let aimed = if i % 3 == 0 {
            None
        } else {
            targeted(&mut rng, &b.ops, base)
        };
        let (ops, t, variant) = match &aimed {
            Some((ops, t)) => (ops.as_slice(), *t, Some(rig.place(&b.spec, ops)?)),
            None => (
                b.ops.as_slice(),
                if i == 0 { t0 } else { rng.below(dur.max(1)) },
                None,
            ),
        };
        let p = variant.as_ref().unwrap_or(&placed);
        let desc = if restartable { &p.real } else { &p.forced };
        let vdur = duration(ops, base);
        // Points 3 and 6: a second culprit stops the victim again, in its replay.
        let second = (i > 0 && aimed.is_none()).then(|| rng.below(dur.max(1)));
        let times: Vec<u64> = std::iter::once(t).chain(second).collect();
        let run = rig.interrupted_by(&image, desc, &times, vdur, &r1)?;
        s.runs += 1;
        match run.outcome {
            JobOutcome::Complete => {}
            JobOutcome::Replayed(2) if second.is_some() => {
                s.interrupted += 1;
                s.replayed += 1;
                s.replayed_twice += 1;
            }
            JobOutcome::Replayed(1) => {
                s.interrupted += 1;
                s.replayed += 1;
                if let Some(p) = run.progress {
                    match classify(ops, base, p) {
                        Point::MidOp => s.mid_op += 1,
                        Point::Between if aimed.is_some() => s.aim_missed += 1,
                        Point::Between => {}
                    }
                }
            }
            o => {
                s.outcome_errors += 1;
                s.failures.push(format!(
                    "seed {seed}: replayable victim ended {o:?} ({repro})"
                ));
            }
        }
        if run.diff.is_some() {
            idempotent = false;
            if i < POINTS {
                idempotent_at_base = false;
            }
            if must_replay_exactly {
                let at = run.progress.map_or("not stopped".into(), |p| {
                    format!("stopped at {p} ns ({:?})", classify(ops, base, p))
                });
                let how = match (&aimed, second) {
                    (Some(_), _) => "aimed culprit fault at".to_string(),
                    (None, Some(t2)) => format!("culprit faults at {t2} ns into the replay and"),
                    (None, None) => "random culprit fault at".to_string(),
                };
                mismatch(
                    format!("{how} {t} ns, victim {at}"),
                    first_diff(&r1, &rig.buf).unwrap_or_default(),
                    s,
                );
            }
        }
    }
    if !restartable {
        // The real descriptor: the victim must be killed, innocent.
        let run = rig.interrupted(&image, &placed.real, (t0, dur), &r1)?;
        s.runs += 1;
        match run.outcome {
            JobOutcome::Killed {
                guilt: Guilt::Innocent,
                ..
            } => {
                s.interrupted += 1;
                s.killed_innocent += 1;
            }
            JobOutcome::Complete => {}
            o => {
                s.outcome_errors += 1;
                s.failures.push(format!(
                    "seed {seed}: non-restartable victim ended {o:?}, expected Killed {{ Innocent }} ({repro})"
                ));
            }
        }
    }
    if must_replay_exactly && !idempotent {
        s.mismatches += 1;
    }
    if idempotent_at_base {
        s.idempotent_base += 1;
        s.restartable_idempotent_base += u64::from(restartable);
    }
    if idempotent {
        s.idempotent += 1;
        s.restartable_idempotent += u64::from(restartable);
        s.exact_idempotent += u64::from(exact.restartable());
        if declared {
            s.declared_idempotent += 1;
            s.declared_restartable_idempotent += u64::from(restartable);
        }
        if !restartable {
            if !declared {
                s.gap_unknown += 1;
            } else if exact.restartable() {
                let spills_only = match &b.spec {
                    Spec::Render(r) if r.spills_declared => r
                        .describe(base)
                        .partial_render_spills(false)
                        .analyse()
                        .restartable(),
                    _ => false,
                };
                if spills_only {
                    s.gap_spills += 1;
                } else {
                    s.gap_description += 1;
                }
            } else {
                s.gap_value += 1;
                *s.value_gap_kinds.entry(value_gap_kind(&b)).or_default() += 1;
                dump("value-gap", seed, &b);
            }
        }
    }
    Ok(())
}

/// Runs `commands` commands with seeds `seed..seed + commands`.
pub fn campaign(commands: u64, seed: u64, progress: bool) -> Res<Summary> {
    let mut rig = Rig::new()?;
    let mut s = Summary::default();
    let start = Instant::now();
    for i in 0..commands {
        check_command(&mut rig, seed.wrapping_add(i), &mut s)?;
        if progress && (i + 1) % 1000 == 0 {
            eprintln!(
                "  {} commands, {} mismatches, {:.1} s",
                i + 1,
                s.mismatches,
                start.elapsed().as_secs_f64()
            );
        }
    }
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// The aliasing check.

/// What the aliasing check found.
#[derive(Clone, Debug)]
pub struct AliasReport {
    pub name: &'static str,
    pub reasons: Reasons,
    /// Interruption points tried with a forced replay, and how many left memory different
    /// from a fault-free run.
    pub points: usize,
    pub corrupting_points: usize,
    /// Most attachment bytes left different from the fault-free run by one replay.
    pub worst_bytes: usize,
    /// The real descriptor's victim was killed, innocent.
    pub killed_innocent: bool,
}

/// Two color attachments over the same memory `m` (or `m` shifted by an odd offset): the first
/// loaded and read back in the tile by the draws (framebuffer fetch / input attachment, not
/// stored), the second cleared, blended with the first and stored. Plus the control: the second
/// on disjoint memory.
pub fn aliasing_check(rig: &mut Rig) -> Res<Vec<AliasReport>> {
    const M: u64 = 512 << 10;
    let base = rig.base();
    let mut out = Vec::new();
    let cases: [(&'static str, u64); 3] = [
        ("aliasing-same-memory", 0),
        ("aliasing-partial-odd-offset", 4093),
        ("control-disjoint", 2 * M),
    ];
    for (name, shift) in cases {
        let a = Reg::new(0, M);
        let b = Reg::new(shift, M);
        let (ta, tb) = (4 * M, 5 * M);
        let pass = RenderPass::new()
            .partial_render_spills(false)
            .color(ColorAttachment::new(
                a.va(base),
                LoadOp::Load,
                StoreOp::DontCare,
            ))
            .color(ColorAttachment::new(b.va(base), LoadOp::Clear, StoreOp::Store).blended());
        let ops = vec![
            MOp::Copy {
                dst: ta,
                src: a.off,
                len: M,
            },
            MOp::Fill {
                dst: tb,
                len: M,
                pattern: 0x4020_1008,
            },
            MOp::Spin { ns: 5_000 },
            MOp::Rmw {
                dst: tb,
                src: ta,
                len: M,
                f: RmwFn::Average,
            },
            MOp::Spin { ns: 5_000 },
            MOp::Copy {
                dst: b.off,
                src: tb,
                len: M,
            },
            MOp::Spin { ns: 5_000 },
        ];
        let extent = 6 * M;
        let reasons = pass.analyse().reasons;
        // Place with the handmade description.
        let v = &rig.victim;
        v.code.reset();
        let mut s = emit(&ops, base);
        let real = v
            .render(
                &mut s,
                pass,
                &[(base + a.off, a.len), (base + b.off, b.len)],
            )
            .map_err(e)?;
        let mut forced = real.clone();
        forced.access = Some(RenderPass::new().partial_render_spills(false));
        let (real, forced) = (Desc::Render(Box::new(real)), Desc::Render(Box::new(forced)));
        let image = rig.image(&mut Rng::new(0xa11a5), extent as usize);
        let (r1, dur) = rig.clean(&image, &real, 1)?;
        let mut rep = AliasReport {
            name,
            reasons,
            points: 0,
            corrupting_points: 0,
            worst_bytes: 0,
            killed_innocent: false,
        };
        let restartable = reasons.is_empty();
        for k in 1..16 {
            let t = dur * k / 16;
            let d = if restartable { &real } else { &forced };
            let run = rig.interrupted(&image, d, (t, dur), &r1)?;
            rep.points += 1;
            if run.diff.is_some() {
                // Count the attachment memory only (the tiles differ too).
                let n = first_diff(&r1[..3 * M as usize], &rig.buf[..3 * M as usize])
                    .map_or(0, |d| d.1);
                rep.corrupting_points += 1;
                rep.worst_bytes = rep.worst_bytes.max(n);
            }
        }
        if !restartable {
            let run = rig.interrupted(&image, &real, (dur / 2, dur), &r1)?;
            rep.killed_innocent = matches!(
                run.outcome,
                JobOutcome::Killed {
                    guilt: Guilt::Innocent,
                    ..
                }
            );
        }
        out.push(rep);
    }
    Ok(out)
}

/// Whether the aliasing reports show what they must: aliased cases caught (LOAD_STORE_SAME),
/// corrupting when replayed anyway, killed innocent for real; the control restartable and
/// replayed exactly.
pub fn aliasing_ok(r: &AliasReport) -> bool {
    if r.name.starts_with("control") {
        r.reasons.is_empty() && r.corrupting_points == 0
    } else {
        r.reasons.contains(Reasons::LOAD_STORE_SAME) && r.corrupting_points > 0 && r.killed_innocent
    }
}

// ---------------------------------------------------------------------------------------------
// The command.

pub fn run(commands: u64, seed: u64) -> u8 {
    match run_inner(commands, seed) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("soundness: error: {err}");
            2
        }
    }
}

fn run_inner(commands: u64, seed: u64) -> Res<u8> {
    let wall = Instant::now();
    let mut ok = true;
    {
        let mut rig = Rig::new()?;
        for r in aliasing_check(&mut rig)? {
            let good = aliasing_ok(&r);
            ok &= good;
            println!(
                "check {}: verdict {}, forced replays corrupting {}/{} points (up to {} attachment \
                 bytes), real run killed innocent: {}: {}",
                r.name,
                Verdict { reasons: r.reasons },
                r.corrupting_points,
                r.points,
                r.worst_bytes,
                if r.reasons.is_empty() {
                    "n/a (restartable, replayed)".to_string()
                } else {
                    r.killed_innocent.to_string()
                },
                if good { "ok" } else { "FAILED" }
            );
        }
    }
    let s = campaign(commands, seed, commands >= 2000)?;
    for f in &s.failures {
        println!("{f}");
    }
    let secs = wall.elapsed().as_secs_f64();
    println!(
        "commands: {} (render {}, compute {}; all accesses declared {})",
        s.commands, s.render, s.compute, s.declared
    );
    println!(
        "restartable: {} (exact access list: {}; description-only: {})",
        s.restartable, s.exact_restartable, s.declared_only
    );
    println!(
        "idempotent: {} (run twice + {} interruption points; {} on the first {} points alone)",
        s.idempotent,
        POINTS + EXTRA_POINTS,
        s.idempotent_base,
        POINTS
    );
    println!("restartable&idempotent: {}", s.restartable_idempotent);
    println!(
        "runs: {} ({} interrupted: {} replayed ({} of them stopped twice), {} killed innocent; \
         replays from inside a memory op: {}, aimed but missed: {}; cost model misses: {})",
        s.runs,
        s.interrupted,
        s.replayed,
        s.replayed_twice,
        s.killed_innocent,
        s.mid_op,
        s.aim_missed,
        s.cost_model_misses
    );
    println!(
        "not restartable, by reason: {}",
        s.reasons
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "precision gap (idempotent, not restartable): {} = unknown/undeclared {} + spills default {} \
         + other description conservatism {} + value-level only {}",
        s.idempotent - s.restartable_idempotent,
        s.gap_unknown,
        s.gap_spills,
        s.gap_description,
        s.gap_value
    );
    println!(
        "value-level gap by likely cause: {}",
        s.value_gap_kinds
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "precision (all declared): {:.1}% ({}/{})",
        s.precision_declared(),
        s.declared_restartable_idempotent,
        s.declared_idempotent
    );
    println!("precision (exact access list): {:.1}%", s.precision_exact());
    println!(
        "precision ({} points only): {:.1}%",
        POINTS,
        Summary::pct(s.restartable_idempotent_base, s.idempotent_base)
    );
    println!("outcome errors: {}", s.outcome_errors);
    println!(
        "exact access lists judged unlike the byte-level reference: {}",
        s.reference_disagreements
    );
    println!(
        "time: {secs:.1} s wall ({:.2} ms per command), {:.1} MiB simulated traffic",
        1000.0 * secs / s.commands.max(1) as f64,
        (s.traffic as f64) / f64::from(1 << 20)
    );
    println!("mismatches: {}", s.mismatches);
    println!(
        "precision: {:.1}% ({}/{})",
        s.precision(),
        s.restartable_idempotent,
        s.idempotent
    );
    ok &= s.mismatches == 0 && s.outcome_errors == 0 && s.reference_disagreements == 0;
    Ok(if ok { 0 } else { 1 })
}
