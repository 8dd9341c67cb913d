//! What a job stopped half-way leaves in memory: garbage in the bytes it wrote.
//!
//! The layer cannot stop a job below the API; it runs the batch fully, then makes memory look
//! as a stopped job's would. Which bytes? Not the analysis' ranges (a write the tracker missed
//! would never be garbled, and replay would look perfect), and not whole bindings either (bytes
//! the job never writes would be garbled, which no GPU does, and a correct replay would look
//! wrong). The layer *observes* them: every binding the batch can reach for writing
//! (`track::reach`, independent of the analysis) is copied into a layer staging buffer on the
//! GPU timeline right before the batch (a layer command buffer at the head of the batch, after
//! its waits) and again after it; the bytes that changed are exactly the bytes the job wrote
//! (a byte rewritten with its old value is the same either way), and each of them gets
//! garbage. A replay that does not rewrite all of them shows.
//!
//! Swapchain images are memory the layer cannot read: they are cleared whole (frames rewrite
//! them whole). Every step must succeed: a scramble that cannot be done makes the fault a
//! device loss, never a silent replay.

use ash::vk;
use ash::vk::Handle;

use super::queue::{QueueInfo, QueueObjects};
use crate::dispatch::{lock, next, DeviceState};
use crate::track::{Reg, Space, SwapImage};

/// The most bytes one snapshot may cover (twice that is staged). Model constant: a batch that
/// can reach more is not replayed (its fault is a loss, `scramble_too_large`).
pub const SNAPSHOT_LIMIT: u64 = 256 << 20;

/// Changed bytes closer than this are written back as one span.
const SPAN_GAP: usize = 32;

/// Garbage for the byte at `i`: never zero, so XOR with it always changes a byte.
fn garbage(i: u64) -> u8 {
    let x = (i ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (x >> 56) as u8 | 1
}

/// A layer staging buffer in host-visible memory, kept mapped (one per queue, grown on
/// demand).
pub struct Staging {
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
    size: u64,
    ptr: usize,
    coherent: bool,
}

impl Staging {
    /// Frees it (nothing of the queue is pending).
    pub fn destroy(self, dev: &DeviceState) {
        // SAFETY: layer objects no pending work uses (caller).
        unsafe {
            next!(dev, destroy_buffer)(dev.handle, self.buffer, std::ptr::null());
            next!(dev, unmap_memory)(dev.handle, self.memory);
            next!(dev, free_memory)(dev.handle, self.memory, std::ptr::null());
        }
    }
}

/// A staging buffer of at least `size` bytes in `objs` (the caller holds the queue).
fn staging<'o>(dev: &DeviceState, objs: &'o mut QueueObjects, size: u64) -> Option<&'o Staging> {
    if objs.staging.as_ref().is_some_and(|s| s.size >= size) {
        return objs.staging.as_ref();
    }
    if let Some(old) = objs.staging.take() {
        old.destroy(dev);
    }
    let size = size.next_power_of_two().max(1 << 16);
    let d = dev.handle;
    // SAFETY: layer-owned objects created, bound and mapped here.
    unsafe {
        let ci = vk::BufferCreateInfo::default()
            .size(size)
            .usage(vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST)
            .sharing_mode(vk::SharingMode::EXCLUSIVE);
        let mut buffer = vk::Buffer::null();
        if next!(dev, create_buffer)(d, &ci, std::ptr::null(), &mut buffer) != vk::Result::SUCCESS {
            return None;
        }
        let mut req = vk::MemoryRequirements::default();
        next!(dev, get_buffer_memory_requirements)(d, buffer, &mut req);
        let props = &dev.mem_props;
        let types = &props.memory_types[..props.memory_type_count as usize];
        let pick = |want: vk::MemoryPropertyFlags| {
            types.iter().enumerate().position(|(i, t)| {
                req.memory_type_bits & (1 << i) != 0 && t.property_flags.contains(want)
            })
        };
        let host = vk::MemoryPropertyFlags::HOST_VISIBLE;
        let Some(index) =
            pick(host | vk::MemoryPropertyFlags::HOST_COHERENT).or_else(|| pick(host))
        else {
            next!(dev, destroy_buffer)(d, buffer, std::ptr::null());
            return None;
        };
        let coherent = types[index]
            .property_flags
            .contains(vk::MemoryPropertyFlags::HOST_COHERENT);
        let ai = vk::MemoryAllocateInfo::default()
            .allocation_size(req.size)
            .memory_type_index(index as u32);
        let mut memory = vk::DeviceMemory::null();
        let mut ptr = std::ptr::null_mut();
        let ok = next!(dev, allocate_memory)(d, &ai, std::ptr::null(), &mut memory)
            == vk::Result::SUCCESS;
        if !ok
            || next!(dev, bind_buffer_memory)(d, buffer, memory, 0) != vk::Result::SUCCESS
            || next!(dev, map_memory)(
                d,
                memory,
                0,
                vk::WHOLE_SIZE,
                vk::MemoryMapFlags::empty(),
                &mut ptr,
            ) != vk::Result::SUCCESS
            || ptr.is_null()
        {
            next!(dev, destroy_buffer)(d, buffer, std::ptr::null());
            if ok {
                next!(dev, free_memory)(d, memory, std::ptr::null());
            }
            return None;
        }
        objs.staging = Some(Staging {
            buffer,
            memory,
            size,
            ptr: ptr as usize,
            coherent,
        });
    }
    objs.staging.as_ref()
}

/// One memory range of a snapshot: a layer buffer aliasing it, and where it is staged.
struct Range {
    /// The memory offset of the range's first byte (names the garbage).
    start: u64,
    len: u64,
    alias: vk::Buffer,
    /// The range's offset in `alias`.
    alias_off: u64,
    /// Its offset in each half of the staging buffer.
    staged: u64,
}

/// The snapshot of one batch, from before it runs until its scramble.
pub struct Snapshot<'a> {
    dev: &'a DeviceState,
    q: &'a QueueInfo,
    ranges: Vec<Range>,
    swap: Vec<(vk::Image, SwapImage)>,
    total: u64,
    staging: (vk::Buffer, usize, vk::DeviceMemory, bool),
    /// The layer command buffer that copies the ranges before the batch (its head).
    head: Option<vk::CommandBuffer>,
    /// The head may still be pending below: leak it rather than free it.
    head_pending: bool,
}

/// Merges `regions` into disjoint sorted ranges per space.
fn merge(regions: &[Reg]) -> Vec<Reg> {
    let mut v: Vec<Reg> = regions.iter().copied().filter(|r| r.len > 0).collect();
    v.sort();
    let mut out: Vec<Reg> = Vec::with_capacity(v.len());
    for r in v {
        match out.last_mut() {
            Some(l) if l.space == r.space && r.start <= l.start + l.len => {
                let end = (l.start + l.len).max(r.start + r.len);
                l.len = end - l.start;
            }
            _ => out.push(r),
        }
    }
    out
}

/// A full memory barrier (`src` to `dst` stages and accesses).
///
/// # Safety
/// `cb` is a layer command buffer being recorded.
unsafe fn barrier(
    dev: &DeviceState,
    cb: vk::CommandBuffer,
    src: (vk::PipelineStageFlags, vk::AccessFlags),
    dst: (vk::PipelineStageFlags, vk::AccessFlags),
) {
    let b = vk::MemoryBarrier::default()
        .src_access_mask(src.1)
        .dst_access_mask(dst.1);
    // SAFETY: recording into `cb` (caller).
    unsafe {
        next!(dev, cmd_pipeline_barrier)(
            cb,
            src.0,
            dst.0,
            vk::DependencyFlags::empty(),
            1,
            &b,
            0,
            std::ptr::null(),
            0,
            std::ptr::null(),
        )
    };
}

/// One image memory barrier from `src` to `dst` stages.
///
/// # Safety
/// `cb` is a layer command buffer being recorded.
pub(crate) unsafe fn image_barrier(
    dev: &DeviceState,
    cb: vk::CommandBuffer,
    src: vk::PipelineStageFlags,
    dst: vk::PipelineStageFlags,
    b: &vk::ImageMemoryBarrier<'_>,
) {
    // SAFETY: recording into `cb` (caller).
    unsafe {
        next!(dev, cmd_pipeline_barrier)(
            cb,
            src,
            dst,
            vk::DependencyFlags::empty(),
            0,
            std::ptr::null(),
            0,
            std::ptr::null(),
            1,
            b,
        )
    };
}

const ALL_WRITES: (vk::PipelineStageFlags, vk::AccessFlags) = (
    vk::PipelineStageFlags::ALL_COMMANDS,
    vk::AccessFlags::MEMORY_WRITE,
);
const TRANSFER_READ: (vk::PipelineStageFlags, vk::AccessFlags) = (
    vk::PipelineStageFlags::TRANSFER,
    vk::AccessFlags::TRANSFER_READ,
);

impl<'a> Snapshot<'a> {
    /// Prepares the snapshot of `regions` (whole reachable bindings) for a batch about to run
    /// on `q`: the head command buffer to put first in the batch.
    pub fn prepare(
        dev: &'a DeviceState,
        q: &'a QueueInfo,
        regions: &[Reg],
    ) -> Result<Snapshot<'a>, &'static str> {
        let mut s = Snapshot {
            dev,
            q,
            ranges: Vec::new(),
            swap: Vec::new(),
            total: 0,
            staging: (vk::Buffer::null(), 0, vk::DeviceMemory::null(), true),
            head: None,
            head_pending: false,
        };
        let mut mems = Vec::new();
        for r in merge(regions) {
            match r.space {
                Space::Memory(mem) => {
                    let info = lock(&dev.tracker).objects.memories.get(&mem).cloned();
                    let info = info.ok_or("scramble_unknown_memory")?;
                    let end = r.start.saturating_add(r.len).min(info.size);
                    if end <= r.start {
                        continue;
                    }
                    mems.push((mem, info, r.start, end - r.start));
                }
                Space::Image(i) => {
                    let si: Option<SwapImage> =
                        lock(&dev.tracker).objects.swap_images.get(&i).copied();
                    let si = si.ok_or("scramble_unknown_image")?;
                    if !si.transfer_dst {
                        return Err("swapchain_image_not_clearable");
                    }
                    s.swap.push((vk::Image::from_raw(i), si));
                }
                _ => {}
            }
        }
        let total: u64 = mems.iter().map(|m| m.3).sum();
        if total > SNAPSHOT_LIMIT {
            return Err("scramble_too_large");
        }
        s.total = total;
        for (mem, info, start, len) in mems {
            let (alias, alias_off) =
                alias_buffer(dev, mem, &info, start, len).ok_or("scramble_alias_buffer")?;
            s.ranges.push(Range {
                start,
                len,
                alias,
                alias_off,
                staged: s.ranges.last().map_or(0, |l: &Range| l.staged + l.len),
            });
        }
        if s.ranges.is_empty() {
            return Ok(s);
        }
        let mut objs = lock(&q.objs);
        let st = staging(dev, &mut objs, 2 * total).ok_or("scramble_staging")?;
        s.staging = (st.buffer, st.ptr, st.memory, st.coherent);
        let cb = dev
            .layer_command_buffer(&mut objs, q.family)
            .ok_or("scramble_command_buffer")?;
        s.head = Some(cb);
        // SAFETY: recording a layer command buffer over layer buffers.
        unsafe {
            let begin = vk::CommandBufferBeginInfo::default()
                .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
            let _ = next!(dev, begin_command_buffer)(cb, &begin);
            // Everything before the batch is visible to the copies...
            barrier(dev, cb, ALL_WRITES, TRANSFER_READ);
            s.copy_out(cb, 0);
            // ...which finish before any command of the batch writes the ranges, and are
            // visible to the host once the batch's fence signals.
            barrier(
                dev,
                cb,
                (
                    vk::PipelineStageFlags::TRANSFER,
                    vk::AccessFlags::TRANSFER_WRITE,
                ),
                (
                    vk::PipelineStageFlags::ALL_COMMANDS | vk::PipelineStageFlags::HOST,
                    vk::AccessFlags::HOST_READ,
                ),
            );
            if next!(dev, end_command_buffer)(cb) != vk::Result::SUCCESS {
                return Err("scramble_command_buffer");
            }
        }
        Ok(s)
    }

    /// The command buffer to run first in the batch (none: nothing to snapshot).
    pub fn head(&mut self) -> Option<vk::CommandBuffer> {
        self.head_pending = self.head.is_some();
        self.head
    }

    /// Copies every range into half `half` (0 before, 1 after) of the staging buffer.
    ///
    /// # Safety
    /// `cb` is a layer command buffer being recorded.
    unsafe fn copy_out(&self, cb: vk::CommandBuffer, half: u64) {
        for r in &self.ranges {
            let region = vk::BufferCopy {
                src_offset: r.alias_off,
                dst_offset: half * self.total + r.staged,
                size: r.len,
            };
            // SAFETY: recording into `cb` (caller).
            unsafe { next!(self.dev, cmd_copy_buffer)(cb, r.alias, self.staging.0, 1, &region) };
        }
    }

    /// After the batch ran: garbles the bytes it changed (and clears the swapchain images it
    /// may have written). Returns the bytes garbled.
    pub fn scramble(mut self) -> Result<u64, &'static str> {
        // The head ran (its batch's fence signalled).
        self.head_pending = false;
        let dev = self.dev;
        let mut bytes = 0u64;
        let mut spans: Vec<(usize, vk::BufferCopy)> = Vec::new();
        if !self.ranges.is_empty() {
            self.run(|cb| {
                // SAFETY: recording `cb`.
                unsafe {
                    barrier(dev, cb, ALL_WRITES, TRANSFER_READ);
                    self.copy_out(cb, 1);
                    barrier(
                        dev,
                        cb,
                        (
                            vk::PipelineStageFlags::TRANSFER,
                            vk::AccessFlags::TRANSFER_WRITE,
                        ),
                        (vk::PipelineStageFlags::HOST, vk::AccessFlags::HOST_READ),
                    );
                }
            })?;
            let (_, ptr, memory, coherent) = self.staging;
            let range = vk::MappedMemoryRange::default()
                .memory(memory)
                .size(vk::WHOLE_SIZE);
            // SAFETY: the staging buffer is mapped whole (2 * total bytes at least), and no
            // GPU work uses it now (both copies finished).
            let (before, after) = unsafe {
                if !coherent {
                    let _ = next!(dev, invalidate_mapped_memory_ranges)(dev.handle, 1, &range);
                }
                let n = self.total as usize;
                let p = ptr as *mut u8;
                (
                    std::slice::from_raw_parts(p, n),
                    std::slice::from_raw_parts_mut(p.add(n), n),
                )
            };
            for (k, r) in self.ranges.iter().enumerate() {
                let at = r.staged as usize;
                let n = r.len as usize;
                let b = &before[at..at + n];
                let a = &mut after[at..at + n];
                for (lo, hi) in changed_spans(b, a) {
                    for (i, byte) in a[lo..hi].iter_mut().enumerate() {
                        if b[lo + i] != *byte {
                            *byte ^= garbage(r.start + (lo + i) as u64);
                            bytes += 1;
                        }
                    }
                    spans.push((
                        k,
                        vk::BufferCopy {
                            src_offset: self.total + (at + lo) as u64,
                            dst_offset: r.alias_off + lo as u64,
                            size: (hi - lo) as u64,
                        },
                    ));
                }
            }
            if !coherent {
                // SAFETY: as above.
                unsafe {
                    let _ = next!(dev, flush_mapped_memory_ranges)(dev.handle, 1, &range);
                }
            }
        }
        bytes += self.swap.iter().map(|(_, s)| s.bytes()).sum::<u64>();
        if spans.is_empty() && self.swap.is_empty() {
            return Ok(bytes);
        }
        self.run(|cb| {
            // SAFETY: recording `cb`.
            unsafe {
                barrier(
                    dev,
                    cb,
                    ALL_WRITES,
                    (
                        vk::PipelineStageFlags::TRANSFER,
                        vk::AccessFlags::TRANSFER_WRITE | vk::AccessFlags::TRANSFER_READ,
                    ),
                );
                for (k, c) in &spans {
                    next!(dev, cmd_copy_buffer)(cb, self.staging.0, self.ranges[*k].alias, 1, c);
                }
                for (image, s) in &self.swap {
                    clear_swapchain_image(dev, cb, *image, s.layers.max(1));
                }
                barrier(
                    dev,
                    cb,
                    (
                        vk::PipelineStageFlags::TRANSFER,
                        vk::AccessFlags::TRANSFER_WRITE,
                    ),
                    (
                        vk::PipelineStageFlags::ALL_COMMANDS,
                        vk::AccessFlags::MEMORY_READ | vk::AccessFlags::MEMORY_WRITE,
                    ),
                );
            }
        })?;
        Ok(bytes)
    }

    /// Records `record` into a layer command buffer, submits it on the queue and waits.
    fn run(&self, record: impl FnOnce(vk::CommandBuffer)) -> Result<(), &'static str> {
        let (dev, q) = (self.dev, self.q);
        let (cb, f) = {
            let mut objs = lock(&q.objs);
            let cb = dev
                .layer_command_buffer(&mut objs, q.family)
                .ok_or("scramble_command_buffer")?;
            let f = dev.take_fence(&mut objs).ok_or("scramble_fence")?;
            // SAFETY: a layer command buffer recorded and submitted here, over layer buffers
            // and memory of a batch that finished; the application waits for its signals,
            // which the layer still holds.
            let r = unsafe {
                let begin = vk::CommandBufferBeginInfo::default()
                    .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
                let _ = next!(dev, begin_command_buffer)(cb, &begin);
                record(cb);
                let _ = next!(dev, end_command_buffer)(cb);
                super::batch::submit_cbs(dev, q.handle, &[cb], f)
            };
            if r != vk::Result::SUCCESS {
                objs.fences.push(f);
                return Err("scramble_submit");
            }
            (cb, f)
        };
        let done = dev.wait_layer_fence(f, None);
        let mut objs = lock(&q.objs);
        if done == Ok(true) {
            dev.give_fence(&mut objs, f);
            dev.free_layer_command_buffer(&objs, cb);
            Ok(())
        } else {
            Err("scramble_wait")
        }
    }
}

impl Drop for Snapshot<'_> {
    fn drop(&mut self) {
        let dev = self.dev;
        let objs = lock(&self.q.objs);
        if let Some(cb) = self.head {
            if !self.head_pending {
                dev.free_layer_command_buffer(&objs, cb);
            }
        }
        for r in &self.ranges {
            // SAFETY: layer buffers; the copies using them finished (or never ran), except
            // a head still pending below, whose buffers are leaked with it.
            if !self.head_pending {
                unsafe { next!(dev, destroy_buffer)(dev.handle, r.alias, std::ptr::null()) };
            }
        }
    }
}

/// The spans `[lo, hi)` of `after` that differ from `before` (gaps shorter than
/// [`SPAN_GAP`] bridged).
fn changed_spans(before: &[u8], after: &[u8]) -> Vec<(usize, usize)> {
    const CHUNK: usize = 64;
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < before.len() {
        let end = (i + CHUNK).min(before.len());
        if before[i..end] != after[i..end] {
            for j in i..end {
                if before[j] != after[j] {
                    match spans.last_mut() {
                        Some(s) if j - s.1 < SPAN_GAP => s.1 = j + 1,
                        _ => spans.push((j, j + 1)),
                    }
                }
            }
        }
        i = end;
    }
    spans
}

/// Clears a swapchain image with a colour no frame has (UNDEFINED to TRANSFER_DST, then
/// PRESENT_SRC, the layout frames start from).
///
/// # Safety
/// `cb` is a layer command buffer being recorded; `image` a swapchain image with
/// `TRANSFER_DST`.
unsafe fn clear_swapchain_image(
    dev: &DeviceState,
    cb: vk::CommandBuffer,
    image: vk::Image,
    layers: u32,
) {
    let range = vk::ImageSubresourceRange {
        aspect_mask: vk::ImageAspectFlags::COLOR,
        base_mip_level: 0,
        level_count: 1,
        base_array_layer: 0,
        layer_count: layers,
    };
    let layout = |old, new, src, dst| {
        vk::ImageMemoryBarrier::default()
            .old_layout(old)
            .new_layout(new)
            .src_access_mask(src)
            .dst_access_mask(dst)
            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .image(image)
            .subresource_range(range)
    };
    let to_dst = layout(
        vk::ImageLayout::UNDEFINED,
        vk::ImageLayout::TRANSFER_DST_OPTIMAL,
        vk::AccessFlags::empty(),
        vk::AccessFlags::TRANSFER_WRITE,
    );
    let back = layout(
        vk::ImageLayout::TRANSFER_DST_OPTIMAL,
        vk::ImageLayout::PRESENT_SRC_KHR,
        vk::AccessFlags::TRANSFER_WRITE,
        vk::AccessFlags::empty(),
    );
    let color = vk::ClearColorValue {
        float32: [0.123, 0.877, 0.456, 0.789],
    };
    // SAFETY: recording into `cb` (caller).
    unsafe {
        image_barrier(
            dev,
            cb,
            vk::PipelineStageFlags::ALL_COMMANDS,
            vk::PipelineStageFlags::TRANSFER,
            &to_dst,
        );
        next!(dev, cmd_clear_color_image)(
            cb,
            image,
            vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            &color,
            1,
            &range,
        );
        image_barrier(
            dev,
            cb,
            vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::ALL_COMMANDS,
            &back,
        );
    }
}

/// A layer buffer bound over `[start, start + len)` of `mem` (at the binding alignment below
/// `start`): the buffer and the range's offset in it.
fn alias_buffer(
    dev: &DeviceState,
    mem: u64,
    info: &crate::track::Memory,
    start: u64,
    len: u64,
) -> Option<(vk::Buffer, u64)> {
    let d = dev.handle;
    // SAFETY: layer-owned buffers created and bound here.
    unsafe {
        let make = |size: u64| -> Option<(vk::Buffer, vk::MemoryRequirements)> {
            let ci = vk::BufferCreateInfo::default()
                .size(size)
                .usage(vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST)
                .sharing_mode(vk::SharingMode::EXCLUSIVE);
            let mut b = vk::Buffer::null();
            if next!(dev, create_buffer)(d, &ci, std::ptr::null(), &mut b) != vk::Result::SUCCESS {
                return None;
            }
            let mut req = vk::MemoryRequirements::default();
            next!(dev, get_buffer_memory_requirements)(d, b, &mut req);
            Some((b, req))
        };
        let (probe, req) = make(len)?;
        next!(dev, destroy_buffer)(d, probe, std::ptr::null());
        let align = req.alignment.max(1);
        let base = start - start % align;
        let (buf, req) = make(start + len - base)?;
        let ok = req.memory_type_bits & (1 << info.type_index) != 0
            && base + req.size <= info.size
            && next!(dev, bind_buffer_memory)(d, buf, vk::DeviceMemory::from_raw(mem), base)
                == vk::Result::SUCCESS;
        if !ok {
            next!(dev, destroy_buffer)(d, buf, std::ptr::null());
            return None;
        }
        Some((buf, start - base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agx_winsys::analysis::Region;

    #[test]
    fn spans_of_changed_bytes() {
        let before = vec![0u8; 300];
        let mut after = before.clone();
        assert!(changed_spans(&before, &after).is_empty());
        after[3] = 1;
        after[10] = 1; // within SPAN_GAP of 3: one span
        after[200] = 7;
        assert_eq!(changed_spans(&before, &after), vec![(3, 11), (200, 201)]);
        after[299] = 9;
        assert_eq!(changed_spans(&before, &after).last(), Some(&(299, 300)));
    }

    #[test]
    fn merged_ranges() {
        let r = |m, s, l| Region::new(Space::Memory(m), s, l);
        let v = merge(&[
            r(1, 10, 10),
            r(1, 0, 5),
            r(1, 15, 10),
            r(2, 0, 4),
            r(1, 5, 0),
        ]);
        assert_eq!(v, vec![r(1, 0, 5), r(1, 10, 15), r(2, 0, 4)]);
    }

    #[test]
    fn garbage_always_changes_a_byte() {
        assert!((0..100_000u64).all(|i| garbage(i) != 0));
    }
}
