//! The embedded simulated device (`agx-sim` in this process) as a [`KernelFile`] and its
//! [`SimControl`].

use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use agx_sim::mem::Mapping;
use agx_sim::{SimDevice, SimFile};
use rustix::io::Errno;

use super::{Event, Injection, SimConfig, SimControl, Stats};
use crate::error::Result;
use crate::kernel::{CpuMapping, KernelFile, MappedRange};
use crate::Device;

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

    /// The simulator's view of this file.
    pub fn file(&self) -> &SimFile {
        &self.file
    }

    /// The simulated GPU this file is open on.
    pub fn device(&self) -> &SimDevice {
        &self.device
    }
}

impl KernelFile for SimBackend {
    fn ioctl(&self, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
        self.file.ioctl(cmd, arg)
    }

    fn map(&self, offset: u64, len: usize, at: Option<NonNull<u8>>) -> Result<CpuMapping, Errno> {
        Ok(CpuMapping::new(Box::new(
            self.file.mmap_at(offset, len, at)?,
        )))
    }

    fn fd_ioctl(&self, fd: BorrowedFd<'_>, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
        agx_sim::fd_ioctl(fd, cmd, arg)
    }
}

impl MappedRange for Mapping {
    fn as_ptr(&self) -> *mut u8 {
        Mapping::as_ptr(self)
    }

    fn len(&self) -> usize {
        Mapping::len(self)
    }

    fn read(&self, offset: usize, dst: &mut [u8]) {
        Mapping::read(self, offset, dst)
    }

    fn write(&self, offset: usize, src: &[u8]) {
        Mapping::write(self, offset, src)
    }
}

impl SimControl for SimBackend {
    fn hold(&self) {
        self.device.hold()
    }

    fn release(&self) {
        self.device.release()
    }

    fn advance(&self, ns: u64) {
        self.device.advance(ns)
    }

    fn inject(&self, queue_id: u32, injection: Injection) -> Result<()> {
        self.device
            .inject(&self.file, queue_id, injection)
            .map_err(crate::error::kernel("inject"))
    }

    fn crash_firmware(&self) {
        self.device.crash_firmware()
    }

    fn now_ns(&self) -> u64 {
        self.device.now_ns()
    }

    fn stats(&self) -> Stats {
        self.device.stats()
    }

    fn pending_commands(&self) -> usize {
        self.device.pending_commands()
    }

    fn trace_json(&self) -> String {
        self.device.trace_json()
    }

    fn trace_events(&self) -> Vec<Event> {
        self.device.trace_events()
    }

    fn config(&self) -> SimConfig {
        self.device.config().clone()
    }

    fn open_peer(&self) -> Result<Device> {
        super::open(&self.device)
    }

    fn debug_state(&self) -> Option<String> {
        Some(self.file.debug_state())
    }
}
