//! The kernel boundary: "an open DRM file". Everything above this module is the same whether the
//! file is a real asahi render node or a simulated device.
//!
//! The boundary is deliberately small (ioctl with argument bytes, mmap of a fake offset, and
//! ioctls on fds the device handed out: sync_files and dma-bufs), so that it is exactly what the
//! kernel offers and nothing a simulator could fake more kindly than Linux would. Test controls
//! of a simulated device (holding its clock, fault injection) are not part of it: they are
//! [`crate::sim::SimControl`], which only simulated backends implement.

mod node;

use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use rustix::io::Errno;

pub use node::RenderNode;

/// An open DRM file.
pub trait KernelFile: Send + Sync + std::fmt::Debug {
    /// `ioctl(fd, cmd, arg)`; `arg` holds exactly `ioc_size(cmd)` bytes and may carry user
    /// pointers into this process.
    fn ioctl(&self, cmd: u32, arg: &mut [u8]) -> Result<(), Errno>;

    /// `mmap(at, len, RW, SHARED, fd, offset)` for a BO's fake mmap offset: anywhere the kernel
    /// chooses, or with `MAP_FIXED` at `at` (replacing what the caller reserved there).
    fn map(&self, offset: u64, len: usize, at: Option<NonNull<u8>>) -> Result<CpuMapping, Errno>;

    /// An ioctl on an fd this device exported (a sync_file or a dma-buf).
    fn fd_ioctl(&self, fd: BorrowedFd<'_>, cmd: u32, arg: &mut [u8]) -> Result<(), Errno>;
}

/// A live shared mapping of BO memory, unmapped when dropped. Implemented by each backend's
/// mapping type; [`CpuMapping`] bounds-checks before calling `read`/`write`.
pub trait MappedRange: Send + Sync + std::fmt::Debug {
    /// Start of the mapping.
    fn as_ptr(&self) -> *mut u8;
    /// Length in bytes.
    fn len(&self) -> usize;
    /// Whether the mapping is empty (never, for a BO).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies `dst.len()` bytes out from `offset` (in bounds).
    fn read(&self, offset: usize, dst: &mut [u8]);
    /// Copies `src` in at `offset` (in bounds).
    fn write(&self, offset: usize, src: &[u8]);
}

/// A CPU mapping of a BO, unmapped on drop.
#[derive(Debug)]
pub struct CpuMapping {
    inner: Box<dyn MappedRange>,
}

impl CpuMapping {
    /// Wraps a backend's mapping.
    pub fn new(inner: Box<dyn MappedRange>) -> CpuMapping {
        CpuMapping { inner }
    }

    /// Start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.inner.as_ptr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the mapping is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies `dst.len()` bytes out from `offset`.
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), Errno> {
        if !in_range(offset, dst.len(), self.len()) {
            return Err(Errno::INVAL);
        }
        self.inner.read(offset, dst);
        Ok(())
    }

    /// Copies `src` in at `offset`.
    pub fn write(&self, offset: usize, src: &[u8]) -> Result<(), Errno> {
        if !in_range(offset, src.len(), self.len()) {
            return Err(Errno::INVAL);
        }
        self.inner.write(offset, src);
        Ok(())
    }
}

fn in_range(offset: usize, len: usize, total: usize) -> bool {
    offset.checked_add(len).is_some_and(|end| end <= total)
}
