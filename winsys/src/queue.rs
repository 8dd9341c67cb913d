//! Queues and submission.
//!
//! A queue owns a timeline sync object: submission `n` of the queue signals point `n`, which is
//! the job's out-fence. With the fault-report extension it also owns a ring of result slots in
//! one BO: the kernel's 1-based command sequence number `s` writes slot `(s - 1) % RING_SLOTS`,
//! so no submit allocates, and a record's `seqno` field tells whether it was reused since.
//!
//! A command buffer longer than `max_commands_per_submission` is split into several submits,
//! each waiting on the previous one's timeline point (which carries the first one's in-syncs)
//! and only the last signalling the caller's out-syncs, so order and synchronization hold.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use agx_uapi::asahi::*;
use agx_uapi::fault_ext as ext;

use crate::analysis::Verdict;
use crate::bo::{Bo, BoFlags};
use crate::cmd::{driver, CommandBuffer, JobInfoSlot, ResultRecord, Subqueue};
use crate::error::{Error, Result};
use crate::ioctl;
use crate::job::{ChunkFences, Job, QueueState};
use crate::outcome::JobOutcome;
use crate::sync::{Deadline, SyncObj, WaitFlags};
use crate::vm::Vm;
use crate::Device;

/// Result slots per queue.
pub const RING_SLOTS: u64 = 4096;
/// Stride of the result slots: room for the largest record (with timestamps): 256 KiB a queue.
pub const SLOT_BYTES: u64 = core::mem::size_of::<ext::drm_asahi_ext_result>() as u64;

/// Scheduling priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    Low,
    Medium,
    High,
    Realtime,
}

impl Priority {
    fn raw(self) -> u32 {
        match self {
            Priority::Low => DRM_ASAHI_PRIORITY_LOW,
            Priority::Medium => DRM_ASAHI_PRIORITY_MEDIUM,
            Priority::High => DRM_ASAHI_PRIORITY_HIGH,
            Priority::Realtime => DRM_ASAHI_PRIORITY_REALTIME,
        }
    }
}

/// A sync object and, for a timeline, a point.
#[derive(Clone, Copy, Debug)]
pub struct SyncPoint<'a> {
    pub obj: &'a SyncObj,
    pub point: Option<u64>,
}

impl<'a> SyncPoint<'a> {
    pub fn binary(obj: &'a SyncObj) -> Self {
        SyncPoint { obj, point: None }
    }

    pub fn timeline(obj: &'a SyncObj, point: u64) -> Self {
        SyncPoint {
            obj,
            point: Some(point),
        }
    }

    fn raw(&self) -> drm_asahi_sync {
        match self.point {
            None => drm_asahi_sync {
                sync_type: DRM_ASAHI_SYNC_SYNCOBJ,
                handle: self.obj.handle(),
                timeline_value: 0,
            },
            Some(p) => drm_asahi_sync {
                sync_type: DRM_ASAHI_SYNC_TIMELINE_SYNCOBJ,
                handle: self.obj.handle(),
                timeline_value: p,
            },
        }
    }
}

/// Per-queue ring of result records.
#[derive(Debug)]
pub(crate) struct ResultRing {
    pub(crate) bo: Bo,
}

#[derive(Debug)]
struct Submitting {
    next_point: u64,
    /// Kernel sequence numbers handed out so far on this queue.
    seqno: u64,
    /// Highest timeline point known complete.
    completed: u64,
    cmdbuf: Vec<u8>,
    syncs: Vec<drm_asahi_sync>,
    /// Timeline point of the submit that last used each result slot (0: never).
    slot_points: Vec<u64>,
}

/// What a job needs after its queue is gone: the timeline and the result ring.
#[derive(Debug)]
pub(crate) struct QueueShared {
    pub(crate) timeline: SyncObj,
    pub(crate) ring: Option<ResultRing>,
    /// Kernel sequence numbers handed out so far: a job whose first command is more than
    /// `RING_SLOTS` behind has had its records overwritten.
    pub(crate) seqno: AtomicU64,
}

#[derive(Debug)]
pub(crate) struct QueueInner {
    pub(crate) dev: Device,
    pub(crate) vm: Vm,
    pub(crate) id: u32,
    pub(crate) shared: Arc<QueueShared>,
    submitting: Mutex<Submitting>,
}

impl Drop for QueueInner {
    fn drop(&mut self) {
        // Pending work is killed by the kernel (fences signal -ECANCELED).
        let _ = ioctl::queue_destroy(self.dev.kernel(), self.id);
    }
}

/// A scheduling queue on a VM.
#[derive(Clone, Debug)]
pub struct Queue {
    pub(crate) inner: Arc<QueueInner>,
}

impl Queue {
    /// Creates a queue on `vm`; its USC base is the VM's shader window.
    pub fn new(vm: &Vm, priority: Priority) -> Result<Queue> {
        let dev = vm.device().clone();
        // Everything that can fail comes before the kernel queue, so nothing needs undoing.
        let timeline = SyncObj::new(&dev, false)?;
        let ring = match dev.fault_ext() {
            Some(e) if e.results => {
                let bo = Bo::new(&dev, RING_SLOTS * SLOT_BYTES, BoFlags::WRITEBACK, None)?;
                // Mapped now, so reading an outcome never needs an ioctl (it works on a dead
                // device too).
                bo.map()?;
                Some(ResultRing { bo })
            }
            _ => None,
        };
        let id = ioctl::queue_create(dev.kernel(), vm.id(), priority.raw(), vm.usc_base())?;
        let slot_points = if ring.is_some() {
            vec![0; RING_SLOTS as usize]
        } else {
            Vec::new()
        };
        let submitting = Submitting {
            next_point: 1,
            seqno: 0,
            completed: 0,
            cmdbuf: Vec::with_capacity(4096),
            syncs: Vec::with_capacity(16),
            slot_points,
        };
        let shared = Arc::new(QueueShared {
            timeline,
            ring,
            seqno: AtomicU64::new(0),
        });
        Ok(Queue {
            inner: Arc::new(QueueInner {
                dev,
                vm: vm.clone(),
                id,
                shared,
                submitting: Mutex::new(submitting),
            }),
        })
    }

    pub fn id(&self) -> u32 {
        self.inner.id
    }

    pub fn vm(&self) -> &Vm {
        &self.inner.vm
    }

    pub fn device(&self) -> &Device {
        &self.inner.dev
    }

    /// Submits `cb`, waiting on `waits` and signalling `signals` when all of it is done.
    pub fn submit(
        &self,
        cb: &CommandBuffer,
        waits: &[SyncPoint<'_>],
        signals: &[SyncPoint<'_>],
    ) -> Result<Job> {
        let q = &self.inner;
        let sh = &*q.shared;
        let k = q.dev.kernel();
        if waits
            .iter()
            .chain(signals)
            .any(|s| !s.obj.device().same(&q.dev))
        {
            return Err(Error::InvalidArgument("sync object of another device"));
        }
        let total = cb.hw_command_count();
        if total == 0 {
            return Err(Error::InvalidArgument("empty command buffer"));
        }
        let max = q.dev.params().max_commands_per_submission.max(1) as usize;
        let mut st = q.submitting.lock().unwrap_or_else(|e| e.into_inner());
        let st = &mut *st;
        let first_seqno = st.seqno + 1;
        let first_point = st.next_point;
        let mut fences = ChunkFences::default();
        let mut start = 0;
        while start < total {
            let end = (start + max).min(total);
            let chunk_seqno = st.seqno + 1;
            let point = st.next_point;
            if sh.ring.is_some() {
                reclaim_slots(sh, st, chunk_seqno, (end - start) as u64)?;
            }
            let own = own_fence(q)?;
            let ring_handle = sh.ring.as_ref().map(|r| r.bo.handle());
            let slot = |i: usize| -> Option<JobInfoSlot> {
                Some(JobInfoSlot {
                    handle: ring_handle?,
                    offset: slot_offset(chunk_seqno + (i - start) as u64),
                })
            };
            cb.encode(start..end, &slot, &mut st.cmdbuf);
            st.syncs.clear();
            if start == 0 {
                st.syncs.extend(waits.iter().map(SyncPoint::raw));
            } else {
                st.syncs
                    .push(SyncPoint::timeline(&sh.timeline, point - 1).raw());
            }
            let in_count = st.syncs.len();
            st.syncs
                .push(SyncPoint::timeline(&sh.timeline, point).raw());
            if let Some(own) = &own {
                st.syncs.push(SyncPoint::binary(own).raw());
            }
            if end == total {
                st.syncs.extend(signals.iter().map(SyncPoint::raw));
            }
            if let Err(e) = ioctl::submit(k, q.id, &st.syncs, in_count, &st.cmdbuf) {
                if start == 0 {
                    return Err(e);
                }
                return refused_midway(
                    q,
                    st,
                    e,
                    signals,
                    first_point,
                    first_seqno,
                    start,
                    fences,
                    cb,
                );
            }
            fences.push(own);
            committed(sh, st, (end - start) as u64);
            start = end;
        }
        Ok(Job::new(
            q.shared.clone(),
            first_point..st.next_point,
            first_seqno,
            total as u32,
            cb.result_record(),
            fences,
            None,
        ))
    }

    /// Submits a cmdbuf the driver encoded itself (headers, payloads, attachment commands and
    /// barriers as the uAPI defines them: Mesa's) in one kernel submit. With the fault-report
    /// extension a job info goes right before each hardware command, with the flags of
    /// `verdict(i, subqueue)` (the analysis of the `i`-th hardware command's access description)
    /// and a slot of the queue's result ring (`verdict` is only called then, and its error
    /// fails the submit); the driver's own bytes are not changed. `waits`
    /// and `signals` are the caller's sync objects on the device's DRM file, as the uAPI names
    /// them: the library uses the handles for this submit only (as the kernel does) and adds the
    /// queue's timeline point, the job's fence.
    ///
    /// The driver splits long work itself: more hardware commands than
    /// `max_commands_per_submission` is [`Error::InvalidArgument`], and so is a cmdbuf with
    /// none, or with another number of hardware commands than `expected` (the caller's count of
    /// descriptions); a malformed one is [`Error::Cmdbuf`].
    pub fn submit_encoded(
        &self,
        cmdbuf: &[u8],
        expected: Option<usize>,
        verdict: &mut dyn FnMut(usize, Subqueue) -> Result<Verdict>,
        waits: &[drm_asahi_sync],
        signals: &[drm_asahi_sync],
    ) -> Result<Job> {
        let q = &self.inner;
        let sh = &*q.shared;
        let max = q.dev.params().max_commands_per_submission.max(1) as usize;
        let mut st = q.submitting.lock().unwrap_or_else(|e| e.into_inner());
        let st = &mut *st;
        let seqno = st.seqno + 1;
        let point = st.next_point;
        let ring_handle = sh.ring.as_ref().map(|r| r.bo.handle());
        let record = ResultRecord::default();
        let count = driver::tag::<Error>(
            cmdbuf,
            &mut |i, sub| {
                let Some(result_handle) = ring_handle else {
                    return Ok(None);
                };
                let v = verdict(i, sub)?;
                Ok(Some(ext::drm_asahi_ext_job_info {
                    flags: v.job_info_flags() | record.flags(),
                    reasons: v.job_info_reasons(),
                    result_handle,
                    pad: 0,
                    result_offset: slot_offset(seqno + i as u64),
                }))
            },
            &mut st.cmdbuf,
        )?;
        if count == 0 {
            return Err(Error::InvalidArgument("cmdbuf without a hardware command"));
        }
        if expected.is_some_and(|n| n != count) {
            return Err(Error::InvalidArgument(
                "not as many access descriptions as hardware commands",
            ));
        }
        if count > max {
            return Err(Error::InvalidArgument(
                "more hardware commands than one submit takes",
            ));
        }
        if sh.ring.is_some() {
            reclaim_slots(sh, st, seqno, count as u64)?;
        }
        let own = own_fence(q)?;
        st.syncs.clear();
        st.syncs.extend_from_slice(waits);
        st.syncs
            .push(SyncPoint::timeline(&sh.timeline, point).raw());
        if let Some(own) = &own {
            st.syncs.push(SyncPoint::binary(own).raw());
        }
        st.syncs.extend_from_slice(signals);
        ioctl::submit(q.dev.kernel(), q.id, &st.syncs, waits.len(), &st.cmdbuf)?;
        committed(sh, st, count as u64);
        let mut fences = ChunkFences::default();
        fences.push(own);
        Ok(Job::new(
            q.shared.clone(),
            point..point + 1,
            seqno,
            count as u32,
            record,
            fences,
            None,
        ))
    }

    /// The kernel's view of the queue (fault-report extension only).
    pub fn state(&self) -> Result<QueueState> {
        match self.inner.dev.fault_ext() {
            Some(e) if e.queue_state => QueueState::from_raw(&ioctl::queue_get_state(
                self.inner.dev.kernel(),
                self.inner.id,
            )?),
            _ => Err(Error::Unsupported(
                "QUEUE_GET_STATE needs the fault-report extension",
            )),
        }
    }

    /// Waits until everything submitted so far is done.
    pub fn wait_idle(&self, deadline: Deadline) -> Result<()> {
        let last = self
            .inner
            .submitting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_point
            - 1;
        if last == 0 {
            return Ok(());
        }
        self.inner
            .shared
            .timeline
            .wait(Some(last), deadline, WaitFlags::default())
    }
}

/// Where the kernel writes the record of command `seqno` (1-based) in the result ring.
fn slot_offset(seqno: u64) -> u64 {
    ((seqno - 1) % RING_SLOTS) * SLOT_BYTES
}

/// Upstream mode: a kernel submit's own fence, kept in a binary object, is the only place its
/// error survives (a signalled timeline point exports as a stub fence).
fn own_fence(q: &QueueInner) -> Result<Option<SyncObj>> {
    match q.shared.ring {
        None => Ok(Some(SyncObj::new(&q.dev, false)?)),
        Some(_) => Ok(None),
    }
}

/// Books a kernel submit of `count` hardware commands that the kernel accepted: it signals the
/// next timeline point and used the next sequence numbers (and their result slots).
fn committed(q: &QueueShared, st: &mut Submitting, count: u64) {
    let point = st.next_point;
    for s in st.seqno + 1..=st.seqno + count {
        if let Some(p) = st.slot_points.get_mut(((s - 1) % RING_SLOTS) as usize) {
            *p = point;
        }
    }
    st.next_point += 1;
    st.seqno += count;
    q.seqno.store(st.seqno, Ordering::Release);
}

/// Before slots are reused, the commands that used them must be done: their records are read
/// by their jobs. A command whose record is final is done (the kernel writes the final record
/// once, before its fences signal), which the ring says without an ioctl; otherwise this waits
/// (bounded) for the oldest submit that used a slot.
fn reclaim_slots(q: &QueueShared, st: &mut Submitting, first: u64, count: u64) -> Result<()> {
    let mut need = 0;
    for s in first..first + count {
        need = need.max(st.slot_points[((s - 1) % RING_SLOTS) as usize]);
    }
    if need <= st.completed || old_records_final(q, first, count)? {
        return Ok(());
    }
    q.timeline.wait(
        Some(need),
        Deadline::After(std::time::Duration::from_secs(60)),
        WaitFlags::default(),
    )?;
    st.completed = need;
    Ok(())
}

/// Whether the commands that last used the slots of sequence numbers `first..first + count`
/// (those `RING_SLOTS` earlier) have final records.
fn old_records_final(q: &QueueShared, first: u64, count: u64) -> Result<bool> {
    let Some(ring) = &q.ring else {
        return Ok(false);
    };
    let map = ring.bo.map()?;
    for s in first..first + count {
        let Some(old) = s.checked_sub(RING_SLOTS) else {
            continue;
        };
        let mut rec = ext::drm_asahi_ext_result::default();
        let size = ResultRecord::Fault.size();
        map.read(
            slot_offset(s) as usize,
            &mut bytemuck::bytes_of_mut(&mut rec)[..size],
        )
        .map_err(crate::error::kernel("result read"))?;
        // A status-only record (no sequence number) cannot be told apart: wait then.
        if rec.seqno != old || rec.status == ext::DRM_ASAHI_EXT_STATUS_PENDING {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A later chunk of a split submit was refused (typically `ECANCELED`: an earlier chunk already
/// faulted and got the queue banned, or `ENODEV`). The chunks already accepted are a job of
/// their own; the caller's out-syncs get the last accepted chunk's fence, so they signal, with
/// its error; the refusal becomes part of the job's outcome.
#[allow(clippy::too_many_arguments)]
fn refused_midway(
    q: &QueueInner,
    st: &Submitting,
    e: Error,
    signals: &[SyncPoint<'_>],
    first_point: u64,
    first_seqno: u64,
    accepted: usize,
    fences: ChunkFences,
    cb: &CommandBuffer,
) -> Result<Job> {
    let refused = JobOutcome::from_submit_error(&e).ok_or(e)?;
    let last = st.next_point - 1;
    for s in signals {
        s.obj
            .transfer_from(&q.shared.timeline, Some(last), s.point)?;
    }
    Ok(Job::new(
        q.shared.clone(),
        first_point..st.next_point,
        first_seqno,
        accepted as u32,
        cb.result_record(),
        fences,
        Some(refused),
    ))
}
