//! Queues and submission.
//!
//! A queue owns a timeline sync object: submission `n` of the queue signals point `n`, which is
//! the job's out-fence. With the fault-report extension it also owns a ring of result slots in
//! one BO: the kernel's 1-based command sequence number `s` writes slot `(s - 1) % RING_SLOTS`,
//! so no submit allocates. A slot is reused only when the GPU is done with its command *and*
//! its job has read its outcome (or was dropped): a job's records are never overwritten under
//! it, and a record is never taken for another job's. When a submit finds a slot it needs still
//! in use (more than `RING_SLOTS` commands in flight or unread), it never waits: that job's
//! records go to a BO of its own.
//!
//! A command buffer longer than `max_commands_per_submission` is split into several submits,
//! each waiting on the previous one's timeline point (which carries the first one's in-syncs)
//! and only the last signalling the caller's out-syncs, so order and synchronization hold.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use agx_uapi::asahi::*;
use agx_uapi::fault_ext as ext;

use crate::analysis::Verdict;
use crate::bo::{Bo, BoFlags};
use crate::cmd::{driver, CommandBuffer, JobInfoSlot, ResultRecord, Subqueue};
use crate::error::{Error, Result};
use crate::ioctl;
use crate::job::{ChunkFences, Job, QueueState, RecordPlace};
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
    /// Per slot: the sequence number of the command whose job may still read the record there
    /// (pinned from its submit until the job has read its outcome or is dropped); 0 when free.
    pins: Box<[AtomicU64]>,
}

impl ResultRing {
    fn new(bo: Bo) -> ResultRing {
        ResultRing {
            bo,
            pins: (0..RING_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The slot of kernel sequence number `seqno` (1-based).
    pub(crate) fn slot(seqno: u64) -> usize {
        ((seqno - 1) % RING_SLOTS) as usize
    }

    /// The byte offset of `seqno`'s slot.
    pub(crate) fn offset(seqno: u64) -> u64 {
        Self::slot(seqno) as u64 * SLOT_BYTES
    }

    fn pin(&self, seqnos: Range<u64>) {
        for s in seqnos {
            self.pins[Self::slot(s)].store(s, Ordering::Relaxed);
        }
    }

    fn pinned(&self, seqno: u64) -> bool {
        // Acquire: the reads of the job that unpinned it happen before our reuse.
        self.pins[Self::slot(seqno)].load(Ordering::Acquire) != 0
    }

    /// The job owning `seqnos` is done reading them (or gone).
    pub(crate) fn release(&self, seqnos: Range<u64>) {
        for s in seqnos {
            let _ = self.pins[Self::slot(s)].compare_exchange(
                s,
                0,
                Ordering::Release,
                Ordering::Relaxed,
            );
        }
    }
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
                Some(ResultRing::new(bo))
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
        let shared = Arc::new(QueueShared { timeline, ring });
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
        let records = place_records(q, st, first_seqno, total as u64)?;
        let mut fences = ChunkFences::default();
        let mut start = 0;
        while start < total {
            let end = (start + max).min(total);
            let chunk_seqno = st.seqno + 1;
            let point = st.next_point;
            let own = own_fence(q)?;
            let slot = |i: usize| -> Option<JobInfoSlot> {
                let seqno = chunk_seqno + (i - start) as u64;
                record_slot(&records, sh.ring.as_ref(), first_seqno, seqno)
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
                    (first_point, first_seqno),
                    start,
                    records,
                    fences,
                    cb,
                );
            }
            fences.push(own);
            committed(sh, st, &records, (end - start) as u64);
            start = end;
        }
        Ok(Job::new(
            q.shared.clone(),
            first_point..st.next_point,
            first_seqno,
            total as u32,
            (cb.result_record(), records),
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
        if expected.is_some_and(|n| n > max) {
            return Err(Error::InvalidArgument(
                "more hardware commands than one submit takes",
            ));
        }
        // The count is known once the cmdbuf is parsed: place records for the most it may be.
        let records = place_records(q, st, seqno, expected.unwrap_or(max) as u64)?;
        let record = ResultRecord::default();
        let count = driver::tag::<Error>(
            cmdbuf,
            &mut |i, sub| {
                let Some(slot) = record_slot(&records, sh.ring.as_ref(), seqno, seqno + i as u64)
                else {
                    return Ok(None);
                };
                let v = verdict(i, sub)?;
                Ok(Some(ext::drm_asahi_ext_job_info {
                    flags: v.job_info_flags() | record.flags(),
                    reasons: v.job_info_reasons(),
                    result_handle: slot.handle,
                    pad: 0,
                    result_offset: slot.offset,
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
        committed(sh, st, &records, count as u64);
        let mut fences = ChunkFences::default();
        fences.push(own);
        Ok(Job::new(
            q.shared.clone(),
            point..point + 1,
            seqno,
            count as u32,
            (record, records),
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

/// Where the records of up to `count` commands from sequence number `first` go: the ring when
/// its slots are free now, else a BO of the job's own. Never waits for the GPU or a reader.
fn place_records(
    q: &QueueInner,
    st: &mut Submitting,
    first: u64,
    count: u64,
) -> Result<RecordPlace> {
    let sh = &*q.shared;
    match &sh.ring {
        None => Ok(RecordPlace::None),
        Some(ring) if slots_free(ring, &sh.timeline, st, first, count)? => Ok(RecordPlace::Ring),
        Some(_) => {
            let bo = Bo::new(&q.dev, count * SLOT_BYTES, BoFlags::WRITEBACK, None)?;
            bo.map()?;
            Ok(RecordPlace::Own(bo))
        }
    }
}

/// Where the kernel writes the record of command `seqno` of a job whose first is `first`.
fn record_slot(
    records: &RecordPlace,
    ring: Option<&ResultRing>,
    first: u64,
    seqno: u64,
) -> Option<JobInfoSlot> {
    match records {
        RecordPlace::None => None,
        RecordPlace::Ring => Some(JobInfoSlot {
            handle: ring?.bo.handle(),
            offset: ResultRing::offset(seqno),
        }),
        RecordPlace::Own(bo) => Some(JobInfoSlot {
            handle: bo.handle(),
            offset: (seqno - first) * SLOT_BYTES,
        }),
    }
}

/// Whether the ring slots of `count` commands from sequence number `first` may be reused now:
/// every command that used them is done (the timeline says so, asked without waiting) and its
/// job has read its outcome or is gone. Never blocks.
fn slots_free(
    ring: &ResultRing,
    timeline: &SyncObj,
    st: &mut Submitting,
    first: u64,
    count: u64,
) -> Result<bool> {
    if count > RING_SLOTS {
        return Ok(false);
    }
    let seqnos = first..first + count;
    if seqnos.clone().any(|s| ring.pinned(s)) {
        return Ok(false);
    }
    let need = seqnos
        .map(|s| st.slot_points[ResultRing::slot(s)])
        .max()
        .unwrap_or(0);
    if need > st.completed {
        st.completed = timeline.query(false)?;
    }
    Ok(need <= st.completed)
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
/// next timeline point and used the next sequence numbers; ring slots stay pinned for the job.
fn committed(sh: &QueueShared, st: &mut Submitting, records: &RecordPlace, count: u64) {
    let seqnos = st.seqno + 1..st.seqno + 1 + count;
    if let (RecordPlace::Ring, Some(ring)) = (records, &sh.ring) {
        ring.pin(seqnos.clone());
        for s in seqnos {
            st.slot_points[ResultRing::slot(s)] = st.next_point;
        }
    }
    st.next_point += 1;
    st.seqno += count;
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
    (first_point, first_seqno): (u64, u64),
    accepted: usize,
    records: RecordPlace,
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
        (cb.result_record(), records),
        fences,
        Some(refused),
    ))
}
