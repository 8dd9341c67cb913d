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
        let k = self.inner.dev.kernel();
        let offset = ioctl::gem_mmap_offset(k, self.inner.handle)?;
        let m = k
            .map(offset, self.inner.size as usize)
            .map_err(crate::error::kernel("mmap"))?;
        // A racing thread may have mapped it first: keep one, drop the other.
        Ok(self.inner.map.get_or_init(|| m))
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
