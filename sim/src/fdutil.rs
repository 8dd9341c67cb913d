//! File descriptor numbers found in ioctl arguments.
//!
//! Ioctl structs carry fd numbers of the calling process (`drm_syncobj_handle.fd`,
//! `drm_syncobj_eventfd.fd`, `sync_merge_data.fd2`). The simulator runs in that process, so
//! it resolves them in its own fd table, as the kernel's `fdget()` does; the borrow lasts only
//! for the call it is made for.
#![allow(unsafe_code)]

use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

use rustix::io::Errno;

/// Runs `f` with the caller's fd `raw` borrowed. `EBADF` for a negative number; a number that
/// is not open makes the host kernel answer `EBADF` to whatever `f` does with it.
pub(crate) fn with_raw_fd<R>(
    raw: RawFd,
    f: impl FnOnce(BorrowedFd<'_>) -> Result<R, Errno>,
) -> Result<R, Errno> {
    if raw < 0 {
        return Err(Errno::BADF);
    }
    // SAFETY: `raw` is an fd number of this process handed to us in an ioctl argument, exactly
    // what the kernel resolves with fdget(). The borrow does not outlive `f`, which only issues
    // syscalls on it (fstat, dup); should the number be closed or reused concurrently, those
    // syscalls fail with EBADF or see the new file, as the kernel would, and no memory is
    // touched through it.
    let fd = unsafe { BorrowedFd::borrow_raw(raw) };
    f(fd)
}

/// `eventfd_ctx_fdget()`: a duplicate of the caller's eventfd `raw`. `EBADF` if `raw` is not
/// open, `EINVAL` if it is not an eventfd.
pub(crate) fn dup_eventfd(raw: RawFd) -> Result<OwnedFd, Errno> {
    with_raw_fd(raw, |fd| {
        let st = rustix::fs::fstat(fd)?;
        match rustix::fs::readlink(format!("/proc/self/fd/{raw}"), Vec::new()) {
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
        rustix::io::fcntl_dupfd_cloexec(fd, 0)
    })
}

/// Takes ownership of an fd number an ioctl just returned to the (test) caller.
#[cfg(test)]
pub(crate) fn take_returned_fd(raw: RawFd) -> OwnedFd {
    use std::os::fd::FromRawFd;
    assert!(raw >= 0);
    // SAFETY: `raw` was just created by the simulator and handed to the caller, which is this
    // test; nothing else owns or closes it.
    unsafe { OwnedFd::from_raw_fd(raw) }
}
