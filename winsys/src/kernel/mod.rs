//! The kernel boundary: "an open DRM file". Everything above this module is the same whether the
//! file is a real asahi render node or the embedded simulated device.
//!
//! The boundary is deliberately small (ioctl with argument bytes, mmap of a fake offset, and
//! ioctls on fds the device handed out: sync_files and dma-bufs), so that it is exactly what the
//! kernel offers and nothing the simulator could fake more kindly than Linux would.

mod node;
mod sim;

use std::os::fd::BorrowedFd;

use rustix::io::Errno;

pub use node::RenderNode;
pub use sim::SimBackend;

/// Which kind of kernel is behind a [`KernelFile`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A real DRM render node.
    RenderNode,
    /// The embedded simulated device (`agx-sim`).
    Simulated,
}

/// An open DRM file.
pub trait KernelFile: Send + Sync + std::fmt::Debug {
    /// `ioctl(fd, cmd, arg)`; `arg` holds exactly `ioc_size(cmd)` bytes and may carry user
    /// pointers into this process.
    fn ioctl(&self, cmd: u32, arg: &mut [u8]) -> Result<(), Errno>;

    /// `mmap(NULL, len, RW, SHARED, fd, offset)` for a BO's fake mmap offset.
    fn map(&self, offset: u64, len: usize) -> Result<CpuMapping, Errno>;

    /// An ioctl on an fd this device exported (a sync_file or a dma-buf).
    fn fd_ioctl(&self, fd: BorrowedFd<'_>, cmd: u32, arg: &mut [u8]) -> Result<(), Errno>;

    /// What is behind this file.
    fn backend(&self) -> Backend;

    /// The simulated device, for test control (fault injection, holding the clock). `None` on
    /// real hardware, where faults come from the GPU itself.
    fn simulator(&self) -> Option<&agx_sim::SimDevice> {
        None
    }

    /// Test hook: makes the next command to start on `queue_id` fault or hang (simulated
    /// device only; real GPUs fault on their own). `ENOTSUP` elsewhere.
    fn inject(&self, queue_id: u32, injection: agx_sim::Injection) -> Result<(), Errno> {
        let _ = (queue_id, injection);
        Err(Errno::NOTSUP)
    }
}

/// A CPU mapping of a BO, unmapped on drop.
#[derive(Debug)]
pub struct CpuMapping {
    inner: MappingImpl,
}

#[derive(Debug)]
enum MappingImpl {
    Sim(agx_sim::mem::Mapping),
    Node(node::NodeMapping),
}

impl CpuMapping {
    /// Start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        match &self.inner {
            MappingImpl::Sim(m) => m.as_ptr(),
            MappingImpl::Node(m) => m.as_ptr(),
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        match &self.inner {
            MappingImpl::Sim(m) => m.len(),
            MappingImpl::Node(m) => m.len(),
        }
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
        match &self.inner {
            MappingImpl::Sim(m) => m.read(offset, dst),
            MappingImpl::Node(m) => m.read(offset, dst),
        }
        Ok(())
    }

    /// Copies `src` in at `offset`.
    pub fn write(&self, offset: usize, src: &[u8]) -> Result<(), Errno> {
        if !in_range(offset, src.len(), self.len()) {
            return Err(Errno::INVAL);
        }
        match &self.inner {
            MappingImpl::Sim(m) => m.write(offset, src),
            MappingImpl::Node(m) => m.write(offset, src),
        }
        Ok(())
    }
}

fn in_range(offset: usize, len: usize, total: usize) -> bool {
    offset.checked_add(len).is_some_and(|end| end <= total)
}
