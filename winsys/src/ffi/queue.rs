//! Queues, submission and jobs: outcomes as plain C structs, and the queue state of the
//! fault-report extension.

use std::os::fd::IntoRawFd;
use std::os::raw::c_int;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use super::cmd::agx_ws_cmdbuf;
use super::guard::{call, einval, out, output, slice, Fail, FfiResult, Sized32};
use super::handle::{self, lookup, lookup_opt};
use super::memory::agx_ws_vm;
use super::reset::agx_ws_reset_tracker;
use super::sync::{agx_ws_sync_point, deadline, resolve};
use crate::outcome::{FaultInfo, Guilt, JobOutcome};
use crate::reset::{ResetStatus, ResetTracker};
use crate::vulkan::{kind_code, unit_code, vk_result_for};
use crate::{Error, Job, Priority, Queue, SyncPoint};

/// A scheduling queue on a VM (one per GL context or VkQueue).
pub struct agx_ws_queue {
    _opaque: [u8; 0],
}

/// One submission; its outcome is read with `agx_ws_job_wait`.
pub struct agx_ws_job {
    _opaque: [u8; 0],
}

pub(crate) struct QueueObj {
    pub(crate) queue: Queue,
    /// The reset tracker job outcomes of this queue feed (`agx_ws_queue_set_reset_tracker`).
    pub(crate) tracker: Mutex<Option<Arc<ResetTracker>>>,
    /// Verdicts of the access descriptions of `agx_ws_queue_submit_drm`.
    pub(crate) verdicts: Mutex<super::drm_submit::VerdictCache>,
}

pub(crate) struct JobObj {
    pub(crate) job: Job,
    pub(crate) tracker: Option<Arc<ResetTracker>>,
    /// Its queue, to ask why a cancelled job never ran.
    pub(crate) queue: Queue,
    /// Its outcome was given to a Vulkan device's fault state (`agx_ws_vk_device_wait_job`).
    pub(crate) vk_observed: AtomicBool,
}

/// Queue priority (`agx_ws_queue_create`).
#[repr(u32)]
pub enum agx_ws_priority {
    AGX_WS_PRIORITY_LOW = 0,
    AGX_WS_PRIORITY_MEDIUM = 1,
    AGX_WS_PRIORITY_HIGH = 2,
    AGX_WS_PRIORITY_REALTIME = 3,
}

/// What happened to a job (`agx_ws_job_outcome::status`).
#[repr(u32)]
pub enum agx_ws_job_status {
    /// Ran once and completed.
    AGX_WS_JOB_COMPLETE = 0,
    /// Completed after being re-run (`replay_count` times) as an innocent victim of recoveries:
    /// its memory is exactly that of one clean run.
    AGX_WS_JOB_REPLAYED = 1,
    /// Ended by a GPU fault (`fault` says which).
    AGX_WS_JOB_FAULTED = 2,
    /// Ended by the watchdog: it hung.
    AGX_WS_JOB_TIMED_OUT = 3,
    /// Stopped while running by a recovery (or torn down with its queue).
    AGX_WS_JOB_KILLED = 4,
    /// Never ran: its queue was banned first.
    AGX_WS_JOB_CANCELLED = 5,
    /// The GPU is gone (firmware crash).
    AGX_WS_JOB_DEVICE_GONE = 6,
}

/// Whose fault a failed job was. The values of a failed job equal the `agx_ws_reset_status` it
/// implies.
#[repr(u32)]
pub enum agx_ws_guilt {
    /// The job succeeded.
    AGX_WS_GUILT_NONE = 0,
    /// This job caused the fault or hang.
    AGX_WS_GUILT_GUILTY = 1,
    /// A victim of another job's recovery.
    AGX_WS_GUILT_INNOCENT = 2,
    /// The kernel cannot say (upstream uAPI).
    AGX_WS_GUILT_UNKNOWN = 3,
}

/// Kind of GPU fault (`agx_ws_fault::kind`).
#[repr(u32)]
pub enum agx_ws_fault_kind {
    AGX_WS_FAULT_UNKNOWN = 0,
    /// Access to an unmapped GPU address.
    AGX_WS_FAULT_UNMAPPED = 1,
    /// Write to a read-only mapping.
    AGX_WS_FAULT_PERMISSION = 2,
    /// The watchdog ended a hang.
    AGX_WS_FAULT_TIMEOUT = 3,
    /// Injected for testing (`agx_ws_queue_inject`).
    AGX_WS_FAULT_INJECTED = 4,
    /// The firmware crashed.
    AGX_WS_FAULT_FIRMWARE = 5,
    /// A control stream the GPU could not decode.
    AGX_WS_FAULT_INVALID_STREAM = 6,
}

/// The GPU unit that reported a fault (`agx_ws_fault::unit`).
#[repr(u32)]
pub enum agx_ws_fault_unit {
    AGX_WS_UNIT_UNKNOWN = 0,
    AGX_WS_UNIT_VDM = 1,
    AGX_WS_UNIT_CDM = 2,
    AGX_WS_UNIT_VERTEX = 3,
    AGX_WS_UNIT_FRAGMENT = 4,
    AGX_WS_UNIT_COMPUTE = 5,
    AGX_WS_UNIT_FIRMWARE = 6,
}

/// One GPU fault.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct agx_ws_fault {
    /// An `agx_ws_fault_kind`.
    pub kind: u32,
    /// An `agx_ws_fault_unit`.
    pub unit: u32,
    /// Non-zero: the faulting access was a write.
    pub write: u32,
    /// Non-zero: `address` is the faulting GPU VA (access faults).
    pub has_address: u32,
    pub address: u64,
}

/// The outcome of a job. Set `struct_size = sizeof(agx_ws_job_outcome)` before
/// `agx_ws_job_wait`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct agx_ws_job_outcome {
    pub struct_size: u32,
    /// An `agx_ws_job_status`.
    pub status: u32,
    /// An `agx_ws_guilt` (`AGX_WS_GUILT_NONE` when the job succeeded).
    pub guilt: u32,
    /// Replays of an `AGX_WS_JOB_REPLAYED` job.
    pub replay_count: u32,
    /// The `agx_ws_reset_status` (`pipe_reset_status`) this outcome implies for its GL context
    /// (for a cancelled job, which never ran because its queue was banned: the guilt the kernel
    /// recorded for the ban).
    pub reset_status: u32,
    /// The `VkResult` it maps to: `VK_SUCCESS` (0) or `VK_ERROR_DEVICE_LOST` (-4).
    pub vk_result: i32,
    /// Non-zero: `fault` is filled in.
    pub has_fault: u32,
    pub pad: u32,
    pub fault: agx_ws_fault,
}

// SAFETY: repr(C), struct_size first, integers only.
unsafe impl Sized32 for agx_ws_job_outcome {}

/// The kernel's view of a queue (`QUEUE_GET_STATE`, fault-report extension only). Set
/// `struct_size = sizeof(agx_ws_queue_state)`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct agx_ws_queue_state {
    pub struct_size: u32,
    /// Non-zero: the queue refuses work (`-ECANCELED`); make a new one.
    pub banned: u32,
    /// Why it was banned: an `agx_ws_guilt`.
    pub guilt: u32,
    /// Recoveries that touched this queue (also the invisible ones that replayed its work).
    pub reset_count: u32,
    /// Sequence number of the command whose fate banned the queue.
    pub ban_seqno: u64,
    /// Non-zero: `fault` is the fault that banned it.
    pub has_fault: u32,
    pub pad: u32,
    pub fault: agx_ws_fault,
}

// SAFETY: repr(C), struct_size first, integers only.
unsafe impl Sized32 for agx_ws_queue_state {}

/// Optional arguments of `agx_ws_queue_submit`. Set `struct_size = sizeof(agx_ws_submit_info)`.
#[repr(C)]
pub struct agx_ws_submit_info {
    pub struct_size: u32,
    pub wait_count: u32,
    /// Fences the job waits for before starting.
    pub waits: *const agx_ws_sync_point,
    pub signal_count: u32,
    pub pad: u32,
    /// Signalled when all of the job is done, whatever its outcome (failed jobs signal with an
    /// error: see `agx_ws_syncobj_status`).
    pub signals: *const agx_ws_sync_point,
}

// SAFETY: repr(C), struct_size first, integers and raw pointers only.
unsafe impl Sized32 for agx_ws_submit_info {}

pub(crate) fn guilt_code(g: Option<Guilt>) -> u32 {
    match g {
        None => agx_ws_guilt::AGX_WS_GUILT_NONE as u32,
        Some(Guilt::Guilty) => agx_ws_guilt::AGX_WS_GUILT_GUILTY as u32,
        Some(Guilt::Innocent) => agx_ws_guilt::AGX_WS_GUILT_INNOCENT as u32,
        Some(Guilt::Unknown) => agx_ws_guilt::AGX_WS_GUILT_UNKNOWN as u32,
    }
}

fn fault(f: Option<FaultInfo>) -> agx_ws_fault {
    match f {
        None => agx_ws_fault::default(),
        Some(f) => agx_ws_fault {
            kind: kind_code(f.kind) as u32,
            unit: unit_code(f.unit) as u32,
            write: f.write as u32,
            has_address: f.address.is_some() as u32,
            address: f.address.unwrap_or(0),
        },
    }
}

fn status(o: &JobOutcome) -> agx_ws_job_status {
    use agx_ws_job_status::*;
    match o {
        JobOutcome::Complete => AGX_WS_JOB_COMPLETE,
        JobOutcome::Replayed(_) => AGX_WS_JOB_REPLAYED,
        JobOutcome::Faulted { .. } => AGX_WS_JOB_FAULTED,
        JobOutcome::TimedOut => AGX_WS_JOB_TIMED_OUT,
        JobOutcome::Killed { .. } => AGX_WS_JOB_KILLED,
        JobOutcome::Cancelled => AGX_WS_JOB_CANCELLED,
        JobOutcome::DeviceGone => AGX_WS_JOB_DEVICE_GONE,
    }
}

fn c_outcome(o: &JobOutcome, reset: ResetStatus) -> agx_ws_job_outcome {
    agx_ws_job_outcome {
        struct_size: size_of::<agx_ws_job_outcome>() as u32,
        status: status(o) as u32,
        guilt: guilt_code(o.guilt()),
        replay_count: match o {
            JobOutcome::Replayed(n) => *n,
            _ => 0,
        },
        reset_status: reset as u32,
        vk_result: vk_result_for(o),
        has_fault: o.fault().is_some() as u32,
        pad: 0,
        fault: fault(o.fault()),
    }
}

/// The reset status an outcome implies for the queue's context. A cancelled job (it never
/// ran: its queue was banned first, or a submit was refused for that) takes the guilt the
/// kernel recorded for the ban, not its own unknown: a context whose killed job is seen after
/// the cancelled one behind it is innocent, not unknown.
fn reset_status(q: &Queue, o: &JobOutcome) -> ResetStatus {
    match o {
        JobOutcome::Cancelled => match q.state().ok().and_then(|s| s.guilt) {
            Some(Guilt::Guilty) => ResetStatus::Guilty,
            Some(Guilt::Innocent) => ResetStatus::Innocent,
            _ => ResetStatus::Unknown,
        },
        o => ResetStatus::from_outcome(o),
    }
}

/// The reset status a submit error implies for the queue's context, if any: a banned queue
/// (`ECANCELED`) takes the guilt the kernel recorded, a gone device is unknown.
fn submit_error_status(q: &Queue, e: &Error) -> Option<ResetStatus> {
    Some(reset_status(q, &JobOutcome::from_submit_error(e)?))
}

/// What a submit to `queue` gives the C caller: a new job handle (feeding `tracker`), or its
/// error, which a refusal for a reset (a banned queue, a gone device) first reports to
/// `tracker`. Call it with no lock held: the tracker's callback may call back into the library.
pub(crate) fn job_handle(
    queue: &Queue,
    tracker: Option<Arc<ResetTracker>>,
    submitted: Result<Job, Error>,
) -> FfiResult<*mut agx_ws_job> {
    match submitted {
        Ok(job) => Ok(handle::register(JobObj {
            job,
            tracker,
            queue: queue.clone(),
            vk_observed: AtomicBool::new(false),
        })),
        Err(e) => {
            if let (Some(t), Some(s)) = (&tracker, submit_error_status(queue, &e)) {
                t.observe(s);
            }
            Err(Fail::from(e))
        }
    }
}

fn sync_points(v: &[(Arc<crate::SyncObj>, Option<u64>)]) -> Vec<SyncPoint<'_>> {
    v.iter()
        .map(|(o, p)| SyncPoint { obj: o, point: *p })
        .collect()
}

/// Creates a queue on `vm` with `priority` (an `agx_ws_priority`).
///
/// # Safety
///
/// `out_queue` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_queue_create(
    vm: *mut agx_ws_vm,
    priority: u32,
    out_queue: *mut *mut agx_ws_queue,
) -> c_int {
    call("agx_ws_queue_create", || {
        // SAFETY: the caller's contract, forwarded.
        let out_queue = unsafe { out(out_queue, "out_queue") }?;
        let vm = lookup(vm)?;
        let p = match priority {
            0 => Priority::Low,
            1 => Priority::Medium,
            2 => Priority::High,
            3 => Priority::Realtime,
            _ => return Err(einval("priority is not an agx_ws_priority")),
        };
        let queue = Queue::new(&vm, p)?;
        out_queue.write(handle::register(QueueObj {
            queue,
            tracker: Mutex::new(None),
            verdicts: Mutex::default(),
        }));
        Ok(0)
    })
}

/// Destroys the queue. Work still pending is killed by the kernel: its jobs end
/// `AGX_WS_JOB_KILLED` and their fences signal `-ECANCELED`, in bounded time.
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_queue_destroy(queue: *mut agx_ws_queue) -> c_int {
    call("agx_ws_queue_destroy", || handle::destroy(queue))
}

/// Makes the outcomes of this queue's jobs (read by `agx_ws_job_wait`) and its refused submits
/// feed `tracker` (NULL: stop). Jobs submitted earlier keep the tracker they had. This is how a
/// Gallium context gets `get_device_reset_status` for free.
///
/// # Safety
///
/// Always safe: handles are looked up, never dereferenced.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_queue_set_reset_tracker(
    queue: *mut agx_ws_queue,
    tracker: *mut agx_ws_reset_tracker,
) -> c_int {
    call("agx_ws_queue_set_reset_tracker", || {
        let q = lookup(queue)?;
        let t = lookup_opt(tracker)?;
        *q.tracker.lock().unwrap_or_else(|e| e.into_inner()) = t;
        Ok(0)
    })
}

/// Submits every command of `cmdbuf` (split into several kernel submits if it is longer than the
/// device allows, in order). `info` may be NULL (no syncs). On success `*out_job` is a new job
/// handle for `agx_ws_job_wait`.
///
/// Errors: `-ECANCELED` the queue is banned (its context was reset: the job is
/// `AGX_WS_JOB_CANCELLED`; with a reset tracker the reset is recorded); `-ENODEV` the device is
/// gone; `-EINVAL` empty command buffer, a sync object of another device, bad `info`.
///
/// # Safety
///
/// `info` is NULL or points to a readable `agx_ws_submit_info` (at least its `struct_size`)
/// whose arrays hold their counts of elements; `out_job` is NULL or valid for a write.
///
/// Thread safety: thread-safe (submits to one queue are serialized).
#[no_mangle]
pub unsafe extern "C" fn agx_ws_queue_submit(
    queue: *mut agx_ws_queue,
    cmdbuf: *mut agx_ws_cmdbuf,
    info: *const agx_ws_submit_info,
    out_job: *mut *mut agx_ws_job,
) -> c_int {
    call("agx_ws_queue_submit", || {
        // SAFETY: the caller's contract, forwarded.
        let out_job = unsafe { out(out_job, "out_job") }?;
        let q = lookup(queue)?;
        let cb = lookup(cmdbuf)?;
        let (waits, signals) = if info.is_null() {
            (Vec::new(), Vec::new())
        } else {
            // SAFETY: the caller's contract, forwarded.
            let i = unsafe { super::guard::input(info, "info") }?;
            // SAFETY: the caller's contract: the arrays hold their counts of sync points.
            let w = unsafe { slice(i.waits, i.wait_count, "info->waits") }?;
            // SAFETY: as above.
            let s = unsafe { slice(i.signals, i.signal_count, "info->signals") }?;
            (resolve(w)?, resolve(s)?)
        };
        let tracker = q.tracker.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let submitted = {
            let cb = cb.lock().unwrap_or_else(|e| e.into_inner());
            q.queue
                .submit(&cb, &sync_points(&waits), &sync_points(&signals))
        };
        // The command buffer is unlocked again: a reset callback may use it.
        out_job.write(job_handle(&q.queue, tracker, submitted)?);
        Ok(0)
    })
}

/// The kernel's id of the queue (`drm_asahi_queue_create::queue_id`), e.g. for a driver's own
/// bookkeeping or debug output.
///
/// # Safety
///
/// `out_id` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_queue_get_id(queue: *mut agx_ws_queue, out_id: *mut u32) -> c_int {
    call("agx_ws_queue_get_id", || {
        // SAFETY: the caller's contract, forwarded.
        let out_id = unsafe { out(out_id, "out_id") }?;
        out_id.write(lookup(queue)?.queue.id());
        Ok(0)
    })
}

/// Waits until everything submitted so far on the queue is done, at most `timeout_ns`.
///
/// Errors: `-ETIME` timeout.
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe; may block.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_queue_wait_idle(
    queue: *mut agx_ws_queue,
    timeout_ns: u64,
) -> c_int {
    call("agx_ws_queue_wait_idle", || {
        lookup(queue)?.queue.wait_idle(deadline(timeout_ns))?;
        Ok(0)
    })
}

/// The kernel's view of the queue: banned or not, why, resets seen, the fault that banned it.
///
/// Errors: `-ENOTSUP` on an upstream kernel (no fault-report extension).
///
/// # Safety
///
/// `out_state` is NULL or points to a writable `agx_ws_queue_state` (at least its
/// `struct_size`).
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_queue_get_state(
    queue: *mut agx_ws_queue,
    out_state: *mut agx_ws_queue_state,
) -> c_int {
    call("agx_ws_queue_get_state", || {
        let q = lookup(queue)?;
        // SAFETY: the caller's contract, forwarded.
        let o = unsafe { output(out_state, "out_state") }?;
        let s = q.queue.state()?;
        o.write(agx_ws_queue_state {
            struct_size: size_of::<agx_ws_queue_state>() as u32,
            banned: s.banned as u32,
            guilt: guilt_code(s.guilt),
            reset_count: s.reset_count,
            ban_seqno: s.ban_seqno,
            has_fault: s.fault.is_some() as u32,
            pad: 0,
            fault: fault(s.fault),
        });
        Ok(0)
    })
}

/// Waits for the job at most `timeout_ns` (0 polls) and fills `*out_outcome`. Every job ends:
/// failed jobs are outcomes here, not errors. With a reset tracker on its queue (when
/// submitted), a failed outcome is recorded there.
///
/// Errors: `-ETIME` not finished within the timeout (`*out_outcome` untouched).
///
/// # Safety
///
/// `out_outcome` is NULL or points to a writable `agx_ws_job_outcome` (at least its
/// `struct_size`).
///
/// Thread safety: thread-safe; may block.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_job_wait(
    job: *mut agx_ws_job,
    timeout_ns: u64,
    out_outcome: *mut agx_ws_job_outcome,
) -> c_int {
    call("agx_ws_job_wait", || {
        let j = lookup(job)?;
        // SAFETY: the caller's contract, forwarded.
        let o = unsafe { output(out_outcome, "out_outcome") }?;
        let (outcome, reset) = wait(&j, timeout_ns)?;
        o.write(c_outcome(&outcome, reset));
        Ok(0)
    })
}

/// Waits for a job and feeds its tracker with the reset status it implies.
pub(crate) fn wait(j: &JobObj, timeout_ns: u64) -> FfiResult<(JobOutcome, ResetStatus)> {
    let outcome = if timeout_ns == 0 {
        // A poll: free of ioctls once the job's result records are final.
        j.job.poll()?.ok_or(Error::Timeout)?
    } else {
        j.job.wait(deadline(timeout_ns))?
    };
    let reset = reset_status(&j.queue, &outcome);
    if let Some(t) = &j.tracker {
        t.observe(reset);
    }
    Ok((outcome, reset))
}

/// Exports the job's out-fence (signalled when all of it is done) as a sync_file; the caller
/// owns the fd. Its status (`agx_ws_sync_file_status`) carries the job's fence error.
///
/// # Safety
///
/// `out_fd` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_job_export_sync_file(
    job: *mut agx_ws_job,
    out_fd: *mut c_int,
) -> c_int {
    call("agx_ws_job_export_sync_file", || {
        // SAFETY: the caller's contract, forwarded.
        let out_fd = unsafe { out(out_fd, "out_fd") }?;
        let j = lookup(job)?;
        let (obj, point) = j.job.fence();
        out_fd.write(obj.export_sync_file(Some(point))?.into_raw_fd());
        Ok(0)
    })
}

/// Destroys the job handle (the work itself goes on).
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_job_destroy(job: *mut agx_ws_job) -> c_int {
    call("agx_ws_job_destroy", || handle::destroy(job))
}
