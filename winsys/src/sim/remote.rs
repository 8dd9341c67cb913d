//! A simulated device on a device server (`agx-sim-server`), as a [`KernelFile`] and its
//! [`SimControl`]: every ioctl crosses the socket with the memory and fds it names; BO memory
//! is the server's memfd mapped here, shared with the GPU as on the embedded device.

use std::os::fd::{AsFd, BorrowedFd};
use std::ptr::NonNull;

use agx_sim::mem::Mapping;
use agx_sim_server::msg::ControlOp;
use agx_sim_server::{Endpoint, RemoteFile, Target};
use rustix::io::Errno;

use super::{Event, Injection, SimConfig, SimControl, Stats};
use crate::error::{Error, Result};
use crate::kernel::{CpuMapping, KernelFile};
use crate::Device;

/// An open file of a device on a server.
#[derive(Debug)]
pub struct RemoteBackend {
    file: RemoteFile,
}

impl RemoteBackend {
    /// Connects to `endpoint` and opens a file on `target`.
    pub fn open(endpoint: &Endpoint, target: Target) -> Result<RemoteBackend> {
        let file = RemoteFile::open(endpoint, target)
            .map_err(|e| Error::NoDevice(format!("device server {}: {}", e.endpoint, e.message)))?;
        Ok(RemoteBackend { file })
    }

    /// The connection's file.
    pub fn file(&self) -> &RemoteFile {
        &self.file
    }

    fn control(&self, op: ControlOp) {
        // The controls that answer nothing: a server that is gone shows in the next ioctl.
        let _ = self.file.control(op);
    }
}

impl KernelFile for RemoteBackend {
    fn ioctl(&self, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
        self.file.ioctl(cmd, arg)
    }

    fn map(&self, offset: u64, len: usize, at: Option<NonNull<u8>>) -> Result<CpuMapping, Errno> {
        let fd = self.file.mmap_fd(offset, len as u64)?;
        Ok(CpuMapping::new(Box::new(Mapping::of_fd(
            fd.as_fd(),
            0,
            len,
            at,
        )?)))
    }

    fn fd_ioctl(&self, fd: BorrowedFd<'_>, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
        self.file.fd_ioctl(fd, cmd, arg)
    }
}

impl SimControl for RemoteBackend {
    fn hold(&self) {
        self.control(ControlOp::Hold)
    }

    fn release(&self) {
        self.control(ControlOp::Release)
    }

    fn advance(&self, ns: u64) {
        self.control(ControlOp::Advance(ns))
    }

    fn inject(&self, queue_id: u32, injection: Injection) -> Result<()> {
        let (hang, after_ns) = match injection {
            Injection::Fault { after_ns } => (false, after_ns),
            Injection::Hang { after_ns } => (true, after_ns),
        };
        self.file
            .control(ControlOp::Inject {
                queue: queue_id,
                hang,
                after_ns,
            })
            .map(drop)
            .map_err(crate::error::kernel("inject"))
    }

    fn crash_firmware(&self) {
        self.control(ControlOp::CrashFirmware)
    }

    fn now_ns(&self) -> u64 {
        self.file.now_ns().unwrap_or(0)
    }

    fn stats(&self) -> Stats {
        self.file.stats().unwrap_or_default()
    }

    fn pending_commands(&self) -> usize {
        self.file.pending_commands().unwrap_or(0) as usize
    }

    fn trace_json(&self) -> String {
        self.file.trace_json().unwrap_or_default()
    }

    fn trace_events(&self) -> Vec<Event> {
        self.file.trace_events().unwrap_or_default()
    }

    fn config(&self) -> SimConfig {
        self.file.config().clone()
    }

    fn open_peer(&self) -> Result<Device> {
        let file = self
            .file
            .open_peer()
            .map_err(|e| Error::NoDevice(format!("device server {}: {}", e.endpoint, e.message)))?;
        super::open_backend(RemoteBackend { file })
    }
}
