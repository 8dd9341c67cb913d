//! Upstream `include/uapi/drm/asahi_drm.h` (Linux 6.16+), C names kept so every field can be
//! checked against the C ABI (`tests/layout.rs`).
#![allow(non_camel_case_types, non_upper_case_globals, non_snake_case)]

use bytemuck::{Pod, Zeroable};

use crate::drm::{DRM_COMMAND_BASE, DRM_IOCTL_BASE};
use crate::ioctl::{iow, iowr};

// enum drm_asahi_ioctl_id
pub const DRM_ASAHI_GET_PARAMS: u32 = 0;
pub const DRM_ASAHI_GET_TIME: u32 = 1;
pub const DRM_ASAHI_VM_CREATE: u32 = 2;
pub const DRM_ASAHI_VM_DESTROY: u32 = 3;
pub const DRM_ASAHI_VM_BIND: u32 = 4;
pub const DRM_ASAHI_GEM_CREATE: u32 = 5;
pub const DRM_ASAHI_GEM_MMAP_OFFSET: u32 = 6;
pub const DRM_ASAHI_GEM_BIND_OBJECT: u32 = 7;
pub const DRM_ASAHI_QUEUE_CREATE: u32 = 8;
pub const DRM_ASAHI_QUEUE_DESTROY: u32 = 9;
pub const DRM_ASAHI_SUBMIT: u32 = 10;

pub const DRM_ASAHI_MAX_CLUSTERS: usize = 64;

/// `struct drm_asahi_params_global` (param group 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct drm_asahi_params_global {
    pub features: u64,
    pub gpu_generation: u32,
    pub gpu_variant: u32,
    pub gpu_revision: u32,
    pub chip_id: u32,
    pub num_dies: u32,
    pub num_clusters_total: u32,
    pub num_cores_per_cluster: u32,
    pub max_frequency_khz: u32,
    pub core_masks: [u64; DRM_ASAHI_MAX_CLUSTERS],
    pub vm_start: u64,
    pub vm_end: u64,
    pub vm_kernel_min_size: u64,
    pub max_commands_per_submission: u32,
    pub max_attachments: u32,
    pub command_timestamp_frequency_hz: u64,
}

impl Default for drm_asahi_params_global {
    fn default() -> Self {
        Zeroable::zeroed()
    }
}

// enum drm_asahi_feature
pub const DRM_ASAHI_FEATURE_SOFT_FAULTS: u64 = 1 << 0;

/// `struct drm_asahi_get_params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_get_params {
    pub param_group: u32,
    pub pad: u32,
    pub pointer: u64,
    pub size: u64,
}

/// `struct drm_asahi_vm_create`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_vm_create {
    pub kernel_start: u64,
    pub kernel_end: u64,
    pub vm_id: u32,
    pub pad: u32,
}

/// `struct drm_asahi_vm_destroy`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_vm_destroy {
    pub vm_id: u32,
    pub pad: u32,
}

// enum drm_asahi_gem_flags
pub const DRM_ASAHI_GEM_WRITEBACK: u32 = 1 << 0;
pub const DRM_ASAHI_GEM_VM_PRIVATE: u32 = 1 << 1;

/// `struct drm_asahi_gem_create`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_gem_create {
    pub size: u64,
    pub flags: u32,
    pub vm_id: u32,
    pub handle: u32,
    pub pad: u32,
}

/// `struct drm_asahi_gem_mmap_offset`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_gem_mmap_offset {
    pub handle: u32,
    pub flags: u32,
    pub offset: u64,
}

// enum drm_asahi_bind_flags
pub const DRM_ASAHI_BIND_UNBIND: u32 = 1 << 0;
pub const DRM_ASAHI_BIND_READ: u32 = 1 << 1;
pub const DRM_ASAHI_BIND_WRITE: u32 = 1 << 2;
pub const DRM_ASAHI_BIND_SINGLE_PAGE: u32 = 1 << 3;

/// `struct drm_asahi_gem_bind_op`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_gem_bind_op {
    pub flags: u32,
    pub handle: u32,
    pub offset: u64,
    pub range: u64,
    pub addr: u64,
}

/// `struct drm_asahi_vm_bind`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_vm_bind {
    pub vm_id: u32,
    pub num_binds: u32,
    pub stride: u32,
    pub pad: u32,
    pub userptr: u64,
}

// enum drm_asahi_bind_object_op
pub const DRM_ASAHI_BIND_OBJECT_OP_BIND: u32 = 0;
pub const DRM_ASAHI_BIND_OBJECT_OP_UNBIND: u32 = 1;
// enum drm_asahi_bind_object_flags
pub const DRM_ASAHI_BIND_OBJECT_USAGE_TIMESTAMPS: u32 = 1 << 0;

/// `struct drm_asahi_gem_bind_object`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_gem_bind_object {
    pub op: u32,
    pub flags: u32,
    pub handle: u32,
    pub vm_id: u32,
    pub offset: u64,
    pub range: u64,
    pub object_handle: u32,
    pub pad: u32,
}

// enum drm_asahi_cmd_type
pub const DRM_ASAHI_CMD_RENDER: u16 = 0;
pub const DRM_ASAHI_CMD_COMPUTE: u16 = 1;
pub const DRM_ASAHI_SET_VERTEX_ATTACHMENTS: u16 = 2;
pub const DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS: u16 = 3;
pub const DRM_ASAHI_SET_COMPUTE_ATTACHMENTS: u16 = 4;

// enum drm_asahi_priority
pub const DRM_ASAHI_PRIORITY_LOW: u32 = 0;
pub const DRM_ASAHI_PRIORITY_MEDIUM: u32 = 1;
pub const DRM_ASAHI_PRIORITY_HIGH: u32 = 2;
pub const DRM_ASAHI_PRIORITY_REALTIME: u32 = 3;

/// `struct drm_asahi_queue_create`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_queue_create {
    pub flags: u32,
    pub vm_id: u32,
    pub priority: u32,
    pub queue_id: u32,
    pub usc_exec_base: u64,
}

/// `struct drm_asahi_queue_destroy`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_queue_destroy {
    pub queue_id: u32,
    pub pad: u32,
}

// enum drm_asahi_sync_type
pub const DRM_ASAHI_SYNC_SYNCOBJ: u32 = 0;
pub const DRM_ASAHI_SYNC_TIMELINE_SYNCOBJ: u32 = 1;

/// `struct drm_asahi_sync`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_sync {
    pub sync_type: u32,
    pub handle: u32,
    pub timeline_value: u64,
}

/// `DRM_ASAHI_BARRIER_NONE`: the subqueue waits on nothing.
pub const DRM_ASAHI_BARRIER_NONE: u16 = 0xFFFF;

/// `struct drm_asahi_cmd_header`: 8 bytes, alignment 2; its payload follows directly.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_cmd_header {
    pub cmd_type: u16,
    pub size: u16,
    pub vdm_barrier: u16,
    pub cdm_barrier: u16,
}

/// `struct drm_asahi_submit`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_submit {
    pub syncs: u64,
    pub cmdbuf: u64,
    pub flags: u32,
    pub queue_id: u32,
    pub in_sync_count: u32,
    pub out_sync_count: u32,
    pub cmdbuf_size: u32,
    pub pad: u32,
}

/// `struct drm_asahi_attachment`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_attachment {
    pub pointer: u64,
    pub size: u64,
    pub pad: u32,
    pub flags: u32,
}

// enum drm_asahi_render_flags
pub const DRM_ASAHI_RENDER_VERTEX_SCRATCH: u32 = 1 << 0;
pub const DRM_ASAHI_RENDER_PROCESS_EMPTY_TILES: u32 = 1 << 1;
pub const DRM_ASAHI_RENDER_NO_VERTEX_CLUSTERING: u32 = 1 << 2;
pub const DRM_ASAHI_RENDER_DBIAS_IS_INT: u32 = 1 << 18;

/// `struct drm_asahi_zls_buffer`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_zls_buffer {
    pub base: u64,
    pub comp_base: u64,
    pub stride: u32,
    pub comp_stride: u32,
}

/// `struct drm_asahi_timestamp`: handle 0 skips the write.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_timestamp {
    pub handle: u32,
    pub offset: u32,
}

/// `struct drm_asahi_timestamps`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_timestamps {
    pub start: drm_asahi_timestamp,
    pub end: drm_asahi_timestamp,
}

/// `struct drm_asahi_helper_program`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_helper_program {
    pub binary: u32,
    pub cfg: u32,
    pub data: u64,
}

/// `struct drm_asahi_bg_eot`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_bg_eot {
    pub usc: u32,
    pub rsrc_spec: u32,
}

/// `struct drm_asahi_cmd_render`: 240 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_cmd_render {
    pub flags: u32,
    pub isp_zls_pixels: u32,
    pub vdm_ctrl_stream_base: u64,
    pub vertex_helper: drm_asahi_helper_program,
    pub fragment_helper: drm_asahi_helper_program,
    pub isp_scissor_base: u64,
    pub isp_dbias_base: u64,
    pub isp_oclqry_base: u64,
    pub depth: drm_asahi_zls_buffer,
    pub stencil: drm_asahi_zls_buffer,
    pub zls_ctrl: u64,
    pub ppp_multisamplectl: u64,
    pub sampler_heap: u64,
    pub ppp_ctrl: u32,
    pub width_px: u16,
    pub height_px: u16,
    pub layers: u16,
    pub sampler_count: u16,
    pub utile_width_px: u8,
    pub utile_height_px: u8,
    pub samples: u8,
    pub sample_size_B: u8,
    pub isp_merge_upper_x: u32,
    pub isp_merge_upper_y: u32,
    pub bg: drm_asahi_bg_eot,
    pub eot: drm_asahi_bg_eot,
    pub partial_bg: drm_asahi_bg_eot,
    pub partial_eot: drm_asahi_bg_eot,
    pub isp_bgobjdepth: u32,
    pub isp_bgobjvals: u32,
    pub ts_vtx: drm_asahi_timestamps,
    pub ts_frag: drm_asahi_timestamps,
}

/// `struct drm_asahi_cmd_compute`: 64 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_cmd_compute {
    pub flags: u32,
    pub sampler_count: u32,
    pub cdm_ctrl_stream_base: u64,
    pub cdm_ctrl_stream_end: u64,
    pub sampler_heap: u64,
    pub helper: drm_asahi_helper_program,
    pub ts: drm_asahi_timestamps,
}

/// `struct drm_asahi_get_time`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_get_time {
    pub flags: u64,
    pub gpu_timestamp: u64,
}

const fn nr(id: u32) -> u8 {
    DRM_COMMAND_BASE + id as u8
}

pub const DRM_IOCTL_ASAHI_GET_PARAMS: u32 =
    iow::<drm_asahi_get_params>(DRM_IOCTL_BASE, nr(DRM_ASAHI_GET_PARAMS));
pub const DRM_IOCTL_ASAHI_GET_TIME: u32 =
    iowr::<drm_asahi_get_time>(DRM_IOCTL_BASE, nr(DRM_ASAHI_GET_TIME));
pub const DRM_IOCTL_ASAHI_VM_CREATE: u32 =
    iowr::<drm_asahi_vm_create>(DRM_IOCTL_BASE, nr(DRM_ASAHI_VM_CREATE));
pub const DRM_IOCTL_ASAHI_VM_DESTROY: u32 =
    iow::<drm_asahi_vm_destroy>(DRM_IOCTL_BASE, nr(DRM_ASAHI_VM_DESTROY));
pub const DRM_IOCTL_ASAHI_VM_BIND: u32 =
    iow::<drm_asahi_vm_bind>(DRM_IOCTL_BASE, nr(DRM_ASAHI_VM_BIND));
pub const DRM_IOCTL_ASAHI_GEM_CREATE: u32 =
    iowr::<drm_asahi_gem_create>(DRM_IOCTL_BASE, nr(DRM_ASAHI_GEM_CREATE));
pub const DRM_IOCTL_ASAHI_GEM_MMAP_OFFSET: u32 =
    iowr::<drm_asahi_gem_mmap_offset>(DRM_IOCTL_BASE, nr(DRM_ASAHI_GEM_MMAP_OFFSET));
pub const DRM_IOCTL_ASAHI_GEM_BIND_OBJECT: u32 =
    iowr::<drm_asahi_gem_bind_object>(DRM_IOCTL_BASE, nr(DRM_ASAHI_GEM_BIND_OBJECT));
pub const DRM_IOCTL_ASAHI_QUEUE_CREATE: u32 =
    iowr::<drm_asahi_queue_create>(DRM_IOCTL_BASE, nr(DRM_ASAHI_QUEUE_CREATE));
pub const DRM_IOCTL_ASAHI_QUEUE_DESTROY: u32 =
    iow::<drm_asahi_queue_destroy>(DRM_IOCTL_BASE, nr(DRM_ASAHI_QUEUE_DESTROY));
pub const DRM_IOCTL_ASAHI_SUBMIT: u32 =
    iow::<drm_asahi_submit>(DRM_IOCTL_BASE, nr(DRM_ASAHI_SUBMIT));
