//! DRM sync objects: binary and timeline, waits with timeouts, sync_file export and import, and
//! the fence status (with its error) that `SYNCOBJ_WAIT` hides.

use std::os::fd::{AsFd, IntoRawFd};
use std::os::raw::c_int;
use std::sync::Arc;
use std::time::Duration;

use super::device::agx_ws_device;
use super::guard::{borrow_fd, call, einval, out, slice, FfiResult};
use super::handle::{self, lookup};
use crate::sync::{self as ws_sync, Deadline, FenceStatus, WaitFlags};
use crate::SyncObj;

/// A DRM sync object (binary, or a timeline when used with points).
pub struct agx_ws_syncobj {
    _opaque: [u8; 0],
}

/// A sync object and a timeline point (0: the object is used as binary).
#[repr(C)]
pub struct agx_ws_sync_point {
    pub syncobj: *mut agx_ws_syncobj,
    pub point: u64,
}

/// `agx_ws_syncobj_create` flag: created signalled.
pub const AGX_WS_SYNCOBJ_CREATE_SIGNALED: u32 = 1 << 0;

/// Wait flag: wait for a fence to be attached first (instead of failing with `-EINVAL`).
pub const AGX_WS_WAIT_FOR_SUBMIT: u32 = 1 << 0;
/// Wait flag: only wait for the fence to exist, not to signal.
pub const AGX_WS_WAIT_AVAILABLE: u32 = 1 << 1;
/// Wait flag (`agx_ws_syncobj_wait_many`): wait for all objects instead of any.
pub const AGX_WS_WAIT_ALL: u32 = 1 << 2;

/// `agx_ws_syncobj_query` flag: the last submitted point instead of the last signalled one.
pub const AGX_WS_QUERY_LAST_SUBMITTED: u32 = 1 << 0;

/// The value of `*out_status` when the fence has not signalled (or there is no fence yet).
pub const AGX_WS_FENCE_PENDING: i32 = 0;
/// The value of `*out_status` when the fence signalled without error; a negative value is the
/// errno the fence signalled with (`-EIO` fault, `-ETIMEDOUT` hang, `-ECANCELED` killed,
/// `-ENODEV` device gone), as `SYNC_IOC_FILE_INFO` reports it.
pub const AGX_WS_FENCE_SIGNALED: i32 = 1;

pub(crate) fn point(p: u64) -> Option<u64> {
    (p != 0).then_some(p)
}

pub(crate) fn deadline(timeout_ns: u64) -> Deadline {
    if timeout_ns == 0 {
        Deadline::NOW
    } else {
        Deadline::After(Duration::from_nanos(timeout_ns))
    }
}

fn wait_flags(flags: u32, allowed: u32) -> FfiResult<WaitFlags> {
    if flags & !allowed != 0 {
        return Err(einval("unknown AGX_WS_WAIT_* flags"));
    }
    Ok(WaitFlags {
        for_submit: flags & AGX_WS_WAIT_FOR_SUBMIT != 0,
        available: flags & AGX_WS_WAIT_AVAILABLE != 0,
    })
}

fn status_code(s: FenceStatus) -> i32 {
    match s {
        FenceStatus::Pending => AGX_WS_FENCE_PENDING,
        FenceStatus::Signaled => AGX_WS_FENCE_SIGNALED,
        FenceStatus::Error(e) => e.min(-1),
    }
}

/// Creates a sync object; `flags`: `AGX_WS_SYNCOBJ_CREATE_SIGNALED`.
///
/// # Safety
///
/// `out_syncobj` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_syncobj_create(
    device: *mut agx_ws_device,
    flags: u32,
    out_syncobj: *mut *mut agx_ws_syncobj,
) -> c_int {
    call("agx_ws_syncobj_create", || {
        // SAFETY: the caller's contract, forwarded.
        let out_syncobj = unsafe { out(out_syncobj, "out_syncobj") }?;
        let dev = lookup(device)?;
        if flags & !AGX_WS_SYNCOBJ_CREATE_SIGNALED != 0 {
            return Err(einval("unknown AGX_WS_SYNCOBJ_CREATE_* flags"));
        }
        let s = SyncObj::new(&dev, flags & AGX_WS_SYNCOBJ_CREATE_SIGNALED != 0)?;
        out_syncobj.write(handle::register(s));
        Ok(0)
    })
}

/// Destroys the sync object.
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_syncobj_destroy(syncobj: *mut agx_ws_syncobj) -> c_int {
    call("agx_ws_syncobj_destroy", || handle::destroy(syncobj))
}

/// Wraps a DRM sync object `handle` that the caller created on the same DRM file as `device`
/// (e.g. Mesa's own syncobjs, on the fd given to `agx_ws_device_open_fd`: handles belong to the
/// file, so they are valid on the library's duplicate too). The wrapper can be waited, signalled
/// and used as a job's in/out sync like any `agx_ws_syncobj`; destroying it does **not** destroy
/// the caller's handle, which must stay alive while the wrapper or jobs use it.
///
/// Errors: `-EINVAL` handle 0 or `out_syncobj` NULL; `-ENOENT` no such sync object on the file.
///
/// # Safety
///
/// `out_syncobj` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_syncobj_wrap(
    device: *mut agx_ws_device,
    handle: u32,
    out_syncobj: *mut *mut agx_ws_syncobj,
) -> c_int {
    call("agx_ws_syncobj_wrap", || {
        // SAFETY: the caller's contract, forwarded.
        let out_syncobj = unsafe { out(out_syncobj, "out_syncobj") }?;
        let dev = lookup(device)?;
        let s = SyncObj::wrap(&dev, handle)?;
        out_syncobj.write(handle::register(s));
        Ok(0)
    })
}

/// The DRM handle of a sync object (one created here, or the caller's for a wrapper).
///
/// # Safety
///
/// `out_handle` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_syncobj_get_handle(
    syncobj: *mut agx_ws_syncobj,
    out_handle: *mut u32,
) -> c_int {
    call("agx_ws_syncobj_get_handle", || {
        // SAFETY: the caller's contract, forwarded.
        let out_handle = unsafe { out(out_handle, "out_handle") }?;
        out_handle.write(lookup(syncobj)?.handle());
        Ok(0)
    })
}

/// Signals the binary fence (`point` 0) or timeline point `point`.
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_syncobj_signal(syncobj: *mut agx_ws_syncobj, point: u64) -> c_int {
    call("agx_ws_syncobj_signal", || {
        lookup(syncobj)?.signal(self::point(point))?;
        Ok(0)
    })
}

/// Drops the fence (a timeline goes back to point 0).
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_syncobj_reset(syncobj: *mut agx_ws_syncobj) -> c_int {
    call("agx_ws_syncobj_reset", || {
        lookup(syncobj)?.reset()?;
        Ok(0)
    })
}

/// The timeline's last signalled point (`AGX_WS_QUERY_LAST_SUBMITTED`: last submitted).
///
/// # Safety
///
/// `out_value` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_syncobj_query(
    syncobj: *mut agx_ws_syncobj,
    flags: u32,
    out_value: *mut u64,
) -> c_int {
    call("agx_ws_syncobj_query", || {
        // SAFETY: the caller's contract, forwarded.
        let out_value = unsafe { out(out_value, "out_value") }?;
        if flags & !AGX_WS_QUERY_LAST_SUBMITTED != 0 {
            return Err(einval("unknown AGX_WS_QUERY_* flags"));
        }
        let s = lookup(syncobj)?;
        out_value.write(s.query(flags & AGX_WS_QUERY_LAST_SUBMITTED != 0)?);
        Ok(0)
    })
}

/// Moves `src`'s fence (at `src_point`, 0 for binary) to `dst` (at `dst_point`).
///
/// # Safety
///
/// Always safe: handles are looked up, never dereferenced.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_syncobj_transfer(
    dst: *mut agx_ws_syncobj,
    dst_point: u64,
    src: *mut agx_ws_syncobj,
    src_point: u64,
) -> c_int {
    call("agx_ws_syncobj_transfer", || {
        let d = lookup(dst)?;
        let s = lookup(src)?;
        d.transfer_from(&s, point(src_point), point(dst_point))?;
        Ok(0)
    })
}

/// Waits until the fence (timeline point `point`, 0 for binary) signals, at most `timeout_ns`
/// (relative; 0 polls; `AGX_WS_TIMEOUT_INFINITE`). `flags`: `AGX_WS_WAIT_FOR_SUBMIT`,
/// `AGX_WS_WAIT_AVAILABLE`. A fence that signalled with an error counts as signalled: ask
/// `agx_ws_syncobj_status` for the error.
///
/// Errors: `-ETIME` timeout; `-EINVAL` no fence attached (without `AGX_WS_WAIT_FOR_SUBMIT`).
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe; may block.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_syncobj_wait(
    syncobj: *mut agx_ws_syncobj,
    point: u64,
    timeout_ns: u64,
    flags: u32,
) -> c_int {
    call("agx_ws_syncobj_wait", || {
        let f = wait_flags(flags, AGX_WS_WAIT_FOR_SUBMIT | AGX_WS_WAIT_AVAILABLE)?;
        lookup(syncobj)?.wait(self::point(point), deadline(timeout_ns), f)?;
        Ok(0)
    })
}

/// Waits for all (`AGX_WS_WAIT_ALL`) or any of `count` sync points of `device`, at most
/// `timeout_ns`. With "any", `*out_first` (may be NULL) receives the index of a signalled one.
///
/// Errors: `-ETIME` timeout; `-EINVAL` count 0 or an object of another device.
///
/// # Safety
///
/// `points` is NULL or points to `count` readable `agx_ws_sync_point`s; `out_first` is NULL or
/// valid for a write.
///
/// Thread safety: thread-safe; may block.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_syncobj_wait_many(
    device: *mut agx_ws_device,
    points: *const agx_ws_sync_point,
    count: u32,
    timeout_ns: u64,
    flags: u32,
    out_first: *mut u32,
) -> c_int {
    call("agx_ws_syncobj_wait_many", || {
        // SAFETY: the caller's contract, forwarded.
        let out_first = unsafe { super::guard::out_opt(out_first, "out_first") }?;
        let dev = lookup(device)?;
        let f = wait_flags(
            flags,
            AGX_WS_WAIT_FOR_SUBMIT | AGX_WS_WAIT_AVAILABLE | AGX_WS_WAIT_ALL,
        )?;
        // SAFETY: the caller's contract, forwarded; agx_ws_sync_point is a pointer and an
        // integer, valid for any bits.
        let pts = unsafe { slice(points, count, "points") }?;
        let objs = resolve(pts)?;
        let list: Vec<_> = objs.iter().map(|(o, p)| (&**o, *p)).collect();
        let first = ws_sync::wait_many(
            &dev,
            &list,
            flags & AGX_WS_WAIT_ALL != 0,
            deadline(timeout_ns),
            f,
        )?;
        if let Some(o) = out_first {
            o.write(first as u32);
        }
        Ok(0)
    })
}

/// Looks up the objects of C sync points.
pub(crate) fn resolve(pts: &[agx_ws_sync_point]) -> FfiResult<Vec<(Arc<SyncObj>, Option<u64>)>> {
    pts.iter()
        .map(|p| Ok((lookup(p.syncobj)?, point(p.point))))
        .collect()
}

/// Exports the fence (at `point`, 0 for binary) as a sync_file; the caller owns the fd.
///
/// Errors: `-EINVAL` no fence attached yet (kernel behaviour).
///
/// # Safety
///
/// `out_fd` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_syncobj_export_sync_file(
    syncobj: *mut agx_ws_syncobj,
    point: u64,
    out_fd: *mut c_int,
) -> c_int {
    call("agx_ws_syncobj_export_sync_file", || {
        // SAFETY: the caller's contract, forwarded.
        let out_fd = unsafe { out(out_fd, "out_fd") }?;
        let fd = lookup(syncobj)?.export_sync_file(self::point(point))?;
        out_fd.write(fd.into_raw_fd());
        Ok(0)
    })
}

/// Imports a sync_file's fence into the object (at `point`, 0 for binary). The fd stays the
/// caller's.
///
/// # Safety
///
/// `fd` is an open file descriptor for the duration of the call.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_syncobj_import_sync_file(
    syncobj: *mut agx_ws_syncobj,
    fd: c_int,
    point: u64,
) -> c_int {
    call("agx_ws_syncobj_import_sync_file", || {
        let s = lookup(syncobj)?;
        // SAFETY: the caller guarantees fd is open for the duration of the call.
        let fd = unsafe { borrow_fd(fd) }?;
        s.import_sync_file(fd, self::point(point))?;
        Ok(0)
    })
}

/// The fence's status, as a sync_file reports it: `AGX_WS_FENCE_PENDING` (also when no fence
/// is attached), `AGX_WS_FENCE_SIGNALED`, or the negative errno it signalled with.
///
/// # Safety
///
/// `out_status` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_syncobj_status(
    syncobj: *mut agx_ws_syncobj,
    point: u64,
    out_status: *mut i32,
) -> c_int {
    call("agx_ws_syncobj_status", || {
        // SAFETY: the caller's contract, forwarded.
        let out_status = unsafe { out(out_status, "out_status") }?;
        let st = lookup(syncobj)?.status(self::point(point))?;
        out_status.write(status_code(st));
        Ok(0)
    })
}

/// The status of a sync_file fd (as `agx_ws_syncobj_status`), e.g. one a job exported.
///
/// # Safety
///
/// `fd` is an open file descriptor for the duration of the call; `out_status` is NULL or valid
/// for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_sync_file_status(
    device: *mut agx_ws_device,
    fd: c_int,
    out_status: *mut i32,
) -> c_int {
    call("agx_ws_sync_file_status", || {
        // SAFETY: the caller's contract, forwarded.
        let out_status = unsafe { out(out_status, "out_status") }?;
        let dev = lookup(device)?;
        // SAFETY: the caller guarantees fd is open for the duration of the call.
        let fd = unsafe { borrow_fd(fd) }?;
        let st = ws_sync::sync_file_status(&dev, fd.as_fd())?;
        out_status.write(status_code(st));
        Ok(0)
    })
}
