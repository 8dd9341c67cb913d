//! The executor: runs one command's stream through its VM's page tables for a budget of GPU
//! time, stopping at 4 KiB chunk boundaries so an abort leaves partial writes, as hardware does.

use agx_uapi::fault_ext as ext;

use super::opaque::{self, Language, OpaqueCmd};
use crate::stream::{Op, RawOp, RmwFn, OP_SIZE};
use crate::vm::{AccessError, PageTable};

/// Cost of decoding one op.
pub const OP_COST_NS: u64 = 20;
/// Bytes moved per nanosecond of GPU time.
pub const BYTES_PER_NS: u64 = 64;
/// Largest piece of a memory op done without a chance to stop.
pub const CHUNK: u64 = 4096;

/// A fault raised by a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub fault_type: u32,
    pub unit: u32,
    pub write: bool,
    pub address: u64,
}

impl Fault {
    pub fn to_raw(self) -> ext::drm_asahi_ext_fault {
        ext::drm_asahi_ext_fault {
            fault_type: self.fault_type,
            unit: self.unit,
            flags: if self.write {
                ext::DRM_ASAHI_EXT_FAULT_WRITE
            } else {
                0
            },
            pad: 0,
            address: self.address,
        }
    }
}

/// Where a running command is in its stream. Everything a replay needs is here or in the job:
/// restarting is resetting this value, with no allocation.
#[derive(Clone, Copy, Debug)]
pub struct Exec {
    /// GPU address of the current op.
    pub pc: u64,
    /// The current op once fetched, and the bytes (or ns) of it already done.
    current: Option<(Op, u32)>,
    progress: u64,
    mode: Mode,
}

/// What the command runs as, decided when it first runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Not run yet: with `streams=opaque`, its stream is classified first.
    Fresh,
    /// The simulator's command language.
    Stream,
    /// An opaque job: one `SPIN` of its cost, then done (`gpu::opaque`).
    Opaque,
}

/// How a slice of execution ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Budget used up (`used` >= budget: a chunk or op fetch in progress may overrun it);
    /// the command goes on.
    Yield { used: u64 },
    /// Reached `END` after `used` ns.
    Done { used: u64 },
    /// Faulted after `used` ns.
    Fault { fault: Fault, used: u64 },
}

/// Per-command constants of execution.
#[derive(Clone, Copy, Debug)]
pub struct Units {
    /// Unit blamed for stream fetches (`VDM` or `CDM`).
    pub fetch: u32,
    /// Unit blamed for memory ops without an override.
    pub access: u32,
}

impl Exec {
    pub fn new(stream: u64) -> Exec {
        Exec {
            pc: stream,
            current: None,
            progress: 0,
            mode: Mode::Fresh,
        }
    }

    /// Whether the command runs as an opaque job (`streams=opaque`, stream not in the language).
    pub fn is_opaque(&self) -> bool {
        self.mode == Mode::Opaque
    }

    /// GPU time this command could skip without touching memory: `Some(n)` while spinning,
    /// `Some(u64::MAX)` while hung, `None` when it is doing memory work.
    pub fn idle_ns_left(&self) -> Option<u64> {
        match self.current {
            Some((Op::Spin { ns }, _)) => Some(ns.saturating_sub(self.progress)),
            Some((Op::Hang, _)) => Some(u64::MAX),
            _ => None,
        }
    }

    /// Runs for at most `budget` ns. `opaque` is the command's opaque description when the
    /// device runs foreign streams as opaque jobs (`streams=opaque`), `None` otherwise. With a
    /// `log`, every byte range written (GPU VA) is added to it, merged with the last range when
    /// they touch.
    pub fn run(
        &mut self,
        pt: &PageTable,
        units: Units,
        soft: bool,
        budget: u64,
        opaque: Option<&OpaqueCmd>,
        mut log: Option<&mut Vec<(u64, u64)>>,
    ) -> Step {
        let mut used = 0u64;
        if self.mode == Mode::Fresh {
            self.mode = Mode::Stream;
            if let Some(cmd) = opaque {
                match opaque::classify(pt, self.pc, units.fetch) {
                    Err(fault) => return Step::Fault { fault, used },
                    Ok(Language::Sim) => {}
                    Ok(Language::Opaque) => {
                        used += OP_COST_NS;
                        if let Err(fault) = opaque::check(pt, &cmd.checks, soft) {
                            return Step::Fault { fault, used };
                        }
                        self.mode = Mode::Opaque;
                        self.current = Some((Op::Spin { ns: cmd.cost_ns }, 0));
                        self.progress = 0;
                    }
                }
            }
        }
        loop {
            if used >= budget {
                return Step::Yield { used };
            }
            let (op, unit_override) = match self.current {
                Some(c) => c,
                // An opaque job's one op is done.
                None if self.mode == Mode::Opaque => return Step::Done { used },
                None => {
                    let mut raw = RawOp::default();
                    if let Err(e) = read(pt, self.pc, bytemuck::bytes_of_mut(&mut raw), false) {
                        let fault = access_fault(e, units.fetch, false, self.pc);
                        return Step::Fault { fault, used };
                    }
                    let Some(op) = Op::decode(&raw) else {
                        let fault = Fault {
                            fault_type: ext::DRM_ASAHI_EXT_FAULT_INVALID,
                            unit: units.fetch,
                            write: false,
                            address: self.pc,
                        };
                        return Step::Fault { fault, used };
                    };
                    used += OP_COST_NS;
                    self.current = Some((op, Op::unit_override(&raw)));
                    self.progress = 0;
                    (op, Op::unit_override(&raw))
                }
            };
            let unit = if unit_override != 0 {
                unit_override
            } else {
                units.access
            };
            let left = budget.saturating_sub(used);
            let mem = Mem {
                pt,
                unit,
                soft,
                log: log.as_deref_mut(),
            };
            match self.op_slice(mem, op, left) {
                Ok((n, finished)) => {
                    used += n;
                    if finished {
                        match op {
                            Op::End => return Step::Done { used },
                            Op::Jump { target } => self.pc = target,
                            _ => self.pc += OP_SIZE,
                        }
                        self.current = None;
                    }
                }
                Err((fault, n)) => {
                    return Step::Fault {
                        fault,
                        used: used + n,
                    }
                }
            }
        }
    }

    /// Advances the current op by at most `left` ns; returns (ns used, op finished).
    fn op_slice(
        &mut self,
        mut mem: Mem<'_>,
        op: Op,
        left: u64,
    ) -> Result<(u64, bool), (Fault, u64)> {
        let mut used = 0;
        match op {
            Op::End | Op::Jump { .. } => Ok((0, true)),
            Op::Hang => Ok((left.max(1), false)),
            Op::Spin { ns } => {
                let n = (ns - self.progress).min(left);
                self.progress += n;
                Ok((n, self.progress >= ns))
            }
            Op::AtomicAdd { addr, value } => {
                let mut v = [0u8; 8];
                mem.read(addr, &mut v).map_err(|f| (f, 0))?;
                let sum = u64::from_le_bytes(v).wrapping_add(value);
                mem.write(addr, &sum.to_le_bytes()).map_err(|f| (f, 0))?;
                Ok((1, true))
            }
            Op::Store { addr, value } => {
                mem.write(addr, &value.to_le_bytes()).map_err(|f| (f, 0))?;
                Ok((1, true))
            }
            Op::Fill { dst, len, .. }
            | Op::Copy { dst, len, .. }
            | Op::Rmw { dst, len, .. }
            | Op::Load { addr: dst, len } => {
                let mut buf = [0u8; CHUNK as usize];
                let mut sbuf = [0u8; CHUNK as usize];
                while self.progress < len {
                    if used >= left {
                        return Ok((used, false));
                    }
                    let d = dst.wrapping_add(self.progress);
                    let mut n = (len - self.progress).min(CHUNK - d % CHUNK);
                    let src = match op {
                        Op::Copy { src, .. } | Op::Rmw { src, .. } => {
                            Some(src.wrapping_add(self.progress))
                        }
                        _ => None,
                    };
                    if let Some(s) = src {
                        n = n.min(CHUNK - s % CHUNK);
                    }
                    let n_us = n as usize;
                    match op {
                        Op::Fill { pattern, .. } => {
                            let p = pattern.to_le_bytes();
                            for (i, b) in buf[..n_us].iter_mut().enumerate() {
                                *b = p[((self.progress as usize) + i) % 4];
                            }
                            mem.write(d, &buf[..n_us]).map_err(|f| (f, used))?;
                        }
                        Op::Copy { .. } => {
                            mem.read(src.unwrap_or(0), &mut buf[..n_us])
                                .map_err(|f| (f, used))?;
                            mem.write(d, &buf[..n_us]).map_err(|f| (f, used))?;
                        }
                        Op::Rmw { f, .. } => {
                            mem.read(src.unwrap_or(0), &mut sbuf[..n_us])
                                .map_err(|f| (f, used))?;
                            mem.read(d, &mut buf[..n_us]).map_err(|f| (f, used))?;
                            combine(f, &mut buf[..n_us], &sbuf[..n_us]);
                            mem.write(d, &buf[..n_us]).map_err(|f| (f, used))?;
                        }
                        _ => mem.read(d, &mut buf[..n_us]).map_err(|f| (f, used))?,
                    }
                    self.progress += n;
                    used += n.div_ceil(BYTES_PER_NS);
                }
                Ok((used, true))
            }
        }
    }
}

fn combine(f: RmwFn, dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = f.apply(*d, *s);
    }
}

pub(super) fn access_fault(e: AccessError, unit: u32, write: bool, address: u64) -> Fault {
    let fault_type = match e {
        AccessError::Unmapped => ext::DRM_ASAHI_EXT_FAULT_UNMAPPED,
        AccessError::Permission => ext::DRM_ASAHI_EXT_FAULT_PERMISSION,
    };
    Fault {
        fault_type,
        unit,
        write,
        address,
    }
}

/// Memory as one unit of the GPU sees it.
struct Mem<'a> {
    pt: &'a PageTable,
    unit: u32,
    soft: bool,
    /// Where written ranges are recorded, if anywhere.
    log: Option<&'a mut Vec<(u64, u64)>>,
}

impl Mem<'_> {
    fn read(&self, va: u64, dst: &mut [u8]) -> Result<(), Fault> {
        match read(self.pt, va, dst, self.soft) {
            Ok(()) => Ok(()),
            Err(e) => Err(access_fault(
                e,
                self.unit,
                false,
                fault_addr(self.pt, va, dst.len(), false),
            )),
        }
    }

    fn write(&mut self, va: u64, src: &[u8]) -> Result<(), Fault> {
        // Translate every page first, so a faulting chunk writes nothing.
        let mut off = 0usize;
        let mut targets = [(None, 0u64, 0usize); 2];
        let mut n_targets = 0;
        while off < src.len() {
            let a = va.wrapping_add(off as u64);
            let n = (src.len() - off)
                .min((crate::config::PAGE_SIZE - a % crate::config::PAGE_SIZE) as usize);
            match self.pt.translate(a, true) {
                Ok((bo, bo_off)) => targets[n_targets] = (Some(bo), bo_off, n),
                Err(AccessError::Unmapped) if self.soft => targets[n_targets] = (None, 0, n),
                Err(e) => return Err(access_fault(e, self.unit, true, a)),
            }
            n_targets += 1;
            off += n;
        }
        let mut off = 0usize;
        for (bo, bo_off, n) in targets.iter().take(n_targets) {
            if let Some(bo) = bo {
                bo.gpu().write(*bo_off as usize, &src[off..off + n]);
            }
            off += n;
        }
        if let Some(log) = self.log.as_deref_mut() {
            log_write(log, va, src.len() as u64);
        }
        Ok(())
    }
}

/// Reads through the page table; a read may span two pages at most (chunks are <= 4 KiB).
pub(super) fn read(pt: &PageTable, va: u64, dst: &mut [u8], soft: bool) -> Result<(), AccessError> {
    let mut off = 0usize;
    while off < dst.len() {
        let a = va.wrapping_add(off as u64);
        let n = (dst.len() - off)
            .min((crate::config::PAGE_SIZE - a % crate::config::PAGE_SIZE) as usize);
        match pt.translate(a, false) {
            Ok((bo, bo_off)) => bo.gpu().read(bo_off as usize, &mut dst[off..off + n]),
            Err(AccessError::Unmapped) if soft => dst[off..off + n].fill(0),
            Err(e) => return Err(e),
        }
        off += n;
    }
    Ok(())
}

/// The first address of a failed access (the page that was missing).
fn fault_addr(pt: &PageTable, va: u64, len: usize, write: bool) -> u64 {
    let mut a = va;
    // Addresses are 64-bit: an access at the top of the space must not overflow (a GPU
    // address past any mapping just faults).
    let end = va.saturating_add(len as u64);
    while a < end {
        if pt.translate(a, write).is_err() {
            return a;
        }
        match (a / crate::config::PAGE_SIZE + 1).checked_mul(crate::config::PAGE_SIZE) {
            Some(next) => a = next,
            None => break,
        }
    }
    va
}

impl Exec {
    /// Drops the rest of the op in progress and goes on with the next one (`continue` policy).
    pub fn abandon_current_op(&mut self) {
        if let Some((op, _)) = self.current.take() {
            self.pc = match op {
                Op::Jump { target } => target,
                Op::End | Op::Hang => return self.current = Some((op, 0)),
                _ => self.pc + OP_SIZE,
            };
        }
        self.progress = 0;
    }

    /// A command stuck in a hang from now on (an injected hang).
    pub fn hung() -> Exec {
        Exec {
            pc: 0,
            current: Some((Op::Hang, 0)),
            progress: 0,
            mode: Mode::Stream,
        }
    }
}

/// Adds `[va, va + len)` to a list of written ranges, merging it with the last range when they
/// touch or overlap (the executor writes sequentially, so the list stays short).
fn log_write(log: &mut Vec<(u64, u64)>, va: u64, len: u64) {
    let end = va.saturating_add(len);
    if let Some(last) = log.last_mut() {
        if va <= last.1 && end >= last.0 {
            *last = (last.0.min(va), last.1.max(end));
            return;
        }
    }
    log.push((va, end));
}

/// Writes zeros over `[va, va + len)` through the page table, page by page, skipping what is
/// not mapped writable (the firmware clearing what it can reach).
pub(super) fn zero_va(pt: &PageTable, va: u64, len: u64) {
    const ZEROS: [u8; CHUNK as usize] = [0; CHUNK as usize];
    let end = va.saturating_add(len);
    let mut a = va;
    while a < end {
        let n = (end - a).min(CHUNK - a % CHUNK);
        if let Ok((bo, off)) = pt.translate(a, true) {
            bo.gpu().write(off as usize, &ZEROS[..n as usize]);
        }
        a += n;
    }
}
