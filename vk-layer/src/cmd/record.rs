//! Tracking hooks for command recording.

use ash::vk;
use ash::vk::Handle;

use agx_winsys::analysis::{AccessKind, Cause};

use crate::dispatch::{chain, guard, lock, next, slice};
use crate::track::{DescSet, EventOp, Reach, Tracker};

use super::*;

// ---- command buffers --------------------------------------------------------------------

/// `vkBeginCommandBuffer`.
pub unsafe extern "system" fn begin_command_buffer(
    cb: vk::CommandBuffer,
    info: *const vk::CommandBufferBeginInfo<'_>,
) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage of the command.
        unsafe {
            let Some(dev) = dev_of(cb) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            if !dev.track {
                return next!(dev, begin_command_buffer)(cb, info);
            }
            // A replay submits the command buffer again: legal only without ONE_TIME_SUBMIT.
            // The kernel replays below the API, where the flag does not exist.
            let mut i = *info;
            i.flags &= !vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT;
            let r = next!(dev, begin_command_buffer)(cb, &i);
            if r == vk::Result::SUCCESS {
                lock(&dev.tracker).begin(
                    cb.as_raw(),
                    i.flags
                        .contains(vk::CommandBufferUsageFlags::RENDER_PASS_CONTINUE),
                );
            }
            r
        }
    })
}

/// `vkResetCommandBuffer`.
pub unsafe extern "system" fn reset_command_buffer(
    cb: vk::CommandBuffer,
    flags: vk::CommandBufferResetFlags,
) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage of the command.
        unsafe {
            let Some(dev) = dev_of(cb) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            let r = next!(dev, reset_command_buffer)(cb, flags);
            if dev.track {
                lock(&dev.tracker).cbs.remove(&cb.as_raw());
            }
            r
        }
    })
}

/// # Safety
/// `info` must be a valid render pass begin info.
unsafe fn begin_pass(
    t: &mut Tracker,
    cb: vk::CommandBuffer,
    info: *const vk::RenderPassBeginInfo<'_>,
) {
    // SAFETY: valid (caller).
    let i = unsafe { &*info };
    let mut views = t
        .objects
        .framebuffers
        .get(&i.framebuffer.as_raw())
        .cloned()
        .unwrap_or_default();
    // SAFETY: a valid chain (caller).
    for c in unsafe { chain(i.p_next) } {
        // SAFETY: members of a valid chain, cast by their sType.
        unsafe {
            if (*c).s_type == vk::StructureType::RENDER_PASS_ATTACHMENT_BEGIN_INFO {
                let a = &*(c as *const vk::RenderPassAttachmentBeginInfo<'_>);
                views = slice(a.p_attachments, a.attachment_count)
                    .iter()
                    .map(|v| v.as_raw())
                    .collect();
            }
        }
    }
    t.begin_render_pass(cb.as_raw(), i.render_pass.as_raw(), &views);
}

cmd_hook! {
    /// `vkCmdBeginRenderPass`.
    fn cmd_begin_render_pass(cb, info: *const vk::RenderPassBeginInfo<'_>,
        contents: vk::SubpassContents) => cmd_begin_render_pass;
    |t| begin_pass(t, cb, info)
}

cmd_hook! {
    /// `vkCmdBeginRenderPass2` (and the KHR alias).
    fn cmd_begin_render_pass2(cb, info: *const vk::RenderPassBeginInfo<'_>,
        sp: *const vk::SubpassBeginInfo<'_>) => cmd_begin_render_pass2;
    |t| begin_pass(t, cb, info)
}

cmd_hook! {
    /// `vkCmdNextSubpass`.
    fn cmd_next_subpass(cb, contents: vk::SubpassContents) => cmd_next_subpass;
    |t| t.next_subpass(cb.as_raw())
}

cmd_hook! {
    /// `vkCmdNextSubpass2` (and the KHR alias).
    fn cmd_next_subpass2(cb, b: *const vk::SubpassBeginInfo<'_>, e: *const vk::SubpassEndInfo<'_>)
        => cmd_next_subpass2;
    |t| t.next_subpass(cb.as_raw())
}

cmd_hook! {
    /// `vkCmdEndRenderPass`.
    fn cmd_end_render_pass(cb) => cmd_end_render_pass;
    |t| t.end_render_pass(cb.as_raw())
}

cmd_hook! {
    /// `vkCmdEndRenderPass2` (and the KHR alias).
    fn cmd_end_render_pass2(cb, e: *const vk::SubpassEndInfo<'_>) => cmd_end_render_pass2;
    |t| t.end_render_pass(cb.as_raw())
}

cmd_hook! {
    /// `vkCmdBeginRendering` (and the KHR alias).
    fn cmd_begin_rendering(cb, info: *const vk::RenderingInfo<'_>) => cmd_begin_rendering;
    |t| {
        let i = &*info;
        let colors: Vec<_> = slice(i.p_color_attachments, i.color_attachment_count)
            .iter()
            .map(|a| {
                (
                    (a.image_view != vk::ImageView::null()).then_some(a.image_view.as_raw()),
                    (a.resolve_mode != vk::ResolveModeFlags::NONE
                        && a.resolve_image_view != vk::ImageView::null())
                    .then_some(a.resolve_image_view.as_raw()),
                    load_op(a.load_op),
                    store_op(a.store_op),
                    store_writes(a.store_op),
                )
            })
            .collect();
        let mut depth = Vec::new();
        for p in [i.p_depth_attachment, i.p_stencil_attachment] {
            if !p.is_null() && (*p).image_view != vk::ImageView::null() {
                depth.push((
                    (*p).image_view.as_raw(),
                    load_op((*p).load_op),
                    store_op((*p).store_op),
                    store_writes((*p).store_op),
                ));
            }
        }
        t.begin_rendering(
            cb.as_raw(),
            &colors,
            &depth,
            i.flags.contains(vk::RenderingFlags::SUSPENDING),
            i.flags.contains(vk::RenderingFlags::RESUMING),
        );
    }
}

cmd_hook! {
    /// `vkCmdEndRendering` (and the KHR alias).
    fn cmd_end_rendering(cb) => cmd_end_rendering;
    |t| t.end_render_pass(cb.as_raw())
}

cmd_hook! {
    /// `vkCmdBindPipeline`.
    fn cmd_bind_pipeline(cb, bp: vk::PipelineBindPoint, p: vk::Pipeline) => cmd_bind_pipeline;
    |t| match bp_index(bp) {
        Some(i) => t.bind_pipeline(cb.as_raw(), i, p.as_raw()),
        None => t.unknown(cb.as_raw(), "vkCmdBindPipeline(bind point)"),
    }
}

cmd_hook! {
    /// `vkCmdBindDescriptorSets`.
    fn cmd_bind_descriptor_sets(cb, bp: vk::PipelineBindPoint, layout: vk::PipelineLayout,
        first: u32, n: u32, sets: *const vk::DescriptorSet, nd: u32, dyn_offsets: *const u32)
        => cmd_bind_descriptor_sets;
    |t| match bp_index(bp) {
        Some(i) => {
            let raw: Vec<u64> = slice(sets, n).iter().map(|s| s.as_raw()).collect();
            t.bind_sets(cb.as_raw(), i, first, &raw);
        }
        None => t.unknown(cb.as_raw(), "vkCmdBindDescriptorSets(bind point)"),
    }
}

cmd_hook! {
    /// `vkCmdPushDescriptorSetKHR`.
    fn cmd_push_descriptor_set_khr(cb, bp: vk::PipelineBindPoint, layout: vk::PipelineLayout,
        set: u32, n: u32, writes: *const vk::WriteDescriptorSet<'_>) => cmd_push_descriptor_set_khr;
    |t| match bp_index(bp) {
        Some(i) => {
            let mut d = DescSet::default();
            apply_writes(&mut d, slice(writes, n));
            t.push_descriptors(cb.as_raw(), i, set, &d);
        }
        None => t.unknown(cb.as_raw(), "vkCmdPushDescriptorSetKHR(bind point)"),
    }
}

cmd_hook! {
    /// `vkCmdPushDescriptorSetWithTemplateKHR`.
    fn cmd_push_descriptor_set_with_template_khr(cb, tmpl: vk::DescriptorUpdateTemplate,
        layout: vk::PipelineLayout, set: u32, data: *const std::ffi::c_void)
        => cmd_push_descriptor_set_with_template_khr;
    |t| match t.objects.templates.get(&tmpl.as_raw()).cloned() {
        Some(tm) if tm.bind_point.is_some() => {
            let mut d = DescSet::default();
            apply_template(&mut d, &tm, data);
            t.push_descriptors(cb.as_raw(), tm.bind_point.unwrap_or(GRAPHICS), set, &d);
        }
        _ => t.unknown(cb.as_raw(), "vkCmdPushDescriptorSetWithTemplateKHR(template)"),
    }
}

cmd_hook! {
    /// `vkCmdBindVertexBuffers`.
    fn cmd_bind_vertex_buffers(cb, first: u32, n: u32, bufs: *const vk::Buffer, offs: *const u64)
        => cmd_bind_vertex_buffers;
    |t| {
        let v: Vec<(u64, u64)> = slice(bufs, n)
            .iter()
            .zip(slice(offs, n))
            .map(|(b, o)| (b.as_raw(), *o))
            .collect();
        t.bind_vertex(cb.as_raw(), first, &v);
    }
}

cmd_hook! {
    /// `vkCmdBindVertexBuffers2` (and the EXT alias): sizes and strides do not matter to the
    /// tracker (it reads from the offset to the buffer's end).
    fn cmd_bind_vertex_buffers2(cb, first: u32, n: u32, bufs: *const vk::Buffer, offs: *const u64,
        sizes: *const u64, strides: *const u64) => cmd_bind_vertex_buffers2;
    |t| {
        let v: Vec<(u64, u64)> = slice(bufs, n)
            .iter()
            .zip(slice(offs, n))
            .map(|(b, o)| (b.as_raw(), *o))
            .collect();
        t.bind_vertex(cb.as_raw(), first, &v);
    }
}

cmd_hook! {
    /// `vkCmdBindIndexBuffer`.
    fn cmd_bind_index_buffer(cb, b: vk::Buffer, off: u64, ty: vk::IndexType) => cmd_bind_index_buffer;
    |t| t.bind_index(cb.as_raw(), b.as_raw(), off)
}

cmd_hook! {
    /// `vkCmdDraw`.
    fn cmd_draw(cb, a: u32, b: u32, c: u32, d: u32) => cmd_draw;
    |t| t.draw(cb.as_raw(), false, &[])
}

cmd_hook! {
    /// `vkCmdDrawIndexed`.
    fn cmd_draw_indexed(cb, a: u32, b: u32, c: u32, d: i32, e: u32) => cmd_draw_indexed;
    |t| t.draw(cb.as_raw(), true, &[])
}

cmd_hook! {
    /// `vkCmdDrawMultiEXT`.
    fn cmd_draw_multi_ext(cb, n: u32, info: *const vk::MultiDrawInfoEXT, inst: u32, first: u32,
        stride: u32) => cmd_draw_multi_ext;
    |t| t.draw(cb.as_raw(), false, &[])
}

cmd_hook! {
    /// `vkCmdDrawMultiIndexedEXT`.
    fn cmd_draw_multi_indexed_ext(cb, n: u32, info: *const vk::MultiDrawIndexedInfoEXT, inst: u32,
        first: u32, stride: u32, off: *const i32) => cmd_draw_multi_indexed_ext;
    |t| t.draw(cb.as_raw(), true, &[])
}

cmd_hook! {
    /// `vkCmdClearAttachments`: writes attachments of the current pass.
    fn cmd_clear_attachments(cb, n: u32, atts: *const vk::ClearAttachment, nr: u32,
        rects: *const vk::ClearRect) => cmd_clear_attachments;
    |t| {
        let depth = slice(atts, n).iter().any(|a| {
            a.aspect_mask
                .intersects(vk::ImageAspectFlags::DEPTH | vk::ImageAspectFlags::STENCIL)
        });
        t.clear_attachments(cb.as_raw(), depth);
    }
}

cmd_hook! {
    /// `vkCmdBeginConditionalRenderingEXT`: reads the predicate.
    fn cmd_begin_conditional_rendering_ext(cb,
        info: *const vk::ConditionalRenderingBeginInfoEXT<'_>) => cmd_begin_conditional_rendering_ext;
    |t| {
        let i = &*info;
        let r = t.objects.buffer_region(i.buffer.as_raw(), i.offset, 4);
        t.access(cb.as_raw(), AccessKind::Read, r, Cause::Transfer);
    }
}

cmd_hook! {
    /// `vkCmdDrawIndirect`.
    fn cmd_draw_indirect(cb, b: vk::Buffer, off: u64, n: u32, stride: u32) => cmd_draw_indirect;
    |t| t.draw(cb.as_raw(), false, &[(b.as_raw(), off)])
}

cmd_hook! {
    /// `vkCmdDrawIndexedIndirect`.
    fn cmd_draw_indexed_indirect(cb, b: vk::Buffer, off: u64, n: u32, stride: u32)
        => cmd_draw_indexed_indirect;
    |t| t.draw(cb.as_raw(), true, &[(b.as_raw(), off)])
}

cmd_hook! {
    /// `vkCmdDrawIndirectCount` (and the KHR alias).
    fn cmd_draw_indirect_count(cb, b: vk::Buffer, off: u64, cbuf: vk::Buffer, coff: u64,
        max: u32, stride: u32) => cmd_draw_indirect_count;
    |t| t.draw(cb.as_raw(), false, &[(b.as_raw(), off), (cbuf.as_raw(), coff)])
}

cmd_hook! {
    /// `vkCmdDrawIndexedIndirectCount` (and the KHR alias).
    fn cmd_draw_indexed_indirect_count(cb, b: vk::Buffer, off: u64, cbuf: vk::Buffer, coff: u64,
        max: u32, stride: u32) => cmd_draw_indexed_indirect_count;
    |t| t.draw(cb.as_raw(), true, &[(b.as_raw(), off), (cbuf.as_raw(), coff)])
}

cmd_hook! {
    /// `vkCmdDispatch`.
    fn cmd_dispatch(cb, x: u32, y: u32, z: u32) => cmd_dispatch;
    |t| t.dispatch(cb.as_raw(), None)
}

cmd_hook! {
    /// `vkCmdDispatchBase` (and the KHR alias).
    fn cmd_dispatch_base(cb, bx: u32, by: u32, bz: u32, x: u32, y: u32, z: u32) => cmd_dispatch_base;
    |t| t.dispatch(cb.as_raw(), None)
}

cmd_hook! {
    /// `vkCmdDispatchIndirect`.
    fn cmd_dispatch_indirect(cb, b: vk::Buffer, off: u64) => cmd_dispatch_indirect;
    |t| t.dispatch(cb.as_raw(), Some((b.as_raw(), off)))
}

cmd_hook! {
    /// `vkCmdCopyBuffer`.
    fn cmd_copy_buffer(cb, src: vk::Buffer, dst: vk::Buffer, n: u32, regions: *const vk::BufferCopy)
        => cmd_copy_buffer;
    |t| {
        let o = &t.objects;
        let mut list = Vec::new();
        for r in slice(regions, n) {
            list.push((AccessKind::Read, o.buffer_region(src.as_raw(), r.src_offset, r.size), Cause::Transfer));
            list.push((AccessKind::Write, o.buffer_region(dst.as_raw(), r.dst_offset, r.size), Cause::Transfer));
        }
        t.accesses(cb.as_raw(), &list);
        t.reach(cb.as_raw(), Reach::Buffer(dst.as_raw()));
    }
}

cmd_hook! {
    /// `vkCmdCopyBuffer2` (and the KHR alias).
    fn cmd_copy_buffer2(cb, info: *const vk::CopyBufferInfo2<'_>) => cmd_copy_buffer2;
    |t| {
        let i = &*info;
        let o = &t.objects;
        let mut list = Vec::new();
        for r in slice(i.p_regions, i.region_count) {
            list.push((AccessKind::Read, o.buffer_region(i.src_buffer.as_raw(), r.src_offset, r.size), Cause::Transfer));
            list.push((AccessKind::Write, o.buffer_region(i.dst_buffer.as_raw(), r.dst_offset, r.size), Cause::Transfer));
        }
        t.accesses(cb.as_raw(), &list);
        t.reach(cb.as_raw(), Reach::Buffer(i.dst_buffer.as_raw()));
    }
}

/// Image-to-image transfers: reads all of `src`, may write `dst`.
fn image_transfer(t: &mut Tracker, cb: vk::CommandBuffer, src: vk::Image, dst: vk::Image) {
    let list = [
        (
            AccessKind::Read,
            t.objects.image_region(src.as_raw()),
            Cause::Transfer,
        ),
        (
            AccessKind::MayWrite,
            t.objects.image_region(dst.as_raw()),
            Cause::Transfer,
        ),
    ];
    t.accesses(cb.as_raw(), &list);
    t.reach(cb.as_raw(), Reach::Image(dst.as_raw()));
}

cmd_hook! {
    /// `vkCmdCopyImage`.
    fn cmd_copy_image(cb, src: vk::Image, sl: vk::ImageLayout, dst: vk::Image, dl: vk::ImageLayout,
        n: u32, regions: *const vk::ImageCopy) => cmd_copy_image;
    |t| image_transfer(t, cb, src, dst)
}

cmd_hook! {
    /// `vkCmdBlitImage`.
    fn cmd_blit_image(cb, src: vk::Image, sl: vk::ImageLayout, dst: vk::Image, dl: vk::ImageLayout,
        n: u32, regions: *const vk::ImageBlit, filter: vk::Filter) => cmd_blit_image;
    |t| image_transfer(t, cb, src, dst)
}

cmd_hook! {
    /// `vkCmdResolveImage`.
    fn cmd_resolve_image(cb, src: vk::Image, sl: vk::ImageLayout, dst: vk::Image, dl: vk::ImageLayout,
        n: u32, regions: *const vk::ImageResolve) => cmd_resolve_image;
    |t| image_transfer(t, cb, src, dst)
}

cmd_hook! {
    /// `vkCmdCopyImage2` (and the KHR alias).
    fn cmd_copy_image2(cb, info: *const vk::CopyImageInfo2<'_>) => cmd_copy_image2;
    |t| image_transfer(t, cb, (*info).src_image, (*info).dst_image)
}

cmd_hook! {
    /// `vkCmdBlitImage2` (and the KHR alias).
    fn cmd_blit_image2(cb, info: *const vk::BlitImageInfo2<'_>) => cmd_blit_image2;
    |t| image_transfer(t, cb, (*info).src_image, (*info).dst_image)
}

cmd_hook! {
    /// `vkCmdResolveImage2` (and the KHR alias).
    fn cmd_resolve_image2(cb, info: *const vk::ResolveImageInfo2<'_>) => cmd_resolve_image2;
    |t| image_transfer(t, cb, (*info).src_image, (*info).dst_image)
}

/// Buffer <-> image transfers: the buffer from the lowest offset of the regions to its end.
fn buffer_image(
    t: &mut Tracker,
    cb: vk::CommandBuffer,
    buf: vk::Buffer,
    off: u64,
    img: vk::Image,
    to_image: bool,
) {
    let b = t
        .objects
        .buffer_region(buf.as_raw(), off, crate::track::WHOLE_SIZE);
    let i = t.objects.image_region(img.as_raw());
    let list = if to_image {
        [
            (AccessKind::Read, b, Cause::Transfer),
            (AccessKind::MayWrite, i, Cause::Transfer),
        ]
    } else {
        [
            (AccessKind::Read, i, Cause::Transfer),
            (AccessKind::MayWrite, b, Cause::Transfer),
        ]
    };
    t.accesses(cb.as_raw(), &list);
    let r = if to_image {
        Reach::Image(img.as_raw())
    } else {
        Reach::Buffer(buf.as_raw())
    };
    t.reach(cb.as_raw(), r);
}

fn min_offset<'a>(it: impl Iterator<Item = &'a u64>) -> u64 {
    it.copied().min().unwrap_or(0)
}

cmd_hook! {
    /// `vkCmdCopyBufferToImage`.
    fn cmd_copy_buffer_to_image(cb, src: vk::Buffer, dst: vk::Image, l: vk::ImageLayout, n: u32,
        regions: *const vk::BufferImageCopy) => cmd_copy_buffer_to_image;
    |t| {
        let off = min_offset(slice(regions, n).iter().map(|r| &r.buffer_offset));
        buffer_image(t, cb, src, off, dst, true);
    }
}

cmd_hook! {
    /// `vkCmdCopyImageToBuffer`.
    fn cmd_copy_image_to_buffer(cb, src: vk::Image, l: vk::ImageLayout, dst: vk::Buffer, n: u32,
        regions: *const vk::BufferImageCopy) => cmd_copy_image_to_buffer;
    |t| {
        let off = min_offset(slice(regions, n).iter().map(|r| &r.buffer_offset));
        buffer_image(t, cb, dst, off, src, false);
    }
}

cmd_hook! {
    /// `vkCmdCopyBufferToImage2` (and the KHR alias).
    fn cmd_copy_buffer_to_image2(cb, info: *const vk::CopyBufferToImageInfo2<'_>)
        => cmd_copy_buffer_to_image2;
    |t| {
        let i = &*info;
        let off = min_offset(slice(i.p_regions, i.region_count).iter().map(|r| &r.buffer_offset));
        buffer_image(t, cb, i.src_buffer, off, i.dst_image, true);
    }
}

cmd_hook! {
    /// `vkCmdCopyImageToBuffer2` (and the KHR alias).
    fn cmd_copy_image_to_buffer2(cb, info: *const vk::CopyImageToBufferInfo2<'_>)
        => cmd_copy_image_to_buffer2;
    |t| {
        let i = &*info;
        let off = min_offset(slice(i.p_regions, i.region_count).iter().map(|r| &r.buffer_offset));
        buffer_image(t, cb, i.dst_buffer, off, i.src_image, false);
    }
}

cmd_hook! {
    /// `vkCmdUpdateBuffer`.
    fn cmd_update_buffer(cb, b: vk::Buffer, off: u64, size: u64, data: *const std::ffi::c_void)
        => cmd_update_buffer;
    |t| {
        let r = t.objects.buffer_region(b.as_raw(), off, size);
        t.access(cb.as_raw(), AccessKind::Write, r, Cause::Transfer);
        t.reach(cb.as_raw(), Reach::Buffer(b.as_raw()));
    }
}

cmd_hook! {
    /// `vkCmdFillBuffer`.
    fn cmd_fill_buffer(cb, b: vk::Buffer, off: u64, size: u64, data: u32) => cmd_fill_buffer;
    |t| {
        let r = t.objects.buffer_region(b.as_raw(), off, size);
        t.access(cb.as_raw(), AccessKind::Write, r, Cause::Transfer);
        t.reach(cb.as_raw(), Reach::Buffer(b.as_raw()));
    }
}

cmd_hook! {
    /// `vkCmdClearColorImage`.
    fn cmd_clear_color_image(cb, i: vk::Image, l: vk::ImageLayout, c: *const vk::ClearColorValue,
        n: u32, ranges: *const vk::ImageSubresourceRange) => cmd_clear_color_image;
    |t| {
        let r = t.objects.image_region(i.as_raw());
        t.access(cb.as_raw(), AccessKind::MayWrite, r, Cause::Transfer);
        t.reach(cb.as_raw(), Reach::Image(i.as_raw()));
    }
}

cmd_hook! {
    /// `vkCmdClearDepthStencilImage`.
    fn cmd_clear_depth_stencil_image(cb, i: vk::Image, l: vk::ImageLayout,
        c: *const vk::ClearDepthStencilValue, n: u32, ranges: *const vk::ImageSubresourceRange)
        => cmd_clear_depth_stencil_image;
    |t| {
        let r = t.objects.image_region(i.as_raw());
        t.access(cb.as_raw(), AccessKind::MayWrite, r, Cause::Transfer);
        t.reach(cb.as_raw(), Reach::Image(i.as_raw()));
    }
}

cmd_hook! {
    /// `vkCmdBeginQuery`.
    fn cmd_begin_query(cb, pool: vk::QueryPool, q: u32, flags: vk::QueryControlFlags) => cmd_begin_query;
    |t| t.begin_query(cb.as_raw(), pool.as_raw(), q)
}

cmd_hook! {
    /// `vkCmdBeginQueryIndexedEXT`.
    fn cmd_begin_query_indexed_ext(cb, pool: vk::QueryPool, q: u32, flags: vk::QueryControlFlags,
        index: u32) => cmd_begin_query_indexed_ext;
    |t| t.begin_query(cb.as_raw(), pool.as_raw(), q)
}

cmd_hook! {
    /// `vkCmdResetQueryPool`.
    fn cmd_reset_query_pool(cb, pool: vk::QueryPool, first: u32, n: u32) => cmd_reset_query_pool;
    |t| {
        let r = agx_winsys::analysis::Region::new(
            crate::track::Space::Query(pool.as_raw()),
            u64::from(first),
            u64::from(n),
        );
        t.access(cb.as_raw(), AccessKind::Write, Some(r), Cause::OcclusionQuery);
    }
}

cmd_hook! {
    /// `vkCmdWriteTimestamp`.
    fn cmd_write_timestamp(cb, stage: vk::PipelineStageFlags, pool: vk::QueryPool, q: u32)
        => cmd_write_timestamp;
    |t| t.timestamp(cb.as_raw(), pool.as_raw(), q)
}

cmd_hook! {
    /// `vkCmdWriteTimestamp2` (and the KHR alias).
    fn cmd_write_timestamp2(cb, stage: vk::PipelineStageFlags2, pool: vk::QueryPool, q: u32)
        => cmd_write_timestamp2;
    |t| t.timestamp(cb.as_raw(), pool.as_raw(), q)
}

cmd_hook! {
    /// `vkCmdCopyQueryPoolResults`.
    fn cmd_copy_query_pool_results(cb, pool: vk::QueryPool, first: u32, n: u32, dst: vk::Buffer,
        off: u64, stride: u64, flags: vk::QueryResultFlags) => cmd_copy_query_pool_results;
    |t| {
        let q = agx_winsys::analysis::Region::new(
            crate::track::Space::Query(pool.as_raw()),
            u64::from(first),
            u64::from(n),
        );
        let size = stride.saturating_mul(u64::from(n.max(1)));
        let list = [
            (AccessKind::Read, Some(q), Cause::Transfer),
            (AccessKind::MayWrite, t.objects.buffer_region(dst.as_raw(), off, size), Cause::Transfer),
        ];
        t.accesses(cb.as_raw(), &list);
        t.reach(cb.as_raw(), Reach::Buffer(dst.as_raw()));
    }
}

cmd_hook! {
    /// `vkCmdExecuteCommands`.
    fn cmd_execute_commands(cb, n: u32, cbs: *const vk::CommandBuffer) => cmd_execute_commands;
    |t| {
        let raw: Vec<u64> = slice(cbs, n).iter().map(|c| c.as_raw()).collect();
        t.execute(cb.as_raw(), &raw);
    }
}

cmd_hook! {
    /// `vkCmdSetEvent`.
    fn cmd_set_event(cb, e: vk::Event, stages: vk::PipelineStageFlags) => cmd_set_event;
    |t| t.event(cb.as_raw(), EventOp::Set, e.as_raw())
}

cmd_hook! {
    /// `vkCmdSetEvent2` (and the KHR alias).
    fn cmd_set_event2(cb, e: vk::Event, dep: *const vk::DependencyInfo<'_>) => cmd_set_event2;
    |t| t.event(cb.as_raw(), EventOp::Set, e.as_raw())
}

cmd_hook! {
    /// `vkCmdResetEvent`.
    fn cmd_reset_event(cb, e: vk::Event, stages: vk::PipelineStageFlags) => cmd_reset_event;
    |t| t.event(cb.as_raw(), EventOp::Reset, e.as_raw())
}

cmd_hook! {
    /// `vkCmdResetEvent2` (and the KHR alias).
    fn cmd_reset_event2(cb, e: vk::Event, stages: vk::PipelineStageFlags2) => cmd_reset_event2;
    |t| t.event(cb.as_raw(), EventOp::Reset, e.as_raw())
}

cmd_hook! {
    /// `vkCmdWaitEvents`.
    #[allow(clippy::too_many_arguments)]
    fn cmd_wait_events(cb, n: u32, events: *const vk::Event, src: vk::PipelineStageFlags,
        dst: vk::PipelineStageFlags, nm: u32, mb: *const vk::MemoryBarrier<'_>, nb: u32,
        bb: *const vk::BufferMemoryBarrier<'_>, ni: u32, ib: *const vk::ImageMemoryBarrier<'_>)
        => cmd_wait_events;
    |t| {
        for e in slice(events, n) {
            t.event(cb.as_raw(), EventOp::Wait, e.as_raw());
        }
    }
}

cmd_hook! {
    /// `vkCmdWaitEvents2` (and the KHR alias).
    fn cmd_wait_events2(cb, n: u32, events: *const vk::Event, deps: *const vk::DependencyInfo<'_>)
        => cmd_wait_events2;
    |t| {
        for e in slice(events, n) {
            t.event(cb.as_raw(), EventOp::Wait, e.as_raw());
        }
    }
}
