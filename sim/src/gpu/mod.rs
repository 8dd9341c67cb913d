//! The firmware and GPU: queues with render and compute subqueues, commands in flight, virtual
//! time, and retirement (result records, then fences).
//!
//! The GPU runs synchronously: whenever an ioctl may have made work runnable (a submit, a signal,
//! a release of a held device), [`Gpu::run`] executes everything runnable until the GPU is idle
//! or blocked on fences. Commands that are runnable together run concurrently in round-robin
//! quanta of GPU time, so a fault in one stops the others in the middle of their work.
//! [`Gpu::hold`] stops the clock so tests can line up work that must overlap.

pub mod exec;
pub mod opaque;
mod recovery;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use agx_uapi::fault_ext as ext;

use crate::bo::Bo;
use crate::config::{Clock, SimConfig};
use crate::sync::fence::Fence;
use crate::trace::{EventKind, Trace};
use crate::vm::PageTable;
use exec::{Exec, Fault, Step, Units};
use opaque::OpaqueCmd;

/// Round-robin quantum of GPU time.
pub const QUANTUM_NS: u64 = 10_000;

/// The two hardware subqueues of a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sub {
    Render = 0,
    Compute = 1,
}

impl Sub {
    pub fn other(self) -> Sub {
        match self {
            Sub::Render => Sub::Compute,
            Sub::Compute => Sub::Render,
        }
    }
}

/// Final state of a command, as its result record gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Complete,
    Fault,
    Timeout,
    Killed,
    Cancelled,
    NoDevice,
}

impl Status {
    fn raw(self) -> u32 {
        match self {
            Status::Complete => ext::DRM_ASAHI_EXT_STATUS_COMPLETE,
            Status::Fault => ext::DRM_ASAHI_EXT_STATUS_FAULT,
            Status::Timeout => ext::DRM_ASAHI_EXT_STATUS_TIMEOUT,
            Status::Killed => ext::DRM_ASAHI_EXT_STATUS_KILLED,
            Status::Cancelled => ext::DRM_ASAHI_EXT_STATUS_CANCELLED,
            Status::NoDevice => ext::DRM_ASAHI_EXT_STATUS_NO_DEVICE,
        }
    }

    /// The error the out-fence carries.
    pub fn fence_error(self) -> i32 {
        match self {
            Status::Complete => 0,
            Status::Fault => -libc::EIO,
            Status::Timeout => -libc::ETIMEDOUT,
            Status::Killed | Status::Cancelled => -libc::ECANCELED,
            Status::NoDevice => -libc::ENODEV,
        }
    }
}

/// Guilt as the record gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guilt {
    None,
    Guilty,
    Innocent,
}

impl Guilt {
    fn raw(self) -> u32 {
        match self {
            Guilt::None => ext::DRM_ASAHI_EXT_GUILT_NONE,
            Guilt::Guilty => ext::DRM_ASAHI_EXT_GUILT_GUILTY,
            Guilt::Innocent => ext::DRM_ASAHI_EXT_GUILT_INNOCENT,
        }
    }
}

/// Where a command's result record goes.
#[derive(Clone, Debug)]
pub struct ResultSlot {
    pub bo: Arc<Bo>,
    pub offset: u64,
    /// Bytes written: 16, 48 or 64.
    pub bytes: usize,
}

/// Where the firmware writes a timestamp.
#[derive(Clone, Debug)]
pub struct TimestampSlot {
    pub bo: Arc<Bo>,
    pub offset: u64,
}

/// A fault injected for tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injection {
    /// The next command to start on the queue faults after this much GPU time.
    Fault { after_ns: u64 },
    /// The next command to start on the queue hangs after this much GPU time.
    Hang { after_ns: u64 },
}

/// One hardware command.
#[derive(Debug)]
pub struct Job {
    pub id: u64,
    pub queue: u64,
    pub sub: Sub,
    pub stream: u64,
    pub units: Units,
    /// With `streams=opaque`: how to run the command if its stream is not in the language.
    pub opaque: Option<Box<OpaqueCmd>>,
    /// 1-based position on its subqueue.
    pub stamp: u64,
    /// The other subqueue must have completed up to this stamp first (barrier).
    pub wait_other: u64,
    pub in_fences: Arc<[Arc<Fence>]>,
    pub submit: u64,
    pub seqno: u64,
    pub restartable: bool,
    pub reasons: u32,
    pub result: Option<ResultSlot>,
    pub ts_start: Option<TimestampSlot>,
    pub ts_end: Option<TimestampSlot>,
    pub replay_count: u32,
    pub exec: Option<Exec>,
    pub run_start_ns: u64,
    pub first_start_ns: u64,
    pub inject: Option<Injection>,
    /// The open recovery this command is being replayed for.
    pub recovering: Option<u64>,
}

/// The part of a submit that outlives its commands: the out-fence, signalled after the last.
#[derive(Debug)]
pub struct Submit {
    pub remaining: usize,
    pub fence: Arc<Fence>,
    pub error: i32,
}

/// Why a queue is banned.
#[derive(Clone, Copy, Debug)]
pub struct Ban {
    pub guilt: Guilt,
    pub fault: Option<Fault>,
    pub seqno: u64,
}

/// A scheduling queue (firmware context).
#[derive(Debug)]
pub struct Queue {
    pub file: u64,
    pub vm: u64,
    pub priority: u32,
    pub usc_exec_base: u64,
    pub pending: [VecDeque<u64>; 2],
    pub running: [Option<u64>; 2],
    pub submitted: [u64; 2],
    pub done: [u64; 2],
    pub next_seqno: u64,
    pub ban: Option<Ban>,
    pub reset_count: u32,
    pub injections: VecDeque<Injection>,
}

impl Queue {
    pub fn new(file: u64, vm: u64, priority: u32, usc_exec_base: u64) -> Queue {
        Queue {
            file,
            vm,
            priority,
            usc_exec_base,
            pending: Default::default(),
            running: [None, None],
            submitted: [0, 0],
            done: [0, 0],
            next_seqno: 1,
            ban: None,
            reset_count: 0,
            injections: VecDeque::new(),
        }
    }
}

/// A VM as the firmware sees it.
#[derive(Debug)]
pub struct Vm {
    pub file: u64,
    pub pt: PageTable,
    pub kernel_start: u64,
    pub kernel_end: u64,
}

/// Counters for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub submits: u64,
    pub commands: u64,
    pub completed: u64,
    pub faults: u64,
    pub timeouts: u64,
    pub recoveries: u64,
    pub replays: u64,
    pub killed: u64,
    pub cancelled: u64,
    /// GPU time spent in stop-the-world cycles (a fixed cost each).
    pub recovery_ns: u64,
    /// Summed over closed recoveries: GPU time from the fault until the innocent work it
    /// stopped was back (every replayed victim finished again), or just the stop-the-world
    /// cost when nothing was replayed.
    pub recovery_span_ns: u64,
    /// Recoveries whose span is counted in `recovery_span_ns`.
    pub recoveries_closed: u64,
    /// Commands that ended after running as opaque jobs (`streams=opaque`).
    pub opaque: u64,
}

/// The firmware + GPU state of one device.
#[derive(Debug)]
pub struct Gpu {
    pub config: SimConfig,
    pub now_ns: u64,
    pub held: bool,
    pub crashed: bool,
    pub vms: BTreeMap<u64, Vm>,
    pub queues: BTreeMap<u64, Queue>,
    pub jobs: BTreeMap<u64, Job>,
    pub submits: BTreeMap<u64, Submit>,
    pub trace: Trace,
    pub stats: Stats,
    next_id: u64,
    /// Open recoveries: id -> (fault time, latest end so far, replayed victims not done).
    pub(crate) open_recoveries: BTreeMap<u64, (u64, u64, u32)>,
    /// GPU time 0 on the host clock ([`Clock::Host`]).
    epoch: std::time::Instant,
}

impl Gpu {
    pub fn new(config: SimConfig) -> Gpu {
        Gpu {
            config,
            now_ns: 0,
            held: false,
            crashed: false,
            vms: BTreeMap::new(),
            queues: BTreeMap::new(),
            jobs: BTreeMap::new(),
            submits: BTreeMap::new(),
            trace: Trace::default(),
            stats: Stats::default(),
            next_id: 1,
            open_recoveries: BTreeMap::new(),
            epoch: std::time::Instant::now(),
        }
    }

    /// A fresh global id (VMs, queues, jobs, submits share one space).
    pub fn alloc_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Runs until idle or blocked ([`Clock::Virtual`]), or until the host clock's present
    /// ([`Clock::Host`]). Does nothing while held or crashed.
    pub fn run(&mut self) {
        if self.held {
            return;
        }
        match self.config.clock {
            Clock::Virtual => self.run_until(None),
            Clock::Host => {
                let host = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
                // An idle GPU's clock jumps to the present; a busy one catches up by running.
                let busy = self
                    .queues
                    .values()
                    .any(|q| q.running.iter().any(Option::is_some));
                if !busy {
                    self.now_ns = self.now_ns.max(host);
                }
                self.run_until(Some(host));
                self.now_ns = self.now_ns.max(host);
            }
        }
    }

    /// With the clock held: lets the GPU run for `ns` of GPU time and stop again, leaving
    /// commands mid-flight (partially executed), as a real GPU would be at any instant.
    pub fn advance(&mut self, ns: u64) {
        if self.held {
            let deadline = self.now_ns.saturating_add(ns);
            self.run_until(Some(deadline));
        }
    }

    fn run_until(&mut self, deadline: Option<u64>) {
        while !self.crashed {
            self.start_ready();
            let running: Vec<u64> = self
                .queues
                .values()
                .flat_map(|q| q.running.iter().flatten().copied())
                .collect();
            if running.is_empty() {
                return;
            }
            let cap = match deadline {
                Some(d) if self.now_ns >= d => return,
                Some(d) => d - self.now_ns,
                None => u64::MAX,
            };
            self.step(&running, cap);
        }
    }

    /// Starts every command whose queue, barriers and in-fences allow it.
    fn start_ready(&mut self) {
        let mut order: Vec<(u32, u64)> = self
            .queues
            .iter()
            .map(|(&id, q)| (q.priority, id))
            .collect();
        // Higher priority first, then queue creation order: deterministic.
        order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, qid) in order {
            for sub in [Sub::Render, Sub::Compute] {
                let q = &self.queues[&qid];
                if q.ban.is_some() || q.running[sub as usize].is_some() {
                    continue;
                }
                let Some(&jid) = q.pending[sub as usize].front() else {
                    continue;
                };
                let job = &self.jobs[&jid];
                if q.done[sub.other() as usize] < job.wait_other
                    || !job.in_fences.iter().all(|f| f.is_signaled())
                {
                    continue;
                }
                let q = self.queues.get_mut(&qid).expect("queue listed");
                q.pending[sub as usize].pop_front();
                q.running[sub as usize] = Some(jid);
                let inject = q.injections.pop_front();
                let now = self.now_ns;
                let job = self.jobs.get_mut(&jid).expect("job queued");
                job.exec = Some(Exec::new(job.stream));
                job.run_start_ns = now;
                job.first_start_ns = now;
                job.inject = inject;
                if let Some(ts) = &job.ts_start {
                    write_timestamp(ts, now);
                }
                self.trace.push(now, EventKind::Start, qid, jid, "");
            }
        }
    }

    /// One slice of GPU time for every running command.
    fn step(&mut self, running: &[u64], cap: u64) {
        let timeout = self.config.hang_timeout_ns;
        // Skip ahead when nobody touches memory (all spinning or hung), to the next event.
        let mut slice = QUANTUM_NS;
        let idle: Option<u64> = running.iter().try_fold(u64::MAX, |acc, id| {
            let job = &self.jobs[id];
            let left = job.exec.as_ref().and_then(Exec::idle_ns_left)?;
            Some(acc.min(left))
        });
        if let Some(n) = idle {
            slice = n.max(QUANTUM_NS);
        }
        let slice = slice.min(cap).max(1);
        let mut finished = Vec::new();
        let mut faults: Vec<(u64, Fault, Status)> = Vec::new();
        let mut max_used = 0u64;
        for &jid in running {
            let now = self.now_ns;
            let job = self.jobs.get_mut(&jid).expect("running job");
            let q = &self.queues[&job.queue];
            let vm = &self.vms[&q.vm];
            let ran = now.saturating_sub(job.run_start_ns);
            let to_watchdog = timeout.saturating_sub(ran);
            let mut budget = slice.min(to_watchdog);
            let mut injected = None;
            if let Some(inj) = job.inject {
                let (Injection::Fault { after_ns } | Injection::Hang { after_ns }) = inj;
                let until = after_ns.saturating_sub(ran);
                if until <= budget {
                    budget = until;
                    injected = Some(inj);
                }
            }
            let exec = job.exec.as_mut().expect("running job has exec");
            let soft = self.config.soft_faults;
            let step = exec.run(&vm.pt, job.units, soft, budget, job.opaque.as_deref());
            match step {
                Step::Done { used } => {
                    max_used = max_used.max(used);
                    finished.push((jid, used));
                }
                Step::Fault { fault, used } => {
                    max_used = max_used.max(used);
                    faults.push((jid, fault, Status::Fault));
                }
                Step::Yield { used } => {
                    // The GPU time really spent: the last chunk may overrun the budget.
                    max_used = max_used.max(used.max(budget));
                    match injected {
                        Some(Injection::Fault { .. }) => {
                            job.inject = None;
                            let fault = Fault {
                                fault_type: ext::DRM_ASAHI_EXT_FAULT_INJECTED,
                                unit: job.units.access,
                                write: false,
                                address: 0,
                            };
                            faults.push((jid, fault, Status::Fault));
                        }
                        Some(Injection::Hang { .. }) => {
                            // From here on the command makes no progress: its stream is
                            // replaced by a hang, which the watchdog will catch.
                            job.inject = None;
                            job.exec = Some(hung_exec());
                        }
                        None if budget == to_watchdog => {
                            let fault = Fault {
                                fault_type: ext::DRM_ASAHI_EXT_FAULT_TIMEOUT,
                                unit: job.units.access,
                                write: false,
                                address: 0,
                            };
                            faults.push((jid, fault, Status::Timeout));
                        }
                        None => {}
                    }
                }
            }
        }
        let start = self.now_ns;
        for (jid, used) in finished {
            self.now_ns = start + used;
            self.finish(jid, Status::Complete, Guilt::None, None);
        }
        self.now_ns = start + max_used.max(1);
        if !faults.is_empty() {
            self.recover(faults);
        }
    }

    /// Ends a command: writes its record, then, if it was its submit's last, signals the
    /// submit's out-fence. Every command ends here exactly once.
    pub fn finish(&mut self, jid: u64, status: Status, guilt: Guilt, fault: Option<Fault>) {
        let Some(job) = self.jobs.remove(&jid) else {
            return;
        };
        let now = self.now_ns;
        if let Some(rid) = job.recovering {
            self.victim_done(rid, now);
        }
        if let Some(q) = self.queues.get_mut(&job.queue) {
            let s = job.sub as usize;
            if q.running[s] == Some(jid) {
                q.running[s] = None;
            } else {
                q.pending[s].retain(|&j| j != jid);
            }
            q.done[s] = q.done[s].max(job.stamp);
        }
        if let Some(slot) = &job.result {
            let rec = ext::drm_asahi_ext_result {
                status: status.raw(),
                guilt: guilt.raw(),
                replay_count: job.replay_count,
                pad: 0,
                seqno: job.seqno,
                fault: fault.map(Fault::to_raw).unwrap_or_default(),
                // The start of the last run (a replay restarts it), as the uAPI documents.
                gpu_start_ns: job.run_start_ns,
                gpu_end_ns: now,
            };
            slot.bo.gpu().write(
                slot.offset as usize,
                &bytemuck::bytes_of(&rec)[..slot.bytes],
            );
        }
        if status == Status::Complete {
            if let Some(ts) = &job.ts_end {
                write_timestamp(ts, now);
            }
        }
        let kind = match status {
            Status::Complete => EventKind::Retire,
            Status::Fault => EventKind::Fault,
            Status::Timeout => EventKind::Timeout,
            Status::Killed | Status::NoDevice => EventKind::Kill,
            Status::Cancelled => EventKind::Cancel,
        };
        let opaque = job.exec.as_ref().is_some_and(Exec::is_opaque);
        if opaque {
            self.stats.opaque += 1;
        }
        let kind_note = if opaque { " opaque" } else { "" };
        let detail = match fault {
            Some(f) => format!("{status:?} guilt={guilt:?} fault={f:?}{kind_note}"),
            None => format!(
                "{status:?} guilt={guilt:?} replays={}{kind_note}",
                job.replay_count
            ),
        };
        self.trace.push(now, kind, job.queue, jid, detail);
        match status {
            Status::Complete => self.stats.completed += 1,
            Status::Fault => self.stats.faults += 1,
            Status::Timeout => self.stats.timeouts += 1,
            Status::Killed | Status::NoDevice => self.stats.killed += 1,
            Status::Cancelled => self.stats.cancelled += 1,
        }
        let Some(submit) = self.submits.get_mut(&job.submit) else {
            return;
        };
        submit.remaining -= 1;
        if submit.error == 0 {
            submit.error = status.fence_error();
        }
        if submit.remaining == 0 {
            let submit = self.submits.remove(&job.submit).expect("present");
            self.trace.push(
                now,
                EventKind::Signal,
                job.queue,
                jid,
                format!("error={}", submit.error),
            );
            submit.fence.signal(submit.error);
        }
    }

    /// Ends every command of a queue that is not done (teardown, bans).
    pub fn end_queue_work(
        &mut self,
        qid: u64,
        running: (Status, Guilt),
        queued: (Status, Guilt),
        fault: Option<Fault>,
    ) {
        let Some(q) = self.queues.get(&qid) else {
            return;
        };
        let run: Vec<u64> = q.running.iter().flatten().copied().collect();
        let pend: Vec<u64> = q.pending.iter().flatten().copied().collect();
        for j in run {
            self.finish(j, running.0, running.1, fault);
        }
        for j in pend {
            self.finish(j, queued.0, queued.1, None);
        }
    }

    /// Destroys a queue: pending work ends `KILLED` with `-ECANCELED`.
    pub fn destroy_queue(&mut self, qid: u64) {
        self.end_queue_work(
            qid,
            (Status::Killed, Guilt::None),
            (Status::Killed, Guilt::None),
            None,
        );
        self.queues.remove(&qid);
    }

    /// Destroys a VM: work of queues on it is killed and those queues are banned.
    pub fn destroy_vm(&mut self, vm: u64) {
        let qids: Vec<u64> = self
            .queues
            .iter()
            .filter(|(_, q)| q.vm == vm)
            .map(|(&id, _)| id)
            .collect();
        for qid in qids {
            self.end_queue_work(
                qid,
                (Status::Killed, Guilt::None),
                (Status::Killed, Guilt::None),
                None,
            );
            if let Some(q) = self.queues.get_mut(&qid) {
                q.ban.get_or_insert(Ban {
                    guilt: Guilt::None,
                    fault: None,
                    seqno: 0,
                });
            }
        }
        if let Some(v) = self.vms.get_mut(&vm) {
            v.pt.clear();
        }
    }

    /// The firmware crashed: every accepted command ends `NO_DEVICE` / `-ENODEV`.
    pub fn crash(&mut self) {
        if self.crashed {
            return;
        }
        self.crashed = true;
        self.trace
            .push(self.now_ns, EventKind::FirmwareCrash, 0, 0, "");
        let jobs: Vec<u64> = self.jobs.keys().copied().collect();
        let fault = Fault {
            fault_type: ext::DRM_ASAHI_EXT_FAULT_FIRMWARE,
            unit: ext::DRM_ASAHI_EXT_UNIT_FIRMWARE,
            write: false,
            address: 0,
        };
        for j in jobs {
            self.finish(j, Status::NoDevice, Guilt::None, Some(fault));
        }
    }
}

fn hung_exec() -> Exec {
    // A stream address no VM maps would fault instead of hanging, so model the hang directly.
    Exec::hung()
}

fn write_timestamp(ts: &TimestampSlot, now_ns: u64) {
    let ticks =
        (now_ns as u128 * crate::config::TIMESTAMP_FREQUENCY_HZ as u128 / 1_000_000_000) as u64;
    if ts.offset + 8 <= ts.bo.size {
        ts.bo.gpu().write(ts.offset as usize, &ticks.to_le_bytes());
    }
}

impl Gpu {
    /// A replayed victim of recovery `rid` ended at `now`; the recovery closes with its last.
    pub(crate) fn victim_done(&mut self, rid: u64, now: u64) {
        let Some(r) = self.open_recoveries.get_mut(&rid) else {
            return;
        };
        r.1 = r.1.max(now);
        r.2 -= 1;
        if r.2 == 0 {
            let (start, end, _) = self.open_recoveries.remove(&rid).expect("present");
            self.stats.recovery_span_ns += end - start;
            self.stats.recoveries_closed += 1;
        }
    }
}
