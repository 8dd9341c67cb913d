//! `linux/sync_file.h`: the only kernel interface that shows a signalled fence's error.
#![allow(non_camel_case_types)]

use bytemuck::{Pod, Zeroable};

use crate::ioctl::iowr;

pub const SYNC_IOC_MAGIC: u8 = b'>';

/// `struct sync_merge_data`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct sync_merge_data {
    pub name: [u8; 32],
    pub fd2: i32,
    pub fence: i32,
    pub flags: u32,
    pub pad: u32,
}

/// `struct sync_fence_info`: `status` is 1 signalled, 0 active, < 0 signalled with that error.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct sync_fence_info {
    pub obj_name: [u8; 32],
    pub driver_name: [u8; 32],
    pub status: i32,
    pub flags: u32,
    pub timestamp_ns: u64,
}

/// `struct sync_file_info`: `status` keeps the first value <= 0 among the fences.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct sync_file_info {
    pub name: [u8; 32],
    pub status: i32,
    pub flags: u32,
    pub num_fences: u32,
    pub pad: u32,
    pub sync_fence_info: u64,
}

pub const SYNC_IOC_MERGE: u32 = iowr::<sync_merge_data>(SYNC_IOC_MAGIC, 3);
pub const SYNC_IOC_FILE_INFO: u32 = iowr::<sync_file_info>(SYNC_IOC_MAGIC, 4);
