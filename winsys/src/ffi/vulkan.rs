//! Vulkan semantics of failures for a Vulkan driver (honeykrisp): the sticky `DEVICE_LOST` state
//! of one `VkDevice`, what `VK_EXT_device_fault` reports, and the log of every fault
//! `VK_KHR_device_fault` reports (masked ones included).

use std::os::raw::{c_char, c_int, c_void};
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::guard::{call, copy_c_string, einval, inout, out, slice_mut, Fail, Sized32};
use super::handle::{self, lookup};
use super::queue::{agx_ws_job, wait};
use super::AGX_WS_INCOMPLETE;
use crate::outcome::JobOutcome;
use crate::vulkan::fault_log::{self, Entry};
use crate::vulkan::{
    masked_mode, vk_result_for_submit_errno, DeviceFaultState, FaultAddress, FaultReport,
    FaultVendorInfo, VK_ERROR_DEVICE_LOST, VK_MAX_DESCRIPTION_SIZE, VK_SUCCESS, VK_TIMEOUT,
};

/// The fault state of one `VkDevice`: once lost, lost for ever, and the first fault is kept
/// (`VK_EXT_device_fault`); every fault is logged for `VK_KHR_device_fault`.
pub struct agx_ws_vk_device {
    _opaque: [u8; 0],
}

pub(crate) type VkDeviceObj = DeviceFaultState;

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
        out_vk.write(handle::register(DeviceFaultState::new()));
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
/// (the driver's 1-based count of queue submissions), also logged for
/// `agx_ws_vk_device_get_fault_reports`; a job replayed after another context's fault is a
/// masked fault, logged or made a loss as `agx_ws_vk_device_set_masked_faults` says. A job's
/// outcome is observed once, at the first wait that sees it finished.
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
                // Each job's outcome is observed once (a masked fault is logged once however
                // often its job is waited on).
                if !j.vk_observed.swap(true, Ordering::AcqRel) {
                    state.observe(&o, submission)
                } else {
                    crate::vulkan::vk_result_for(&o)
                }
            }
            Err(Fail { code, .. }) if code == -libc::ETIME => VK_TIMEOUT,
            Err(f) => return Err(f),
        };
        out_vk_result.write(state.lost().sticky(r));
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
        out_vk_result.write(state.lost().sticky(r));
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
        out_vk_result.write(lookup(vk)?.lost().sticky(VK_SUCCESS));
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
        let report = state.lost().report();
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

/// `agx_ws_vk_device_set_masked_faults`: a job replayed after another context's fault is
/// logged as a masked fault (`deviceFaultReportMasked`).
pub const AGX_WS_VK_MASKED_FAULTS_REPORT: u32 = 1 << 0;
/// `agx_ws_vk_device_set_masked_faults`: a job replayed after another context's fault loses
/// the device instead (`deviceFaultDeviceLostOnMasked`).
pub const AGX_WS_VK_MASKED_FAULTS_LOSE_DEVICE: u32 = 1 << 1;
const _: () = assert!(AGX_WS_VK_MASKED_FAULTS_REPORT == masked_mode::REPORT);
const _: () = assert!(AGX_WS_VK_MASKED_FAULTS_LOSE_DEVICE == masked_mode::LOSE_DEVICE);

/// How many fault report entries a device keeps (`maxDeviceFaultCount`); when more arrive
/// before they are read, the oldest go and the next one read carries
/// `AGX_WS_FAULT_REPORT_OVERFLOW`.
pub const AGX_WS_MAX_FAULT_REPORTS: u32 = 64;
const _: () = assert!(AGX_WS_MAX_FAULT_REPORTS as usize == fault_log::CAPACITY);

/// `VkDeviceFaultFlagBitsKHR`, same values: the fault lost the device (last entry of its
/// group; nothing follows).
pub const AGX_WS_FAULT_REPORT_DEVICE_LOST: u32 = 1 << 0;
/// `fault_address_info` is filled.
pub const AGX_WS_FAULT_REPORT_MEMORY_ADDRESS: u32 = 1 << 1;
/// `instruction_address_info` is filled (never set: the GPU reports no instruction address).
pub const AGX_WS_FAULT_REPORT_INSTRUCTION_ADDRESS: u32 = 1 << 2;
/// `vendor_info` is filled.
pub const AGX_WS_FAULT_REPORT_VENDOR: u32 = 1 << 3;
/// The fault was a GPU timeout.
pub const AGX_WS_FAULT_REPORT_WATCHDOG_TIMEOUT: u32 = 1 << 4;
/// Earlier entries were dropped (the log was full); set on the first entry read after.
pub const AGX_WS_FAULT_REPORT_OVERFLOW: u32 = 1 << 5;
const _: () = {
    use fault_log::flags;
    assert!(AGX_WS_FAULT_REPORT_DEVICE_LOST == flags::DEVICE_LOST);
    assert!(AGX_WS_FAULT_REPORT_MEMORY_ADDRESS == flags::MEMORY_ADDRESS);
    assert!(AGX_WS_FAULT_REPORT_INSTRUCTION_ADDRESS == flags::INSTRUCTION_ADDRESS);
    assert!(AGX_WS_FAULT_REPORT_VENDOR == flags::VENDOR);
    assert!(AGX_WS_FAULT_REPORT_WATCHDOG_TIMEOUT == flags::WATCHDOG_TIMEOUT);
    assert!(AGX_WS_FAULT_REPORT_OVERFLOW == flags::OVERFLOW);
};

/// One fault report entry: `VkDeviceFaultInfoKHR` (same layout), so a driver hands the
/// application's array over as it is. The first two fields are the application's `sType` and
/// `pNext`: never read nor written. A fault is a group of entries with the same `group_id`.
/// Vendor info codes as in `agx_ws_fault_vendor_info`, and 6: the replay count of a masked
/// fault.
#[repr(C)]
pub struct agx_ws_fault_report {
    /// `sType`: the caller's, untouched.
    pub reserved_type: u32,
    pub pad0: u32,
    /// `pNext`: the caller's, untouched.
    pub reserved_next: *mut c_void,
    /// `AGX_WS_FAULT_REPORT_*` flags.
    pub flags: u32,
    pub pad1: u32,
    /// The fault's group: 1, 2, ... per device.
    pub group_id: u64,
    pub description: [c_char; AGX_WS_MAX_DESCRIPTION_SIZE],
    pub fault_address_info: agx_ws_fault_address_info,
    /// All zero: the GPU reports no instruction address.
    pub instruction_address_info: agx_ws_fault_address_info,
    pub vendor_info: agx_ws_fault_vendor_info,
}

/// The counts of `agx_ws_vk_device_get_fault_reports`. Set
/// `struct_size = sizeof(agx_ws_fault_report_counts)`.
#[repr(C)]
pub struct agx_ws_fault_report_counts {
    pub struct_size: u32,
    /// In: the capacity of the `reports` array (ignored when it is NULL). Out: the entries
    /// written, or with `reports` NULL, the entries available.
    pub report_count: u32,
    /// Out: entries still in the log after the call.
    pub reports_left: u32,
    /// Out: 1 when the device is lost (the log is closed: nothing more will come), else 0.
    pub lost: u32,
}

// SAFETY: repr(C), struct_size first, integers only.
unsafe impl Sized32 for agx_ws_fault_report_counts {}

/// Chooses what a job replayed after another context's fault (an innocent job the kernel's
/// recovery re-ran, invisibly to the application) does: nothing (0, the default), logged as a
/// masked fault (`AGX_WS_VK_MASKED_FAULTS_REPORT`, `deviceFaultReportMasked`), or a loss of the
/// device (`AGX_WS_VK_MASKED_FAULTS_LOSE_DEVICE`, `deviceFaultDeviceLostOnMasked`, which wins
/// over the first). Applies to jobs observed after the call.
///
/// Errors: `-EINVAL` for unknown bits (nothing changed).
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_vk_device_set_masked_faults(
    vk: *mut agx_ws_vk_device,
    flags: u32,
) -> c_int {
    call("agx_ws_vk_device_set_masked_faults", || {
        let state = lookup(vk)?;
        if flags & !masked_mode::ALL != 0 {
            return Err(einval("unknown AGX_WS_VK_MASKED_FAULTS_* flags"));
        }
        state.set_masked_mode(flags);
        Ok(0)
    })
}

/// `vkGetDeviceFaultReportsKHR`: the fault report entries logged since the last call, oldest
/// first, each returned once (to one caller). Waits up to `timeout_ns` (0 polls;
/// `AGX_WS_TIMEOUT_INFINITE` is bounded too) until one is there, without holding any lock the
/// logging side needs; a lost device whose entries were all read returns at once.
///
/// With `reports` NULL: `counts->report_count` receives the entries available (none taken).
/// Otherwise up to `counts->report_count` entries (at most `AGX_WS_MAX_FAULT_REPORTS` are ever
/// there) are taken into `reports` and `counts->report_count` set to how many. Either way
/// `counts->reports_left` is what is still in the log and `counts->lost` whether the device is
/// lost.
///
/// Returns 0, `AGX_WS_INCOMPLETE` (1) when entries are left after filling `reports`, or
/// `-ETIME` when no entry came within `timeout_ns` (nothing written but the counts). Errors:
/// `-EINVAL` for a NULL or misaligned pointer or a wrong `struct_size` (nothing taken).
///
/// # Safety
///
/// `counts` is NULL or points to a writable `agx_ws_fault_report_counts`; `reports` is NULL or
/// points to `counts->report_count` writable `agx_ws_fault_report`s (of which only the fields
/// after `reserved_next` are written).
///
/// Thread safety: thread-safe; may block up to `timeout_ns`.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_vk_device_get_fault_reports(
    vk: *mut agx_ws_vk_device,
    timeout_ns: u64,
    counts: *mut agx_ws_fault_report_counts,
    reports: *mut agx_ws_fault_report,
) -> c_int {
    call("agx_ws_vk_device_get_fault_reports", || {
        let state = lookup(vk)?;
        // SAFETY: the caller's contract, forwarded.
        let c = unsafe { inout(counts, "counts") }?;
        // Checked before anything is taken from the log. The log never holds more than
        // AGX_WS_MAX_FAULT_REPORTS entries, so only that many elements are ever touched.
        let capacity = c.report_count.min(AGX_WS_MAX_FAULT_REPORTS);
        let out = if reports.is_null() {
            None
        } else {
            // SAFETY: the caller's contract: `reports` holds `report_count` >= `capacity`
            // elements.
            Some(unsafe { slice_mut(reports, capacity, "reports") }?)
        };
        let timeout = Duration::from_nanos(timeout_ns);
        let read = state
            .log()
            .read(out.as_ref().map(|_| capacity as usize), timeout);
        c.reports_left = read.left as u32;
        c.lost = u32::from(read.closed);
        let Some(out) = out else {
            c.report_count = read.left as u32;
            return if read.left > 0 {
                Ok(0)
            } else {
                Err(Fail::new(libc::ETIME, "no fault report within the timeout"))
            };
        };
        for (d, e) in out.iter_mut().zip(&read.entries) {
            // SAFETY: `d` is a valid, writable element (slice_mut); only the fields after
            // `reserved_next` are written, each through a raw pointer, so the caller's sType
            // and pNext stay as they were.
            unsafe { write_report(d.as_mut_ptr(), e) };
        }
        c.report_count = read.entries.len() as u32;
        if read.left > 0 {
            Ok(AGX_WS_INCOMPLETE)
        } else if read.entries.is_empty() {
            Err(Fail::new(libc::ETIME, "no fault report within the timeout"))
        } else {
            Ok(0)
        }
    })
}

fn address_info(a: Option<&FaultAddress>) -> agx_ws_fault_address_info {
    match a {
        Some(a) => agx_ws_fault_address_info {
            address_type: a.kind as u32,
            pad: 0,
            reported_address: a.address,
            address_precision: a.precision,
        },
        None => agx_ws_fault_address_info {
            address_type: agx_ws_fault_address_type::AGX_WS_FAULT_ADDRESS_NONE as u32,
            pad: 0,
            reported_address: 0,
            address_precision: 0,
        },
    }
}

fn vendor_info(v: Option<&FaultVendorInfo>) -> agx_ws_fault_vendor_info {
    let mut description = [0; AGX_WS_MAX_DESCRIPTION_SIZE];
    if let Some(v) = v {
        copy_c_string(&mut description, &v.description);
    }
    agx_ws_fault_vendor_info {
        description,
        vendor_fault_code: v.map_or(0, |v| v.code),
        vendor_fault_data: v.map_or(0, |v| v.data),
    }
}

/// Writes `e` into the report `d` points at, leaving `reserved_type` and `reserved_next` alone.
///
/// # Safety
///
/// `d` is non-null, aligned and writable for one `agx_ws_fault_report`.
unsafe fn write_report(d: *mut agx_ws_fault_report, e: &Entry) {
    let mut description = [0; AGX_WS_MAX_DESCRIPTION_SIZE];
    copy_c_string(&mut description, &e.description);
    // SAFETY: fields of a valid, writable struct (caller), written without reading or
    // creating references to possibly uninitialised memory.
    unsafe {
        std::ptr::addr_of_mut!((*d).flags).write(e.flags);
        std::ptr::addr_of_mut!((*d).pad1).write(0);
        std::ptr::addr_of_mut!((*d).group_id).write(e.group);
        std::ptr::addr_of_mut!((*d).description).write(description);
        std::ptr::addr_of_mut!((*d).fault_address_info).write(address_info(e.address.as_ref()));
        std::ptr::addr_of_mut!((*d).instruction_address_info).write(address_info(None));
        std::ptr::addr_of_mut!((*d).vendor_info).write(vendor_info(e.vendor.as_ref()));
    }
}
