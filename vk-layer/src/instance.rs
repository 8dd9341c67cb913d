//! Instance-level hooks: instance and device creation (walking the loader's chain structs),
//! and the advertisement of `VK_EXT_device_fault` on physical devices whose driver lacks it.

use std::collections::HashMap;
use std::ffi::{c_char, CStr};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, OnceLock};

use ash::vk;
use ash::vk::Handle;

use crate::dispatch::{
    self, chain, fill_out_array, guard, insert_device, insert_instance, lock, slice, DeviceNext,
    DeviceState, DispatchKey, InstanceNext, InstanceState,
};
use crate::loader::{
    VkLayerDeviceCreateInfo, VkLayerInstanceCreateInfo, VK_LAYER_LINK_INFO, VK_LOADER_DATA_CALLBACK,
};
use crate::plan::{FaultModel, Plan};
use crate::track::{Tracker, Weaken};
use crate::LAYER_NAME;

/// `VK_EXT_device_fault`.
pub const FAULT_EXT: &CStr = c"VK_EXT_device_fault";
/// The spec version of `VK_EXT_device_fault` the layer implements.
pub const FAULT_EXT_SPEC_VERSION: u32 = 2;

/// The process's fault plan, parsed once from `AGX_FAULT_PLAN`. A bad plan is reported on
/// stderr and replaced by the empty plan (no injection).
pub fn plan() -> &'static Plan {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    PLAN.get_or_init(|| {
        let s = std::env::var("AGX_FAULT_PLAN").unwrap_or_default();
        Plan::parse(&s).unwrap_or_else(|e| {
            eprintln!(
                "VK_LAYER_AGX_fault: AGX_FAULT_PLAN={s:?} rejected: {e}; no fault will be injected"
            );
            Plan::default()
        })
    })
}

/// The tracker weakening of `AGX_FAULT_WEAKEN` (a test hook; a bad value is reported and
/// ignored).
fn weaken() -> Weaken {
    let s = std::env::var("AGX_FAULT_WEAKEN").unwrap_or_default();
    Weaken::parse(&s).unwrap_or_else(|e| {
        eprintln!("VK_LAYER_AGX_fault: AGX_FAULT_WEAKEN={s:?} rejected: {e}");
        Weaken::default()
    })
}

fn fault_ext_properties() -> vk::ExtensionProperties {
    let mut p = vk::ExtensionProperties {
        spec_version: FAULT_EXT_SPEC_VERSION,
        ..Default::default()
    };
    for (d, s) in p.extension_name.iter_mut().zip(FAULT_EXT.to_bytes()) {
        *d = *s as c_char;
    }
    p
}

fn name_is(a: &[c_char], b: &CStr) -> bool {
    let bytes: Vec<u8> = a
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    bytes == b.to_bytes()
}

/// `vkCreateInstance`.
pub unsafe extern "system" fn create_instance(
    ci: *const vk::InstanceCreateInfo<'_>,
    alloc: *const vk::AllocationCallbacks<'_>,
    out: *mut vk::Instance,
) -> vk::Result {
    guard(vk::Result::ERROR_INITIALIZATION_FAILED, || {
        let _ = plan();
        // SAFETY: `ci` is a valid create info (valid usage), whose chain holds the loader's
        // VkLayerInstanceCreateInfo structs; advancing `pLayerInfo` is the loader protocol.
        unsafe {
            let link_info = chain((*ci).p_next)
                .map(|s| s as *mut VkLayerInstanceCreateInfo)
                .find(|&s| {
                    (*s).s_type == vk::StructureType::LOADER_INSTANCE_CREATE_INFO
                        && (*s).function == VK_LAYER_LINK_INFO
                });
            let Some(link_info) = link_info else {
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            };
            let link = (*link_info).u.p_layer_info;
            if link.is_null() {
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            }
            let next_gipa = (*link).pfn_next_get_instance_proc_addr;
            (*link_info).u.p_layer_info = (*link).p_next;
            let Some(create) = next_gipa(vk::Instance::null(), c"vkCreateInstance".as_ptr()) else {
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            };
            let create: vk::PFN_vkCreateInstance = std::mem::transmute(create);
            let r = create(ci, alloc, out);
            if r != vk::Result::SUCCESS {
                return r;
            }
            let inst = *out;
            let next = InstanceNext::load(&|n| next_gipa(inst, n));
            insert_instance(
                DispatchKey::of(inst),
                InstanceState {
                    handle: inst,
                    next_gipa,
                    next,
                    native_fault: Mutex::new(HashMap::new()),
                },
            );
            vk::Result::SUCCESS
        }
    })
}

/// `vkDestroyInstance`.
pub unsafe extern "system" fn destroy_instance(
    instance: vk::Instance,
    alloc: *const vk::AllocationCallbacks<'_>,
) {
    guard((), || {
        if instance.is_null() {
            return;
        }
        // SAFETY: `instance` is a valid instance (valid usage).
        let Some(st) = dispatch::remove_instance(unsafe { DispatchKey::of(instance) }) else {
            return;
        };
        if let Some(f) = st.next.destroy_instance {
            // SAFETY: the application's arguments, forwarded.
            unsafe { f(instance, alloc) };
        }
    })
}

/// The driver's device extensions of `phys`.
///
/// # Safety
///
/// `phys` must be a valid physical device of `inst`.
unsafe fn driver_extensions(
    inst: &InstanceState,
    phys: vk::PhysicalDevice,
) -> Result<Vec<vk::ExtensionProperties>, vk::Result> {
    let f = inst
        .next
        .enumerate_device_extension_properties
        .ok_or(vk::Result::ERROR_INITIALIZATION_FAILED)?;
    loop {
        let mut n = 0u32;
        // SAFETY: the two-call idiom with valid pointers.
        let r = unsafe { f(phys, std::ptr::null(), &mut n, std::ptr::null_mut()) };
        if r != vk::Result::SUCCESS {
            return Err(r);
        }
        let mut v = vec![vk::ExtensionProperties::default(); n as usize];
        // SAFETY: `v` has room for `n` elements.
        let r = unsafe { f(phys, std::ptr::null(), &mut n, v.as_mut_ptr()) };
        if r == vk::Result::INCOMPLETE {
            continue;
        }
        if r != vk::Result::SUCCESS {
            return Err(r);
        }
        v.truncate(n as usize);
        return Ok(v);
    }
}

/// Whether the driver of `phys` implements VK_EXT_device_fault itself (cached).
///
/// # Safety
///
/// `phys` must be a valid physical device of `inst`.
unsafe fn native_fault(inst: &InstanceState, phys: vk::PhysicalDevice) -> bool {
    if let Some(&b) = lock(&inst.native_fault).get(&phys.as_raw()) {
        return b;
    }
    // SAFETY: forwarded from the caller.
    let native = unsafe { driver_extensions(inst, phys) }
        .map(|v| v.iter().any(|e| name_is(&e.extension_name, FAULT_EXT)))
        .unwrap_or(false);
    lock(&inst.native_fault).insert(phys.as_raw(), native);
    native
}

/// `vkEnumerateDeviceExtensionProperties`: adds VK_EXT_device_fault.
pub unsafe extern "system" fn enumerate_device_extension_properties(
    phys: vk::PhysicalDevice,
    layer: *const c_char,
    count: *mut u32,
    props: *mut vk::ExtensionProperties,
) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: `phys` is valid (valid usage); physical devices share the instance's key.
        let Some(inst) = dispatch::instance(unsafe { DispatchKey::of(phys) }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: `layer` is null or a NUL-terminated string; `count`/`props` follow the
        // out-array rules (valid usage).
        unsafe {
            if !layer.is_null() {
                if CStr::from_ptr(layer) == LAYER_NAME {
                    return fill_out_array(count, props, &[fault_ext_properties()]);
                }
                return match inst.next.enumerate_device_extension_properties {
                    Some(f) => f(phys, layer, count, props),
                    None => vk::Result::ERROR_LAYER_NOT_PRESENT,
                };
            }
            let mut v = match driver_extensions(&inst, phys) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let native = v.iter().any(|e| name_is(&e.extension_name, FAULT_EXT));
            lock(&inst.native_fault).insert(phys.as_raw(), native);
            if !native {
                v.push(fault_ext_properties());
            }
            fill_out_array(count, props, &v)
        }
    })
}

/// `vkGetPhysicalDeviceFeatures2` (and the KHR alias): fills `VkPhysicalDeviceFaultFeaturesEXT`.
pub unsafe extern "system" fn get_physical_device_features2(
    phys: vk::PhysicalDevice,
    features: *mut vk::PhysicalDeviceFeatures2<'_>,
) {
    guard((), || {
        // SAFETY: `phys` is valid (valid usage).
        let Some(inst) = dispatch::instance(unsafe { DispatchKey::of(phys) }) else {
            return;
        };
        let Some(f) = inst.next.get_physical_device_features2 else {
            return;
        };
        // SAFETY: forwarded; then `features` heads a valid chain of output structs.
        unsafe {
            f(phys, features);
            if native_fault(&inst, phys) {
                return;
            }
            for s in chain(features as *const _) {
                if (*s).s_type == vk::StructureType::PHYSICAL_DEVICE_FAULT_FEATURES_EXT {
                    let ff = s as *mut vk::PhysicalDeviceFaultFeaturesEXT<'_>;
                    (*ff).device_fault = vk::TRUE;
                    (*ff).device_fault_vendor_binary = vk::FALSE;
                }
            }
        }
    })
}

/// `vkCreateDevice`: strips VK_EXT_device_fault (name and feature struct) when the driver
/// lacks it, calls down, restores the application's structures.
pub unsafe extern "system" fn create_device(
    phys: vk::PhysicalDevice,
    ci: *const vk::DeviceCreateInfo<'_>,
    alloc: *const vk::AllocationCallbacks<'_>,
    out: *mut vk::Device,
) -> vk::Result {
    guard(vk::Result::ERROR_INITIALIZATION_FAILED, || {
        // SAFETY: `phys` is valid (valid usage).
        let Some(inst) = dispatch::instance(unsafe { DispatchKey::of(phys) }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: `ci` is a valid create info whose chain holds the loader's
        // VkLayerDeviceCreateInfo structs. The layer temporarily edits the application's
        // (const) structures, as the loader protocol does for `pLayerInfo`, and restores them
        // before returning; nothing else reads them meanwhile (the call is synchronous).
        unsafe {
            let ci_mut = ci as *mut vk::DeviceCreateInfo<'_>;
            let mut link_info = None;
            let mut set_loader_data = None;
            for s in chain((*ci).p_next) {
                if (*s).s_type != vk::StructureType::LOADER_DEVICE_CREATE_INFO {
                    continue;
                }
                let s = s as *mut VkLayerDeviceCreateInfo;
                match (*s).function {
                    VK_LAYER_LINK_INFO if link_info.is_none() => link_info = Some(s),
                    VK_LOADER_DATA_CALLBACK => set_loader_data = (*s).u.pfn_set_device_loader_data,
                    _ => {}
                }
            }
            let Some(link_info) = link_info else {
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            };
            let link = (*link_info).u.p_layer_info;
            if link.is_null() {
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            }
            let next_gipa = (*link).pfn_next_get_instance_proc_addr;
            let next_gdpa = (*link).pfn_next_get_device_proc_addr;
            (*link_info).u.p_layer_info = (*link).p_next;
            let Some(create) = next_gipa(inst.handle, c"vkCreateDevice".as_ptr()) else {
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            };
            let create: vk::PFN_vkCreateDevice = std::mem::transmute(create);

            let native = native_fault(&inst, phys);
            let names = slice(
                (*ci).pp_enabled_extension_names,
                (*ci).enabled_extension_count,
            );
            let fault_enabled = names.iter().any(|&n| CStr::from_ptr(n) == FAULT_EXT);
            let saved_names = (
                (*ci).pp_enabled_extension_names,
                (*ci).enabled_extension_count,
            );
            let kept: Vec<*const c_char>;
            let mut unlinked = Vec::new();
            if !native {
                if fault_enabled {
                    kept = names
                        .iter()
                        .copied()
                        .filter(|&n| CStr::from_ptr(n) != FAULT_EXT)
                        .collect();
                    (*ci_mut).pp_enabled_extension_names = kept.as_ptr();
                    (*ci_mut).enabled_extension_count = kept.len() as u32;
                }
                let mut prev = ci_mut as *mut vk::BaseOutStructure<'_>;
                while !(*prev).p_next.is_null() {
                    let cur = (*prev).p_next;
                    if (*cur).s_type == vk::StructureType::PHYSICAL_DEVICE_FAULT_FEATURES_EXT {
                        (*prev).p_next = (*cur).p_next;
                        unlinked.push((prev, cur));
                    } else {
                        prev = cur;
                    }
                }
            }
            let r = create(phys, ci, alloc, out);
            for (prev, cur) in unlinked.into_iter().rev() {
                (*prev).p_next = cur;
            }
            (*ci_mut).pp_enabled_extension_names = saved_names.0;
            (*ci_mut).enabled_extension_count = saved_names.1;
            if r != vk::Result::SUCCESS {
                return r;
            }
            let device = *out;
            let next = DeviceNext::load(&|n| next_gdpa(device, n));
            let mut mem_props = vk::PhysicalDeviceMemoryProperties::default();
            if let Some(f) = inst.next.get_physical_device_memory_properties {
                f(phys, &mut mem_props);
            }
            let model = FaultModel::new(plan().clone());
            let track = model.needs_tracking();
            let generic = if track {
                crate::cmd::generated_names()
                    .iter()
                    .map(|n| next_gdpa(device, n.as_ptr()))
                    .collect()
            } else {
                Vec::new()
            };
            let tracker = Tracker {
                weaken: weaken(),
                ..Tracker::default()
            };
            insert_device(
                DispatchKey::of(device),
                DeviceState {
                    handle: device,
                    next_gdpa,
                    next,
                    set_loader_data,
                    lost: Default::default(),
                    fault_emulated: !native,
                    fault_enabled,
                    model,
                    submits: AtomicU64::new(0),
                    track,
                    tracker: Mutex::new(tracker),
                    queues: Mutex::new(HashMap::new()),
                    sched: Default::default(),
                    sched_cv: Default::default(),
                    timelines: Default::default(),
                    unseen: Default::default(),
                    generic,
                    mem_props,
                    phys,
                    // Looked up now: the loader resolves WSI commands once the instance exists.
                    surface_capabilities: (inst.next_gipa)(
                        inst.handle,
                        c"vkGetPhysicalDeviceSurfaceCapabilitiesKHR".as_ptr(),
                    )
                    .map(|f| {
                        std::mem::transmute::<
                            unsafe extern "system" fn(),
                            vk::PFN_vkGetPhysicalDeviceSurfaceCapabilitiesKHR,
                        >(f)
                    }),
                    shadow: Mutex::new(None),
                    capture: crate::capture::Capture::from_env().map(Mutex::new),
                    lost_gave_up: Default::default(),
                    lost_at: Default::default(),
                    me: Default::default(),
                },
            );
            vk::Result::SUCCESS
        }
    })
}
