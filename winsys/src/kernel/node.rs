//! A real DRM render node: the same boundary as the simulator, with real system calls.
//!
//! Every system call on the node goes through libc (`open`, `fcntl`, `ioctl`, `mmap`), as
//! Mesa's and libdrm's do, so that an `LD_PRELOAD` render node (Mesa's drm-shim, or this
//! project's `agx-render-node`) sees the winsys's calls exactly as it sees Mesa's.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use rustix::io::Errno;

use super::{CpuMapping, KernelFile, MappedRange};

/// An open DRM render node (or any DRM file: a primary node works too).
#[derive(Debug)]
pub struct RenderNode {
    fd: OwnedFd,
    path: PathBuf,
}

fn last_errno() -> Errno {
    Errno::from_raw_os_error(
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}

/// Takes ownership of the fd a libc call just returned (or its errno).
fn owned(fd: libc::c_int) -> Result<OwnedFd, Errno> {
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: `fd` was just returned by open/fcntl(F_DUPFD_CLOEXEC): a new descriptor that
    // nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl RenderNode {
    /// Opens `path` read-write, close-on-exec.
    pub fn open(path: &Path) -> Result<RenderNode, Errno> {
        let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::INVAL)?;
        // SAFETY: `c` is a NUL-terminated path that outlives the call.
        let fd = owned(unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) })?;
        Ok(RenderNode {
            fd,
            path: path.to_owned(),
        })
    }

    /// Uses a DRM file the caller opened: the node owns a close-on-exec duplicate, so the
    /// caller's fd stays open, with its flags and file offset untouched, whatever happens here.
    pub fn dup(fd: BorrowedFd<'_>) -> Result<RenderNode, Errno> {
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a borrowed, open fd only creates a new descriptor.
        let fd = owned(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) })?;
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd()).into();
        Ok(RenderNode { fd, path })
    }

    /// The DRM driver name (`DRM_IOCTL_VERSION`).
    pub fn driver_name(&self) -> Result<String, Errno> {
        crate::ioctl::driver_name(self).map_err(|e| e.errno())
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
            Some(p) => (p.as_ptr().cast(), libc::MAP_FIXED),
            None => (std::ptr::null_mut(), 0),
        };
        let off = libc::off_t::try_from(offset).map_err(|_| Errno::INVAL)?;
        // SAFETY: without `at`, a fresh mapping at a kernel-chosen address aliases no Rust
        // object. With `at`, the caller of `Bo::map_fixed` promised (its `# Safety`) that the
        // range is theirs to replace and holds no Rust object.
        let ptr = unsafe {
            libc::mmap(
                hint,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | fixed,
                self.fd.as_raw_fd(),
                off,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(last_errno());
        }
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
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
