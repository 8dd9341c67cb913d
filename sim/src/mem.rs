//! Backing memory of GEM objects: a memfd per BO, mapped once into the simulator for the GPU's
//! accesses and again for each CPU mapping userspace asks for (both see the same pages, as a
//! GPU and a CPU share system memory on Apple silicon).
#![allow(unsafe_code)]

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
use rustix::io::Errno;
use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};

/// One shared mapping of a memfd, unmapped on drop.
///
/// # Invariants
/// `ptr` is the start of a live `MAP_SHARED` read/write mapping of `len` bytes that only this
/// value unmaps.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; nothing in it is tied to a thread.
unsafe impl Send for Mapping {}
// SAFETY: all accesses go through raw-pointer copies below; concurrent CPU and GPU accesses to
// shared memory are the model's intent (as with any shared memory between two agents).
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of the memory file `fd` from byte `offset`, read-write and shared:
    /// anywhere, or with `MAP_FIXED` at `at` (the device server's clients map BO memfds this
    /// way).
    pub fn of_fd(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: usize,
        at: Option<NonNull<u8>>,
    ) -> Result<Mapping, Errno> {
        Mapping::new(fd, offset, len, at)
    }

    fn new(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: usize,
        at: Option<NonNull<u8>>,
    ) -> Result<Mapping, Errno> {
        let (hint, fixed) = match at {
            Some(p) => (p.as_ptr().cast(), MapFlags::FIXED),
            None => (std::ptr::null_mut(), MapFlags::empty()),
        };
        // SAFETY: without `at`, a fresh mapping chosen by the kernel aliases no Rust object.
        // With `at`, whoever asked for the fixed address (the userspace side of `mmap`, e.g.
        // `Bo::map_fixed` in the winsys, whose callers promise it) owns that range and keeps
        // no Rust object in it: `MAP_FIXED` replaces it as it would on a render node.
        let ptr = unsafe {
            mmap(
                hint,
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED | fixed,
                fd,
                offset,
            )?
        };
        Ok(Mapping {
            ptr: NonNull::new(ptr.cast()).ok_or(Errno::NOMEM)?,
            len,
        })
    }

    /// Start of the mapping in this process.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never, for a BO).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies out `dst.len()` bytes at `offset`. The caller has bounds-checked the range.
    pub fn read(&self, offset: usize, dst: &mut [u8]) {
        assert!(offset
            .checked_add(dst.len())
            .is_some_and(|end| end <= self.len));
        // SAFETY: the range is inside the live mapping (checked above); `dst` is a distinct
        // Rust buffer, so the two do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(self.as_ptr().add(offset), dst.as_mut_ptr(), dst.len())
        }
    }

    /// Copies `src` in at `offset`.
    pub fn write(&self, offset: usize, src: &[u8]) {
        assert!(offset
            .checked_add(src.len())
            .is_some_and(|end| end <= self.len));
        // SAFETY: as in `read`, with the copy going the other way.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.as_ptr().add(offset), src.len()) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: by the invariant, the mapping is live and ours alone to unmap.
        let _ = unsafe { munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// The pages of one GEM object.
#[derive(Debug)]
pub struct Memory {
    fd: OwnedFd,
    map: Mapping,
}

impl Memory {
    /// Allocates `size` zeroed bytes (sparse until touched).
    pub fn new(size: u64) -> Result<Memory, Errno> {
        let len = usize::try_from(size).map_err(|_| Errno::NOMEM)?;
        let fd = memfd_create("agx-sim-bo", MemfdFlags::CLOEXEC)?;
        ftruncate(&fd, size)?;
        let map = Mapping::new(fd.as_fd(), 0, len, None)?;
        Ok(Memory { fd, map })
    }

    /// The simulator's own (GPU-side) mapping.
    pub fn gpu(&self) -> &Mapping {
        &self.map
    }

    /// A new CPU mapping of `len` bytes from byte `offset`, for userspace: anywhere, or at
    /// `at` with `MAP_FIXED`.
    pub fn map_cpu(
        &self,
        offset: u64,
        len: usize,
        at: Option<NonNull<u8>>,
    ) -> Result<Mapping, Errno> {
        Mapping::new(self.fd.as_fd(), offset, len, at)
    }

    /// The memfd, for dma-buf export.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_and_cpu_mappings_share_pages() {
        let mem = Memory::new(65536).unwrap();
        let cpu = mem.map_cpu(0, 65536, None).unwrap();
        mem.gpu().write(100, &[1, 2, 3]);
        let mut out = [0u8; 3];
        cpu.read(100, &mut out);
        assert_eq!(out, [1, 2, 3]);
        cpu.write(65535, &[7]);
        let mut one = [0u8];
        mem.gpu().read(65535, &mut one);
        assert_eq!(one, [7]);
    }
}
