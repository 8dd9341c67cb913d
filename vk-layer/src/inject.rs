//! Carrying out a decision of the fault model on one submission.
//!
//! - Guilty fault or hang: the batches go down with zero command buffers (their semaphores and
//!   fence still signal, so WSI does not hang), the device is marked lost with the fault report,
//!   and the submit call itself returns `VK_SUCCESS`: the loss shows from the next call that
//!   may return `VK_ERROR_DEVICE_LOST` (as a fault detected at completion would).
//! - Neighbour fault: the batches run below with their signals withheld; the layer then leaves
//!   memory as a job stopped half-way would (garbage in every range the submission may write:
//!   through a host mapping for host-visible memory, with `vkCmdFillBuffer` on an aliasing
//!   layer buffer otherwise), and either replays the command buffers (restartable: the
//!   application sees nothing) or marks the device lost with an innocent report. Then the
//!   withheld signals and the fence are released.

use ash::vk;
use ash::vk::Handle;

use agx_winsys::outcome::{Guilt, JobOutcome};
use agx_winsys::vulkan::{FaultReport, FaultVendorInfo};

use crate::dispatch::{lock, next, DeviceState, LayerObjects};
use crate::shadow::ShadowFault;
use crate::stats;
use crate::track::{Reg, Space};

/// Vendor info code of a not-restartable reason in innocent reports.
pub const VENDOR_CODE_NOT_RESTARTABLE: u64 = 5;

/// The batches of one submit call.
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

    /// The command buffers, in submission order.
    ///
    /// # Safety
    ///
    /// The batches must be valid (valid usage of the submit call).
    unsafe fn command_buffers(&self) -> Vec<vk::CommandBuffer> {
        let mut out = Vec::new();
        // SAFETY: arrays of the given sizes (valid usage).
        unsafe {
            match self {
                Batches::V1(b) => {
                    for s in *b {
                        out.extend_from_slice(crate::dispatch::slice(
                            s.p_command_buffers,
                            s.command_buffer_count,
                        ));
                    }
                }
                Batches::V2(b) => {
                    for s in *b {
                        for c in crate::dispatch::slice(
                            s.p_command_buffer_infos,
                            s.command_buffer_info_count,
                        ) {
                            out.push(c.command_buffer);
                        }
                    }
                }
            }
        }
        out
    }
}

/// What to keep of each batch when re-submitting it.
#[derive(Clone, Copy)]
struct Keep {
    waits: bool,
    cbs: bool,
    signals: bool,
}

/// Submits `batches` below, keeping only the parts in `keep` (the `pNext` chains stay; a
/// timeline info with more values than semaphores kept is valid).
fn submit_edited(
    dev: &DeviceState,
    queue: vk::Queue,
    batches: Batches<'_>,
    fence: vk::Fence,
    keep: Keep,
) -> vk::Result {
    // SAFETY: the copies point at the application's arrays, valid for the duration of the
    // submit call we are in; the counts are only lowered to zero.
    unsafe {
        match batches {
            Batches::V1(b) => {
                let mut v: Vec<vk::SubmitInfo<'_>> = b.to_vec();
                for s in &mut v {
                    if !keep.waits {
                        s.wait_semaphore_count = 0;
                        s.p_wait_semaphores = std::ptr::null();
                        s.p_wait_dst_stage_mask = std::ptr::null();
                    }
                    if !keep.cbs {
                        s.command_buffer_count = 0;
                        s.p_command_buffers = std::ptr::null();
                    }
                    if !keep.signals {
                        s.signal_semaphore_count = 0;
                        s.p_signal_semaphores = std::ptr::null();
                    }
                }
                next!(dev, queue_submit)(queue, v.len() as u32, v.as_ptr(), fence)
            }
            Batches::V2(b) => {
                let mut v: Vec<vk::SubmitInfo2<'_>> = b.to_vec();
                for s in &mut v {
                    if !keep.waits {
                        s.wait_semaphore_info_count = 0;
                        s.p_wait_semaphore_infos = std::ptr::null();
                    }
                    if !keep.cbs {
                        s.command_buffer_info_count = 0;
                        s.p_command_buffer_infos = std::ptr::null();
                    }
                    if !keep.signals {
                        s.signal_semaphore_info_count = 0;
                        s.p_signal_semaphore_infos = std::ptr::null();
                    }
                }
                next!(dev, queue_submit2)(queue, v.len() as u32, v.as_ptr(), fence)
            }
        }
    }
}

/// Passes the submit down unchanged.
pub fn submit_as_is(
    dev: &DeviceState,
    queue: vk::Queue,
    batches: Batches<'_>,
    fence: vk::Fence,
) -> vk::Result {
    // SAFETY: the application's arguments, forwarded unchanged.
    unsafe {
        match batches {
            Batches::V1(b) => next!(dev, queue_submit)(queue, b.len() as u32, b.as_ptr(), fence),
            Batches::V2(b) => next!(dev, queue_submit2)(queue, b.len() as u32, b.as_ptr(), fence),
        }
    }
}

/// Submits the batches with zero command buffers: waits, signals and fence kept.
pub fn submit_empty(
    dev: &DeviceState,
    queue: vk::Queue,
    batches: Batches<'_>,
    fence: vk::Fence,
) -> vk::Result {
    let keep = Keep {
        waits: true,
        cbs: false,
        signals: true,
    };
    submit_edited(dev, queue, batches, fence, keep)
}

/// A guilty fault or hang of submission `n`.
pub fn guilty(
    dev: &DeviceState,
    queue: vk::Queue,
    batches: Batches<'_>,
    fence: vk::Fence,
    outcome: JobOutcome,
    n: u64,
) -> vk::Result {
    stats::fault_injected();
    let r = submit_empty(dev, queue, batches, fence);
    if let Some(report) = FaultReport::from_outcome(&outcome, n) {
        dev.set_lost(report);
    }
    if r == vk::Result::SUCCESS || r == vk::Result::ERROR_DEVICE_LOST {
        vk::Result::SUCCESS
    } else {
        r
    }
}

/// A neighbour fault while submission `n` runs (planned, or on a shared device
/// (`AGX_FAULT_DEVICE`) whatever another process's fault did to its shadow job).
pub fn neighbor(
    dev: &DeviceState,
    queue: vk::Queue,
    batches: Batches<'_>,
    fence: vk::Fence,
    n: u64,
) -> vk::Result {
    // SAFETY: valid batches (valid usage of the submit call).
    let cbs = unsafe { batches.command_buffers() };
    let raw: Vec<u64> = cbs.iter().map(|c| c.as_raw()).collect();
    let verdict = lock(&dev.tracker).analyse_submission(&raw);
    // What the recovery model does to the shadow job: replay, kill, or (on a shared device,
    // when no fault came while it ran) nothing, and then it runs as is.
    let outcome = dev
        .shadow_outcome(n, ShadowFault::Neighbor, verdict.restartable())
        .unwrap_or(JobOutcome::Killed {
            guilt: Guilt::Innocent,
            fault: None,
        });
    if outcome == JobOutcome::Complete {
        return submit_as_is(dev, queue, batches, fence);
    }
    stats::fault_injected();
    let mut objs = lock(&dev.layer);

    // 1. The job runs (and is stopped half-way: below it runs fully, then is scrambled).
    let keep = Keep {
        waits: true,
        cbs: true,
        signals: false,
    };
    let r = submit_edited(dev, queue, batches, vk::Fence::null(), keep);
    if r != vk::Result::SUCCESS {
        return dev.check(r, batches.call_name());
    }
    // SAFETY: `queue` is valid.
    let r = unsafe { next!(dev, queue_wait_idle)(queue) };
    if r != vk::Result::SUCCESS {
        return dev.check(r, "vkQueueWaitIdle");
    }
    // 2. What a half-executed job leaves.
    scramble(dev, &mut objs, queue, &verdict.written);
    // 3. Replay or lose, as the recovery model decided for the shadow job.
    if outcome.succeeded() {
        let r = submit_cbs(dev, queue, &cbs);
        // SAFETY: `queue` is valid.
        let r2 = unsafe { next!(dev, queue_wait_idle)(queue) };
        if r != vk::Result::SUCCESS || r2 != vk::Result::SUCCESS {
            let _ = dev.check(vk::Result::ERROR_DEVICE_LOST, "replay");
        } else {
            stats::replayed();
        }
    } else {
        let names = verdict.reason_names();
        for r in &names {
            stats::not_restartable(r);
        }
        if let Some(mut report) = FaultReport::from_outcome(&outcome, n) {
            report
                .description
                .push_str(&format!(" [{}]", names.join("|")));
            for r in &names {
                report.vendor.push(FaultVendorInfo {
                    description: format!("not restartable: {r}"),
                    code: VENDOR_CODE_NOT_RESTARTABLE,
                    data: 0,
                });
            }
            dev.set_lost(report);
        }
    }
    drop(objs);
    // 4. Release the withheld signals and the fence.
    let keep = Keep {
        waits: false,
        cbs: false,
        signals: true,
    };
    let r = submit_edited(dev, queue, batches, fence, keep);
    if r == vk::Result::SUCCESS || r == vk::Result::ERROR_DEVICE_LOST {
        vk::Result::SUCCESS
    } else {
        r
    }
}

/// Submits command buffers alone (no semaphores, no fence).
fn submit_cbs(dev: &DeviceState, queue: vk::Queue, cbs: &[vk::CommandBuffer]) -> vk::Result {
    let info = vk::SubmitInfo::default().command_buffers(cbs);
    // SAFETY: a valid submit info over valid command buffers.
    unsafe { next!(dev, queue_submit)(queue, 1, &info, vk::Fence::null()) }
}

/// Garbage as a stopped job would leave it (deterministic, never all zero).
fn garbage(i: u64) -> u8 {
    let x = (i ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (x >> 56) as u8 | 1
}

/// Writes garbage into every range of `regions`.
fn scramble(dev: &DeviceState, objs: &mut LayerObjects, queue: vk::Queue, regions: &[Reg]) {
    for reg in regions {
        let Space::Memory(mem) = reg.space else {
            continue;
        };
        let info = lock(&dev.tracker).memories.get(&mem).cloned();
        let Some(info) = info else { continue };
        let end = reg.start.saturating_add(reg.len).min(info.size);
        if end <= reg.start {
            continue;
        }
        let len = end - reg.start;
        if info.host_visible && scramble_host(dev, mem, &info, reg.start, len) {
            continue;
        }
        scramble_gpu(
            dev,
            objs,
            queue,
            mem,
            info.type_index,
            info.size,
            reg.start,
            len,
        );
    }
}

/// Through a host mapping (the application's, or the layer's own). False when not possible.
fn scramble_host(
    dev: &DeviceState,
    mem: u64,
    info: &crate::track::Memory,
    start: u64,
    len: u64,
) -> bool {
    let memory = vk::DeviceMemory::from_raw(mem);
    let (ptr, ours) = match info.app_map {
        Some((p, off, size)) => {
            let map_end = if size == vk::WHOLE_SIZE {
                info.size
            } else {
                off + size
            };
            if start < off || start + len > map_end {
                return false;
            }
            (p + (start - off) as usize, false)
        }
        None => {
            let mut p = std::ptr::null_mut();
            // SAFETY: the memory is host-visible and not mapped by the application.
            let r = unsafe {
                next!(dev, map_memory)(
                    dev.handle,
                    memory,
                    start,
                    len,
                    vk::MemoryMapFlags::empty(),
                    &mut p,
                )
            };
            if r != vk::Result::SUCCESS || p.is_null() {
                return false;
            }
            (p as usize, true)
        }
    };
    // SAFETY: `ptr` maps at least `len` bytes of the range (checked above or just mapped), and
    // the GPU is idle on this queue; the application must not touch memory of a pending
    // submission.
    unsafe {
        let bytes = std::slice::from_raw_parts_mut(ptr as *mut u8, len as usize);
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = garbage(start + i as u64);
        }
        if !info.coherent {
            let range = vk::MappedMemoryRange::default()
                .memory(memory)
                .offset(if ours {
                    start
                } else {
                    info.app_map.map(|m| m.1).unwrap_or(0)
                })
                .size(vk::WHOLE_SIZE);
            let _ = next!(dev, flush_mapped_memory_ranges)(dev.handle, 1, &range);
        }
        if ours {
            next!(dev, unmap_memory)(dev.handle, memory);
        }
    }
    true
}

/// With `vkCmdFillBuffer` on a layer buffer aliasing the range.
#[allow(clippy::too_many_arguments)]
fn scramble_gpu(
    dev: &DeviceState,
    objs: &mut LayerObjects,
    queue: vk::Queue,
    mem: u64,
    type_index: u32,
    mem_size: u64,
    start: u64,
    len: u64,
) {
    let Some(&family) = lock(&dev.queues).get(&queue.as_raw()) else {
        return;
    };
    let d = dev.handle;
    // SAFETY: layer-owned objects created, used and destroyed here; the memory range belongs
    // to the submission that just completed on this queue.
    unsafe {
        let make = |size: u64| -> Option<(vk::Buffer, vk::MemoryRequirements)> {
            let ci = vk::BufferCreateInfo::default()
                .size(size)
                .usage(vk::BufferUsageFlags::TRANSFER_DST)
                .sharing_mode(vk::SharingMode::EXCLUSIVE);
            let mut b = vk::Buffer::null();
            if next!(dev, create_buffer)(d, &ci, std::ptr::null(), &mut b) != vk::Result::SUCCESS {
                return None;
            }
            let mut req = vk::MemoryRequirements::default();
            next!(dev, get_buffer_memory_requirements)(d, b, &mut req);
            Some((b, req))
        };
        let Some((probe, req)) = make(len) else {
            return;
        };
        next!(dev, destroy_buffer)(d, probe, std::ptr::null());
        let align = req.alignment.max(1);
        let base = start - start % align;
        let Some((buf, req)) = make(start + len - base) else {
            return;
        };
        let fill_off = (start - base).div_ceil(4) * 4;
        let fill_end = (start + len - base) / 4 * 4;
        let ok = req.memory_type_bits & (1 << type_index) != 0
            && base + req.size <= mem_size
            && fill_end > fill_off
            && next!(dev, bind_buffer_memory)(d, buf, vk::DeviceMemory::from_raw(mem), base)
                == vk::Result::SUCCESS;
        if ok {
            if let Some(cb) = layer_command_buffer(dev, objs, family) {
                let begin = vk::CommandBufferBeginInfo::default()
                    .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
                let _ = next!(dev, begin_command_buffer)(cb, &begin);
                next!(dev, cmd_fill_buffer)(cb, buf, fill_off, fill_end - fill_off, 0xdead_beef);
                let _ = next!(dev, end_command_buffer)(cb);
                let _ = submit_cbs(dev, queue, &[cb]);
                let _ = next!(dev, queue_wait_idle)(queue);
                if let Some(&pool) = objs.pools.get(&family) {
                    next!(dev, free_command_buffers)(d, pool, 1, &cb);
                }
            }
        }
        next!(dev, destroy_buffer)(d, buf, std::ptr::null());
    }
}

/// A primary command buffer from the layer's pool for `family`, with the loader's dispatch set.
fn layer_command_buffer(
    dev: &DeviceState,
    objs: &mut LayerObjects,
    family: u32,
) -> Option<vk::CommandBuffer> {
    let d = dev.handle;
    // SAFETY: layer-owned pool and command buffer of a valid device.
    unsafe {
        let pool = match objs.pools.get(&family) {
            Some(&p) => p,
            None => {
                let ci = vk::CommandPoolCreateInfo::default()
                    .queue_family_index(family)
                    .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER);
                let mut p = vk::CommandPool::null();
                if next!(dev, create_command_pool)(d, &ci, std::ptr::null(), &mut p)
                    != vk::Result::SUCCESS
                {
                    return None;
                }
                objs.pools.insert(family, p);
                p
            }
        };
        let ai = vk::CommandBufferAllocateInfo::default()
            .command_pool(pool)
            .level(vk::CommandBufferLevel::PRIMARY)
            .command_buffer_count(1);
        let mut cb = vk::CommandBuffer::null();
        if next!(dev, allocate_command_buffers)(d, &ai, &mut cb) != vk::Result::SUCCESS {
            return None;
        }
        // A dispatchable object created below the loader: give it the loader's dispatch.
        if let Some(set) = dev.set_loader_data {
            if set(d, cb.as_raw() as usize as *mut std::ffi::c_void) != vk::Result::SUCCESS {
                return None;
            }
        }
        Some(cb)
    }
}

/// Destroys the layer's objects of a device about to be destroyed.
pub fn destroy_layer_objects(dev: &DeviceState) {
    let mut objs = lock(&dev.layer);
    // SAFETY: layer-owned objects; the application destroys the device, so nothing of it is
    // pending (valid usage of vkDestroyDevice).
    unsafe {
        for (_, p) in objs.pools.drain() {
            next!(dev, destroy_command_pool)(dev.handle, p, std::ptr::null());
        }
        if let Some(f) = objs.fence.take() {
            next!(dev, destroy_fence)(dev.handle, f, std::ptr::null());
        }
    }
}
