//! `agx-sim`: the embedded simulated asahi device.
//!
//! A model of what userspace can observe of the Linux `asahi` kernel driver, the AGX firmware and
//! the GPU, behind the same boundary a render node has: ioctl numbers and argument bytes in,
//! errno out, BOs mapped through their mmap offsets, sync objects exported as pollable fds.
//! It exists because no machine we test on has AGX hardware and Mesa's drm-shim cannot fail a
//! job. See `docs/sim-command-stream.md` for the GPU's command language and
//! `docs/uapi-fault-extension.md` for the fault-report extension it implements.
//!
//! Layout: `device` (open files, DRM core ioctls, dispatch), `ioctl` (asahi ioctls), `submit`
//! and `cmdbuf` (the submit path), `bo`/`mem`/`vm` (memory), `gpu` (firmware, scheduling,
//! execution and recovery), `sync` (fences, sync objects, sync_file), `trace`, and the test
//! hooks `test_fence` (the real-kernel differential test's fences).
#![deny(unsafe_code)]

pub mod bo;
pub mod cmdbuf;
pub mod config;
pub mod device;
mod fdutil;
pub mod gpu;
mod ioctl;
pub mod mem;
pub mod stream;
mod submit;
pub mod sync;
pub mod test_fence;
pub mod trace;
pub mod uaccess;
pub mod vm;

pub use config::{Clock, RecoveryPolicy, SimConfig, StreamMode, PAGE_SIZE};
pub use device::{SimDevice, SimFile};
pub use gpu::Injection;
pub use rustix::io::Errno;

/// An ioctl by this process on an fd the device handed out: a sync_file (`SYNC_IOC_*`) or a
/// dma-buf (`DMA_BUF_IOCTL_*`). `ENOTTY` for anything else, as the host kernel would answer for
/// a file without that ioctl.
pub fn fd_ioctl(fd: std::os::fd::BorrowedFd<'_>, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
    fd_ioctl_for(&uaccess::InProcess, fd, cmd, arg)
}

/// [`fd_ioctl`] made by `caller`.
pub fn fd_ioctl_for(
    caller: &dyn uaccess::Caller,
    fd: std::os::fd::BorrowedFd<'_>,
    cmd: u32,
    arg: &mut [u8],
) -> Result<(), Errno> {
    if agx_uapi::ioctl::ioc_type(cmd) == agx_uapi::dma_buf::DMA_BUF_BASE {
        bo::dmabuf_ioctl(caller, fd, cmd, arg)
    } else {
        sync::sync_file::sync_file_ioctl_for(caller, fd, cmd, arg)
    }
}
