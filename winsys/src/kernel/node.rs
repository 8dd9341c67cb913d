//! A real DRM render node: the same boundary as the simulator, with real system calls.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};

use super::{CpuMapping, KernelFile, MappedRange};

/// An open DRM render node (or any DRM file: a primary node works too).
#[derive(Debug)]
pub struct RenderNode {
    fd: OwnedFd,
    path: PathBuf,
}

impl RenderNode {
    /// Opens `path` read-write, close-on-exec.
    pub fn open(path: &Path) -> Result<RenderNode, Errno> {
        let fd = rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())?;
        Ok(RenderNode {
            fd,
            path: path.to_owned(),
        })
    }

    /// Uses a DRM file the caller opened: the node owns a close-on-exec duplicate, so the
    /// caller's fd stays open, with its flags and file offset untouched, whatever happens here.
    pub fn dup(fd: BorrowedFd<'_>) -> Result<RenderNode, Errno> {
        let fd = rustix::io::fcntl_dupfd_cloexec(fd, 3)?;
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd()).into();
        Ok(RenderNode { fd, path })
    }

    /// The DRM driver name (`DRM_IOCTL_VERSION`), through drm-ffi.
    pub fn driver_name(&self) -> Result<String, Errno> {
        let mut name: Vec<i8> = Vec::with_capacity(64);
        drm_ffi::get_version(self.fd.as_fd(), Some(&mut name), None, None)
            .map_err(|e| Errno::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EIO)))?;
        Ok(name.iter().map(|&c| c as u8 as char).collect())
    }

    /// The node's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `ioctl(2)` with an argument buffer of exactly the encoded size.
fn raw_ioctl(fd: BorrowedFd<'_>, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
    if arg.len() != agx_uapi::ioctl::ioc_size(cmd) {
        return Err(Errno::INVAL);
    }
    loop {
        // SAFETY: `arg` is a live, exclusively borrowed buffer of exactly the size encoded in
        // `cmd`, which is all the kernel reads or writes through the pointer; user pointers
        // inside it are the caller's responsibility, as with any ioctl argument.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), cmd as libc::c_ulong, arg.as_mut_ptr()) };
        if r == 0 {
            return Ok(());
        }
        let e = Errno::from_raw_os_error(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        );
        // drmIoctl restarts on signals; so do we.
        if e != Errno::INTR && e != Errno::AGAIN {
            return Err(e);
        }
    }
}

impl KernelFile for RenderNode {
    fn ioctl(&self, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
        raw_ioctl(self.fd.as_fd(), cmd, arg)
    }

    fn map(&self, offset: u64, len: usize, at: Option<NonNull<u8>>) -> Result<CpuMapping, Errno> {
        let (hint, fixed) = match at {
            Some(p) => (p.as_ptr().cast(), MapFlags::FIXED),
            None => (std::ptr::null_mut(), MapFlags::empty()),
        };
        // SAFETY: without `at`, a fresh mapping at a kernel-chosen address aliases no Rust
        // object. With `at`, the caller of `Bo::map_fixed` promised (its `# Safety`) that the
        // range is theirs to replace and holds no Rust object.
        let ptr = unsafe {
            rustix::mm::mmap(
                hint,
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED | fixed,
                self.fd.as_fd(),
                offset,
            )?
        };
        let ptr = NonNull::new(ptr.cast()).ok_or(Errno::NOMEM)?;
        Ok(CpuMapping::new(Box::new(NodeMapping { ptr, len })))
    }

    fn fd_ioctl(&self, fd: BorrowedFd<'_>, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
        raw_ioctl(fd, cmd, arg)
    }
}

/// A CPU mapping of a BO on a real render node.
///
/// # Invariants
/// `ptr` starts a live shared mapping of `len` bytes that only this value unmaps.
#[derive(Debug)]
pub struct NodeMapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: plain shared memory; nothing in it is tied to a thread.
unsafe impl Send for NodeMapping {}
// SAFETY: accessed only by raw copies; concurrent GPU/CPU access is inherent to BO memory.
unsafe impl Sync for NodeMapping {}

impl MappedRange for NodeMapping {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn len(&self) -> usize {
        self.len
    }

    fn read(&self, offset: usize, dst: &mut [u8]) {
        assert!(offset + dst.len() <= self.len);
        // SAFETY: in bounds (asserted) of the live mapping; `dst` is a separate buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ptr.as_ptr().add(offset),
                dst.as_mut_ptr(),
                dst.len(),
            )
        }
    }

    fn write(&self, offset: usize, src: &[u8]) {
        assert!(offset + src.len() <= self.len);
        // SAFETY: in bounds (asserted) of the live mapping; `src` is a separate buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr().add(offset), src.len())
        }
    }
}

impl Drop for NodeMapping {
    fn drop(&mut self) {
        // SAFETY: by the invariant the mapping is live and ours to unmap.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
