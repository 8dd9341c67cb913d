//! The embedded simulated device as a [`KernelFile`].

use std::os::fd::BorrowedFd;

use agx_sim::{SimDevice, SimFile};
use rustix::io::Errno;

use super::{Backend, CpuMapping, KernelFile, MappingImpl};

/// An open file of an embedded [`SimDevice`].
#[derive(Debug)]
pub struct SimBackend {
    device: SimDevice,
    file: SimFile,
}

impl SimBackend {
    /// Opens a new file on `device`.
    pub fn open(device: &SimDevice) -> SimBackend {
        SimBackend {
            device: device.clone(),
            file: device.open(),
        }
    }

    /// The simulator's view of this file (for fault injection on its queues).
    pub fn file(&self) -> &SimFile {
        &self.file
    }
}

impl KernelFile for SimBackend {
    fn ioctl(&self, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
        self.file.ioctl(cmd, arg)
    }

    fn map(&self, offset: u64, len: usize) -> Result<CpuMapping, Errno> {
        Ok(CpuMapping {
            inner: MappingImpl::Sim(self.file.mmap(offset, len)?),
        })
    }

    fn fd_ioctl(&self, fd: BorrowedFd<'_>, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
        agx_sim::sync::sync_file::sync_file_ioctl(fd, cmd, arg)
    }

    fn backend(&self) -> Backend {
        Backend::Simulated
    }

    fn simulator(&self) -> Option<&SimDevice> {
        Some(&self.device)
    }

    fn inject(&self, queue_id: u32, injection: agx_sim::Injection) -> Result<(), Errno> {
        self.device.inject(&self.file, queue_id, injection)
    }
}
