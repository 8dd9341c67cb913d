//! Tracking hooks for objects: memory, bindings, views, render passes, pipelines, shader
//! modules and descriptor sets.

use ash::vk;
use ash::vk::Handle;

use crate::dispatch::{chain, guard, lock, next, slice, DeviceState};
use crate::spirv::{self, ShaderEffects};
use crate::track::{
    AttDesc, Binding, Buffer, DescSet, Memory, Pipeline, RenderPassDesc, Subpass, Template,
    TemplateEntry, Tracker,
};

use super::*;

// ---- memory and objects ----------------------------------------------------------------

obj_hook! {
    /// `vkAllocateMemory`.
    fn allocate_memory(device, info: *const vk::MemoryAllocateInfo<'_>,
        alloc: *const vk::AllocationCallbacks<'_>, out: *mut vk::DeviceMemory) => allocate_memory;
    |dev, t| {
        let i = &*info;
        let flags = dev
            .mem_props
            .memory_types
            .get(i.memory_type_index as usize)
            .map(|m| m.property_flags)
            .unwrap_or_default();
        t.objects.memories.insert((*out).as_raw(), Memory {
            size: i.allocation_size,
            type_index: i.memory_type_index,
            host_visible: flags.contains(vk::MemoryPropertyFlags::HOST_VISIBLE),
            coherent: flags.contains(vk::MemoryPropertyFlags::HOST_COHERENT),
            app_map: None,
        });
    }
}

void_hook! {
    /// `vkFreeMemory`.
    fn free_memory(device, mem: vk::DeviceMemory, alloc: *const vk::AllocationCallbacks<'_>)
        => free_memory;
    |t| { t.objects.memories.remove(&mem.as_raw()); }
}

obj_hook! {
    /// `vkMapMemory`: remembers the application's mapping (the layer scrambles through it).
    fn map_memory(device, mem: vk::DeviceMemory, offset: u64, size: u64,
        flags: vk::MemoryMapFlags, out: *mut *mut std::ffi::c_void) => map_memory;
    |dev, t| {
        if let Some(m) = t.objects.memories.get_mut(&mem.as_raw()) {
            m.app_map = Some((*out as usize, offset, size));
        }
    }
}

void_hook! {
    /// `vkUnmapMemory`.
    fn unmap_memory(device, mem: vk::DeviceMemory) => unmap_memory;
    |t| {
        if let Some(m) = t.objects.memories.get_mut(&mem.as_raw()) {
            m.app_map = None;
        }
    }
}

obj_hook! {
    /// `vkCreateBuffer`.
    fn create_buffer(device, info: *const vk::BufferCreateInfo<'_>,
        alloc: *const vk::AllocationCallbacks<'_>, out: *mut vk::Buffer) => create_buffer;
    |dev, t| { t.objects.buffers.insert((*out).as_raw(), Buffer { size: (*info).size, binding: None }); }
}

void_hook! {
    /// `vkDestroyBuffer`.
    fn destroy_buffer(device, b: vk::Buffer, alloc: *const vk::AllocationCallbacks<'_>)
        => destroy_buffer;
    |t| { t.objects.buffers.remove(&b.as_raw()); }
}

fn bind_buffer(t: &mut Tracker, b: vk::Buffer, mem: vk::DeviceMemory, offset: u64) {
    if let Some(buf) = t.objects.buffers.get_mut(&b.as_raw()) {
        buf.binding = Some(Binding {
            memory: mem.as_raw(),
            offset,
            size: buf.size,
        });
    }
}

obj_hook! {
    /// `vkBindBufferMemory`.
    fn bind_buffer_memory(device, b: vk::Buffer, mem: vk::DeviceMemory, offset: u64)
        => bind_buffer_memory;
    |dev, t| bind_buffer(t, b, mem, offset)
}

obj_hook! {
    /// `vkBindBufferMemory2` (and the KHR alias).
    fn bind_buffer_memory2(device, n: u32, infos: *const vk::BindBufferMemoryInfo<'_>)
        => bind_buffer_memory2;
    |dev, t| {
        for i in slice(infos, n) {
            bind_buffer(t, i.buffer, i.memory, i.memory_offset);
        }
    }
}

obj_hook! {
    /// `vkCreateImage`.
    fn create_image(device, info: *const vk::ImageCreateInfo<'_>,
        alloc: *const vk::AllocationCallbacks<'_>, out: *mut vk::Image) => create_image;
    |dev, t| { t.objects.images.insert((*out).as_raw(), None); }
}

void_hook! {
    /// `vkDestroyImage`.
    fn destroy_image(device, i: vk::Image, alloc: *const vk::AllocationCallbacks<'_>)
        => destroy_image;
    |t| { t.objects.images.remove(&i.as_raw()); }
}

/// # Safety
/// `image` must be a valid image of `dev`.
unsafe fn bind_image(
    dev: &DeviceState,
    t: &mut Tracker,
    image: vk::Image,
    mem: vk::DeviceMemory,
    offset: u64,
) {
    let mut req = vk::MemoryRequirements::default();
    // SAFETY: valid image (caller).
    unsafe { next!(dev, get_image_memory_requirements)(dev.handle, image, &mut req) };
    if let Some(slot) = t.objects.images.get_mut(&image.as_raw()) {
        *slot = Some(Binding {
            memory: mem.as_raw(),
            offset,
            size: req.size,
        });
    }
}

obj_hook! {
    /// `vkBindImageMemory`.
    fn bind_image_memory(device, i: vk::Image, mem: vk::DeviceMemory, offset: u64)
        => bind_image_memory;
    |dev, t| bind_image(&dev, t, i, mem, offset)
}

obj_hook! {
    /// `vkBindImageMemory2` (and the KHR alias).
    fn bind_image_memory2(device, n: u32, infos: *const vk::BindImageMemoryInfo<'_>)
        => bind_image_memory2;
    |dev, t| {
        for i in slice(infos, n) {
            bind_image(&dev, t, i.image, i.memory, i.memory_offset);
        }
    }
}

obj_hook! {
    /// `vkCreateImageView`.
    fn create_image_view(device, info: *const vk::ImageViewCreateInfo<'_>,
        alloc: *const vk::AllocationCallbacks<'_>, out: *mut vk::ImageView) => create_image_view;
    |dev, t| { t.objects.views.insert((*out).as_raw(), (*info).image.as_raw()); }
}

void_hook! {
    /// `vkDestroyImageView`.
    fn destroy_image_view(device, v: vk::ImageView, alloc: *const vk::AllocationCallbacks<'_>)
        => destroy_image_view;
    |t| { t.objects.views.remove(&v.as_raw()); }
}

obj_hook! {
    /// `vkCreateBufferView`.
    fn create_buffer_view(device, info: *const vk::BufferViewCreateInfo<'_>,
        alloc: *const vk::AllocationCallbacks<'_>, out: *mut vk::BufferView) => create_buffer_view;
    |dev, t| {
        let i = &*info;
        t.objects.buffer_views.insert((*out).as_raw(), (i.buffer.as_raw(), i.offset, i.range));
    }
}

void_hook! {
    /// `vkDestroyBufferView`.
    fn destroy_buffer_view(device, v: vk::BufferView, alloc: *const vk::AllocationCallbacks<'_>)
        => destroy_buffer_view;
    |t| { t.objects.buffer_views.remove(&v.as_raw()); }
}

/// The render pass description of a `VkRenderPassCreateInfo` or `VkRenderPassCreateInfo2`
/// (the two differ in types, not in the fields read here).
macro_rules! render_pass_desc {
    ($info:expr, $ref_ty:ty) => {{
        let i = $info;
        let atts = slice(i.p_attachments, i.attachment_count)
            .iter()
            .map(|a| AttDesc {
                load: load_op(a.load_op),
                store: store_op(a.store_op),
                stencil_load: load_op(a.stencil_load_op),
                stencil_store: store_op(a.stencil_store_op),
                writes: store_writes(a.store_op)
                    || (is_depth_stencil(a.format) && store_writes(a.stencil_store_op)),
                depth_stencil: is_depth_stencil(a.format),
            })
            .collect();
        let refs = |p: *const $ref_ty, n: u32| -> Vec<Option<u32>> {
            slice(p, n)
                .iter()
                .map(|r| (r.attachment != vk::ATTACHMENT_UNUSED).then_some(r.attachment))
                .collect()
        };
        let subpasses = slice(i.p_subpasses, i.subpass_count)
            .iter()
            .map(|s| Subpass {
                colors: refs(s.p_color_attachments, s.color_attachment_count),
                resolves: if s.p_resolve_attachments.is_null() {
                    Vec::new()
                } else {
                    refs(s.p_resolve_attachments, s.color_attachment_count)
                        .into_iter()
                        .flatten()
                        .collect()
                },
                depth: if s.p_depth_stencil_attachment.is_null() {
                    None
                } else {
                    refs(s.p_depth_stencil_attachment, 1)[0]
                },
                inputs: refs(s.p_input_attachments, s.input_attachment_count)
                    .into_iter()
                    .flatten()
                    .collect(),
            })
            .collect();
        RenderPassDesc { atts, subpasses }
    }};
}

obj_hook! {
    /// `vkCreateRenderPass`.
    fn create_render_pass(device, info: *const vk::RenderPassCreateInfo<'_>,
        alloc: *const vk::AllocationCallbacks<'_>, out: *mut vk::RenderPass) => create_render_pass;
    |dev, t| {
        let desc = render_pass_desc!(&*info, vk::AttachmentReference);
        t.objects.render_passes.insert((*out).as_raw(), desc);
    }
}

obj_hook! {
    /// `vkCreateRenderPass2` (and the KHR alias).
    fn create_render_pass2(device, info: *const vk::RenderPassCreateInfo2<'_>,
        alloc: *const vk::AllocationCallbacks<'_>, out: *mut vk::RenderPass) => create_render_pass2;
    |dev, t| {
        let desc = render_pass_desc!(&*info, vk::AttachmentReference2<'_>);
        t.objects.render_passes.insert((*out).as_raw(), desc);
    }
}

void_hook! {
    /// `vkDestroyRenderPass`.
    fn destroy_render_pass(device, rp: vk::RenderPass, alloc: *const vk::AllocationCallbacks<'_>)
        => destroy_render_pass;
    |t| { t.objects.render_passes.remove(&rp.as_raw()); }
}

obj_hook! {
    /// `vkCreateFramebuffer`.
    fn create_framebuffer(device, info: *const vk::FramebufferCreateInfo<'_>,
        alloc: *const vk::AllocationCallbacks<'_>, out: *mut vk::Framebuffer) => create_framebuffer;
    |dev, t| {
        let i = &*info;
        let views = if i.flags.contains(vk::FramebufferCreateFlags::IMAGELESS) {
            Vec::new()
        } else {
            slice(i.p_attachments, i.attachment_count).iter().map(|v| v.as_raw()).collect()
        };
        t.objects.framebuffers.insert((*out).as_raw(), views);
    }
}

void_hook! {
    /// `vkDestroyFramebuffer`.
    fn destroy_framebuffer(device, fb: vk::Framebuffer, alloc: *const vk::AllocationCallbacks<'_>)
        => destroy_framebuffer;
    |t| { t.objects.framebuffers.remove(&fb.as_raw()); }
}

obj_hook! {
    /// `vkCreateShaderModule`: scans the SPIR-V once.
    fn create_shader_module(device, info: *const vk::ShaderModuleCreateInfo<'_>,
        alloc: *const vk::AllocationCallbacks<'_>, out: *mut vk::ShaderModule) => create_shader_module;
    |dev, t| {
        let i = &*info;
        let words = slice(i.p_code, (i.code_size / 4) as u32);
        t.objects.shaders.insert((*out).as_raw(), spirv::scan(words));
    }
}

void_hook! {
    /// `vkDestroyShaderModule`.
    fn destroy_shader_module(device, m: vk::ShaderModule, alloc: *const vk::AllocationCallbacks<'_>)
        => destroy_shader_module;
    |t| { t.objects.shaders.remove(&m.as_raw()); }
}

/// The effects of a pipeline's stages.
///
/// # Safety
/// `stages` must be valid stage create infos.
unsafe fn stage_effects(
    t: &Tracker,
    stages: &[vk::PipelineShaderStageCreateInfo<'_>],
) -> ShaderEffects {
    let mut fx = ShaderEffects::default();
    for s in stages {
        let m = if s.module == vk::ShaderModule::null() {
            // maintenance5 / graphics pipeline libraries: an inline module.
            // SAFETY: a valid chain (caller).
            unsafe { chain(s.p_next) }
                .find(|&c| {
                    // SAFETY: members of a valid chain.
                    unsafe { (*c).s_type == vk::StructureType::SHADER_MODULE_CREATE_INFO }
                })
                .map(|c| {
                    // SAFETY: the sType says what it is.
                    let ci = unsafe { &*(c as *const vk::ShaderModuleCreateInfo<'_>) };
                    // SAFETY: `p_code` holds `code_size` bytes.
                    spirv::scan(unsafe { slice(ci.p_code, (ci.code_size / 4) as u32) })
                })
                .unwrap_or(ShaderEffects::UNKNOWN)
        } else {
            t.objects
                .shaders
                .get(&s.module.as_raw())
                .copied()
                .unwrap_or(ShaderEffects::UNKNOWN)
        };
        fx = fx.union(m);
    }
    fx
}

obj_hook! {
    /// `vkCreateGraphicsPipelines`.
    fn create_graphics_pipelines(device, cache: vk::PipelineCache, n: u32,
        infos: *const vk::GraphicsPipelineCreateInfo<'_>, alloc: *const vk::AllocationCallbacks<'_>,
        out: *mut vk::Pipeline) => create_graphics_pipelines;
    |dev, t| {
        for (k, i) in slice(infos, n).iter().enumerate() {
            let fx = stage_effects(t, slice(i.p_stages, i.stage_count));
            let mut p = Pipeline { fx, ..Pipeline::default() };
            // A graphics pipeline library only defines (and only its creator fills) its parts.
            let parts = chain(i.p_next)
                .find(|&c| (*c).s_type == vk::StructureType::GRAPHICS_PIPELINE_LIBRARY_CREATE_INFO_EXT)
                .map(|c| (*(c as *const vk::GraphicsPipelineLibraryCreateInfoEXT<'_>)).flags);
            let has = |f: vk::GraphicsPipelineLibraryFlagsEXT| parts.is_none_or(|p| p.contains(f));
            let output = has(vk::GraphicsPipelineLibraryFlagsEXT::FRAGMENT_OUTPUT_INTERFACE);
            let fragment = has(vk::GraphicsPipelineLibraryFlagsEXT::FRAGMENT_SHADER);
            let dynamic: Vec<vk::DynamicState> = if i.p_dynamic_state.is_null() {
                Vec::new()
            } else {
                let d = &*i.p_dynamic_state;
                slice(d.p_dynamic_states, d.dynamic_state_count).to_vec()
            };
            if output && !i.p_color_blend_state.is_null() {
                let cb = &*i.p_color_blend_state;
                p.blend_all = cb.logic_op_enable != 0;
                p.blend = slice(cb.p_attachments, cb.attachment_count)
                    .iter()
                    .map(|a| a.blend_enable != 0 || a.color_write_mask != vk::ColorComponentFlags::RGBA)
                    .collect();
            }
            if dynamic.iter().any(|d| {
                matches!(
                    *d,
                    vk::DynamicState::COLOR_BLEND_ENABLE_EXT
                        | vk::DynamicState::COLOR_WRITE_MASK_EXT
                        | vk::DynamicState::LOGIC_OP_ENABLE_EXT
                        | vk::DynamicState::COLOR_BLEND_EQUATION_EXT
                )
            }) {
                p.blend_all = true;
            }
            if fragment && !i.p_depth_stencil_state.is_null() {
                let ds = &*i.p_depth_stencil_state;
                p.depth_write = (ds.depth_test_enable != 0 && ds.depth_write_enable != 0)
                    || ds.stencil_test_enable != 0;
            }
            if dynamic.iter().any(|d| {
                matches!(
                    *d,
                    vk::DynamicState::DEPTH_WRITE_ENABLE
                        | vk::DynamicState::DEPTH_TEST_ENABLE
                        | vk::DynamicState::STENCIL_TEST_ENABLE
                        | vk::DynamicState::STENCIL_OP
                )
            }) {
                p.depth_write = true;
            }
            link_libraries(t, &mut p, i.p_next);
            t.objects.pipelines.insert((*out.add(k)).as_raw(), p);
        }
    }
}

/// Adds the effects of the pipeline libraries a pipeline is linked from.
///
/// # Safety
/// `next` must be the head of a valid create-info chain.
unsafe fn link_libraries(t: &Tracker, p: &mut Pipeline, next: *const std::ffi::c_void) {
    // SAFETY: a valid chain (caller); members cast by their sType.
    unsafe {
        for c in chain(next) {
            if (*c).s_type == vk::StructureType::PIPELINE_LIBRARY_CREATE_INFO_KHR {
                let l = &*(c as *const vk::PipelineLibraryCreateInfoKHR<'_>);
                for lib in slice(l.p_libraries, l.library_count) {
                    match t.objects.pipelines.get(&lib.as_raw()) {
                        Some(lp) => p.link(lp),
                        None => p.fx = crate::spirv::ShaderEffects::UNKNOWN,
                    }
                }
            }
        }
    }
}

obj_hook! {
    /// `vkCreateComputePipelines`.
    fn create_compute_pipelines(device, cache: vk::PipelineCache, n: u32,
        infos: *const vk::ComputePipelineCreateInfo<'_>, alloc: *const vk::AllocationCallbacks<'_>,
        out: *mut vk::Pipeline) => create_compute_pipelines;
    |dev, t| {
        for (k, i) in slice(infos, n).iter().enumerate() {
            let fx = stage_effects(t, std::slice::from_ref(&i.stage));
            t.objects.pipelines.insert((*out.add(k)).as_raw(), Pipeline { fx, ..Pipeline::default() });
        }
    }
}

void_hook! {
    /// `vkDestroyPipeline`.
    fn destroy_pipeline(device, p: vk::Pipeline, alloc: *const vk::AllocationCallbacks<'_>)
        => destroy_pipeline;
    |t| { t.objects.pipelines.remove(&p.as_raw()); }
}

obj_hook! {
    /// `vkAllocateDescriptorSets`.
    fn allocate_descriptor_sets(device, info: *const vk::DescriptorSetAllocateInfo<'_>,
        out: *mut vk::DescriptorSet) => allocate_descriptor_sets;
    |dev, t| {
        for s in slice(out, (*info).descriptor_set_count) {
            t.objects.sets.insert(s.as_raw(), DescSet::default());
        }
    }
}

/// `vkUpdateDescriptorSets`.
pub unsafe extern "system" fn update_descriptor_sets(
    device: vk::Device,
    nw: u32,
    writes: *const vk::WriteDescriptorSet<'_>,
    nc: u32,
    copies: *const vk::CopyDescriptorSet<'_>,
) {
    guard((), || {
        // SAFETY: valid usage of the command: the arrays and the infos they point at are valid.
        unsafe {
            let Some(dev) = dev_of(device) else { return };
            next!(dev, update_descriptor_sets)(device, nw, writes, nc, copies);
            if !dev.track {
                return;
            }
            let t: &mut Tracker = &mut lock(&dev.tracker);
            let list = slice(writes, nw);
            for w in list {
                let set = t.objects.sets.entry(w.dst_set.as_raw()).or_default();
                apply_writes(set, std::slice::from_ref(w));
            }
            for c in slice(copies, nc) {
                let src: crate::track::Map<(u32, u32), _> =
                    match t.objects.sets.get(&c.src_set.as_raw()) {
                        Some(s) if !s.unknown => s.slots.clone(),
                        _ => {
                            t.objects
                                .sets
                                .entry(c.dst_set.as_raw())
                                .or_default()
                                .unknown = true;
                            continue;
                        }
                    };
                let dst = t.objects.sets.entry(c.dst_set.as_raw()).or_default();
                for k in 0..c.descriptor_count {
                    let from = (c.src_binding, c.src_array_element + k);
                    let to = (c.dst_binding, c.dst_array_element + k);
                    match src.get(&from) {
                        Some(v) => {
                            dst.slots.insert(to, *v);
                        }
                        None => {
                            dst.slots.remove(&to);
                        }
                    }
                }
            }
        }
    })
}

obj_hook! {
    /// `vkCreateDescriptorUpdateTemplate` (and the KHR alias): decodes its entries.
    fn create_descriptor_update_template(device,
        info: *const vk::DescriptorUpdateTemplateCreateInfo<'_>,
        alloc: *const vk::AllocationCallbacks<'_>, out: *mut vk::DescriptorUpdateTemplate)
        => create_descriptor_update_template;
    |dev, t| {
        let i = &*info;
        let entries = slice(i.p_descriptor_update_entries, i.descriptor_update_entry_count)
            .iter()
            .map(|e| TemplateEntry {
                binding: e.dst_binding,
                element: e.dst_array_element,
                count: e.descriptor_count,
                ty: e.descriptor_type.as_raw(),
                offset: e.offset,
                stride: e.stride,
            })
            .collect();
        let bind_point = if i.template_type == vk::DescriptorUpdateTemplateType::PUSH_DESCRIPTORS_KHR {
            bp_index(i.pipeline_bind_point)
        } else {
            None
        };
        t.objects.templates.insert((*out).as_raw(), Template { entries, bind_point });
    }
}

void_hook! {
    /// `vkDestroyDescriptorUpdateTemplate` (and the KHR alias).
    fn destroy_descriptor_update_template(device, tmpl: vk::DescriptorUpdateTemplate,
        alloc: *const vk::AllocationCallbacks<'_>) => destroy_descriptor_update_template;
    |t| { t.objects.templates.remove(&tmpl.as_raw()); }
}

void_hook! {
    /// `vkUpdateDescriptorSetWithTemplate` (and the KHR alias): decodes the data with the
    /// template's entries (an unknown template makes the set unknown).
    fn update_descriptor_set_with_template(device, set: vk::DescriptorSet,
        tmpl: vk::DescriptorUpdateTemplate, data: *const std::ffi::c_void)
        => update_descriptor_set_with_template;
    |t| {
        let tm = t.objects.templates.get(&tmpl.as_raw()).cloned();
        let s = t.objects.sets.entry(set.as_raw()).or_default();
        match tm {
            Some(tm) => apply_template(s, &tm, data),
            None => s.unknown = true,
        }
    }
}

void_hook! {
    /// `vkFreeCommandBuffers`.
    fn free_command_buffers(device, pool: vk::CommandPool, n: u32, cbs: *const vk::CommandBuffer)
        => free_command_buffers;
    |t| {
        for c in slice(cbs, n) {
            t.cbs.remove(&c.as_raw());
        }
    }
}
