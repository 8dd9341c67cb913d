//! DRM core structures and ioctl numbers (`drm.h`) that the winsys uses.
//!
//! Grown structs use the current upstream size (`drm_syncobj_handle` with `point`, the waits with
//! `deadline_nsec`); the DRM core copies the size encoded in the number and zero-fills the rest,
//! so these numbers work on older kernels too.
#![allow(non_camel_case_types)]

use bytemuck::{Pod, Zeroable};

use crate::ioctl::{iow, iowr};

/// `DRM_IOCTL_BASE`.
pub const DRM_IOCTL_BASE: u8 = b'd';
/// First driver-private ioctl nr.
pub const DRM_COMMAND_BASE: u8 = 0x40;
/// One past the last driver-private ioctl nr.
pub const DRM_COMMAND_END: u8 = 0xA0;

/// `struct drm_version`. Holds user pointers, so its layout is LP64 only (4 bytes of implicit
/// padding after `version_patchlevel`, made explicit here as `pad0`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_version {
    pub version_major: i32,
    pub version_minor: i32,
    pub version_patchlevel: i32,
    pub pad0: u32,
    pub name_len: u64,
    pub name: u64,
    pub date_len: u64,
    pub date: u64,
    pub desc_len: u64,
    pub desc: u64,
}

/// `struct drm_gem_close`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_gem_close {
    pub handle: u32,
    pub pad: u32,
}

/// `struct drm_get_cap`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_get_cap {
    pub capability: u64,
    pub value: u64,
}

/// `struct drm_prime_handle`: 12 bytes, alignment 4.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_prime_handle {
    pub handle: u32,
    pub flags: u32,
    pub fd: i32,
}

/// `struct drm_syncobj_create`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_syncobj_create {
    pub handle: u32,
    pub flags: u32,
}

/// `struct drm_syncobj_destroy`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_syncobj_destroy {
    pub handle: u32,
    pub pad: u32,
}

/// `struct drm_syncobj_handle`, upstream size (24 bytes, with `point`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_syncobj_handle {
    pub handle: u32,
    pub flags: u32,
    pub fd: i32,
    pub pad: u32,
    pub point: u64,
}

/// `struct drm_syncobj_transfer`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_syncobj_transfer {
    pub src_handle: u32,
    pub dst_handle: u32,
    pub src_point: u64,
    pub dst_point: u64,
    pub flags: u32,
    pub pad: u32,
}

/// `struct drm_syncobj_wait`, upstream size (40 bytes, with `deadline_nsec`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_syncobj_wait {
    pub handles: u64,
    pub timeout_nsec: i64,
    pub count_handles: u32,
    pub flags: u32,
    pub first_signaled: u32,
    pub pad: u32,
    pub deadline_nsec: u64,
}

/// `struct drm_syncobj_timeline_wait`, upstream size (48 bytes, with `deadline_nsec`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_syncobj_timeline_wait {
    pub handles: u64,
    pub points: u64,
    pub timeout_nsec: i64,
    pub count_handles: u32,
    pub flags: u32,
    pub first_signaled: u32,
    pub pad: u32,
    pub deadline_nsec: u64,
}

/// `struct drm_syncobj_eventfd` (upstream only).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_syncobj_eventfd {
    pub handle: u32,
    pub flags: u32,
    pub point: u64,
    pub fd: i32,
    pub pad: u32,
}

/// `struct drm_syncobj_array`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_syncobj_array {
    pub handles: u64,
    pub count_handles: u32,
    pub pad: u32,
}

/// `struct drm_syncobj_timeline_array`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_syncobj_timeline_array {
    pub handles: u64,
    pub points: u64,
    pub count_handles: u32,
    pub flags: u32,
}

pub const DRM_CAP_DUMB_BUFFER: u64 = 0x1;
pub const DRM_CAP_PRIME: u64 = 0x5;
pub const DRM_PRIME_CAP_IMPORT: u64 = 0x1;
pub const DRM_PRIME_CAP_EXPORT: u64 = 0x2;
pub const DRM_CAP_SYNCOBJ: u64 = 0x13;
pub const DRM_CAP_SYNCOBJ_TIMELINE: u64 = 0x14;

pub const DRM_CLOEXEC: u32 = 0o2000000;
pub const DRM_RDWR: u32 = 2;

pub const DRM_SYNCOBJ_CREATE_SIGNALED: u32 = 1 << 0;
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL: u32 = 1 << 0;
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT: u32 = 1 << 1;
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE: u32 = 1 << 2;
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE: u32 = 1 << 3;
pub const DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE: u32 = 1 << 0;
pub const DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE: u32 = 1 << 1;
pub const DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE: u32 = 1 << 0;
pub const DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_TIMELINE: u32 = 1 << 1;
pub const DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED: u32 = 1 << 0;

pub const DRM_IOCTL_VERSION: u32 = iowr::<drm_version>(DRM_IOCTL_BASE, 0x00);
pub const DRM_IOCTL_GEM_CLOSE: u32 = iow::<drm_gem_close>(DRM_IOCTL_BASE, 0x09);
pub const DRM_IOCTL_GET_CAP: u32 = iowr::<drm_get_cap>(DRM_IOCTL_BASE, 0x0C);
pub const DRM_IOCTL_PRIME_HANDLE_TO_FD: u32 = iowr::<drm_prime_handle>(DRM_IOCTL_BASE, 0x2D);
pub const DRM_IOCTL_PRIME_FD_TO_HANDLE: u32 = iowr::<drm_prime_handle>(DRM_IOCTL_BASE, 0x2E);
pub const DRM_IOCTL_SYNCOBJ_CREATE: u32 = iowr::<drm_syncobj_create>(DRM_IOCTL_BASE, 0xBF);
pub const DRM_IOCTL_SYNCOBJ_DESTROY: u32 = iowr::<drm_syncobj_destroy>(DRM_IOCTL_BASE, 0xC0);
pub const DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD: u32 = iowr::<drm_syncobj_handle>(DRM_IOCTL_BASE, 0xC1);
pub const DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE: u32 = iowr::<drm_syncobj_handle>(DRM_IOCTL_BASE, 0xC2);
pub const DRM_IOCTL_SYNCOBJ_WAIT: u32 = iowr::<drm_syncobj_wait>(DRM_IOCTL_BASE, 0xC3);
pub const DRM_IOCTL_SYNCOBJ_RESET: u32 = iowr::<drm_syncobj_array>(DRM_IOCTL_BASE, 0xC4);
pub const DRM_IOCTL_SYNCOBJ_SIGNAL: u32 = iowr::<drm_syncobj_array>(DRM_IOCTL_BASE, 0xC5);
pub const DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT: u32 =
    iowr::<drm_syncobj_timeline_wait>(DRM_IOCTL_BASE, 0xCA);
pub const DRM_IOCTL_SYNCOBJ_QUERY: u32 = iowr::<drm_syncobj_timeline_array>(DRM_IOCTL_BASE, 0xCB);
pub const DRM_IOCTL_SYNCOBJ_TRANSFER: u32 = iowr::<drm_syncobj_transfer>(DRM_IOCTL_BASE, 0xCC);
pub const DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL: u32 =
    iowr::<drm_syncobj_timeline_array>(DRM_IOCTL_BASE, 0xCD);
pub const DRM_IOCTL_SYNCOBJ_EVENTFD: u32 = iowr::<drm_syncobj_eventfd>(DRM_IOCTL_BASE, 0xCF);
