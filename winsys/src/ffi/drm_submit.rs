//! Submits a driver encoded itself (Mesa): the cmdbuf as `DRM_IOCTL_ASAHI_SUBMIT` takes it, the
//! driver's own sync object handles, and an access description per hardware command, whose
//! restartability verdicts a per-queue cache keeps.

use std::os::raw::{c_int, c_void};

use super::cmd::{compute_access, render_access};
use super::cmd_desc::{agx_ws_compute_access, agx_ws_dispatch, agx_ws_render_access};
use super::guard::{call, einval, input, out, slice, Fail, FfiResult, Sized32};
use super::handle::lookup;
use super::queue::{agx_ws_job, agx_ws_queue, job_handle};
use crate::analysis::{Reasons, Verdict};
use crate::cmd::Subqueue;
use crate::Error;

/// A sync object of the device's DRM file and a point, as the uAPI names it: the layout of
/// `struct drm_asahi_sync` (`sync_type` `DRM_ASAHI_SYNC_SYNCOBJ` 0 or
/// `DRM_ASAHI_SYNC_TIMELINE_SYNCOBJ` 1).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct agx_ws_drm_sync {
    pub sync_type: u32,
    /// A sync object handle on the DRM file the device was opened on.
    pub handle: u32,
    /// The point, for a timeline.
    pub timeline_value: u64,
}

const _: () = {
    use agx_uapi::asahi::drm_asahi_sync;
    assert!(size_of::<agx_ws_drm_sync>() == size_of::<drm_asahi_sync>());
    assert!(align_of::<agx_ws_drm_sync>() == align_of::<drm_asahi_sync>());
};

/// The access description of one hardware command of a driver-encoded cmdbuf: `render` for a
/// render command, `compute` for a compute command, both NULL when the driver cannot describe
/// it (then it is not restartable).
#[repr(C)]
pub struct agx_ws_command_access {
    pub render: *const agx_ws_render_access,
    pub compute: *const agx_ws_compute_access,
}

/// A submit the driver encoded itself (`agx_ws_queue_submit_drm`). Set
/// `struct_size = sizeof(agx_ws_drm_submit)`.
#[repr(C)]
pub struct agx_ws_drm_submit {
    pub struct_size: u32,
    /// Waits: the first `in_sync_count` entries of `syncs`.
    pub in_sync_count: u32,
    /// Signals: the next `out_sync_count` entries (signalled when all of the job is done,
    /// whatever its outcome).
    pub out_sync_count: u32,
    /// Entries of `commands`: 0 (nothing is described: no command is restartable) or exactly
    /// the number of hardware commands in `cmdbuf`.
    pub command_count: u32,
    pub syncs: *const agx_ws_drm_sync,
    /// `drm_asahi_cmd_header`s, each followed by its payload, as for `DRM_IOCTL_ASAHI_SUBMIT`.
    pub cmdbuf: *const c_void,
    pub cmdbuf_size: u32,
    pub pad: u32,
    /// One per hardware command, in cmdbuf order.
    pub commands: *const agx_ws_command_access,
}

// SAFETY: repr(C), struct_size first, integers and raw pointers only.
unsafe impl Sized32 for agx_ws_drm_submit {}

/// Submits a cmdbuf the driver encoded itself, as `DRM_IOCTL_ASAHI_SUBMIT` takes it (Mesa's
/// render and compute payloads, attachment commands and barriers), in one kernel submit on
/// `queue`. With the fault-report extension the library inserts a job info before each hardware
/// command: restartable or not from `commands` (the restartability analysis of each command's
/// access description), with a result record, so the job's outcome is known exactly; the
/// driver's own bytes are not changed. The sync objects are the caller's, on the DRM file the
/// device was opened on (as with `agx_ws_syncobj_wrap`, but used for this submit only, without
/// a wrapper each); the job's own fence is added. On success `*out_job` is a new job handle.
///
/// Errors: as `agx_ws_queue_submit` (`-ECANCELED` banned queue, recorded by a reset tracker;
/// `-ENODEV` device gone); `-EINVAL` a malformed cmdbuf or one holding a job info, no or more
/// hardware commands than `max_commands_per_submission` (the driver splits long work), a
/// `command_count` other than 0 or the number of hardware commands, a description of the
/// wrong kind (render for a compute command or the reverse, or both), a bad description (the
/// descriptions are read only when the kernel has the extension); the kernel's errors for bad
/// sync objects or payloads.
///
/// # Safety
///
/// `submit` is NULL or points to a readable `agx_ws_drm_submit` (at least its `struct_size`)
/// whose `syncs` holds `in_sync_count + out_sync_count` entries, `cmdbuf` `cmdbuf_size`
/// readable bytes, and `commands` `command_count` entries, each description following the
/// rules of `agx_ws_cmdbuf_add_render` / `agx_ws_cmdbuf_add_compute`; `out_job` is NULL or
/// valid for a write.
///
/// Thread safety: thread-safe (submits to one queue are serialized).
#[no_mangle]
pub unsafe extern "C" fn agx_ws_queue_submit_drm(
    queue: *mut agx_ws_queue,
    submit: *const agx_ws_drm_submit,
    out_job: *mut *mut agx_ws_job,
) -> c_int {
    call("agx_ws_queue_submit_drm", || {
        // SAFETY: the caller's contract, forwarded.
        let out_job = unsafe { out(out_job, "out_job") }?;
        let q = lookup(queue)?;
        // SAFETY: the caller's contract, forwarded.
        let sub = unsafe { super::guard::input(submit, "submit") }?;
        if sub.pad != 0 {
            return Err(einval("submit->pad must be 0"));
        }
        let nsyncs = sub
            .in_sync_count
            .checked_add(sub.out_sync_count)
            .ok_or_else(|| einval("sync counts overflow"))?;
        // SAFETY: the caller's contract: syncs holds both counts of entries (plain data).
        let syncs = unsafe { slice(sub.syncs, nsyncs, "submit->syncs") }?;
        let syncs: &[agx_uapi::asahi::drm_asahi_sync] = bytemuck::cast_slice(syncs);
        let (waits, signals) = syncs.split_at(sub.in_sync_count as usize);
        if sub.cmdbuf.is_null() || sub.cmdbuf_size == 0 {
            return Err(einval("submit->cmdbuf is NULL or empty"));
        }
        // SAFETY: the caller's contract: cmdbuf points to cmdbuf_size readable bytes.
        let cmdbuf = unsafe {
            std::slice::from_raw_parts(sub.cmdbuf.cast::<u8>(), sub.cmdbuf_size as usize)
        };
        // SAFETY: the caller's contract: commands holds command_count entries.
        let commands = unsafe { slice(sub.commands, sub.command_count, "submit->commands") }?;
        let mut bad: Option<Fail> = None;
        let mut cache = q.verdicts.lock().unwrap_or_else(|e| e.into_inner());
        let mut verdict = |i: usize, sub: Subqueue| -> Result<Verdict, Error> {
            // SAFETY: the caller's contract for each description, forwarded.
            match unsafe { cache.verdict(commands, i, sub) } {
                Ok(v) => Ok(v),
                Err(f) => {
                    bad = Some(f);
                    Err(Error::InvalidArgument("bad access description"))
                }
            }
        };
        let expected = (!commands.is_empty()).then_some(commands.len());
        let tracker = q.tracker.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let submitted = q
            .queue
            .submit_encoded(cmdbuf, expected, &mut verdict, waits, signals);
        drop(cache);
        // A bad description is the caller's error, not the kernel's refusal.
        if let (Err(_), Some(f)) = (&submitted, bad) {
            return Err(f);
        }
        out_job.write(job_handle(&q.queue, tracker, submitted)?);
        Ok(0)
    })
}

/// Verdicts of the access descriptions a queue's driver submitted recently, keyed by their
/// contents: a driver describes the same passes frame after frame, and reading a C description
/// and analysing it is most of what the library adds to a submit. A description is reused only
/// when every byte of it is equal (its arrays' contents, not their addresses), so a cached
/// verdict is exactly the one the analysis would give.
#[derive(Default)]
pub(crate) struct VerdictCache {
    entries: Vec<(Vec<u8>, Verdict)>,
    /// The next entry to replace once full (round robin).
    next: usize,
    /// The key being looked up (reused, so a hit allocates nothing).
    key: Vec<u8>,
}

/// Descriptions kept per queue.
const CACHED: usize = 32;

impl VerdictCache {
    /// The verdict of hardware command `i` (of subqueue `sub`) described by `commands[i]`
    /// (not described when `commands` is empty).
    ///
    /// # Safety
    ///
    /// The descriptions' pointers follow the contract of `agx_ws_queue_submit_drm`.
    unsafe fn verdict(
        &mut self,
        commands: &[agx_ws_command_access],
        i: usize,
        sub: Subqueue,
    ) -> FfiResult<Verdict> {
        let Some(c) = commands.get(i) else {
            if !commands.is_empty() {
                return Err(einval(
                    "more hardware commands than submit->command_count descriptions",
                ));
            }
            return Ok(undescribed(sub));
        };
        let kind_ok = match sub {
            Subqueue::Render => c.compute.is_null(),
            Subqueue::Compute => c.render.is_null(),
        };
        if !kind_ok {
            return Err(einval(
                "an access description of the wrong kind for its hardware command",
            ));
        }
        if c.render.is_null() && c.compute.is_null() {
            return Ok(undescribed(sub));
        }
        self.key.clear();
        // SAFETY: the caller's contract, forwarded.
        unsafe { key(c, &mut self.key) }?;
        if let Some((_, v)) = self.entries.iter().find(|(k, _)| *k == self.key) {
            return Ok(*v);
        }
        // SAFETY: as above.
        let v = unsafe { analyse(c) }?;
        let entry = (self.key.clone(), v);
        if self.entries.len() < CACHED {
            self.entries.push(entry);
        } else {
            self.entries[self.next] = entry;
            self.next = (self.next + 1) % CACHED;
        }
        Ok(v)
    }
}

/// The verdict of a hardware command nothing describes: not restartable.
fn undescribed(sub: Subqueue) -> Verdict {
    Verdict {
        reasons: match sub {
            Subqueue::Render => Reasons::UNKNOWN_ACCESS,
            Subqueue::Compute => Reasons::COMPUTE_UNDECLARED,
        },
    }
}

/// Reads and analyses a description (render or compute, not both, not none).
///
/// # Safety
///
/// The description's pointers follow the contract of `agx_ws_queue_submit_drm`.
unsafe fn analyse(c: &agx_ws_command_access) -> FfiResult<Verdict> {
    Ok(if c.compute.is_null() {
        // SAFETY: the caller's contract: one readable, versioned description.
        let a = unsafe { input(c.render, "render access") }?;
        // SAFETY: as above, for its arrays.
        unsafe { render_access(a) }?.analyse()
    } else {
        // SAFETY: as above.
        let a = unsafe { input(c.compute, "compute access") }?;
        // SAFETY: as above, for its arrays.
        unsafe { compute_access(a) }?.analyse()
    })
}

/// Appends the bytes of `list` (plain data) to `key`, after its length.
#[inline]
fn push<T: bytemuck::Pod>(key: &mut Vec<u8>, list: &[T]) {
    key.extend_from_slice(&(list.len() as u32).to_le_bytes());
    key.extend_from_slice(bytemuck::cast_slice(list));
}

/// The cache key of a description: every value the analysis reads, arrays by content.
///
/// # Safety
///
/// The description's pointers follow the contract of `agx_ws_queue_submit_drm`.
unsafe fn key(c: &agx_ws_command_access, key: &mut Vec<u8>) -> FfiResult<()> {
    if c.compute.is_null() {
        // SAFETY: the caller's contract: one readable, versioned description; each array
        // pointer is NULL or points to its count of elements (every read below).
        let a: &agx_ws_render_access = unsafe { input(c.render, "render access") }?;
        key.push(b'r');
        key.extend_from_slice(&a.flags.to_le_bytes());
        // SAFETY: as above.
        unsafe {
            push(key, slice(a.colors, a.color_count, "access->colors")?);
            push(
                key,
                slice(a.depth, a.depth.is_null() as u32 ^ 1, "access->depth")?,
            );
            push(
                key,
                slice(a.stencil, a.stencil.is_null() as u32 ^ 1, "access->stencil")?,
            );
            push(
                key,
                slice(
                    a.shader_accesses,
                    a.shader_access_count,
                    "access->shader_accesses",
                )?,
            );
            push(
                key,
                slice(
                    a.occlusion_queries,
                    a.occlusion_query_count,
                    "access->occlusion_queries",
                )?,
            );
            push(key, slice(a.xfbs, a.xfb_count, "access->xfbs")?);
            push(
                key,
                slice(a.timestamps, a.timestamp_count, "access->timestamps")?,
            );
        }
    } else {
        // SAFETY: as above.
        let a: &agx_ws_compute_access = unsafe { input(c.compute, "compute access") }?;
        key.push(b'c');
        // SAFETY: as above.
        let dispatches: &[agx_ws_dispatch] =
            unsafe { slice(a.dispatches, a.dispatch_count, "access->dispatches") }?;
        key.extend_from_slice(&a.dispatch_count.to_le_bytes());
        for d in dispatches {
            key.extend_from_slice(&d.flags.to_le_bytes());
            // SAFETY: as above.
            unsafe {
                push(key, slice(d.reads, d.read_count, "dispatch->reads")?);
                push(key, slice(d.writes, d.write_count, "dispatch->writes")?);
                push(
                    key,
                    slice(d.read_writes, d.read_write_count, "dispatch->read_writes")?,
                );
                push(key, slice(d.atomics, d.atomic_count, "dispatch->atomics")?);
                push(
                    key,
                    slice(d.overwrites, d.overwrite_count, "dispatch->overwrites")?,
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::cmd_desc::*;
    use super::*;

    fn color(load: u32) -> agx_ws_color_attachment {
        agx_ws_color_attachment {
            range: agx_ws_range {
                base: 0x1_0000_0000,
                size: 0x4000,
            },
            load,
            store: agx_ws_store_op::AGX_WS_STORE_OP_STORE as u32,
            blend: 0,
            pad: 0,
        }
    }

    fn pass(colors: &[agx_ws_color_attachment]) -> agx_ws_render_access {
        agx_ws_render_access {
            struct_size: size_of::<agx_ws_render_access>() as u32,
            flags: 0,
            color_count: colors.len() as u32,
            shader_access_count: 0,
            occlusion_query_count: 0,
            xfb_count: 0,
            timestamp_count: 0,
            pad: 0,
            colors: colors.as_ptr(),
            depth: std::ptr::null(),
            stencil: std::ptr::null(),
            shader_accesses: std::ptr::null(),
            occlusion_queries: std::ptr::null(),
            xfbs: std::ptr::null(),
            timestamps: std::ptr::null(),
        }
    }

    fn verdict(cache: &mut VerdictCache, a: &agx_ws_render_access) -> Verdict {
        let c = [agx_ws_command_access {
            render: a,
            compute: std::ptr::null(),
        }];
        // SAFETY: the description and its arrays live on this stack frame.
        unsafe { cache.verdict(&c, 0, Subqueue::Render) }.unwrap()
    }

    #[test]
    fn cached_verdicts_follow_the_contents_not_the_addresses() {
        let mut cache = VerdictCache::default();
        let clear = agx_ws_load_op::AGX_WS_LOAD_OP_CLEAR as u32;
        let load = agx_ws_load_op::AGX_WS_LOAD_OP_LOAD as u32;
        let mut colors = [color(clear)];
        let a = pass(&colors);
        assert!(verdict(&mut cache, &a).restartable());
        // The same memory rewritten with a load: a new verdict, not the cached one.
        colors[0].load = load;
        let a = pass(&colors);
        assert_eq!(verdict(&mut cache, &a).reasons, Reasons::LOAD_STORE_SAME);
        assert_eq!(cache.entries.len(), 2);
        // Equal contents elsewhere: the cached verdict.
        let other = [color(clear)];
        assert!(verdict(&mut cache, &pass(&other)).restartable());
        assert_eq!(cache.entries.len(), 2);
        // More descriptions than the cache holds: still right.
        for i in 0..3 * CACHED as u64 {
            let mut c = [color(if i % 2 == 0 { clear } else { load })];
            c[0].range.base += i << 14;
            assert_eq!(verdict(&mut cache, &pass(&c)).restartable(), i % 2 == 0);
        }
        assert_eq!(cache.entries.len(), CACHED);
    }
}
