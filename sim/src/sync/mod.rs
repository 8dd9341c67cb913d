//! Explicit synchronization, as Linux's `drm_syncobj`, `dma_fence` and `sync_file` do it.
//!
//! - [`fence`]: fences, timeline chains, merged arrays and the global wait queue.
//! - [`syncobj`]: sync objects (binary and timeline in one type) and the per-file handle table.
//! - [`sync_file`]: exported fences and syncobjs as pollable fds, and the sync_file ioctls.
//! - [`ioctl`]: every `DRM_IOCTL_SYNCOBJ_*` with upstream validation and errnos.
//!
//! Where Linux 6.1 and upstream differ, the upstream behaviour is implemented:
//! `WAIT_DEADLINE`, `SYNCOBJ_EVENTFD`, the `TIMELINE` flags of `HANDLE_TO_FD`/`FD_TO_HANDLE`
//! (6.1: `EINVAL`); `WAIT_AVAILABLE` on a point not yet submitted waits for it (6.1: the entry
//! is never woken and the wait times out unless another entry satisfies it); `TRANSFER` with
//! flags other than `WAIT_FOR_SUBMIT` is `EINVAL` (6.1 ignores them); sync_file merges sort
//! fences by context and keep one per context (6.1 keeps the order given); signalled fences
//! report the driver/timeline names `detached-driver`/`signaled-timeline` (6.1: the real ones).
//!
//! A merged sync_file's `dma_fence_array` carries its fences' first error only if something
//! enabled its signalling while it was pending (a syncobj wait, an eventfd; in Linux also a
//! `poll()` on the sync_file, which the simulator cannot see: its sync_files are host pipes).
//! Otherwise it signals without the error, as `dma_fence_array_signaled` does in Linux.
//! `tests/kernel-diff/` checks these paths against a real kernel.

pub mod fence;
pub mod ioctl;
pub mod sync_file;
pub mod syncobj;

#[cfg(test)]
mod tests;
