//! Vulkan semantics of failures for a Vulkan driver (honeykrisp): the sticky `DEVICE_LOST` state
//! of one `VkDevice` and what `VK_EXT_device_fault` reports.

use std::os::raw::{c_char, c_int};

use super::guard::{call, copy_c_string, einval, inout, out, slice_mut, Fail, Sized32};
use super::handle::{self, lookup};
use super::queue::{agx_ws_job, wait};
use super::AGX_WS_INCOMPLETE;
use crate::outcome::JobOutcome;
use crate::vulkan::{
    vk_result_for, vk_result_for_submit_errno, DeviceLostState, FaultReport, VK_ERROR_DEVICE_LOST,
    VK_MAX_DESCRIPTION_SIZE, VK_SUCCESS, VK_TIMEOUT,
};

/// The lost state of one `VkDevice`: once lost, lost for ever, and the first fault is kept.
pub struct agx_ws_vk_device {
    _opaque: [u8; 0],
}

pub(crate) type VkDeviceObj = DeviceLostState;

/// `VK_MAX_DESCRIPTION_SIZE`: the size of the description arrays, NUL included.
pub const AGX_WS_MAX_DESCRIPTION_SIZE: usize = 256;
const _: () = assert!(AGX_WS_MAX_DESCRIPTION_SIZE == VK_MAX_DESCRIPTION_SIZE);

/// `VkDeviceFaultAddressTypeEXT`, same values.
#[repr(u32)]
pub enum agx_ws_fault_address_type {
    AGX_WS_FAULT_ADDRESS_NONE = 0,
    AGX_WS_FAULT_ADDRESS_READ_INVALID = 1,
    AGX_WS_FAULT_ADDRESS_WRITE_INVALID = 2,
    AGX_WS_FAULT_ADDRESS_EXECUTE_INVALID = 3,
    AGX_WS_FAULT_ADDRESS_INSTRUCTION_POINTER_UNKNOWN = 4,
    AGX_WS_FAULT_ADDRESS_INSTRUCTION_POINTER_INVALID = 5,
    AGX_WS_FAULT_ADDRESS_INSTRUCTION_POINTER_FAULT = 6,
}

/// `VkDeviceFaultAddressInfoEXT` (same layout).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct agx_ws_fault_address_info {
    /// An `agx_ws_fault_address_type`.
    pub address_type: u32,
    pub pad: u32,
    pub reported_address: u64,
    /// A power of two: the fault is within the aligned block of this size around the address.
    pub address_precision: u64,
}

/// `VkDeviceFaultVendorInfoEXT` (same layout). Codes: 1 guilt (data 0 guilty, 1 innocent,
/// 2 unknown), 2 unit (an `agx_ws_fault_unit`), 3 submission number, 4 fault kind (an
/// `agx_ws_fault_kind`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct agx_ws_fault_vendor_info {
    pub description: [c_char; AGX_WS_MAX_DESCRIPTION_SIZE],
    pub vendor_fault_code: u64,
    pub vendor_fault_data: u64,
}

/// `VkDeviceFaultCountsEXT`. Set `struct_size = sizeof(agx_ws_fault_counts)`.
#[repr(C)]
pub struct agx_ws_fault_counts {
    pub struct_size: u32,
    pub address_info_count: u32,
    pub vendor_info_count: u32,
    pub pad: u32,
    /// Always 0: no vendor binary.
    pub vendor_binary_size: u64,
}

// SAFETY: repr(C), struct_size first, integers only.
unsafe impl Sized32 for agx_ws_fault_counts {}

/// `VkDeviceFaultInfoEXT`. Set `struct_size = sizeof(agx_ws_fault_info)`; the arrays have the
/// capacities given in `agx_ws_fault_counts` (NULL allowed for 0).
#[repr(C)]
pub struct agx_ws_fault_info {
    pub struct_size: u32,
    pub pad: u32,
    pub description: [c_char; AGX_WS_MAX_DESCRIPTION_SIZE],
    pub address_infos: *mut agx_ws_fault_address_info,
    pub vendor_infos: *mut agx_ws_fault_vendor_info,
    /// Not written (no vendor binary).
    pub vendor_binary_data: *mut u8,
}

// SAFETY: repr(C), struct_size first, integers, char arrays and raw pointers only.
unsafe impl Sized32 for agx_ws_fault_info {}

/// Creates the state of a device that is not lost.
///
/// # Safety
///
/// `out_vk` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_vk_device_create(out_vk: *mut *mut agx_ws_vk_device) -> c_int {
    call("agx_ws_vk_device_create", || {
        // SAFETY: the caller's contract, forwarded.
        let out_vk = unsafe { out(out_vk, "out_vk") }?;
        out_vk.write(handle::register(DeviceLostState::new()));
        Ok(0)
    })
}

/// Destroys the state.
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_vk_device_destroy(vk: *mut agx_ws_vk_device) -> c_int {
    call("agx_ws_vk_device_destroy", || handle::destroy(vk))
}

/// `vkWaitForFences`-style wait on a job of the device: `*out_vk_result` is `VK_SUCCESS` (0),
/// `VK_TIMEOUT` (2) when it has not finished within `timeout_ns` (0 polls), or
/// `VK_ERROR_DEVICE_LOST` (-4) when it failed, whatever its guilt, or when the device was
/// already lost. A failed job loses the device with a fault report for submission `submission`
/// (the driver's 1-based count of queue submissions).
///
/// # Safety
///
/// `out_vk_result` is NULL or valid for a write.
///
/// Thread safety: thread-safe; may block.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_vk_device_wait_job(
    vk: *mut agx_ws_vk_device,
    job: *mut agx_ws_job,
    submission: u64,
    timeout_ns: u64,
    out_vk_result: *mut i32,
) -> c_int {
    call("agx_ws_vk_device_wait_job", || {
        // SAFETY: the caller's contract, forwarded.
        let out_vk_result = unsafe { out(out_vk_result, "out_vk_result") }?;
        let state = lookup(vk)?;
        let j = lookup(job)?;
        let r = match wait(&j, timeout_ns) {
            Ok((o, _)) => {
                if let Some(report) = FaultReport::from_outcome(&o, submission) {
                    state.set_lost(report);
                }
                vk_result_for(&o)
            }
            Err(Fail { code, .. }) if code == -libc::ETIME => VK_TIMEOUT,
            Err(f) => return Err(f),
        };
        out_vk_result.write(state.sticky(r));
        Ok(0)
    })
}

/// The `VkResult` of a submit that `agx_ws_queue_submit` refused with `error` (a negative
/// errno; 0 for an accepted submit): `VK_ERROR_OUT_OF_DEVICE_MEMORY` for `-ENOMEM` (the device
/// stays usable), else `VK_ERROR_DEVICE_LOST`, and the device is then lost (a banned queue, a
/// gone device). Sticky: `VK_ERROR_DEVICE_LOST` whenever the device is lost.
///
/// Errors: `-EINVAL` for an `error` that is neither 0 nor a negative errno (-4095..-1).
///
/// # Safety
///
/// `out_vk_result` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_vk_device_observe_submit_error(
    vk: *mut agx_ws_vk_device,
    error: c_int,
    submission: u64,
    out_vk_result: *mut i32,
) -> c_int {
    call("agx_ws_vk_device_observe_submit_error", || {
        // SAFETY: the caller's contract, forwarded.
        let out_vk_result = unsafe { out(out_vk_result, "out_vk_result") }?;
        let state = lookup(vk)?;
        // Found by fuzzing: any other value reached `Errno::from_raw_os_error`, whose range
        // assertion panicked (and a positive one counted as success).
        if !(-4095..=0).contains(&error) {
            return Err(einval("error is not 0 or a negative errno"));
        }
        let errno = -error;
        let r = vk_result_for_submit_errno(errno);
        if r == VK_ERROR_DEVICE_LOST {
            let report =
                match JobOutcome::from_submit_errno(rustix::io::Errno::from_raw_os_error(errno)) {
                    Some(o) => FaultReport::from_outcome(&o, submission),
                    None => None,
                }
                .unwrap_or_else(|| FaultReport::reported_below("agx_ws_queue_submit", submission));
            state.set_lost(report);
        }
        out_vk_result.write(state.sticky(r));
        Ok(0)
    })
}

/// `check_status` of Mesa's Vulkan runtime: `VK_SUCCESS` (0) or, once lost, for ever
/// `VK_ERROR_DEVICE_LOST` (-4).
///
/// # Safety
///
/// `out_vk_result` is NULL or valid for a write.
///
/// Thread safety: thread-safe (lock-free).
#[no_mangle]
pub unsafe extern "C" fn agx_ws_vk_device_check_status(
    vk: *mut agx_ws_vk_device,
    out_vk_result: *mut i32,
) -> c_int {
    call("agx_ws_vk_device_check_status", || {
        // SAFETY: the caller's contract, forwarded.
        let out_vk_result = unsafe { out(out_vk_result, "out_vk_result") }?;
        out_vk_result.write(lookup(vk)?.sticky(VK_SUCCESS));
        Ok(0)
    })
}

/// `vkGetDeviceFaultInfoEXT`, two-call pattern. With `info` NULL: `*counts` receives the
/// number of address and vendor infos. Otherwise the description and up to the counts' entries
/// are written, the counts set to what was written, and the call returns `AGX_WS_INCOMPLETE`
/// (1) when an array was too short. A device that is not lost reports nothing (counts 0, empty
/// description).
///
/// # Safety
///
/// `counts` is NULL or points to a writable `agx_ws_fault_counts`; `info` is NULL or points to
/// a writable `agx_ws_fault_info` whose arrays hold the capacities given in `*counts`.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_vk_device_get_fault_info(
    vk: *mut agx_ws_vk_device,
    counts: *mut agx_ws_fault_counts,
    info: *mut agx_ws_fault_info,
) -> c_int {
    call("agx_ws_vk_device_get_fault_info", || {
        let state = lookup(vk)?;
        // SAFETY: the caller's contract, forwarded.
        let c = unsafe { inout(counts, "counts") }?;
        let report = state.report();
        let (addrs, vendor) = match report {
            Some(r) => (r.addresses.as_slice(), r.vendor.as_slice()),
            None => (&[][..], &[][..]),
        };
        if info.is_null() {
            c.address_info_count = addrs.len() as u32;
            c.vendor_info_count = vendor.len() as u32;
            c.vendor_binary_size = 0;
            return Ok(0);
        }
        // SAFETY: the caller's contract, forwarded.
        let i = unsafe { inout(info, "info") }?;
        // SAFETY: the caller's contract: the arrays hold the capacities in *counts.
        let a_out = unsafe { slice_mut(i.address_infos, c.address_info_count, "address_infos") }?;
        // SAFETY: as above.
        let v_out = unsafe { slice_mut(i.vendor_infos, c.vendor_info_count, "vendor_infos") }?;
        copy_c_string(
            &mut i.description,
            report.map_or("", |r| r.description.as_str()),
        );
        for (d, a) in a_out.iter_mut().zip(addrs) {
            d.write(agx_ws_fault_address_info {
                address_type: a.kind as u32,
                pad: 0,
                reported_address: a.address,
                address_precision: a.precision,
            });
        }
        for (d, v) in v_out.iter_mut().zip(vendor) {
            let mut description = [0; AGX_WS_MAX_DESCRIPTION_SIZE];
            copy_c_string(&mut description, &v.description);
            d.write(agx_ws_fault_vendor_info {
                description,
                vendor_fault_code: v.code,
                vendor_fault_data: v.data,
            });
        }
        let (na, nv) = (a_out.len().min(addrs.len()), v_out.len().min(vendor.len()));
        let incomplete = na < addrs.len() || nv < vendor.len();
        c.address_info_count = na as u32;
        c.vendor_info_count = nv as u32;
        c.vendor_binary_size = 0;
        Ok(if incomplete { AGX_WS_INCOMPLETE } else { 0 })
    })
}
