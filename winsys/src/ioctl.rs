//! One safe function per ioctl the winsys issues, drm-ffi style: each fills every field of the
//! kernel struct (reserved ones zero), makes the single call through the [`KernelFile`]
//! boundary, and returns the outputs. Nothing here keeps state.

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};

use agx_uapi::asahi::*;
use agx_uapi::drm::*;
use agx_uapi::fault_ext as ext;
use agx_uapi::sync_file::*;
use bytemuck::Pod;
use rustix::io::Errno;

use crate::error::{kernel, Result};
use crate::kernel::KernelFile;

fn io<T: Pod>(k: &dyn KernelFile, cmd: u32, name: &'static str, arg: &mut T) -> Result<()> {
    debug_assert_eq!(
        core::mem::size_of::<T>(),
        agx_uapi::ioctl::ioc_size(cmd),
        "{name}"
    );
    k.ioctl(cmd, bytemuck::bytes_of_mut(arg))
        .map_err(kernel(name))
}

fn ptr<T>(v: &[T]) -> u64 {
    if v.is_empty() {
        0
    } else {
        v.as_ptr() as u64
    }
}

fn owned_fd(fd: i32) -> OwnedFd {
    // An fd the kernel just installed for us: we are its only owner.
    #[allow(unsafe_code)]
    // SAFETY: the ioctl succeeded, so `fd` is a new open descriptor that nothing else owns.
    unsafe {
        OwnedFd::from_raw_fd(fd)
    }
}

/// `DRM_IOCTL_ASAHI_GET_PARAMS` into `out` (at most `size_of::<T>()` bytes are written).
/// `DRM_IOCTL_VERSION`: the DRM driver name (the length first, then the string, as
/// `drmGetVersion` asks).
pub fn driver_name(k: &dyn KernelFile) -> Result<String> {
    let mut a = drm_version::default();
    io(k, DRM_IOCTL_VERSION, "VERSION", &mut a)?;
    let mut name = vec![0u8; a.name_len.min(256) as usize];
    let mut a = drm_version {
        name_len: name.len() as u64,
        name: name.as_mut_ptr() as u64,
        ..Default::default()
    };
    io(k, DRM_IOCTL_VERSION, "VERSION", &mut a)?;
    name.truncate(a.name_len.min(name.len() as u64) as usize);
    Ok(String::from_utf8_lossy(&name).into_owned())
}

pub fn get_params<T: Pod>(k: &dyn KernelFile, group: u32, out: &mut T) -> Result<()> {
    let bytes = bytemuck::bytes_of_mut(out);
    let mut a = drm_asahi_get_params {
        param_group: group,
        pad: 0,
        pointer: bytes.as_mut_ptr() as u64,
        size: bytes.len() as u64,
    };
    io(k, DRM_IOCTL_ASAHI_GET_PARAMS, "GET_PARAMS", &mut a)
}

/// `DRM_IOCTL_ASAHI_GET_TIME`: GPU time in ns.
pub fn get_time(k: &dyn KernelFile) -> Result<u64> {
    let mut a = drm_asahi_get_time::default();
    io(k, DRM_IOCTL_ASAHI_GET_TIME, "GET_TIME", &mut a)?;
    Ok(a.gpu_timestamp)
}

/// `DRM_IOCTL_ASAHI_VM_CREATE`.
pub fn vm_create(k: &dyn KernelFile, kernel_start: u64, kernel_end: u64) -> Result<u32> {
    let mut a = drm_asahi_vm_create {
        kernel_start,
        kernel_end,
        vm_id: 0,
        pad: 0,
    };
    io(k, DRM_IOCTL_ASAHI_VM_CREATE, "VM_CREATE", &mut a)?;
    Ok(a.vm_id)
}

/// `DRM_IOCTL_ASAHI_VM_DESTROY`.
pub fn vm_destroy(k: &dyn KernelFile, vm_id: u32) -> Result<()> {
    io(
        k,
        DRM_IOCTL_ASAHI_VM_DESTROY,
        "VM_DESTROY",
        &mut drm_asahi_vm_destroy { vm_id, pad: 0 },
    )
}

/// `DRM_IOCTL_ASAHI_VM_BIND` of `ops`.
pub fn vm_bind(k: &dyn KernelFile, vm_id: u32, ops: &[drm_asahi_gem_bind_op]) -> Result<()> {
    let mut a = drm_asahi_vm_bind {
        vm_id,
        num_binds: ops.len() as u32,
        stride: core::mem::size_of::<drm_asahi_gem_bind_op>() as u32,
        pad: 0,
        userptr: ptr(ops),
    };
    io(k, DRM_IOCTL_ASAHI_VM_BIND, "VM_BIND", &mut a)
}

/// `DRM_IOCTL_ASAHI_GEM_CREATE`.
pub fn gem_create(k: &dyn KernelFile, size: u64, flags: u32, vm_id: u32) -> Result<u32> {
    let mut a = drm_asahi_gem_create {
        size,
        flags,
        vm_id,
        handle: 0,
        pad: 0,
    };
    io(k, DRM_IOCTL_ASAHI_GEM_CREATE, "GEM_CREATE", &mut a)?;
    Ok(a.handle)
}

/// `DRM_IOCTL_ASAHI_GEM_MMAP_OFFSET`.
pub fn gem_mmap_offset(k: &dyn KernelFile, handle: u32) -> Result<u64> {
    let mut a = drm_asahi_gem_mmap_offset {
        handle,
        flags: 0,
        offset: 0,
    };
    io(
        k,
        DRM_IOCTL_ASAHI_GEM_MMAP_OFFSET,
        "GEM_MMAP_OFFSET",
        &mut a,
    )?;
    Ok(a.offset)
}

/// `DRM_IOCTL_ASAHI_GEM_BIND_OBJECT` (bind as a timestamp buffer): the object handle.
pub fn gem_bind_timestamps(
    k: &dyn KernelFile,
    handle: u32,
    offset: u64,
    range: u64,
) -> Result<u32> {
    let mut a = drm_asahi_gem_bind_object {
        op: DRM_ASAHI_BIND_OBJECT_OP_BIND,
        flags: DRM_ASAHI_BIND_OBJECT_USAGE_TIMESTAMPS,
        handle,
        vm_id: 0,
        offset,
        range,
        object_handle: 0,
        pad: 0,
    };
    io(
        k,
        DRM_IOCTL_ASAHI_GEM_BIND_OBJECT,
        "GEM_BIND_OBJECT",
        &mut a,
    )?;
    Ok(a.object_handle)
}

/// `DRM_IOCTL_ASAHI_GEM_BIND_OBJECT` (unbind).
pub fn gem_unbind_object(k: &dyn KernelFile, object_handle: u32) -> Result<()> {
    let mut a = drm_asahi_gem_bind_object {
        op: DRM_ASAHI_BIND_OBJECT_OP_UNBIND,
        object_handle,
        ..Default::default()
    };
    io(
        k,
        DRM_IOCTL_ASAHI_GEM_BIND_OBJECT,
        "GEM_BIND_OBJECT",
        &mut a,
    )
}

/// `DRM_IOCTL_GEM_CLOSE`.
pub fn gem_close(k: &dyn KernelFile, handle: u32) -> Result<()> {
    io(
        k,
        DRM_IOCTL_GEM_CLOSE,
        "GEM_CLOSE",
        &mut drm_gem_close { handle, pad: 0 },
    )
}

/// `DRM_IOCTL_PRIME_HANDLE_TO_FD`: a dma-buf fd.
pub fn prime_handle_to_fd(k: &dyn KernelFile, handle: u32) -> Result<OwnedFd> {
    let mut a = drm_prime_handle {
        handle,
        flags: DRM_CLOEXEC | DRM_RDWR,
        fd: -1,
    };
    io(
        k,
        DRM_IOCTL_PRIME_HANDLE_TO_FD,
        "PRIME_HANDLE_TO_FD",
        &mut a,
    )?;
    Ok(owned_fd(a.fd))
}

/// `DRM_IOCTL_PRIME_FD_TO_HANDLE`.
pub fn prime_fd_to_handle(k: &dyn KernelFile, fd: BorrowedFd<'_>) -> Result<u32> {
    use std::os::fd::AsRawFd;
    let mut a = drm_prime_handle {
        handle: 0,
        flags: 0,
        fd: fd.as_raw_fd(),
    };
    io(
        k,
        DRM_IOCTL_PRIME_FD_TO_HANDLE,
        "PRIME_FD_TO_HANDLE",
        &mut a,
    )?;
    Ok(a.handle)
}

/// `DRM_IOCTL_ASAHI_QUEUE_CREATE`.
pub fn queue_create(
    k: &dyn KernelFile,
    vm_id: u32,
    priority: u32,
    usc_exec_base: u64,
) -> Result<u32> {
    let mut a = drm_asahi_queue_create {
        flags: 0,
        vm_id,
        priority,
        queue_id: 0,
        usc_exec_base,
    };
    io(k, DRM_IOCTL_ASAHI_QUEUE_CREATE, "QUEUE_CREATE", &mut a)?;
    Ok(a.queue_id)
}

/// `DRM_IOCTL_ASAHI_QUEUE_DESTROY`.
pub fn queue_destroy(k: &dyn KernelFile, queue_id: u32) -> Result<()> {
    io(
        k,
        DRM_IOCTL_ASAHI_QUEUE_DESTROY,
        "QUEUE_DESTROY",
        &mut drm_asahi_queue_destroy { queue_id, pad: 0 },
    )
}

/// `DRM_IOCTL_ASAHI_SUBMIT`.
pub fn submit(
    k: &dyn KernelFile,
    queue_id: u32,
    syncs: &[drm_asahi_sync],
    in_count: usize,
    cmdbuf: &[u8],
) -> Result<()> {
    let mut a = drm_asahi_submit {
        syncs: ptr(syncs),
        cmdbuf: ptr(cmdbuf),
        flags: 0,
        queue_id,
        in_sync_count: in_count as u32,
        out_sync_count: (syncs.len() - in_count) as u32,
        cmdbuf_size: cmdbuf.len() as u32,
        pad: 0,
    };
    io(k, DRM_IOCTL_ASAHI_SUBMIT, "SUBMIT", &mut a)
}

/// `DRM_IOCTL_ASAHI_EXT_QUEUE_GET_STATE` (fault-report extension).
pub fn queue_get_state(
    k: &dyn KernelFile,
    queue_id: u32,
) -> Result<ext::drm_asahi_ext_queue_get_state> {
    let mut a = ext::drm_asahi_ext_queue_get_state {
        queue_id,
        ..Default::default()
    };
    io(
        k,
        ext::DRM_IOCTL_ASAHI_EXT_QUEUE_GET_STATE,
        "QUEUE_GET_STATE",
        &mut a,
    )?;
    Ok(a)
}

/// `DRM_IOCTL_SYNCOBJ_CREATE`.
pub fn syncobj_create(k: &dyn KernelFile, signaled: bool) -> Result<u32> {
    let flags = if signaled {
        DRM_SYNCOBJ_CREATE_SIGNALED
    } else {
        0
    };
    let mut a = drm_syncobj_create { handle: 0, flags };
    io(k, DRM_IOCTL_SYNCOBJ_CREATE, "SYNCOBJ_CREATE", &mut a)?;
    Ok(a.handle)
}

/// `DRM_IOCTL_SYNCOBJ_DESTROY`.
pub fn syncobj_destroy(k: &dyn KernelFile, handle: u32) -> Result<()> {
    io(
        k,
        DRM_IOCTL_SYNCOBJ_DESTROY,
        "SYNCOBJ_DESTROY",
        &mut drm_syncobj_destroy { handle, pad: 0 },
    )
}

/// `DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT` (or `SYNCOBJ_WAIT` when `points` is `None`): the index of
/// the first signalled object. `ETIME` past the absolute `CLOCK_MONOTONIC` deadline.
pub fn syncobj_wait(
    k: &dyn KernelFile,
    handles: &[u32],
    points: Option<&[u64]>,
    deadline_ns: i64,
    flags: u32,
) -> Result<u32> {
    match points {
        None => {
            let mut a = drm_syncobj_wait {
                handles: ptr(handles),
                timeout_nsec: deadline_ns,
                count_handles: handles.len() as u32,
                flags,
                first_signaled: 0,
                pad: 0,
                deadline_nsec: 0,
            };
            io(k, DRM_IOCTL_SYNCOBJ_WAIT, "SYNCOBJ_WAIT", &mut a)?;
            Ok(a.first_signaled)
        }
        Some(points) => {
            let mut a = drm_syncobj_timeline_wait {
                handles: ptr(handles),
                points: ptr(points),
                timeout_nsec: deadline_ns,
                count_handles: handles.len() as u32,
                flags,
                first_signaled: 0,
                pad: 0,
                deadline_nsec: 0,
            };
            io(
                k,
                DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT,
                "SYNCOBJ_TIMELINE_WAIT",
                &mut a,
            )?;
            Ok(a.first_signaled)
        }
    }
}

/// `DRM_IOCTL_SYNCOBJ_RESET`.
pub fn syncobj_reset(k: &dyn KernelFile, handles: &[u32]) -> Result<()> {
    let mut a = drm_syncobj_array {
        handles: ptr(handles),
        count_handles: handles.len() as u32,
        pad: 0,
    };
    io(k, DRM_IOCTL_SYNCOBJ_RESET, "SYNCOBJ_RESET", &mut a)
}

/// `DRM_IOCTL_SYNCOBJ_SIGNAL` or, with points, `DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL`.
pub fn syncobj_signal(k: &dyn KernelFile, handles: &[u32], points: Option<&[u64]>) -> Result<()> {
    match points {
        None => {
            let mut a = drm_syncobj_array {
                handles: ptr(handles),
                count_handles: handles.len() as u32,
                pad: 0,
            };
            io(k, DRM_IOCTL_SYNCOBJ_SIGNAL, "SYNCOBJ_SIGNAL", &mut a)
        }
        Some(points) => {
            let mut a = drm_syncobj_timeline_array {
                handles: ptr(handles),
                points: ptr(points),
                count_handles: handles.len() as u32,
                flags: 0,
            };
            io(
                k,
                DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL,
                "SYNCOBJ_TIMELINE_SIGNAL",
                &mut a,
            )
        }
    }
}

/// `DRM_IOCTL_SYNCOBJ_QUERY`: current points into `out`.
pub fn syncobj_query(
    k: &dyn KernelFile,
    handles: &[u32],
    out: &mut [u64],
    flags: u32,
) -> Result<()> {
    if out.len() != handles.len() {
        return Err(crate::Error::InvalidArgument("query: one point per handle"));
    }
    let mut a = drm_syncobj_timeline_array {
        handles: ptr(handles),
        points: out.as_mut_ptr() as u64,
        count_handles: handles.len() as u32,
        flags,
    };
    io(k, DRM_IOCTL_SYNCOBJ_QUERY, "SYNCOBJ_QUERY", &mut a)
}

/// `DRM_IOCTL_SYNCOBJ_TRANSFER`.
pub fn syncobj_transfer(
    k: &dyn KernelFile,
    src: u32,
    src_point: u64,
    dst: u32,
    dst_point: u64,
    flags: u32,
) -> Result<()> {
    let mut a = drm_syncobj_transfer {
        src_handle: src,
        dst_handle: dst,
        src_point,
        dst_point,
        flags,
        pad: 0,
    };
    io(k, DRM_IOCTL_SYNCOBJ_TRANSFER, "SYNCOBJ_TRANSFER", &mut a)
}

/// `DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD` with `EXPORT_SYNC_FILE` (and `TIMELINE` for a point).
pub fn syncobj_export_sync_file(
    k: &dyn KernelFile,
    handle: u32,
    point: Option<u64>,
) -> Result<OwnedFd> {
    let mut flags = DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE;
    if point.is_some() {
        flags |= DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE;
    }
    let mut a = drm_syncobj_handle {
        handle,
        flags,
        fd: -1,
        pad: 0,
        point: point.unwrap_or(0),
    };
    io(
        k,
        DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD,
        "SYNCOBJ_HANDLE_TO_FD",
        &mut a,
    )?;
    Ok(owned_fd(a.fd))
}

/// `DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE` with `IMPORT_SYNC_FILE` into the existing `handle` (the
/// kernel requires it; drm-ffi's helper sends handle 0, which it rejects).
pub fn syncobj_import_sync_file(
    k: &dyn KernelFile,
    handle: u32,
    fd: BorrowedFd<'_>,
    point: Option<u64>,
) -> Result<()> {
    use std::os::fd::AsRawFd;
    let mut flags = DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE;
    if point.is_some() {
        flags |= DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_TIMELINE;
    }
    let mut a = drm_syncobj_handle {
        handle,
        flags,
        fd: fd.as_raw_fd(),
        pad: 0,
        point: point.unwrap_or(0),
    };
    io(
        k,
        DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE,
        "SYNCOBJ_FD_TO_HANDLE",
        &mut a,
    )
}

/// `SYNC_IOC_FILE_INFO` on a sync_file: its status (1 signalled, 0 pending, < 0 error).
///
/// The per-fence list is requested too: the file's own status is that of its top fence, and a
/// timeline point's fence (a `dma_fence_chain` link) never carries the error of the fence it
/// wraps; with the list, the kernel reports the first status <= 0 among the leaf fences.
pub fn sync_file_status(k: &dyn KernelFile, fd: BorrowedFd<'_>) -> Result<i32> {
    let mut a = sync_file_info::zeroed();
    k.fd_ioctl(fd, SYNC_IOC_FILE_INFO, bytemuck::bytes_of_mut(&mut a))
        .map_err(kernel("SYNC_IOC_FILE_INFO"))?;
    let n = a.num_fences as usize;
    if n == 0 {
        return Ok(a.status);
    }
    const INLINE: usize = 4;
    let mut inline = [sync_fence_info::zeroed(); INLINE];
    let mut heap;
    let infos: &mut [sync_fence_info] = if n <= INLINE {
        &mut inline[..n]
    } else {
        heap = vec![sync_fence_info::zeroed(); n];
        &mut heap
    };
    let mut b = sync_file_info::zeroed();
    b.num_fences = n as u32;
    b.sync_fence_info = infos.as_mut_ptr() as u64;
    k.fd_ioctl(fd, SYNC_IOC_FILE_INFO, bytemuck::bytes_of_mut(&mut b))
        .map_err(kernel("SYNC_IOC_FILE_INFO"))?;
    Ok(b.status)
}

/// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` on a dma-buf: a sync_file of its reservation's fences
/// that `flags` (`DMA_BUF_SYNC_READ`/`WRITE`) must wait for.
pub fn dma_buf_export_sync_file(
    k: &dyn KernelFile,
    dmabuf: BorrowedFd<'_>,
    flags: u32,
) -> Result<OwnedFd> {
    use agx_uapi::dma_buf::*;
    let mut a = dma_buf_export_sync_file { flags, fd: -1 };
    k.fd_ioctl(
        dmabuf,
        DMA_BUF_IOCTL_EXPORT_SYNC_FILE,
        bytemuck::bytes_of_mut(&mut a),
    )
    .map_err(kernel("DMA_BUF_IOCTL_EXPORT_SYNC_FILE"))?;
    Ok(owned_fd(a.fd))
}

/// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE` on a dma-buf: adds `sync_file`'s fences to its
/// reservation, as a writer's with `DMA_BUF_SYNC_WRITE`, else as a reader's.
pub fn dma_buf_import_sync_file(
    k: &dyn KernelFile,
    dmabuf: BorrowedFd<'_>,
    sync_file: BorrowedFd<'_>,
    flags: u32,
) -> Result<()> {
    use agx_uapi::dma_buf::*;
    use std::os::fd::AsRawFd;
    let mut a = dma_buf_import_sync_file {
        flags,
        fd: sync_file.as_raw_fd(),
    };
    k.fd_ioctl(
        dmabuf,
        DMA_BUF_IOCTL_IMPORT_SYNC_FILE,
        bytemuck::bytes_of_mut(&mut a),
    )
    .map_err(kernel("DMA_BUF_IOCTL_IMPORT_SYNC_FILE"))
}

/// Is `e` the errno of a kernel that lacks an ioctl or parameter group?
pub fn is_unsupported(e: &crate::Error) -> bool {
    matches!(e, crate::Error::Kernel { errno, .. } if *errno == Errno::INVAL || *errno == Errno::NOTTY || *errno == Errno::OPNOTSUPP)
}

use bytemuck::Zeroable;
