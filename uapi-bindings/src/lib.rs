//! Exact Rust bindings of the upstream asahi DRM uAPI (`asahi_drm.h`, Linux 6.16+), the DRM core
//! calls the winsys uses, `sync_file` and `dma-buf`, and the proposed fault-report extension
//! (`docs/uapi-fault-extension.md`).
//!
//! Structs keep their C names and field names, are `#[repr(C)]` with all padding explicit, and
//! are `bytemuck::Pod` so they travel as argument bytes. Every size, alignment, offset and
//! ioctl number is checked against the values measured from the C headers (`tests/layout.rs`).
//! This crate holds data only: no ioctl is issued here.
#![no_std]
#![forbid(unsafe_code)]

pub mod asahi;
pub mod dma_buf;
pub mod drm;
pub mod fault_ext;
pub mod ioctl;
pub mod sync_file;
