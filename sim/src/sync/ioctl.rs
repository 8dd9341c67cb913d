//! The DRM syncobj ioctls (`drm_syncobj.c`), validated as upstream Linux does.
//!
//! Commands are matched on their `nr`, and the argument is zero-extended or truncated to the
//! upstream struct, as the DRM dispatcher does, so older (smaller) struct sizes work too. As in
//! `drm_ioctl()`, the struct is written back whatever the outcome; each handler changes only the
//! fields Linux writes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agx_uapi::drm::*;
use agx_uapi::ioctl::{ioc_nr, ioc_type};
use bytemuck::Pod;
use rustix::io::Errno;

use super::fence::{lock, monotonic_ns, unwrap_merge, wait_epoch, wait_for_change, Fence};
use super::sync_file::{self, load, store};
use super::syncobj::{Syncobj, SyncobjTable};
use crate::fdutil;
use crate::uaccess::{self, Caller};

const NR_CREATE: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_CREATE);
const NR_DESTROY: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_DESTROY);
const NR_HANDLE_TO_FD: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD);
const NR_FD_TO_HANDLE: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE);
const NR_WAIT: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_WAIT);
const NR_RESET: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_RESET);
const NR_SIGNAL: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_SIGNAL);
const NR_TIMELINE_WAIT: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT);
const NR_QUERY: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_QUERY);
const NR_TRANSFER: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_TRANSFER);
const NR_TIMELINE_SIGNAL: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL);
const NR_EVENTFD: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_EVENTFD);

/// `KMALLOC_MAX_SIZE` with 4 KiB pages: larger handle/point arrays fail with `ENOMEM`.
const KMALLOC_MAX_SIZE: usize = 4 << 20;

const WAIT_ALL: u32 = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL;
const WAIT_FOR_SUBMIT: u32 = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT;
const WAIT_AVAILABLE: u32 = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE;
const WAIT_DEADLINE: u32 = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE;

/// Handles one DRM syncobj ioctl of the file owning `table`, made by `caller`. `kick` lets the
/// simulated GPU run work that became runnable; it is called after state changes and before
/// every check of a wait. The table lock is never held while blocking; a wait gives up with
/// `EINTR` once the caller is killed. `ENOTTY` for other commands.
pub fn syncobj_ioctl(
    caller: &dyn Caller,
    table: &Mutex<SyncobjTable>,
    cmd: u32,
    arg: &mut [u8],
    kick: &dyn Fn(),
) -> Result<(), Errno> {
    if ioc_type(cmd) != DRM_IOCTL_BASE {
        return Err(Errno::NOTTY);
    }
    match ioc_nr(cmd) {
        NR_CREATE => with_arg(arg, |a: &mut drm_syncobj_create| {
            a.handle = lock(table).create(a.flags)?;
            Ok(())
        }),
        NR_DESTROY => with_arg(arg, |a: &mut drm_syncobj_destroy| {
            if a.pad != 0 {
                return Err(Errno::INVAL);
            }
            lock(table).destroy(a.handle)
        }),
        NR_HANDLE_TO_FD => with_arg(arg, |a: &mut drm_syncobj_handle| {
            handle_to_fd(caller, table, a)
        }),
        NR_FD_TO_HANDLE => with_arg(arg, |a: &mut drm_syncobj_handle| {
            fd_to_handle(caller, table, a, kick)
        }),
        NR_WAIT => with_arg(arg, |a: &mut drm_syncobj_wait| {
            if a.flags & !(WAIT_ALL | WAIT_FOR_SUBMIT | WAIT_DEADLINE) != 0 || a.count_handles == 0
            {
                return Err(Errno::INVAL);
            }
            let objs = array_find(caller, table, a.handles, a.count_handles)?;
            let points = vec![0; objs.len()];
            a.first_signaled = array_wait(caller, &objs, &points, a.flags, a.timeout_nsec, kick)?;
            Ok(())
        }),
        NR_TIMELINE_WAIT => with_arg(arg, |a: &mut drm_syncobj_timeline_wait| {
            if a.flags & !(WAIT_ALL | WAIT_FOR_SUBMIT | WAIT_AVAILABLE | WAIT_DEADLINE) != 0
                || a.count_handles == 0
            {
                return Err(Errno::INVAL);
            }
            let objs = array_find(caller, table, a.handles, a.count_handles)?;
            let points = read_points(caller, a.points, objs.len())?;
            a.first_signaled = array_wait(caller, &objs, &points, a.flags, a.timeout_nsec, kick)?;
            Ok(())
        }),
        NR_RESET => with_arg(arg, |a: &mut drm_syncobj_array| {
            if a.pad != 0 || a.count_handles == 0 {
                return Err(Errno::INVAL);
            }
            for obj in array_find(caller, table, a.handles, a.count_handles)? {
                obj.replace_fence(None);
            }
            Ok(())
        }),
        NR_SIGNAL => with_arg(arg, |a: &mut drm_syncobj_array| {
            if a.pad != 0 || a.count_handles == 0 {
                return Err(Errno::INVAL);
            }
            for obj in array_find(caller, table, a.handles, a.count_handles)? {
                obj.replace_fence(Some(Fence::signaled()));
            }
            kick();
            Ok(())
        }),
        NR_TIMELINE_SIGNAL => with_arg(arg, |a: &mut drm_syncobj_timeline_array| {
            if a.flags != 0 || a.count_handles == 0 {
                return Err(Errno::INVAL);
            }
            let objs = array_find(caller, table, a.handles, a.count_handles)?;
            let points = read_points(caller, a.points, objs.len())?;
            // Point 0 too adds a chain link (on top of whatever fence was there).
            for (obj, point) in objs.iter().zip(points) {
                obj.add_point(point, Fence::signaled());
            }
            kick();
            Ok(())
        }),
        NR_QUERY => with_arg(arg, |a: &mut drm_syncobj_timeline_array| {
            if a.flags & !DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED != 0 || a.count_handles == 0 {
                return Err(Errno::INVAL);
            }
            let last_submitted = a.flags & DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED != 0;
            for (i, obj) in array_find(caller, table, a.handles, a.count_handles)?
                .iter()
                .enumerate()
            {
                let point = obj.query(last_submitted);
                let dst = a.points.checked_add(8 * i as u64).ok_or(Errno::FAULT)?;
                uaccess::write_user(caller, dst, &point)?;
            }
            Ok(())
        }),
        NR_TRANSFER => with_arg(arg, |a: &mut drm_syncobj_transfer| transfer(table, a, kick)),
        NR_EVENTFD => with_arg(arg, |a: &mut drm_syncobj_eventfd| {
            if a.flags & !WAIT_AVAILABLE != 0 || a.pad != 0 {
                return Err(Errno::INVAL);
            }
            let obj = lock(table).get(a.handle)?;
            let fd = fdutil::dup_eventfd(caller, a.fd)?;
            obj.add_eventfd(a.point, a.flags, fd);
            Ok(())
        }),
        _ => Err(Errno::NOTTY),
    }
}

/// Decodes the argument, runs `f`, and writes the struct back whatever the outcome.
fn with_arg<T: Pod>(
    arg: &mut [u8],
    f: impl FnOnce(&mut T) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let mut v: T = load(arg);
    let r = f(&mut v);
    store(arg, &v);
    r
}

/// `drm_syncobj_array_find`: copies the handle array in and resolves every handle.
fn array_find(
    caller: &dyn Caller,
    table: &Mutex<SyncobjTable>,
    handles: u64,
    count: u32,
) -> Result<Vec<Arc<Syncobj>>, Errno> {
    let count = count as usize;
    if count * 4 > KMALLOC_MAX_SIZE {
        return Err(Errno::NOMEM);
    }
    let hs: Vec<u32> = uaccess::read_user_array(caller, handles, count, 4)?;
    if count * 8 > KMALLOC_MAX_SIZE {
        return Err(Errno::NOMEM);
    }
    let t = lock(table);
    hs.iter().map(|&h| t.get(h)).collect()
}

/// A user array of points; a NULL pointer means all zeros.
fn read_points(caller: &dyn Caller, ptr: u64, count: usize) -> Result<Vec<u64>, Errno> {
    if ptr == 0 {
        return Ok(vec![0; count]);
    }
    if count * 8 > KMALLOC_MAX_SIZE {
        return Err(Errno::NOMEM);
    }
    uaccess::read_user_array(caller, ptr, count, 8)
}

fn handle_to_fd(
    caller: &dyn Caller,
    table: &Mutex<SyncobjTable>,
    a: &mut drm_syncobj_handle,
) -> Result<(), Errno> {
    if a.pad != 0 {
        return Err(Errno::INVAL);
    }
    let valid =
        DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE | DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE;
    if a.flags & !valid != 0 {
        return Err(Errno::INVAL);
    }
    let point = if a.flags & DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE != 0 {
        a.point
    } else {
        0
    };
    if a.flags & DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE != 0 {
        let obj = lock(table).get(a.handle)?;
        let fence = obj.find_fence(point, 0)?;
        a.fd = caller.fd_install(sync_file::export(vec![fence])?)?;
        return Ok(());
    }
    if point != 0 {
        return Err(Errno::INVAL);
    }
    // drm_syncobj_handle_to_fd answers EINVAL, not ENOENT, for an unknown handle.
    let obj = lock(table).get(a.handle).map_err(|_| Errno::INVAL)?;
    a.fd = caller.fd_install(sync_file::export_syncobj(obj)?)?;
    Ok(())
}

fn fd_to_handle(
    caller: &dyn Caller,
    table: &Mutex<SyncobjTable>,
    a: &mut drm_syncobj_handle,
    kick: &dyn Fn(),
) -> Result<(), Errno> {
    if a.pad != 0 {
        return Err(Errno::INVAL);
    }
    let valid =
        DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE | DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_TIMELINE;
    if a.flags & !valid != 0 {
        return Err(Errno::INVAL);
    }
    let point = if a.flags & DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_TIMELINE != 0 {
        a.point
    } else {
        0
    };
    if a.flags & DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE != 0 {
        let fence = sync_file::lookup_fence_raw(caller, a.fd)?;
        let obj = lock(table).get(a.handle)?;
        if point != 0 {
            obj.add_point(point, fence);
        } else {
            obj.replace_fence(Some(fence));
        }
        kick();
        return Ok(());
    }
    if point != 0 {
        return Err(Errno::INVAL);
    }
    let obj = sync_file::lookup_syncobj_raw(caller, a.fd)?;
    a.handle = lock(table).insert(obj);
    Ok(())
}

fn transfer(
    table: &Mutex<SyncobjTable>,
    a: &mut drm_syncobj_transfer,
    kick: &dyn Fn(),
) -> Result<(), Errno> {
    if a.pad != 0 {
        return Err(Errno::INVAL);
    }
    let dst = lock(table).get(a.dst_handle)?;
    // drm_syncobj_find_fence: flags before the source handle.
    if a.flags & !WAIT_FOR_SUBMIT != 0 {
        return Err(Errno::INVAL);
    }
    let src = lock(table).get(a.src_handle)?;
    let fence = src.find_fence_with_kick(a.src_point, a.flags, kick)?;
    if a.dst_point != 0 {
        // The source is flattened first: already signalled parts (and their errors) drop out.
        dst.add_point(a.dst_point, unwrap_merge(&[fence]));
    } else {
        dst.replace_fence(Some(fence));
    }
    kick();
    Ok(())
}

enum Timeout {
    Poll,
    Until(Instant),
    Forever,
}

/// `drm_timeout_abs_to_jiffies`: 0 or a past absolute `CLOCK_MONOTONIC` time polls once.
fn abs_timeout(timeout_nsec: i64) -> Timeout {
    if timeout_nsec <= 0 {
        return Timeout::Poll;
    }
    let now = monotonic_ns();
    let Some(remaining) = (timeout_nsec as u64).checked_sub(now).filter(|&r| r > 0) else {
        return Timeout::Poll;
    };
    match Instant::now().checked_add(Duration::from_nanos(remaining)) {
        Some(t) => Timeout::Until(t),
        None => Timeout::Forever,
    }
}

/// `drm_syncobj_array_wait_timeout`: the index written to `first_signaled`, `ETIME` on
/// timeout, `EINVAL` for a missing fence without `WAIT_FOR_SUBMIT`/`WAIT_AVAILABLE`. A fence
/// that signalled with an error counts as signalled.
fn array_wait(
    caller: &dyn Caller,
    objs: &[Arc<Syncobj>],
    points: &[u64],
    flags: u32,
    timeout_nsec: i64,
    kick: &dyn Fn(),
) -> Result<u32, Errno> {
    let timeout = abs_timeout(timeout_nsec);
    let wait_all = flags & WAIT_ALL != 0;
    let available = flags & WAIT_AVAILABLE != 0;
    let lazy = flags & (WAIT_FOR_SUBMIT | WAIT_AVAILABLE) != 0;
    let n = objs.len();

    // Resolve every entry up front so that a missing fence is EINVAL before any waiting.
    kick();
    let mut entries: Vec<Option<Arc<Fence>>> = Vec::with_capacity(n);
    let mut first = u32::MAX;
    let mut signaled = 0;
    for (i, (obj, &point)) in objs.iter().zip(points).enumerate() {
        match obj.lookup(point) {
            Ok(f) => {
                if available || f.is_signaled() {
                    if signaled == 0 {
                        first = i as u32;
                    }
                    signaled += 1;
                }
                entries.push(Some(f));
            }
            Err(_) if lazy => entries.push(None),
            Err(e) => return Err(e),
        }
    }
    if signaled == n || (signaled > 0 && !wait_all) {
        return Ok(first);
    }

    // Upstream registers submit waiters for WAIT_AVAILABLE too (6.1 only for WAIT_FOR_SUBMIT).
    let slots: Vec<_> = entries
        .iter()
        .zip(objs.iter().zip(points))
        .map(|(e, (obj, &p))| e.is_none().then(|| obj.add_wait(p)))
        .collect();

    loop {
        kick();
        let epoch = wait_epoch();
        let mut count = 0;
        for (i, entry) in entries.iter_mut().enumerate() {
            if entry.is_none() {
                *entry = slots[i].as_ref().and_then(|s| s.fence());
            }
            let Some(f) = entry else { continue };
            if available || f.is_signaled() {
                if !wait_all {
                    return Ok(i as u32);
                }
                count += 1;
            } else {
                // dma_fence_add_callback: enables signalling, even for a zero timeout.
                f.enable_signaling();
            }
        }
        if count == n {
            return Ok(first);
        }
        // A killed caller stops waiting (the kernel's -ERESTARTSYS, seen as EINTR).
        if caller.signal_pending() {
            return Err(Errno::INTR);
        }
        match timeout {
            Timeout::Poll => return Err(Errno::TIME),
            Timeout::Until(t) => {
                if Instant::now() >= t {
                    return Err(Errno::TIME);
                }
                wait_for_change(epoch, Some(t));
            }
            Timeout::Forever => {
                wait_for_change(epoch, None);
            }
        }
    }
}
