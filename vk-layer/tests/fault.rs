//! `VK_EXT_device_fault` and `VK_KHR_device_fault` through Debian's loader (1.3.239, which
//! knows neither KHR command) on lavapipe: every way an application may look the commands up,
//! masked reports for replayed neighbour faults, losses (guilty with its address, hang,
//! `deviceFaultDeviceLostOnMasked`), the vendor binary, and a blocking query answered by
//! another thread's submission. Each scenario runs in a child process with its own plan.

mod common;

use std::time::{Duration, Instant};

use agx_vk_layer::fault::khr::{self, flags, DeviceFaultDebugInfoKHR, DeviceFaultInfoKHR};
use ash::vk;
use ash::vk::Handle;
use common::*;

#[test]
fn every_lookup_reaches_the_layer() {
    run_scenario("lookups", "");
}

#[test]
fn replayed_neighbour_faults_are_masked_reports() {
    let c = run_scenario("masked", "neighbor-every@1");
    assert_eq!(c.stat("replays"), 4, "{:?}", c.stats);
    assert_eq!(c.stat("devices_lost"), 0);
}

#[test]
fn masked_faults_are_reported_only_when_asked_for() {
    let c = run_scenario("not_masked", "neighbor-every@1");
    assert_eq!(c.stat("replays"), 2, "{:?}", c.stats);
}

#[test]
fn lost_on_masked_turns_a_replay_into_a_loss() {
    let c = run_scenario("lost_on_masked", "neighbor@2");
    assert_eq!(c.stat("replays"), 0, "{:?}", c.stats);
    assert_eq!(c.stat("devices_lost"), 1);
}

#[test]
fn a_guilty_fault_is_a_losing_report_with_its_address_and_a_vendor_binary() {
    run_scenario("guilty", "guilty@2");
}

#[test]
fn a_hang_is_a_watchdog_timeout() {
    run_scenario("hang", "hang@1");
}

#[test]
fn a_blocking_query_returns_when_another_thread_faults() {
    run_scenario("blocking", "neighbor-every@1");
}

// ---- child side -------------------------------------------------------------------------

#[test]
fn child_entry() {
    let Ok(name) = std::env::var("AGX_TEST_SCENARIO") else {
        return;
    };
    match name.as_str() {
        "lookups" => lookups(),
        "masked" => masked(),
        "not_masked" => not_masked(),
        "lost_on_masked" => lost_on_masked(),
        "guilty" => guilty(),
        "hang" => hang(),
        "blocking" => blocking(),
        other => panic!("unknown scenario {other}"),
    }
    println!("SCENARIO {name} OK");
}

/// The two KHR commands, as looked up.
#[derive(Clone, Copy)]
struct Khr {
    reports: khr::PfnGetDeviceFaultReportsKHR,
    debug: khr::PfnGetDeviceFaultDebugInfoKHR,
}

/// Looks a device command up with `vkGetDeviceProcAddr` (the loader's).
fn gdpa(gpu: &Gpu, name: &std::ffi::CStr) -> vk::PFN_vkVoidFunction {
    // SAFETY: a valid device and a NUL-terminated name.
    unsafe { (gpu.instance.fp_v1_0().get_device_proc_addr)(gpu.device.handle(), name.as_ptr()) }
}

fn khr_of(gpu: &Gpu) -> Khr {
    let r = gdpa(gpu, c"vkGetDeviceFaultReportsKHR").expect("vkGetDeviceFaultReportsKHR");
    let d = gdpa(gpu, c"vkGetDeviceFaultDebugInfoKHR").expect("vkGetDeviceFaultDebugInfoKHR");
    // SAFETY: the commands' types (the registry's).
    unsafe {
        Khr {
            reports: std::mem::transmute::<
                unsafe extern "system" fn(),
                khr::PfnGetDeviceFaultReportsKHR,
            >(r),
            debug: std::mem::transmute::<
                unsafe extern "system" fn(),
                khr::PfnGetDeviceFaultDebugInfoKHR,
            >(d),
        }
    }
}

fn blank_info() -> DeviceFaultInfoKHR {
    // SAFETY: a plain C structure for which all-zero is a valid value.
    let mut i: DeviceFaultInfoKHR = unsafe { std::mem::zeroed() };
    i.s_type = khr::STRUCTURE_TYPE_DEVICE_FAULT_INFO_KHR;
    i
}

/// `vkGetDeviceFaultReportsKHR` with room for `max` reports.
fn reports(
    k: Khr,
    device: vk::Device,
    timeout: Duration,
    max: u32,
) -> (vk::Result, Vec<DeviceFaultInfoKHR>) {
    let mut v = vec![blank_info(); max as usize];
    let mut n = max;
    // SAFETY: valid device, count and array of `max` structures.
    let r = unsafe { (k.reports)(device, timeout.as_nanos() as u64, &mut n, v.as_mut_ptr()) };
    v.truncate(n as usize);
    (r, v)
}

/// The count of reports available (`pFaultInfo` null).
fn count(k: Khr, device: vk::Device) -> (vk::Result, u32) {
    let mut n = 0;
    // SAFETY: valid device and count.
    let r = unsafe { (k.reports)(device, 0, &mut n, std::ptr::null_mut()) };
    (r, n)
}

fn description(i: &DeviceFaultInfoKHR) -> String {
    // SAFETY: the layer writes a NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(i.description.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// A submission that fills a small buffer; waits for it.
fn fill_and_wait(gpu: &Gpu) -> vk::Result {
    let d = &gpu.device;
    // SAFETY: plain Vulkan object creation and recording with valid structures.
    unsafe {
        let (buf, mem) = gpu.buffer(
            256,
            vk::BufferUsageFlags::TRANSFER_DST,
            vk::MemoryPropertyFlags::empty(),
        );
        let cb = gpu.command_buffer();
        d.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default())
            .unwrap();
        d.cmd_fill_buffer(cb, buf, 0, 256, 7);
        d.end_command_buffer(cb).unwrap();
        let f = gpu.fence();
        assert_eq!(gpu.submit(&[cb], f), vk::Result::SUCCESS);
        let r = gpu.wait(f).0;
        if r == vk::Result::SUCCESS {
            d.destroy_buffer(buf, None);
            d.free_memory(mem, None);
        }
        r
    }
}

const KHR_ALL: FaultOpts = FaultOpts {
    ext_name: false,
    ext_feature_only: false,
    khr: Some((true, false, true)),
};

/// Every lookup path: `vkGetInstanceProcAddr` before the device exists (the loader makes a
/// trampoline for a name it does not know), `vkGetDeviceProcAddr` after; the CTS's way of
/// enabling `VK_EXT_device_fault` (its feature alone); and nothing for what is not enabled.
fn lookups() {
    // SAFETY: plain Vulkan setup and calls with valid structures.
    unsafe {
        let entry = ash::Entry::load().expect(INSTALL_HINT);
        let layers = [c"VK_LAYER_AGX_fault".as_ptr()];
        let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_3);
        let instance = entry
            .create_instance(
                &vk::InstanceCreateInfo::default()
                    .application_info(&app)
                    .enabled_layer_names(&layers),
                None,
            )
            .unwrap();
        // Before any device: the loader's trampoline for an unknown device command.
        let early = entry
            .get_instance_proc_addr(instance.handle(), c"vkGetDeviceFaultReportsKHR".as_ptr())
            .expect("vkGetInstanceProcAddr(vkGetDeviceFaultReportsKHR)");
        let early: khr::PfnGetDeviceFaultReportsKHR = std::mem::transmute(early);
        let phys = instance.enumerate_physical_devices().unwrap()[0];
        let exts = instance
            .enumerate_device_extension_properties(phys)
            .unwrap();
        assert!(exts
            .iter()
            .any(|e| e.extension_name_as_c_str().unwrap() == khr::NAME));
        let mut f = khr::PhysicalDeviceFaultFeaturesKHR {
            s_type: khr::STRUCTURE_TYPE_PHYSICAL_DEVICE_FAULT_FEATURES_KHR,
            p_next: std::ptr::null_mut(),
            device_fault: 0,
            device_fault_vendor_binary: 0,
            device_fault_report_masked: 0,
            device_fault_device_lost_on_masked: 0,
        };
        let mut f2 = vk::PhysicalDeviceFeatures2 {
            p_next: &mut f as *mut _ as *mut std::ffi::c_void,
            ..Default::default()
        };
        instance.get_physical_device_features2(phys, &mut f2);
        assert_eq!(
            (
                f.device_fault,
                f.device_fault_vendor_binary,
                f.device_fault_report_masked,
                f.device_fault_device_lost_on_masked
            ),
            (1, 1, 1, 1)
        );
        let mut p = khr::PhysicalDeviceFaultPropertiesKHR {
            s_type: khr::STRUCTURE_TYPE_PHYSICAL_DEVICE_FAULT_PROPERTIES_KHR,
            p_next: std::ptr::null_mut(),
            max_device_fault_count: 0,
        };
        let mut p2 = vk::PhysicalDeviceProperties2 {
            p_next: &mut p as *mut _ as *mut std::ffi::c_void,
            ..Default::default()
        };
        instance.get_physical_device_properties2(phys, &mut p2);
        assert!(p.max_device_fault_count >= 1);
        // The device, created after the early lookup.
        let prio = [1.0];
        let qci = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(0)
            .queue_priorities(&prio)];
        let names = [khr::NAME.as_ptr()];
        let device = instance
            .create_device(
                phys,
                &vk::DeviceCreateInfo::default()
                    .queue_create_infos(&qci)
                    .enabled_extension_names(&names),
                None,
            )
            .unwrap();
        let mut n = 0;
        let t0 = Instant::now();
        let r = early(device.handle(), 50_000_000, &mut n, std::ptr::null_mut());
        assert_eq!(
            (r, n),
            (vk::Result::TIMEOUT, 0),
            "through the loader's trampoline"
        );
        assert!(t0.elapsed() >= Duration::from_millis(50), "it waited");
        // A late lookup through the instance too.
        let late = entry
            .get_instance_proc_addr(instance.handle(), c"vkGetDeviceFaultDebugInfoKHR".as_ptr())
            .expect("late lookup");
        let late: khr::PfnGetDeviceFaultDebugInfoKHR = std::mem::transmute(late);
        let mut di = DeviceFaultDebugInfoKHR {
            s_type: khr::STRUCTURE_TYPE_DEVICE_FAULT_DEBUG_INFO_KHR,
            p_next: std::ptr::null_mut(),
            vendor_binary_size: 123,
            p_vendor_binary_data: std::ptr::null_mut(),
        };
        assert_eq!(late(device.handle(), &mut di), vk::Result::SUCCESS);
        assert_eq!(di.vendor_binary_size, 0, "no binary before a loss");
        // VK_EXT_device_fault is not enabled on this device: no command.
        let ext = (instance.fp_v1_0().get_device_proc_addr)(
            device.handle(),
            c"vkGetDeviceFaultInfoEXT".as_ptr(),
        );
        assert!(ext.is_none(), "VK_EXT_device_fault is not enabled");
        device.destroy_device(None);
        instance.destroy_instance(None);
    }
    // vkGetDeviceProcAddr on a device with KHR enabled.
    let gpu = Gpu::with_fault(KHR_ALL);
    let k = khr_of(&gpu);
    let (r, v) = reports(k, gpu.device.handle(), Duration::ZERO, 4);
    assert_eq!((r, v.len()), (vk::Result::TIMEOUT, 0));
    gpu.destroy();
    // A device with VK_EXT_device_fault by name only: no KHR commands.
    let gpu = Gpu::with_fault(FaultOpts {
        ext_name: true,
        ..FaultOpts::default()
    });
    assert!(gdpa(&gpu, c"vkGetDeviceFaultReportsKHR").is_none());
    assert!(gdpa(&gpu, c"vkGetDeviceFaultInfoEXT").is_some());
    gpu.destroy();
    // The CTS's `device_fault.real`: the EXT feature without the name.
    let gpu = Gpu::with_fault(FaultOpts {
        ext_feature_only: true,
        ..FaultOpts::default()
    });
    let f = gdpa(&gpu, c"vkGetDeviceFaultInfoEXT").expect("enabled by its feature");
    // SAFETY: the command's type.
    let f: vk::PFN_vkGetDeviceFaultInfoEXT = unsafe { std::mem::transmute(f) };
    let mut counts = vk::DeviceFaultCountsEXT::default();
    // SAFETY: valid device and counts.
    let r = unsafe { f(gpu.device.handle(), &mut counts, std::ptr::null_mut()) };
    assert_eq!(r, vk::Result::SUCCESS);
    assert_eq!(
        (counts.address_info_count, counts.vendor_info_count),
        (0, 0),
        "no fault yet"
    );
    gpu.destroy();
}

/// Three submissions, each hit by a neighbour fault and replayed: three masked reports, in
/// order, each returned once; the device is not lost.
fn masked() {
    let gpu = Gpu::with_fault(KHR_ALL);
    let k = khr_of(&gpu);
    let dev = gpu.device.handle();
    for _ in 0..3 {
        assert_eq!(fill_and_wait(&gpu), vk::Result::SUCCESS);
    }
    let (r, n) = count(k, dev);
    assert_eq!(
        (r, n),
        (vk::Result::SUCCESS, 9),
        "three groups of three entries"
    );
    let (r, first) = reports(k, dev, Duration::ZERO, 4);
    assert_eq!((r, first.len()), (vk::Result::INCOMPLETE, 4));
    let (r, rest) = reports(k, dev, Duration::ZERO, 100);
    assert_eq!((r, rest.len()), (vk::Result::SUCCESS, 5));
    let all: Vec<DeviceFaultInfoKHR> = first.into_iter().chain(rest).collect();
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.group_id, 1 + i as u64 / 3, "in order, grouped");
        assert_eq!(e.flags, flags::VENDOR, "masked: vendor info, no loss");
        assert!(description(e).starts_with("masked"), "{}", description(e));
    }
    let subs: Vec<u64> = all
        .iter()
        .filter(|e| e.vendor_info.vendor_fault_code == 3)
        .map(|e| e.vendor_info.vendor_fault_data)
        .collect();
    assert_eq!(subs, [1, 2, 3], "the submission each fault hit");
    let replays: Vec<u64> = all
        .iter()
        .filter(|e| e.vendor_info.vendor_fault_code == 6)
        .map(|e| e.vendor_info.vendor_fault_data)
        .collect();
    assert_eq!(replays.len(), 3);
    assert!(replays.iter().all(|&r| r >= 1), "{replays:?}");
    // Each report once.
    let (r, again) = reports(k, dev, Duration::ZERO, 100);
    assert_eq!((r, again.len()), (vk::Result::TIMEOUT, 0));
    assert_eq!(fill_and_wait(&gpu), vk::Result::SUCCESS, "not lost");
    gpu.destroy();
}

/// `deviceFaultReportMasked` off: replays are invisible in the reports too.
fn not_masked() {
    let gpu = Gpu::with_fault(FaultOpts {
        khr: Some((false, false, false)),
        ..FaultOpts::default()
    });
    let k = khr_of(&gpu);
    for _ in 0..2 {
        assert_eq!(fill_and_wait(&gpu), vk::Result::SUCCESS);
    }
    let (r, v) = reports(k, gpu.device.handle(), Duration::from_millis(20), 8);
    assert_eq!((r, v.len()), (vk::Result::TIMEOUT, 0));
    gpu.destroy();
}

/// `deviceFaultDeviceLostOnMasked`: the second submission's fault, which the layer would have
/// masked, loses the device, and the report says so.
fn lost_on_masked() {
    let gpu = Gpu::with_fault(FaultOpts {
        khr: Some((false, true, false)),
        ..FaultOpts::default()
    });
    let k = khr_of(&gpu);
    assert_eq!(fill_and_wait(&gpu), vk::Result::SUCCESS);
    assert_eq!(fill_and_wait(&gpu), vk::Result::ERROR_DEVICE_LOST);
    let (r, v) = reports(k, gpu.device.handle(), Duration::ZERO, 16);
    assert_eq!(r, vk::Result::SUCCESS);
    assert!(!v.is_empty());
    let last = v.last().unwrap();
    assert_ne!(last.flags & flags::DEVICE_LOST, 0);
    assert!(v[..v.len() - 1]
        .iter()
        .all(|e| e.flags & flags::DEVICE_LOST == 0));
    assert!(
        description(last).contains("deviceFaultDeviceLostOnMasked"),
        "{}",
        description(last)
    );
    gpu.destroy();
}

/// `guilty@2`: one losing group (its address first, `DEVICE_LOST` last), nothing after it
/// (a blocking read returns at once), and the vendor binary.
fn guilty() {
    let gpu = Gpu::with_fault(KHR_ALL);
    let k = khr_of(&gpu);
    let dev = gpu.device.handle();
    let mut di = DeviceFaultDebugInfoKHR {
        s_type: khr::STRUCTURE_TYPE_DEVICE_FAULT_DEBUG_INFO_KHR,
        p_next: std::ptr::null_mut(),
        vendor_binary_size: 0,
        p_vendor_binary_data: std::ptr::null_mut(),
    };
    assert_eq!(fill_and_wait(&gpu), vk::Result::SUCCESS);
    assert_eq!(fill_and_wait(&gpu), vk::Result::ERROR_DEVICE_LOST);
    let (r, v) = reports(k, dev, Duration::ZERO, 16);
    assert_eq!(r, vk::Result::SUCCESS);
    assert!(v.len() >= 2, "address and vendor entries");
    assert!(v.iter().all(|e| e.group_id == v[0].group_id), "one group");
    let a = &v[0];
    assert_ne!(a.flags & flags::MEMORY_ADDRESS, 0);
    assert_eq!(
        a.fault_address_info.address_type,
        vk::DeviceFaultAddressTypeEXT::WRITE_INVALID
    );
    assert_eq!(a.fault_address_info.reported_address, 0x7fde_ad00_2000);
    assert_eq!(a.fault_address_info.address_precision, 4096);
    assert!(v.iter().all(|e| e.flags & flags::WATCHDOG_TIMEOUT == 0));
    assert_ne!(v.last().unwrap().flags & flags::DEVICE_LOST, 0);
    assert!(description(a).contains("guilty"), "{}", description(a));
    // Nothing follows a loss: a read that could wait 10 s returns at once.
    let t0 = Instant::now();
    let (r, v) = reports(k, dev, Duration::from_secs(10), 16);
    assert_eq!((r, v.len()), (vk::Result::TIMEOUT, 0));
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    // The vendor binary: sizing, too small, then the bytes, twice the same.
    // SAFETY: valid device and debug info, buffers of the sizes given.
    unsafe {
        assert_eq!((k.debug)(dev, &mut di), vk::Result::SUCCESS);
        let size = di.vendor_binary_size as usize;
        assert!(size > 56, "{size}");
        let mut small = vec![0u8; 16];
        di.p_vendor_binary_data = small.as_mut_ptr().cast();
        di.vendor_binary_size = 16;
        assert_eq!((k.debug)(dev, &mut di), khr::ERROR_NOT_ENOUGH_SPACE_KHR);
        assert!(small.iter().all(|&b| b == 0), "nothing written");
        let mut bin = vec![0u8; size];
        di.p_vendor_binary_data = bin.as_mut_ptr().cast();
        di.vendor_binary_size = size as u32;
        assert_eq!((k.debug)(dev, &mut di), vk::Result::SUCCESS);
        assert_eq!(di.vendor_binary_size as usize, size);
        let u32_at = |o: usize| u32::from_le_bytes(bin[o..o + 4].try_into().unwrap());
        assert_eq!(u32_at(0), 56, "headerSize");
        assert_eq!(u32_at(4), 1, "VERSION_ONE");
        let props = gpu.instance.get_physical_device_properties(gpu.phys);
        assert_eq!(u32_at(8), props.vendor_id);
        assert_eq!(u32_at(12), props.device_id);
        let text = String::from_utf8_lossy(&bin);
        assert!(text.contains("AGX-FAULT-REPORT"), "{text}");
        assert!(text.contains("\"submission\":2"), "{text}");
        let mut again = vec![0u8; size];
        di.p_vendor_binary_data = again.as_mut_ptr().cast();
        assert_eq!((k.debug)(dev, &mut di), vk::Result::SUCCESS);
        assert_eq!(again, bin, "the same binary every time");
    }
    gpu.destroy();
}

/// `hang@1`: the losing group says WATCHDOG_TIMEOUT.
fn hang() {
    let gpu = Gpu::with_fault(KHR_ALL);
    let k = khr_of(&gpu);
    assert_eq!(fill_and_wait(&gpu), vk::Result::ERROR_DEVICE_LOST);
    let (r, v) = reports(k, gpu.device.handle(), Duration::ZERO, 16);
    assert_eq!(r, vk::Result::SUCCESS);
    assert!(!v.is_empty());
    assert!(v.iter().all(|e| e.flags & flags::WATCHDOG_TIMEOUT != 0));
    assert!(v.iter().all(|e| e.flags & flags::MEMORY_ADDRESS == 0));
    assert_ne!(v.last().unwrap().flags & flags::DEVICE_LOST, 0);
    gpu.destroy();
}

/// A thread blocks in `vkGetDeviceFaultReportsKHR` (30 s timeout); the main thread submits
/// work a neighbour fault hits 300 ms later: the reader returns with the masked report soon
/// after, not at its timeout.
fn blocking() {
    let gpu = Gpu::with_fault(KHR_ALL);
    let k = khr_of(&gpu);
    let dev = gpu.device.handle().as_raw();
    let t0 = Instant::now();
    let reader = std::thread::spawn(move || {
        let (r, v) = reports(k, vk::Device::from_raw(dev), Duration::from_secs(30), 8);
        let codes: Vec<(u64, u64)> = v
            .iter()
            .map(|e| {
                (
                    e.vendor_info.vendor_fault_code,
                    e.vendor_info.vendor_fault_data,
                )
            })
            .collect();
        (r, codes, t0.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(fill_and_wait(&gpu), vk::Result::SUCCESS);
    let (r, codes, when) = reader.join().unwrap();
    assert_eq!(r, vk::Result::SUCCESS);
    assert_eq!(codes.len(), 3, "the masked group");
    assert_eq!(codes[1], (3, 1), "submission 1");
    assert!(
        when >= Duration::from_millis(300) && when < Duration::from_secs(10),
        "returned at {when:?}"
    );
    gpu.destroy();
}
