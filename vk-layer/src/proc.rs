//! The one list of hooked commands, and `vkGetInstanceProcAddr` / `vkGetDeviceProcAddr`.

use std::collections::HashMap;
use std::ffi::{c_char, CStr};
use std::sync::OnceLock;

use ash::vk;

use crate::dispatch::{self, guard, lock, DispatchKey};
use crate::fault::{self, khr};
use crate::{cmd, device, instance};

/// When a hook is handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Global or instance-level command: always.
    Instance,
    /// Device-level command of the device-lost contract: when the next layer has it.
    Device,
    /// Tracking hook: when the device tracks command buffers and the next layer has it.
    Track,
    /// `vkGetDeviceFaultInfoEXT`: when the layer implements the extension or the next has it.
    Fault,
    /// `VK_KHR_device_fault`'s commands: the layer's when it implements the extension and the
    /// application enabled it, the next layer's otherwise.
    FaultKhr,
    /// Swapchain hook: when the device tracks or captures frames, and the next layer has it.
    Wsi,
}

type Table = HashMap<&'static [u8], (unsafe extern "system" fn(), Kind)>;

macro_rules! hooks {
    ($($kind:ident: $($name:literal)|+ => $f:path as $pfn:ident;)*) => {{
        // The generated hooks first: the hand-written ones below replace them.
        let mut t: Table = cmd::generated_table()
            .into_iter()
            .map(|(n, f)| (n.as_bytes(), (f, Kind::Track)))
            .collect();
        $(
            let f: vk::$pfn = $f;
            // SAFETY: a function pointer cast to the loader's generic function pointer type;
            // the loader casts it back to `$pfn` before calling it.
            let g = unsafe { std::mem::transmute::<vk::$pfn, unsafe extern "system" fn()>(f) };
            $( t.insert($name.to_bytes(), (g, Kind::$kind)); )+
        )*
        t
    }};
}

fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = hooks! {
            Instance: c"vkGetInstanceProcAddr" => get_instance_proc_addr as PFN_vkGetInstanceProcAddr;
            Instance: c"vkGetDeviceProcAddr" => get_device_proc_addr as PFN_vkGetDeviceProcAddr;
            Instance: c"vkCreateInstance" => instance::create_instance as PFN_vkCreateInstance;
            Instance: c"vkDestroyInstance" => instance::destroy_instance as PFN_vkDestroyInstance;
            Instance: c"vkEnumerateDeviceExtensionProperties" =>
                instance::enumerate_device_extension_properties as PFN_vkEnumerateDeviceExtensionProperties;
            Instance: c"vkGetPhysicalDeviceFeatures2" | c"vkGetPhysicalDeviceFeatures2KHR" =>
                instance::get_physical_device_features2 as PFN_vkGetPhysicalDeviceFeatures2;
            Instance: c"vkGetPhysicalDeviceProperties2" | c"vkGetPhysicalDeviceProperties2KHR" =>
                instance::get_physical_device_properties2 as PFN_vkGetPhysicalDeviceProperties2;
            Instance: c"vkCreateDevice" => instance::create_device as PFN_vkCreateDevice;
            Instance: c"vkDestroyDevice" => device::destroy_device as PFN_vkDestroyDevice;

            Device: c"vkGetDeviceQueue" => device::get_device_queue as PFN_vkGetDeviceQueue;
            Device: c"vkGetDeviceQueue2" => device::get_device_queue2 as PFN_vkGetDeviceQueue2;
            Device: c"vkQueueSubmit" => device::queue_submit as PFN_vkQueueSubmit;
            Device: c"vkQueueSubmit2" | c"vkQueueSubmit2KHR" => device::queue_submit2 as PFN_vkQueueSubmit2;
            Device: c"vkQueueWaitIdle" => device::queue_wait_idle as PFN_vkQueueWaitIdle;
            Device: c"vkQueueBindSparse" => device::queue_bind_sparse as PFN_vkQueueBindSparse;
            Device: c"vkDeviceWaitIdle" => device::device_wait_idle as PFN_vkDeviceWaitIdle;
            Device: c"vkWaitForFences" => device::wait_for_fences as PFN_vkWaitForFences;
            Device: c"vkGetFenceStatus" => device::get_fence_status as PFN_vkGetFenceStatus;
            Device: c"vkWaitSemaphores" | c"vkWaitSemaphoresKHR" => device::wait_semaphores as PFN_vkWaitSemaphores;
            Device: c"vkGetSemaphoreCounterValue" | c"vkGetSemaphoreCounterValueKHR" =>
                device::get_semaphore_counter_value as PFN_vkGetSemaphoreCounterValue;
            Device: c"vkGetEventStatus" => device::get_event_status as PFN_vkGetEventStatus;
            Device: c"vkGetQueryPoolResults" => device::get_query_pool_results as PFN_vkGetQueryPoolResults;
            Device: c"vkQueuePresentKHR" => device::queue_present_khr as PFN_vkQueuePresentKHR;
            Device: c"vkAcquireNextImageKHR" => device::acquire_next_image_khr as PFN_vkAcquireNextImageKHR;
            Device: c"vkAcquireNextImage2KHR" => device::acquire_next_image2_khr as PFN_vkAcquireNextImage2KHR;
            Fault: c"vkGetDeviceFaultInfoEXT" => fault::get_device_fault_info_ext as PFN_vkGetDeviceFaultInfoEXT;

            Track: c"vkAllocateMemory" => cmd::allocate_memory as PFN_vkAllocateMemory;
            Track: c"vkFreeMemory" => cmd::free_memory as PFN_vkFreeMemory;
            Track: c"vkMapMemory" => cmd::map_memory as PFN_vkMapMemory;
            Track: c"vkUnmapMemory" => cmd::unmap_memory as PFN_vkUnmapMemory;
            Track: c"vkCreateBuffer" => cmd::create_buffer as PFN_vkCreateBuffer;
            Track: c"vkDestroyBuffer" => cmd::destroy_buffer as PFN_vkDestroyBuffer;
            Track: c"vkBindBufferMemory" => cmd::bind_buffer_memory as PFN_vkBindBufferMemory;
            Track: c"vkBindBufferMemory2" | c"vkBindBufferMemory2KHR" => cmd::bind_buffer_memory2 as PFN_vkBindBufferMemory2;
            Track: c"vkCreateImage" => cmd::create_image as PFN_vkCreateImage;
            Track: c"vkDestroyImage" => cmd::destroy_image as PFN_vkDestroyImage;
            Track: c"vkBindImageMemory" => cmd::bind_image_memory as PFN_vkBindImageMemory;
            Track: c"vkBindImageMemory2" | c"vkBindImageMemory2KHR" => cmd::bind_image_memory2 as PFN_vkBindImageMemory2;
            Track: c"vkCreateImageView" => cmd::create_image_view as PFN_vkCreateImageView;
            Track: c"vkDestroyImageView" => cmd::destroy_image_view as PFN_vkDestroyImageView;
            Track: c"vkCreateBufferView" => cmd::create_buffer_view as PFN_vkCreateBufferView;
            Track: c"vkDestroyBufferView" => cmd::destroy_buffer_view as PFN_vkDestroyBufferView;
            Track: c"vkCreateRenderPass" => cmd::create_render_pass as PFN_vkCreateRenderPass;
            Track: c"vkCreateRenderPass2" | c"vkCreateRenderPass2KHR" => cmd::create_render_pass2 as PFN_vkCreateRenderPass2;
            Track: c"vkDestroyRenderPass" => cmd::destroy_render_pass as PFN_vkDestroyRenderPass;
            Track: c"vkCreateFramebuffer" => cmd::create_framebuffer as PFN_vkCreateFramebuffer;
            Track: c"vkDestroyFramebuffer" => cmd::destroy_framebuffer as PFN_vkDestroyFramebuffer;
            Track: c"vkCreateShaderModule" => cmd::create_shader_module as PFN_vkCreateShaderModule;
            Track: c"vkDestroyShaderModule" => cmd::destroy_shader_module as PFN_vkDestroyShaderModule;
            Track: c"vkCreateGraphicsPipelines" => cmd::create_graphics_pipelines as PFN_vkCreateGraphicsPipelines;
            Track: c"vkCreateComputePipelines" => cmd::create_compute_pipelines as PFN_vkCreateComputePipelines;
            Track: c"vkDestroyPipeline" => cmd::destroy_pipeline as PFN_vkDestroyPipeline;
            Track: c"vkAllocateDescriptorSets" => cmd::allocate_descriptor_sets as PFN_vkAllocateDescriptorSets;
            Track: c"vkUpdateDescriptorSets" => cmd::update_descriptor_sets as PFN_vkUpdateDescriptorSets;
            Track: c"vkUpdateDescriptorSetWithTemplate" | c"vkUpdateDescriptorSetWithTemplateKHR" =>
                cmd::update_descriptor_set_with_template as PFN_vkUpdateDescriptorSetWithTemplate;
            Track: c"vkCreateDescriptorUpdateTemplate" | c"vkCreateDescriptorUpdateTemplateKHR" =>
                cmd::create_descriptor_update_template as PFN_vkCreateDescriptorUpdateTemplate;
            Track: c"vkDestroyDescriptorUpdateTemplate" | c"vkDestroyDescriptorUpdateTemplateKHR" =>
                cmd::destroy_descriptor_update_template as PFN_vkDestroyDescriptorUpdateTemplate;
            Wsi: c"vkCreateSwapchainKHR" => cmd::create_swapchain_khr as PFN_vkCreateSwapchainKHR;
            Wsi: c"vkDestroySwapchainKHR" => cmd::destroy_swapchain_khr as PFN_vkDestroySwapchainKHR;
            Wsi: c"vkGetSwapchainImagesKHR" => cmd::get_swapchain_images_khr as PFN_vkGetSwapchainImagesKHR;
            Track: c"vkCreateSemaphore" => cmd::create_semaphore as PFN_vkCreateSemaphore;
            Track: c"vkDestroySemaphore" => cmd::destroy_semaphore as PFN_vkDestroySemaphore;
            Track: c"vkFreeCommandBuffers" => cmd::free_command_buffers as PFN_vkFreeCommandBuffers;
            Track: c"vkBeginCommandBuffer" => cmd::begin_command_buffer as PFN_vkBeginCommandBuffer;
            Track: c"vkResetCommandBuffer" => cmd::reset_command_buffer as PFN_vkResetCommandBuffer;
            Track: c"vkCmdBeginRenderPass" => cmd::cmd_begin_render_pass as PFN_vkCmdBeginRenderPass;
            Track: c"vkCmdBeginRenderPass2" | c"vkCmdBeginRenderPass2KHR" => cmd::cmd_begin_render_pass2 as PFN_vkCmdBeginRenderPass2;
            Track: c"vkCmdNextSubpass" => cmd::cmd_next_subpass as PFN_vkCmdNextSubpass;
            Track: c"vkCmdNextSubpass2" | c"vkCmdNextSubpass2KHR" => cmd::cmd_next_subpass2 as PFN_vkCmdNextSubpass2;
            Track: c"vkCmdEndRenderPass" => cmd::cmd_end_render_pass as PFN_vkCmdEndRenderPass;
            Track: c"vkCmdEndRenderPass2" | c"vkCmdEndRenderPass2KHR" => cmd::cmd_end_render_pass2 as PFN_vkCmdEndRenderPass2;
            Track: c"vkCmdBeginRendering" | c"vkCmdBeginRenderingKHR" => cmd::cmd_begin_rendering as PFN_vkCmdBeginRendering;
            Track: c"vkCmdEndRendering" | c"vkCmdEndRenderingKHR" => cmd::cmd_end_rendering as PFN_vkCmdEndRendering;
            Track: c"vkCmdBindPipeline" => cmd::cmd_bind_pipeline as PFN_vkCmdBindPipeline;
            Track: c"vkCmdBindDescriptorSets" => cmd::cmd_bind_descriptor_sets as PFN_vkCmdBindDescriptorSets;
            Track: c"vkCmdPushDescriptorSetKHR" => cmd::cmd_push_descriptor_set_khr as PFN_vkCmdPushDescriptorSetKHR;
            Track: c"vkCmdBindVertexBuffers" => cmd::cmd_bind_vertex_buffers as PFN_vkCmdBindVertexBuffers;
            Track: c"vkCmdBindIndexBuffer" => cmd::cmd_bind_index_buffer as PFN_vkCmdBindIndexBuffer;
            Track: c"vkCmdDraw" => cmd::cmd_draw as PFN_vkCmdDraw;
            Track: c"vkCmdDrawIndexed" => cmd::cmd_draw_indexed as PFN_vkCmdDrawIndexed;
            Track: c"vkCmdDrawIndirect" => cmd::cmd_draw_indirect as PFN_vkCmdDrawIndirect;
            Track: c"vkCmdDrawIndexedIndirect" => cmd::cmd_draw_indexed_indirect as PFN_vkCmdDrawIndexedIndirect;
            Track: c"vkCmdDrawIndirectCount" | c"vkCmdDrawIndirectCountKHR" => cmd::cmd_draw_indirect_count as PFN_vkCmdDrawIndirectCount;
            Track: c"vkCmdDrawIndexedIndirectCount" | c"vkCmdDrawIndexedIndirectCountKHR" =>
                cmd::cmd_draw_indexed_indirect_count as PFN_vkCmdDrawIndexedIndirectCount;
            Track: c"vkCmdDispatch" => cmd::cmd_dispatch as PFN_vkCmdDispatch;
            Track: c"vkCmdDispatchIndirect" => cmd::cmd_dispatch_indirect as PFN_vkCmdDispatchIndirect;
            Track: c"vkCmdCopyBuffer" => cmd::cmd_copy_buffer as PFN_vkCmdCopyBuffer;
            Track: c"vkCmdCopyBuffer2" | c"vkCmdCopyBuffer2KHR" => cmd::cmd_copy_buffer2 as PFN_vkCmdCopyBuffer2;
            Track: c"vkCmdCopyImage" => cmd::cmd_copy_image as PFN_vkCmdCopyImage;
            Track: c"vkCmdCopyImage2" | c"vkCmdCopyImage2KHR" => cmd::cmd_copy_image2 as PFN_vkCmdCopyImage2;
            Track: c"vkCmdBlitImage" => cmd::cmd_blit_image as PFN_vkCmdBlitImage;
            Track: c"vkCmdBlitImage2" | c"vkCmdBlitImage2KHR" => cmd::cmd_blit_image2 as PFN_vkCmdBlitImage2;
            Track: c"vkCmdResolveImage" => cmd::cmd_resolve_image as PFN_vkCmdResolveImage;
            Track: c"vkCmdResolveImage2" | c"vkCmdResolveImage2KHR" => cmd::cmd_resolve_image2 as PFN_vkCmdResolveImage2;
            Track: c"vkCmdCopyBufferToImage" => cmd::cmd_copy_buffer_to_image as PFN_vkCmdCopyBufferToImage;
            Track: c"vkCmdCopyBufferToImage2" | c"vkCmdCopyBufferToImage2KHR" =>
                cmd::cmd_copy_buffer_to_image2 as PFN_vkCmdCopyBufferToImage2;
            Track: c"vkCmdCopyImageToBuffer" => cmd::cmd_copy_image_to_buffer as PFN_vkCmdCopyImageToBuffer;
            Track: c"vkCmdCopyImageToBuffer2" | c"vkCmdCopyImageToBuffer2KHR" =>
                cmd::cmd_copy_image_to_buffer2 as PFN_vkCmdCopyImageToBuffer2;
            Track: c"vkCmdUpdateBuffer" => cmd::cmd_update_buffer as PFN_vkCmdUpdateBuffer;
            Track: c"vkCmdFillBuffer" => cmd::cmd_fill_buffer as PFN_vkCmdFillBuffer;
            Track: c"vkCmdClearColorImage" => cmd::cmd_clear_color_image as PFN_vkCmdClearColorImage;
            Track: c"vkCmdClearDepthStencilImage" => cmd::cmd_clear_depth_stencil_image as PFN_vkCmdClearDepthStencilImage;
            Track: c"vkCmdBeginQuery" => cmd::cmd_begin_query as PFN_vkCmdBeginQuery;
            Track: c"vkCmdResetQueryPool" => cmd::cmd_reset_query_pool as PFN_vkCmdResetQueryPool;
            Track: c"vkCmdWriteTimestamp" => cmd::cmd_write_timestamp as PFN_vkCmdWriteTimestamp;
            Track: c"vkCmdWriteTimestamp2" | c"vkCmdWriteTimestamp2KHR" => cmd::cmd_write_timestamp2 as PFN_vkCmdWriteTimestamp2;
            Track: c"vkCmdCopyQueryPoolResults" => cmd::cmd_copy_query_pool_results as PFN_vkCmdCopyQueryPoolResults;
            Track: c"vkCmdExecuteCommands" => cmd::cmd_execute_commands as PFN_vkCmdExecuteCommands;
            Track: c"vkCmdPushDescriptorSetWithTemplateKHR" =>
                cmd::cmd_push_descriptor_set_with_template_khr as PFN_vkCmdPushDescriptorSetWithTemplateKHR;
            Track: c"vkCmdBindVertexBuffers2" | c"vkCmdBindVertexBuffers2EXT" =>
                cmd::cmd_bind_vertex_buffers2 as PFN_vkCmdBindVertexBuffers2;
            Track: c"vkCmdDrawMultiEXT" => cmd::cmd_draw_multi_ext as PFN_vkCmdDrawMultiEXT;
            Track: c"vkCmdDrawMultiIndexedEXT" => cmd::cmd_draw_multi_indexed_ext as PFN_vkCmdDrawMultiIndexedEXT;
            Track: c"vkCmdDispatchBase" | c"vkCmdDispatchBaseKHR" => cmd::cmd_dispatch_base as PFN_vkCmdDispatchBase;
            Track: c"vkCmdClearAttachments" => cmd::cmd_clear_attachments as PFN_vkCmdClearAttachments;
            Track: c"vkCmdBeginConditionalRenderingEXT" =>
                cmd::cmd_begin_conditional_rendering_ext as PFN_vkCmdBeginConditionalRenderingEXT;
            Track: c"vkCmdBeginQueryIndexedEXT" => cmd::cmd_begin_query_indexed_ext as PFN_vkCmdBeginQueryIndexedEXT;
            Track: c"vkCmdSetEvent" => cmd::cmd_set_event as PFN_vkCmdSetEvent;
            Track: c"vkCmdSetEvent2" | c"vkCmdSetEvent2KHR" => cmd::cmd_set_event2 as PFN_vkCmdSetEvent2;
            Track: c"vkCmdResetEvent" => cmd::cmd_reset_event as PFN_vkCmdResetEvent;
            Track: c"vkCmdResetEvent2" | c"vkCmdResetEvent2KHR" => cmd::cmd_reset_event2 as PFN_vkCmdResetEvent2;
            Track: c"vkCmdWaitEvents" => cmd::cmd_wait_events as PFN_vkCmdWaitEvents;
            Track: c"vkCmdWaitEvents2" | c"vkCmdWaitEvents2KHR" => cmd::cmd_wait_events2 as PFN_vkCmdWaitEvents2;
        };
        // Commands newer than ash's registry (their function pointer types are the layer's).
        let reports: khr::PfnGetDeviceFaultReportsKHR = fault::get_device_fault_reports_khr;
        let debug: khr::PfnGetDeviceFaultDebugInfoKHR = fault::get_device_fault_debug_info_khr;
        // SAFETY: function pointers cast to the loader's generic type, cast back by the caller
        // to the command's type.
        unsafe {
            t.insert(
                b"vkGetDeviceFaultReportsKHR",
                (std::mem::transmute::<khr::PfnGetDeviceFaultReportsKHR, unsafe extern "system" fn()>(reports), Kind::FaultKhr),
            );
            t.insert(
                b"vkGetDeviceFaultDebugInfoKHR",
                (std::mem::transmute::<khr::PfnGetDeviceFaultDebugInfoKHR, unsafe extern "system" fn()>(debug), Kind::FaultKhr),
            );
        }
        t
    })
}

/// Whether `name` is a `vkCmd*` command the layer neither hooks nor knows to be free of memory
/// effects.
fn is_unseen_command(name: &[u8]) -> bool {
    name.starts_with(b"vkCmd")
        && !table().contains_key(name)
        && !cmd::NO_MEMORY.iter().any(|n| n.as_bytes() == name)
}

/// The layer's `vkGetInstanceProcAddr`.
pub unsafe extern "system" fn get_instance_proc_addr(
    instance: vk::Instance,
    name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    guard(None, || {
        if name.is_null() {
            return None;
        }
        // SAFETY: `name` is a NUL-terminated string (valid usage).
        let n = unsafe { CStr::from_ptr(name) }.to_bytes();
        let inst = if instance == vk::Instance::null() {
            None
        } else {
            // SAFETY: a valid instance (valid usage).
            dispatch::instance(unsafe { DispatchKey::of(instance) })
        };
        let below = || {
            let i = inst.as_ref()?;
            // SAFETY: forwarding to the next layer's gipa with the same arguments.
            unsafe { (i.next_gipa)(instance, name) }
        };
        match table().get(n) {
            Some(&(f, Kind::Instance | Kind::Fault | Kind::FaultKhr)) => Some(f),
            Some(&(f, _)) => below().map(|_| f),
            None => below(),
        }
    })
}

/// The layer's `vkGetDeviceProcAddr`.
pub unsafe extern "system" fn get_device_proc_addr(
    device: vk::Device,
    name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    guard(None, || {
        if name.is_null() || device == vk::Device::null() {
            return None;
        }
        // SAFETY: `name` is a NUL-terminated string, `device` a valid device (valid usage).
        let n = unsafe { CStr::from_ptr(name) }.to_bytes();
        // SAFETY: as above.
        let dev = dispatch::device(unsafe { DispatchKey::of(device) })?;
        // SAFETY: forwarding to the next layer's gdpa with the same arguments.
        let below = unsafe { (dev.next_gdpa)(device, name) };
        match table().get(n) {
            Some(&(f, Kind::Instance)) => match n {
                b"vkGetDeviceProcAddr" | b"vkDestroyDevice" => Some(f),
                _ => below,
            },
            Some(&(f, Kind::Device)) => below.map(|_| f),
            Some(&(f, Kind::Track)) if dev.track => below.map(|_| f),
            Some(&(f, Kind::Wsi)) if dev.wsi() => below.map(|_| f),
            Some(&(f, Kind::Fault)) => dev.fault.ext_hook(below.is_some()).then_some(f),
            Some(&(f, Kind::FaultKhr)) if dev.fault.emulated.khr => {
                dev.fault.khr_hook().then_some(f)
            }
            Some(&(_, Kind::FaultKhr)) => below,
            None if dev.track && below.is_some() && is_unseen_command(n) => {
                // A command the layer does not know reaches the application unhooked: no
                // submission of this device can be replayed on the strength of what it saw.
                let name = String::from_utf8_lossy(n).into_owned();
                let mut unseen = lock(&dev.unseen);
                if !unseen.iter().any(|u| *u == name) {
                    unseen.push(Box::leak(format!("unhooked:{name}").into_boxed_str()));
                }
                below
            }
            _ => below,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_the_contract() {
        let t = table();
        for n in [
            "vkQueueSubmit",
            "vkQueueSubmit2KHR",
            "vkWaitForFences",
            "vkGetQueryPoolResults",
            "vkGetDeviceFaultInfoEXT",
            "vkCmdBeginRenderingKHR",
        ] {
            assert!(t.contains_key(n.as_bytes()), "{n}");
        }
    }

    #[test]
    fn every_command_is_hooked_or_free_of_memory_effects() {
        // The registry's vkCmd* commands (as ash 0.38 knows them): each one is hooked, or
        // listed as free of memory effects; none is both.
        let t = table();
        let hooked = cmd::generated_names().len();
        assert!(hooked > 100, "{hooked}");
        for n in cmd::NO_MEMORY {
            assert!(
                !t.contains_key(n.as_bytes()),
                "{n} is hooked and listed as harmless"
            );
            assert!(!is_unseen_command(n.as_bytes()));
        }
        for n in [
            "vkCmdDraw",
            "vkCmdBeginTransformFeedbackEXT",
            "vkCmdTraceRaysKHR",
        ] {
            assert!(!is_unseen_command(n.as_bytes()), "{n}");
        }
        assert!(is_unseen_command(b"vkCmdSomethingFromTheFuture"));
        assert!(!is_unseen_command(b"vkCreateBuffer"));
    }
}
