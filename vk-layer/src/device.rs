//! Device-level hooks of the device-lost contract: submissions, waits and status queries,
//! presentation, and `vkGetDeviceFaultInfoEXT`.
//!
//! Once a device is lost (injected, or `VK_ERROR_DEVICE_LOST` from the driver below) every
//! entry point here that may return `VK_ERROR_DEVICE_LOST` does, for ever. Submissions on a
//! lost device still go down with zero command buffers, so their semaphores and fences signal;
//! waits still wait below (bounded by [`LOST_WAIT_CAP_NS`]) so that "lost" also means "done"
//! for the in-use rules of the objects the application destroys next.

use std::sync::atomic::Ordering;

use ash::vk;
use ash::vk::Handle;

use agx_winsys::outcome::{Guilt, JobOutcome};
use agx_winsys::vulkan::{c_array, FaultReport};

use crate::dispatch::{
    self, fill_out_array, guard, lock, next, slice, DeviceRef, DeviceState, DispatchKey,
};
use crate::inject::{self, Batches};
use crate::plan::Decision;
use crate::shadow::ShadowFault;
use crate::stats;

/// The longest a wait on a lost device waits below before answering `VK_ERROR_DEVICE_LOST`.
pub const LOST_WAIT_CAP_NS: u64 = 500_000_000;

/// # Safety
/// `h` must be a valid dispatchable handle of a device (device, queue or command buffer).
unsafe fn dev_of<H: Handle>(h: H) -> Option<DeviceRef> {
    // SAFETY: forwarded from the caller.
    dispatch::device(unsafe { DispatchKey::of(h) })
}

/// `vkDestroyDevice`: frees the layer's objects and writes the statistics.
pub unsafe extern "system" fn destroy_device(
    device: vk::Device,
    alloc: *const vk::AllocationCallbacks<'_>,
) {
    guard((), || {
        if device.is_null() {
            return;
        }
        // SAFETY: `device` is valid (valid usage).
        let Some(dev) = dispatch::remove_device(unsafe { DispatchKey::of(device) }) else {
            return;
        };
        inject::destroy_layer_objects(&dev);
        stats::submitted(dev.submits.load(Ordering::Relaxed));
        if let Some(f) = dev.next.destroy_device {
            // SAFETY: forwarded.
            unsafe { f(device, alloc) };
        }
        stats::write_file();
    })
}

/// `vkGetDeviceQueue`: records the queue's family.
pub unsafe extern "system" fn get_device_queue(
    device: vk::Device,
    family: u32,
    index: u32,
    out: *mut vk::Queue,
) {
    guard((), || {
        // SAFETY: valid usage of the command.
        unsafe {
            let Some(dev) = dev_of(device) else { return };
            next!(dev, get_device_queue)(device, family, index, out);
            lock(&dev.queues).insert((*out).as_raw(), family);
        }
    })
}

/// `vkGetDeviceQueue2`: records the queue's family.
pub unsafe extern "system" fn get_device_queue2(
    device: vk::Device,
    info: *const vk::DeviceQueueInfo2<'_>,
    out: *mut vk::Queue,
) {
    guard((), || {
        // SAFETY: valid usage of the command.
        unsafe {
            let Some(dev) = dev_of(device) else { return };
            next!(dev, get_device_queue2)(device, info, out);
            if !(*out).is_null() {
                lock(&dev.queues).insert((*out).as_raw(), (*info).queue_family_index);
            }
        }
    })
}

/// The common path of `vkQueueSubmit` and `vkQueueSubmit2`.
fn submit(
    dev: &DeviceState,
    queue: vk::Queue,
    batches: Batches<'_>,
    fence: vk::Fence,
) -> vk::Result {
    if dev.lost.is_lost() {
        // Signal below, fail above.
        let _ = inject::submit_empty(dev, queue, batches, fence);
        return vk::Result::ERROR_DEVICE_LOST;
    }
    let n = dev.submits.fetch_add(1, Ordering::Relaxed) + 1;
    let decision = if dev.model.is_idle() {
        Decision::Run
    } else {
        dev.model.on_submit(n)
    };
    match decision {
        Decision::Run => {
            let r = inject::submit_as_is(dev, queue, batches, fence);
            dev.check(r, batches.call_name())
        }
        Decision::Guilty(fault) => {
            let planned = JobOutcome::Faulted {
                fault,
                guilt: Guilt::Guilty,
            };
            let outcome = dev
                .shadow_outcome(n, ShadowFault::Guilty, true)
                .unwrap_or(planned);
            inject::guilty(dev, queue, batches, fence, outcome, n)
        }
        Decision::Hang => {
            let outcome = dev
                .shadow_outcome(n, ShadowFault::Hang, true)
                .unwrap_or(JobOutcome::TimedOut);
            inject::guilty(dev, queue, batches, fence, outcome, n)
        }
        Decision::Neighbor => inject::neighbor(dev, queue, batches, fence, n),
    }
}

/// `vkQueueSubmit`.
pub unsafe extern "system" fn queue_submit(
    queue: vk::Queue,
    count: u32,
    submits: *const vk::SubmitInfo<'_>,
    fence: vk::Fence,
) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage: `queue` is valid, `submits` holds `count` submit infos.
        unsafe {
            let Some(dev) = dev_of(queue) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            submit(&dev, queue, Batches::V1(slice(submits, count)), fence)
        }
    })
}

/// `vkQueueSubmit2` (and the KHR alias).
pub unsafe extern "system" fn queue_submit2(
    queue: vk::Queue,
    count: u32,
    submits: *const vk::SubmitInfo2<'_>,
    fence: vk::Fence,
) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage: `queue` is valid, `submits` holds `count` submit infos.
        unsafe {
            let Some(dev) = dev_of(queue) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            submit(&dev, queue, Batches::V2(slice(submits, count)), fence)
        }
    })
}

/// `vkQueueWaitIdle`.
pub unsafe extern "system" fn queue_wait_idle(queue: vk::Queue) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage.
        unsafe {
            let Some(dev) = dev_of(queue) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            let r = next!(dev, queue_wait_idle)(queue);
            dev.check(r, "vkQueueWaitIdle")
        }
    })
}

/// `vkDeviceWaitIdle`.
pub unsafe extern "system" fn device_wait_idle(device: vk::Device) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage.
        unsafe {
            let Some(dev) = dev_of(device) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            let r = next!(dev, device_wait_idle)(device);
            dev.check(r, "vkDeviceWaitIdle")
        }
    })
}

/// `vkWaitForFences`.
pub unsafe extern "system" fn wait_for_fences(
    device: vk::Device,
    count: u32,
    fences: *const vk::Fence,
    wait_all: vk::Bool32,
    timeout: u64,
) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage.
        unsafe {
            let Some(dev) = dev_of(device) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            let f = next!(dev, wait_for_fences);
            if dev.lost.is_lost() {
                let _ = f(
                    device,
                    count,
                    fences,
                    wait_all,
                    timeout.min(LOST_WAIT_CAP_NS),
                );
                return vk::Result::ERROR_DEVICE_LOST;
            }
            let r = f(device, count, fences, wait_all, timeout);
            dev.check(r, "vkWaitForFences")
        }
    })
}

/// A status query that may return `VK_ERROR_DEVICE_LOST`: lost answers at once, otherwise the
/// driver answers and a DEVICE_LOST from it makes the device lost.
macro_rules! lost_query_hook {
    ($(#[$doc:meta])* fn $name:ident($device:ident: vk::Device $(, $arg:ident: $ty:ty)*) => $next:ident, $call:literal) => {
        $(#[$doc])*
        pub unsafe extern "system" fn $name($device: vk::Device $(, $arg: $ty)*) -> vk::Result {
            guard(vk::Result::ERROR_UNKNOWN, || {
                // SAFETY: valid usage: the application's arguments, forwarded unchanged.
                unsafe {
                    let Some(dev) = dev_of($device) else {
                        return vk::Result::ERROR_UNKNOWN;
                    };
                    if dev.lost.is_lost() {
                        return vk::Result::ERROR_DEVICE_LOST;
                    }
                    let r = next!(dev, $next)($device $(, $arg)*);
                    dev.check(r, $call)
                }
            })
        }
    };
}

lost_query_hook! {
    /// `vkGetFenceStatus`.
    fn get_fence_status(device: vk::Device, fence: vk::Fence) => get_fence_status, "vkGetFenceStatus"
}

lost_query_hook! {
    /// `vkGetSemaphoreCounterValue` (and the KHR alias).
    fn get_semaphore_counter_value(device: vk::Device, sem: vk::Semaphore, value: *mut u64)
        => get_semaphore_counter_value, "vkGetSemaphoreCounterValue"
}

lost_query_hook! {
    /// `vkGetEventStatus`.
    fn get_event_status(device: vk::Device, event: vk::Event) => get_event_status, "vkGetEventStatus"
}

/// `vkWaitSemaphores` (and the KHR alias).
pub unsafe extern "system" fn wait_semaphores(
    device: vk::Device,
    info: *const vk::SemaphoreWaitInfo<'_>,
    timeout: u64,
) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage.
        unsafe {
            let Some(dev) = dev_of(device) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            let f = next!(dev, wait_semaphores);
            if dev.lost.is_lost() {
                let _ = f(device, info, timeout.min(LOST_WAIT_CAP_NS));
                return vk::Result::ERROR_DEVICE_LOST;
            }
            let r = f(device, info, timeout);
            dev.check(r, "vkWaitSemaphores")
        }
    })
}

/// `vkGetQueryPoolResults`: never waits below on a lost device (the queries of a lost
/// submission never become available).
#[allow(clippy::too_many_arguments)]
pub unsafe extern "system" fn get_query_pool_results(
    device: vk::Device,
    pool: vk::QueryPool,
    first: u32,
    count: u32,
    size: usize,
    data: *mut std::ffi::c_void,
    stride: vk::DeviceSize,
    flags: vk::QueryResultFlags,
) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage.
        unsafe {
            let Some(dev) = dev_of(device) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            if dev.lost.is_lost() {
                return vk::Result::ERROR_DEVICE_LOST;
            }
            let r = next!(dev, get_query_pool_results)(
                device, pool, first, count, size, data, stride, flags,
            );
            dev.check(r, "vkGetQueryPoolResults")
        }
    })
}

/// `vkQueuePresentKHR`: presents below (keeping WSI state consistent), then reports the loss.
pub unsafe extern "system" fn queue_present_khr(
    queue: vk::Queue,
    info: *const vk::PresentInfoKHR<'_>,
) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage.
        unsafe {
            let Some(dev) = dev_of(queue) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            let r = next!(dev, queue_present_khr)(queue, info);
            let r = dev.check(r, "vkQueuePresentKHR");
            if r == vk::Result::ERROR_DEVICE_LOST && !(*info).p_results.is_null() {
                for i in 0..(*info).swapchain_count as usize {
                    *(*info).p_results.add(i) = vk::Result::ERROR_DEVICE_LOST;
                }
            }
            r
        }
    })
}

/// `vkAcquireNextImageKHR`.
pub unsafe extern "system" fn acquire_next_image_khr(
    device: vk::Device,
    swapchain: vk::SwapchainKHR,
    timeout: u64,
    sem: vk::Semaphore,
    fence: vk::Fence,
    index: *mut u32,
) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage.
        unsafe {
            let Some(dev) = dev_of(device) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            if dev.lost.is_lost() {
                return vk::Result::ERROR_DEVICE_LOST;
            }
            let r =
                next!(dev, acquire_next_image_khr)(device, swapchain, timeout, sem, fence, index);
            dev.check(r, "vkAcquireNextImageKHR")
        }
    })
}

/// `vkAcquireNextImage2KHR`.
pub unsafe extern "system" fn acquire_next_image2_khr(
    device: vk::Device,
    info: *const vk::AcquireNextImageInfoKHR<'_>,
    index: *mut u32,
) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage.
        unsafe {
            let Some(dev) = dev_of(device) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            if dev.lost.is_lost() {
                return vk::Result::ERROR_DEVICE_LOST;
            }
            let r = next!(dev, acquire_next_image2_khr)(device, info, index);
            dev.check(r, "vkAcquireNextImage2KHR")
        }
    })
}

/// The layer's report as Vulkan structures.
fn report_arrays(
    r: &FaultReport,
) -> (
    Vec<vk::DeviceFaultAddressInfoEXT>,
    Vec<vk::DeviceFaultVendorInfoEXT>,
) {
    let addrs = r
        .addresses
        .iter()
        .map(|a| vk::DeviceFaultAddressInfoEXT {
            address_type: vk::DeviceFaultAddressTypeEXT::from_raw(a.kind as i32),
            reported_address: a.address,
            address_precision: a.precision,
        })
        .collect();
    let vendors = r
        .vendor
        .iter()
        .map(|v| {
            let mut out = vk::DeviceFaultVendorInfoEXT {
                vendor_fault_code: v.code,
                vendor_fault_data: v.data,
                ..Default::default()
            };
            for (d, s) in out.description.iter_mut().zip(c_array(&v.description)) {
                *d = s as std::ffi::c_char;
            }
            out
        })
        .collect();
    (addrs, vendors)
}

/// `vkGetDeviceFaultInfoEXT`: the layer's report when the layer lost the device or implements
/// the extension; the driver's otherwise.
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
            if report.is_none() && !dev.fault_emulated {
                if let Some(f) = dev.next.get_device_fault_info_ext {
                    return f(device, counts, info);
                }
            }
            let (addrs, vendors) = report.map(report_arrays).unwrap_or_default();
            let c = &mut *counts;
            if info.is_null() {
                c.address_info_count = addrs.len() as u32;
                c.vendor_info_count = vendors.len() as u32;
                c.vendor_binary_size = 0;
                return vk::Result::SUCCESS;
            }
            let i = &mut *info;
            let desc = report.map(|r| r.description_array()).unwrap_or([0; 256]);
            for (d, s) in i.description.iter_mut().zip(desc) {
                *d = s as std::ffi::c_char;
            }
            let mut incomplete = false;
            for (cnt, ptr, items) in [
                (
                    &mut c.address_info_count,
                    i.p_address_infos as *mut u8,
                    addrs.len(),
                ),
                (
                    &mut c.vendor_info_count,
                    i.p_vendor_infos as *mut u8,
                    vendors.len(),
                ),
            ] {
                if ptr.is_null() {
                    incomplete |= items > 0;
                    *cnt = 0;
                }
            }
            if !i.p_address_infos.is_null()
                && fill_out_array(&mut c.address_info_count, i.p_address_infos, &addrs)
                    == vk::Result::INCOMPLETE
            {
                incomplete = true;
            }
            if !i.p_vendor_infos.is_null()
                && fill_out_array(&mut c.vendor_info_count, i.p_vendor_infos, &vendors)
                    == vk::Result::INCOMPLETE
            {
                incomplete = true;
            }
            c.vendor_binary_size = 0;
            if incomplete {
                vk::Result::INCOMPLETE
            } else {
                vk::Result::SUCCESS
            }
        }
    })
}
