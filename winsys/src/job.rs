//! Submitted jobs: their out-fence and, once it signals, their outcome.

use std::sync::{Arc, OnceLock};

use agx_uapi::fault_ext as ext;
use rustix::io::Errno;

use crate::bo::Bo;
use crate::cmd::ResultRecord;
use crate::error::{Error, Result};
use crate::outcome::{FaultInfo, Guilt, JobOutcome};
use crate::queue::{QueueShared, ResultRing, SLOT_BYTES};
use crate::sync::{Deadline, FenceStatus, SyncObj, WaitFlags};

/// Where a job's result records are.
#[derive(Debug)]
pub(crate) enum RecordPlace {
    /// No records (upstream mode): fence errors only.
    None,
    /// The queue's ring, slot `(seqno - 1) % RING_SLOTS`, pinned until the job has read them.
    Ring,
    /// A BO of the job's own, command `i` at `i * SLOT_BYTES` (the ring's slots were still in
    /// use at submit).
    Own(Bo),
}

/// The binary sync objects holding each chunk's own fence, in upstream mode (no result
/// records): the only place a finished chunk's error survives.
#[derive(Debug, Default)]
pub(crate) enum ChunkFences {
    #[default]
    None,
    One(SyncObj),
    Many(Vec<SyncObj>),
}

impl ChunkFences {
    pub(crate) fn push(&mut self, f: Option<SyncObj>) {
        let Some(f) = f else { return };
        *self = match std::mem::take(self) {
            ChunkFences::None => ChunkFences::One(f),
            ChunkFences::One(a) => ChunkFences::Many(vec![a, f]),
            ChunkFences::Many(mut v) => {
                v.push(f);
                ChunkFences::Many(v)
            }
        };
    }

    fn as_slice(&self) -> &[SyncObj] {
        match self {
            ChunkFences::None => &[],
            ChunkFences::One(f) => std::slice::from_ref(f),
            ChunkFences::Many(v) => v,
        }
    }
}

/// One submission: one or more hardware commands (several kernel submits if it was split).
#[derive(Debug)]
pub struct Job {
    queue: Arc<QueueShared>,
    /// Timeline points of its kernel submits.
    points: std::ops::Range<u64>,
    first_seqno: u64,
    commands: u32,
    record: ResultRecord,
    records: RecordPlace,
    fences: ChunkFences,
    /// The rest of a split submit was refused after these commands were accepted.
    refused: Option<JobOutcome>,
    outcome: OnceLock<JobOutcome>,
}

impl Job {
    pub(crate) fn new(
        queue: Arc<QueueShared>,
        points: std::ops::Range<u64>,
        first_seqno: u64,
        commands: u32,
        (record, records): (ResultRecord, RecordPlace),
        fences: ChunkFences,
        refused: Option<JobOutcome>,
    ) -> Job {
        Job {
            queue,
            points,
            first_seqno,
            commands,
            record,
            records,
            fences,
            refused,
            outcome: OnceLock::new(),
        }
    }

    /// The out-fence: the queue's timeline object and the point that signals when the whole
    /// job is done (whatever its outcome).
    pub fn fence(&self) -> (&SyncObj, u64) {
        (&self.queue.timeline, self.points.end - 1)
    }

    /// Kernel sequence numbers of the job's commands on its queue.
    pub fn seqnos(&self) -> std::ops::Range<u64> {
        self.first_seqno..self.first_seqno + self.commands as u64
    }

    /// Waits for the job until `deadline` and returns its outcome; `Error::Timeout` if it has
    /// not finished by then.
    pub fn wait(&self, deadline: Deadline) -> Result<JobOutcome> {
        if let Some(o) = self.outcome.get() {
            return Ok(*o);
        }
        self.queue
            .timeline
            .wait(Some(self.points.end - 1), deadline, WaitFlags::default())?;
        let o = self.read_outcome()?;
        Ok(self.settle(o))
    }

    /// The outcome if the job has finished, without blocking. With result records this needs
    /// no ioctl: the kernel writes a command's record (sequence number, `PENDING`) at submit
    /// and its final record before the job's fences signal, so the records alone say whether
    /// the job is done. A driver can poll every job in flight for free.
    pub fn poll(&self) -> Result<Option<JobOutcome>> {
        if let Some(o) = self.outcome.get() {
            return Ok(Some(*o));
        }
        match self.records(false)? {
            RecordState::Final(o) => return Ok(Some(self.settle(o))),
            RecordState::Pending => return Ok(None),
            RecordState::Unavailable => {}
        }
        match self.wait(Deadline::NOW) {
            Ok(o) => Ok(Some(o)),
            Err(Error::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Keeps the job's final outcome (with the refusal of a split submit's rest).
    fn settle(&self, mut o: JobOutcome) -> JobOutcome {
        if let Some(r) = self.refused {
            o = worse(o, r);
        }
        let o = *self.outcome.get_or_init(|| o);
        // Read and kept: the ring slots may be reused.
        self.release_slots();
        o
    }

    fn release_slots(&self) {
        if let (RecordPlace::Ring, Some(ring)) = (&self.records, &self.queue.ring) {
            ring.release(self.seqnos());
        }
    }

    /// What the job's result records say; `signalled`: the job's fence is known to have
    /// signalled (then its records are final, unless the kernel never completed one). Its ring
    /// slots stay pinned until it has read them: nobody reuses them meanwhile.
    fn records(&self, signalled: bool) -> Result<RecordState> {
        let (bo, ring) = match (&self.records, &self.queue.ring) {
            (RecordPlace::Ring, Some(ring)) => (&ring.bo, true),
            (RecordPlace::Own(bo), _) => (bo, false),
            _ => return Ok(RecordState::Unavailable),
        };
        let map = bo.map()?;
        let size = self.record.size();
        let mut worst = JobOutcome::Complete;
        let mut pending = false;
        for seqno in self.seqnos() {
            let mut rec = ext::drm_asahi_ext_result::default();
            let off = if ring {
                ResultRing::offset(seqno)
            } else {
                (seqno - self.first_seqno) * SLOT_BYTES
            };
            map.read(off as usize, &mut bytemuck::bytes_of_mut(&mut rec)[..size])
                .map_err(crate::error::kernel("result read"))?;
            // Status-only records carry no sequence number: before the fence signalled, a
            // pending slot cannot be told from an older command's final record.
            let ours = match self.record {
                ResultRecord::StatusOnly => signalled,
                _ => rec.seqno == seqno,
            };
            match JobOutcome::from_record(&rec) {
                Some(o) if ours => worst = worse(worst, o),
                None if ours && !signalled => pending = true,
                _ => return Ok(RecordState::Unavailable),
            }
        }
        Ok(if pending {
            RecordState::Pending
        } else {
            RecordState::Final(worst)
        })
    }

    /// Reads the outcome of a finished job: result records with the extension, else the
    /// errors of the chunks' own fences. The job's outcome is its worst command's.
    fn read_outcome(&self) -> Result<JobOutcome> {
        if let RecordState::Final(o) = self.records(true)? {
            return Ok(o);
        }
        let mut worst = JobOutcome::Complete;
        // Upstream mode, or a record the kernel never completed (a device gone before writing
        // it): fence errors. A chunk's own binary fence keeps its error; a signalled timeline
        // point does not (last resort only).
        let own = self.fences.as_slice();
        let statuses =
            (0..self.points.end - self.points.start).map(|i| match own.get(i as usize) {
                Some(f) => f.status(None),
                None => self.queue.timeline.status(Some(self.points.start + i)),
            });
        for status in statuses {
            match status? {
                FenceStatus::Error(e) => worst = worse(worst, JobOutcome::from_fence_error(e)),
                FenceStatus::Signaled => {}
                FenceStatus::Pending => {
                    return Err(Error::Kernel {
                        call: "fence status",
                        errno: Errno::BUSY,
                    })
                }
            }
        }
        Ok(worst)
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.release_slots();
    }
}

/// What a job's result records say.
enum RecordState {
    /// Every command's record is final: the job's outcome.
    Final(JobOutcome),
    /// A command's record is still the `PENDING` one its submit wrote.
    Pending,
    /// No records (upstream mode), or one the kernel never completed: ask the fences.
    Unavailable,
}

/// Severity order of outcomes: the device going away beats a fault, beats a kill, beats a
/// cancellation, beats a replay, beats a clean run.
fn rank(o: &JobOutcome) -> u32 {
    match o {
        JobOutcome::Complete => 0,
        JobOutcome::Replayed(_) => 1,
        JobOutcome::Cancelled => 2,
        JobOutcome::Killed { .. } => 3,
        JobOutcome::Faulted { .. } | JobOutcome::TimedOut => 4,
        JobOutcome::DeviceGone => 5,
    }
}

fn worse(a: JobOutcome, b: JobOutcome) -> JobOutcome {
    match (a, b) {
        (JobOutcome::Replayed(x), JobOutcome::Replayed(y)) => JobOutcome::Replayed(x.max(y)),
        _ if rank(&b) > rank(&a) => b,
        _ => a,
    }
}

impl JobOutcome {
    /// The outcome of a submit the kernel refused: `ECANCELED` (banned queue) is a cancelled
    /// job, `ENODEV` a gone device; anything else is not an outcome but an error to report.
    pub fn from_submit_error(e: &Error) -> Option<JobOutcome> {
        JobOutcome::from_submit_errno(e.errno())
    }

    /// [`JobOutcome::from_submit_error`] for a raw errno (C callers).
    pub fn from_submit_errno(errno: Errno) -> Option<JobOutcome> {
        match errno {
            Errno::CANCELED => Some(JobOutcome::Cancelled),
            Errno::NODEV => Some(JobOutcome::DeviceGone),
            _ => None,
        }
    }
}

/// A queue's state as the kernel reports it (`QUEUE_GET_STATE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueState {
    pub banned: bool,
    /// Why it was banned, when the kernel says.
    pub guilt: Option<Guilt>,
    /// Recoveries that touched this queue.
    pub reset_count: u32,
    /// The command whose fate banned the queue.
    pub ban_seqno: u64,
    pub fault: Option<FaultInfo>,
}

impl QueueState {
    pub(crate) fn from_raw(s: &ext::drm_asahi_ext_queue_get_state) -> Result<QueueState> {
        let banned = s.flags & ext::DRM_ASAHI_EXT_QUEUE_BANNED != 0;
        let guilt = if s.flags & ext::DRM_ASAHI_EXT_QUEUE_GUILTY != 0 {
            Some(Guilt::Guilty)
        } else if s.flags & ext::DRM_ASAHI_EXT_QUEUE_INNOCENT != 0 {
            Some(Guilt::Innocent)
        } else if banned {
            Some(Guilt::Unknown)
        } else {
            None
        };
        let fault = (s.fault.fault_type != ext::DRM_ASAHI_EXT_FAULT_NONE)
            .then(|| FaultInfo::from_raw(&s.fault));
        Ok(QueueState {
            banned,
            guilt,
            reset_count: s.reset_count,
            ban_seqno: s.ban_seqno,
            fault,
        })
    }
}
