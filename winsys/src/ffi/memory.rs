//! GPU VMs and buffer objects: create, CPU-map, bind with permissions, unbind, dma-buf.

use std::os::fd::IntoRawFd;
use std::os::raw::{c_int, c_void};
use std::ptr::NonNull;

use super::device::agx_ws_device;
use super::guard::{borrow_fd, call, einval, out, FfiResult};
use super::handle::{self, lookup, lookup_opt};
use crate::bo::DmaBufAccess;
use crate::vm::{Access, VaClass};
use crate::{Bo, BoFlags, Vm};

/// A GPU address space. Queues and bindings keep it alive after the handle is destroyed.
pub struct agx_ws_vm {
    _opaque: [u8; 0],
}

/// A GEM buffer object. VM bindings keep the object (and its CPU mapping) alive after the handle
/// is destroyed, but C must not use a mapping pointer after destroying its BO handle.
pub struct agx_ws_bo {
    _opaque: [u8; 0],
}

/// Binding permission: the GPU may read.
pub const AGX_WS_ACCESS_READ: u32 = 1 << 0;
/// Binding permission: the GPU may write.
pub const AGX_WS_ACCESS_WRITE: u32 = 1 << 1;

/// `agx_ws_bo_create` flag: CPU mapping write-back (cached) instead of write-combined.
pub const AGX_WS_BO_WRITEBACK: u32 = 1 << 0;

/// Which side of implicit synchronisation a dma-buf sync_file is for (the values of
/// `DMA_BUF_SYNC_READ` / `DMA_BUF_SYNC_WRITE` / `DMA_BUF_SYNC_RW`).
#[repr(u32)]
pub enum agx_ws_dmabuf_access {
    /// Export: the fences a reader waits for (writers). Import: a reader's fence.
    AGX_WS_DMABUF_READ = 1,
    /// Export: the fences a writer waits for (everyone). Import: a writer's fence.
    AGX_WS_DMABUF_WRITE = 2,
    /// Both: as `AGX_WS_DMABUF_WRITE`.
    AGX_WS_DMABUF_READ_WRITE = 3,
}

fn dmabuf_access(v: u32) -> FfiResult<DmaBufAccess> {
    Ok(match v {
        1 => DmaBufAccess::Read,
        2 => DmaBufAccess::Write,
        3 => DmaBufAccess::ReadWrite,
        _ => return Err(einval("access is not an agx_ws_dmabuf_access")),
    })
}

/// Which VA window `agx_ws_vm_bind` allocates from.
#[repr(u32)]
pub enum agx_ws_va_class {
    /// General memory.
    AGX_WS_VA_GENERAL = 0,
    /// The 4 GiB USC (shader) window; bindings there must be read-only.
    AGX_WS_VA_SHADER = 1,
}

fn access(bits: u32) -> FfiResult<Access> {
    if bits & !(AGX_WS_ACCESS_READ | AGX_WS_ACCESS_WRITE) != 0 {
        return Err(einval("unknown AGX_WS_ACCESS_* bits"));
    }
    let mut a = Access::empty();
    if bits & AGX_WS_ACCESS_READ != 0 {
        a |= Access::READ;
    }
    if bits & AGX_WS_ACCESS_WRITE != 0 {
        a |= Access::WRITE;
    }
    if a.is_empty() {
        return Err(einval(
            "a binding needs AGX_WS_ACCESS_READ or AGX_WS_ACCESS_WRITE",
        ));
    }
    Ok(a)
}

/// Creates a VM with the standard layout (kernel carve-out, USC window, general memory).
///
/// # Safety
///
/// `out_vm` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_vm_create(
    device: *mut agx_ws_device,
    out_vm: *mut *mut agx_ws_vm,
) -> c_int {
    call("agx_ws_vm_create", || {
        // SAFETY: the caller's contract, forwarded.
        let out_vm = unsafe { out(out_vm, "out_vm") }?;
        let dev = lookup(device)?;
        let vm = Vm::new(&dev)?;
        out_vm.write(handle::register(vm));
        Ok(0)
    })
}

/// Wraps a VM the caller created on the same DRM file as `device` (a driver that lays out its
/// own address space, e.g. Mesa's `DRM_IOCTL_ASAHI_VM_CREATE` on the fd given to
/// `agx_ws_device_open_fd`), with the base of its USC (shader) window as the driver passes it in
/// `drm_asahi_queue_create::usc_exec_base`: queues can then be created on it. The VM stays the
/// caller's: destroying the wrapper never destroys it, and the library allocates no address in
/// it (`agx_ws_vm_bind` is `-EINVAL`; `agx_ws_vm_bind_at` at the caller's addresses works).
/// The id is not checked here: an unknown one fails `agx_ws_queue_create` (`-ENOENT`).
///
/// Errors: `-EINVAL` `usc_base` not 16 KiB aligned or `out_vm` NULL.
///
/// # Safety
///
/// `out_vm` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_vm_wrap(
    device: *mut agx_ws_device,
    vm_id: u32,
    usc_base: u64,
    out_vm: *mut *mut agx_ws_vm,
) -> c_int {
    call("agx_ws_vm_wrap", || {
        // SAFETY: the caller's contract, forwarded.
        let out_vm = unsafe { out(out_vm, "out_vm") }?;
        let dev = lookup(device)?;
        let vm = Vm::wrap(&dev, vm_id, usc_base)?;
        out_vm.write(handle::register(vm));
        Ok(0)
    })
}

/// The kernel's id of the VM (`drm_asahi_vm_create::vm_id`).
///
/// # Safety
///
/// `out_id` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_vm_get_id(vm: *mut agx_ws_vm, out_id: *mut u32) -> c_int {
    call("agx_ws_vm_get_id", || {
        // SAFETY: the caller's contract, forwarded.
        let out_id = unsafe { out(out_id, "out_id") }?;
        out_id.write(lookup(vm)?.id());
        Ok(0)
    })
}

/// Destroys the handle; the kernel VM goes when its queues are gone too.
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_vm_destroy(vm: *mut agx_ws_vm) -> c_int {
    call("agx_ws_vm_destroy", || handle::destroy(vm))
}

/// Binds all of `bo` at a newly allocated address of window `va_class` (an `agx_ws_va_class`)
/// with `access` (`AGX_WS_ACCESS_*` bits, at least one) and returns the address.
///
/// Errors: `-EINVAL` bad flags, a writable shader binding, a BO of another device or VM;
/// `-ENOSPC` no free VA; kernel errnos.
///
/// # Safety
///
/// `out_va` is NULL or valid for a write.
///
/// Thread safety: thread-safe (the VM serializes its bindings).
#[no_mangle]
pub unsafe extern "C" fn agx_ws_vm_bind(
    vm: *mut agx_ws_vm,
    bo: *mut agx_ws_bo,
    access_flags: u32,
    va_class: u32,
    out_va: *mut u64,
) -> c_int {
    call("agx_ws_vm_bind", || {
        // SAFETY: the caller's contract, forwarded.
        let out_va = unsafe { out(out_va, "out_va") }?;
        let vm = lookup(vm)?;
        let bo = lookup(bo)?;
        let class = match va_class {
            x if x == agx_ws_va_class::AGX_WS_VA_GENERAL as u32 => VaClass::General,
            x if x == agx_ws_va_class::AGX_WS_VA_SHADER as u32 => VaClass::Shader,
            _ => return Err(einval("va_class is not an agx_ws_va_class")),
        };
        out_va.write(vm.bind(&bo, access(access_flags)?, class)?);
        Ok(0)
    })
}

/// Binds `size` bytes of `bo` from `offset` at the caller-chosen address `va` (outside what
/// `agx_ws_vm_bind` allocated).
///
/// Errors: `-EINVAL` bad flags or an overlapping range; kernel errnos (e.g. misaligned).
///
/// # Safety
///
/// Always safe: handles are looked up, never dereferenced.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_vm_bind_at(
    vm: *mut agx_ws_vm,
    bo: *mut agx_ws_bo,
    offset: u64,
    size: u64,
    va: u64,
    access_flags: u32,
) -> c_int {
    call("agx_ws_vm_bind_at", || {
        let vm = lookup(vm)?;
        let bo = lookup(bo)?;
        vm.bind_at(&bo, offset, size, va, access(access_flags)?)?;
        Ok(0)
    })
}

/// Unbinds what was bound at `va`. A second unbind of the same address is `-ENOENT`.
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_vm_unbind(vm: *mut agx_ws_vm, va: u64) -> c_int {
    call("agx_ws_vm_unbind", || {
        lookup(vm)?.unbind(va)?;
        Ok(0)
    })
}

/// Creates a BO of at least `size` bytes (rounded up to the 16 KiB GPU page). `flags`:
/// `AGX_WS_BO_WRITEBACK`. With `private_vm` (may be NULL) the BO can only be bound in that VM
/// and never exported.
///
/// # Safety
///
/// `out_bo` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_bo_create(
    device: *mut agx_ws_device,
    size: u64,
    flags: u32,
    private_vm: *mut agx_ws_vm,
    out_bo: *mut *mut agx_ws_bo,
) -> c_int {
    call("agx_ws_bo_create", || {
        // SAFETY: the caller's contract, forwarded.
        let out_bo = unsafe { out(out_bo, "out_bo") }?;
        let dev = lookup(device)?;
        let vm = lookup_opt(private_vm)?;
        if flags & !AGX_WS_BO_WRITEBACK != 0 {
            return Err(einval("unknown AGX_WS_BO_* flags"));
        }
        let mut f = BoFlags::empty();
        if flags & AGX_WS_BO_WRITEBACK != 0 {
            f |= BoFlags::WRITEBACK;
        }
        let bo = Bo::new(&dev, size, f, vm.as_deref())?;
        out_bo.write(handle::register(bo));
        Ok(0)
    })
}

/// Destroys the handle (the object lives on while bound).
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced. Pointers from `agx_ws_bo_map`
/// must not be used afterwards.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_bo_destroy(bo: *mut agx_ws_bo) -> c_int {
    call("agx_ws_bo_destroy", || handle::destroy(bo))
}

/// Maps the BO for the CPU (once; later calls return the same mapping) and returns its address
/// and size. The mapping stays valid until the BO handle is destroyed.
///
/// # Safety
///
/// `out_ptr` and `out_size` are each NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_bo_map(
    bo: *mut agx_ws_bo,
    out_ptr: *mut *mut c_void,
    out_size: *mut u64,
) -> c_int {
    call("agx_ws_bo_map", || {
        // SAFETY: the caller's contract, forwarded.
        let out_ptr = unsafe { out(out_ptr, "out_ptr") }?;
        // SAFETY: the caller's contract, forwarded.
        let out_size = unsafe { out(out_size, "out_size") }?;
        let bo = lookup(bo)?;
        let m = bo.map()?;
        out_ptr.write(m.as_ptr().cast());
        out_size.write(m.len() as u64);
        Ok(0)
    })
}

/// Exports the BO as a dma-buf; the caller owns (and closes) the returned fd.
///
/// Errors: `-EINVAL` a VM-private BO; kernel errnos.
///
/// # Safety
///
/// `out_fd` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_bo_export(bo: *mut agx_ws_bo, out_fd: *mut c_int) -> c_int {
    call("agx_ws_bo_export", || {
        // SAFETY: the caller's contract, forwarded.
        let out_fd = unsafe { out(out_fd, "out_fd") }?;
        let fd = lookup(bo)?.export()?;
        out_fd.write(fd.into_raw_fd());
        Ok(0)
    })
}

/// Imports a dma-buf as a BO (the fd stays the caller's). Importing a buffer this device
/// already holds returns a new handle to the same object.
///
/// # Safety
///
/// `fd` is an open file descriptor for the duration of the call (any fd: a non-dma-buf is an
/// error, not undefined behaviour); `out_bo` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_bo_import(
    device: *mut agx_ws_device,
    fd: c_int,
    out_bo: *mut *mut agx_ws_bo,
) -> c_int {
    call("agx_ws_bo_import", || {
        // SAFETY: the caller's contract, forwarded.
        let out_bo = unsafe { out(out_bo, "out_bo") }?;
        let dev = lookup(device)?;
        // SAFETY: the caller guarantees fd is open for the duration of the call.
        let fd = unsafe { borrow_fd(fd) }?;
        let bo = Bo::import(&dev, fd)?;
        out_bo.write(handle::register(bo));
        Ok(0)
    })
}

/// Maps the BO for the CPU at `addr` with `MAP_FIXED` (Mesa places some maps itself); from then
/// on `agx_ws_bo_map` returns this mapping. The range is unmapped when the BO goes, leaving a
/// hole the caller may reserve again.
///
/// Errors: `-EINVAL` `addr` NULL or not page-aligned; `-EBUSY` the BO is already mapped (a BO
/// has one CPU mapping); kernel errnos of `mmap`.
///
/// # Safety
///
/// `[addr, addr + size of the BO)` belongs to the caller (typically reserved with a
/// `PROT_NONE` mapping) and nothing else relies on what is mapped there: it is replaced.
/// `out_ptr` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_bo_map_fixed(
    bo: *mut agx_ws_bo,
    addr: *mut c_void,
    out_ptr: *mut *mut c_void,
) -> c_int {
    call("agx_ws_bo_map_fixed", || {
        // SAFETY: the caller's contract, forwarded.
        let out_ptr = unsafe { out(out_ptr, "out_ptr") }?;
        let addr = NonNull::new(addr.cast::<u8>()).ok_or(einval("addr is NULL"))?;
        let bo = lookup(bo)?;
        // SAFETY: the caller owns the range and relies on nothing in it (this function's
        // contract), which is what `Bo::map_fixed` asks.
        let m = unsafe { bo.map_fixed(addr) }?;
        out_ptr.write(m.as_ptr().cast());
        Ok(0)
    })
}

/// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` on a dma-buf of `device` (`dmabuf_fd`, e.g. from
/// `agx_ws_bo_export` or Mesa's own prime fd): a sync_file of the fences an access
/// (`access`, an `agx_ws_dmabuf_access`) must wait for. The caller owns the returned fd. With
/// nothing to wait for, the sync_file is already signalled.
///
/// Errors: `-EINVAL` bad access or `out_fd` NULL; `-EBADF` negative fd; `-ENOTTY` not a
/// dma-buf; kernel errnos.
///
/// # Safety
///
/// `dmabuf_fd` is open for the duration of the call; `out_fd` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_dmabuf_export_sync_file(
    device: *mut agx_ws_device,
    dmabuf_fd: c_int,
    access: u32,
    out_fd: *mut c_int,
) -> c_int {
    call("agx_ws_dmabuf_export_sync_file", || {
        // SAFETY: the caller's contract, forwarded.
        let out_fd = unsafe { out(out_fd, "out_fd") }?;
        let dev = lookup(device)?;
        let access = dmabuf_access(access)?;
        // SAFETY: open for the call (the caller's contract).
        let dmabuf = unsafe { borrow_fd(dmabuf_fd) }?;
        let fd = crate::bo::export_sync_file(&dev, dmabuf, access)?;
        out_fd.write(fd.into_raw_fd());
        Ok(0)
    })
}

/// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE` on a dma-buf of `device`: the fences of `sync_file_fd`
/// (e.g. from `agx_ws_job_export_sync_file`) join the buffer's reservation as a reader's or a
/// writer's (`access`), so other users of the buffer wait for them. Both fds stay the
/// caller's.
///
/// Errors: `-EINVAL` bad access or `sync_file_fd` is not a sync_file; `-EBADF` negative fd;
/// `-ENOTTY` not a dma-buf; kernel errnos.
///
/// # Safety
///
/// Both fds are open for the duration of the call.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_dmabuf_import_sync_file(
    device: *mut agx_ws_device,
    dmabuf_fd: c_int,
    access: u32,
    sync_file_fd: c_int,
) -> c_int {
    call("agx_ws_dmabuf_import_sync_file", || {
        let dev = lookup(device)?;
        let access = dmabuf_access(access)?;
        // SAFETY: open for the call (the caller's contract).
        let dmabuf = unsafe { borrow_fd(dmabuf_fd) }?;
        // SAFETY: open for the call (the caller's contract).
        let sync_file = unsafe { borrow_fd(sync_file_fd) }?;
        crate::bo::import_sync_file(&dev, dmabuf, sync_file, access)?;
        Ok(0)
    })
}
