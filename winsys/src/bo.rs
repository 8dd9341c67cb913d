//! Buffer objects: creation, a lazy CPU mapping made once, dma-buf export and import.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, OnceLock};

use agx_uapi::asahi::{DRM_ASAHI_GEM_VM_PRIVATE, DRM_ASAHI_GEM_WRITEBACK};
use bitflags::bitflags;

use crate::error::{Error, Result};
use crate::ioctl;
use crate::kernel::CpuMapping;
use crate::vm::{Vm, PAGE_SIZE};
use crate::Device;

bitflags! {
    /// Creation flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct BoFlags: u32 {
        /// CPU-map write-back (cached) instead of write-combined.
        const WRITEBACK = DRM_ASAHI_GEM_WRITEBACK;
    }
}

#[derive(Debug)]
pub(crate) struct BoInner {
    pub(crate) dev: Device,
    pub(crate) handle: u32,
    size: u64,
    pub(crate) vm_private: Option<u32>,
    map: OnceLock<CpuMapping>,
}

impl Drop for BoInner {
    fn drop(&mut self) {
        // Unmapped first (the OnceLock drops after this body), then the handle goes.
        let _ = ioctl::gem_close(self.dev.kernel(), self.handle);
    }
}

/// A GEM buffer object. Clones share the object; the handle closes with the last clone and
/// the last VM binding.
#[derive(Clone, Debug)]
pub struct Bo {
    pub(crate) inner: Arc<BoInner>,
}

impl Bo {
    /// Creates a BO of at least `size` bytes (rounded up to the 16 KiB page). With `private`,
    /// the BO can only be bound in that VM and never exported (cheaper for the kernel).
    pub fn new(dev: &Device, size: u64, flags: BoFlags, private: Option<&Vm>) -> Result<Bo> {
        if size == 0 {
            return Err(Error::InvalidArgument("BO size 0"));
        }
        let size = size
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(Error::InvalidArgument("BO size"))?;
        let (gflags, vm_id) = match private {
            Some(vm) => {
                if !vm.device().same(dev) {
                    return Err(Error::InvalidArgument("VM of another device"));
                }
                (flags.bits() | DRM_ASAHI_GEM_VM_PRIVATE, vm.id())
            }
            None => (flags.bits(), 0),
        };
        let handle = ioctl::gem_create(dev.kernel(), size, gflags, vm_id)?;
        let inner = Arc::new(BoInner {
            dev: dev.clone(),
            handle,
            size,
            vm_private: private.map(|v| v.id()),
            map: OnceLock::new(),
        });
        dev.inner
            .bo_handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(handle, Arc::downgrade(&inner));
        Ok(Bo { inner })
    }

    pub fn handle(&self) -> u32 {
        self.inner.handle
    }

    pub fn size(&self) -> u64 {
        self.inner.size
    }

    /// The CPU mapping, made on first use and kept until the BO goes.
    pub fn map(&self) -> Result<&CpuMapping> {
        if let Some(m) = self.inner.map.get() {
            return Ok(m);
        }
        let m = self.map_new(None)?;
        // A racing thread may have mapped it first: keep one, drop the other.
        Ok(self.inner.map.get_or_init(|| m))
    }

    /// Makes the BO's CPU mapping (the one [`Bo::map`] returns from then on) at `addr`, with
    /// `MAP_FIXED`, as Mesa places some maps. `addr` must be page-aligned. Fails with
    /// [`Error::AlreadyMapped`] if the BO is mapped already (a BO has one mapping). The range
    /// is unmapped when the BO goes, leaving a hole the caller may reserve again.
    ///
    /// # Safety
    ///
    /// `[addr, addr + size)` belongs to the caller (typically a `PROT_NONE` reservation) and
    /// holds no Rust object or other live mapping anyone relies on: it is replaced.
    #[allow(unsafe_code)]
    pub unsafe fn map_fixed(&self, addr: std::ptr::NonNull<u8>) -> Result<&CpuMapping> {
        if addr.as_ptr() as usize % rustix::param::page_size() != 0 {
            return Err(Error::InvalidArgument("fixed map address not page-aligned"));
        }
        if self.inner.map.get().is_some() {
            return Err(Error::AlreadyMapped);
        }
        let m = self.map_new(Some(addr))?;
        let mut fresh = Some(m);
        let kept = self.inner.map.get_or_init(|| fresh.take().expect("once"));
        if fresh.is_some() {
            // Lost a race with another map: our fixed mapping is dropped (unmapped) here.
            return Err(Error::AlreadyMapped);
        }
        Ok(kept)
    }

    fn map_new(&self, at: Option<std::ptr::NonNull<u8>>) -> Result<CpuMapping> {
        let k = self.inner.dev.kernel();
        let offset = ioctl::gem_mmap_offset(k, self.inner.handle)?;
        k.map(offset, self.inner.size as usize, at)
            .map_err(crate::error::kernel("mmap"))
    }

    /// Copies `dst.len()` bytes out from `offset`.
    pub fn read(&self, offset: u64, dst: &mut [u8]) -> Result<()> {
        self.map()?
            .read(offset as usize, dst)
            .map_err(|_| Error::InvalidArgument("read outside the BO"))
    }

    /// Copies `src` in at `offset`.
    pub fn write(&self, offset: u64, src: &[u8]) -> Result<()> {
        self.map()?
            .write(offset as usize, src)
            .map_err(|_| Error::InvalidArgument("write outside the BO"))
    }

    /// Exports the BO as a dma-buf fd.
    pub fn export(&self) -> Result<OwnedFd> {
        if self.inner.vm_private.is_some() {
            return Err(Error::InvalidArgument("VM-private BOs cannot be exported"));
        }
        ioctl::prime_handle_to_fd(self.inner.dev.kernel(), self.inner.handle)
    }

    /// Imports a dma-buf. The kernel gives one handle per object and file, so importing a
    /// buffer this device already has (made here, or imported before) returns that same object
    /// and the handle is closed once.
    pub fn import(dev: &Device, fd: BorrowedFd<'_>) -> Result<Bo> {
        let handle = ioctl::prime_fd_to_handle(dev.kernel(), fd)?;
        let mut imported = dev
            .inner
            .bo_handles
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        imported.retain(|_, w| w.strong_count() > 0);
        if let Some(inner) = imported.get(&handle).and_then(std::sync::Weak::upgrade) {
            return Ok(Bo { inner });
        }
        let size = rustix::fs::seek(fd.as_fd(), rustix::fs::SeekFrom::End(0))
            .map_err(crate::error::kernel("lseek"))?;
        let inner = Arc::new(BoInner {
            dev: dev.clone(),
            handle,
            size,
            vm_private: None,
            map: OnceLock::new(),
        });
        imported.insert(handle, Arc::downgrade(&inner));
        Ok(Bo { inner })
    }
}

/// Which side of implicit synchronisation a dma-buf sync_file is for
/// (`DMA_BUF_SYNC_READ`/`WRITE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaBufAccess {
    /// Reading: wait for the writers; as an import, a reader's fence.
    Read,
    /// Writing: wait for readers and writers; as an import, a writer's fence.
    Write,
    /// Both (`DMA_BUF_SYNC_RW`): as `Write`.
    ReadWrite,
}

impl DmaBufAccess {
    pub(crate) fn flags(self) -> u32 {
        use agx_uapi::dma_buf::{DMA_BUF_SYNC_READ, DMA_BUF_SYNC_RW, DMA_BUF_SYNC_WRITE};
        (match self {
            DmaBufAccess::Read => DMA_BUF_SYNC_READ,
            DmaBufAccess::Write => DMA_BUF_SYNC_WRITE,
            DmaBufAccess::ReadWrite => DMA_BUF_SYNC_RW,
        }) as u32
    }
}

/// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` on a dma-buf of `dev`: a sync_file of the fences `access`
/// must wait for (Mesa's implicit sync before using a shared buffer).
pub fn export_sync_file(
    dev: &Device,
    dmabuf: BorrowedFd<'_>,
    access: DmaBufAccess,
) -> Result<OwnedFd> {
    ioctl::dma_buf_export_sync_file(dev.kernel(), dmabuf, access.flags())
}

/// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE` on a dma-buf of `dev`: `sync_file`'s fences join the
/// buffer's reservation as `access` (Mesa's implicit sync after a job that used it).
pub fn import_sync_file(
    dev: &Device,
    dmabuf: BorrowedFd<'_>,
    sync_file: BorrowedFd<'_>,
    access: DmaBufAccess,
) -> Result<()> {
    ioctl::dma_buf_import_sync_file(dev.kernel(), dmabuf, sync_file, access.flags())
}
