//! File descriptor numbers found in ioctl arguments.
//!
//! Ioctl structs carry fd numbers of the calling process (`drm_syncobj_handle.fd`,
//! `drm_syncobj_eventfd.fd`, `sync_merge_data.fd2`); handlers resolve them through the
//! [`Caller`](crate::uaccess::Caller), as the kernel's `fdget()` does.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use rustix::io::Errno;

use crate::uaccess::Caller;

/// `eventfd_ctx_fdget()`: a duplicate of the caller's eventfd `raw`. `EBADF` if `raw` is not
/// open, `EINVAL` if it is not an eventfd.
pub(crate) fn dup_eventfd(caller: &dyn Caller, raw: RawFd) -> Result<OwnedFd, Errno> {
    let fd = caller.fdget(raw)?;
    let st = rustix::fs::fstat(fd)?;
    let dup = rustix::io::fcntl_dupfd_cloexec(fd, 0)?;
    // Our own duplicate names the same file, whichever process the caller is.
    match rustix::fs::readlink(format!("/proc/self/fd/{}", dup.as_raw_fd()), Vec::new()) {
        Ok(target) => {
            if target.as_bytes() != b"anon_inode:[eventfd]" {
                return Err(Errno::INVAL);
            }
        }
        // No /proc: accept any anonymous inode (no file type bits), refuse the rest.
        Err(_) => {
            if st.st_mode & libc::S_IFMT != 0 {
                return Err(Errno::INVAL);
            }
        }
    }
    Ok(dup)
}

/// Takes ownership of an fd number an ioctl just returned to the (test) caller.
#[cfg(test)]
#[allow(unsafe_code)]
pub(crate) fn take_returned_fd(raw: RawFd) -> OwnedFd {
    use std::os::fd::FromRawFd;
    assert!(raw >= 0);
    // SAFETY: `raw` was just created by the simulator and handed to the caller, which is this
    // test; nothing else owns or closes it.
    unsafe { OwnedFd::from_raw_fd(raw) }
}
