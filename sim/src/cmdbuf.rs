//! Decoding and validating a `SUBMIT` command buffer, as the kernel does before it accepts
//! anything: header sizes, command types, truncated payloads zero-extended, attachment lists,
//! barrier indices, the hardware command count, and (with the extension) job infos.
//!
//! Only checks that need no handle lookups are here; the submit handler does the rest.

use agx_uapi::asahi::*;
use agx_uapi::fault_ext as ext;
use rustix::io::Errno;

use crate::gpu::opaque::OpaqueCmd;
use crate::gpu::Sub;

/// Render flags the kernel knows.
const RENDER_FLAGS: u32 = DRM_ASAHI_RENDER_VERTEX_SCRATCH
    | DRM_ASAHI_RENDER_PROCESS_EMPTY_TILES
    | DRM_ASAHI_RENDER_NO_VERTEX_CLUSTERING
    | DRM_ASAHI_RENDER_DBIAS_IS_INT;

/// A hardware command of the submit.
#[derive(Clone, Debug)]
pub struct HwCmd {
    pub sub: Sub,
    pub stream: u64,
    /// Barrier on the render subqueue: `None`, or wait for this many of the submit's own
    /// render commands (plus everything from earlier submits).
    pub vdm_barrier: Option<u16>,
    pub cdm_barrier: Option<u16>,
    pub timestamps: drm_asahi_timestamps,
    pub job_info: Option<ext::drm_asahi_ext_job_info>,
    /// Attachment hints in force for this command (kept for traces).
    pub attachments: usize,
    /// How the command runs if its stream turns out not to be in the simulator's language.
    pub opaque: OpaqueCmd,
    /// Render commands: the fragment attachments in force (GPU VA, bytes), where its tiles
    /// are stored.
    pub render_targets: Vec<(u64, u64)>,
}

/// Reads a payload of `size` bytes into `T`, zero-extending a short one and rejecting a long
/// one whose extra bytes are not zero.
fn payload<T: bytemuck::Pod>(bytes: &[u8]) -> Result<T, Errno> {
    let mut v = T::zeroed();
    let n = core::mem::size_of::<T>();
    if bytes.len() > n && bytes[n..].iter().any(|&b| b != 0) {
        return Err(Errno::INVAL);
    }
    let m = n.min(bytes.len());
    bytemuck::bytes_of_mut(&mut v)[..m].copy_from_slice(&bytes[..m]);
    Ok(v)
}

fn barrier(raw: u16, before: usize) -> Result<Option<u16>, Errno> {
    if raw == DRM_ASAHI_BARRIER_NONE {
        return Ok(None);
    }
    if raw as usize > before {
        return Err(Errno::INVAL);
    }
    Ok(Some(raw))
}

/// Parses a whole cmdbuf.
pub fn parse(
    buf: &[u8],
    max_commands: u32,
    max_attachments: u32,
    fault_ext: bool,
) -> Result<Vec<HwCmd>, Errno> {
    let hdr_size = core::mem::size_of::<drm_asahi_cmd_header>();
    let mut cmds = Vec::new();
    let mut off = 0usize;
    let mut counts = [0usize; 2];
    // Vertex, fragment, compute: the lists in force.
    let mut attachments: [Vec<drm_asahi_attachment>; 3] = Default::default();
    let mut pending_info: Option<ext::drm_asahi_ext_job_info> = None;
    while off < buf.len() {
        let hdr_bytes = buf.get(off..off + hdr_size).ok_or(Errno::INVAL)?;
        let hdr: drm_asahi_cmd_header = bytemuck::pod_read_unaligned(hdr_bytes);
        off += hdr_size;
        let body = buf.get(off..off + hdr.size as usize).ok_or(Errno::INVAL)?;
        off += hdr.size as usize;
        match hdr.cmd_type {
            DRM_ASAHI_CMD_RENDER | DRM_ASAHI_CMD_COMPUTE => {
                let (sub, stream, timestamps, opaque) = if hdr.cmd_type == DRM_ASAHI_CMD_RENDER {
                    let c: drm_asahi_cmd_render = payload(body)?;
                    if c.flags & !RENDER_FLAGS != 0
                        || !matches!(c.samples, 1 | 2 | 4)
                        || c.width_px == 0
                        || c.height_px == 0
                        || c.layers == 0
                    {
                        return Err(Errno::INVAL);
                    }
                    // Timestamps of a render pass: the firmware writes vertex start and
                    // fragment end (the pass as a whole).
                    let ts = drm_asahi_timestamps {
                        start: c.ts_vtx.start,
                        end: c.ts_frag.end,
                    };
                    let opaque = OpaqueCmd::render(&c, &attachments[0], &attachments[1]);
                    (Sub::Render, c.vdm_ctrl_stream_base, ts, opaque)
                } else {
                    let c: drm_asahi_cmd_compute = payload(body)?;
                    if c.flags != 0 {
                        return Err(Errno::INVAL);
                    }
                    let opaque = OpaqueCmd::compute(&c, &attachments[2]);
                    (Sub::Compute, c.cdm_ctrl_stream_base, c.ts, opaque)
                };
                let vdm_barrier = barrier(hdr.vdm_barrier, counts[Sub::Render as usize])?;
                let cdm_barrier = barrier(hdr.cdm_barrier, counts[Sub::Compute as usize])?;
                counts[sub as usize] += 1;
                let att = if sub == Sub::Render {
                    attachments[0].len() + attachments[1].len()
                } else {
                    attachments[2].len()
                };
                let render_targets = match sub {
                    Sub::Render => attachments[1].iter().map(|a| (a.pointer, a.size)).collect(),
                    Sub::Compute => Vec::new(),
                };
                cmds.push(HwCmd {
                    sub,
                    stream,
                    vdm_barrier,
                    cdm_barrier,
                    timestamps,
                    job_info: pending_info.take(),
                    attachments: att,
                    opaque,
                    render_targets,
                });
            }
            DRM_ASAHI_SET_VERTEX_ATTACHMENTS
            | DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS
            | DRM_ASAHI_SET_COMPUTE_ATTACHMENTS => {
                let a_size = core::mem::size_of::<drm_asahi_attachment>();
                if hdr.vdm_barrier != DRM_ASAHI_BARRIER_NONE
                    || hdr.cdm_barrier != DRM_ASAHI_BARRIER_NONE
                    || body.len() % a_size != 0
                    || body.len() / a_size > max_attachments as usize
                {
                    return Err(Errno::INVAL);
                }
                let mut list = Vec::with_capacity(body.len() / a_size);
                for a in body.chunks_exact(a_size) {
                    let a: drm_asahi_attachment = bytemuck::pod_read_unaligned(a);
                    if a.pad != 0 || a.flags != 0 {
                        return Err(Errno::INVAL);
                    }
                    list.push(a);
                }
                let slot = (hdr.cmd_type - DRM_ASAHI_SET_VERTEX_ATTACHMENTS) as usize;
                attachments[slot] = list;
            }
            ext::DRM_ASAHI_CMD_EXT_JOB_INFO if fault_ext => {
                if hdr.vdm_barrier != DRM_ASAHI_BARRIER_NONE
                    || hdr.cdm_barrier != DRM_ASAHI_BARRIER_NONE
                    || pending_info.is_some()
                {
                    return Err(Errno::INVAL);
                }
                let info: ext::drm_asahi_ext_job_info = payload(body)?;
                let restartable = info.flags & ext::DRM_ASAHI_EXT_JOB_RESTARTABLE != 0;
                let both = ext::DRM_ASAHI_EXT_JOB_STATUS_ONLY | ext::DRM_ASAHI_EXT_JOB_TIMESTAMPS;
                if info.flags & !ext::DRM_ASAHI_EXT_JOB_FLAGS_ALL != 0
                    || info.reasons & !ext::DRM_ASAHI_EXT_REASONS_ALL != 0
                    || (restartable && info.reasons != 0)
                    || info.flags & both == both
                    || info.pad != 0
                    || info.result_offset % 8 != 0
                {
                    return Err(Errno::INVAL);
                }
                pending_info = Some(info);
            }
            _ => return Err(Errno::INVAL),
        }
    }
    if pending_info.is_some() || cmds.is_empty() || cmds.len() > max_commands as usize {
        return Err(Errno::INVAL);
    }
    Ok(cmds)
}

/// Bytes of the result slot a job info asks for.
pub fn slot_bytes(info: &ext::drm_asahi_ext_job_info) -> usize {
    if info.flags & ext::DRM_ASAHI_EXT_JOB_STATUS_ONLY != 0 {
        ext::DRM_ASAHI_EXT_RESULT_STATUS_SIZE
    } else if info.flags & ext::DRM_ASAHI_EXT_JOB_TIMESTAMPS != 0 {
        core::mem::size_of::<ext::drm_asahi_ext_result>()
    } else {
        ext::DRM_ASAHI_EXT_RESULT_FAULT_SIZE
    }
}
