//! Device faults as the application asks about them: `VK_EXT_device_fault` and
//! `VK_KHR_device_fault`, offered by the layer on drivers that lack them.
//!
//! - `VK_EXT_device_fault`: `vkGetDeviceFaultInfoEXT` describes the fault that lost the device
//!   (the layer's report when the layer lost it, the driver's otherwise).
//! - `VK_KHR_device_fault`: `vkGetDeviceFaultReportsKHR` returns every fault, in order, once,
//!   blocking until one arrives (the library's `agx_winsys::vulkan::fault_log`, which
//!   honeykrisp's implementation shares): device-losing faults (guilty faults with their address,
//!   hangs as `WATCHDOG_TIMEOUT`, innocent losses), and, with `deviceFaultReportMasked`, the
//!   faults the layer *masked*: a neighbour's fault whose victim was replayed invisibly
//!   (reported with the submission it hit and the replay count, the device not lost). With
//!   `deviceFaultDeviceLostOnMasked` such a fault loses the device instead of being replayed.
//!   `vkGetDeviceFaultDebugInfoKHR` gives, once the device is lost, a vendor binary: the
//!   version-one crash dump header followed by the loss report as JSON.
//!
//! An extension is enabled by its name or by its feature structure alone (the CTS's
//! `device_fault.real` enables `deviceFault` without the name); either way the device's
//! entry points reach the layer through `vkGetDeviceProcAddr`, and through the loader's
//! trampolines for names it does not know (the manifest lists the entry points).

pub mod khr;

/// The log of fault reports, shared with drivers through agx-winsys.
pub use agx_winsys::vulkan::fault_log as log;

use std::ffi::{c_char, CStr};

use ash::vk;

use agx_winsys::vulkan::{c_array, FaultReport};

use crate::dispatch::{chain, fill_out_array, guard, slice, DeviceRef, DispatchKey};
use khr::{DeviceFaultDebugInfoKHR, DeviceFaultInfoKHR, PhysicalDeviceFaultFeaturesKHR};

/// `VK_EXT_device_fault`.
pub const EXT_NAME: &CStr = c"VK_EXT_device_fault";
/// The spec version of `VK_EXT_device_fault` the layer implements.
pub const EXT_SPEC_VERSION: u32 = 2;

/// Which fault extensions the layer implements on a physical device (those its driver lacks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Emulated {
    pub ext: bool,
    pub khr: bool,
}

impl Emulated {
    /// From the driver's extension names.
    pub fn given_driver(names: &[&CStr]) -> Emulated {
        Emulated {
            ext: !names.contains(&EXT_NAME),
            khr: !names.contains(&khr::NAME),
        }
    }

    /// The extension properties the layer adds.
    pub fn properties(self) -> Vec<vk::ExtensionProperties> {
        let mut v = Vec::new();
        for (on, name, version) in [
            (self.ext, EXT_NAME, EXT_SPEC_VERSION),
            (self.khr, khr::NAME, khr::SPEC_VERSION),
        ] {
            if on {
                let mut p = vk::ExtensionProperties {
                    spec_version: version,
                    ..Default::default()
                };
                for (d, s) in p.extension_name.iter_mut().zip(name.to_bytes()) {
                    *d = *s as c_char;
                }
                v.push(p);
            }
        }
        v
    }
}

/// What the application enabled on a device (of the extensions the layer implements).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Enabled {
    pub ext: bool,
    pub khr: bool,
    /// `deviceFaultReportMasked`: masked faults are reported.
    pub report_masked: bool,
    /// `deviceFaultDeviceLostOnMasked`: a fault the layer would mask loses the device.
    pub lost_on_masked: bool,
    /// `deviceFaultVendorBinary` (KHR).
    pub vendor_binary: bool,
}

impl Enabled {
    /// From a device create info: by name, or by feature structure.
    ///
    /// # Safety
    /// `ci` must be a valid `VkDeviceCreateInfo`.
    pub unsafe fn of(ci: &vk::DeviceCreateInfo<'_>) -> Enabled {
        let mut e = Enabled::default();
        // SAFETY: arrays and chain of a valid create info (caller).
        unsafe {
            for &n in slice(ci.pp_enabled_extension_names, ci.enabled_extension_count) {
                let n = CStr::from_ptr(n);
                e.ext |= n == EXT_NAME;
                e.khr |= n == khr::NAME;
            }
            for s in chain(ci.p_next) {
                match (*s).s_type {
                    vk::StructureType::PHYSICAL_DEVICE_FAULT_FEATURES_EXT => {
                        let f = &*(s as *const vk::PhysicalDeviceFaultFeaturesEXT<'_>);
                        e.ext |= f.device_fault != 0;
                    }
                    khr::STRUCTURE_TYPE_PHYSICAL_DEVICE_FAULT_FEATURES_KHR => {
                        let f = &*(s as *const PhysicalDeviceFaultFeaturesKHR);
                        e.khr |= f.device_fault != 0;
                        e.report_masked |= f.device_fault_report_masked != 0;
                        e.lost_on_masked |= f.device_fault_device_lost_on_masked != 0;
                        e.vendor_binary |= f.device_fault_vendor_binary != 0;
                    }
                    _ => {}
                }
            }
        }
        e
    }
}

/// Fills the fault feature structures of a `vkGetPhysicalDeviceFeatures2` chain for the
/// extensions the layer implements.
///
/// # Safety
/// `features` must head a valid chain of output structures.
pub unsafe fn fill_features(emulated: Emulated, features: *mut vk::PhysicalDeviceFeatures2<'_>) {
    // SAFETY: members of a valid chain, cast by their sType (caller).
    unsafe {
        for s in chain(features as *const _) {
            match (*s).s_type {
                vk::StructureType::PHYSICAL_DEVICE_FAULT_FEATURES_EXT if emulated.ext => {
                    let f = s as *mut vk::PhysicalDeviceFaultFeaturesEXT<'_>;
                    (*f).device_fault = vk::TRUE;
                    (*f).device_fault_vendor_binary = vk::FALSE;
                }
                khr::STRUCTURE_TYPE_PHYSICAL_DEVICE_FAULT_FEATURES_KHR if emulated.khr => {
                    let f = s as *mut PhysicalDeviceFaultFeaturesKHR;
                    (*f).device_fault = vk::TRUE;
                    (*f).device_fault_vendor_binary = vk::TRUE;
                    (*f).device_fault_report_masked = vk::TRUE;
                    (*f).device_fault_device_lost_on_masked = vk::TRUE;
                }
                _ => {}
            }
        }
    }
}

/// Fills `VkPhysicalDeviceFaultPropertiesKHR` in a `vkGetPhysicalDeviceProperties2` chain.
///
/// # Safety
/// `props` must head a valid chain of output structures.
pub unsafe fn fill_properties(emulated: Emulated, props: *mut vk::PhysicalDeviceProperties2<'_>) {
    if !emulated.khr {
        return;
    }
    // SAFETY: as above.
    unsafe {
        for s in chain(props as *const _) {
            if (*s).s_type == khr::STRUCTURE_TYPE_PHYSICAL_DEVICE_FAULT_PROPERTIES_KHR {
                let p = s as *mut khr::PhysicalDeviceFaultPropertiesKHR;
                (*p).max_device_fault_count = log::CAPACITY as u32;
            }
        }
    }
}

/// The application's structures edited for the driver below (the layer's extensions and their
/// feature structures taken out), restored by [`Stripped::restore`].
pub struct Stripped {
    ci: *mut vk::DeviceCreateInfo<'static>,
    names: (*const *const c_char, u32),
    kept: Vec<*const c_char>,
    unlinked: Vec<(
        *mut vk::BaseOutStructure<'static>,
        *mut vk::BaseOutStructure<'static>,
    )>,
}

impl Stripped {
    /// Takes the names and feature structures of the `emulated` extensions out of `ci`.
    ///
    /// # Safety
    /// `ci` must be a valid create info the caller owns for the duration of the call below;
    /// [`Stripped::restore`] must run before the application sees it again.
    pub unsafe fn strip(ci: *const vk::DeviceCreateInfo<'_>, emulated: Emulated) -> Stripped {
        let ci = ci as *mut vk::DeviceCreateInfo<'static>;
        // SAFETY: a valid create info (caller); the layer edits the application's (const)
        // structures as the loader protocol does for `pLayerInfo`, and restores them.
        unsafe {
            let names = (
                (*ci).pp_enabled_extension_names,
                (*ci).enabled_extension_count,
            );
            let ours = |n: *const c_char| {
                let n = CStr::from_ptr(n);
                (emulated.ext && n == EXT_NAME) || (emulated.khr && n == khr::NAME)
            };
            let all = slice(names.0, names.1);
            let kept: Vec<*const c_char> = all.iter().copied().filter(|&n| !ours(n)).collect();
            let mut s = Stripped {
                ci,
                names,
                kept,
                unlinked: Vec::new(),
            };
            if s.kept.len() != all.len() {
                (*ci).pp_enabled_extension_names = s.kept.as_ptr();
                (*ci).enabled_extension_count = s.kept.len() as u32;
            }
            let mut prev = ci as *mut vk::BaseOutStructure<'static>;
            while !(*prev).p_next.is_null() {
                let cur = (*prev).p_next;
                let drop = match (*cur).s_type {
                    vk::StructureType::PHYSICAL_DEVICE_FAULT_FEATURES_EXT => emulated.ext,
                    khr::STRUCTURE_TYPE_PHYSICAL_DEVICE_FAULT_FEATURES_KHR => emulated.khr,
                    _ => false,
                };
                if drop {
                    (*prev).p_next = (*cur).p_next;
                    s.unlinked.push((prev, cur));
                } else {
                    prev = cur;
                }
            }
            s
        }
    }

    /// Puts the application's structures back as they were.
    ///
    /// # Safety
    /// As for [`Stripped::strip`].
    pub unsafe fn restore(self) {
        // SAFETY: undoes `strip` on the same structures, in reverse order.
        unsafe {
            for (prev, cur) in self.unlinked.into_iter().rev() {
                (*prev).p_next = cur;
            }
            (*self.ci).pp_enabled_extension_names = self.names.0;
            (*self.ci).enabled_extension_count = self.names.1;
        }
    }
}

/// What the vendor binary's header says about the device and the application.
#[derive(Clone, Debug, Default)]
pub struct BinaryIdentity {
    pub vendor_id: u32,
    pub device_id: u32,
    pub driver_version: u32,
    pub pipeline_cache_uuid: [u8; vk::UUID_SIZE],
    pub api_version: u32,
    pub application_name: String,
    pub application_version: u32,
    pub engine_name: String,
    pub engine_version: u32,
}

/// The per-device fault state.
#[derive(Debug, Default)]
pub struct DeviceFault {
    pub emulated: Emulated,
    pub enabled: Enabled,
    pub log: log::FaultLog,
    pub identity: BinaryIdentity,
}

impl DeviceFault {
    /// Whether `vkGetDeviceFaultInfoEXT` is handed out by the layer on this device.
    pub fn ext_hook(&self, below: bool) -> bool {
        (self.emulated.ext && self.enabled.ext) || below
    }

    /// Whether the KHR entry points are the layer's on this device.
    pub fn khr_hook(&self) -> bool {
        self.emulated.khr && self.enabled.khr
    }

    /// Records the fault that lost the device (KHR reports).
    pub fn lost(&self, report: &FaultReport) {
        if self.khr_hook() {
            self.log.lost(report);
        }
    }

    /// Records a fault the layer masked (KHR reports, when asked for).
    pub fn masked(&self, n: u64, replays: u32) {
        if self.khr_hook() && self.enabled.report_masked {
            self.log.masked(n, replays);
        }
    }

    /// Whether a fault the layer would mask must lose the device instead.
    pub fn masked_is_lost(&self) -> bool {
        self.khr_hook() && self.enabled.lost_on_masked
    }
}

/// The vendor binary of a lost device: the version-one header, the application and engine
/// names, then `AGX-FAULT-REPORT\0` and the report as JSON (NUL-terminated).
pub fn vendor_binary(id: &BinaryIdentity, report: &FaultReport, submissions: u64) -> Vec<u8> {
    const HEADER: usize = std::mem::size_of::<vk::DeviceFaultVendorBinaryHeaderVersionOneEXT>();
    let app = id.application_name.as_bytes();
    let engine = id.engine_name.as_bytes();
    let app_off = HEADER;
    let engine_off = app_off + app.len() + 1;
    let mut out = Vec::new();
    for v in [
        HEADER as u32,
        vk::DeviceFaultVendorBinaryHeaderVersionEXT::ONE.as_raw() as u32,
        id.vendor_id,
        id.device_id,
        id.driver_version,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&id.pipeline_cache_uuid);
    for v in [
        app_off as u32,
        id.application_version,
        engine_off as u32,
        id.engine_version,
        id.api_version,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    debug_assert_eq!(out.len(), HEADER);
    out.extend_from_slice(app);
    out.push(0);
    out.extend_from_slice(engine);
    out.push(0);
    let json = serde_json::json!({
        "layer": "VK_LAYER_AGX_fault",
        "description": report.description,
        "guilt": agx_winsys::vulkan::guilt_name(report.guilt),
        "submission": report.submission,
        "submissions": submissions,
        "addresses": report.addresses.iter().map(|a| serde_json::json!({
            "type": a.kind as i32, "address": a.address, "precision": a.precision,
        })).collect::<Vec<_>>(),
        "vendor": report.vendor.iter().map(|v| serde_json::json!({
            "description": v.description, "code": v.code, "data": v.data,
        })).collect::<Vec<_>>(),
    });
    out.extend_from_slice(b"AGX-FAULT-REPORT\0");
    out.extend_from_slice(json.to_string().as_bytes());
    out.push(0);
    out
}

/// # Safety
/// `device` must be a valid device.
unsafe fn dev_of(device: vk::Device) -> Option<DeviceRef> {
    // SAFETY: forwarded from the caller.
    crate::dispatch::device(unsafe { DispatchKey::of(device) })
}

/// The layer's report as Vulkan structures.
fn report_arrays(
    r: &FaultReport,
) -> (
    Vec<vk::DeviceFaultAddressInfoEXT>,
    Vec<vk::DeviceFaultVendorInfoEXT>,
) {
    let addrs = r.addresses.iter().map(address_info).collect();
    let vendors = r.vendor.iter().map(vendor_info).collect();
    (addrs, vendors)
}

fn address_info(a: &agx_winsys::vulkan::FaultAddress) -> vk::DeviceFaultAddressInfoEXT {
    vk::DeviceFaultAddressInfoEXT {
        address_type: vk::DeviceFaultAddressTypeEXT::from_raw(a.kind as i32),
        reported_address: a.address,
        address_precision: a.precision,
    }
}

fn vendor_info(v: &agx_winsys::vulkan::FaultVendorInfo) -> vk::DeviceFaultVendorInfoEXT {
    let mut out = vk::DeviceFaultVendorInfoEXT {
        vendor_fault_code: v.code,
        vendor_fault_data: v.data,
        ..Default::default()
    };
    for (d, s) in out.description.iter_mut().zip(c_array(&v.description)) {
        *d = s as c_char;
    }
    out
}

/// `vkGetDeviceFaultInfoEXT`: the layer's report when the layer lost the device or implements
/// the extension; the driver's otherwise.
///
/// # Safety
///
/// Valid usage of the command (the loader hands it out for a device of this layer).
pub unsafe extern "system" fn get_device_fault_info_ext(
    device: vk::Device,
    counts: *mut vk::DeviceFaultCountsEXT<'_>,
    info: *mut vk::DeviceFaultInfoEXT<'_>,
) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage: `counts` is valid; `info` is null or valid, with arrays of the
        // sizes given in `counts`.
        unsafe {
            let Some(dev) = dev_of(device) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            if counts.is_null() {
                return vk::Result::ERROR_UNKNOWN;
            }
            let report = dev.lost.report();
            if report.is_none() && !dev.fault.emulated.ext {
                if let Some(f) = dev.next.get_device_fault_info_ext {
                    return f(device, counts, info);
                }
            }
            let (addrs, vendors) = report.map(report_arrays).unwrap_or_default();
            let c = &mut *counts;
            c.vendor_binary_size = 0;
            if info.is_null() {
                c.address_info_count = addrs.len() as u32;
                c.vendor_info_count = vendors.len() as u32;
                return vk::Result::SUCCESS;
            }
            let i = &mut *info;
            let desc = report.map(|r| r.description_array()).unwrap_or([0; 256]);
            for (d, s) in i.description.iter_mut().zip(desc) {
                *d = s as c_char;
            }
            let mut incomplete = false;
            if i.p_address_infos.is_null() {
                incomplete |= !addrs.is_empty();
                c.address_info_count = 0;
            } else {
                incomplete |= fill_out_array(&mut c.address_info_count, i.p_address_infos, &addrs)
                    == vk::Result::INCOMPLETE;
            }
            if i.p_vendor_infos.is_null() {
                incomplete |= !vendors.is_empty();
                c.vendor_info_count = 0;
            } else {
                incomplete |= fill_out_array(&mut c.vendor_info_count, i.p_vendor_infos, &vendors)
                    == vk::Result::INCOMPLETE;
            }
            if incomplete {
                vk::Result::INCOMPLETE
            } else {
                vk::Result::SUCCESS
            }
        }
    })
}

/// `vkGetDeviceFaultReportsKHR`: the faults logged since the last call, oldest first, each
/// returned once; waits up to `timeout` ns for one (`VK_TIMEOUT` when none came).
///
/// # Safety
///
/// Valid usage of the command (the loader hands it out for a device of this layer).
pub unsafe extern "system" fn get_device_fault_reports_khr(
    device: vk::Device,
    timeout: u64,
    count: *mut u32,
    infos: *mut DeviceFaultInfoKHR,
) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage: `count` is valid; `infos` is null or holds `*count` structures.
        unsafe {
            let Some(dev) = dev_of(device) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            if count.is_null() {
                return vk::Result::ERROR_UNKNOWN;
            }
            let max = (!infos.is_null()).then_some(*count as usize);
            let read = dev
                .fault
                .log
                .read(max, std::time::Duration::from_nanos(timeout));
            if infos.is_null() {
                *count = read.left as u32;
                return if read.left > 0 {
                    vk::Result::SUCCESS
                } else {
                    vk::Result::TIMEOUT
                };
            }
            for (k, e) in read.entries.iter().enumerate() {
                let out = &mut *infos.add(k);
                out.flags = e.flags;
                out.group_id = e.group;
                for (d, s) in out.description.iter_mut().zip(c_array(&e.description)) {
                    *d = s as c_char;
                }
                out.fault_address_info = e.address.as_ref().map(address_info).unwrap_or_default();
                out.instruction_address_info = vk::DeviceFaultAddressInfoEXT::default();
                out.vendor_info = e.vendor.as_ref().map(vendor_info).unwrap_or_default();
            }
            *count = read.entries.len() as u32;
            if read.left > 0 {
                vk::Result::INCOMPLETE
            } else if read.entries.is_empty() {
                vk::Result::TIMEOUT
            } else {
                vk::Result::SUCCESS
            }
        }
    })
}

/// `vkGetDeviceFaultDebugInfoKHR`: the vendor binary of a lost device (nothing before the
/// loss, or without `deviceFaultVendorBinary`).
///
/// # Safety
///
/// Valid usage of the command (the loader hands it out for a device of this layer).
pub unsafe extern "system" fn get_device_fault_debug_info_khr(
    device: vk::Device,
    info: *mut DeviceFaultDebugInfoKHR,
) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage: `info` is valid, its binary pointer null or holding
        // `vendorBinarySize` bytes.
        unsafe {
            let Some(dev) = dev_of(device) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            if info.is_null() {
                return vk::Result::ERROR_UNKNOWN;
            }
            let i = &mut *info;
            let report = dev.lost.report();
            let (true, Some(report)) = (dev.fault.enabled.vendor_binary, report) else {
                i.vendor_binary_size = 0;
                return vk::Result::SUCCESS;
            };
            let n = dev.submits.load(std::sync::atomic::Ordering::Relaxed);
            let bin = vendor_binary(&dev.fault.identity, report, n);
            if i.p_vendor_binary_data.is_null() {
                i.vendor_binary_size = bin.len() as u32;
                return vk::Result::SUCCESS;
            }
            if (i.vendor_binary_size as usize) < bin.len() {
                i.vendor_binary_size = 0;
                return khr::ERROR_NOT_ENOUGH_SPACE_KHR;
            }
            std::ptr::copy_nonoverlapping(
                bin.as_ptr(),
                i.p_vendor_binary_data as *mut u8,
                bin.len(),
            );
            i.vendor_binary_size = bin.len() as u32;
            vk::Result::SUCCESS
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use agx_winsys::JobOutcome;

    #[test]
    fn emulated_is_what_the_driver_lacks() {
        let e = Emulated::given_driver(&[c"VK_KHR_swapchain", EXT_NAME]);
        assert_eq!(
            e,
            Emulated {
                ext: false,
                khr: true
            }
        );
        let p = Emulated {
            ext: true,
            khr: true,
        }
        .properties();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].spec_version, 1);
    }

    #[test]
    fn enabled_by_name_or_feature() {
        let names = [EXT_NAME.as_ptr()];
        let ci = vk::DeviceCreateInfo::default().enabled_extension_names(&names);
        // SAFETY: a valid create info.
        let e = unsafe { Enabled::of(&ci) };
        assert!(e.ext && !e.khr);
        let mut f = PhysicalDeviceFaultFeaturesKHR {
            s_type: khr::STRUCTURE_TYPE_PHYSICAL_DEVICE_FAULT_FEATURES_KHR,
            p_next: std::ptr::null_mut(),
            device_fault: vk::TRUE,
            device_fault_vendor_binary: vk::FALSE,
            device_fault_report_masked: vk::TRUE,
            device_fault_device_lost_on_masked: vk::FALSE,
        };
        let ci = vk::DeviceCreateInfo {
            p_next: &mut f as *mut _ as *const std::ffi::c_void,
            ..Default::default()
        };
        // SAFETY: a valid create info with one chained feature structure.
        let e = unsafe { Enabled::of(&ci) };
        assert!(e.khr && e.report_masked && !e.lost_on_masked && !e.ext);
    }

    #[test]
    fn strip_and_restore() {
        let keep = c"VK_KHR_swapchain";
        let names = [keep.as_ptr(), khr::NAME.as_ptr(), EXT_NAME.as_ptr()];
        let mut fk = PhysicalDeviceFaultFeaturesKHR {
            s_type: khr::STRUCTURE_TYPE_PHYSICAL_DEVICE_FAULT_FEATURES_KHR,
            p_next: std::ptr::null_mut(),
            device_fault: vk::TRUE,
            device_fault_vendor_binary: vk::TRUE,
            device_fault_report_masked: vk::TRUE,
            device_fault_device_lost_on_masked: vk::TRUE,
        };
        let mut other = vk::PhysicalDeviceFeatures2::default();
        fk.p_next = &mut other as *mut _ as *mut std::ffi::c_void;
        let mut ci = vk::DeviceCreateInfo::default().enabled_extension_names(&names);
        ci.p_next = &mut fk as *mut _ as *const std::ffi::c_void;
        // SAFETY: valid structures owned here.
        unsafe {
            let s = Stripped::strip(
                &ci,
                Emulated {
                    ext: false,
                    khr: true,
                },
            );
            assert_eq!(ci.enabled_extension_count, 2);
            let left = slice(ci.pp_enabled_extension_names, 2);
            assert_eq!(CStr::from_ptr(left[1]), EXT_NAME);
            assert_eq!(ci.p_next, &other as *const _ as *const std::ffi::c_void);
            s.restore();
        }
        assert_eq!(ci.enabled_extension_count, 3);
        assert_eq!(ci.p_next, &fk as *const _ as *const std::ffi::c_void);
    }

    #[test]
    fn vendor_binary_starts_with_the_header() {
        let id = BinaryIdentity {
            vendor_id: 0x10005,
            application_name: "app".into(),
            engine_name: "eng".into(),
            ..BinaryIdentity::default()
        };
        let r = FaultReport::from_outcome(&JobOutcome::TimedOut, 4).unwrap();
        let b = vendor_binary(&id, &r, 9);
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        assert_eq!(u32_at(0), 56);
        assert_eq!(u32_at(4), 1);
        assert_eq!(u32_at(8), 0x10005);
        let app = u32_at(36) as usize;
        assert_eq!(&b[app..app + 4], b"app\0");
        let eng = u32_at(44) as usize;
        assert_eq!(&b[eng..eng + 4], b"eng\0");
        let text = String::from_utf8_lossy(&b);
        assert!(text.contains("AGX-FAULT-REPORT"));
        assert!(text.contains("\"submission\":4"));
        assert_eq!(vendor_binary(&id, &r, 9), b, "the same bytes each time");
    }
}
