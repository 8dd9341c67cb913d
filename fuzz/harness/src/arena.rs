//! Memory and file descriptors the fuzzer owns, so that the user pointers and fd numbers in
//! fuzzed ioctl arguments never reach anything else of the process.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

use rustix::mm::{mmap_anonymous, mprotect, munmap, MapFlags, MprotectFlags, ProtFlags};

/// Bytes of the arena user pointers point into.
pub const ARENA_LEN: usize = 64 << 10;
const PAGE: usize = 4096;

/// A read-write region followed by an inaccessible guard page: a copy that starts in it and
/// runs past its end faults at the guard (`EFAULT`) instead of writing the process's memory.
#[derive(Debug)]
pub struct Arena {
    base: NonNull<u8>,
}

impl Arena {
    pub fn new() -> Arena {
        let len = ARENA_LEN + PAGE;
        // SAFETY: a fresh anonymous mapping at an address the kernel chooses aliases nothing.
        let p = unsafe {
            mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }
        .expect("arena mmap");
        let base = NonNull::new(p.cast::<u8>()).expect("mmap is never null");
        // SAFETY: the last page of the mapping we just made; nothing lives there.
        unsafe {
            mprotect(
                base.as_ptr().add(ARENA_LEN).cast(),
                PAGE,
                MprotectFlags::empty(),
            )
        }
        .expect("guard page");
        Arena { base }
    }

    /// The arena's address as a user pointer.
    pub fn addr(&self) -> u64 {
        self.base.as_ptr() as u64
    }

    /// A user pointer from a fuzzed value: 0 stays NULL, 1 and 2 are addresses the kernel
    /// refuses (the zero page, the kernel half), anything else lands in the arena.
    pub fn pointer(&self, v: u64) -> u64 {
        match v {
            0 => 0,
            1 => 8,
            2 => 0xffff_ffff_ffff_f000,
            v => self.addr() + v % ARENA_LEN as u64,
        }
    }

    /// Copies `bytes` in at `off` (clipped to the arena).
    pub fn write(&self, off: usize, bytes: &[u8]) {
        let off = off % ARENA_LEN;
        let n = bytes.len().min(ARENA_LEN - off);
        // SAFETY: `[off, off + n)` is inside the arena's read-write part; `bytes` is another
        // buffer. Only this thread touches the arena between ioctls (the simulator reads and
        // writes it with process_vm_readv/writev during them).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.as_ptr().add(off), n) };
    }

    /// A copy of `n` bytes at `off` (clipped to the arena).
    pub fn read(&self, off: usize, n: usize) -> Vec<u8> {
        let off = off % ARENA_LEN;
        let n = n.min(ARENA_LEN - off);
        let mut v = vec![0; n];
        // SAFETY: as in `write`.
        unsafe { std::ptr::copy_nonoverlapping(self.base.as_ptr().add(off), v.as_mut_ptr(), n) };
        v
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: our mapping, unmapped once.
        let _ = unsafe { munmap(self.base.as_ptr().cast(), ARENA_LEN + PAGE) };
    }
}

/// File descriptors the fuzzer owns: some of every kind an ioctl may be handed (a pipe, an
/// eventfd, a memfd, /dev/null) plus every fd the device returned, closed at the end.
#[derive(Debug)]
pub struct Fds {
    fds: Vec<OwnedFd>,
}

/// Fds kept at most (returned ones beyond are closed at once).
const MAX_FDS: usize = 64;

impl Fds {
    pub fn new() -> Fds {
        let (r, w) = rustix::pipe::pipe().expect("pipe");
        let ev = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).expect("eventfd");
        let mem =
            rustix::fs::memfd_create("agx-fuzz", rustix::fs::MemfdFlags::CLOEXEC).expect("memfd");
        let null = rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .expect("/dev/null");
        Fds {
            fds: vec![r, w, ev, mem, null],
        }
    }

    /// An fd number from a fuzzed value: negative stays as it is (the kernel's `EBADF`),
    /// anything else names one of ours.
    pub fn pick(&self, v: i32) -> RawFd {
        if v < 0 {
            v
        } else {
            self.fds[v as usize % self.fds.len()].as_raw_fd()
        }
    }

    /// One of ours, borrowed.
    pub fn get(&self, v: u8) -> BorrowedFd<'_> {
        self.fds[v as usize % self.fds.len()].as_fd()
    }

    /// Takes ownership of an fd the device just returned (closed when the input ends).
    pub fn adopt(&mut self, raw: RawFd) {
        if raw < 0 || self.fds.iter().any(|f| f.as_raw_fd() == raw) {
            return;
        }
        // SAFETY: `raw` was just created by the simulator for this caller and handed to us in
        // an ioctl result; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        if self.fds.len() < MAX_FDS {
            self.fds.push(fd);
        }
    }
}

impl Default for Fds {
    fn default() -> Self {
        Self::new()
    }
}
