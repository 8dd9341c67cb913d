//! Exported fences and syncobjs as real, pollable file descriptors.
//!
//! Linux hands out anonymous-inode files. The simulator hands out the read end of a pipe and
//! keeps the write end, with what the file stands for, in a process-global registry keyed by
//! the pipe's `(st_dev, st_ino)`. A sync_file's pipe gets one byte when its fence signals, so
//! `poll()` reports `POLLIN` exactly when Linux's `sync_file_poll` would; the byte is never
//! read back. A syncobj file (`HANDLE_TO_FD` without `EXPORT_SYNC_FILE`) gets its byte at once:
//! Linux's syncobj files have no `poll` method, so `poll()` answers the default mask, readable.
//!
//! Entries whose read end every process closed (the write end polls `POLLERR`) are collected
//! as exports go on, amortized, and by [`gc`].
//!
//! Sync_file ioctls (`SYNC_IOC_FILE_INFO`, `SYNC_IOC_MERGE`, `SYNC_IOC_SET_DEADLINE`) go
//! through [`sync_file_ioctl`], since the host kernel only sees a pipe.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use agx_uapi::ioctl::iow;
use agx_uapi::sync_file::{
    sync_fence_info, sync_file_info, sync_merge_data, SYNC_IOC_FILE_INFO, SYNC_IOC_MAGIC,
    SYNC_IOC_MERGE,
};
use bytemuck::{Pod, Zeroable};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::OFlags;
use rustix::io::Errno;
use rustix::pipe::PipeFlags;

use super::fence::{context_alloc, lock, unwrap, unwrap_merge, Fence};
use super::syncobj::Syncobj;
use crate::uaccess::{Caller, InProcess};

/// `struct sync_set_deadline` (upstream, not in 6.1).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
#[allow(non_camel_case_types)]
pub struct sync_set_deadline {
    pub deadline_ns: u64,
    pub pad: u64,
}

/// `SYNC_IOC_SET_DEADLINE`.
pub const SYNC_IOC_SET_DEADLINE: u32 = iow::<sync_set_deadline>(SYNC_IOC_MAGIC, 5);

type Key = (u64, u64);

enum Payload {
    SyncFile {
        fence: Arc<Fence>,
        user_name: [u8; 32],
    },
    Syncobj(Arc<Syncobj>),
}

struct Entry {
    writer: Arc<OwnedFd>,
    payload: Payload,
}

struct Registry {
    entries: BTreeMap<Key, Entry>,
    /// Size after the last collection; the next one runs when the registry doubles.
    collect_at: usize,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    entries: BTreeMap::new(),
    collect_at: 64,
});

fn key_of(fd: BorrowedFd<'_>) -> Result<Key, Errno> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// Whether every read end of the pipe behind `writer` is closed.
fn reader_gone(writer: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(writer, PollFlags::OUT)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&zero)) {
        Ok(_) => fds[0].revents().intersects(PollFlags::ERR | PollFlags::HUP),
        Err(_) => false,
    }
}

/// Makes the read end readable. Skipped when nobody reads any more, so that no `SIGPIPE` is
/// raised (the write end is non-blocking, so a full pipe cannot stall a signaller either).
fn mark_ready(writer: &OwnedFd) {
    if !reader_gone(writer) {
        let _ = rustix::io::write(writer, &[1]);
    }
}

fn collect(reg: &mut Registry) {
    reg.entries.retain(|_, e| !reader_gone(&e.writer));
    reg.collect_at = (reg.entries.len() * 2).max(64);
}

/// Drops every registry entry whose file all processes have closed.
pub fn gc() {
    collect(&mut lock(&REGISTRY));
}

/// Number of exported files the registry still tracks.
pub fn live_exports() -> usize {
    lock(&REGISTRY).entries.len()
}

fn register(payload: Payload) -> Result<(OwnedFd, Arc<OwnedFd>), Errno> {
    let (reader, writer) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
    rustix::fs::fcntl_setfl(&writer, OFlags::NONBLOCK)?;
    let key = key_of(reader.as_fd())?;
    let writer = Arc::new(writer);
    let mut reg = lock(&REGISTRY);
    if reg.entries.len() >= reg.collect_at {
        collect(&mut reg);
    }
    reg.entries.insert(
        key,
        Entry {
            writer: writer.clone(),
            payload,
        },
    );
    Ok((reader, writer))
}

fn export_fence(fence: Arc<Fence>, user_name: [u8; 32]) -> Result<OwnedFd, Errno> {
    let (reader, writer) = register(Payload::SyncFile {
        fence: fence.clone(),
        user_name,
    })?;
    let weak = Arc::downgrade(&writer);
    drop(writer);
    fence.add_callback(Box::new(move || {
        if let Some(w) = weak.upgrade() {
            mark_ready(&w);
        }
    }));
    Ok(reader)
}

/// Exports `fences` as one sync_file (`sync_file_create`): a single fence as is, several as a
/// `dma_fence_array` of their leaves. `EINVAL` for an empty list.
pub fn export(fences: Vec<Arc<Fence>>) -> Result<OwnedFd, Errno> {
    let fence = match fences.len() {
        0 => return Err(Errno::INVAL),
        1 => fences.into_iter().next().expect("one fence"),
        _ => Fence::new_array(fences.iter().flat_map(unwrap).collect(), context_alloc(), 1),
    };
    export_fence(fence, [0; 32])
}

/// Exports a syncobj itself as an fd (`drm_syncobj_get_fd`).
pub fn export_syncobj(obj: Arc<Syncobj>) -> Result<OwnedFd, Errno> {
    let (reader, writer) = register(Payload::Syncobj(obj))?;
    mark_ready(&writer);
    Ok(reader)
}

/// Runs `f` on the live registry entry of `fd`; `EINVAL` if `fd` is none of ours.
fn with_entry<R>(
    fd: BorrowedFd<'_>,
    f: impl FnOnce(&Entry) -> Result<R, Errno>,
) -> Result<R, Errno> {
    let key = key_of(fd).map_err(|_| Errno::INVAL)?;
    let mut reg = lock(&REGISTRY);
    let Some(entry) = reg.entries.get(&key) else {
        return Err(Errno::INVAL);
    };
    // A stale entry (its pipe closed, the inode number reused) is not ours.
    if reader_gone(&entry.writer) {
        reg.entries.remove(&key);
        return Err(Errno::INVAL);
    }
    f(entry)
}

/// The fence of the sync_file `fd` (`sync_file_get_fence`): `EINVAL` if `fd` is not one.
pub fn lookup_fence(fd: BorrowedFd<'_>) -> Result<Arc<Fence>, Errno> {
    with_entry(fd, |e| match &e.payload {
        Payload::SyncFile { fence, .. } => Ok(fence.clone()),
        Payload::Syncobj(_) => Err(Errno::INVAL),
    })
}

/// The leaf fences of the sync_file `fd`, as `SYNC_IOC_FILE_INFO` lists them. `EINVAL` if
/// `fd` is not one of our sync_files.
pub fn lookup(fd: BorrowedFd<'_>) -> Result<Vec<Arc<Fence>>, Errno> {
    Ok(unwrap(&lookup_fence(fd)?))
}

/// The syncobj behind a syncobj fd; `EINVAL` if `fd` is not one (a sync_file is not).
pub fn lookup_syncobj(fd: BorrowedFd<'_>) -> Result<Arc<Syncobj>, Errno> {
    with_entry(fd, |e| match &e.payload {
        Payload::Syncobj(o) => Ok(o.clone()),
        Payload::SyncFile { .. } => Err(Errno::INVAL),
    })
}

/// [`lookup_fence`] on the caller's fd `raw` from an ioctl argument (any failure is `EINVAL`).
pub(crate) fn lookup_fence_raw(caller: &dyn Caller, raw: RawFd) -> Result<Arc<Fence>, Errno> {
    caller
        .fdget(raw)
        .and_then(lookup_fence)
        .map_err(|_| Errno::INVAL)
}

/// [`lookup_syncobj`] on the caller's fd `raw` from an ioctl argument (any failure is
/// `EINVAL`).
pub(crate) fn lookup_syncobj_raw(caller: &dyn Caller, raw: RawFd) -> Result<Arc<Syncobj>, Errno> {
    caller
        .fdget(raw)
        .and_then(lookup_syncobj)
        .map_err(|_| Errno::INVAL)
}

pub(crate) fn load<T: Pod>(arg: &[u8]) -> T {
    let mut v = T::zeroed();
    let b = bytemuck::bytes_of_mut(&mut v);
    let n = b.len().min(arg.len());
    b[..n].copy_from_slice(&arg[..n]);
    v
}

pub(crate) fn store<T: Pod>(arg: &mut [u8], v: &T) {
    let b = bytemuck::bytes_of(v);
    let n = b.len().min(arg.len());
    arg[..n].copy_from_slice(&b[..n]);
}

/// `strscpy` into a fixed, NUL-terminated field.
fn copy_name(dst: &mut [u8; 32], s: &str) {
    *dst = [0; 32];
    let n = s.len().min(dst.len() - 1);
    dst[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// `sync_file_get_name`: the merge name, else `driver-timeline<context>-<seqno>`.
fn file_name(fence: &Fence, user_name: &[u8; 32]) -> [u8; 32] {
    if user_name[0] != 0 {
        return *user_name;
    }
    let mut name = [0; 32];
    let s = format!(
        "{}-{}{}-{}",
        fence.driver_name(),
        fence.timeline_name(),
        fence.context(),
        fence.seqno() as i64
    );
    copy_name(&mut name, &s);
    name
}

fn fill_fence_info(f: &Fence) -> sync_fence_info {
    let mut info = sync_fence_info::zeroed();
    copy_name(&mut info.obj_name, f.timeline_name());
    copy_name(&mut info.driver_name, f.driver_name());
    info.status = f.status();
    info.timestamp_ns = if f.is_signaled() {
        f.timestamp_ns().unwrap_or(0)
    } else {
        0
    };
    info
}

fn file_info(
    caller: &dyn Caller,
    fence: &Arc<Fence>,
    user_name: &[u8; 32],
    arg: &mut [u8],
) -> Result<(), Errno> {
    let mut info: sync_file_info = load(arg);
    if info.flags != 0 || info.pad != 0 {
        return Err(Errno::INVAL);
    }
    let leaves = unwrap(fence);
    let num_fences = leaves.len() as u32;
    if info.num_fences == 0 {
        // Only the count, and the status of the file's own fence.
        info.status = fence.status();
    } else {
        if info.num_fences < num_fences {
            return Err(Errno::INVAL);
        }
        let mut status = 1;
        let infos: Vec<sync_fence_info> = leaves
            .iter()
            .map(|f| {
                let fi = fill_fence_info(f);
                // The first value <= 0 sticks: a pending fence hides a later error.
                if status > 0 {
                    status = fi.status;
                }
                fi
            })
            .collect();
        caller.copy_to_user(info.sync_fence_info, bytemuck::cast_slice(&infos))?;
        info.status = status;
    }
    info.name = file_name(fence, user_name);
    info.num_fences = num_fences;
    store(arg, &info);
    Ok(())
}

fn merge(caller: &dyn Caller, fence: &Arc<Fence>, arg: &mut [u8]) -> Result<(), Errno> {
    let mut data: sync_merge_data = load(arg);
    if data.flags != 0 || data.pad != 0 {
        return Err(Errno::INVAL);
    }
    let other = lookup_fence_raw(caller, data.fd2).map_err(|_| Errno::NOENT)?;
    data.name[31] = 0;
    let merged = unwrap_merge(&[fence.clone(), other]);
    data.fence = caller.fd_install(export_fence(merged, data.name)?)?;
    store(arg, &data);
    Ok(())
}

/// The ioctls of a sync_file fd (`sync_file_ioctl`) made by this process. `ENOTTY` for other
/// commands and for fds that are not our sync_files (a real pipe or a syncobj file has no such
/// ioctls).
pub fn sync_file_ioctl(fd: BorrowedFd<'_>, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
    sync_file_ioctl_for(&InProcess, fd, cmd, arg)
}

/// [`sync_file_ioctl`] made by `caller`.
pub fn sync_file_ioctl_for(
    caller: &dyn Caller,
    fd: BorrowedFd<'_>,
    cmd: u32,
    arg: &mut [u8],
) -> Result<(), Errno> {
    let (fence, user_name) = with_entry(fd, |e| match &e.payload {
        Payload::SyncFile { fence, user_name } => Ok((fence.clone(), *user_name)),
        Payload::Syncobj(_) => Err(Errno::NOTTY),
    })
    .map_err(|e| if e == Errno::INVAL { Errno::NOTTY } else { e })?;
    match cmd {
        SYNC_IOC_FILE_INFO => file_info(caller, &fence, &user_name, arg),
        SYNC_IOC_MERGE => merge(caller, &fence, arg),
        SYNC_IOC_SET_DEADLINE => {
            // A hint only: the simulated GPU has no clocks to boost.
            let ts: sync_set_deadline = load(arg);
            if ts.pad != 0 {
                return Err(Errno::INVAL);
            }
            Ok(())
        }
        _ => Err(Errno::NOTTY),
    }
}
