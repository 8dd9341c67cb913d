//! The C ABI of the winsys, as Mesa's Gallium and Vulkan drivers link it (`libagx_winsys.a` and
//! `include/agx_winsys.h`, generated from this module by cbindgen: see `docs/c-abi.md`).
//!
//! This module is the only place of the crate where `unsafe` is allowed. Its rules, which the
//! header repeats for C callers:
//!
//! - Every function is `agx_ws_*` and returns `0` (or a documented non-negative value) on success
//!   and a negative errno on failure; a Rust panic never crosses the boundary: it is caught and
//!   returned as [`AGX_WS_ERR_PANIC`]. [`agx_ws_last_error`] gives the message of the calling
//!   thread's last failure.
//! - Objects are opaque handles. A handle is a token looked up in a registry of live objects, never
//!   dereferenced: NULL is `-EINVAL`; a destroyed, never created or wrong-kind handle is `-EBADF`
//!   (tokens are never reused, so a stale handle cannot reach a newer object).
//! - Descriptors and out-structs start with `uint32_t struct_size`, which the caller sets to
//!   `sizeof` the struct; any other value is `-EINVAL`. Arrays are a count and a pointer (NULL
//!   allowed when the count is 0). Every pointer is checked for NULL and alignment before use.
//! - Enumerations are `uint32_t` fields in structs, validated on input (`-EINVAL`).
#![allow(unsafe_code)]
#![allow(non_camel_case_types)]

pub mod cmd;
pub mod cmd_desc;
pub mod device;
pub mod drm_submit;
mod guard;
mod handle;
pub mod memory;
pub mod queue;
pub mod reset;
#[cfg(feature = "sim")]
pub mod sim;
pub mod sync;
pub mod vulkan;

use std::os::raw::{c_char, c_int};

/// Returned instead of crashing when the library panicked (a bug in the winsys): the call had no
/// effect that can be relied on, but every other object stays usable. Outside the errno range.
pub const AGX_WS_ERR_PANIC: c_int = -10000;

/// A non-error result: an output array was too short and holds only the first entries
/// (`VK_INCOMPLETE`).
pub const AGX_WS_INCOMPLETE: c_int = 1;

/// A relative timeout that never expires (in practice: the year 2262, since every wait of the
/// winsys is bounded).
pub const AGX_WS_TIMEOUT_INFINITE: u64 = 0xFFFF_FFFF_FFFF_FFFF;

/// The message of the calling thread's last failed `agx_ws_*` call ("" if none): the function
/// name and what was wrong.
///
/// # Safety
///
/// Always safe to call. The returned string is owned by the library and stays valid until the
/// calling thread's next failing `agx_ws_*` call; do not free it.
///
/// Thread safety: thread-safe (the message is per thread).
#[no_mangle]
pub extern "C" fn agx_ws_last_error() -> *const c_char {
    guard::last_error_ptr()
}

/// The boundary's checks, without a device (so they also run under Miri).
#[cfg(test)]
mod tests {
    use std::ptr;

    use super::reset::*;
    use super::sim::*;
    use super::vulkan::*;

    #[test]
    fn handles_are_checked_and_never_reused() {
        let mut t = ptr::null_mut();
        // SAFETY: a valid out-pointer.
        assert_eq!(unsafe { agx_ws_reset_tracker_create(&mut t) }, 0);
        let mut status = 7;
        // SAFETY: valid handle and out-pointer (and below: handles are only looked up).
        unsafe {
            assert_eq!(agx_ws_reset_tracker_observe(t, 2), 0);
            assert_eq!(agx_ws_reset_tracker_get_status(t, &mut status), 0);
            assert_eq!(status, 2);
            assert_eq!(agx_ws_reset_tracker_observe(t, 9), -libc::EINVAL);
            assert_eq!(agx_ws_reset_tracker_destroy(t), 0);
            assert_eq!(agx_ws_reset_tracker_destroy(t), -libc::EBADF);
            assert_eq!(
                agx_ws_reset_tracker_get_status(t, &mut status),
                -libc::EBADF
            );
            assert_eq!(agx_ws_reset_tracker_destroy(ptr::null_mut()), -libc::EINVAL);
            // A handle of another kind.
            let mut s = ptr::null_mut();
            assert_eq!(agx_ws_sim_stream_create(&mut s), 0);
            assert_eq!(agx_ws_reset_tracker_destroy(s.cast()), -libc::EBADF);
            assert_eq!(agx_ws_sim_stream_destroy(s), 0);
        }
        let mut t2 = ptr::null_mut();
        // SAFETY: a valid out-pointer.
        assert_eq!(unsafe { agx_ws_reset_tracker_create(&mut t2) }, 0);
        assert_ne!(t, t2, "tokens are not reused");
        // SAFETY: a live handle.
        assert_eq!(unsafe { agx_ws_reset_tracker_destroy(t2) }, 0);
    }

    #[test]
    fn struct_sizes_and_out_arrays() {
        let mut vk = ptr::null_mut();
        // SAFETY: valid pointers throughout; `counts` and `info` are ours.
        unsafe {
            assert_eq!(agx_ws_vk_device_create(&mut vk), 0);
            let mut counts = agx_ws_fault_counts {
                struct_size: 3,
                address_info_count: 0,
                vendor_info_count: 0,
                pad: 0,
                vendor_binary_size: 0,
            };
            assert_eq!(
                agx_ws_vk_device_get_fault_info(vk, &mut counts, ptr::null_mut()),
                -libc::EINVAL
            );
            counts.struct_size = size_of::<agx_ws_fault_counts>() as u32;
            assert_eq!(
                agx_ws_vk_device_get_fault_info(vk, &mut counts, ptr::null_mut()),
                0
            );
            assert_eq!(
                (counts.address_info_count, counts.vendor_info_count),
                (0, 0)
            );
            let mut r = 1;
            assert_eq!(agx_ws_vk_device_check_status(vk, &mut r), 0);
            assert_eq!(r, 0);
            assert_eq!(
                agx_ws_vk_device_observe_submit_error(vk, -libc::ENOMEM, 1, &mut r),
                0
            );
            assert_eq!(r, crate::vulkan::VK_ERROR_OUT_OF_DEVICE_MEMORY);
            assert_eq!(
                agx_ws_vk_device_observe_submit_error(vk, -libc::ECANCELED, 2, &mut r),
                0
            );
            assert_eq!(r, crate::vulkan::VK_ERROR_DEVICE_LOST);
            assert_eq!(agx_ws_vk_device_check_status(vk, &mut r), 0);
            assert_eq!(r, crate::vulkan::VK_ERROR_DEVICE_LOST);
            // Fill with a short vendor array: INCOMPLETE.
            assert_eq!(
                agx_ws_vk_device_get_fault_info(vk, &mut counts, ptr::null_mut()),
                0
            );
            assert!(counts.vendor_info_count >= 2);
            let mut vendor = vec![
                agx_ws_fault_vendor_info {
                    description: [0; AGX_WS_MAX_DESCRIPTION_SIZE],
                    vendor_fault_code: 0,
                    vendor_fault_data: 0,
                };
                1
            ];
            let mut info = agx_ws_fault_info {
                struct_size: size_of::<agx_ws_fault_info>() as u32,
                pad: 0,
                description: [0; AGX_WS_MAX_DESCRIPTION_SIZE],
                address_infos: ptr::null_mut(),
                vendor_infos: vendor.as_mut_ptr(),
                vendor_binary_data: ptr::null_mut(),
            };
            counts.vendor_info_count = 1;
            assert_eq!(
                agx_ws_vk_device_get_fault_info(vk, &mut counts, &mut info),
                super::AGX_WS_INCOMPLETE
            );
            assert_eq!(counts.vendor_info_count, 1);
            assert_eq!(
                vendor[0].vendor_fault_code,
                crate::vulkan::vendor_code::GUILT
            );
            assert_ne!(info.description[0], 0);
            assert_eq!(agx_ws_vk_device_destroy(vk), 0);
        }
    }

    #[test]
    fn fault_reports_leave_the_callers_stype_and_pnext() {
        use std::mem::{offset_of, MaybeUninit};
        // The layout of VkDeviceFaultInfoKHR (LP64).
        assert_eq!(offset_of!(agx_ws_fault_report, flags), 16);
        assert_eq!(offset_of!(agx_ws_fault_report, group_id), 24);
        assert_eq!(offset_of!(agx_ws_fault_report, description), 32);
        assert_eq!(offset_of!(agx_ws_fault_report, fault_address_info), 288);
        assert_eq!(
            offset_of!(agx_ws_fault_report, instruction_address_info),
            312
        );
        assert_eq!(offset_of!(agx_ws_fault_report, vendor_info), 336);
        assert_eq!(size_of::<agx_ws_fault_report>(), 608);
        let mut vk = ptr::null_mut();
        let counts = |n| agx_ws_fault_report_counts {
            struct_size: size_of::<agx_ws_fault_report_counts>() as u32,
            report_count: n,
            reports_left: 0,
            lost: 0,
        };
        // SAFETY: valid pointers throughout; `c` and `reports` are ours.
        unsafe {
            assert_eq!(agx_ws_vk_device_create(&mut vk), 0);
            assert_eq!(agx_ws_vk_device_set_masked_faults(vk, 4), -libc::EINVAL);
            assert_eq!(
                agx_ws_vk_device_set_masked_faults(vk, AGX_WS_VK_MASKED_FAULTS_REPORT),
                0
            );
            let mut c = counts(0);
            c.struct_size = 4;
            assert_eq!(
                agx_ws_vk_device_get_fault_reports(vk, 0, &mut c, ptr::null_mut()),
                -libc::EINVAL
            );
            // Nothing yet: a bounded wait times out.
            let mut c = counts(0);
            let t0 = std::time::Instant::now();
            assert_eq!(
                agx_ws_vk_device_get_fault_reports(vk, 20_000_000, &mut c, ptr::null_mut()),
                -libc::ETIME
            );
            assert!(t0.elapsed() >= std::time::Duration::from_millis(20));
            assert_eq!((c.report_count, c.lost), (0, 0));
            // A refused submit loses the device: one DEVICE_LOST group.
            let mut r = 0;
            assert_eq!(
                agx_ws_vk_device_observe_submit_error(vk, -libc::ECANCELED, 2, &mut r),
                0
            );
            let mut c = counts(0);
            assert_eq!(
                agx_ws_vk_device_get_fault_reports(
                    vk,
                    super::AGX_WS_TIMEOUT_INFINITE,
                    &mut c,
                    ptr::null_mut()
                ),
                0
            );
            let available = c.report_count;
            assert!(available >= 2);
            assert_eq!(c.lost, 1);
            let mut reports: Vec<MaybeUninit<agx_ws_fault_report>> =
                (0..8).map(|_| MaybeUninit::zeroed()).collect();
            for r in &mut reports {
                let p = r.as_mut_ptr();
                (*p).reserved_type = 1_000_573_002;
                (*p).reserved_next = 0x1234 as *mut std::ffi::c_void;
            }
            let base = reports.as_mut_ptr().cast::<agx_ws_fault_report>();
            let mut c = counts(1);
            assert_eq!(
                agx_ws_vk_device_get_fault_reports(vk, 0, &mut c, base),
                super::AGX_WS_INCOMPLETE
            );
            assert_eq!((c.report_count, c.reports_left), (1, available - 1));
            let mut c = counts(8);
            assert_eq!(
                agx_ws_vk_device_get_fault_reports(vk, 0, &mut c, base.add(1)),
                0
            );
            assert_eq!(c.report_count, available - 1);
            let got: Vec<&agx_ws_fault_report> = reports[..available as usize]
                .iter()
                .map(|r| r.assume_init_ref())
                .collect();
            for r in &got {
                assert_eq!(r.reserved_type, 1_000_573_002);
                assert_eq!(r.reserved_next as usize, 0x1234);
                assert_eq!(r.group_id, 1);
                assert_ne!(r.flags & AGX_WS_FAULT_REPORT_VENDOR, 0);
                assert_ne!(r.description[0], 0);
            }
            assert!(got[..got.len() - 1]
                .iter()
                .all(|r| r.flags & AGX_WS_FAULT_REPORT_DEVICE_LOST == 0));
            assert_ne!(
                got.last().unwrap().flags & AGX_WS_FAULT_REPORT_DEVICE_LOST,
                0
            );
            // Each entry once: drained and lost, the next call returns at once.
            let mut c = counts(8);
            let t0 = std::time::Instant::now();
            assert_eq!(
                agx_ws_vk_device_get_fault_reports(
                    vk,
                    super::AGX_WS_TIMEOUT_INFINITE,
                    &mut c,
                    base
                ),
                -libc::ETIME
            );
            assert!(t0.elapsed() < std::time::Duration::from_secs(5));
            assert_eq!((c.report_count, c.lost), (0, 1));
            assert_eq!(agx_ws_vk_device_destroy(vk), 0);
        }
    }

    #[test]
    fn streams_write_into_caller_memory() {
        let mut s = ptr::null_mut();
        let mut buf = vec![0u8; 128];
        let mut size = 0u64;
        // SAFETY: valid pointers; `buf` has the capacity passed.
        unsafe {
            assert_eq!(agx_ws_sim_stream_create(&mut s), 0);
            assert_eq!(agx_ws_sim_stream_fill(s, 0x1000, 64, 0xab), 0);
            assert_eq!(agx_ws_sim_stream_get_size(s, &mut size), 0);
            assert_eq!(size, 64);
            assert_eq!(
                agx_ws_sim_stream_write(s, buf.as_mut_ptr().cast(), 32, &mut size),
                -libc::ENOSPC
            );
            assert_eq!(
                agx_ws_sim_stream_write(s, buf.as_mut_ptr().cast(), 128, &mut size),
                0
            );
            assert_eq!(agx_ws_sim_stream_destroy(s), 0);
        }
        assert_eq!(size, 64);
        assert_eq!(buf[0], agx_sim::stream::OP_FILL as u8);
        assert!(buf[64..].iter().all(|&b| b == 0));
    }
}
