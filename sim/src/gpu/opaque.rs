//! Opaque jobs (`streams=opaque`): commands whose control stream is real AGX (VDM/CDM words
//! from Mesa), not the simulator's command language. The simulator cannot execute them; it
//! runs them as jobs that check the memory the firmware would touch first, cost GPU time from
//! their parameters, and otherwise go through scheduling, faults, injection, the watchdog,
//! recovery and result records like any other command. They leave memory as it is: no pixel
//! is drawn, no buffer written. `docs/sim-command-stream.md` ("Opaque streams") has the rules.

use agx_uapi::asahi::{drm_asahi_attachment, drm_asahi_cmd_compute, drm_asahi_cmd_render};
use agx_uapi::fault_ext as ext;

use super::exec::{access_fault, read, Fault};
use crate::config::PAGE_SIZE;
use crate::stream::{Op, RawOp, OP_END, OP_HANG, OP_JUMP, OP_RMW, OP_SIZE};
use crate::vm::{AccessError, PageTable};

/// Model constant: GPU time of a render command before its tiles (vertex work, tiling), ns.
pub const RENDER_BASE_NS: u64 = 10_000;
/// Model constant: GPU time per tile per layer per sample of a render command, ns.
pub const NS_PER_TILE: u64 = 250;
/// Model constant: tile side when the command gives no logical tile size, pixels.
pub const DEFAULT_TILE_PX: u64 = 32;
/// Model constant: GPU time of a compute command (its grid is inside the CDM stream), ns.
pub const COMPUTE_NS: u64 = 20_000;
/// Ops of a stream read to decide whether it is in the simulator's language.
pub const SCAN_OPS: usize = 64;

/// A range the command must be able to reach before it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Check {
    pub start: u64,
    pub len: u64,
    pub write: bool,
    pub unit: u32,
}

/// What an opaque job needs to know about its command, derived from the submit's payload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpaqueCmd {
    /// GPU time the job takes when nothing stops it.
    pub cost_ns: u64,
    /// Memory checked when the job starts, in order: the first failure is its fault.
    pub checks: Vec<Check>,
}

impl OpaqueCmd {
    /// A render command: tiles from the render size, layers and samples; its vertex and
    /// fragment attachments must be writable, and the depth and stencil buffers it loads or
    /// stores reachable (see [`zls_checks`]).
    pub fn render(
        c: &drm_asahi_cmd_render,
        vertex: &[drm_asahi_attachment],
        fragment: &[drm_asahi_attachment],
    ) -> OpaqueCmd {
        let side = |px: u8| if px == 0 { DEFAULT_TILE_PX } else { px as u64 };
        let tiles = (c.width_px as u64).div_ceil(side(c.utile_width_px))
            * (c.height_px as u64).div_ceil(side(c.utile_height_px))
            * (c.layers as u64).max(1);
        let cost_ns = RENDER_BASE_NS + tiles * NS_PER_TILE * (c.samples as u64).max(1);
        let checks = attachment_checks(vertex, ext::DRM_ASAHI_EXT_UNIT_VERTEX)
            .chain(attachment_checks(
                fragment,
                ext::DRM_ASAHI_EXT_UNIT_FRAGMENT,
            ))
            .chain(zls_checks(c))
            .collect();
        OpaqueCmd { cost_ns, checks }
    }

    /// A compute command: a fixed cost; its compute attachments must be writable.
    pub fn compute(_c: &drm_asahi_cmd_compute, attachments: &[drm_asahi_attachment]) -> OpaqueCmd {
        OpaqueCmd {
            cost_ns: COMPUTE_NS,
            checks: attachment_checks(attachments, ext::DRM_ASAHI_EXT_UNIT_COMPUTE).collect(),
        }
    }
}

fn attachment_checks(list: &[drm_asahi_attachment], unit: u32) -> impl Iterator<Item = Check> + '_ {
    list.iter().filter(|a| a.size != 0).map(move |a| Check {
        start: a.pointer,
        len: a.size,
        write: true,
        unit,
    })
}

/// `zls_ctrl` bits (`ZLS Control` in Mesa's `src/asahi/genxml/cmdbuf.xml`).
const ZLS_Z_LOAD_COMPRESS: u64 = 1 << 2;
const ZLS_S_LOAD_COMPRESS: u64 = 1 << 4;
const ZLS_Z_STORE_COMPRESS: u64 = 1 << 6;
const ZLS_S_STORE_COMPRESS: u64 = 1 << 8;
const ZLS_S_LOAD: u64 = 1 << 14;
const ZLS_Z_LOAD: u64 = 1 << 15;
const ZLS_S_STORE: u64 = 1 << 18;
const ZLS_Z_STORE: u64 = 1 << 19;

/// The depth and stencil buffers the ZLS unit touches at the start of each tile (load: read)
/// and at its end (store: write), with their compression metadata when the load or store is
/// compressed: the first page of each, unit `FRAGMENT`. Only the first page: the extent of a
/// ZLS buffer (its layout in tiles) is not in the command.
fn zls_checks(c: &drm_asahi_cmd_render) -> impl Iterator<Item = Check> {
    let z = c.zls_ctrl;
    let ops = [
        (ZLS_Z_LOAD, ZLS_Z_LOAD_COMPRESS, c.depth, false),
        (ZLS_S_LOAD, ZLS_S_LOAD_COMPRESS, c.stencil, false),
        (ZLS_Z_STORE, ZLS_Z_STORE_COMPRESS, c.depth, true),
        (ZLS_S_STORE, ZLS_S_STORE_COMPRESS, c.stencil, true),
    ];
    ops.into_iter()
        .filter(move |(op, ..)| z & op != 0)
        .flat_map(move |(_, compress, buf, write)| {
            let meta = (z & compress != 0).then_some(buf.comp_base);
            [Some(buf.base), meta]
                .into_iter()
                .flatten()
                .filter(|&a| a != 0)
                .map(move |start| Check {
                    start,
                    len: 1,
                    write,
                    unit: ext::DRM_ASAHI_EXT_UNIT_FRAGMENT,
                })
        })
}

/// What a command's stream turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    /// The simulator's command language: execute it.
    Sim,
    /// Anything else: run the command as an opaque job.
    Opaque,
}

/// Reads the stream at `stream` to tell the two apart: up to [`SCAN_OPS`] ops (following
/// jumps) must decode strictly, or the stream ends first. A stream whose first op cannot be
/// fetched faults at once (unit `fetch_unit`), whichever language it is in; a later fetch
/// failure is left for the executor to report where it happens.
pub fn classify(pt: &PageTable, stream: u64, fetch_unit: u32) -> Result<Language, Fault> {
    let mut pc = stream;
    for i in 0..SCAN_OPS {
        let mut raw = RawOp::default();
        if let Err(e) = read(pt, pc, bytemuck::bytes_of_mut(&mut raw), false) {
            if i == 0 {
                return Err(access_fault(e, fetch_unit, false, pc));
            }
            return Ok(Language::Sim);
        }
        if !is_strict_sim_op(&raw) {
            return Ok(Language::Opaque);
        }
        match raw.op {
            OP_END => return Ok(Language::Sim),
            OP_JUMP => pc = raw.a,
            _ => pc = pc.wrapping_add(OP_SIZE),
        }
    }
    Ok(Language::Sim)
}

/// An op as the simulator's own tools encode it: known opcode and operands, a modifier only
/// where the op has one, a known unit override, reserved flag bits and unused operands zero.
fn is_strict_sim_op(raw: &RawOp) -> bool {
    if Op::decode(raw).is_none() || raw.flags >> 16 != 0 {
        return false;
    }
    if raw.op != OP_RMW && raw.flags & 0xff != 0 {
        return false;
    }
    if Op::unit_override(raw) > ext::DRM_ASAHI_EXT_UNIT_FIRMWARE {
        return false;
    }
    match raw.op {
        OP_END | OP_HANG => raw.a == 0 && raw.b == 0 && raw.c == 0,
        _ => true,
    }
}

/// Checks every range: the first page that cannot be reached faults. With soft faults,
/// unmapped pages are no fault for writes (they would be dropped), permission faults still are.
pub fn check(pt: &PageTable, checks: &[Check], soft: bool) -> Result<(), Fault> {
    for c in checks {
        let end = c.start.saturating_add(c.len);
        let mut a = c.start;
        while a < end {
            match pt.translate(a, c.write) {
                Ok(_) => {}
                Err(AccessError::Unmapped) if soft => {}
                Err(e) => return Err(access_fault(e, c.unit, c.write, a)),
            }
            match (a / PAGE_SIZE + 1).checked_mul(PAGE_SIZE) {
                Some(next) => a = next,
                None => break,
            }
        }
    }
    Ok(())
}
