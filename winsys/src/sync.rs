//! DRM sync objects, binary and timeline.
//!
//! Waits take a [`Deadline`]: every wait in the winsys is bounded. `SYNCOBJ_WAIT` never reports
//! a fence's error, so [`SyncObj::status`] reads it the only way Linux offers: export the fence
//! as a sync_file and ask `SYNC_IOC_FILE_INFO`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use agx_uapi::drm::*;
use rustix::io::Errno;
use rustix::time::{clock_gettime, ClockId};

use crate::error::{Error, Result};
use crate::ioctl;
use crate::Device;

/// When a wait gives up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deadline {
    /// Absolute `CLOCK_MONOTONIC` nanoseconds, as the kernel takes them.
    At(i64),
    /// From now.
    After(Duration),
}

impl Deadline {
    /// Don't block: poll.
    pub const NOW: Deadline = Deadline::At(0);

    /// The absolute `CLOCK_MONOTONIC` time in ns.
    pub fn to_abs_ns(self) -> i64 {
        match self {
            Deadline::At(t) => t,
            Deadline::After(d) => {
                let now = clock_gettime(ClockId::Monotonic);
                let now = now.tv_sec as i128 * 1_000_000_000 + now.tv_nsec as i128;
                (now + d.as_nanos() as i128).min(i64::MAX as i128) as i64
            }
        }
    }
}

/// A fence's state, with the error `SYNCOBJ_WAIT` hides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FenceStatus {
    Pending,
    Signaled,
    /// Signalled with this (negative) errno.
    Error(i32),
}

/// Wait flags beyond ANY/ALL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitFlags {
    /// Wait for a fence to be attached first (instead of `EINVAL`).
    pub for_submit: bool,
    /// Only wait for the fence to exist, not to signal.
    pub available: bool,
}

impl WaitFlags {
    fn bits(self, all: bool) -> u32 {
        let mut f = 0;
        if all {
            f |= DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL;
        }
        if self.for_submit {
            f |= DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT;
        }
        if self.available {
            f |= DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE;
        }
        f
    }
}

/// A DRM sync object: one the winsys created (destroyed on drop), or one it wraps.
#[derive(Debug)]
pub struct SyncObj {
    dev: Device,
    handle: u32,
    /// Whether dropping destroys the handle (false for [`SyncObj::wrap`]).
    owned: bool,
}

impl Drop for SyncObj {
    fn drop(&mut self) {
        if self.owned {
            let _ = ioctl::syncobj_destroy(self.dev.kernel(), self.handle);
        }
    }
}

impl SyncObj {
    /// Creates a sync object (binary and timeline are one kernel type).
    pub fn new(dev: &Device, signaled: bool) -> Result<SyncObj> {
        Ok(SyncObj {
            dev: dev.clone(),
            handle: ioctl::syncobj_create(dev.kernel(), signaled)?,
            owned: true,
        })
    }

    /// Wraps a sync object the caller created on the same DRM file (Mesa's own syncobjs, on
    /// the fd the device was opened with by [`Device::open_fd`]'s duplicate: handles belong to
    /// the file, not the fd). The handle stays the caller's: dropping the wrapper does not
    /// destroy it, and the caller must keep it alive while jobs use the wrapper.
    ///
    /// The handle is checked (`SYNCOBJ_QUERY`): one that does not exist is `ENOENT`.
    pub fn wrap(dev: &Device, handle: u32) -> Result<SyncObj> {
        if handle == 0 {
            return Err(Error::InvalidArgument("sync object handle 0"));
        }
        let obj = SyncObj {
            dev: dev.clone(),
            handle,
            owned: false,
        };
        obj.query(false)?;
        Ok(obj)
    }

    /// Whether this object destroys its handle when dropped.
    pub fn is_owned(&self) -> bool {
        self.owned
    }

    pub fn handle(&self) -> u32 {
        self.handle
    }

    pub fn device(&self) -> &Device {
        &self.dev
    }

    /// Signals the binary fence, or timeline `point`.
    pub fn signal(&self, point: Option<u64>) -> Result<()> {
        ioctl::syncobj_signal(
            self.dev.kernel(),
            &[self.handle],
            point.as_ref().map(std::slice::from_ref),
        )
    }

    /// Drops the fence (a timeline goes back to point 0).
    pub fn reset(&self) -> Result<()> {
        ioctl::syncobj_reset(self.dev.kernel(), &[self.handle])
    }

    /// The timeline's last signalled point (or the last submitted one).
    pub fn query(&self, last_submitted: bool) -> Result<u64> {
        let mut out = [0u64];
        let flags = if last_submitted {
            DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED
        } else {
            0
        };
        ioctl::syncobj_query(self.dev.kernel(), &[self.handle], &mut out, flags)?;
        Ok(out[0])
    }

    /// Moves `src`'s fence (at `src_point`) to this object (at `dst_point`).
    pub fn transfer_from(
        &self,
        src: &SyncObj,
        src_point: Option<u64>,
        dst_point: Option<u64>,
    ) -> Result<()> {
        ioctl::syncobj_transfer(
            self.dev.kernel(),
            src.handle,
            src_point.unwrap_or(0),
            self.handle,
            dst_point.unwrap_or(0),
            0,
        )
    }

    /// Waits for this object (at `point`, for a timeline). `Error::Timeout` at the deadline.
    pub fn wait(&self, point: Option<u64>, deadline: Deadline, flags: WaitFlags) -> Result<()> {
        wait_many(&self.dev, &[(self, point)], true, deadline, flags).map(|_| ())
    }

    /// Exports the fence (at `point`) as a sync_file fd. Kernels before the `TIMELINE` flag of
    /// `HANDLE_TO_FD` (e.g. 6.1) refuse a point with `EINVAL`; the point is then moved to a
    /// temporary binary object first, which every kernel with timelines supports.
    pub fn export_sync_file(&self, point: Option<u64>) -> Result<OwnedFd> {
        match ioctl::syncobj_export_sync_file(self.dev.kernel(), self.handle, point) {
            Err(Error::Kernel { errno, .. }) if errno == Errno::INVAL && point.is_some() => {
                let tmp = SyncObj::new(&self.dev, false)?;
                tmp.transfer_from(self, point, None)?;
                ioctl::syncobj_export_sync_file(self.dev.kernel(), tmp.handle, None)
            }
            r => r,
        }
    }

    /// Imports a sync_file's fence into this object (at `point`).
    pub fn import_sync_file(&self, fd: BorrowedFd<'_>, point: Option<u64>) -> Result<()> {
        ioctl::syncobj_import_sync_file(self.dev.kernel(), self.handle, fd, point)
    }

    /// The fence's status including its error. `Pending` also when there is no fence yet.
    pub fn status(&self, point: Option<u64>) -> Result<FenceStatus> {
        let fd = match self.export_sync_file(point) {
            Ok(fd) => fd,
            // No fence (or no point yet): nothing has signalled.
            Err(Error::Kernel { errno, .. }) if errno == Errno::INVAL || errno == Errno::NOENT => {
                return Ok(FenceStatus::Pending)
            }
            Err(e) => return Err(e),
        };
        sync_file_status(&self.dev, fd.as_fd())
    }
}

/// `SYNC_IOC_FILE_INFO` status of a sync_file fd.
pub fn sync_file_status(dev: &Device, fd: BorrowedFd<'_>) -> Result<FenceStatus> {
    Ok(match ioctl::sync_file_status(dev.kernel(), fd)? {
        0 => FenceStatus::Pending,
        s if s > 0 => FenceStatus::Signaled,
        e => FenceStatus::Error(e),
    })
}

/// Waits for several objects: all, or any (returns the index of the first signalled).
pub fn wait_many(
    dev: &Device,
    objs: &[(&SyncObj, Option<u64>)],
    all: bool,
    deadline: Deadline,
    flags: WaitFlags,
) -> Result<usize> {
    if objs.is_empty() {
        return Err(Error::InvalidArgument("wait on no sync objects"));
    }
    if objs.iter().any(|(o, _)| !o.dev.same(dev)) {
        return Err(Error::InvalidArgument("sync object of another device"));
    }
    // Small fixed arrays keep the common wait allocation-free.
    const INLINE: usize = 8;
    let mut h = [0u32; INLINE];
    let mut p = [0u64; INLINE];
    let (mut hv, mut pv);
    let (handles, points): (&mut [u32], &mut [u64]) = if objs.len() <= INLINE {
        (&mut h[..objs.len()], &mut p[..objs.len()])
    } else {
        hv = vec![0u32; objs.len()];
        pv = vec![0u64; objs.len()];
        (&mut hv[..], &mut pv[..])
    };
    for (i, (o, pt)) in objs.iter().enumerate() {
        handles[i] = o.handle;
        points[i] = pt.unwrap_or(0);
    }
    let timeline = objs.iter().any(|(_, p)| p.is_some());
    let r = ioctl::syncobj_wait(
        dev.kernel(),
        handles,
        timeline.then_some(&*points),
        deadline.to_abs_ns(),
        flags.bits(all),
    );
    match r {
        Ok(i) => Ok(i as usize),
        Err(Error::Kernel { errno, .. }) if errno == Errno::TIME => Err(Error::Timeout),
        Err(e) => Err(e),
    }
}
