//! GEM buffer objects.
//!
//! A BO is memory plus identity: handles in files, bindings in VMs and dma-buf fds all hold a
//! reference, and the pages live until the last one goes (as GEM refcounting does).

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use rustix::io::Errno;

use crate::mem::{Mapping, Memory};

static NEXT_BO_ID: AtomicU64 = AtomicU64::new(1);

/// One GEM object.
#[derive(Debug)]
pub struct Bo {
    /// Process-unique id; also gives the fake mmap offset.
    pub id: u64,
    pub size: u64,
    /// `DRM_ASAHI_GEM_*` creation flags.
    pub flags: u32,
    /// The VM a `DRM_ASAHI_GEM_VM_PRIVATE` BO belongs to (global VM id).
    pub vm_private: Option<u64>,
    mem: Memory,
}

impl Bo {
    pub fn new(size: u64, flags: u32, vm_private: Option<u64>) -> Result<Bo, Errno> {
        Ok(Bo {
            id: NEXT_BO_ID.fetch_add(1, Ordering::Relaxed),
            size,
            flags,
            vm_private,
            mem: Memory::new(size)?,
        })
    }

    /// The fake offset userspace passes to mmap (`GEM_MMAP_OFFSET`).
    pub fn mmap_offset(&self) -> u64 {
        self.id << 32
    }

    /// The GPU-side view of the pages.
    pub fn gpu(&self) -> &Mapping {
        self.mem.gpu()
    }

    /// A CPU mapping for userspace.
    pub fn map_cpu(&self, offset: u64, len: usize) -> Result<Mapping, Errno> {
        self.mem.map_cpu(offset, len)
    }
}

/// dma-buf export: the fd is a dup of the BO's memfd, remembered so an import finds the BO.
pub fn export_dmabuf(bo: &Arc<Bo>) -> Result<OwnedFd, Errno> {
    let fd = rustix::io::fcntl_dupfd_cloexec(bo.mem.fd(), 3)?;
    let key = inode(fd.as_fd())?;
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    reg.retain(|_, w| w.strong_count() > 0);
    reg.insert(key, Arc::downgrade(bo));
    Ok(fd)
}

/// dma-buf import: the BO behind an fd from [`export_dmabuf`]; `EINVAL` for any other fd.
pub fn import_dmabuf(fd: BorrowedFd<'_>) -> Result<Arc<Bo>, Errno> {
    let key = inode(fd)?;
    let reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    reg.get(&key).and_then(Weak::upgrade).ok_or(Errno::INVAL)
}

fn inode(fd: BorrowedFd<'_>) -> Result<(u64, u64), Errno> {
    let st = rustix::fs::fstat(fd).map_err(|_| Errno::BADF)?;
    Ok((st.st_dev, st.st_ino))
}

/// Exported BOs by the (device, inode) of their memfd.
type Registry = Mutex<HashMap<(u64, u64), Weak<Bo>>>;

fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(Default::default)
}
