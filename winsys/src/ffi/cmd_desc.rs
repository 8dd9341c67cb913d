//! The C descriptors of render passes and compute commands (fields of the uAPI structs plus
//! the access description the restartability analysis reads), and their flag values.

use super::guard::Sized32;

/// `agx_ws_render_desc::flags`: the vertex stage needs scratch memory.
pub const AGX_WS_RENDER_VERTEX_SCRATCH: u32 = 1 << 0;
/// `agx_ws_render_desc::flags`: run the fragment stage on tiles with no geometry.
pub const AGX_WS_RENDER_PROCESS_EMPTY_TILES: u32 = 1 << 1;
/// `agx_ws_render_desc::flags`: no vertex clustering across cores.
pub const AGX_WS_RENDER_NO_VERTEX_CLUSTERING: u32 = 1 << 2;
/// `agx_ws_render_desc::flags`: the depth bias array holds integers.
pub const AGX_WS_RENDER_DBIAS_IS_INT: u32 = 1 << 18;

const _: () = {
    use agx_uapi::asahi::*;
    assert!(AGX_WS_RENDER_VERTEX_SCRATCH == DRM_ASAHI_RENDER_VERTEX_SCRATCH);
    assert!(AGX_WS_RENDER_PROCESS_EMPTY_TILES == DRM_ASAHI_RENDER_PROCESS_EMPTY_TILES);
    assert!(AGX_WS_RENDER_NO_VERTEX_CLUSTERING == DRM_ASAHI_RENDER_NO_VERTEX_CLUSTERING);
    assert!(AGX_WS_RENDER_DBIAS_IS_INT == DRM_ASAHI_RENDER_DBIAS_IS_INT);
};

/// Not restartable: memory loaded (read before written) is also written by the command.
pub const AGX_WS_REASON_LOAD_STORE_SAME: u32 = 1 << 0;
/// Not restartable: blending onto loaded data that is written back.
pub const AGX_WS_REASON_BLEND_ON_LOADED: u32 = 1 << 1;
/// Not restartable: a shader reads memory the command writes, or the reverse.
pub const AGX_WS_REASON_SHADER_WRITE_READ: u32 = 1 << 2;
/// Not restartable: atomics on memory the command did not overwrite first.
pub const AGX_WS_REASON_ATOMICS: u32 = 1 << 3;
/// Not restartable: an occlusion query accumulates onto memory not reset in the command.
pub const AGX_WS_REASON_OCCLUSION_ACCUMULATE: u32 = 1 << 4;
/// Not restartable: transform feedback appends at an offset read from memory.
pub const AGX_WS_REASON_XFB_APPEND: u32 = 1 << 5;
/// Not restartable: an access that cannot be bounded (or no access description at all).
pub const AGX_WS_REASON_UNKNOWN_ACCESS: u32 = 1 << 6;
/// Not restartable: a compute command without declared accesses.
pub const AGX_WS_REASON_COMPUTE_UNDECLARED: u32 = 1 << 7;

const _: () = {
    use agx_uapi::fault_ext::*;
    assert!(AGX_WS_REASON_LOAD_STORE_SAME == DRM_ASAHI_EXT_REASON_LOAD_STORE_SAME);
    assert!(AGX_WS_REASON_BLEND_ON_LOADED == DRM_ASAHI_EXT_REASON_BLEND_ON_LOADED);
    assert!(AGX_WS_REASON_SHADER_WRITE_READ == DRM_ASAHI_EXT_REASON_SHADER_WRITE_READ);
    assert!(AGX_WS_REASON_ATOMICS == DRM_ASAHI_EXT_REASON_ATOMICS);
    assert!(AGX_WS_REASON_OCCLUSION_ACCUMULATE == DRM_ASAHI_EXT_REASON_OCCLUSION_ACCUMULATE);
    assert!(AGX_WS_REASON_XFB_APPEND == DRM_ASAHI_EXT_REASON_XFB_APPEND);
    assert!(AGX_WS_REASON_UNKNOWN_ACCESS == DRM_ASAHI_EXT_REASON_UNKNOWN_ACCESS);
    assert!(AGX_WS_REASON_COMPUTE_UNDECLARED == DRM_ASAHI_EXT_REASON_COMPUTE_UNDECLARED);
};

/// What happens to an attachment's memory at the start of a pass. 0 (the zero-initialised
/// default) is the conservative `LOAD`.
#[repr(u32)]
pub enum agx_ws_load_op {
    /// Read from memory into the tile buffer.
    AGX_WS_LOAD_OP_LOAD = 0,
    /// Cleared; memory is not read.
    AGX_WS_LOAD_OP_CLEAR = 1,
    /// Undefined; memory is not read.
    AGX_WS_LOAD_OP_DONT_CARE = 2,
}

/// What happens to an attachment's memory at the end of a pass.
#[repr(u32)]
pub enum agx_ws_store_op {
    /// The tile buffer is written to all of the attachment's range.
    AGX_WS_STORE_OP_STORE = 0,
    /// Not written at the end (partial-render spills may still write it).
    AGX_WS_STORE_OP_DONT_CARE = 1,
}

/// How a shader touches a declared range.
#[repr(u32)]
pub enum agx_ws_shader_access_kind {
    /// Loads, texture/image reads, vertex/index/uniform fetches.
    AGX_WS_SHADER_READ = 0,
    /// Stores (any bytes of the range).
    AGX_WS_SHADER_WRITE = 1,
    /// Loads and stores.
    AGX_WS_SHADER_READ_WRITE = 2,
    /// Atomics.
    AGX_WS_SHADER_ATOMIC = 3,
}

/// What a command waits for on one subqueue (`agx_ws_deps`).
#[repr(u32)]
pub enum agx_ws_dep_kind {
    /// The default: every earlier command of the command buffer and everything submitted before.
    AGX_WS_DEP_DEFAULT = 0,
    /// Nothing on this subqueue.
    AGX_WS_DEP_NONE = 1,
    /// Only what was submitted on this subqueue before this command buffer.
    AGX_WS_DEP_PREVIOUS_SUBMITS = 2,
    /// Commands of this subqueue up to index `*_index` of this command buffer (earlier than
    /// this command), and everything submitted before.
    AGX_WS_DEP_THROUGH = 3,
}

/// A GPU VA range `[base, base + size)`: an attachment of the firmware, or an access range.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct agx_ws_range {
    pub base: u64,
    pub size: u64,
}

/// A helper program (`drm_asahi_helper_program`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct agx_ws_helper_program {
    pub binary: u32,
    pub cfg: u32,
    pub data: u64,
}

/// A timestamp write: `offset` bytes into timestamp object `handle` (0: none).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct agx_ws_timestamp {
    pub handle: u32,
    pub offset: u32,
}

/// Start and end timestamps.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct agx_ws_timestamps {
    pub start: agx_ws_timestamp,
    pub end: agx_ws_timestamp,
}

/// A depth or stencil buffer of the ZLS unit (`drm_asahi_zls_buffer`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct agx_ws_zls_buffer {
    pub base: u64,
    pub comp_base: u64,
    pub stride: u32,
    pub comp_stride: u32,
}

/// A background or end-of-tile program (`drm_asahi_bg_eot`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct agx_ws_bg_eot {
    pub usc: u32,
    pub rsrc_spec: u32,
}

/// Ordering of a command on the render (VDM) and compute (CDM) subqueues. All zero: the default
/// (wait for everything before the command).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct agx_ws_deps {
    /// An `agx_ws_dep_kind`.
    pub render: u32,
    /// With `AGX_WS_DEP_THROUGH`: the command index.
    pub render_index: u32,
    /// An `agx_ws_dep_kind`.
    pub compute: u32,
    /// With `AGX_WS_DEP_THROUGH`: the command index.
    pub compute_index: u32,
}

/// A color attachment (or resolve target) of a pass, for the analysis.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct agx_ws_color_attachment {
    /// Every byte the pass may load or store.
    pub range: agx_ws_range,
    /// An `agx_ws_load_op`.
    pub load: u32,
    /// An `agx_ws_store_op`.
    pub store: u32,
    /// Non-zero: blending, logic ops, partial write masks or framebuffer fetch read the tile.
    pub blend: u32,
    pub pad: u32,
}

/// The depth or the stencil aspect of a pass, for the analysis.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct agx_ws_ds_attachment {
    pub range: agx_ws_range,
    /// An `agx_ws_load_op`.
    pub load: u32,
    /// An `agx_ws_store_op`.
    pub store: u32,
    /// Non-zero: no draw writes this aspect (bit for bit: see the Rust docs of
    /// `DepthStencilAttachment::read_only`).
    pub read_only: u32,
    pub pad: u32,
}

/// A declared shader (or fixed-function) memory access.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct agx_ws_shader_access {
    pub range: agx_ws_range,
    /// An `agx_ws_shader_access_kind`.
    pub kind: u32,
    pub pad: u32,
}

/// An occlusion query counting into `range`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct agx_ws_occlusion_query {
    pub range: agx_ws_range,
    /// Non-zero: the command zeroes the counter before any draw.
    pub reset_in_command: u32,
    pub pad: u32,
}

/// A transform feedback buffer.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct agx_ws_xfb {
    pub buffer: agx_ws_range,
    /// The counter buffer, when `has_counter`.
    pub counter: agx_ws_range,
    pub has_counter: u32,
    /// Non-zero: the write offset is read from the counter and advanced (append).
    pub append: u32,
}

/// `agx_ws_render_access::flags`: the shaders access memory that cannot be bounded (bindless,
/// buffer device address): the pass is not restartable.
pub const AGX_WS_RENDER_ACCESS_SHADER_UNKNOWN: u32 = 1 << 0;
/// `agx_ws_render_access::flags`: the driver knows no partial render can happen (no
/// mid-pass spills). Without it spills are assumed, which is always sound.
pub const AGX_WS_RENDER_ACCESS_NO_PARTIAL_RENDERS: u32 = 1 << 1;

/// The memory a render pass touches, for the restartability analysis. Every range is a GPU VA
/// range of the queue's VM. Set `struct_size = sizeof(agx_ws_render_access)`.
#[repr(C)]
pub struct agx_ws_render_access {
    pub struct_size: u32,
    /// `AGX_WS_RENDER_ACCESS_*`.
    pub flags: u32,
    pub color_count: u32,
    pub shader_access_count: u32,
    pub occlusion_query_count: u32,
    pub xfb_count: u32,
    pub timestamp_count: u32,
    pub pad: u32,
    pub colors: *const agx_ws_color_attachment,
    /// NULL: no depth aspect.
    pub depth: *const agx_ws_ds_attachment,
    /// NULL: no stencil aspect.
    pub stencil: *const agx_ws_ds_attachment,
    pub shader_accesses: *const agx_ws_shader_access,
    pub occlusion_queries: *const agx_ws_occlusion_query,
    pub xfbs: *const agx_ws_xfb,
    /// Timestamp writes of the command.
    pub timestamps: *const agx_ws_range,
}

// SAFETY: repr(C), struct_size first, integers and raw pointers only.
unsafe impl Sized32 for agx_ws_render_access {}

/// A render pass: every field of `drm_asahi_cmd_render`, its attachment lists, its ordering and
/// its access description. Set `struct_size = sizeof(agx_ws_render_desc)`; width, height,
/// layers (>= 1) and samples (1, 2 or 4) are required.
#[repr(C)]
pub struct agx_ws_render_desc {
    pub struct_size: u32,
    /// `AGX_WS_RENDER_*`.
    pub flags: u32,
    pub width_px: u16,
    pub height_px: u16,
    pub layers: u16,
    pub sampler_count: u16,
    pub samples: u8,
    pub utile_width_px: u8,
    pub utile_height_px: u8,
    pub sample_size_bytes: u8,
    pub ppp_ctrl: u32,
    pub vdm_ctrl_stream_base: u64,
    pub vertex_helper: agx_ws_helper_program,
    pub fragment_helper: agx_ws_helper_program,
    pub isp_scissor_base: u64,
    pub isp_dbias_base: u64,
    pub isp_oclqry_base: u64,
    pub depth: agx_ws_zls_buffer,
    pub stencil: agx_ws_zls_buffer,
    pub zls_ctrl: u64,
    pub ppp_multisamplectl: u64,
    pub sampler_heap: u64,
    pub isp_zls_pixels: u32,
    pub isp_merge_upper_x: u32,
    pub isp_merge_upper_y: u32,
    pub isp_bgobjdepth: u32,
    pub isp_bgobjvals: u32,
    pub vertex_attachment_count: u32,
    pub bg: agx_ws_bg_eot,
    pub eot: agx_ws_bg_eot,
    pub partial_bg: agx_ws_bg_eot,
    pub partial_eot: agx_ws_bg_eot,
    pub ts_vertex: agx_ws_timestamps,
    pub ts_fragment: agx_ws_timestamps,
    pub fragment_attachment_count: u32,
    pub pad: u32,
    pub vertex_attachments: *const agx_ws_range,
    pub fragment_attachments: *const agx_ws_range,
    pub deps: agx_ws_deps,
    /// NULL: the accesses are unknown and the pass is not restartable
    /// (`AGX_WS_REASON_UNKNOWN_ACCESS`).
    pub access: *const agx_ws_render_access,
}

// SAFETY: repr(C), struct_size first, integers and raw pointers only.
unsafe impl Sized32 for agx_ws_render_desc {}

/// `agx_ws_dispatch::flags`: the dispatch's accesses are not declared: not restartable.
pub const AGX_WS_DISPATCH_UNDECLARED: u32 = 1 << 0;
/// `agx_ws_dispatch::flags`: no barrier between this dispatch and the previous one.
pub const AGX_WS_DISPATCH_CONCURRENT: u32 = 1 << 1;

/// The memory one dispatch of a compute command may touch.
#[repr(C)]
pub struct agx_ws_dispatch {
    /// `AGX_WS_DISPATCH_*`.
    pub flags: u32,
    pub read_count: u32,
    pub write_count: u32,
    pub read_write_count: u32,
    pub atomic_count: u32,
    pub overwrite_count: u32,
    /// May read.
    pub reads: *const agx_ws_range,
    /// May store to (not necessarily every byte).
    pub writes: *const agx_ws_range,
    /// May read and store to.
    pub read_writes: *const agx_ws_range,
    /// Atomics.
    pub atomics: *const agx_ws_range,
    /// Written completely, every byte (driver-internal clears and copies).
    pub overwrites: *const agx_ws_range,
}

/// The declared accesses of a compute command: its dispatches in order.
#[repr(C)]
pub struct agx_ws_compute_access {
    pub struct_size: u32,
    pub dispatch_count: u32,
    pub dispatches: *const agx_ws_dispatch,
}

// SAFETY: repr(C), struct_size first, integers and raw pointers only.
unsafe impl Sized32 for agx_ws_compute_access {}

/// A compute command: every field of `drm_asahi_cmd_compute`, its attachments, its ordering and
/// its declared accesses. Set `struct_size = sizeof(agx_ws_compute_desc)`.
#[repr(C)]
pub struct agx_ws_compute_desc {
    pub struct_size: u32,
    pub sampler_count: u32,
    pub cdm_ctrl_stream_base: u64,
    /// One past the end of the control stream (>= base).
    pub cdm_ctrl_stream_end: u64,
    pub sampler_heap: u64,
    pub helper: agx_ws_helper_program,
    pub timestamps: agx_ws_timestamps,
    pub attachment_count: u32,
    pub pad: u32,
    pub attachments: *const agx_ws_range,
    pub deps: agx_ws_deps,
    /// NULL: undeclared, not restartable (`AGX_WS_REASON_COMPUTE_UNDECLARED`).
    pub access: *const agx_ws_compute_access,
}

// SAFETY: repr(C), struct_size first, integers and raw pointers only.
unsafe impl Sized32 for agx_ws_compute_desc {}
