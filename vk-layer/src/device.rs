//! Device-level hooks of the device-lost contract: submissions, waits and status queries,
//! presentation.
//!
//! Once a device is lost (injected, or `VK_ERROR_DEVICE_LOST` from the driver below) every
//! entry point here that may return `VK_ERROR_DEVICE_LOST` does, for ever. Submissions on a
//! lost device still go down with zero command buffers, so their semaphores and fences signal.
//! Lost does not mean finished: a wait on a lost device returns `VK_ERROR_DEVICE_LOST` only once
//! everything submitted below before is finished there (an empty submission with a layer fence
//! per queue, waited for within the application's timeout; `VK_TIMEOUT` otherwise), and a status
//! query answers `VK_ERROR_DEVICE_LOST` only from then on (the driver's own answer until), so the
//! application never frees memory the GPU still uses.
//!
//! With a `neighbor` term, submissions may be held by a queue worker (`crate::submit::queue`):
//! fence waits and status queries, queue and device idle waits and presents account for them.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ash::vk;
use ash::vk::Handle;

use crate::dispatch::{self, guard, lock, next, slice, DeviceRef, DeviceState, DispatchKey};
use crate::stats;
use crate::submit::queue::SLICE;
use crate::submit::{self, queue::QueueInfo, Batches};

/// # Safety
/// `h` must be a valid dispatchable handle of a device (device, queue or command buffer).
unsafe fn dev_of<H: Handle>(h: H) -> Option<DeviceRef> {
    // SAFETY: forwarded from the caller.
    dispatch::device(unsafe { DispatchKey::of(h) })
}

/// The deadline of a Vulkan timeout in nanoseconds (None: no deadline).
fn deadline(timeout: u64) -> Option<Instant> {
    Instant::now().checked_add(Duration::from_nanos(timeout))
}

/// What remains of `deadline` as a Vulkan timeout.
fn remaining(deadline: Option<Instant>) -> u64 {
    match deadline {
        None => u64::MAX,
        Some(d) => d.saturating_duration_since(Instant::now()).as_nanos() as u64,
    }
}

/// How long, after a loss, the layer waits for the work below to finish before it treats what
/// is left as never going to run. Model constant: the kernel cancels a lost context's pending
/// jobs, which the layer cannot do below the API; work still unfinished this long after the
/// loss is taken to be blocked in a wait (on a timeline value or an event the lost application
/// will never signal, possibly from the very thread that is waiting here), where it touches no
/// memory.
pub const LOST_DRAIN_GRACE: Duration = Duration::from_secs(5);

/// A wait on a lost device: `VK_ERROR_DEVICE_LOST` once the work below is finished,
/// `VK_TIMEOUT` if `deadline` passes first, `VK_ERROR_DEVICE_LOST` too once
/// [`LOST_DRAIN_GRACE`] has passed (from then on, at once).
fn lost_wait(dev: &DeviceState, deadline: Option<Instant>) -> vk::Result {
    // Waits that started before the loss leave the driver within a slice (`sliced_wait`).
    if let Some(at) = *lock(&dev.lost_at) {
        std::thread::sleep((at + SLICE).saturating_duration_since(Instant::now()));
    }
    if dev.lost_gave_up.load(Ordering::Relaxed) {
        dev.drained_after_loss(Some(Instant::now()));
        return vk::Result::ERROR_DEVICE_LOST;
    }
    let grace = Instant::now() + LOST_DRAIN_GRACE;
    let (end, capped) = match deadline {
        Some(d) if d < grace => (d, false),
        _ => (grace, true),
    };
    if dev.drained_after_loss(Some(end)) {
        vk::Result::ERROR_DEVICE_LOST
    } else if capped {
        eprintln!(
            "VK_LAYER_AGX_fault: work submitted before the loss still unfinished after {:?}: \
             taken as blocked for ever",
            LOST_DRAIN_GRACE
        );
        dev.lost_gave_up.store(true, Ordering::Relaxed);
        vk::Result::ERROR_DEVICE_LOST
    } else {
        vk::Result::TIMEOUT
    }
}

/// A wait below in slices of [`SLICE`], so that no thread stays inside the driver's wait on
/// the application's objects once the device is lost (the application may destroy them as soon
/// as a wait returns `VK_ERROR_DEVICE_LOST`; `lost_wait` returns no earlier than one slice after
/// the loss). `wait(ns)` is the driver's wait with a timeout.
fn sliced_wait(
    dev: &DeviceState,
    end: Option<Instant>,
    call: &str,
    mut wait: impl FnMut(u64) -> vk::Result,
) -> vk::Result {
    loop {
        let left = remaining(end);
        let r = wait(left.min(SLICE.as_nanos() as u64));
        if r == vk::Result::TIMEOUT && left > SLICE.as_nanos() as u64 {
            if dev.lost.is_lost() {
                return lost_wait(dev, end);
            }
            continue;
        }
        let r = dev.check(r, call);
        if r == vk::Result::ERROR_DEVICE_LOST {
            return lost_wait(dev, end);
        }
        return r;
    }
}

/// A status query on a lost device: `VK_ERROR_DEVICE_LOST` once the work below is finished,
/// the driver's answer (`r`) until then (never `VK_SUCCESS` for a fence of unfinished work).
fn lost_status(dev: &DeviceState, r: vk::Result) -> vk::Result {
    if dev.drained_after_loss(Some(Instant::now())) {
        vk::Result::ERROR_DEVICE_LOST
    } else if r == vk::Result::ERROR_DEVICE_LOST {
        vk::Result::NOT_READY
    } else {
        r
    }
}

/// `vkDestroyDevice`: stops the queue workers, frees the layer's objects, writes the statistics.
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
        // The application waited for its work (valid usage); after a loss, the layer makes sure
        // (within the grace: held work blocked for ever is abandoned).
        if dev.lost.is_lost() {
            let _ = lost_wait(&dev, None);
            dev.stop_workers(true);
        } else {
            dev.stop_workers(false);
        }
        if let Some(c) = &dev.capture {
            lock(c).destroy(&dev);
        }
        destroy_layer_objects(&dev);
        stats::submitted(dev.submits.load(Ordering::Relaxed));
        if let Some(f) = dev.next.destroy_device {
            // SAFETY: forwarded.
            unsafe { f(device, alloc) };
        }
        stats::write_file();
    })
}

/// Destroys the layer's objects of a device about to be destroyed.
fn destroy_layer_objects(dev: &DeviceState) {
    let queues: Vec<_> = lock(&dev.queues).drain().map(|(_, q)| q).collect();
    for q in queues {
        let mut objs = lock(&q.objs);
        // SAFETY: layer-owned objects; nothing of the device is pending (valid usage of
        // vkDestroyDevice, and the drain above).
        unsafe {
            if let Some(p) = objs.pool.take() {
                next!(dev, destroy_command_pool)(dev.handle, p, std::ptr::null());
            }
            if let Some(s) = objs.staging.take() {
                s.destroy(dev);
            }
            let mut fences: Vec<vk::Fence> = objs.fences.drain(..).collect();
            fences.extend(objs.barrier.take().map(|b| b.0));
            for f in fences {
                next!(dev, destroy_fence)(dev.handle, f, std::ptr::null());
            }
        }
    }
}

/// Records queue `q` of `family`.
fn add_queue(dev: &DeviceState, q: vk::Queue, family: u32) {
    if q.is_null() {
        return;
    }
    lock(&dev.queues).entry(q.as_raw()).or_insert_with(|| {
        std::sync::Arc::new(QueueInfo {
            handle: q,
            family,
            objs: Default::default(),
        })
    });
}

/// `vkGetDeviceQueue`: records the queue.
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
            add_queue(&dev, *out, family);
        }
    })
}

/// `vkGetDeviceQueue2`: records the queue.
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
            add_queue(&dev, *out, (*info).queue_family_index);
        }
    })
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
            submit::submit(&dev, queue, Batches::V1(slice(submits, count)), fence)
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
            submit::submit(&dev, queue, Batches::V2(slice(submits, count)), fence)
        }
    })
}

/// Waits until `q` holds no submission (the application's thread; bounded by the held work).
fn drain_queue(dev: &DeviceState, q: vk::Queue) {
    if dev.track {
        dev.sched_wait(None, |s| {
            s.queues
                .get(&q.as_raw())
                .is_none_or(submit::queue::QueueSched::idle)
        });
    }
}

/// `vkQueueBindSparse`: in order behind held submissions.
pub unsafe extern "system" fn queue_bind_sparse(
    queue: vk::Queue,
    count: u32,
    info: *const vk::BindSparseInfo<'_>,
    fence: vk::Fence,
) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage.
        unsafe {
            let Some(dev) = dev_of(queue) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            if dev.lost.is_lost() {
                return vk::Result::ERROR_DEVICE_LOST;
            }
            drain_queue(&dev, queue);
            let q = dev.queue(queue);
            let _objs = q.as_ref().map(|q| lock(&q.objs));
            let r = next!(dev, queue_bind_sparse)(queue, count, info, fence);
            dev.check(r, "vkQueueBindSparse")
        }
    })
}

/// `vkQueueWaitIdle`: its held submissions go down, then an empty submission with a layer
/// fence is waited for (so the layer never holds the queue across the wait).
pub unsafe extern "system" fn queue_wait_idle(queue: vk::Queue) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage.
        unsafe {
            let Some(dev) = dev_of(queue) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            if dev.lost.is_lost() {
                return lost_wait(&dev, None);
            }
            if dev.model.is_idle() {
                // No plan: nothing of the layer's on the queue.
                let r = next!(dev, queue_wait_idle)(queue);
                let r = dev.check(r, "vkQueueWaitIdle");
                if r == vk::Result::ERROR_DEVICE_LOST {
                    return lost_wait(&dev, None);
                }
                return r;
            }
            drain_queue(&dev, queue);
            let r = match dev.queue(queue) {
                Some(q) => match dev.queue_fence_wait(&q, None) {
                    Ok(_) => vk::Result::SUCCESS,
                    Err(e) => e,
                },
                None => next!(dev, queue_wait_idle)(queue),
            };
            let r = dev.check(r, "vkQueueWaitIdle");
            if r == vk::Result::ERROR_DEVICE_LOST {
                return lost_wait(&dev, None);
            }
            r
        }
    })
}

/// `vkDeviceWaitIdle`: every queue, as `vkQueueWaitIdle`.
pub unsafe extern "system" fn device_wait_idle(device: vk::Device) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage.
        let Some(dev) = (unsafe { dev_of(device) }) else {
            return vk::Result::ERROR_UNKNOWN;
        };
        if dev.lost.is_lost() {
            return lost_wait(&dev, None);
        }
        if dev.model.is_idle() {
            // No plan: nothing of the layer's on the queues.
            // SAFETY: valid usage.
            let r = unsafe { next!(dev, device_wait_idle)(device) };
            let r = dev.check(r, "vkDeviceWaitIdle");
            if r == vk::Result::ERROR_DEVICE_LOST {
                return lost_wait(&dev, None);
            }
            return r;
        }
        if dev.track {
            dev.sched_wait(None, submit::queue::Sched::all_idle);
        }
        let queues: Vec<_> = lock(&dev.queues).values().cloned().collect();
        let mut r = vk::Result::SUCCESS;
        for q in queues {
            if let Err(e) = dev.queue_fence_wait(&q, None) {
                r = e;
            }
        }
        let r = dev.check(r, "vkDeviceWaitIdle");
        if r == vk::Result::ERROR_DEVICE_LOST {
            return lost_wait(&dev, None);
        }
        r
    })
}

/// `vkWaitForFences`: fences of held submissions are waited for in the layer until their
/// submission goes down, then below.
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
            let end = deadline(timeout);
            if dev.lost.is_lost() {
                return lost_wait(&dev, end);
            }
            let list = slice(fences, count);
            if dev.track {
                let held = |s: &submit::queue::Sched| {
                    let n = list
                        .iter()
                        .filter(|f| s.fences.contains_key(&f.as_raw()))
                        .count();
                    if wait_all != 0 {
                        n == 0
                    } else {
                        n < list.len()
                    }
                };
                if !dev.sched_wait(end, held) {
                    return vk::Result::TIMEOUT;
                }
            }
            let f = next!(dev, wait_for_fences);
            sliced_wait(&dev, end, "vkWaitForFences", |ns| {
                f(device, count, fences, wait_all, ns)
            })
        }
    })
}

/// `vkGetFenceStatus`: a fence of a held submission is not ready.
pub unsafe extern "system" fn get_fence_status(device: vk::Device, fence: vk::Fence) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage: the application's arguments, forwarded unchanged.
        unsafe {
            let Some(dev) = dev_of(device) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            if dev.track && dev.sched().fences.contains_key(&fence.as_raw()) {
                return vk::Result::NOT_READY;
            }
            let r = next!(dev, get_fence_status)(device, fence);
            if dev.lost.is_lost() {
                // Signalled below or not, only "finished" once everything is.
                let r = if r == vk::Result::SUCCESS {
                    vk::Result::NOT_READY
                } else {
                    r
                };
                return lost_status(&dev, r);
            }
            let r = dev.check(r, "vkGetFenceStatus");
            if r == vk::Result::ERROR_DEVICE_LOST {
                return lost_status(&dev, vk::Result::NOT_READY);
            }
            r
        }
    })
}

/// A status query that may return `VK_ERROR_DEVICE_LOST` (see [`lost_status`]).
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
                    let r = next!(dev, $next)($device $(, $arg)*);
                    if dev.lost.is_lost() {
                        return lost_status(&dev, r);
                    }
                    let r = dev.check(r, $call);
                    if r == vk::Result::ERROR_DEVICE_LOST {
                        return lost_status(&dev, vk::Result::NOT_READY);
                    }
                    r
                }
            })
        }
    };
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
            let end = deadline(timeout);
            if dev.lost.is_lost() {
                return lost_wait(&dev, end);
            }
            // Timeline values signalled by held submissions are simply not reached yet below.
            let f = next!(dev, wait_semaphores);
            sliced_wait(&dev, end, "vkWaitSemaphores", |ns| f(device, info, ns))
        }
    })
}

/// `vkGetQueryPoolResults`: on a lost device, with `WAIT` it waits for the work below; the
/// queries of a lost submission never become available.
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
                if flags.contains(vk::QueryResultFlags::WAIT) {
                    return lost_wait(&dev, None);
                }
                return lost_status(&dev, vk::Result::NOT_READY);
            }
            let f = next!(dev, get_query_pool_results);
            if !flags.contains(vk::QueryResultFlags::WAIT) {
                let r = f(device, pool, first, count, size, data, stride, flags);
                return dev.check(r, "vkGetQueryPoolResults");
            }
            // WAIT has no timeout below: poll, so a loss (whose killed work never writes its
            // queries) ends the wait.
            let poll = flags & !vk::QueryResultFlags::WAIT;
            loop {
                let r = f(device, pool, first, count, size, data, stride, poll);
                if r != vk::Result::NOT_READY {
                    let r = dev.check(r, "vkGetQueryPoolResults");
                    if r == vk::Result::ERROR_DEVICE_LOST {
                        return lost_wait(&dev, None);
                    }
                    return r;
                }
                if dev.lost.is_lost() {
                    return lost_wait(&dev, None);
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    })
}

/// `vkQueuePresentKHR`: after the queue's held submissions and the signals it waits for went
/// down; presents below (keeping WSI state consistent), then reports a loss.
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
            if dev.track {
                let waits = slice((*info).p_wait_semaphores, (*info).wait_semaphore_count);
                dev.sched_wait(None, |s| {
                    s.queues
                        .get(&queue.as_raw())
                        .is_none_or(submit::queue::QueueSched::idle)
                        && !dev.waits_on_held(s, waits.iter().copied())
                });
            }
            let q = dev.queue(queue);
            let r = match &q {
                Some(q) if dev.capture.is_some() && !dev.lost.is_lost() => {
                    crate::capture::present(&dev, q, info)
                }
                _ if dev.lost.is_lost() => {
                    // Present below (the image goes back to the swapchain) without waiting for
                    // semaphores a lost application may never have signalled.
                    let mut i = *info;
                    i.wait_semaphore_count = 0;
                    i.p_wait_semaphores = std::ptr::null();
                    let _objs = q.as_ref().map(|q| lock(&q.objs));
                    next!(dev, queue_present_khr)(queue, &i)
                }
                _ => {
                    let _objs = q.as_ref().map(|q| lock(&q.objs));
                    next!(dev, queue_present_khr)(queue, info)
                }
            };
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
            // On a lost device too: its semaphore and fence must signal, or the application's
            // next (empty) submission waits on them for ever, and so does its present.
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
            // On a lost device too (see vkAcquireNextImageKHR).
            let r = next!(dev, acquire_next_image2_khr)(device, info, index);
            dev.check(r, "vkAcquireNextImage2KHR")
        }
    })
}
