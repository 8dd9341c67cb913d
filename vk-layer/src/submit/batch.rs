//! The batches of one submit call: borrowed from the application (valid during the call), or
//! owned by the layer (copied, so a queue worker can submit them later), and submitted below
//! with some of their parts left out.

use ash::vk;

use crate::dispatch::{chain, next, slice, DeviceState};

/// The batches of one submit call, as the application passed them.
#[derive(Clone, Copy)]
pub enum Batches<'a> {
    V1(&'a [vk::SubmitInfo<'a>]),
    V2(&'a [vk::SubmitInfo2<'a>]),
}

impl Batches<'_> {
    pub fn call_name(&self) -> &'static str {
        match self {
            Batches::V1(_) => "vkQueueSubmit",
            Batches::V2(_) => "vkQueueSubmit2",
        }
    }

    /// Passes the submit down unchanged.
    pub fn submit_as_is(
        &self,
        dev: &DeviceState,
        queue: vk::Queue,
        fence: vk::Fence,
    ) -> vk::Result {
        // SAFETY: the application's arguments, forwarded unchanged during its call.
        unsafe {
            match *self {
                Batches::V1(b) => {
                    next!(dev, queue_submit)(queue, b.len() as u32, b.as_ptr(), fence)
                }
                Batches::V2(b) => {
                    next!(dev, queue_submit2)(queue, b.len() as u32, b.as_ptr(), fence)
                }
            }
        }
    }
}

/// A semaphore wait or signal.
#[derive(Clone, Copy, Debug)]
pub struct SemOp {
    pub sem: vk::Semaphore,
    pub value: u64,
    /// `VkPipelineStageFlags` (V1 waits) or `VkPipelineStageFlags2`.
    pub stages: u64,
    pub device_index: u32,
}

/// One batch, owned.
#[derive(Clone, Debug, Default)]
pub struct OwnedBatch {
    pub waits: Vec<SemOp>,
    /// Command buffer and device mask.
    pub cbs: Vec<(vk::CommandBuffer, u32)>,
    pub signals: Vec<SemOp>,
    pub protected: bool,
    /// V1: the batch had a `VkTimelineSemaphoreSubmitInfo` / a `VkDeviceGroupSubmitInfo`.
    timeline: bool,
    group: bool,
}

/// The batches of one submit call, owned by the layer.
#[derive(Clone, Debug, Default)]
pub struct OwnedSubmit {
    pub v2: bool,
    pub batches: Vec<OwnedBatch>,
}

/// Which parts of each batch to submit.
#[derive(Clone, Copy, Debug)]
pub struct Keep {
    pub waits: bool,
    pub cbs: bool,
    pub signals: bool,
}

impl Keep {
    pub const ALL: Keep = Keep {
        waits: true,
        cbs: true,
        signals: true,
    };
    /// Waits and signals, no command buffers (a lost submission still signals).
    pub const EMPTY: Keep = Keep {
        waits: true,
        cbs: false,
        signals: true,
    };
    /// Waits and command buffers: the run of a held batch, its signals wait for the outcome.
    pub const RUN: Keep = Keep {
        waits: true,
        cbs: true,
        signals: false,
    };
    /// Signals alone: the release of a held batch, or a submission after the loss (whose waits
    /// may never be met).
    pub const SIGNALS: Keep = Keep {
        waits: false,
        cbs: false,
        signals: true,
    };
}

impl OwnedSubmit {
    /// Copies the application's batches. `None` when a batch carries a structure the layer
    /// cannot carry over (an unknown `pNext`).
    ///
    /// # Safety
    ///
    /// The batches must be valid (valid usage of the submit call).
    pub unsafe fn copy(b: Batches<'_>) -> Option<OwnedSubmit> {
        let mut out = OwnedSubmit {
            v2: matches!(b, Batches::V2(_)),
            batches: Vec::new(),
        };
        // SAFETY: arrays and chains of a valid submit (caller).
        unsafe {
            match b {
                Batches::V1(v) => {
                    for s in v {
                        let waits = slice(s.p_wait_semaphores, s.wait_semaphore_count);
                        let stages = slice(s.p_wait_dst_stage_mask, s.wait_semaphore_count);
                        let cbs = slice(s.p_command_buffers, s.command_buffer_count);
                        let sigs = slice(s.p_signal_semaphores, s.signal_semaphore_count);
                        let mut ob = OwnedBatch {
                            waits: waits
                                .iter()
                                .enumerate()
                                .map(|(i, &sem)| SemOp {
                                    sem,
                                    value: 0,
                                    stages: stages.get(i).map_or(0, |f| u64::from(f.as_raw())),
                                    device_index: 0,
                                })
                                .collect(),
                            cbs: cbs.iter().map(|&c| (c, 0)).collect(),
                            signals: sigs
                                .iter()
                                .map(|&sem| SemOp {
                                    sem,
                                    value: 0,
                                    stages: 0,
                                    device_index: 0,
                                })
                                .collect(),
                            ..OwnedBatch::default()
                        };
                        for c in chain(s.p_next) {
                            match (*c).s_type {
                                vk::StructureType::TIMELINE_SEMAPHORE_SUBMIT_INFO => {
                                    let t = &*(c as *const vk::TimelineSemaphoreSubmitInfo<'_>);
                                    let wv = slice(
                                        t.p_wait_semaphore_values,
                                        t.wait_semaphore_value_count,
                                    );
                                    let sv = slice(
                                        t.p_signal_semaphore_values,
                                        t.signal_semaphore_value_count,
                                    );
                                    for (w, v) in ob.waits.iter_mut().zip(wv) {
                                        w.value = *v;
                                    }
                                    for (w, v) in ob.signals.iter_mut().zip(sv) {
                                        w.value = *v;
                                    }
                                    ob.timeline = true;
                                }
                                vk::StructureType::DEVICE_GROUP_SUBMIT_INFO => {
                                    let g = &*(c as *const vk::DeviceGroupSubmitInfo<'_>);
                                    let wi = slice(
                                        g.p_wait_semaphore_device_indices,
                                        g.wait_semaphore_count,
                                    );
                                    let cm = slice(
                                        g.p_command_buffer_device_masks,
                                        g.command_buffer_count,
                                    );
                                    let si = slice(
                                        g.p_signal_semaphore_device_indices,
                                        g.signal_semaphore_count,
                                    );
                                    for (w, v) in ob.waits.iter_mut().zip(wi) {
                                        w.device_index = *v;
                                    }
                                    for (w, v) in ob.cbs.iter_mut().zip(cm) {
                                        w.1 = *v;
                                    }
                                    for (w, v) in ob.signals.iter_mut().zip(si) {
                                        w.device_index = *v;
                                    }
                                    ob.group = true;
                                }
                                vk::StructureType::PROTECTED_SUBMIT_INFO => {
                                    let p = &*(c as *const vk::ProtectedSubmitInfo<'_>);
                                    ob.protected = p.protected_submit != 0;
                                }
                                _ => return None,
                            }
                        }
                        out.batches.push(ob);
                    }
                }
                Batches::V2(v) => {
                    for s in v {
                        if !s.p_next.is_null() {
                            return None;
                        }
                        let op = |i: &vk::SemaphoreSubmitInfo<'_>| SemOp {
                            sem: i.semaphore,
                            value: i.value,
                            stages: i.stage_mask.as_raw(),
                            device_index: i.device_index,
                        };
                        let waits = slice(s.p_wait_semaphore_infos, s.wait_semaphore_info_count);
                        let sigs = slice(s.p_signal_semaphore_infos, s.signal_semaphore_info_count);
                        let cbs = slice(s.p_command_buffer_infos, s.command_buffer_info_count);
                        if waits.iter().chain(sigs).any(|i| !i.p_next.is_null())
                            || cbs.iter().any(|i| !i.p_next.is_null())
                        {
                            return None;
                        }
                        out.batches.push(OwnedBatch {
                            waits: waits.iter().map(op).collect(),
                            cbs: cbs
                                .iter()
                                .map(|c| (c.command_buffer, c.device_mask))
                                .collect(),
                            signals: sigs.iter().map(op).collect(),
                            protected: s.flags.contains(vk::SubmitFlags::PROTECTED),
                            timeline: false,
                            group: false,
                        });
                    }
                }
            }
        }
        Some(out)
    }

    /// The command buffers, in submission order.
    pub fn command_buffers(&self) -> Vec<vk::CommandBuffer> {
        self.batches
            .iter()
            .flat_map(|b| b.cbs.iter().map(|c| c.0))
            .collect()
    }

    /// The semaphores the batches wait on.
    pub fn waits(&self) -> impl Iterator<Item = &SemOp> {
        self.batches.iter().flat_map(|b| b.waits.iter())
    }

    /// Whether wait `w` of batch `j` is satisfied by a signal of an earlier batch of the same
    /// submission.
    fn internal(&self, j: usize, w: &SemOp) -> bool {
        self.batches[..j].iter().any(|b| {
            b.signals
                .iter()
                .any(|s| s.sem == w.sem && s.value >= w.value)
        })
    }

    /// The waits on semaphores signalled outside this submission.
    pub fn external_waits(&self) -> impl Iterator<Item = &SemOp> {
        self.batches
            .iter()
            .enumerate()
            .flat_map(move |(j, b)| b.waits.iter().filter(move |w| !self.internal(j, w)))
    }

    /// The semaphores the batches signal.
    pub fn signals(&self) -> impl Iterator<Item = &SemOp> {
        self.batches.iter().flat_map(|b| b.signals.iter())
    }

    /// Batch `j` alone.
    pub fn only(&self, j: usize) -> OwnedSubmit {
        OwnedSubmit {
            v2: self.v2,
            batches: vec![self.batches[j].clone()],
        }
    }

    /// Puts a layer command buffer first in the first batch (the device mask of the batch's
    /// first command buffer, or of device 0).
    pub fn prepend(&mut self, cb: vk::CommandBuffer) {
        if let Some(b) = self.batches.first_mut() {
            let mask = match b.cbs.first() {
                Some(&(_, m)) if b.group || self.v2 => m,
                _ if b.group => 1,
                _ => 0,
            };
            b.cbs.insert(0, (cb, mask));
        }
    }

    /// Batches `j..` (possibly none).
    pub fn from(&self, j: usize) -> OwnedSubmit {
        OwnedSubmit {
            v2: self.v2,
            batches: self.batches.get(j..).unwrap_or_default().to_vec(),
        }
    }

    /// Submits the parts in `keep` below (an empty submission, with `fence`, when nothing is
    /// left).
    pub fn submit(
        &self,
        dev: &DeviceState,
        queue: vk::Queue,
        keep: Keep,
        fence: vk::Fence,
    ) -> vk::Result {
        if self.v2 {
            self.submit2(dev, queue, keep, fence)
        } else {
            self.submit1(dev, queue, keep, fence)
        }
    }

    fn submit1(
        &self,
        dev: &DeviceState,
        queue: vk::Queue,
        keep: Keep,
        fence: vk::Fence,
    ) -> vk::Result {
        struct Arrays {
            waits: Vec<vk::Semaphore>,
            stages: Vec<vk::PipelineStageFlags>,
            wait_values: Vec<u64>,
            wait_indices: Vec<u32>,
            cbs: Vec<vk::CommandBuffer>,
            masks: Vec<u32>,
            signals: Vec<vk::Semaphore>,
            signal_values: Vec<u64>,
            signal_indices: Vec<u32>,
        }
        let arrays: Vec<Arrays> = self
            .batches
            .iter()
            .map(|b| {
                let w: &[SemOp] = if keep.waits { &b.waits } else { &[] };
                let s: &[SemOp] = if keep.signals { &b.signals } else { &[] };
                let c: &[(vk::CommandBuffer, u32)] = if keep.cbs { &b.cbs } else { &[] };
                Arrays {
                    waits: w.iter().map(|o| o.sem).collect(),
                    stages: w
                        .iter()
                        .map(|o| vk::PipelineStageFlags::from_raw(o.stages as u32))
                        .collect(),
                    wait_values: w.iter().map(|o| o.value).collect(),
                    wait_indices: w.iter().map(|o| o.device_index).collect(),
                    cbs: c.iter().map(|o| o.0).collect(),
                    masks: c.iter().map(|o| o.1).collect(),
                    signals: s.iter().map(|o| o.sem).collect(),
                    signal_values: s.iter().map(|o| o.value).collect(),
                    signal_indices: s.iter().map(|o| o.device_index).collect(),
                }
            })
            .collect();
        let mut timeline: Vec<vk::TimelineSemaphoreSubmitInfo<'_>> = arrays
            .iter()
            .map(|a| {
                vk::TimelineSemaphoreSubmitInfo::default()
                    .wait_semaphore_values(&a.wait_values)
                    .signal_semaphore_values(&a.signal_values)
            })
            .collect();
        let mut group: Vec<vk::DeviceGroupSubmitInfo<'_>> = arrays
            .iter()
            .map(|a| {
                vk::DeviceGroupSubmitInfo::default()
                    .wait_semaphore_device_indices(&a.wait_indices)
                    .command_buffer_device_masks(&a.masks)
                    .signal_semaphore_device_indices(&a.signal_indices)
            })
            .collect();
        let mut protected: Vec<vk::ProtectedSubmitInfo<'_>> = self
            .batches
            .iter()
            .map(|b| vk::ProtectedSubmitInfo::default().protected_submit(b.protected))
            .collect();
        let mut infos = Vec::with_capacity(arrays.len());
        for (i, ((a, b), ((t, g), p))) in arrays
            .iter()
            .zip(&self.batches)
            .zip(
                timeline
                    .iter_mut()
                    .zip(group.iter_mut())
                    .zip(protected.iter_mut()),
            )
            .enumerate()
        {
            let _ = i;
            let mut s = vk::SubmitInfo::default()
                .wait_semaphores(&a.waits)
                .wait_dst_stage_mask(&a.stages)
                .command_buffers(&a.cbs)
                .signal_semaphores(&a.signals);
            if b.timeline {
                s = s.push_next(t);
            }
            if b.group {
                s = s.push_next(g);
            }
            if b.protected {
                s = s.push_next(p);
            }
            infos.push(s);
        }
        // SAFETY: valid submit infos over the application's objects (still pending for it).
        unsafe { next!(dev, queue_submit)(queue, infos.len() as u32, infos.as_ptr(), fence) }
    }

    fn submit2(
        &self,
        dev: &DeviceState,
        queue: vk::Queue,
        keep: Keep,
        fence: vk::Fence,
    ) -> vk::Result {
        let sem = |o: &SemOp| {
            vk::SemaphoreSubmitInfo::default()
                .semaphore(o.sem)
                .value(o.value)
                .stage_mask(vk::PipelineStageFlags2::from_raw(o.stages))
                .device_index(o.device_index)
        };
        let arrays: Vec<(
            Vec<vk::SemaphoreSubmitInfo<'_>>,
            Vec<vk::CommandBufferSubmitInfo<'_>>,
            Vec<vk::SemaphoreSubmitInfo<'_>>,
        )> = self
            .batches
            .iter()
            .map(|b| {
                (
                    if keep.waits {
                        b.waits.iter().map(sem).collect()
                    } else {
                        Vec::new()
                    },
                    if keep.cbs {
                        b.cbs
                            .iter()
                            .map(|&(c, m)| {
                                vk::CommandBufferSubmitInfo::default()
                                    .command_buffer(c)
                                    .device_mask(m)
                            })
                            .collect()
                    } else {
                        Vec::new()
                    },
                    if keep.signals {
                        b.signals.iter().map(sem).collect()
                    } else {
                        Vec::new()
                    },
                )
            })
            .collect();
        let infos: Vec<vk::SubmitInfo2<'_>> = arrays
            .iter()
            .zip(&self.batches)
            .map(|((w, c, s), b)| {
                vk::SubmitInfo2::default()
                    .wait_semaphore_infos(w)
                    .command_buffer_infos(c)
                    .signal_semaphore_infos(s)
                    .flags(if b.protected {
                        vk::SubmitFlags::PROTECTED
                    } else {
                        vk::SubmitFlags::empty()
                    })
            })
            .collect();
        // SAFETY: valid submit infos over the application's objects (still pending for it).
        unsafe { next!(dev, queue_submit2)(queue, infos.len() as u32, infos.as_ptr(), fence) }
    }
}

/// Submits command buffers alone (no semaphores) with `fence`.
pub fn submit_cbs(
    dev: &DeviceState,
    queue: vk::Queue,
    cbs: &[vk::CommandBuffer],
    fence: vk::Fence,
) -> vk::Result {
    let info = vk::SubmitInfo::default().command_buffers(cbs);
    // SAFETY: a valid submit info over valid command buffers.
    unsafe { next!(dev, queue_submit)(queue, 1, &info, fence) }
}
