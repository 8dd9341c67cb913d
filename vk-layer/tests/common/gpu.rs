//! A device with the layer, and the submission helpers of the scenarios.

use std::ffi::CStr;
use std::time::{Duration, Instant};

use ash::vk;

use agx_vk_layer::fault::khr;

use super::INSTALL_HINT;

/// A device with the layer enabled (by `ppEnabledLayerNames`) and VK_EXT_device_fault.
pub struct Gpu {
    pub entry: ash::Entry,
    pub instance: ash::Instance,
    pub phys: vk::PhysicalDevice,
    pub device: ash::Device,
    pub queue: vk::Queue,
    pub family: u32,
    pub fault: ash::ext::device_fault::Device,
    pub mem_props: vk::PhysicalDeviceMemoryProperties,
    pub pool: vk::CommandPool,
}

/// How a test device enables the fault extensions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultOpts {
    /// `VK_EXT_device_fault` by name (with its feature structure).
    pub ext_name: bool,
    /// `VkPhysicalDeviceFaultFeaturesEXT::deviceFault` alone, without the name (as the CTS's
    /// `device_fault.real` does).
    pub ext_feature_only: bool,
    /// `VK_KHR_device_fault` by name, with its features: `(reportMasked, lostOnMasked,
    /// vendorBinary)`.
    pub khr: Option<(bool, bool, bool)>,
}

impl Gpu {
    pub fn new() -> Gpu {
        Gpu::with_layer(true)
    }

    /// A device with or without the layer (without it, no VK_EXT_device_fault on lavapipe).
    pub fn with_layer(layer: bool) -> Gpu {
        Gpu::build(
            layer,
            FaultOpts {
                ext_name: layer,
                ..FaultOpts::default()
            },
        )
    }

    /// A device with the layer and the fault extensions enabled as `fault` says.
    pub fn with_fault(fault: FaultOpts) -> Gpu {
        Gpu::build(true, fault)
    }

    fn build(layer: bool, opts: FaultOpts) -> Gpu {
        // SAFETY: plain Vulkan setup with valid structures throughout.
        unsafe {
            let entry = ash::Entry::load().expect(INSTALL_HINT);
            let layers = [c"VK_LAYER_AGX_fault".as_ptr()];
            let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_3);
            let ci = vk::InstanceCreateInfo::default()
                .application_info(&app)
                .enabled_layer_names(if layer { &layers[..] } else { &[] });
            let instance = entry
                .create_instance(&ci, None)
                .expect("create instance with VK_LAYER_AGX_fault (is VK_LAYER_PATH right?)");
            let phys = instance.enumerate_physical_devices().unwrap()[0];
            let exts = instance
                .enumerate_device_extension_properties(phys)
                .unwrap();
            let has_fault = exts
                .iter()
                .any(|e| e.extension_name_as_c_str().unwrap() == c"VK_EXT_device_fault");
            if layer {
                assert!(has_fault, "the layer advertises VK_EXT_device_fault");
                let mut ff = vk::PhysicalDeviceFaultFeaturesEXT::default();
                let mut f2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut ff);
                instance.get_physical_device_features2(phys, &mut f2);
                assert_eq!(ff.device_fault, vk::TRUE, "deviceFault feature");
            }
            let family = instance
                .get_physical_device_queue_family_properties(phys)
                .iter()
                .position(|q| q.queue_flags.contains(vk::QueueFlags::GRAPHICS))
                .expect("a graphics queue") as u32;
            let prio = [1.0];
            let qci = [vk::DeviceQueueCreateInfo::default()
                .queue_family_index(family)
                .queue_priorities(&prio)];
            let mut dext = Vec::new();
            if opts.ext_name {
                dext.push(c"VK_EXT_device_fault".as_ptr());
            }
            let mut fault_feat = vk::PhysicalDeviceFaultFeaturesEXT::default().device_fault(true);
            let (masked, lost, binary) = opts.khr.unwrap_or_default();
            let mut khr_feat = khr::PhysicalDeviceFaultFeaturesKHR {
                s_type: khr::STRUCTURE_TYPE_PHYSICAL_DEVICE_FAULT_FEATURES_KHR,
                p_next: std::ptr::null_mut(),
                device_fault: vk::TRUE,
                device_fault_vendor_binary: binary.into(),
                device_fault_report_masked: masked.into(),
                device_fault_device_lost_on_masked: lost.into(),
            };
            if opts.khr.is_some() {
                dext.push(khr::NAME.as_ptr());
            }
            let mut v12 = vk::PhysicalDeviceVulkan12Features::default().timeline_semaphore(true);
            let mut v13 = vk::PhysicalDeviceVulkan13Features::default()
                .dynamic_rendering(true)
                .synchronization2(true);
            let mut dci = vk::DeviceCreateInfo::default()
                .queue_create_infos(&qci)
                .push_next(&mut v12)
                .push_next(&mut v13);
            if has_fault && (opts.ext_name || opts.ext_feature_only) {
                dci = dci.push_next(&mut fault_feat);
            }
            if opts.khr.is_some() {
                khr_feat.p_next = dci.p_next as *mut std::ffi::c_void;
                dci.p_next = &khr_feat as *const _ as *const std::ffi::c_void;
            }
            if !dext.is_empty() {
                dci = dci.enabled_extension_names(&dext);
            }
            let device = instance
                .create_device(phys, &dci, None)
                .expect("create device with VK_EXT_device_fault");
            let queue = device.get_device_queue(family, 0);
            let fault = ash::ext::device_fault::Device::new(&instance, &device);
            let mem_props = instance.get_physical_device_memory_properties(phys);
            let pool = device
                .create_command_pool(
                    &vk::CommandPoolCreateInfo::default()
                        .queue_family_index(family)
                        .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER),
                    None,
                )
                .unwrap();
            Gpu {
                entry,
                instance,
                phys,
                device,
                queue,
                family,
                fault,
                mem_props,
                pool,
            }
        }
    }

    /// A buffer bound to memory of its own with properties `want`.
    pub fn buffer(
        &self,
        size: u64,
        usage: vk::BufferUsageFlags,
        want: vk::MemoryPropertyFlags,
    ) -> (vk::Buffer, vk::DeviceMemory) {
        let d = &self.device;
        // SAFETY: plain object creation with valid structures.
        unsafe {
            let buf = d
                .create_buffer(
                    &vk::BufferCreateInfo::default().size(size).usage(usage),
                    None,
                )
                .unwrap();
            let req = d.get_buffer_memory_requirements(buf);
            let ai = vk::MemoryAllocateInfo::default()
                .allocation_size(req.size)
                .memory_type_index(self.memory_type(req.memory_type_bits, want));
            let mem = d.allocate_memory(&ai, None).unwrap();
            d.bind_buffer_memory(buf, mem, 0).unwrap();
            (buf, mem)
        }
    }

    pub fn memory_type(&self, bits: u32, want: vk::MemoryPropertyFlags) -> u32 {
        (0..self.mem_props.memory_type_count)
            .find(|&i| {
                bits & (1 << i) != 0
                    && self.mem_props.memory_types[i as usize]
                        .property_flags
                        .contains(want)
            })
            .expect("a memory type")
    }

    pub fn fence(&self) -> vk::Fence {
        // SAFETY: valid device.
        unsafe {
            self.device
                .create_fence(&vk::FenceCreateInfo::default(), None)
        }
        .unwrap()
    }

    pub fn command_buffer(&self) -> vk::CommandBuffer {
        let ai = vk::CommandBufferAllocateInfo::default()
            .command_pool(self.pool)
            .level(vk::CommandBufferLevel::PRIMARY)
            .command_buffer_count(1);
        // SAFETY: valid pool.
        unsafe { self.device.allocate_command_buffers(&ai) }.unwrap()[0]
    }

    /// `vkQueueSubmit` of `cbs` with `fence`.
    pub fn submit(&self, cbs: &[vk::CommandBuffer], fence: vk::Fence) -> vk::Result {
        let si = [vk::SubmitInfo::default().command_buffers(cbs)];
        // SAFETY: valid command buffers and fence.
        match unsafe { self.device.queue_submit(self.queue, &si, fence) } {
            Ok(()) => vk::Result::SUCCESS,
            Err(e) => e,
        }
    }

    /// `vkWaitForFences` with a 5 s timeout, and how long it took.
    pub fn wait(&self, fence: vk::Fence) -> (vk::Result, Duration) {
        let t = Instant::now();
        // SAFETY: valid fence.
        let r = unsafe { self.device.wait_for_fences(&[fence], true, 5_000_000_000) };
        (r.err().unwrap_or(vk::Result::SUCCESS), t.elapsed())
    }

    /// `vkGetDeviceFaultInfoEXT`, two-call: (description, address infos, vendor infos).
    pub fn fault_info(
        &self,
    ) -> (
        String,
        Vec<vk::DeviceFaultAddressInfoEXT>,
        Vec<vk::DeviceFaultVendorInfoEXT>,
    ) {
        let f = self.fault.fp().get_device_fault_info_ext;
        let mut counts = vk::DeviceFaultCountsEXT::default();
        // SAFETY: valid device and out structures.
        unsafe {
            assert_eq!(
                f(self.device.handle(), &mut counts, std::ptr::null_mut()),
                vk::Result::SUCCESS
            );
            let mut addrs =
                vec![vk::DeviceFaultAddressInfoEXT::default(); counts.address_info_count as usize];
            let mut vendors =
                vec![vk::DeviceFaultVendorInfoEXT::default(); counts.vendor_info_count as usize];
            let mut info = vk::DeviceFaultInfoEXT {
                p_address_infos: addrs.as_mut_ptr(),
                p_vendor_infos: vendors.as_mut_ptr(),
                ..Default::default()
            };
            assert_eq!(
                f(self.device.handle(), &mut counts, &mut info),
                vk::Result::SUCCESS
            );
            let desc = CStr::from_ptr(info.description.as_ptr())
                .to_string_lossy()
                .into_owned();
            (desc, addrs, vendors)
        }
    }

    pub fn destroy(self) {
        // SAFETY: destroying what `new` created (objects made by tests are leaked to the
        // device's destruction, which the layer must cope with).
        unsafe {
            let _ = self.device.device_wait_idle();
            self.device.destroy_command_pool(self.pool, None);
            self.device.destroy_device(None);
            self.instance.destroy_instance(None);
        }
    }
}

/// The vendor info with `code`, as (description, data).
pub fn vendor(v: &[vk::DeviceFaultVendorInfoEXT], code: u64) -> Option<(String, u64)> {
    v.iter().find(|i| i.vendor_fault_code == code).map(|i| {
        (
            i.description_as_c_str()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
            i.vendor_fault_data,
        )
    })
}

/// A semaphore wait or signal of [`Gpu::submit_sync`]: (semaphore, value; 0 for binary).
pub type Sem = (vk::Semaphore, u64);

impl Gpu {
    /// A timeline semaphore starting at `initial`.
    pub fn timeline(&self, initial: u64) -> vk::Semaphore {
        let mut tl = vk::SemaphoreTypeCreateInfo::default()
            .semaphore_type(vk::SemaphoreType::TIMELINE)
            .initial_value(initial);
        // SAFETY: a valid create info.
        unsafe {
            self.device
                .create_semaphore(&vk::SemaphoreCreateInfo::default().push_next(&mut tl), None)
        }
        .unwrap()
    }

    /// A binary semaphore.
    pub fn binary(&self) -> vk::Semaphore {
        // SAFETY: a valid create info.
        unsafe {
            self.device
                .create_semaphore(&vk::SemaphoreCreateInfo::default(), None)
        }
        .unwrap()
    }

    /// One `vkQueueSubmit` of `batches`: (command buffers, waits, signals) each.
    pub fn submit_sync(
        &self,
        batches: &[(&[vk::CommandBuffer], &[Sem], &[Sem])],
        fence: vk::Fence,
    ) -> vk::Result {
        let waits: Vec<Vec<vk::Semaphore>> = batches
            .iter()
            .map(|b| b.1.iter().map(|s| s.0).collect())
            .collect();
        let wvals: Vec<Vec<u64>> = batches
            .iter()
            .map(|b| b.1.iter().map(|s| s.1).collect())
            .collect();
        let stages: Vec<Vec<vk::PipelineStageFlags>> = batches
            .iter()
            .map(|b| vec![vk::PipelineStageFlags::ALL_COMMANDS; b.1.len()])
            .collect();
        let sigs: Vec<Vec<vk::Semaphore>> = batches
            .iter()
            .map(|b| b.2.iter().map(|s| s.0).collect())
            .collect();
        let svals: Vec<Vec<u64>> = batches
            .iter()
            .map(|b| b.2.iter().map(|s| s.1).collect())
            .collect();
        let mut tl: Vec<vk::TimelineSemaphoreSubmitInfo<'_>> = (0..batches.len())
            .map(|i| {
                vk::TimelineSemaphoreSubmitInfo::default()
                    .wait_semaphore_values(&wvals[i])
                    .signal_semaphore_values(&svals[i])
            })
            .collect();
        let infos: Vec<vk::SubmitInfo<'_>> = tl
            .iter_mut()
            .enumerate()
            .map(|(i, t)| {
                vk::SubmitInfo::default()
                    .command_buffers(batches[i].0)
                    .wait_semaphores(&waits[i])
                    .wait_dst_stage_mask(&stages[i])
                    .signal_semaphores(&sigs[i])
                    .push_next(t)
            })
            .collect();
        // SAFETY: valid submit infos.
        match unsafe { self.device.queue_submit(self.queue, &infos, fence) } {
            Ok(()) => vk::Result::SUCCESS,
            Err(e) => e,
        }
    }

    /// `vkGetFenceStatus` as a result code.
    pub fn fence_status(&self, f: vk::Fence) -> vk::Result {
        // SAFETY: a valid fence.
        match unsafe { self.device.get_fence_status(f) } {
            Ok(true) => vk::Result::SUCCESS,
            Ok(false) => vk::Result::NOT_READY,
            Err(e) => e,
        }
    }
}
