//! Garbage where a stopped job may have written: through a host mapping for host-visible
//! memory, with `vkCmdFillBuffer` on a layer buffer aliasing the range otherwise, and by
//! clearing swapchain images (whose memory the layer cannot reach). Every range must be done:
//! the first failure is returned and the caller loses the device.

use ash::vk;
use ash::vk::Handle;

use super::queue::QueueInfo;
use crate::dispatch::{lock, next, DeviceState};
use crate::track::{Memory, Reg, Space, SwapImage};

/// Garbage as a stopped job would leave it (deterministic, never all zero).
fn garbage(i: u64) -> u8 {
    let x = (i ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (x >> 56) as u8 | 1
}

/// GPU work of one scramble, recorded into one layer command buffer.
enum GpuOp {
    Fill { buf: vk::Buffer, off: u64, len: u64 },
    Clear { image: vk::Image, layers: u32 },
}

/// Writes garbage into every range of `regions`; returns the bytes scrambled.
pub fn scramble(dev: &DeviceState, q: &QueueInfo, regions: &[Reg]) -> Result<u64, &'static str> {
    let mut bytes = 0u64;
    let mut ops = Vec::new();
    let mut temp_buffers = Vec::new();
    let r = (|| {
        for reg in regions {
            match reg.space {
                Space::Memory(mem) => {
                    let info = lock(&dev.tracker).objects.memories.get(&mem).cloned();
                    let info = info.ok_or("scramble_unknown_memory")?;
                    let end = reg.start.saturating_add(reg.len).min(info.size);
                    if end <= reg.start {
                        continue;
                    }
                    let len = end - reg.start;
                    bytes += len;
                    if info.host_visible && scramble_host(dev, mem, &info, reg.start, len) {
                        continue;
                    }
                    let (buf, off, flen) = alias_buffer(dev, mem, &info, reg.start, len)
                        .ok_or("scramble_alias_buffer")?;
                    temp_buffers.push(buf);
                    if flen > 0 {
                        ops.push(GpuOp::Fill {
                            buf,
                            off,
                            len: flen,
                        });
                    }
                }
                Space::Image(i) => {
                    let s: Option<SwapImage> =
                        lock(&dev.tracker).objects.swap_images.get(&i).copied();
                    let s = s.ok_or("scramble_unknown_image")?;
                    if !s.transfer_dst {
                        return Err("swapchain_image_not_clearable");
                    }
                    bytes += s.bytes();
                    ops.push(GpuOp::Clear {
                        image: vk::Image::from_raw(i),
                        layers: s.layers.max(1),
                    });
                }
                _ => {}
            }
        }
        if !ops.is_empty() {
            run_ops(dev, q, &ops)?;
        }
        Ok(bytes)
    })();
    for b in temp_buffers {
        // SAFETY: layer buffers whose commands finished (or were never submitted).
        unsafe { next!(dev, destroy_buffer)(dev.handle, b, std::ptr::null()) };
    }
    r
}

/// Records and runs `ops` in one layer command buffer, waiting for it.
fn run_ops(dev: &DeviceState, q: &QueueInfo, ops: &[GpuOp]) -> Result<(), &'static str> {
    let (cb, f) = {
        let mut objs = lock(&q.objs);
        let cb = dev
            .layer_command_buffer(&mut objs, q.family)
            .ok_or("scramble_command_buffer")?;
        let f = dev.take_fence(&mut objs).ok_or("scramble_fence")?;
        // SAFETY: a layer command buffer recorded and submitted here, on objects the submission
        // that just finished on this queue used; the application waits for its fence, which
        // the layer still holds.
        let r = unsafe {
            let begin = vk::CommandBufferBeginInfo::default()
                .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
            let _ = next!(dev, begin_command_buffer)(cb, &begin);
            for op in ops {
                match *op {
                    GpuOp::Fill { buf, off, len } => {
                        next!(dev, cmd_fill_buffer)(cb, buf, off, len, 0xdead_beef)
                    }
                    GpuOp::Clear { image, layers } => {
                        let range = vk::ImageSubresourceRange {
                            aspect_mask: vk::ImageAspectFlags::COLOR,
                            base_mip_level: 0,
                            level_count: 1,
                            base_array_layer: 0,
                            layer_count: layers,
                        };
                        let to_dst = vk::ImageMemoryBarrier::default()
                            .old_layout(vk::ImageLayout::UNDEFINED)
                            .new_layout(vk::ImageLayout::TRANSFER_DST_OPTIMAL)
                            .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                            .image(image)
                            .subresource_range(range);
                        next!(dev, cmd_pipeline_barrier)(
                            cb,
                            vk::PipelineStageFlags::ALL_COMMANDS,
                            vk::PipelineStageFlags::TRANSFER,
                            vk::DependencyFlags::empty(),
                            0,
                            std::ptr::null(),
                            0,
                            std::ptr::null(),
                            1,
                            &to_dst,
                        );
                        let color = vk::ClearColorValue {
                            float32: [0.123, 0.877, 0.456, 0.789],
                        };
                        next!(dev, cmd_clear_color_image)(
                            cb,
                            image,
                            vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                            &color,
                            1,
                            &range,
                        );
                        // Swapchain images start a frame in PRESENT_SRC (the layout the
                        // replayed commands expect, or UNDEFINED, which any layout satisfies).
                        let back = vk::ImageMemoryBarrier::default()
                            .old_layout(vk::ImageLayout::TRANSFER_DST_OPTIMAL)
                            .new_layout(vk::ImageLayout::PRESENT_SRC_KHR)
                            .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                            .image(image)
                            .subresource_range(range);
                        next!(dev, cmd_pipeline_barrier)(
                            cb,
                            vk::PipelineStageFlags::TRANSFER,
                            vk::PipelineStageFlags::ALL_COMMANDS,
                            vk::DependencyFlags::empty(),
                            0,
                            std::ptr::null(),
                            0,
                            std::ptr::null(),
                            1,
                            &back,
                        );
                    }
                }
            }
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

/// Through a host mapping (the application's, or the layer's own). False when not possible.
fn scramble_host(dev: &DeviceState, mem: u64, info: &Memory, start: u64, len: u64) -> bool {
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
    // the submission writing it finished; the application must not touch memory of a pending
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

/// A layer buffer bound over `[start, start + len)` of `mem`: (buffer, fill offset, fill length,
/// both multiples of 4 as `vkCmdFillBuffer` wants).
fn alias_buffer(
    dev: &DeviceState,
    mem: u64,
    info: &Memory,
    start: u64,
    len: u64,
) -> Option<(vk::Buffer, u64, u64)> {
    let d = dev.handle;
    // SAFETY: layer-owned buffers created and bound here, over memory of a finished submission.
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
        let (probe, req) = make(len)?;
        next!(dev, destroy_buffer)(d, probe, std::ptr::null());
        let align = req.alignment.max(1);
        let base = start - start % align;
        let (buf, req) = make(start + len - base)?;
        let fill_off = (start - base).div_ceil(4) * 4;
        let fill_end = (start + len - base) / 4 * 4;
        let ok = req.memory_type_bits & (1 << info.type_index) != 0
            && base + req.size <= info.size
            && next!(dev, bind_buffer_memory)(d, buf, vk::DeviceMemory::from_raw(mem), base)
                == vk::Result::SUCCESS;
        if !ok {
            next!(dev, destroy_buffer)(d, buf, std::ptr::null());
            return None;
        }
        Some((buf, fill_off, fill_end.saturating_sub(fill_off)))
    }
}
