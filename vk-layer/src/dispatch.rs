//! Dispatch: keys, per-instance and per-device state, the next layer's function tables, the
//! panic guard and the out-array helper.
//!
//! A dispatchable handle (instance, physical device, device, queue, command buffer) points at
//! an object whose first word is the loader's dispatch table pointer; that word is the
//! *dispatch key*. Physical devices share their instance's key; queues and command buffers
//! share their device's. Global maps go from key to state.

use std::collections::HashMap;
use std::collections::HashSet;
use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, Weak};

use ash::vk;
use ash::vk::Handle;

use agx_winsys::vulkan::{DeviceLostState, FaultReport};

use crate::loader::PfnSetDeviceLoaderData;
use crate::plan::FaultModel;
use crate::stats;
use crate::submit::queue::{QueueInfo, Sched};
use crate::track::Tracker;

/// The dispatch key of a dispatchable handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DispatchKey(usize);

impl DispatchKey {
    /// The key of `h`.
    ///
    /// # Safety
    ///
    /// `h` must be a valid dispatchable handle created through the loader (its first word is
    /// the loader's dispatch pointer).
    pub unsafe fn of<H: Handle>(h: H) -> DispatchKey {
        // SAFETY: the caller guarantees `h` points at a live dispatchable object, whose first
        // member is a pointer-sized dispatch pointer.
        DispatchKey(unsafe { *(h.as_raw() as usize as *const usize) })
    }
}

/// Runs `f`, turning a panic into `err` (no panic may unwind into the loader).
pub fn guard<T>(err: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(err)
}

/// Locks a mutex, ignoring poisoning (a panic was already turned into an error).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Loads the first of `names` that `gpa` resolves.
///
/// # Safety
///
/// `gpa` must be a valid proc-addr function for `handle`, and `T` the function pointer type of
/// the named command.
unsafe fn load_any<T: Copy>(
    gpa: &dyn Fn(*const c_char) -> vk::PFN_vkVoidFunction,
    names: &[&CStr],
) -> Option<T> {
    assert_eq!(
        std::mem::size_of::<T>(),
        std::mem::size_of::<unsafe extern "system" fn()>()
    );
    for n in names {
        if let Some(f) = gpa(n.as_ptr()) {
            // SAFETY: `T` is the function pointer type of the command named `n` (caller).
            return Some(unsafe { std::mem::transmute_copy::<unsafe extern "system" fn(), T>(&f) });
        }
    }
    None
}

macro_rules! next_table {
    ($(#[$m:meta])* $name:ident { $($field:ident : $pfn:ident = [$($cmd:literal),+]),* $(,)? }) => {
        $(#[$m])*
        #[allow(dead_code)]
        pub struct $name { $(pub $field: Option<vk::$pfn>,)* }
        impl $name {
            /// Loads every command through `gpa`.
            ///
            /// # Safety
            ///
            /// `gpa` must resolve names for the object the table is for.
            pub unsafe fn load(gpa: &dyn Fn(*const c_char) -> vk::PFN_vkVoidFunction) -> Self {
                // SAFETY: each field's type is the PFN of the commands named beside it.
                unsafe { Self { $($field: load_any(gpa, &[$($cmd),+]),)* } }
            }
        }
    };
}

next_table! {
    /// The next layer's instance-level commands.
    InstanceNext {
        destroy_instance: PFN_vkDestroyInstance = [c"vkDestroyInstance"],
        enumerate_device_extension_properties: PFN_vkEnumerateDeviceExtensionProperties =
            [c"vkEnumerateDeviceExtensionProperties"],
        get_physical_device_features2: PFN_vkGetPhysicalDeviceFeatures2 =
            [c"vkGetPhysicalDeviceFeatures2", c"vkGetPhysicalDeviceFeatures2KHR"],
        get_physical_device_memory_properties: PFN_vkGetPhysicalDeviceMemoryProperties =
            [c"vkGetPhysicalDeviceMemoryProperties"],
        get_physical_device_properties: PFN_vkGetPhysicalDeviceProperties =
            [c"vkGetPhysicalDeviceProperties"],
        get_physical_device_properties2: PFN_vkGetPhysicalDeviceProperties2 =
            [c"vkGetPhysicalDeviceProperties2", c"vkGetPhysicalDeviceProperties2KHR"],
    }
}

next_table! {
    /// The next layer's device-level commands (core names first, then extension aliases).
    DeviceNext {
        destroy_device: PFN_vkDestroyDevice = [c"vkDestroyDevice"],
        get_device_queue: PFN_vkGetDeviceQueue = [c"vkGetDeviceQueue"],
        get_device_queue2: PFN_vkGetDeviceQueue2 = [c"vkGetDeviceQueue2"],
        queue_submit: PFN_vkQueueSubmit = [c"vkQueueSubmit"],
        queue_submit2: PFN_vkQueueSubmit2 = [c"vkQueueSubmit2", c"vkQueueSubmit2KHR"],
        queue_wait_idle: PFN_vkQueueWaitIdle = [c"vkQueueWaitIdle"],
        device_wait_idle: PFN_vkDeviceWaitIdle = [c"vkDeviceWaitIdle"],
        wait_for_fences: PFN_vkWaitForFences = [c"vkWaitForFences"],
        get_fence_status: PFN_vkGetFenceStatus = [c"vkGetFenceStatus"],
        reset_fences: PFN_vkResetFences = [c"vkResetFences"],
        create_fence: PFN_vkCreateFence = [c"vkCreateFence"],
        destroy_fence: PFN_vkDestroyFence = [c"vkDestroyFence"],
        wait_semaphores: PFN_vkWaitSemaphores = [c"vkWaitSemaphores", c"vkWaitSemaphoresKHR"],
        get_semaphore_counter_value: PFN_vkGetSemaphoreCounterValue =
            [c"vkGetSemaphoreCounterValue", c"vkGetSemaphoreCounterValueKHR"],
        get_event_status: PFN_vkGetEventStatus = [c"vkGetEventStatus"],
        get_query_pool_results: PFN_vkGetQueryPoolResults = [c"vkGetQueryPoolResults"],
        queue_present_khr: PFN_vkQueuePresentKHR = [c"vkQueuePresentKHR"],
        acquire_next_image_khr: PFN_vkAcquireNextImageKHR = [c"vkAcquireNextImageKHR"],
        acquire_next_image2_khr: PFN_vkAcquireNextImage2KHR = [c"vkAcquireNextImage2KHR"],
        get_device_fault_info_ext: PFN_vkGetDeviceFaultInfoEXT = [c"vkGetDeviceFaultInfoEXT"],
        allocate_memory: PFN_vkAllocateMemory = [c"vkAllocateMemory"],
        free_memory: PFN_vkFreeMemory = [c"vkFreeMemory"],
        map_memory: PFN_vkMapMemory = [c"vkMapMemory"],
        unmap_memory: PFN_vkUnmapMemory = [c"vkUnmapMemory"],
        flush_mapped_memory_ranges: PFN_vkFlushMappedMemoryRanges = [c"vkFlushMappedMemoryRanges"],
        invalidate_mapped_memory_ranges: PFN_vkInvalidateMappedMemoryRanges =
            [c"vkInvalidateMappedMemoryRanges"],
        create_buffer: PFN_vkCreateBuffer = [c"vkCreateBuffer"],
        destroy_buffer: PFN_vkDestroyBuffer = [c"vkDestroyBuffer"],
        bind_buffer_memory: PFN_vkBindBufferMemory = [c"vkBindBufferMemory"],
        bind_buffer_memory2: PFN_vkBindBufferMemory2 =
            [c"vkBindBufferMemory2", c"vkBindBufferMemory2KHR"],
        get_buffer_memory_requirements: PFN_vkGetBufferMemoryRequirements =
            [c"vkGetBufferMemoryRequirements"],
        create_image: PFN_vkCreateImage = [c"vkCreateImage"],
        destroy_image: PFN_vkDestroyImage = [c"vkDestroyImage"],
        bind_image_memory: PFN_vkBindImageMemory = [c"vkBindImageMemory"],
        bind_image_memory2: PFN_vkBindImageMemory2 =
            [c"vkBindImageMemory2", c"vkBindImageMemory2KHR"],
        get_image_memory_requirements: PFN_vkGetImageMemoryRequirements =
            [c"vkGetImageMemoryRequirements"],
        create_image_view: PFN_vkCreateImageView = [c"vkCreateImageView"],
        destroy_image_view: PFN_vkDestroyImageView = [c"vkDestroyImageView"],
        create_buffer_view: PFN_vkCreateBufferView = [c"vkCreateBufferView"],
        destroy_buffer_view: PFN_vkDestroyBufferView = [c"vkDestroyBufferView"],
        create_render_pass: PFN_vkCreateRenderPass = [c"vkCreateRenderPass"],
        create_render_pass2: PFN_vkCreateRenderPass2 =
            [c"vkCreateRenderPass2", c"vkCreateRenderPass2KHR"],
        destroy_render_pass: PFN_vkDestroyRenderPass = [c"vkDestroyRenderPass"],
        create_framebuffer: PFN_vkCreateFramebuffer = [c"vkCreateFramebuffer"],
        destroy_framebuffer: PFN_vkDestroyFramebuffer = [c"vkDestroyFramebuffer"],
        create_shader_module: PFN_vkCreateShaderModule = [c"vkCreateShaderModule"],
        destroy_shader_module: PFN_vkDestroyShaderModule = [c"vkDestroyShaderModule"],
        create_graphics_pipelines: PFN_vkCreateGraphicsPipelines = [c"vkCreateGraphicsPipelines"],
        create_compute_pipelines: PFN_vkCreateComputePipelines = [c"vkCreateComputePipelines"],
        destroy_pipeline: PFN_vkDestroyPipeline = [c"vkDestroyPipeline"],
        allocate_descriptor_sets: PFN_vkAllocateDescriptorSets = [c"vkAllocateDescriptorSets"],
        update_descriptor_sets: PFN_vkUpdateDescriptorSets = [c"vkUpdateDescriptorSets"],
        update_descriptor_set_with_template: PFN_vkUpdateDescriptorSetWithTemplate =
            [c"vkUpdateDescriptorSetWithTemplate", c"vkUpdateDescriptorSetWithTemplateKHR"],
        create_command_pool: PFN_vkCreateCommandPool = [c"vkCreateCommandPool"],
        destroy_command_pool: PFN_vkDestroyCommandPool = [c"vkDestroyCommandPool"],
        allocate_command_buffers: PFN_vkAllocateCommandBuffers = [c"vkAllocateCommandBuffers"],
        free_command_buffers: PFN_vkFreeCommandBuffers = [c"vkFreeCommandBuffers"],
        begin_command_buffer: PFN_vkBeginCommandBuffer = [c"vkBeginCommandBuffer"],
        end_command_buffer: PFN_vkEndCommandBuffer = [c"vkEndCommandBuffer"],
        reset_command_buffer: PFN_vkResetCommandBuffer = [c"vkResetCommandBuffer"],
        cmd_begin_render_pass: PFN_vkCmdBeginRenderPass = [c"vkCmdBeginRenderPass"],
        cmd_begin_render_pass2: PFN_vkCmdBeginRenderPass2 =
            [c"vkCmdBeginRenderPass2", c"vkCmdBeginRenderPass2KHR"],
        cmd_next_subpass: PFN_vkCmdNextSubpass = [c"vkCmdNextSubpass"],
        cmd_next_subpass2: PFN_vkCmdNextSubpass2 = [c"vkCmdNextSubpass2", c"vkCmdNextSubpass2KHR"],
        cmd_end_render_pass: PFN_vkCmdEndRenderPass = [c"vkCmdEndRenderPass"],
        cmd_end_render_pass2: PFN_vkCmdEndRenderPass2 =
            [c"vkCmdEndRenderPass2", c"vkCmdEndRenderPass2KHR"],
        cmd_begin_rendering: PFN_vkCmdBeginRendering =
            [c"vkCmdBeginRendering", c"vkCmdBeginRenderingKHR"],
        cmd_end_rendering: PFN_vkCmdEndRendering = [c"vkCmdEndRendering", c"vkCmdEndRenderingKHR"],
        cmd_bind_pipeline: PFN_vkCmdBindPipeline = [c"vkCmdBindPipeline"],
        cmd_bind_descriptor_sets: PFN_vkCmdBindDescriptorSets = [c"vkCmdBindDescriptorSets"],
        cmd_push_descriptor_set_khr: PFN_vkCmdPushDescriptorSetKHR = [c"vkCmdPushDescriptorSetKHR"],
        cmd_bind_vertex_buffers: PFN_vkCmdBindVertexBuffers = [c"vkCmdBindVertexBuffers"],
        cmd_bind_index_buffer: PFN_vkCmdBindIndexBuffer = [c"vkCmdBindIndexBuffer"],
        cmd_draw: PFN_vkCmdDraw = [c"vkCmdDraw"],
        cmd_draw_indexed: PFN_vkCmdDrawIndexed = [c"vkCmdDrawIndexed"],
        cmd_draw_indirect: PFN_vkCmdDrawIndirect = [c"vkCmdDrawIndirect"],
        cmd_draw_indexed_indirect: PFN_vkCmdDrawIndexedIndirect = [c"vkCmdDrawIndexedIndirect"],
        cmd_draw_indirect_count: PFN_vkCmdDrawIndirectCount =
            [c"vkCmdDrawIndirectCount", c"vkCmdDrawIndirectCountKHR"],
        cmd_draw_indexed_indirect_count: PFN_vkCmdDrawIndexedIndirectCount =
            [c"vkCmdDrawIndexedIndirectCount", c"vkCmdDrawIndexedIndirectCountKHR"],
        cmd_dispatch: PFN_vkCmdDispatch = [c"vkCmdDispatch"],
        cmd_dispatch_indirect: PFN_vkCmdDispatchIndirect = [c"vkCmdDispatchIndirect"],
        cmd_copy_buffer: PFN_vkCmdCopyBuffer = [c"vkCmdCopyBuffer"],
        cmd_copy_image: PFN_vkCmdCopyImage = [c"vkCmdCopyImage"],
        cmd_blit_image: PFN_vkCmdBlitImage = [c"vkCmdBlitImage"],
        cmd_copy_buffer_to_image: PFN_vkCmdCopyBufferToImage = [c"vkCmdCopyBufferToImage"],
        cmd_copy_image_to_buffer: PFN_vkCmdCopyImageToBuffer = [c"vkCmdCopyImageToBuffer"],
        cmd_update_buffer: PFN_vkCmdUpdateBuffer = [c"vkCmdUpdateBuffer"],
        cmd_fill_buffer: PFN_vkCmdFillBuffer = [c"vkCmdFillBuffer"],
        cmd_clear_color_image: PFN_vkCmdClearColorImage = [c"vkCmdClearColorImage"],
        cmd_clear_depth_stencil_image: PFN_vkCmdClearDepthStencilImage =
            [c"vkCmdClearDepthStencilImage"],
        cmd_resolve_image: PFN_vkCmdResolveImage = [c"vkCmdResolveImage"],
        cmd_copy_buffer2: PFN_vkCmdCopyBuffer2 = [c"vkCmdCopyBuffer2", c"vkCmdCopyBuffer2KHR"],
        cmd_copy_image2: PFN_vkCmdCopyImage2 = [c"vkCmdCopyImage2", c"vkCmdCopyImage2KHR"],
        cmd_copy_buffer_to_image2: PFN_vkCmdCopyBufferToImage2 =
            [c"vkCmdCopyBufferToImage2", c"vkCmdCopyBufferToImage2KHR"],
        cmd_copy_image_to_buffer2: PFN_vkCmdCopyImageToBuffer2 =
            [c"vkCmdCopyImageToBuffer2", c"vkCmdCopyImageToBuffer2KHR"],
        cmd_blit_image2: PFN_vkCmdBlitImage2 = [c"vkCmdBlitImage2", c"vkCmdBlitImage2KHR"],
        cmd_resolve_image2: PFN_vkCmdResolveImage2 = [c"vkCmdResolveImage2", c"vkCmdResolveImage2KHR"],
        cmd_begin_query: PFN_vkCmdBeginQuery = [c"vkCmdBeginQuery"],
        cmd_reset_query_pool: PFN_vkCmdResetQueryPool = [c"vkCmdResetQueryPool"],
        cmd_write_timestamp: PFN_vkCmdWriteTimestamp = [c"vkCmdWriteTimestamp"],
        cmd_write_timestamp2: PFN_vkCmdWriteTimestamp2 =
            [c"vkCmdWriteTimestamp2", c"vkCmdWriteTimestamp2KHR"],
        cmd_copy_query_pool_results: PFN_vkCmdCopyQueryPoolResults = [c"vkCmdCopyQueryPoolResults"],
        cmd_execute_commands: PFN_vkCmdExecuteCommands = [c"vkCmdExecuteCommands"],
        cmd_push_descriptor_set_with_template_khr: PFN_vkCmdPushDescriptorSetWithTemplateKHR =
            [c"vkCmdPushDescriptorSetWithTemplateKHR"],
        cmd_bind_vertex_buffers2: PFN_vkCmdBindVertexBuffers2 =
            [c"vkCmdBindVertexBuffers2", c"vkCmdBindVertexBuffers2EXT"],
        cmd_draw_multi_ext: PFN_vkCmdDrawMultiEXT = [c"vkCmdDrawMultiEXT"],
        cmd_draw_multi_indexed_ext: PFN_vkCmdDrawMultiIndexedEXT = [c"vkCmdDrawMultiIndexedEXT"],
        cmd_dispatch_base: PFN_vkCmdDispatchBase = [c"vkCmdDispatchBase", c"vkCmdDispatchBaseKHR"],
        cmd_clear_attachments: PFN_vkCmdClearAttachments = [c"vkCmdClearAttachments"],
        cmd_begin_conditional_rendering_ext: PFN_vkCmdBeginConditionalRenderingEXT =
            [c"vkCmdBeginConditionalRenderingEXT"],
        cmd_begin_query_indexed_ext: PFN_vkCmdBeginQueryIndexedEXT = [c"vkCmdBeginQueryIndexedEXT"],
        cmd_set_event: PFN_vkCmdSetEvent = [c"vkCmdSetEvent"],
        cmd_set_event2: PFN_vkCmdSetEvent2 = [c"vkCmdSetEvent2", c"vkCmdSetEvent2KHR"],
        cmd_reset_event: PFN_vkCmdResetEvent = [c"vkCmdResetEvent"],
        cmd_reset_event2: PFN_vkCmdResetEvent2 = [c"vkCmdResetEvent2", c"vkCmdResetEvent2KHR"],
        cmd_wait_events: PFN_vkCmdWaitEvents = [c"vkCmdWaitEvents"],
        cmd_wait_events2: PFN_vkCmdWaitEvents2 = [c"vkCmdWaitEvents2", c"vkCmdWaitEvents2KHR"],
        cmd_pipeline_barrier: PFN_vkCmdPipelineBarrier = [c"vkCmdPipelineBarrier"],
        queue_bind_sparse: PFN_vkQueueBindSparse = [c"vkQueueBindSparse"],
        create_swapchain_khr: PFN_vkCreateSwapchainKHR = [c"vkCreateSwapchainKHR"],
        destroy_swapchain_khr: PFN_vkDestroySwapchainKHR = [c"vkDestroySwapchainKHR"],
        get_swapchain_images_khr: PFN_vkGetSwapchainImagesKHR = [c"vkGetSwapchainImagesKHR"],
        create_semaphore: PFN_vkCreateSemaphore = [c"vkCreateSemaphore"],
        destroy_semaphore: PFN_vkDestroySemaphore = [c"vkDestroySemaphore"],
        create_descriptor_update_template: PFN_vkCreateDescriptorUpdateTemplate =
            [c"vkCreateDescriptorUpdateTemplate", c"vkCreateDescriptorUpdateTemplateKHR"],
        destroy_descriptor_update_template: PFN_vkDestroyDescriptorUpdateTemplate =
            [c"vkDestroyDescriptorUpdateTemplate", c"vkDestroyDescriptorUpdateTemplateKHR"],
    }
}

/// Calls the next layer's `$f` of `$state` (a missing command is a panic, which the guard of
/// the entry point turns into an error: the layer only hands out hooks whose next command
/// exists).
macro_rules! next {
    ($state:expr, $f:ident) => {
        $state
            .next
            .$f
            .expect(concat!("next layer lacks ", stringify!($f)))
    };
}
pub(crate) use next;

/// What the application said about itself at `vkCreateInstance`.
#[derive(Clone, Debug, Default)]
pub struct AppInfo {
    pub application_name: String,
    pub application_version: u32,
    pub engine_name: String,
    pub engine_version: u32,
    pub api_version: u32,
}

/// Per-instance state.
pub struct InstanceState {
    pub handle: vk::Instance,
    pub next_gipa: vk::PFN_vkGetInstanceProcAddr,
    pub next: InstanceNext,
    /// Physical device (raw) -> the fault extensions the layer implements on it.
    pub fault: Mutex<HashMap<u64, crate::fault::Emulated>>,
    /// `VkApplicationInfo` (for the vendor binary of `VK_KHR_device_fault`).
    pub app: AppInfo,
}

/// Per-device state.
pub struct DeviceState {
    pub handle: vk::Device,
    pub next_gdpa: vk::PFN_vkGetDeviceProcAddr,
    pub next: DeviceNext,
    pub set_loader_data: Option<PfnSetDeviceLoaderData>,
    pub lost: DeviceLostState,
    /// `VK_EXT_device_fault` / `VK_KHR_device_fault`: which the layer implements, which the
    /// application enabled, the KHR report log.
    pub fault: crate::fault::DeviceFault,
    pub model: FaultModel,
    /// Submissions so far (numbering of the fault plan).
    pub submits: AtomicU64,
    /// Whether command buffers are tracked (the plan has neighbour faults).
    pub track: bool,
    pub tracker: Mutex<Tracker>,
    /// Queue (raw) -> the layer's view of it.
    pub queues: Mutex<HashMap<u64, Arc<QueueInfo>>>,
    /// Held submissions of every queue, and what they hold (see `submit::queue`).
    pub sched: Mutex<Sched>,
    pub sched_cv: Condvar,
    /// Timeline semaphores (raw): their waits may precede their signals below.
    pub timelines: Mutex<HashSet<u64>>,
    /// `vkCmd*` commands the next layer offers that the layer handed out without a hook
    /// (unknown to it): every submission of the device is unknown, with these names.
    pub unseen: Mutex<Vec<&'static str>>,
    /// The next layer's functions of the generated `vkCmd*` hooks, by index.
    pub generic: Vec<vk::PFN_vkVoidFunction>,
    pub mem_props: vk::PhysicalDeviceMemoryProperties,
    pub phys: vk::PhysicalDevice,
    /// The instance's `vkGetPhysicalDeviceSurfaceCapabilitiesKHR` (swapchain usage).
    pub surface_capabilities: Option<vk::PFN_vkGetPhysicalDeviceSurfaceCapabilitiesKHR>,
    /// The simulated GPU shadowing faulted submissions (made on first use).
    pub shadow: Mutex<Option<crate::shadow::Shadow>>,
    /// `AGX_FAULT_FRAMES`: hashes of the presented images.
    pub capture: Option<Mutex<crate::capture::Capture>>,
    /// After a loss, the layer stopped waiting for the work below (see
    /// `device::LOST_DRAIN_GRACE`).
    pub lost_gave_up: std::sync::atomic::AtomicBool,
    /// When the device became lost.
    pub lost_at: Mutex<Option<std::time::Instant>>,
    /// This state's own `Arc` (for the queue workers).
    pub me: Weak<DeviceState>,
}

impl DeviceState {
    /// The outcome of submission `n` as the simulated GPU's recovery model decides it under
    /// `fault`. `None` if the shadow device cannot run (reported on stderr).
    pub fn shadow_outcome(
        &self,
        n: u64,
        fault: crate::shadow::ShadowFault,
        restartable: bool,
    ) -> Option<agx_winsys::JobOutcome> {
        let mut shadow = lock(&self.shadow);
        if shadow.is_none() {
            match crate::shadow::Shadow::new() {
                Ok(s) => *shadow = Some(s),
                Err(e) => eprintln!("VK_LAYER_AGX_fault: no shadow GPU: {e}"),
            }
        }
        match shadow.as_mut()?.run(n, fault, restartable) {
            Ok(o) => Some(o),
            Err(e) => {
                eprintln!("VK_LAYER_AGX_fault: shadow job {n} failed: {e}");
                None
            }
        }
    }

    /// Whether swapchains are followed (tracking or frame capture).
    pub fn wsi(&self) -> bool {
        self.track || self.capture.is_some()
    }

    /// Marks the device lost with `report` (counted once).
    pub fn set_lost(&self, report: FaultReport) {
        let description = report.description.clone();
        if self.lost.set_lost(report.clone()) {
            self.fault.lost(&report);
            *lock(&self.lost_at) = Some(std::time::Instant::now());
            // Once, as Mesa's vk_device_set_lost does.
            eprintln!("VK_LAYER_AGX_fault: device lost: {description}");
            stats::device_lost();
            stats::write_file_with(self.submits.load(Ordering::Relaxed));
        }
    }

    /// `r` from a call below that may report a loss: a `VK_ERROR_DEVICE_LOST` from the driver
    /// makes the device lost; a lost device answers `VK_ERROR_DEVICE_LOST`.
    pub fn check(&self, r: vk::Result, call: &str) -> vk::Result {
        if r == vk::Result::ERROR_DEVICE_LOST && !self.lost.is_lost() {
            let n = self.submits.load(Ordering::Relaxed);
            self.set_lost(FaultReport::reported_below(call, n));
        }
        vk::Result::from_raw(self.lost.sticky(r.as_raw()))
    }
}

static INSTANCES: RwLock<Option<HashMap<DispatchKey, Arc<InstanceState>>>> = RwLock::new(None);
static DEVICES: RwLock<Option<HashMap<DispatchKey, Arc<DeviceState>>>> = RwLock::new(None);

/// The state of the instance with key `k`.
pub fn instance(k: DispatchKey) -> Option<Arc<InstanceState>> {
    let g = INSTANCES.read().unwrap_or_else(PoisonError::into_inner);
    g.as_ref()?.get(&k).cloned()
}

/// Lock-free lookup slots for the first devices: (key, state pointer). The owning `Arc` stays
/// in `DEVICES`; a slot is cleared before its state is dropped.
const SLOTS: usize = 8;
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SLOT: (AtomicUsize, AtomicPtr<DeviceState>) =
    (AtomicUsize::new(0), AtomicPtr::new(std::ptr::null_mut()));
static DEVICE_SLOTS: [(AtomicUsize, AtomicPtr<DeviceState>); SLOTS] = [EMPTY_SLOT; SLOTS];

/// A device's state, borrowed for the duration of one Vulkan call.
pub enum DeviceRef {
    /// From a lookup slot.
    Slot(&'static DeviceState),
    /// From the map (more devices than slots).
    Map(Arc<DeviceState>),
}

impl std::ops::Deref for DeviceRef {
    type Target = DeviceState;
    fn deref(&self) -> &DeviceState {
        match self {
            DeviceRef::Slot(d) => d,
            DeviceRef::Map(d) => d,
        }
    }
}

/// The state of the device with key `k`.
///
/// The hot path (every hooked device-level call) is a scan of a few atomics, no lock.
pub fn device(k: DispatchKey) -> Option<DeviceRef> {
    for (key, ptr) in &DEVICE_SLOTS {
        if key.load(Ordering::Acquire) == k.0 {
            let p = ptr.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: the pointer comes from the `Arc` held in `DEVICES`, which is dropped
                // only after the slot is cleared, in vkDestroyDevice. Vulkan requires that no
                // other call on the device (or its queues and command buffers) runs
                // concurrently with vkDestroyDevice or after it, so the state outlives every
                // call that found it here.
                return Some(DeviceRef::Slot(unsafe { &*p }));
            }
        }
    }
    let g = DEVICES.read().unwrap_or_else(PoisonError::into_inner);
    g.as_ref()?.get(&k).cloned().map(DeviceRef::Map)
}

pub fn insert_instance(k: DispatchKey, s: InstanceState) {
    let mut g = INSTANCES.write().unwrap_or_else(PoisonError::into_inner);
    g.get_or_insert_with(HashMap::new).insert(k, Arc::new(s));
}

pub fn remove_instance(k: DispatchKey) -> Option<Arc<InstanceState>> {
    let mut g = INSTANCES.write().unwrap_or_else(PoisonError::into_inner);
    g.as_mut()?.remove(&k)
}

pub fn insert_device(k: DispatchKey, s: DeviceState) {
    let mut g = DEVICES.write().unwrap_or_else(PoisonError::into_inner);
    let s = Arc::new_cyclic(|me| DeviceState {
        me: me.clone(),
        ..s
    });
    let p = Arc::as_ptr(&s) as *mut DeviceState;
    g.get_or_insert_with(HashMap::new).insert(k, s);
    // Under the write lock: slots change only here and in `remove_device`.
    if let Some((key, ptr)) = DEVICE_SLOTS
        .iter()
        .find(|(key, _)| key.load(Ordering::Acquire) == 0)
    {
        ptr.store(p, Ordering::Release);
        key.store(k.0, Ordering::Release);
    }
}

pub fn remove_device(k: DispatchKey) -> Option<Arc<DeviceState>> {
    let mut g = DEVICES.write().unwrap_or_else(PoisonError::into_inner);
    for (key, ptr) in &DEVICE_SLOTS {
        if key.load(Ordering::Acquire) == k.0 {
            key.store(0, Ordering::Release);
            ptr.store(std::ptr::null_mut(), Ordering::Release);
        }
    }
    g.as_mut()?.remove(&k)
}

/// The count / `VK_INCOMPLETE` out-array idiom: with `out` null, stores the number of `items`
/// in `*count`; otherwise copies `min(*count, items.len())` items, stores that number, and
/// returns `VK_INCOMPLETE` when some did not fit.
///
/// # Safety
///
/// `count` must be valid for reads and writes; when `out` is not null it must be valid for
/// writing `*count` elements.
pub unsafe fn fill_out_array<T: Copy>(count: *mut u32, out: *mut T, items: &[T]) -> vk::Result {
    if count.is_null() {
        return vk::Result::ERROR_UNKNOWN;
    }
    let total = u32::try_from(items.len()).unwrap_or(u32::MAX);
    if out.is_null() {
        // SAFETY: `count` is valid for writes (caller).
        unsafe { *count = total };
        return vk::Result::SUCCESS;
    }
    // SAFETY: `count` is valid for reads (caller).
    let room = unsafe { *count };
    let n = room.min(total);
    for (i, item) in items.iter().take(n as usize).enumerate() {
        // SAFETY: `out` has room for `room >= n > i` elements (caller).
        unsafe { out.add(i).write(*item) };
    }
    // SAFETY: as above.
    unsafe { *count = n };
    if n < total {
        vk::Result::INCOMPLETE
    } else {
        vk::Result::SUCCESS
    }
}

/// Iterates a `pNext` chain.
///
/// # Safety
///
/// `p` must be null or the head of a valid chain of Vulkan structures.
pub unsafe fn chain(p: *const c_void) -> impl Iterator<Item = *mut vk::BaseOutStructure<'static>> {
    let mut cur = p as *mut vk::BaseOutStructure<'static>;
    std::iter::from_fn(move || {
        if cur.is_null() {
            return None;
        }
        let here = cur;
        // SAFETY: `cur` is a member of a valid chain (caller), so it starts with sType/pNext.
        cur = unsafe { (*cur).p_next };
        Some(here)
    })
}

/// A slice from a Vulkan (pointer, count) pair; empty when null.
///
/// # Safety
///
/// When `p` is not null it must point at `n` valid elements that outlive the returned slice.
pub unsafe fn slice<'a, T>(p: *const T, n: u32) -> &'a [T] {
    if p.is_null() || n == 0 {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(p, n as usize) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_array() {
        let items = [1u32, 2, 3];
        let mut n = 0u32;
        // SAFETY: valid pointers to local storage.
        unsafe {
            assert_eq!(
                fill_out_array(&mut n, std::ptr::null_mut(), &items),
                vk::Result::SUCCESS
            );
            assert_eq!(n, 3);
            let mut out = [0u32; 2];
            n = 2;
            assert_eq!(
                fill_out_array(&mut n, out.as_mut_ptr(), &items),
                vk::Result::INCOMPLETE
            );
            assert_eq!((n, out), (2, [1, 2]));
            let mut out = [0u32; 4];
            n = 4;
            assert_eq!(
                fill_out_array(&mut n, out.as_mut_ptr(), &items),
                vk::Result::SUCCESS
            );
            assert_eq!((n, out), (3, [1, 2, 3, 0]));
        }
    }

    #[test]
    fn guard_catches_panics() {
        let r = guard(vk::Result::ERROR_UNKNOWN, || panic!("boom"));
        assert_eq!(r, vk::Result::ERROR_UNKNOWN);
        assert_eq!(guard(1, || 2), 2);
    }
}
