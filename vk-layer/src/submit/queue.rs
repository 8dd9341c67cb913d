//! Queues as the layer sees them: each queue's lock (the layer and the application take turns
//! below), the layer's objects on it (a command pool and fences), and the scheduler that keeps
//! submission order while a submission hit by a neighbour fault is waited for, scrambled and
//! replayed on a worker thread of that queue.
//!
//! While a queue's worker holds a submission, every later submission to that queue is queued
//! behind it (copied, see [`OwnedSubmit`]) and goes down in order, so nothing the application
//! submitted later can overtake the replay. The application's thread never waits for the GPU in
//! `vkQueueSubmit`. Fences and binary semaphores whose signal the layer still holds are known
//! device-wide: a wait on such a fence waits (within its timeout) until the signal is submitted
//! below, and a submission (or a present) waiting on such a binary semaphore is held until the
//! signal is submitted (binary semaphores must have their signal submitted first). No lock is
//! held across a wait on the GPU.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ash::vk;
use ash::vk::Handle;

use super::batch::{Keep, OwnedSubmit};
use crate::dispatch::{lock, next, DeviceState};
use crate::track::SubmissionVerdict;

/// How long a worker or a waiter sleeps before looking again (the wake-ups are by condition
/// variable; this only bounds each wait).
pub const SLICE: Duration = Duration::from_millis(100);

/// The layer's objects on one queue (externally synchronised with the queue itself).
#[derive(Default)]
pub struct QueueObjects {
    pub pool: Option<vk::CommandPool>,
    pub fences: Vec<vk::Fence>,
    /// After a loss: the fence of an empty submission made once the backlog drained, and
    /// whether it signalled (everything before it is finished below).
    pub barrier: Option<(vk::Fence, bool)>,
    /// The staging buffer of the scramble's snapshots (`scramble`).
    pub staging: Option<super::scramble::Staging>,
}

/// A queue of the device.
pub struct QueueInfo {
    pub handle: vk::Queue,
    pub family: u32,
    /// Held for every call on the queue below (the application's and the layer's).
    pub objs: Mutex<QueueObjects>,
}

/// A submission held by a queue worker.
pub enum Job {
    /// Goes down as it is, in order.
    Plain { sub: OwnedSubmit, fence: vk::Fence },
    /// Goes down without command buffers (the device is lost), keeping `keep`.
    Empty {
        sub: OwnedSubmit,
        fence: vk::Fence,
        keep: Keep,
    },
    /// Hit by a neighbour fault: run, wait, then replay or lose, then signal.
    Neighbor {
        sub: OwnedSubmit,
        fence: vk::Fence,
        n: u64,
        /// One per batch.
        verdicts: Vec<SubmissionVerdict>,
    },
}

impl Job {
    fn parts(&self) -> (&OwnedSubmit, vk::Fence) {
        match self {
            Job::Plain { sub, fence } | Job::Empty { sub, fence, .. } => (sub, *fence),
            Job::Neighbor { sub, fence, .. } => (sub, *fence),
        }
    }
}

#[derive(Default)]
pub struct QueueSched {
    pub backlog: VecDeque<Job>,
    pub busy: bool,
    pub worker: Option<JoinHandle<()>>,
}

impl QueueSched {
    pub fn idle(&self) -> bool {
        self.backlog.is_empty() && !self.busy
    }
}

/// Device-wide scheduling state.
#[derive(Default)]
pub struct Sched {
    pub queues: HashMap<u64, QueueSched>,
    /// Application fences of held submissions (not yet submitted below).
    pub fences: HashMap<u64, u32>,
    /// Binary semaphores whose signal is held (not yet submitted below).
    pub binary: HashMap<u64, u32>,
    pub shutdown: bool,
}

impl Sched {
    pub fn all_idle(&self) -> bool {
        self.queues.values().all(QueueSched::idle)
    }

    fn count(map: &mut HashMap<u64, u32>, k: u64, add: bool) {
        if add {
            *map.entry(k).or_insert(0) += 1;
        } else if let Some(c) = map.get_mut(&k) {
            *c -= 1;
            if *c == 0 {
                map.remove(&k);
            }
        }
    }
}

impl DeviceState {
    /// The queue `q` (known from `vkGetDeviceQueue*`).
    pub fn queue(&self, q: vk::Queue) -> Option<Arc<QueueInfo>> {
        lock(&self.queues).get(&q.as_raw()).cloned()
    }

    pub fn sched(&self) -> MutexGuard<'_, Sched> {
        lock(&self.sched)
    }

    /// Waits on the scheduler's condition variable until `done` holds or `deadline` passes
    /// (None: no deadline). Returns whether `done` held.
    pub fn sched_wait(
        &self,
        deadline: Option<Instant>,
        mut done: impl FnMut(&Sched) -> bool,
    ) -> bool {
        let mut s = self.sched();
        loop {
            if done(&s) {
                return true;
            }
            if s.shutdown {
                return false;
            }
            let slice = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    (d - now).min(SLICE)
                }
                None => SLICE,
            };
            s = self
                .sched_cv
                .wait_timeout(s, slice)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Whether a binary semaphore among `waits` has its signal held by the layer.
    pub fn waits_on_held(&self, s: &Sched, waits: impl IntoIterator<Item = vk::Semaphore>) -> bool {
        !s.binary.is_empty()
            && waits
                .into_iter()
                .any(|w| s.binary.contains_key(&w.as_raw()))
    }

    /// Whether `sem` is a timeline semaphore.
    pub fn is_timeline(&self, sem: vk::Semaphore) -> bool {
        lock(&self.timelines).contains(&sem.as_raw())
    }

    /// Queues `job` behind the queue's earlier work and wakes its worker.
    pub fn enqueue(&self, q: &Arc<QueueInfo>, s: &mut Sched, job: Job) {
        let (sub, fence) = job.parts();
        if fence != vk::Fence::null() {
            Sched::count(&mut s.fences, fence.as_raw(), true);
        }
        for o in sub.signals() {
            if !self.is_timeline(o.sem) {
                Sched::count(&mut s.binary, o.sem.as_raw(), true);
            }
        }
        let qs = s.queues.entry(q.handle.as_raw()).or_default();
        qs.backlog.push_back(job);
        if qs.worker.is_none() {
            let Some(dev) = self.me.upgrade() else {
                return;
            };
            let q = Arc::clone(q);
            qs.worker = std::thread::Builder::new()
                .name("agx-fault-queue".into())
                .spawn(move || worker(dev, q))
                .ok();
        }
        self.sched_cv.notify_all();
    }

    /// The held signals of `sub` and `fence` went down.
    pub fn released(&self, sub: &OwnedSubmit, fence: vk::Fence) {
        let mut s = self.sched();
        if fence != vk::Fence::null() {
            Sched::count(&mut s.fences, fence.as_raw(), false);
        }
        for o in sub.signals() {
            if !self.is_timeline(o.sem) {
                Sched::count(&mut s.binary, o.sem.as_raw(), false);
            }
        }
        self.sched_cv.notify_all();
    }

    /// Stops the workers (after their backlogs drained, or at once if `now`).
    pub fn stop_workers(&self, now: bool) {
        if !now {
            self.sched_wait(None, Sched::all_idle);
        }
        let workers: Vec<JoinHandle<()>> = {
            let mut s = self.sched();
            s.shutdown = true;
            self.sched_cv.notify_all();
            s.queues
                .values_mut()
                .filter_map(|q| q.worker.take())
                .collect()
        };
        for w in workers {
            let _ = w.join();
        }
    }

    /// A layer fence of queue `q`'s objects (unsignalled).
    pub fn take_fence(&self, objs: &mut QueueObjects) -> Option<vk::Fence> {
        if let Some(f) = objs.fences.pop() {
            return Some(f);
        }
        let mut f = vk::Fence::null();
        // SAFETY: a layer-owned fence of a valid device.
        let r = unsafe {
            next!(self, create_fence)(
                self.handle,
                &vk::FenceCreateInfo::default(),
                std::ptr::null(),
                &mut f,
            )
        };
        (r == vk::Result::SUCCESS).then_some(f)
    }

    /// A primary command buffer from the queue's layer pool (the caller holds the queue), with
    /// the loader's dispatch set.
    pub fn layer_command_buffer(
        &self,
        objs: &mut QueueObjects,
        family: u32,
    ) -> Option<vk::CommandBuffer> {
        let d = self.handle;
        // SAFETY: the queue's layer pool (used under its lock) and a command buffer of it.
        unsafe {
            let pool = match objs.pool {
                Some(p) => p,
                None => {
                    let ci = vk::CommandPoolCreateInfo::default()
                        .queue_family_index(family)
                        .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER);
                    let mut p = vk::CommandPool::null();
                    if next!(self, create_command_pool)(d, &ci, std::ptr::null(), &mut p)
                        != vk::Result::SUCCESS
                    {
                        return None;
                    }
                    objs.pool = Some(p);
                    p
                }
            };
            let ai = vk::CommandBufferAllocateInfo::default()
                .command_pool(pool)
                .level(vk::CommandBufferLevel::PRIMARY)
                .command_buffer_count(1);
            let mut cb = vk::CommandBuffer::null();
            if next!(self, allocate_command_buffers)(d, &ai, &mut cb) != vk::Result::SUCCESS {
                return None;
            }
            // A dispatchable object created below the loader: give it the loader's dispatch.
            if let Some(set) = self.set_loader_data {
                if set(d, cb.as_raw() as usize as *mut std::ffi::c_void) != vk::Result::SUCCESS {
                    return None;
                }
            }
            Some(cb)
        }
    }

    /// Frees a finished layer command buffer (the caller holds the queue).
    pub fn free_layer_command_buffer(&self, objs: &QueueObjects, cb: vk::CommandBuffer) {
        if let Some(pool) = objs.pool {
            // SAFETY: a finished layer command buffer of the layer's pool.
            unsafe { next!(self, free_command_buffers)(self.handle, pool, 1, &cb) };
        }
    }

    /// Returns a signalled layer fence to the pool (reset).
    pub fn give_fence(&self, objs: &mut QueueObjects, f: vk::Fence) {
        // SAFETY: a layer fence no submission still uses.
        unsafe {
            let _ = next!(self, reset_fences)(self.handle, 1, &f);
        }
        objs.fences.push(f);
    }

    /// Waits below for a layer fence, in slices, until it signals, the device is torn down, or
    /// `deadline` passes. `Ok(true)`: signalled; `Ok(false)`: gave up; `Err`: the driver failed.
    pub fn wait_layer_fence(
        &self,
        f: vk::Fence,
        deadline: Option<Instant>,
    ) -> Result<bool, vk::Result> {
        loop {
            let slice = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
                None => SLICE,
            };
            // SAFETY: a layer fence of this device, submitted below.
            let r = unsafe {
                next!(self, wait_for_fences)(self.handle, 1, &f, vk::TRUE, slice.as_nanos() as u64)
            };
            match r {
                vk::Result::SUCCESS => return Ok(true),
                vk::Result::TIMEOUT => {
                    if deadline.is_some_and(|d| Instant::now() >= d) || self.sched().shutdown {
                        return Ok(false);
                    }
                }
                e => return Err(e),
            }
        }
    }

    /// Submits an empty batch with a layer fence on `q` and waits for it: everything submitted
    /// to `q` before is finished below (queue order). No lock is held across the wait.
    pub fn queue_fence_wait(
        &self,
        q: &QueueInfo,
        deadline: Option<Instant>,
    ) -> Result<bool, vk::Result> {
        let f = {
            let mut objs = lock(&q.objs);
            let f = self
                .take_fence(&mut objs)
                .ok_or(vk::Result::ERROR_OUT_OF_HOST_MEMORY)?;
            // SAFETY: an empty submission with a layer fence.
            let r = unsafe { next!(self, queue_submit)(q.handle, 0, std::ptr::null(), f) };
            if r != vk::Result::SUCCESS {
                objs.fences.push(f);
                return Err(r);
            }
            f
        };
        let r = self.wait_layer_fence(f, deadline);
        if r == Ok(true) {
            self.give_fence(&mut lock(&q.objs), f);
        }
        // A fence given up on stays pending below; it is leaked rather than reused.
        r
    }

    /// On a lost device: whether all work submitted below before is finished, waiting until
    /// `deadline` (None: as long as the driver takes; `Some(now)`: just look).
    pub fn drained_after_loss(&self, deadline: Option<Instant>) -> bool {
        if !self.sched_wait(deadline, Sched::all_idle) {
            return false;
        }
        let queues: Vec<Arc<QueueInfo>> = lock(&self.queues).values().cloned().collect();
        for q in queues {
            let f = {
                let mut objs = lock(&q.objs);
                match objs.barrier {
                    Some((_, true)) => continue,
                    Some((f, false)) => f,
                    None => {
                        let Some(f) = self.take_fence(&mut objs) else {
                            return false;
                        };
                        // SAFETY: an empty submission with a layer fence.
                        let r =
                            unsafe { next!(self, queue_submit)(q.handle, 0, std::ptr::null(), f) };
                        if r != vk::Result::SUCCESS {
                            // The driver lost it too: nothing more will finish.
                            objs.barrier = Some((f, true));
                            continue;
                        }
                        objs.barrier = Some((f, false));
                        f
                    }
                }
            };
            match self.wait_layer_fence(f, deadline) {
                Ok(true) | Err(_) => {
                    if let Some(b) = &mut lock(&q.objs).barrier {
                        b.1 = true;
                    }
                }
                Ok(false) => return false,
            }
        }
        true
    }
}

/// The worker of one queue: takes its jobs in order until the device goes.
fn worker(dev: Arc<DeviceState>, q: Arc<QueueInfo>) {
    let key = q.handle.as_raw();
    loop {
        let job = {
            let mut s = dev.sched();
            loop {
                if s.shutdown {
                    return;
                }
                let qs = s.queues.entry(key).or_default();
                if let Some(j) = qs.backlog.pop_front() {
                    qs.busy = true;
                    break j;
                }
                s = dev
                    .sched_cv
                    .wait_timeout(s, SLICE)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
        };
        crate::dispatch::guard((), || run(&dev, &q, job));
        let mut s = dev.sched();
        s.queues.entry(key).or_default().busy = false;
        dev.sched_cv.notify_all();
    }
}

fn run(dev: &DeviceState, q: &QueueInfo, job: Job) {
    let (sub, _) = job.parts();
    // A binary semaphore's signal must be submitted before its wait.
    let waits: Vec<vk::Semaphore> = sub.external_waits().map(|w| w.sem).collect();
    dev.sched_wait(None, |s| !dev.waits_on_held(s, waits.iter().copied()));
    match job {
        Job::Plain { sub, fence } => {
            let keep = if dev.lost.is_lost() {
                Keep::SIGNALS
            } else {
                Keep::ALL
            };
            let r = {
                let _objs = lock(&q.objs);
                sub.submit(dev, q.handle, keep, fence)
            };
            dev.released(&sub, fence);
            let _ = dev.check(r, "vkQueueSubmit");
        }
        Job::Empty { sub, fence, keep } => {
            let r = {
                let _objs = lock(&q.objs);
                sub.submit(dev, q.handle, keep, fence)
            };
            dev.released(&sub, fence);
            let _ = dev.check(r, "vkQueueSubmit");
        }
        Job::Neighbor {
            sub,
            fence,
            n,
            verdicts,
        } => super::neighbor::run(dev, q, &sub, fence, n, &verdicts),
    }
}
