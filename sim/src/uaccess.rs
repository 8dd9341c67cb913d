//! The process an ioctl runs for: `copy_from_user` / `copy_to_user`, `fdget` / `fd_install`
//! and `signal_pending`, as the kernel reaches them through `current`.
//!
//! Ioctl arguments carry user pointers (cmdbufs, sync arrays, bind ops, parameter buffers) and
//! fd numbers into the caller's process, exactly as with a real kernel. Every handler reaches
//! them through a [`Caller`]:
//!
//! - [`InProcess`]: the simulator lives in the caller's process (the embedded device). Memory
//!   is read and written with `process_vm_readv`/`process_vm_writev` on our own pid, so the
//!   host kernel validates every address and a bad pointer is `EFAULT`, never a crash; fd
//!   numbers are resolved in our own fd table.
//! - a remote caller (the device server): the request carries the memory its pointers name and
//!   the fds its fields name; anything else is `EFAULT` / `EBADF`, so a client can never reach
//!   the server's memory or another client's files.
#![allow(unsafe_code)]

use std::os::fd::{BorrowedFd, IntoRawFd, OwnedFd, RawFd};

use rustix::io::Errno;

/// The calling process of one ioctl (the kernel's `current`).
pub trait Caller {
    /// Copies `dst.len()` bytes from user address `src`. `EFAULT` if any byte is not readable.
    fn copy_from_user(&self, dst: &mut [u8], src: u64) -> Result<(), Errno>;
    /// Copies `src` to user address `dst`. `EFAULT` if any byte is not writable.
    fn copy_to_user(&self, dst: u64, src: &[u8]) -> Result<(), Errno>;
    /// `fdget()`: the caller's fd `raw`, for the duration of the call. `EBADF` if it is not
    /// open (or negative).
    fn fdget(&self, raw: RawFd) -> Result<BorrowedFd<'_>, Errno>;
    /// `fd_install()`: gives `fd` to the caller and returns its number there.
    fn fd_install(&self, fd: OwnedFd) -> Result<RawFd, Errno>;
    /// Whether the caller was killed: interruptible waits give up with `EINTR`.
    fn signal_pending(&self) -> bool {
        false
    }
}

/// The caller is this process (the embedded simulated device).
#[derive(Clone, Copy, Debug, Default)]
pub struct InProcess;

impl Caller for InProcess {
    fn copy_from_user(&self, dst: &mut [u8], src: u64) -> Result<(), Errno> {
        if dst.is_empty() {
            return Ok(());
        }
        check_range(src, dst.len())?;
        let local = libc::iovec {
            iov_base: dst.as_mut_ptr().cast(),
            iov_len: dst.len(),
        };
        let remote = libc::iovec {
            iov_base: src as *mut libc::c_void,
            iov_len: dst.len(),
        };
        // SAFETY: `local` describes `dst`, a live exclusive buffer of exactly `iov_len` bytes;
        // the remote side is only read by the host kernel, which checks it and fails with
        // EFAULT.
        let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
        finish(n, dst.len())
    }

    fn copy_to_user(&self, dst: u64, src: &[u8]) -> Result<(), Errno> {
        if src.is_empty() {
            return Ok(());
        }
        check_range(dst, src.len())?;
        let local = libc::iovec {
            iov_base: src.as_ptr() as *mut libc::c_void,
            iov_len: src.len(),
        };
        let remote = libc::iovec {
            iov_base: dst as *mut libc::c_void,
            iov_len: src.len(),
        };
        // SAFETY: `local` describes `src`, which the host kernel only reads; the remote range
        // is written by the host kernel after it checked that it is mapped and writable.
        let n = unsafe { libc::process_vm_writev(libc::getpid(), &local, 1, &remote, 1, 0) };
        finish(n, src.len())
    }

    fn fdget(&self, raw: RawFd) -> Result<BorrowedFd<'_>, Errno> {
        if raw < 0 {
            return Err(Errno::BADF);
        }
        // SAFETY: `raw` is an fd number of this process handed to us in an ioctl argument,
        // exactly what the kernel resolves with fdget(). The borrow lasts for the ioctl being
        // served (the lifetime of `&self`), during which the handler only issues syscalls on
        // it (fstat, dup, readlink of /proc/self/fd); should the caller close or reuse the
        // number concurrently, those syscalls fail with EBADF or see the new file, as the
        // kernel would, and no memory is touched through it.
        Ok(unsafe { BorrowedFd::borrow_raw(raw) })
    }

    fn fd_install(&self, fd: OwnedFd) -> Result<RawFd, Errno> {
        Ok(fd.into_raw_fd())
    }
}

/// Reads a `Pod` struct from user memory.
pub fn read_user<T: bytemuck::Pod>(caller: &dyn Caller, src: u64) -> Result<T, Errno> {
    let mut v = T::zeroed();
    caller.copy_from_user(bytemuck::bytes_of_mut(&mut v), src)?;
    Ok(v)
}

/// Reads `count` elements of `stride` bytes each, each zero-extended or truncated to `T`
/// (the extensible-array rule of `VM_BIND`).
pub fn read_user_array<T: bytemuck::Pod>(
    caller: &dyn Caller,
    src: u64,
    count: usize,
    stride: usize,
) -> Result<Vec<T>, Errno> {
    let total = count.checked_mul(stride).ok_or(Errno::INVAL)?;
    // kvmalloc() refuses more than INT_MAX bytes: ENOMEM, never an aborting allocation.
    if total > i32::MAX as usize {
        return Err(Errno::NOMEM);
    }
    let mut raw = vec![0u8; total];
    caller.copy_from_user(&mut raw, src)?;
    let size = core::mem::size_of::<T>();
    Ok(raw
        .chunks_exact(stride.max(1))
        .take(count)
        .map(|chunk| {
            let mut v = T::zeroed();
            let n = size.min(chunk.len());
            bytemuck::bytes_of_mut(&mut v)[..n].copy_from_slice(&chunk[..n]);
            v
        })
        .collect())
}

/// Writes a `Pod` struct to user memory.
pub fn write_user<T: bytemuck::Pod>(caller: &dyn Caller, dst: u64, v: &T) -> Result<(), Errno> {
    caller.copy_to_user(dst, bytemuck::bytes_of(v))
}

/// Whether `[addr, addr + len)` can be a user range at all: the zero page is never mapped in
/// user space, and an overflowing range is never valid. `EFAULT` otherwise.
pub fn check_range(addr: u64, len: usize) -> Result<(), Errno> {
    if addr < 4096 || addr.checked_add(len as u64).is_none() {
        return Err(Errno::FAULT);
    }
    Ok(())
}

fn finish(n: isize, want: usize) -> Result<(), Errno> {
    if n < 0 {
        let e = Errno::from_raw_os_error(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EFAULT),
        );
        // ENOMEM/ESRCH from process_vm_* mean "address not mapped" here.
        return Err(if e == Errno::PERM { e } else { Errno::FAULT });
    }
    if n as usize != want {
        return Err(Errno::FAULT);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_fault() {
        let me = InProcess;
        let src = [1u8, 2, 3, 4];
        let mut dst = [0u8; 4];
        me.copy_from_user(&mut dst, src.as_ptr() as u64).unwrap();
        assert_eq!(dst, src);
        let mut out = [0u8; 4];
        me.copy_to_user(out.as_mut_ptr() as u64, &[9, 8, 7, 6])
            .unwrap();
        assert_eq!(out, [9, 8, 7, 6]);
        assert_eq!(me.copy_from_user(&mut dst, 0), Err(Errno::FAULT));
        assert_eq!(me.copy_from_user(&mut dst, 16), Err(Errno::FAULT));
        assert_eq!(me.copy_from_user(&mut dst, u64::MAX - 1), Err(Errno::FAULT));
        // Writing to read-only memory (a string literal in .rodata) is refused.
        let ro: &'static [u8] = b"read-only";
        assert_eq!(me.copy_to_user(ro.as_ptr() as u64, &[0]), Err(Errno::FAULT));
    }

    #[test]
    fn extensible_arrays() {
        let words: [u32; 4] = [1, 2, 3, 4];
        // stride 8 read as u32: takes the first 4 bytes of each element.
        let v: Vec<u32> = read_user_array(&InProcess, words.as_ptr() as u64, 2, 8).unwrap();
        assert_eq!(v, vec![1, 3]);
        // stride 2 read as u32: zero-extends.
        let v: Vec<u32> = read_user_array(&InProcess, words.as_ptr() as u64, 2, 2).unwrap();
        assert_eq!(v, vec![1, 0]);
    }

    #[test]
    fn fds() {
        assert_eq!(InProcess.fdget(-1).unwrap_err(), Errno::BADF);
        let (r, _w) = rustix::pipe::pipe().unwrap();
        let raw = InProcess.fd_install(r).unwrap();
        let fd = InProcess.fdget(raw).unwrap();
        assert!(rustix::fs::fstat(fd).is_ok());
        // SAFETY: `raw` was installed just above and nothing else owns it.
        drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) });
    }
}
