//! GEM buffer objects.
//!
//! A BO is memory plus identity: handles in files, bindings in VMs and dma-buf fds all hold a
//! reference, and the pages live until the last one goes (as GEM refcounting does).

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use agx_uapi::dma_buf::*;
use agx_uapi::ioctl::ioc_type;
use rustix::io::Errno;

use crate::mem::{Mapping, Memory};
use crate::sync::fence::{lock, unwrap, Fence};
use crate::sync::sync_file;
use crate::uaccess::Caller;

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
    /// The reservation object of an exported BO (`dma_resv`): fences userspace imported with
    /// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE` (the asahi driver adds none itself: it has no BO lists).
    resv: Mutex<Vec<Reserved>>,
}

/// One fence of a BO's reservation.
#[derive(Debug)]
struct Reserved {
    fence: Arc<Fence>,
    /// `DMA_RESV_USAGE_WRITE` (else `READ`).
    write: bool,
}

impl Bo {
    pub fn new(size: u64, flags: u32, vm_private: Option<u64>) -> Result<Bo, Errno> {
        Ok(Bo {
            id: NEXT_BO_ID.fetch_add(1, Ordering::Relaxed),
            size,
            flags,
            vm_private,
            mem: Memory::new(size)?,
            resv: Mutex::new(Vec::new()),
        })
    }

    /// The fake offset userspace passes to mmap (`GEM_MMAP_OFFSET`).
    pub fn mmap_offset(&self) -> u64 {
        self.id << 32
    }

    /// The memory file holding the pages.
    pub fn memfd(&self) -> BorrowedFd<'_> {
        self.mem.fd()
    }

    /// The GPU-side view of the pages.
    pub fn gpu(&self) -> &Mapping {
        self.mem.gpu()
    }

    /// A CPU mapping for userspace, anywhere or at `at` (`MAP_FIXED`).
    pub fn map_cpu(
        &self,
        offset: u64,
        len: usize,
        at: Option<std::ptr::NonNull<u8>>,
    ) -> Result<Mapping, Errno> {
        self.mem.map_cpu(offset, len, at)
    }

    /// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE`: a reader waits for the writers, a writer for
    /// everyone (`dma_resv_usage_rw`); with nothing to wait for, a signalled stub.
    fn export_sync_file(
        &self,
        caller: &dyn Caller,
        arg: &mut dma_buf_export_sync_file,
    ) -> Result<(), Errno> {
        let flags = u64::from(arg.flags);
        if flags & !DMA_BUF_SYNC_RW != 0 || flags & DMA_BUF_SYNC_RW == 0 {
            return Err(Errno::INVAL);
        }
        let all = flags & DMA_BUF_SYNC_WRITE != 0;
        let fences: Vec<Arc<Fence>> = {
            let mut resv = lock(&self.resv);
            resv.retain(|r| !r.fence.is_signaled());
            resv.iter()
                .filter(|r| all || r.write)
                .map(|r| r.fence.clone())
                .collect()
        };
        let fences = if fences.is_empty() {
            vec![Fence::signaled()]
        } else {
            fences
        };
        arg.fd = caller.fd_install(sync_file::export(fences)?)?;
        Ok(())
    }

    /// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE`: the sync_file's fences join the reservation, as
    /// writers with `DMA_BUF_SYNC_WRITE`, else as readers.
    fn import_sync_file(
        &self,
        caller: &dyn Caller,
        arg: &dma_buf_import_sync_file,
    ) -> Result<(), Errno> {
        let flags = u64::from(arg.flags);
        if flags & !DMA_BUF_SYNC_RW != 0 || flags & DMA_BUF_SYNC_RW == 0 {
            return Err(Errno::INVAL);
        }
        let fence = sync_file::lookup_fence(caller.fdget(arg.fd)?)?;
        let write = flags & DMA_BUF_SYNC_WRITE != 0;
        let mut resv = lock(&self.resv);
        resv.retain(|r| !r.fence.is_signaled());
        resv.extend(
            unwrap(&fence)
                .into_iter()
                .map(|fence| Reserved { fence, write }),
        );
        Ok(())
    }
}

/// The ioctls of an exported dma-buf fd (`dma_buf_ioctl`) made by `caller`. `ENOTTY` for other
/// commands and for fds that are not our dma-bufs.
pub fn dmabuf_ioctl(
    caller: &dyn Caller,
    fd: BorrowedFd<'_>,
    cmd: u32,
    arg: &mut [u8],
) -> Result<(), Errno> {
    if ioc_type(cmd) != DMA_BUF_BASE {
        return Err(Errno::NOTTY);
    }
    let bo = import_dmabuf(fd).map_err(|_| Errno::NOTTY)?;
    match cmd {
        DMA_BUF_IOCTL_SYNC => {
            // CPU access brackets: the simulated GPU shares coherent memory with the CPU, so
            // there is nothing to flush; only the flags are checked, as Linux does.
            let a: dma_buf_sync = bytemuck::pod_read_unaligned(arg);
            if a.flags & !DMA_BUF_SYNC_VALID_FLAGS_MASK != 0 || a.flags & DMA_BUF_SYNC_RW == 0 {
                return Err(Errno::INVAL);
            }
            Ok(())
        }
        DMA_BUF_IOCTL_EXPORT_SYNC_FILE => {
            let mut a: dma_buf_export_sync_file = bytemuck::pod_read_unaligned(arg);
            bo.export_sync_file(caller, &mut a)?;
            arg.copy_from_slice(bytemuck::bytes_of(&a));
            Ok(())
        }
        DMA_BUF_IOCTL_IMPORT_SYNC_FILE => {
            bo.import_sync_file(caller, &bytemuck::pod_read_unaligned(arg))
        }
        _ => Err(Errno::NOTTY),
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
