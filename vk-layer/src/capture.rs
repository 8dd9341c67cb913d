//! `AGX_FAULT_FRAMES=<file>`: a hash of every presented image, one line per present, so the
//! frames of any application (one nobody here wrote) can be compared between a run with faults
//! and a run without.
//!
//! At `vkQueuePresentKHR` the layer submits, on the presenting queue, a command buffer that
//! waits on the present's semaphores, copies each presented image into a host-visible layer
//! buffer and signals the same (binary) semaphores again, which the present then waits on as
//! the application asked. The images need `TRANSFER_SRC` (added at swapchain creation when the
//! surface allows it; otherwise the line says `no-transfer-src`).

use std::collections::HashMap;
use std::io::Write;

use ash::vk;
use ash::vk::Handle;

use crate::dispatch::{lock, next, slice, DeviceState};
use crate::submit::queue::QueueInfo;
use crate::track::SwapImage;

/// A host-visible buffer an image is copied into.
struct Readback {
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
    ptr: *const u8,
    size: u64,
}

/// The capture state of a device.
pub struct Capture {
    file: std::fs::File,
    frames: u64,
    /// Per swapchain image.
    readbacks: HashMap<u64, Readback>,
}

// SAFETY: the raw pointer is a persistent host mapping used only under the capture's mutex.
unsafe impl Send for Capture {}

impl Capture {
    /// The capture of `AGX_FAULT_FRAMES`, if set (a file that cannot be made is reported).
    pub fn from_env() -> Option<Capture> {
        let path = std::env::var_os("AGX_FAULT_FRAMES")?;
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            Ok(file) => Some(Capture {
                file,
                frames: 0,
                readbacks: HashMap::new(),
            }),
            Err(e) => {
                eprintln!("VK_LAYER_AGX_fault: cannot open AGX_FAULT_FRAMES {path:?}: {e}");
                None
            }
        }
    }

    /// Frees the layer's buffers (the device is idle).
    pub fn destroy(&mut self, dev: &DeviceState) {
        for (_, r) in self.readbacks.drain() {
            // SAFETY: layer objects no submission uses any more.
            unsafe {
                next!(dev, destroy_buffer)(dev.handle, r.buffer, std::ptr::null());
                next!(dev, free_memory)(dev.handle, r.memory, std::ptr::null());
            }
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A readback buffer of `size` bytes.
fn readback(dev: &DeviceState, size: u64) -> Option<Readback> {
    let d = dev.handle;
    // SAFETY: layer-owned objects of a valid device.
    unsafe {
        let ci = vk::BufferCreateInfo::default()
            .size(size)
            .usage(vk::BufferUsageFlags::TRANSFER_DST);
        let mut buffer = vk::Buffer::null();
        if next!(dev, create_buffer)(d, &ci, std::ptr::null(), &mut buffer) != vk::Result::SUCCESS {
            return None;
        }
        let mut req = vk::MemoryRequirements::default();
        next!(dev, get_buffer_memory_requirements)(d, buffer, &mut req);
        let want = vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
        let ty = (0..dev.mem_props.memory_type_count).find(|&i| {
            req.memory_type_bits & (1 << i) != 0
                && dev.mem_props.memory_types[i as usize]
                    .property_flags
                    .contains(want)
        })?;
        let ai = vk::MemoryAllocateInfo::default()
            .allocation_size(req.size)
            .memory_type_index(ty);
        let mut memory = vk::DeviceMemory::null();
        let mut ptr = std::ptr::null_mut();
        if next!(dev, allocate_memory)(d, &ai, std::ptr::null(), &mut memory) != vk::Result::SUCCESS
            || next!(dev, bind_buffer_memory)(d, buffer, memory, 0) != vk::Result::SUCCESS
            || next!(dev, map_memory)(
                d,
                memory,
                0,
                vk::WHOLE_SIZE,
                vk::MemoryMapFlags::empty(),
                &mut ptr,
            ) != vk::Result::SUCCESS
        {
            next!(dev, destroy_buffer)(d, buffer, std::ptr::null());
            if memory != vk::DeviceMemory::null() {
                next!(dev, free_memory)(d, memory, std::ptr::null());
            }
            return None;
        }
        Some(Readback {
            buffer,
            memory,
            ptr: ptr as *const u8,
            size,
        })
    }
}

/// Copies the images `info` presents, hashes them into the capture file, then presents (the
/// caller holds nothing; this takes the queue).
///
/// # Safety
/// `info` must be a valid present info for `q`.
pub unsafe fn present(
    dev: &DeviceState,
    q: &QueueInfo,
    info: *const vk::PresentInfoKHR<'_>,
) -> vk::Result {
    // SAFETY: a valid present info (caller).
    let i = unsafe { &*info };
    // SAFETY: arrays of the present info.
    let (scs, idx, waits) = unsafe {
        (
            slice(i.p_swapchains, i.swapchain_count),
            slice(i.p_image_indices, i.swapchain_count),
            slice(i.p_wait_semaphores, i.wait_semaphore_count),
        )
    };
    let images: Vec<Option<(u64, SwapImage)>> = {
        let t = lock(&dev.tracker);
        scs.iter()
            .zip(idx)
            .map(|(sc, &k)| {
                let img = *t.objects.swapchains.get(&sc.as_raw())?.get(k as usize)?;
                Some((img, *t.objects.swap_images.get(&img)?))
            })
            .collect()
    };
    let Some(cap) = &dev.capture else {
        // SAFETY: forwarded.
        return unsafe { next!(dev, queue_present_khr)(q.handle, info) };
    };
    let mut cap = lock(cap);
    let mut lines = Vec::new();
    let mut copied = Vec::new();
    let mut objs = lock(&q.objs);
    let cb = dev.layer_command_buffer(&mut objs, q.family);
    let fence = dev.take_fence(&mut objs);
    let (Some(cb), Some(fence)) = (cb, fence) else {
        drop(objs);
        // SAFETY: forwarded.
        return unsafe { next!(dev, queue_present_khr)(q.handle, info) };
    };
    // SAFETY: a layer command buffer recording copies of presentable images (in PRESENT_SRC,
    // as the application must leave them) into layer buffers, submitted on the presenting
    // queue behind the present's own semaphores, which it signals again for the present.
    let r = unsafe {
        let _ = next!(dev, begin_command_buffer)(
            cb,
            &vk::CommandBufferBeginInfo::default()
                .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT),
        );
        for (k, im) in images.iter().enumerate() {
            let Some((img, s)) = *im else {
                lines.push(format!("{} {k} untracked", cap.frames));
                continue;
            };
            if !s.transfer_src {
                lines.push(format!("{} {k} no-transfer-src", cap.frames));
                continue;
            }
            let size = s.bytes();
            if let std::collections::hash_map::Entry::Vacant(e) = cap.readbacks.entry(img) {
                if let Some(r) = readback(dev, size) {
                    e.insert(r);
                }
            }
            let Some(rb) = cap.readbacks.get(&img) else {
                lines.push(format!("{} {k} no-buffer", cap.frames));
                continue;
            };
            let range = vk::ImageSubresourceRange {
                aspect_mask: vk::ImageAspectFlags::COLOR,
                base_mip_level: 0,
                level_count: 1,
                base_array_layer: 0,
                layer_count: 1,
            };
            let barrier = |from, to, src, dst| {
                vk::ImageMemoryBarrier::default()
                    .old_layout(from)
                    .new_layout(to)
                    .src_access_mask(src)
                    .dst_access_mask(dst)
                    .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                    .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                    .image(vk::Image::from_raw(img))
                    .subresource_range(range)
            };
            let b = barrier(
                vk::ImageLayout::PRESENT_SRC_KHR,
                vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                vk::AccessFlags::MEMORY_WRITE,
                vk::AccessFlags::TRANSFER_READ,
            );
            crate::submit::scramble::image_barrier(
                dev,
                cb,
                vk::PipelineStageFlags::ALL_COMMANDS,
                vk::PipelineStageFlags::TRANSFER,
                &b,
            );
            let region = vk::BufferImageCopy::default()
                .image_subresource(vk::ImageSubresourceLayers {
                    aspect_mask: vk::ImageAspectFlags::COLOR,
                    mip_level: 0,
                    base_array_layer: 0,
                    layer_count: 1,
                })
                .image_extent(vk::Extent3D {
                    width: s.width,
                    height: s.height,
                    depth: 1,
                });
            next!(dev, cmd_copy_image_to_buffer)(
                cb,
                vk::Image::from_raw(img),
                vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                rb.buffer,
                1,
                &region,
            );
            let b = barrier(
                vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                vk::ImageLayout::PRESENT_SRC_KHR,
                vk::AccessFlags::TRANSFER_READ,
                vk::AccessFlags::empty(),
            );
            crate::submit::scramble::image_barrier(
                dev,
                cb,
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::BOTTOM_OF_PIPE,
                &b,
            );
            copied.push((k, img, (s.width as u64) * (s.height as u64) * 4));
        }
        let _ = next!(dev, end_command_buffer)(cb);
        let stages = vec![vk::PipelineStageFlags::ALL_COMMANDS; waits.len()];
        let cbs = [cb];
        let si = vk::SubmitInfo::default()
            .wait_semaphores(waits)
            .wait_dst_stage_mask(&stages)
            .command_buffers(&cbs)
            .signal_semaphores(waits);
        let r = next!(dev, queue_submit)(q.handle, 1, &si, fence);
        let p = next!(dev, queue_present_khr)(q.handle, info);
        if r != vk::Result::SUCCESS {
            copied.clear();
        }
        p
    };
    drop(objs);
    if dev.wait_layer_fence(fence, None) == Ok(true) {
        for (k, img, len) in copied {
            if let Some(rb) = cap.readbacks.get(&img) {
                // SAFETY: a coherent persistent mapping of `size` bytes the finished copy wrote.
                let bytes =
                    unsafe { std::slice::from_raw_parts(rb.ptr, len.min(rb.size) as usize) };
                lines.push(format!("{} {k} {:016x}", cap.frames, fnv1a(bytes)));
            }
        }
        let mut objs = lock(&q.objs);
        dev.give_fence(&mut objs, fence);
        dev.free_layer_command_buffer(&objs, cb);
    }
    lines.sort();
    cap.frames += 1;
    for l in lines {
        let _ = writeln!(cap.file, "{l}");
    }
    r
}
