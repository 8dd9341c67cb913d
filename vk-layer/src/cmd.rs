//! Tracking hooks: object creation (memory, bindings, views, render passes, pipelines, shader
//! modules, descriptor sets) and command recording, feeding [`crate::track::Tracker`].
//!
//! They are handed out only for devices whose fault plan has neighbour faults; each forwards
//! the call unchanged, then records what it needs.

use std::collections::HashMap;

use ash::vk;
use ash::vk::Handle;

use agx_winsys::analysis::{AccessKind, Cause, LoadOp, StoreOp};

use crate::dispatch::{self, chain, guard, lock, next, slice, DeviceRef, DeviceState, DispatchKey};
use crate::spirv::{self, ShaderEffects};
use crate::track::{
    AttDesc, Binding, Buffer, DescKind, DescRes, DescSet, Memory, Pipeline, RenderPassDesc,
    Subpass, Tracker, COMPUTE, GRAPHICS, WHOLE_SIZE,
};

/// # Safety
/// `h` must be a valid dispatchable handle of a device.
unsafe fn dev_of<H: Handle>(h: H) -> Option<DeviceRef> {
    // SAFETY: forwarded from the caller.
    dispatch::device(unsafe { DispatchKey::of(h) })
}

/// A command-recording hook: forwards, then records with the tracker when tracking.
macro_rules! cmd_hook {
    ($(#[$m:meta])* fn $name:ident($cb:ident $(, $arg:ident : $ty:ty)*) => $field:ident;
     |$t:ident| $body:expr) => {
        $(#[$m])*
        pub unsafe extern "system" fn $name($cb: vk::CommandBuffer $(, $arg: $ty)*) {
            guard((), || {
                // SAFETY: `$cb` is a valid command buffer (valid usage of the command).
                let Some(dev) = (unsafe { dev_of($cb) }) else { return };
                // SAFETY: the application's arguments, forwarded unchanged.
                unsafe { next!(dev, $field)($cb $(, $arg)*) };
                if dev.track {
                    #[allow(unused_variables)]
                    let $t: &mut Tracker = &mut lock(&dev.tracker);
                    #[allow(unused_unsafe, clippy::macro_metavars_in_unsafe)]
                    // SAFETY: the pointers among the arguments are valid during the call
                    // (valid usage of the command).
                    unsafe {
                        $body
                    }
                }
            })
        }
    };
}

/// A device-level hook returning `VkResult`: forwards, then on success records.
macro_rules! obj_hook {
    ($(#[$m:meta])* fn $name:ident($dv:ident $(, $arg:ident : $ty:ty)*) => $field:ident;
     |$dev:ident, $t:ident| $body:expr) => {
        $(#[$m])*
        pub unsafe extern "system" fn $name($dv: vk::Device $(, $arg: $ty)*) -> vk::Result {
            guard(vk::Result::ERROR_UNKNOWN, || {
                // SAFETY: `$dv` is a valid device (valid usage of the command).
                let Some($dev) = (unsafe { dev_of($dv) }) else {
                    return vk::Result::ERROR_UNKNOWN;
                };
                // SAFETY: the application's arguments, forwarded unchanged.
                let r = unsafe { next!($dev, $field)($dv $(, $arg)*) };
                if r == vk::Result::SUCCESS && $dev.track {
                    #[allow(unused_variables)]
                    let $t: &mut Tracker = &mut lock(&$dev.tracker);
                    #[allow(unused_unsafe, clippy::macro_metavars_in_unsafe)]
                    // SAFETY: the create infos are valid and the outputs were written by the
                    // successful call (valid usage of the command).
                    unsafe {
                        $body
                    }
                }
                r
            })
        }
    };
}

/// A device-level hook without result: records (before the object goes), then forwards.
macro_rules! void_hook {
    ($(#[$m:meta])* fn $name:ident($dv:ident $(, $arg:ident : $ty:ty)*) => $field:ident;
     |$t:ident| $body:expr) => {
        $(#[$m])*
        pub unsafe extern "system" fn $name($dv: vk::Device $(, $arg: $ty)*) {
            guard((), || {
                // SAFETY: `$dv` is a valid device (valid usage of the command).
                let Some(dev) = (unsafe { dev_of($dv) }) else { return };
                if dev.track {
                    #[allow(unused_variables)]
                    let $t: &mut Tracker = &mut lock(&dev.tracker);
                    #[allow(unused_unsafe, clippy::macro_metavars_in_unsafe)]
                    // SAFETY: the arguments are valid (valid usage of the command).
                    unsafe {
                        $body
                    }
                }
                // SAFETY: the application's arguments, forwarded unchanged.
                unsafe { next!(dev, $field)($dv $(, $arg)*) };
            })
        }
    };
}

fn load_op(op: vk::AttachmentLoadOp) -> LoadOp {
    match op {
        vk::AttachmentLoadOp::LOAD => LoadOp::Load,
        vk::AttachmentLoadOp::CLEAR => LoadOp::Clear,
        _ => LoadOp::DontCare,
    }
}

fn store_op(op: vk::AttachmentStoreOp) -> StoreOp {
    match op {
        vk::AttachmentStoreOp::STORE => StoreOp::Store,
        // NONE: not written at the end, but spills may still write (the analysis models it).
        _ => StoreOp::DontCare,
    }
}

fn is_depth_stencil(f: vk::Format) -> bool {
    matches!(
        f,
        vk::Format::D16_UNORM
            | vk::Format::X8_D24_UNORM_PACK32
            | vk::Format::D32_SFLOAT
            | vk::Format::S8_UINT
            | vk::Format::D16_UNORM_S8_UINT
            | vk::Format::D24_UNORM_S8_UINT
            | vk::Format::D32_SFLOAT_S8_UINT
    )
}

fn bp_index(bp: vk::PipelineBindPoint) -> Option<usize> {
    match bp {
        vk::PipelineBindPoint::GRAPHICS => Some(GRAPHICS),
        vk::PipelineBindPoint::COMPUTE => Some(COMPUTE),
        _ => None,
    }
}

fn desc_kind(t: vk::DescriptorType) -> DescKind {
    match t {
        vk::DescriptorType::SAMPLER | vk::DescriptorType::INLINE_UNIFORM_BLOCK => DescKind::None,
        vk::DescriptorType::UNIFORM_BUFFER
        | vk::DescriptorType::UNIFORM_BUFFER_DYNAMIC
        | vk::DescriptorType::SAMPLED_IMAGE
        | vk::DescriptorType::COMBINED_IMAGE_SAMPLER
        | vk::DescriptorType::UNIFORM_TEXEL_BUFFER
        | vk::DescriptorType::INPUT_ATTACHMENT => DescKind::Read,
        vk::DescriptorType::STORAGE_BUFFER
        | vk::DescriptorType::STORAGE_BUFFER_DYNAMIC
        | vk::DescriptorType::STORAGE_IMAGE
        | vk::DescriptorType::STORAGE_TEXEL_BUFFER => DescKind::Storage,
        _ => DescKind::Unknown,
    }
}

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
        t.memories.insert((*out).as_raw(), Memory {
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
    |t| { t.memories.remove(&mem.as_raw()); }
}

obj_hook! {
    /// `vkMapMemory`: remembers the application's mapping (the layer scrambles through it).
    fn map_memory(device, mem: vk::DeviceMemory, offset: u64, size: u64,
        flags: vk::MemoryMapFlags, out: *mut *mut std::ffi::c_void) => map_memory;
    |dev, t| {
        if let Some(m) = t.memories.get_mut(&mem.as_raw()) {
            m.app_map = Some((*out as usize, offset, size));
        }
    }
}

void_hook! {
    /// `vkUnmapMemory`.
    fn unmap_memory(device, mem: vk::DeviceMemory) => unmap_memory;
    |t| {
        if let Some(m) = t.memories.get_mut(&mem.as_raw()) {
            m.app_map = None;
        }
    }
}

obj_hook! {
    /// `vkCreateBuffer`.
    fn create_buffer(device, info: *const vk::BufferCreateInfo<'_>,
        alloc: *const vk::AllocationCallbacks<'_>, out: *mut vk::Buffer) => create_buffer;
    |dev, t| { t.buffers.insert((*out).as_raw(), Buffer { size: (*info).size, binding: None }); }
}

void_hook! {
    /// `vkDestroyBuffer`.
    fn destroy_buffer(device, b: vk::Buffer, alloc: *const vk::AllocationCallbacks<'_>)
        => destroy_buffer;
    |t| { t.buffers.remove(&b.as_raw()); }
}

fn bind_buffer(t: &mut Tracker, b: vk::Buffer, mem: vk::DeviceMemory, offset: u64) {
    if let Some(buf) = t.buffers.get_mut(&b.as_raw()) {
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
    |dev, t| { t.images.insert((*out).as_raw(), None); }
}

void_hook! {
    /// `vkDestroyImage`.
    fn destroy_image(device, i: vk::Image, alloc: *const vk::AllocationCallbacks<'_>)
        => destroy_image;
    |t| { t.images.remove(&i.as_raw()); }
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
    if let Some(slot) = t.images.get_mut(&image.as_raw()) {
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
    |dev, t| { t.views.insert((*out).as_raw(), (*info).image.as_raw()); }
}

void_hook! {
    /// `vkDestroyImageView`.
    fn destroy_image_view(device, v: vk::ImageView, alloc: *const vk::AllocationCallbacks<'_>)
        => destroy_image_view;
    |t| { t.views.remove(&v.as_raw()); }
}

obj_hook! {
    /// `vkCreateBufferView`.
    fn create_buffer_view(device, info: *const vk::BufferViewCreateInfo<'_>,
        alloc: *const vk::AllocationCallbacks<'_>, out: *mut vk::BufferView) => create_buffer_view;
    |dev, t| {
        let i = &*info;
        t.buffer_views.insert((*out).as_raw(), (i.buffer.as_raw(), i.offset, i.range));
    }
}

void_hook! {
    /// `vkDestroyBufferView`.
    fn destroy_buffer_view(device, v: vk::BufferView, alloc: *const vk::AllocationCallbacks<'_>)
        => destroy_buffer_view;
    |t| { t.buffer_views.remove(&v.as_raw()); }
}

obj_hook! {
    /// `vkCreateRenderPass`.
    fn create_render_pass(device, info: *const vk::RenderPassCreateInfo<'_>,
        alloc: *const vk::AllocationCallbacks<'_>, out: *mut vk::RenderPass) => create_render_pass;
    |dev, t| {
        let i = &*info;
        let atts = slice(i.p_attachments, i.attachment_count)
            .iter()
            .map(|a| AttDesc {
                load: load_op(a.load_op),
                store: store_op(a.store_op),
                stencil_load: load_op(a.stencil_load_op),
                stencil_store: store_op(a.stencil_store_op),
                depth_stencil: is_depth_stencil(a.format),
            })
            .collect();
        let refs = |p: *const vk::AttachmentReference, n: u32| -> Vec<Option<u32>> {
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
                    refs(s.p_resolve_attachments, s.color_attachment_count).into_iter().flatten().collect()
                },
                depth: if s.p_depth_stencil_attachment.is_null() {
                    None
                } else {
                    refs(s.p_depth_stencil_attachment, 1)[0]
                },
                inputs: refs(s.p_input_attachments, s.input_attachment_count).into_iter().flatten().collect(),
            })
            .collect();
        t.render_passes.insert((*out).as_raw(), RenderPassDesc { atts, subpasses });
    }
}

obj_hook! {
    /// `vkCreateRenderPass2` (and the KHR alias).
    fn create_render_pass2(device, info: *const vk::RenderPassCreateInfo2<'_>,
        alloc: *const vk::AllocationCallbacks<'_>, out: *mut vk::RenderPass) => create_render_pass2;
    |dev, t| {
        let i = &*info;
        let atts = slice(i.p_attachments, i.attachment_count)
            .iter()
            .map(|a| AttDesc {
                load: load_op(a.load_op),
                store: store_op(a.store_op),
                stencil_load: load_op(a.stencil_load_op),
                stencil_store: store_op(a.stencil_store_op),
                depth_stencil: is_depth_stencil(a.format),
            })
            .collect();
        let refs = |p: *const vk::AttachmentReference2<'_>, n: u32| -> Vec<Option<u32>> {
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
                    refs(s.p_resolve_attachments, s.color_attachment_count).into_iter().flatten().collect()
                },
                depth: if s.p_depth_stencil_attachment.is_null() {
                    None
                } else {
                    refs(s.p_depth_stencil_attachment, 1)[0]
                },
                inputs: refs(s.p_input_attachments, s.input_attachment_count).into_iter().flatten().collect(),
            })
            .collect();
        t.render_passes.insert((*out).as_raw(), RenderPassDesc { atts, subpasses });
    }
}

void_hook! {
    /// `vkDestroyRenderPass`.
    fn destroy_render_pass(device, rp: vk::RenderPass, alloc: *const vk::AllocationCallbacks<'_>)
        => destroy_render_pass;
    |t| { t.render_passes.remove(&rp.as_raw()); }
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
        t.framebuffers.insert((*out).as_raw(), views);
    }
}

void_hook! {
    /// `vkDestroyFramebuffer`.
    fn destroy_framebuffer(device, fb: vk::Framebuffer, alloc: *const vk::AllocationCallbacks<'_>)
        => destroy_framebuffer;
    |t| { t.framebuffers.remove(&fb.as_raw()); }
}

obj_hook! {
    /// `vkCreateShaderModule`: scans the SPIR-V once.
    fn create_shader_module(device, info: *const vk::ShaderModuleCreateInfo<'_>,
        alloc: *const vk::AllocationCallbacks<'_>, out: *mut vk::ShaderModule) => create_shader_module;
    |dev, t| {
        let i = &*info;
        let words = slice(i.p_code, (i.code_size / 4) as u32);
        t.shaders.insert((*out).as_raw(), spirv::scan(words));
    }
}

void_hook! {
    /// `vkDestroyShaderModule`.
    fn destroy_shader_module(device, m: vk::ShaderModule, alloc: *const vk::AllocationCallbacks<'_>)
        => destroy_shader_module;
    |t| { t.shaders.remove(&m.as_raw()); }
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
            t.shaders
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
            let dynamic: Vec<vk::DynamicState> = if i.p_dynamic_state.is_null() {
                Vec::new()
            } else {
                let d = &*i.p_dynamic_state;
                slice(d.p_dynamic_states, d.dynamic_state_count).to_vec()
            };
            if !i.p_color_blend_state.is_null() {
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
            if !i.p_depth_stencil_state.is_null() {
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
            t.pipelines.insert((*out.add(k)).as_raw(), p);
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
            t.pipelines.insert((*out.add(k)).as_raw(), Pipeline { fx, ..Pipeline::default() });
        }
    }
}

void_hook! {
    /// `vkDestroyPipeline`.
    fn destroy_pipeline(device, p: vk::Pipeline, alloc: *const vk::AllocationCallbacks<'_>)
        => destroy_pipeline;
    |t| { t.pipelines.remove(&p.as_raw()); }
}

obj_hook! {
    /// `vkAllocateDescriptorSets`.
    fn allocate_descriptor_sets(device, info: *const vk::DescriptorSetAllocateInfo<'_>,
        out: *mut vk::DescriptorSet) => allocate_descriptor_sets;
    |dev, t| {
        for s in slice(out, (*info).descriptor_set_count) {
            t.sets.insert(s.as_raw(), DescSet::default());
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
            for w in slice(writes, nw) {
                let kind = desc_kind(w.descriptor_type);
                let dynamic = matches!(
                    w.descriptor_type,
                    vk::DescriptorType::UNIFORM_BUFFER_DYNAMIC
                        | vk::DescriptorType::STORAGE_BUFFER_DYNAMIC
                );
                let mut entries: Vec<DescRes> = Vec::new();
                let n = w.descriptor_count;
                match w.descriptor_type {
                    vk::DescriptorType::UNIFORM_BUFFER
                    | vk::DescriptorType::UNIFORM_BUFFER_DYNAMIC
                    | vk::DescriptorType::STORAGE_BUFFER
                    | vk::DescriptorType::STORAGE_BUFFER_DYNAMIC => {
                        for b in slice(w.p_buffer_info, n) {
                            entries.push(if b.buffer == vk::Buffer::null() {
                                DescRes::None
                            } else if dynamic {
                                // Dynamic offsets move the range: the whole buffer.
                                DescRes::Buffer {
                                    buffer: b.buffer.as_raw(),
                                    offset: 0,
                                    range: WHOLE_SIZE,
                                }
                            } else {
                                DescRes::Buffer {
                                    buffer: b.buffer.as_raw(),
                                    offset: b.offset,
                                    range: b.range,
                                }
                            });
                        }
                    }
                    vk::DescriptorType::SAMPLED_IMAGE
                    | vk::DescriptorType::COMBINED_IMAGE_SAMPLER
                    | vk::DescriptorType::STORAGE_IMAGE
                    | vk::DescriptorType::INPUT_ATTACHMENT => {
                        for i in slice(w.p_image_info, n) {
                            entries.push(if i.image_view == vk::ImageView::null() {
                                DescRes::None
                            } else {
                                DescRes::ImageView(i.image_view.as_raw())
                            });
                        }
                    }
                    vk::DescriptorType::UNIFORM_TEXEL_BUFFER
                    | vk::DescriptorType::STORAGE_TEXEL_BUFFER => {
                        for v in slice(w.p_texel_buffer_view, n) {
                            entries.push(if *v == vk::BufferView::null() {
                                DescRes::None
                            } else {
                                DescRes::BufferView(v.as_raw())
                            });
                        }
                    }
                    _ => entries = vec![DescRes::None; n as usize],
                }
                let set = t.sets.entry(w.dst_set.as_raw()).or_default();
                // Consecutive bindings: the tracker keys by (binding, element) and does not
                // know binding sizes, so overflow into the next binding keeps the element index.
                for (k, e) in entries.into_iter().enumerate() {
                    set.slots
                        .insert((w.dst_binding, w.dst_array_element + k as u32), (kind, e));
                }
            }
            for c in slice(copies, nc) {
                let src: HashMap<(u32, u32), (DescKind, DescRes)> =
                    match t.sets.get(&c.src_set.as_raw()) {
                        Some(s) if !s.unknown => s.slots.clone(),
                        _ => {
                            t.sets.entry(c.dst_set.as_raw()).or_default().unknown = true;
                            continue;
                        }
                    };
                let dst = t.sets.entry(c.dst_set.as_raw()).or_default();
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

void_hook! {
    /// `vkUpdateDescriptorSetWithTemplate`: not followed; the set becomes unknown.
    fn update_descriptor_set_with_template(device, set: vk::DescriptorSet,
        tmpl: vk::DescriptorUpdateTemplate, data: *const std::ffi::c_void)
        => update_descriptor_set_with_template;
    |t| { t.sets.entry(set.as_raw()).or_default().unknown = true; }
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
            let r = next!(dev, begin_command_buffer)(cb, info);
            if r == vk::Result::SUCCESS && dev.track {
                let i = &*info;
                lock(&dev.tracker).begin(
                    cb.as_raw(),
                    i.flags
                        .contains(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT),
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
                )
            })
            .collect();
        let mut depth = Vec::new();
        for p in [i.p_depth_attachment, i.p_stencil_attachment] {
            if !p.is_null() && (*p).image_view != vk::ImageView::null() {
                depth.push(((*p).image_view.as_raw(), load_op((*p).load_op), store_op((*p).store_op)));
            }
        }
        if i.flags.contains(vk::RenderingFlags::RESUMING) {
            // A resumed pass loads what the suspended one left: model as unknown.
            t.unknown(cb.as_raw());
        }
        t.begin_rendering(cb.as_raw(), &colors, &depth);
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
        None => t.unknown(cb.as_raw()),
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
        None => t.unknown(cb.as_raw()),
    }
}

cmd_hook! {
    /// `vkCmdPushDescriptorSetKHR`: not followed (unknown).
    fn cmd_push_descriptor_set_khr(cb, bp: vk::PipelineBindPoint, layout: vk::PipelineLayout,
        set: u32, n: u32, writes: *const vk::WriteDescriptorSet<'_>) => cmd_push_descriptor_set_khr;
    |t| t.unknown(cb.as_raw())
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
    /// `vkCmdDispatchIndirect`.
    fn cmd_dispatch_indirect(cb, b: vk::Buffer, off: u64) => cmd_dispatch_indirect;
    |t| t.dispatch(cb.as_raw(), Some((b.as_raw(), off)))
}

cmd_hook! {
    /// `vkCmdCopyBuffer`.
    fn cmd_copy_buffer(cb, src: vk::Buffer, dst: vk::Buffer, n: u32, regions: *const vk::BufferCopy)
        => cmd_copy_buffer;
    |t| {
        let mut list = Vec::new();
        for r in slice(regions, n) {
            list.push((AccessKind::Read, t.buffer_region(src.as_raw(), r.src_offset, r.size), Cause::Transfer));
            list.push((AccessKind::Write, t.buffer_region(dst.as_raw(), r.dst_offset, r.size), Cause::Transfer));
        }
        t.accesses(cb.as_raw(), &list);
    }
}

cmd_hook! {
    /// `vkCmdCopyBuffer2` (and the KHR alias).
    fn cmd_copy_buffer2(cb, info: *const vk::CopyBufferInfo2<'_>) => cmd_copy_buffer2;
    |t| {
        let i = &*info;
        let mut list = Vec::new();
        for r in slice(i.p_regions, i.region_count) {
            list.push((AccessKind::Read, t.buffer_region(i.src_buffer.as_raw(), r.src_offset, r.size), Cause::Transfer));
            list.push((AccessKind::Write, t.buffer_region(i.dst_buffer.as_raw(), r.dst_offset, r.size), Cause::Transfer));
        }
        t.accesses(cb.as_raw(), &list);
    }
}

/// Image-to-image transfers: reads all of `src`, may write `dst`.
fn image_transfer(t: &mut Tracker, cb: vk::CommandBuffer, src: vk::Image, dst: vk::Image) {
    let list = [
        (
            AccessKind::Read,
            t.image_region(src.as_raw()),
            Cause::Transfer,
        ),
        (
            AccessKind::MayWrite,
            t.image_region(dst.as_raw()),
            Cause::Transfer,
        ),
    ];
    t.accesses(cb.as_raw(), &list);
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
    let b = t.buffer_region(buf.as_raw(), off, WHOLE_SIZE);
    let i = t.image_region(img.as_raw());
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
        let r = t.buffer_region(b.as_raw(), off, size);
        t.access(cb.as_raw(), AccessKind::Write, r, Cause::Transfer);
    }
}

cmd_hook! {
    /// `vkCmdFillBuffer`.
    fn cmd_fill_buffer(cb, b: vk::Buffer, off: u64, size: u64, data: u32) => cmd_fill_buffer;
    |t| {
        let r = t.buffer_region(b.as_raw(), off, size);
        t.access(cb.as_raw(), AccessKind::Write, r, Cause::Transfer);
    }
}

cmd_hook! {
    /// `vkCmdClearColorImage`.
    fn cmd_clear_color_image(cb, i: vk::Image, l: vk::ImageLayout, c: *const vk::ClearColorValue,
        n: u32, ranges: *const vk::ImageSubresourceRange) => cmd_clear_color_image;
    |t| {
        let r = t.image_region(i.as_raw());
        t.access(cb.as_raw(), AccessKind::MayWrite, r, Cause::Transfer);
    }
}

cmd_hook! {
    /// `vkCmdClearDepthStencilImage`.
    fn cmd_clear_depth_stencil_image(cb, i: vk::Image, l: vk::ImageLayout,
        c: *const vk::ClearDepthStencilValue, n: u32, ranges: *const vk::ImageSubresourceRange)
        => cmd_clear_depth_stencil_image;
    |t| {
        let r = t.image_region(i.as_raw());
        t.access(cb.as_raw(), AccessKind::MayWrite, r, Cause::Transfer);
    }
}

cmd_hook! {
    /// `vkCmdBeginQuery`.
    fn cmd_begin_query(cb, pool: vk::QueryPool, q: u32, flags: vk::QueryControlFlags) => cmd_begin_query;
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
            (AccessKind::MayWrite, t.buffer_region(dst.as_raw(), off, size), Cause::Transfer),
        ];
        t.accesses(cb.as_raw(), &list);
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
