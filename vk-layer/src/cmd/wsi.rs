//! Tracking hooks of objects the layer needs beyond memory: swapchains (their images are
//! memory of their own, cleared by the scramble: `TRANSFER_DST` is added to their usage when
//! the surface allows it; `TRANSFER_SRC` for `AGX_FAULT_FRAMES`) and semaphores (timeline semaphores may be waited on before they are
//! signalled; binary ones may not).

use ash::vk;
use ash::vk::Handle;

use crate::dispatch::{chain, guard, lock, next, slice};
use crate::track::SwapImage;

use super::dev_of;

/// `vkCreateSwapchainKHR`: adds `TRANSFER_DST` to the image usage when the surface supports
/// it, so a neighbour fault can scramble the images; remembers what the images are like.
pub unsafe extern "system" fn create_swapchain_khr(
    device: vk::Device,
    info: *const vk::SwapchainCreateInfoKHR<'_>,
    alloc: *const vk::AllocationCallbacks<'_>,
    out: *mut vk::SwapchainKHR,
) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage of the command; the copy of the create info keeps the
        // application's pointers, valid during the call.
        unsafe {
            let Some(dev) = dev_of(device) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            let mut ci = *info;
            let mut want = vk::ImageUsageFlags::empty();
            if dev.track {
                want |= vk::ImageUsageFlags::TRANSFER_DST;
            }
            if dev.capture.is_some() {
                want |= vk::ImageUsageFlags::TRANSFER_SRC;
            }
            if !ci.image_usage.contains(want) {
                if let Some(caps) = dev.surface_capabilities {
                    let mut c = vk::SurfaceCapabilitiesKHR::default();
                    if caps(dev.phys, ci.surface, &mut c) == vk::Result::SUCCESS {
                        ci.image_usage |= want & c.supported_usage_flags;
                    }
                }
            }
            let r = next!(dev, create_swapchain_khr)(device, &ci, alloc, out);
            if r == vk::Result::SUCCESS && dev.wsi() {
                let sc = (*out).as_raw();
                let t = SwapImage {
                    swapchain: sc,
                    format: ci.image_format.as_raw(),
                    width: ci.image_extent.width,
                    height: ci.image_extent.height,
                    layers: ci.image_array_layers,
                    transfer_dst: ci.image_usage.contains(vk::ImageUsageFlags::TRANSFER_DST),
                    transfer_src: ci.image_usage.contains(vk::ImageUsageFlags::TRANSFER_SRC),
                    color_attachment: ci
                        .image_usage
                        .contains(vk::ImageUsageFlags::COLOR_ATTACHMENT),
                };
                let mut tr = lock(&dev.tracker);
                tr.objects.swap_templates.insert(sc, t);
                tr.objects.swapchains.insert(sc, Vec::new());
            }
            r
        }
    })
}

/// `vkDestroySwapchainKHR`: forgets the swapchain and its images.
pub unsafe extern "system" fn destroy_swapchain_khr(
    device: vk::Device,
    sc: vk::SwapchainKHR,
    alloc: *const vk::AllocationCallbacks<'_>,
) {
    guard((), || {
        // SAFETY: valid usage of the command.
        unsafe {
            let Some(dev) = dev_of(device) else { return };
            if dev.wsi() {
                lock(&dev.tracker).objects.remove_swapchain(sc.as_raw());
            }
            next!(dev, destroy_swapchain_khr)(device, sc, alloc);
        }
    })
}

/// `vkGetSwapchainImagesKHR`: the images become tracked regions of their own.
pub unsafe extern "system" fn get_swapchain_images_khr(
    device: vk::Device,
    sc: vk::SwapchainKHR,
    count: *mut u32,
    images: *mut vk::Image,
) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage of the command.
        unsafe {
            let Some(dev) = dev_of(device) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            let r = next!(dev, get_swapchain_images_khr)(device, sc, count, images);
            if dev.wsi()
                && !images.is_null()
                && matches!(r, vk::Result::SUCCESS | vk::Result::INCOMPLETE)
            {
                let mut t = lock(&dev.tracker);
                let o = &mut t.objects;
                if let Some(&tmpl) = o.swap_templates.get(&sc.as_raw()) {
                    let list: Vec<u64> = slice(images, *count).iter().map(|i| i.as_raw()).collect();
                    for &i in &list {
                        o.swap_images.insert(i, tmpl);
                    }
                    o.swapchains.insert(sc.as_raw(), list);
                }
            }
            r
        }
    })
}

/// `vkCreateSemaphore`: remembers timeline semaphores.
pub unsafe extern "system" fn create_semaphore(
    device: vk::Device,
    info: *const vk::SemaphoreCreateInfo<'_>,
    alloc: *const vk::AllocationCallbacks<'_>,
    out: *mut vk::Semaphore,
) -> vk::Result {
    guard(vk::Result::ERROR_UNKNOWN, || {
        // SAFETY: valid usage of the command; chain members cast by their sType.
        unsafe {
            let Some(dev) = dev_of(device) else {
                return vk::Result::ERROR_UNKNOWN;
            };
            let r = next!(dev, create_semaphore)(device, info, alloc, out);
            if r == vk::Result::SUCCESS && dev.track {
                let timeline = chain((*info).p_next).any(|c| {
                    (*c).s_type == vk::StructureType::SEMAPHORE_TYPE_CREATE_INFO
                        && (*(c as *const vk::SemaphoreTypeCreateInfo<'_>)).semaphore_type
                            == vk::SemaphoreType::TIMELINE
                });
                if timeline {
                    lock(&dev.timelines).insert((*out).as_raw());
                }
            }
            r
        }
    })
}

/// `vkDestroySemaphore`.
pub unsafe extern "system" fn destroy_semaphore(
    device: vk::Device,
    sem: vk::Semaphore,
    alloc: *const vk::AllocationCallbacks<'_>,
) {
    guard((), || {
        // SAFETY: valid usage of the command.
        unsafe {
            let Some(dev) = dev_of(device) else { return };
            if dev.track {
                lock(&dev.timelines).remove(&sem.as_raw());
            }
            next!(dev, destroy_semaphore)(device, sem, alloc);
        }
    })
}
