//! `linux/dma-buf.h`: implicit-sync interop on exported BOs.
#![allow(non_camel_case_types)]

use bytemuck::{Pod, Zeroable};

use crate::ioctl::{iow, iowr};

pub const DMA_BUF_BASE: u8 = b'b';

/// `struct dma_buf_sync`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct dma_buf_sync {
    pub flags: u64,
}

/// `struct dma_buf_export_sync_file`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct dma_buf_export_sync_file {
    pub flags: u32,
    pub fd: i32,
}

/// `struct dma_buf_import_sync_file`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct dma_buf_import_sync_file {
    pub flags: u32,
    pub fd: i32,
}

pub const DMA_BUF_SYNC_READ: u64 = 1;
pub const DMA_BUF_SYNC_WRITE: u64 = 2;
pub const DMA_BUF_SYNC_RW: u64 = DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE;
pub const DMA_BUF_SYNC_START: u64 = 0;
pub const DMA_BUF_SYNC_END: u64 = 1 << 2;
pub const DMA_BUF_SYNC_VALID_FLAGS_MASK: u64 = DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END;

pub const DMA_BUF_IOCTL_SYNC: u32 = iow::<dma_buf_sync>(DMA_BUF_BASE, 0);
pub const DMA_BUF_IOCTL_EXPORT_SYNC_FILE: u32 = iowr::<dma_buf_export_sync_file>(DMA_BUF_BASE, 2);
pub const DMA_BUF_IOCTL_IMPORT_SYNC_FILE: u32 = iow::<dma_buf_import_sync_file>(DMA_BUF_BASE, 3);
