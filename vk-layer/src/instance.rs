//! Instance-level hooks: instance and device creation (walking the loader's chain structs),
//! and the advertisement of `VK_EXT_device_fault` and `VK_KHR_device_fault` on physical devices
//! whose driver lacks them (see `crate::fault`).

use std::collections::HashMap;
use std::ffi::{c_char, CStr};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, OnceLock};

use ash::vk;
use ash::vk::Handle;

use crate::dispatch::{
    self, chain, fill_out_array, guard, insert_device, insert_instance, lock, AppInfo, DeviceNext,
    DeviceState, DispatchKey, InstanceNext, InstanceState,
};
use crate::fault::{BinaryIdentity, DeviceFault, Emulated, Enabled, Stripped};
use crate::loader::{
    VkLayerDeviceCreateInfo, VkLayerInstanceCreateInfo, VK_LAYER_LINK_INFO, VK_LOADER_DATA_CALLBACK,
};
use crate::plan::{FaultModel, Plan};
use crate::track::{Tracker, Weaken};
use crate::LAYER_NAME;

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

/// The extension names in `props`.
fn names(props: &[vk::ExtensionProperties]) -> Vec<&CStr> {
    props
        .iter()
        .filter_map(|p| CStr::from_bytes_until_nul(bytes_of(&p.extension_name)).ok())
        .collect()
}

fn bytes_of(a: &[c_char]) -> &[u8] {
    // SAFETY: `c_char` and `u8` have the same size and alignment.
    unsafe { std::slice::from_raw_parts(a.as_ptr() as *const u8, a.len()) }
}

/// A C string of the application's, or "".
///
/// # Safety
/// `p` must be null or a NUL-terminated string.
unsafe fn string(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: forwarded from the caller.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
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
            let app = match (*ci).p_application_info.as_ref() {
                Some(a) => AppInfo {
                    application_name: string(a.p_application_name),
                    application_version: a.application_version,
                    engine_name: string(a.p_engine_name),
                    engine_version: a.engine_version,
                    api_version: a.api_version,
                },
                None => AppInfo::default(),
            };
            insert_instance(
                DispatchKey::of(inst),
                InstanceState {
                    handle: inst,
                    next_gipa,
                    next,
                    fault: Mutex::new(HashMap::new()),
                    app,
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

/// The fault extensions the layer implements on `phys` (those its driver lacks; cached).
///
/// # Safety
///
/// `phys` must be a valid physical device of `inst`.
unsafe fn emulated(inst: &InstanceState, phys: vk::PhysicalDevice) -> Emulated {
    if let Some(&e) = lock(&inst.fault).get(&phys.as_raw()) {
        return e;
    }
    // SAFETY: forwarded from the caller.
    let e = unsafe { driver_extensions(inst, phys) }
        .map(|v| Emulated::given_driver(&names(&v)))
        .unwrap_or_default();
    lock(&inst.fault).insert(phys.as_raw(), e);
    e
}

/// `vkEnumerateDeviceExtensionProperties`: adds the fault extensions the driver lacks.
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
                    let all = Emulated {
                        ext: true,
                        khr: true,
                    };
                    return fill_out_array(count, props, &all.properties());
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
            let e = Emulated::given_driver(&names(&v));
            lock(&inst.fault).insert(phys.as_raw(), e);
            v.extend(e.properties());
            fill_out_array(count, props, &v)
        }
    })
}

/// `vkGetPhysicalDeviceFeatures2` (and the KHR alias): fills the fault feature structures.
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
            crate::fault::fill_features(emulated(&inst, phys), features);
        }
    })
}

/// `vkGetPhysicalDeviceProperties2` (and the KHR alias): fills
/// `VkPhysicalDeviceFaultPropertiesKHR`.
pub unsafe extern "system" fn get_physical_device_properties2(
    phys: vk::PhysicalDevice,
    props: *mut vk::PhysicalDeviceProperties2<'_>,
) {
    guard((), || {
        // SAFETY: `phys` is valid (valid usage).
        let Some(inst) = dispatch::instance(unsafe { DispatchKey::of(phys) }) else {
            return;
        };
        let Some(f) = inst.next.get_physical_device_properties2 else {
            return;
        };
        // SAFETY: forwarded; then `props` heads a valid chain of output structs.
        unsafe {
            f(phys, props);
            crate::fault::fill_properties(emulated(&inst, phys), props);
        }
    })
}

/// `vkCreateDevice`: strips the fault extensions the layer implements (names and feature
/// structures), calls down, restores the application's structures.
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

            let emulated = emulated(&inst, phys);
            let enabled = Enabled::of(&*ci);
            let stripped = Stripped::strip(ci, emulated);
            let r = create(phys, ci, alloc, out);
            stripped.restore();
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
                    fault: DeviceFault {
                        emulated,
                        enabled,
                        identity: identity(&inst, phys),
                        ..DeviceFault::default()
                    },
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

/// Who the vendor binary of `VK_KHR_device_fault` says made it.
///
/// # Safety
///
/// `phys` must be a valid physical device of `inst`.
unsafe fn identity(inst: &InstanceState, phys: vk::PhysicalDevice) -> BinaryIdentity {
    let mut p = vk::PhysicalDeviceProperties::default();
    if let Some(f) = inst.next.get_physical_device_properties {
        // SAFETY: a valid physical device (caller).
        unsafe { f(phys, &mut p) };
    }
    BinaryIdentity {
        vendor_id: p.vendor_id,
        device_id: p.device_id,
        driver_version: p.driver_version,
        pipeline_cache_uuid: p.pipeline_cache_uuid,
        api_version: inst.app.api_version,
        application_name: inst.app.application_name.clone(),
        application_version: inst.app.application_version,
        engine_name: inst.app.engine_name.clone(),
        engine_version: inst.app.engine_version,
    }
}
