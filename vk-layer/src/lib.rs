//! `VK_LAYER_AGX_fault`: a Vulkan layer that gives any driver the device-lost contract,
//! `VK_EXT_device_fault` and `VK_KHR_device_fault`, injects GPU faults from a plan
//! (`AGX_FAULT_PLAN`), and replays the innocent victims of a neighbour's fault when they are
//! restartable, as the asahi kernel driver would under its `replay` recovery policy. See
//! `README.md`.
//!
//! Loader interface version 2: the library exports only
//! [`vkNegotiateLoaderLayerInterfaceVersion`], [`vkGetInstanceProcAddr`] and
//! [`vkGetDeviceProcAddr`]; every hook is an internal function handed out through them.
//!
//! Layout: `loader` (the loader's chain structs), `dispatch` (keys, state maps, next-layer
//! tables, panic guard, out-array helper), `proc` (the list of hooks), `instance` and
//! `device` (the contract), `fault` (`VK_EXT_device_fault` and `VK_KHR_device_fault`), `cmd`
//! and `track` (what command buffers access), `spirv`,
//! `plan` (the fault plan and the [`plan::FaultModel`] seam), `submit` (carrying out a
//! decision: batches, queue workers, neighbour replay, scramble), `shadow`, `stats`.

use std::ffi::{c_char, CStr};

use ash::vk;

mod capture;
mod cmd;
mod device;
pub mod dispatch;
pub mod fault;
mod instance;
pub mod loader;
pub mod plan;
mod proc;
pub mod shadow;
pub mod spirv;
mod stats;
pub mod submit;
pub mod track;

/// The layer's name.
pub const LAYER_NAME: &CStr = c"VK_LAYER_AGX_fault";

/// The manifest file name (written next to the library by the build).
pub const MANIFEST_NAME: &str = "VkLayer_agx_fault.json";

/// Loader entry point: negotiates interface version 2.
///
/// # Safety
///
/// `p` must be null or point at a valid `VkNegotiateLayerInterface`.
#[no_mangle]
pub unsafe extern "system" fn vkNegotiateLoaderLayerInterfaceVersion(
    p: *mut loader::VkNegotiateLayerInterface,
) -> vk::Result {
    dispatch::guard(vk::Result::ERROR_INITIALIZATION_FAILED, || {
        if p.is_null() {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        }
        // SAFETY: a valid negotiation struct (caller).
        let s = unsafe { &mut *p };
        if s.s_type != loader::LAYER_NEGOTIATE_INTERFACE_STRUCT
            || s.loader_layer_interface_version < 2
        {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        }
        s.loader_layer_interface_version = 2;
        s.pfn_get_instance_proc_addr = Some(proc::get_instance_proc_addr);
        s.pfn_get_device_proc_addr = Some(proc::get_device_proc_addr);
        s.pfn_get_physical_device_proc_addr = None;
        vk::Result::SUCCESS
    })
}

/// Loader entry point (also used by loaders that look the symbol up directly).
///
/// # Safety
///
/// Valid usage of `vkGetInstanceProcAddr`.
#[no_mangle]
pub unsafe extern "system" fn vkGetInstanceProcAddr(
    instance: vk::Instance,
    name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    // SAFETY: forwarded from the caller.
    unsafe { proc::get_instance_proc_addr(instance, name) }
}

/// Loader entry point.
///
/// # Safety
///
/// Valid usage of `vkGetDeviceProcAddr`.
#[no_mangle]
pub unsafe extern "system" fn vkGetDeviceProcAddr(
    device: vk::Device,
    name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    // SAFETY: forwarded from the caller.
    unsafe { proc::get_device_proc_addr(device, name) }
}
