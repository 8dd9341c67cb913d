//! Render pass descriptor: `drm_asahi_cmd_render` plus attachments and the access description.

use agx_uapi::asahi::{
    drm_asahi_bg_eot, drm_asahi_cmd_render, drm_asahi_helper_program, drm_asahi_timestamp,
    drm_asahi_timestamps, drm_asahi_zls_buffer, DRM_ASAHI_RENDER_DBIAS_IS_INT,
    DRM_ASAHI_RENDER_NO_VERTEX_CLUSTERING, DRM_ASAHI_RENDER_PROCESS_EMPTY_TILES,
    DRM_ASAHI_RENDER_VERTEX_SCRATCH,
};
use bitflags::bitflags;

use super::{Attachment, BuildError, HelperProgram, Timestamp, Timestamps};
use crate::analysis::{RenderPass, Va};

bitflags! {
    /// `drm_asahi_cmd_render::flags` (`DRM_ASAHI_RENDER_*`).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct RenderFlags: u32 {
        /// The vertex stage needs scratch memory.
        const VERTEX_SCRATCH = DRM_ASAHI_RENDER_VERTEX_SCRATCH;
        /// Run the fragment stage (background/end-of-tile programs) on tiles with no geometry.
        const PROCESS_EMPTY_TILES = DRM_ASAHI_RENDER_PROCESS_EMPTY_TILES;
        /// Disable vertex clustering across cores.
        const NO_VERTEX_CLUSTERING = DRM_ASAHI_RENDER_NO_VERTEX_CLUSTERING;
        /// The depth bias array holds integers.
        const DBIAS_IS_INT = DRM_ASAHI_RENDER_DBIAS_IS_INT;
    }
}

/// A depth or stencil buffer of the ZLS (Z load/store) unit (`drm_asahi_zls_buffer`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ZlsBuffer {
    /// GPU VA of the (uncompressed) data.
    pub base: u64,
    /// GPU VA of the compression metadata.
    pub comp_base: u64,
    /// Bytes between layers of the data.
    pub stride: u32,
    /// Bytes between layers of the metadata.
    pub comp_stride: u32,
}

/// A background or end-of-tile program (`drm_asahi_bg_eot`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BgEot {
    /// USC word of the program.
    pub usc: u32,
    /// Resource specification (register counts).
    pub rsrc_spec: u32,
}

/// A render pass as the driver describes it: every field of `drm_asahi_cmd_render`, the
/// attachment lists in force for it, and the memory accesses the restartability analysis needs.
///
/// `Default` is a 1-layer, single-sampled pass with everything else zero (width and height must
/// still be set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderDesc {
    /// `DRM_ASAHI_RENDER_*`.
    pub flags: RenderFlags,
    /// Framebuffer width in pixels (`width_px`, non-zero).
    pub width_px: u16,
    /// Framebuffer height in pixels (`height_px`, non-zero).
    pub height_px: u16,
    /// Layers (`layers`, non-zero).
    pub layers: u16,
    /// Samples per pixel: 1, 2 or 4.
    pub samples: u8,
    /// Tile (utile) width in pixels.
    pub utile_width_px: u8,
    /// Tile (utile) height in pixels.
    pub utile_height_px: u8,
    /// Bytes of tile memory per sample (`sample_size_B`).
    pub sample_size_bytes: u8,
    /// GPU VA of the VDM control stream (`vdm_ctrl_stream_base`).
    pub vdm_ctrl_stream_base: u64,
    /// Helper program of the vertex stage.
    pub vertex_helper: HelperProgram,
    /// Helper program of the fragment stage.
    pub fragment_helper: HelperProgram,
    /// GPU VA of the scissor array (`isp_scissor_base`).
    pub isp_scissor_base: u64,
    /// GPU VA of the depth bias array (`isp_dbias_base`).
    pub isp_dbias_base: u64,
    /// GPU VA of the occlusion query results (`isp_oclqry_base`).
    pub isp_oclqry_base: u64,
    /// Depth buffer.
    pub depth: ZlsBuffer,
    /// Stencil buffer.
    pub stencil: ZlsBuffer,
    /// ZLS control word (which aspects are loaded / stored, compression, formats).
    pub zls_ctrl: u64,
    /// Sample positions (`ppp_multisamplectl`).
    pub ppp_multisamplectl: u64,
    /// GPU VA of the sampler heap.
    pub sampler_heap: u64,
    /// Samplers in the heap.
    pub sampler_count: u16,
    /// PPP control word.
    pub ppp_ctrl: u32,
    /// ZLS extent in pixels (`isp_zls_pixels`).
    pub isp_zls_pixels: u32,
    /// `isp_merge_upper_x`.
    pub isp_merge_upper_x: u32,
    /// `isp_merge_upper_y`.
    pub isp_merge_upper_y: u32,
    /// Background program (tile start).
    pub bg: BgEot,
    /// End-of-tile program (tile end).
    pub eot: BgEot,
    /// Background program after a partial render (reloads what was spilled).
    pub partial_bg: BgEot,
    /// End-of-tile program of a partial render (spills).
    pub partial_eot: BgEot,
    /// Depth clear value (`isp_bgobjdepth`).
    pub isp_bgobjdepth: u32,
    /// Stencil clear value and background object flags (`isp_bgobjvals`).
    pub isp_bgobjvals: u32,
    /// Timestamps of the vertex half (`ts_vtx`).
    pub ts_vertex: Timestamps,
    /// Timestamps of the fragment half (`ts_frag`).
    pub ts_fragment: Timestamps,
    /// Attachments of the vertex half (`DRM_ASAHI_SET_VERTEX_ATTACHMENTS`).
    pub vertex_attachments: Vec<Attachment>,
    /// Attachments of the fragment half (`DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS`).
    pub fragment_attachments: Vec<Attachment>,
    /// The memory the pass touches, for the restartability analysis. `None`: unknown, so the
    /// pass is not restartable ([`crate::analysis::Reasons::UNKNOWN_ACCESS`]).
    pub access: Option<RenderPass<Va>>,
}

impl Default for RenderDesc {
    fn default() -> Self {
        Self {
            flags: RenderFlags::empty(),
            width_px: 0,
            height_px: 0,
            layers: 1,
            samples: 1,
            utile_width_px: 0,
            utile_height_px: 0,
            sample_size_bytes: 0,
            vdm_ctrl_stream_base: 0,
            vertex_helper: HelperProgram::default(),
            fragment_helper: HelperProgram::default(),
            isp_scissor_base: 0,
            isp_dbias_base: 0,
            isp_oclqry_base: 0,
            depth: ZlsBuffer::default(),
            stencil: ZlsBuffer::default(),
            zls_ctrl: 0,
            ppp_multisamplectl: 0,
            sampler_heap: 0,
            sampler_count: 0,
            ppp_ctrl: 0,
            isp_zls_pixels: 0,
            isp_merge_upper_x: 0,
            isp_merge_upper_y: 0,
            bg: BgEot::default(),
            eot: BgEot::default(),
            partial_bg: BgEot::default(),
            partial_eot: BgEot::default(),
            isp_bgobjdepth: 0,
            isp_bgobjvals: 0,
            ts_vertex: Timestamps::default(),
            ts_fragment: Timestamps::default(),
            vertex_attachments: Vec::new(),
            fragment_attachments: Vec::new(),
            access: None,
        }
    }
}

pub(super) fn helper_raw(h: &HelperProgram) -> drm_asahi_helper_program {
    drm_asahi_helper_program {
        binary: h.binary,
        cfg: h.cfg,
        data: h.data,
    }
}

pub(super) fn helper_from_raw(h: &drm_asahi_helper_program) -> HelperProgram {
    HelperProgram {
        binary: h.binary,
        cfg: h.cfg,
        data: h.data,
    }
}

pub(super) fn timestamps_raw(t: &Timestamps) -> drm_asahi_timestamps {
    let one = |t: &Timestamp| drm_asahi_timestamp {
        handle: t.handle,
        offset: t.offset,
    };
    drm_asahi_timestamps {
        start: one(&t.start),
        end: one(&t.end),
    }
}

pub(super) fn timestamps_from_raw(t: &drm_asahi_timestamps) -> Timestamps {
    let one = |t: &drm_asahi_timestamp| Timestamp {
        handle: t.handle,
        offset: t.offset,
    };
    Timestamps {
        start: one(&t.start),
        end: one(&t.end),
    }
}

fn zls_raw(z: &ZlsBuffer) -> drm_asahi_zls_buffer {
    drm_asahi_zls_buffer {
        base: z.base,
        comp_base: z.comp_base,
        stride: z.stride,
        comp_stride: z.comp_stride,
    }
}

fn zls_from_raw(z: &drm_asahi_zls_buffer) -> ZlsBuffer {
    ZlsBuffer {
        base: z.base,
        comp_base: z.comp_base,
        stride: z.stride,
        comp_stride: z.comp_stride,
    }
}

fn bg_eot_raw(b: &BgEot) -> drm_asahi_bg_eot {
    drm_asahi_bg_eot {
        usc: b.usc,
        rsrc_spec: b.rsrc_spec,
    }
}

fn bg_eot_from_raw(b: &drm_asahi_bg_eot) -> BgEot {
    BgEot {
        usc: b.usc,
        rsrc_spec: b.rsrc_spec,
    }
}

impl RenderDesc {
    /// Checks what the kernel would reject in the payload.
    pub fn validate(&self) -> Result<(), BuildError> {
        if self.flags.bits() & !RenderFlags::all().bits() != 0 {
            return Err(BuildError::InvalidDescriptor("render flags: unknown bits"));
        }
        if !matches!(self.samples, 1 | 2 | 4) {
            return Err(BuildError::InvalidDescriptor("samples must be 1, 2 or 4"));
        }
        if self.width_px == 0 || self.height_px == 0 {
            return Err(BuildError::InvalidDescriptor(
                "framebuffer width/height is 0",
            ));
        }
        if self.layers == 0 {
            return Err(BuildError::InvalidDescriptor("layers is 0"));
        }
        Ok(())
    }

    /// The `drm_asahi_cmd_render` payload.
    pub fn to_raw(&self) -> drm_asahi_cmd_render {
        drm_asahi_cmd_render {
            flags: self.flags.bits(),
            isp_zls_pixels: self.isp_zls_pixels,
            vdm_ctrl_stream_base: self.vdm_ctrl_stream_base,
            vertex_helper: helper_raw(&self.vertex_helper),
            fragment_helper: helper_raw(&self.fragment_helper),
            isp_scissor_base: self.isp_scissor_base,
            isp_dbias_base: self.isp_dbias_base,
            isp_oclqry_base: self.isp_oclqry_base,
            depth: zls_raw(&self.depth),
            stencil: zls_raw(&self.stencil),
            zls_ctrl: self.zls_ctrl,
            ppp_multisamplectl: self.ppp_multisamplectl,
            sampler_heap: self.sampler_heap,
            ppp_ctrl: self.ppp_ctrl,
            width_px: self.width_px,
            height_px: self.height_px,
            layers: self.layers,
            sampler_count: self.sampler_count,
            utile_width_px: self.utile_width_px,
            utile_height_px: self.utile_height_px,
            samples: self.samples,
            sample_size_B: self.sample_size_bytes,
            isp_merge_upper_x: self.isp_merge_upper_x,
            isp_merge_upper_y: self.isp_merge_upper_y,
            bg: bg_eot_raw(&self.bg),
            eot: bg_eot_raw(&self.eot),
            partial_bg: bg_eot_raw(&self.partial_bg),
            partial_eot: bg_eot_raw(&self.partial_eot),
            isp_bgobjdepth: self.isp_bgobjdepth,
            isp_bgobjvals: self.isp_bgobjvals,
            ts_vtx: timestamps_raw(&self.ts_vertex),
            ts_frag: timestamps_raw(&self.ts_fragment),
        }
    }

    /// The descriptor of a decoded payload, with no attachments and no access description
    /// (unknown flag bits are kept).
    pub fn from_raw(raw: &drm_asahi_cmd_render) -> Self {
        Self {
            flags: RenderFlags::from_bits_retain(raw.flags),
            width_px: raw.width_px,
            height_px: raw.height_px,
            layers: raw.layers,
            samples: raw.samples,
            utile_width_px: raw.utile_width_px,
            utile_height_px: raw.utile_height_px,
            sample_size_bytes: raw.sample_size_B,
            vdm_ctrl_stream_base: raw.vdm_ctrl_stream_base,
            vertex_helper: helper_from_raw(&raw.vertex_helper),
            fragment_helper: helper_from_raw(&raw.fragment_helper),
            isp_scissor_base: raw.isp_scissor_base,
            isp_dbias_base: raw.isp_dbias_base,
            isp_oclqry_base: raw.isp_oclqry_base,
            depth: zls_from_raw(&raw.depth),
            stencil: zls_from_raw(&raw.stencil),
            zls_ctrl: raw.zls_ctrl,
            ppp_multisamplectl: raw.ppp_multisamplectl,
            sampler_heap: raw.sampler_heap,
            sampler_count: raw.sampler_count,
            ppp_ctrl: raw.ppp_ctrl,
            isp_zls_pixels: raw.isp_zls_pixels,
            isp_merge_upper_x: raw.isp_merge_upper_x,
            isp_merge_upper_y: raw.isp_merge_upper_y,
            bg: bg_eot_from_raw(&raw.bg),
            eot: bg_eot_from_raw(&raw.eot),
            partial_bg: bg_eot_from_raw(&raw.partial_bg),
            partial_eot: bg_eot_from_raw(&raw.partial_eot),
            isp_bgobjdepth: raw.isp_bgobjdepth,
            isp_bgobjvals: raw.isp_bgobjvals,
            ts_vertex: timestamps_from_raw(&raw.ts_vtx),
            ts_fragment: timestamps_from_raw(&raw.ts_frag),
            vertex_attachments: Vec::new(),
            fragment_attachments: Vec::new(),
            access: None,
        }
    }
}
