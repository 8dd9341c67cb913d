//! Ranges and stream ops (offsets are relative to the victim's data arena).

use super::*;

/// `[off, off + len)` in the data arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reg {
    pub off: u64,
    pub len: u64,
}

impl Reg {
    pub(super) fn new(off: u64, len: u64) -> Reg {
        Reg { off, len }
    }

    pub(super) fn end(self) -> u64 {
        self.off + self.len
    }

    pub(super) fn va(self, base: u64) -> Region<Va> {
        Region::va(base + self.off, self.len)
    }

    /// A random window of `n` bytes inside (`n <= len`).
    pub(super) fn window(self, rng: &mut Rng, n: u64) -> u64 {
        self.off + rng.below(self.len - n + 1)
    }

    /// A random window length: often all of it, else anything from 1 byte.
    pub(super) fn window_len(self, rng: &mut Rng) -> u64 {
        if rng.chance(40) {
            self.len
        } else {
            rng.range(1, self.len)
        }
    }

    /// The 8-aligned u64 slots entirely inside.
    pub(super) fn slots(self) -> Vec<u64> {
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
    pub(super) fn bytes(self) -> u64 {
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
    pub(super) fn extent(self) -> u64 {
        match self {
            MOp::Fill { dst, len, .. } | MOp::Load { addr: dst, len } => dst + len,
            MOp::Copy { dst, src, len } | MOp::Rmw { dst, src, len, .. } => dst.max(src) + len,
            MOp::Atomic { addr, .. } | MOp::Store { addr, .. } => addr + 8,
            MOp::Spin { .. } => 0,
        }
    }
}

pub(super) fn emit(ops: &[MOp], base: u64) -> StreamBuilder {
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
pub(super) fn exact_accesses(ops: &[MOp], base: u64) -> Vec<Access<Va>> {
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
pub(super) fn reference_restartable(ops: &[MOp], extent: u64) -> bool {
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
pub(super) enum Point {
    /// Inside a memory op: some chunks done (partial writes left behind).
    MidOp,
    /// Between ops or inside a spin.
    Between,
}

/// One op on the victim's GPU-time line (the executor's cost model: every op costs
/// [`OP_COST_NS`] to decode, a memory op 1 ns per [`BYTES_PER_NS`] bytes of each chunk of at most [`CHUNK`]
/// bytes (split at 4 KiB boundaries of its addresses), `STORE`/`ATOMIC_ADD` 1 ns).
#[derive(Clone, Copy, Debug)]
pub(super) struct Span {
    /// Decoded; work starts.
    pub(super) work: u64,
    /// Finished.
    pub(super) end: u64,
    /// Start of its last chunk (memory ops; `work` otherwise).
    pub(super) last_chunk: u64,
    pub(super) memory: bool,
}

pub(super) fn timeline(ops: &[MOp], base: u64) -> Vec<Span> {
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
pub(super) fn duration(ops: &[MOp], base: u64) -> u64 {
    timeline(ops, base).last().map_or(0, |s| s.end) + OP_COST_NS
}

/// Classifies a victim's progress `p` (its GPU time when stopped).
pub(super) fn classify(ops: &[MOp], base: u64, p: u64) -> Point {
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
pub(super) fn chunk_cost(dst: u64, src: Option<u64>, len: u64) -> (u64, u64) {
    let (mut done, mut cost, mut last) = (0, 0, 0);
    while done < len {
        let d = dst + done;
        let mut n = (len - done).min(CHUNK - d % CHUNK);
        if let Some(s) = src {
            n = n.min(CHUNK - (s + done) % CHUNK);
        }
        done += n;
        last = n.div_ceil(BYTES_PER_NS);
        cost += last;
    }
    (cost, last)
}

/// An interruption aimed inside a memory op: the victim runs `ops` (its spins replaced by one
/// leading spin) and the culprit faults after `t` ns, so that the victim is stopped in the
/// middle of the chosen op, with some of its chunks done.
///
/// With no spin but the leading one (shorter than a quantum), every step gives the victim a
/// full quantum: it is stopped at GPU time `k * QUANTUM_NS` (plus the few ns by which a chunk
/// overruns a step), i.e. at op time `k * QUANTUM_NS - 20 - lead`; `lead` moves that point to
/// the target. The culprit (`SPIN t; LOAD hole`) faults in step `k` when `t + 40` falls in it.
pub(super) fn targeted(rng: &mut Rng, ops: &[MOp], base: u64) -> Option<(Vec<MOp>, u64)> {
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
