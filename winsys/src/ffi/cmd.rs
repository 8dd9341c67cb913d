//! Command buffers built from plain C descriptors: render passes and compute commands with the
//! access descriptions the restartability analysis needs.

use std::os::raw::c_int;
use std::sync::Mutex;

use super::cmd_desc::*;
use super::device::agx_ws_device;
use super::guard::{call, einval, flag, input, out, slice, FfiResult};
use super::handle::{self, lookup};
use crate::analysis::{
    ColorAttachment, ComputeCommand, DepthStencilAttachment, Dispatch, LoadOp, Region, RenderPass,
    ShaderAccess, ShaderAccessKind, SideEffects, StoreOp, TransformFeedback, Va,
};
use crate::cmd::{
    Attachment, BgEot, CommandBuffer, ComputeDesc, Dep, Deps, HelperProgram, RenderDesc,
    RenderFlags, Timestamp, Timestamps, ZlsBuffer,
};

/// An ordered list of render passes and compute commands, submitted with
/// `agx_ws_queue_submit` (any number of times).
pub struct agx_ws_cmdbuf {
    _opaque: [u8; 0],
}

pub(crate) type CmdBufObj = Mutex<CommandBuffer>;

fn region(r: &agx_ws_range) -> Region<Va> {
    Region::va(r.base, r.size)
}

fn load_op(v: u32) -> FfiResult<LoadOp> {
    Ok(match v {
        0 => LoadOp::Load,
        1 => LoadOp::Clear,
        2 => LoadOp::DontCare,
        _ => return Err(einval("load is not an agx_ws_load_op")),
    })
}

fn store_op(v: u32) -> FfiResult<StoreOp> {
    Ok(match v {
        0 => StoreOp::Store,
        1 => StoreOp::DontCare,
        _ => return Err(einval("store is not an agx_ws_store_op")),
    })
}

fn shader_kind(v: u32) -> FfiResult<ShaderAccessKind> {
    Ok(match v {
        0 => ShaderAccessKind::Read,
        1 => ShaderAccessKind::Write,
        2 => ShaderAccessKind::ReadWrite,
        3 => ShaderAccessKind::Atomic,
        _ => return Err(einval("kind is not an agx_ws_shader_access_kind")),
    })
}

fn helper(h: &agx_ws_helper_program) -> HelperProgram {
    HelperProgram {
        binary: h.binary,
        cfg: h.cfg,
        data: h.data,
    }
}

fn timestamps(t: &agx_ws_timestamps) -> Timestamps {
    Timestamps {
        start: Timestamp::new(t.start.handle, t.start.offset),
        end: Timestamp::new(t.end.handle, t.end.offset),
    }
}

fn zls(z: &agx_ws_zls_buffer) -> ZlsBuffer {
    ZlsBuffer {
        base: z.base,
        comp_base: z.comp_base,
        stride: z.stride,
        comp_stride: z.comp_stride,
    }
}

fn bg_eot(b: &agx_ws_bg_eot) -> BgEot {
    BgEot {
        usc: b.usc,
        rsrc_spec: b.rsrc_spec,
    }
}

fn ranges(list: &[agx_ws_range]) -> Vec<Region<Va>> {
    list.iter().map(region).collect()
}

fn attachments(list: &[agx_ws_range]) -> Vec<Attachment> {
    list.iter()
        .map(|r| Attachment::new(r.base, r.size))
        .collect()
}

fn ds(d: &agx_ws_ds_attachment) -> FfiResult<DepthStencilAttachment<Va>> {
    let mut a = DepthStencilAttachment::new(region(&d.range), load_op(d.load)?, store_op(d.store)?);
    a.read_only = flag(d.read_only);
    Ok(a)
}

/// Reads a render access description.
///
/// # Safety
///
/// `a`'s pointers and counts follow the contract of `agx_ws_cmdbuf_add_render`.
pub(crate) unsafe fn render_access(a: &agx_ws_render_access) -> FfiResult<RenderPass<Va>> {
    let known = AGX_WS_RENDER_ACCESS_SHADER_UNKNOWN | AGX_WS_RENDER_ACCESS_NO_PARTIAL_RENDERS;
    if a.flags & !known != 0 {
        return Err(einval("unknown AGX_WS_RENDER_ACCESS_* flags"));
    }
    let mut pass = RenderPass::new()
        .partial_render_spills(a.flags & AGX_WS_RENDER_ACCESS_NO_PARTIAL_RENDERS == 0);
    // SAFETY: the caller's contract: each pointer is NULL or points to its count of elements,
    // plain data valid for any bits (the same holds for every read below).
    let colors = unsafe { slice(a.colors, a.color_count, "access->colors") }?;
    for c in colors {
        let mut att = ColorAttachment::new(region(&c.range), load_op(c.load)?, store_op(c.store)?);
        att.blend = flag(c.blend);
        pass = pass.color(att);
    }
    if !a.depth.is_null() {
        // SAFETY: as above, one element.
        pass = pass.depth(ds(&unsafe { slice(a.depth, 1, "access->depth") }?[0])?);
    }
    if !a.stencil.is_null() {
        // SAFETY: as above, one element.
        pass = pass.stencil(ds(&unsafe { slice(a.stencil, 1, "access->stencil") }?[0])?);
    }
    // SAFETY: as above.
    let shader = unsafe {
        slice(
            a.shader_accesses,
            a.shader_access_count,
            "access->shader_accesses",
        )
    }?;
    pass.shader = if a.flags & AGX_WS_RENDER_ACCESS_SHADER_UNKNOWN != 0 {
        SideEffects::Unknown
    } else {
        SideEffects::Declared(
            shader
                .iter()
                .map(|s| {
                    Ok(ShaderAccess {
                        kind: shader_kind(s.kind)?,
                        region: region(&s.range),
                    })
                })
                .collect::<FfiResult<_>>()?,
        )
    };
    // SAFETY: as above.
    for q in unsafe {
        slice(
            a.occlusion_queries,
            a.occlusion_query_count,
            "access->occlusion_queries",
        )
    }? {
        pass = pass.occlusion_query(region(&q.range), flag(q.reset_in_command));
    }
    // SAFETY: as above.
    for x in unsafe { slice(a.xfbs, a.xfb_count, "access->xfbs") }? {
        pass = pass.transform_feedback(TransformFeedback {
            buffer: region(&x.buffer),
            counter: flag(x.has_counter).then(|| region(&x.counter)),
            append: flag(x.append),
        });
    }
    // SAFETY: as above.
    for t in unsafe { slice(a.timestamps, a.timestamp_count, "access->timestamps") }? {
        pass = pass.timestamp(region(t));
    }
    Ok(pass)
}

/// Reads a compute access description.
///
/// # Safety
///
/// `a`'s pointers and counts follow the contract of `agx_ws_cmdbuf_add_compute`.
pub(crate) unsafe fn compute_access(a: &agx_ws_compute_access) -> FfiResult<ComputeCommand<Va>> {
    let mut cmd = ComputeCommand::new();
    // SAFETY: the caller's contract: dispatches points to dispatch_count elements (plain data).
    for d in unsafe { slice(a.dispatches, a.dispatch_count, "access->dispatches") }? {
        if d.flags & !(AGX_WS_DISPATCH_UNDECLARED | AGX_WS_DISPATCH_CONCURRENT) != 0 {
            return Err(einval("unknown AGX_WS_DISPATCH_* flags"));
        }
        // SAFETY: the caller's contract: each range pointer is NULL or points to its count of
        // elements (plain data), for this and the four reads below.
        let reads = unsafe { slice(d.reads, d.read_count, "dispatch->reads") }?;
        // SAFETY: as above.
        let writes = unsafe { slice(d.writes, d.write_count, "dispatch->writes") }?;
        // SAFETY: as above.
        let read_writes =
            unsafe { slice(d.read_writes, d.read_write_count, "dispatch->read_writes") }?;
        // SAFETY: as above.
        let atomics = unsafe { slice(d.atomics, d.atomic_count, "dispatch->atomics") }?;
        // SAFETY: as above.
        let overwrites = unsafe { slice(d.overwrites, d.overwrite_count, "dispatch->overwrites") }?;
        let dispatch = Dispatch {
            reads: ranges(reads),
            writes: ranges(writes),
            read_writes: ranges(read_writes),
            atomics: ranges(atomics),
            overwrites: ranges(overwrites),
            undeclared: d.flags & AGX_WS_DISPATCH_UNDECLARED != 0,
            concurrent_with_previous: d.flags & AGX_WS_DISPATCH_CONCURRENT != 0,
        };
        cmd = cmd.dispatch(dispatch);
    }
    Ok(cmd)
}

/// `None`: the default ordering; else explicit deps for the command at `index`.
fn deps(d: &agx_ws_deps, index: usize) -> FfiResult<Option<Deps>> {
    const DEFAULT: u32 = agx_ws_dep_kind::AGX_WS_DEP_DEFAULT as u32;
    if d.render == DEFAULT && d.compute == DEFAULT {
        return Ok(None);
    }
    let all = Deps::all_before(index);
    let one = |kind: u32, target: u32, default: Dep| -> FfiResult<Dep> {
        Ok(match kind {
            0 => default,
            1 => Dep::None,
            2 => Dep::PreviousSubmits,
            3 => Dep::Through(target as usize),
            _ => return Err(einval("deps: not an agx_ws_dep_kind")),
        })
    };
    Ok(Some(Deps {
        render: one(d.render, d.render_index, all.render)?,
        compute: one(d.compute, d.compute_index, all.compute)?,
    }))
}

/// Creates an empty command buffer for `device` (its attachment limit applies).
///
/// # Safety
///
/// `out_cmdbuf` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_cmdbuf_create(
    device: *mut agx_ws_device,
    out_cmdbuf: *mut *mut agx_ws_cmdbuf,
) -> c_int {
    call("agx_ws_cmdbuf_create", || {
        // SAFETY: the caller's contract, forwarded.
        let out_cmdbuf = unsafe { out(out_cmdbuf, "out_cmdbuf") }?;
        let dev = lookup(device)?;
        let cb = CommandBuffer::new(dev.params().max_attachments);
        out_cmdbuf.write(handle::register(Mutex::new(cb)));
        Ok(0)
    })
}

/// Destroys the command buffer (jobs submitted from it are unaffected).
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_cmdbuf_destroy(cmdbuf: *mut agx_ws_cmdbuf) -> c_int {
    call("agx_ws_cmdbuf_destroy", || handle::destroy(cmdbuf))
}

/// Removes every command (to record the next frame into the same buffer).
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: memory-safe from any thread (internally locked); like a Vulkan command buffer
/// it is meant to be recorded by one thread at a time.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_cmdbuf_reset(cmdbuf: *mut agx_ws_cmdbuf) -> c_int {
    call("agx_ws_cmdbuf_reset", || {
        lookup(cmdbuf)?
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(0)
    })
}

fn lock(cb: &CmdBufObj) -> std::sync::MutexGuard<'_, CommandBuffer> {
    cb.lock().unwrap_or_else(|e| e.into_inner())
}

/// Appends a render pass and runs the restartability analysis on its access description.
/// `*out_index` (may be NULL) receives the command's index.
///
/// Errors: `-EINVAL` wrong `struct_size` (of the desc or the access), a NULL array with a
/// non-zero count, an invalid enum value or flag, a field the uAPI rejects (width 0, samples 3,
/// ...), too many attachments, a dependency on a later command.
///
/// # Safety
///
/// `desc` is NULL or points to a readable `agx_ws_render_desc` (at least its `struct_size`)
/// whose pointers are each NULL or point to their count of readable elements (`access` to an
/// `agx_ws_render_access` with the same rules, `depth`/`stencil` to one element); `out_index`
/// is NULL or valid for a write.
///
/// Thread safety: as `agx_ws_cmdbuf_reset`.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_cmdbuf_add_render(
    cmdbuf: *mut agx_ws_cmdbuf,
    desc: *const agx_ws_render_desc,
    out_index: *mut u32,
) -> c_int {
    call("agx_ws_cmdbuf_add_render", || {
        // SAFETY: the caller's contract, forwarded.
        let out_index = unsafe { super::guard::out_opt(out_index, "out_index") }?;
        let cb = lookup(cmdbuf)?;
        // SAFETY: the caller's contract, forwarded.
        let d = unsafe { input(desc, "desc") }?;
        let flags = RenderFlags::from_bits(d.flags)
            .ok_or_else(|| einval("unknown AGX_WS_RENDER_* flags"))?;
        let access = if d.access.is_null() {
            None
        } else {
            // SAFETY: the caller's contract: access points to a readable agx_ws_render_access.
            let a = unsafe { input(d.access, "desc->access") }?;
            // SAFETY: the caller's contract: its arrays hold their counts of elements.
            Some(unsafe { render_access(a) }?)
        };
        // SAFETY: the caller's contract: each array pointer is NULL or has its count of elements.
        let vertex = unsafe {
            slice(
                d.vertex_attachments,
                d.vertex_attachment_count,
                "desc->vertex_attachments",
            )
        }?;
        // SAFETY: as above.
        let fragment = unsafe {
            slice(
                d.fragment_attachments,
                d.fragment_attachment_count,
                "desc->fragment_attachments",
            )
        }?;
        let r = RenderDesc {
            flags,
            width_px: d.width_px,
            height_px: d.height_px,
            layers: d.layers,
            samples: d.samples,
            utile_width_px: d.utile_width_px,
            utile_height_px: d.utile_height_px,
            sample_size_bytes: d.sample_size_bytes,
            vdm_ctrl_stream_base: d.vdm_ctrl_stream_base,
            vertex_helper: helper(&d.vertex_helper),
            fragment_helper: helper(&d.fragment_helper),
            isp_scissor_base: d.isp_scissor_base,
            isp_dbias_base: d.isp_dbias_base,
            isp_oclqry_base: d.isp_oclqry_base,
            depth: zls(&d.depth),
            stencil: zls(&d.stencil),
            zls_ctrl: d.zls_ctrl,
            ppp_multisamplectl: d.ppp_multisamplectl,
            sampler_heap: d.sampler_heap,
            sampler_count: d.sampler_count,
            ppp_ctrl: d.ppp_ctrl,
            isp_zls_pixels: d.isp_zls_pixels,
            isp_merge_upper_x: d.isp_merge_upper_x,
            isp_merge_upper_y: d.isp_merge_upper_y,
            bg: bg_eot(&d.bg),
            eot: bg_eot(&d.eot),
            partial_bg: bg_eot(&d.partial_bg),
            partial_eot: bg_eot(&d.partial_eot),
            isp_bgobjdepth: d.isp_bgobjdepth,
            isp_bgobjvals: d.isp_bgobjvals,
            ts_vertex: timestamps(&d.ts_vertex),
            ts_fragment: timestamps(&d.ts_fragment),
            vertex_attachments: attachments(vertex),
            fragment_attachments: attachments(fragment),
            access,
        };
        let mut cb = lock(&cb);
        let index = match deps(&d.deps, cb.len())? {
            None => cb.render(r),
            Some(deps) => cb.render_with_deps(r, deps),
        }
        .map_err(crate::Error::from)?;
        if let Some(o) = out_index {
            o.write(index as u32);
        }
        Ok(0)
    })
}

/// Appends a compute command and runs the restartability analysis on its declared accesses.
/// `*out_index` (may be NULL) receives the command's index.
///
/// Errors: as `agx_ws_cmdbuf_add_render` (`cdm_ctrl_stream_end` before the base is `-EINVAL`).
///
/// # Safety
///
/// `desc` is NULL or points to a readable `agx_ws_compute_desc` (at least its `struct_size`)
/// whose pointers are each NULL or point to their count of readable elements (`access` to an
/// `agx_ws_compute_access` with the same rules, recursively for each dispatch); `out_index` is
/// NULL or valid for a write.
///
/// Thread safety: as `agx_ws_cmdbuf_reset`.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_cmdbuf_add_compute(
    cmdbuf: *mut agx_ws_cmdbuf,
    desc: *const agx_ws_compute_desc,
    out_index: *mut u32,
) -> c_int {
    call("agx_ws_cmdbuf_add_compute", || {
        // SAFETY: the caller's contract, forwarded.
        let out_index = unsafe { super::guard::out_opt(out_index, "out_index") }?;
        let cb = lookup(cmdbuf)?;
        // SAFETY: the caller's contract, forwarded.
        let d = unsafe { input(desc, "desc") }?;
        let access = if d.access.is_null() {
            None
        } else {
            // SAFETY: the caller's contract: access points to a readable agx_ws_compute_access.
            let a = unsafe { input(d.access, "desc->access") }?;
            // SAFETY: the caller's contract: its dispatches and their arrays hold their counts.
            Some(unsafe { compute_access(a) }?)
        };
        // SAFETY: the caller's contract: attachments has attachment_count elements.
        let atts = unsafe { slice(d.attachments, d.attachment_count, "desc->attachments") }?;
        let c = ComputeDesc {
            cdm_ctrl_stream_base: d.cdm_ctrl_stream_base,
            cdm_ctrl_stream_end: d.cdm_ctrl_stream_end,
            sampler_heap: d.sampler_heap,
            sampler_count: d.sampler_count,
            helper: helper(&d.helper),
            timestamps: timestamps(&d.timestamps),
            attachments: attachments(atts),
            access,
        };
        let mut cb = lock(&cb);
        let index = match deps(&d.deps, cb.len())? {
            None => cb.compute(c),
            Some(deps) => cb.compute_with_deps(c, deps),
        }
        .map_err(crate::Error::from)?;
        if let Some(o) = out_index {
            o.write(index as u32);
        }
        Ok(0)
    })
}

/// The analysis verdict of command `index`: `AGX_WS_REASON_*` bits why it is not restartable,
/// 0 when it is.
///
/// Errors: `-EINVAL` no command `index`.
///
/// # Safety
///
/// `out_reasons` is NULL or valid for a write.
///
/// Thread safety: as `agx_ws_cmdbuf_reset`.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_cmdbuf_get_reasons(
    cmdbuf: *mut agx_ws_cmdbuf,
    index: u32,
    out_reasons: *mut u32,
) -> c_int {
    call("agx_ws_cmdbuf_get_reasons", || {
        // SAFETY: the caller's contract, forwarded.
        let out_reasons = unsafe { out(out_reasons, "out_reasons") }?;
        let cb = lookup(cmdbuf)?;
        let cb = lock(&cb);
        let c = cb
            .command(index as usize)
            .ok_or_else(|| einval("no command with that index"))?;
        out_reasons.write(c.verdict().reasons.bits());
        Ok(0)
    })
}

/// The number of commands recorded.
///
/// # Safety
///
/// `out_count` is NULL or valid for a write.
///
/// Thread safety: as `agx_ws_cmdbuf_reset`.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_cmdbuf_get_count(
    cmdbuf: *mut agx_ws_cmdbuf,
    out_count: *mut u32,
) -> c_int {
    call("agx_ws_cmdbuf_get_count", || {
        // SAFETY: the caller's contract, forwarded.
        let out_count = unsafe { out(out_count, "out_count") }?;
        let cb = lookup(cmdbuf)?;
        out_count.write(lock(&cb).len() as u32);
        Ok(0)
    })
}
