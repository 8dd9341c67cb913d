//! End-to-end tests of VK_LAYER_AGX_fault on the real Vulkan loader and lavapipe.
//!
//! Each scenario runs in a child process (this same binary, test `child_entry`, with
//! `AGX_TEST_SCENARIO`, `AGX_FAULT_PLAN`, `AGX_FAULT_STATS`, `VK_LAYER_PATH` and a private
//! `XDG_RUNTIME_DIR`), because fault plans are per-process environment variables; the parent
//! checks the child's result and the statistics file. A machine without a Vulkan driver fails
//! these tests with the packages to install.

mod common;

use std::time::Duration;

use ash::vk;
use common::*;

const GUILT: u64 = 1;
const UNIT: u64 = 2;
const SUBMISSION: u64 = 3;
const KIND: u64 = 4;

// ---- parent side: one test per scenario ------------------------------------------------

#[test]
fn neighbor_fault_on_cleared_pass_is_replayed_invisibly() {
    let c = run_scenario("replay_clear", "neighbor@1");
    assert_eq!(c.stat("faults_injected"), 1);
    assert_eq!(c.stat("replays"), 1);
    assert_eq!(c.stat("devices_lost"), 0);
    assert_eq!(c.stat("submits"), 4);
    assert_eq!(c.reasons(), serde_json::json!({}));
}

#[test]
fn neighbor_fault_on_dynamic_rendering_clear_is_replayed() {
    let c = run_scenario("replay_dynamic", "neighbor@1");
    assert_eq!(c.stat("replays"), 1);
    assert_eq!(c.stat("devices_lost"), 0);
}

#[test]
fn neighbor_fault_on_load_and_blend_loses_device_innocent() {
    let c = run_scenario("lose_blend", "neighbor@3");
    assert_eq!(c.stat("faults_injected"), 1);
    assert_eq!(c.stat("replays"), 0);
    assert_eq!(c.stat("devices_lost"), 1);
    assert_eq!(c.reasons()["blend_on_loaded"], 1, "{:?}", c.stats);
}

#[test]
fn guilty_fault_is_sticky_device_lost_with_address() {
    let c = run_scenario("guilty", "guilty@2");
    assert_eq!(c.stat("faults_injected"), 1);
    assert_eq!(c.stat("devices_lost"), 1);
    assert_eq!(c.stat("replays"), 0);
}

#[test]
fn hang_is_a_guilty_timeout() {
    let c = run_scenario("hang", "hang@1");
    assert_eq!(c.stat("devices_lost"), 1);
}

#[test]
fn neighbor_every_and_stats_sum_over_devices() {
    let c = run_scenario("two_devices", "neighbor-every@1");
    // Two devices, two cleared passes each, every one hit and replayed.
    assert_eq!(c.stat("submits"), 4);
    assert_eq!(c.stat("faults_injected"), 4);
    assert_eq!(c.stat("replays"), 4, "{:?}", c.stats);
    assert_eq!(c.stat("devices_lost"), 0);
}

#[test]
fn bad_plan_is_rejected_and_nothing_is_injected() {
    let c = run_scenario("no_fault", "guilty@0,bogus");
    assert!(
        c.stderr.contains("AGX_FAULT_PLAN") && c.stderr.contains("rejected"),
        "stderr: {}",
        c.stderr
    );
    assert_eq!(c.stat("faults_injected"), 0);
    assert_eq!(c.stat("devices_lost"), 0);
}

#[test]
fn no_plan_passes_through() {
    let c = run_scenario("no_fault", "");
    assert_eq!(c.stat("faults_injected"), 0);
    assert_eq!(c.stat("submits"), 2);
    assert!(!c.stdout.contains("lost"));
}

#[test]
fn vulkaninfo_lists_device_fault_with_built_manifest() {
    require_vulkan();
    // The manifest the build script wrote next to the library (with its relative path).
    let dir = layer_library().parent().unwrap().to_path_buf();
    assert!(
        dir.join("VkLayer_agx_fault.json").exists(),
        "build.rs writes VkLayer_agx_fault.json into {}",
        dir.display()
    );
    let xdg = private_dir("xdg");
    let out = std::process::Command::new("vulkaninfo")
        .env("VK_LAYER_PATH", &dir)
        .env("VK_INSTANCE_LAYERS", "VK_LAYER_AGX_fault")
        .env("XDG_RUNTIME_DIR", &xdg)
        .output()
        .unwrap_or_else(|e| panic!("cannot run vulkaninfo ({e}); {INSTALL_HINT}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "vulkaninfo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("VK_LAYER_AGX_fault"), "layer not listed");
    let dev_ext = text
        .lines()
        .filter(|l| l.trim_start().starts_with("VK_EXT_device_fault"))
        .count();
    assert!(dev_ext >= 1, "VK_EXT_device_fault not listed:\n{text}");
    assert!(text.contains("deviceFault             = true"));
}

#[test]
fn a_replayed_partial_fill_leaves_the_rest_of_the_buffer_alone() {
    // Only the bytes the job wrote are garbled before the replay: a fill of the middle of a
    // buffer is replayed and the bytes around it keep what the host wrote (a scramble of the
    // whole binding would leave garbage there: a wrong result no GPU would give).
    let c = run_scenario("partial_fill", "neighbor@1");
    assert_eq!(c.stat("replays"), 1, "{:?}", c.stats);
    // Exactly the bytes the fill changed (some already held 0x55).
    let changed = (1024..3072).filter(|i| (i * 7 % 251) as u8 != 0x55).count();
    assert_eq!(c.stat("scrambled_bytes"), changed as u64, "{:?}", c.stats);
    assert!(c.stdout.contains("RESULT right"), "{}", c.stdout);
}

#[test]
fn weakened_tracker_shows_wrong_pixels_real_tracker_loses() {
    // The real tracker: a pass that loads the attachment and blends onto it is not
    // restartable.
    let c = run_scenario("load_pass", "neighbor@3");
    assert!(c.stdout.contains("RESULT lost"), "{}", c.stdout);
    assert_eq!(c.reasons()["blend_on_loaded"], 1, "{:?}", c.stats);
    assert_eq!(c.stat("replays"), 0);
    // Without any fault the pass is right, and replaying the whole pass once more would be
    // too (min blending is idempotent): only garbage in the bytes the pass wrote shows a
    // missed write. A tracker that misses the attachment's writes calls the pass restartable;
    // the scramble garbles the bytes the pass changed anyway (it observes them, it does not
    // ask the analysis), so the replay blends over garbage.
    let c = run_scenario("load_pass", "");
    assert!(c.stdout.contains("RESULT right-pixels"), "{}", c.stdout);
    let c = run_scenario_env(
        "load_pass",
        "neighbor@3",
        &[("AGX_FAULT_WEAKEN", "attachment-writes")],
    );
    assert_eq!(c.stat("replays"), 1, "{:?}", c.stats);
    assert!(c.stat("scrambled_bytes") > 0);
    assert!(
        c.stdout.contains("RESULT wrong-pixels"),
        "a missed write must show: {}",
        c.stdout
    );
}

// ---- child side -------------------------------------------------------------------------

/// The child process entry: runs the scenario named by `AGX_TEST_SCENARIO` (does nothing when
/// run directly).
#[test]
fn child_entry() {
    let Ok(name) = std::env::var("AGX_TEST_SCENARIO") else {
        return;
    };
    match name.as_str() {
        "replay_clear" => replay(false),
        "replay_dynamic" => replay(true),
        "lose_blend" => lose_blend(),
        "guilty" => guilty(),
        "hang" => hang(),
        "two_devices" => two_devices(),
        "no_fault" => no_fault(),
        "load_pass" => load_pass(),
        "partial_fill" => partial_fill(),
        other => panic!("unknown scenario {other}"),
    }
    println!("SCENARIO {name} OK");
}

/// `neighbor@1`: the first submission (a cleared pass with a draw) is hit, scrambled and
/// replayed; the application sees the right pixels and no error.
fn replay(dynamic: bool) {
    let gpu = Gpu::new();
    let scene = Scene::new(&gpu);
    let kind = PassKind { dynamic, ..CLEARED };
    let (r, first) = render_and_read(&gpu, &scene, kind);
    assert_eq!(r, vk::Result::SUCCESS, "no error after a replay");
    check_triangle(&first);
    // Same work, no fault: byte-identical.
    let (r, second) = render_and_read(&gpu, &scene, kind);
    assert_eq!(r, vk::Result::SUCCESS);
    assert_eq!(first, second, "replayed pixels equal a fault-free run");
    let (desc, addrs, vendors) = gpu.fault_info();
    assert!(desc.is_empty() && addrs.is_empty() && vendors.is_empty());
    gpu.destroy();
}

/// `neighbor@2`: a cleared pass, then a load-and-blend pass that is hit: not restartable, so
/// the device is lost and the report says innocent.
fn lose_blend() {
    let gpu = Gpu::new();
    let scene = Scene::new(&gpu);
    let (r, _) = render_and_read(&gpu, &scene, CLEARED);
    assert_eq!(r, vk::Result::SUCCESS);
    let pass = scene.pass(
        &gpu,
        PassKind {
            load: true,
            blend: Blend::Alpha,
            ..CLEARED
        },
    );
    let f = gpu.fence();
    // Submission 3 (1: pass, 2: readback).
    assert_eq!(gpu.submit(&[pass], f), vk::Result::SUCCESS);
    let (w, t) = gpu.wait(f);
    assert_eq!(w, vk::Result::ERROR_DEVICE_LOST);
    assert!(t < Duration::from_secs(2), "wait took {t:?}");
    let (desc, addrs, vendors) = gpu.fault_info();
    println!("report: {desc}");
    assert!(desc.contains("innocent"), "{desc}");
    assert!(desc.contains("blend_on_loaded"), "{desc}");
    assert!(addrs.is_empty());
    assert_eq!(vendor(&vendors, GUILT).unwrap().1, 1, "innocent");
    assert_eq!(vendor(&vendors, SUBMISSION).unwrap().1, 3);
    assert_eq!(
        gpu.submit(&[], vk::Fence::null()),
        vk::Result::ERROR_DEVICE_LOST
    );
    gpu.destroy();
}

/// `neighbor@2` counts the readback as submission 2: re-point it at the pass.
fn guilty_checks(gpu: &Gpu, expect_submission: u64, expect_address: bool) {
    // SAFETY (whole function): valid Vulkan objects, created here.
    let d = &gpu.device;
    let (desc, addrs, vendors) = gpu.fault_info();
    println!("report: {desc}");
    assert!(desc.contains("guilty"), "{desc}");
    assert_eq!(vendor(&vendors, GUILT).unwrap().1, 0, "guilty");
    assert_eq!(vendor(&vendors, SUBMISSION).unwrap().1, expect_submission);
    assert!(vendor(&vendors, UNIT).is_some() && vendor(&vendors, KIND).is_some());
    if expect_address {
        assert_eq!(addrs.len(), 1, "one address info");
        let a = addrs[0];
        assert_eq!(a.address_type, vk::DeviceFaultAddressTypeEXT::WRITE_INVALID);
        assert_ne!(a.reported_address, 0);
        assert!(a.address_precision.is_power_of_two());
        // Short arrays: VK_INCOMPLETE.
        let f = gpu.fault.fp().get_device_fault_info_ext;
        let mut counts = vk::DeviceFaultCountsEXT {
            address_info_count: 0,
            vendor_info_count: 1,
            ..Default::default()
        };
        let mut one = [vk::DeviceFaultVendorInfoEXT::default()];
        let mut info = vk::DeviceFaultInfoEXT {
            p_vendor_infos: one.as_mut_ptr(),
            ..Default::default()
        };
        // SAFETY: arrays as large as the counts say.
        let r = unsafe { f(d.handle(), &mut counts, &mut info) };
        assert_eq!(r, vk::Result::INCOMPLETE);
        assert_eq!(
            (counts.address_info_count, counts.vendor_info_count),
            (0, 1)
        );
    } else {
        assert!(addrs.is_empty());
    }
}

/// `guilty@2`: DEVICE_LOST from the first call after the faulting submission, on every later
/// call that can return it, promptly.
fn guilty() {
    let gpu = Gpu::new();
    let d = &gpu.device;
    // SAFETY: valid Vulkan usage throughout.
    unsafe {
        let qp = d
            .create_query_pool(
                &vk::QueryPoolCreateInfo::default()
                    .query_type(vk::QueryType::OCCLUSION)
                    .query_count(1),
                None,
            )
            .unwrap();
        let mut tl = vk::SemaphoreTypeCreateInfo::default()
            .semaphore_type(vk::SemaphoreType::TIMELINE)
            .initial_value(0);
        let sem = d
            .create_semaphore(&vk::SemaphoreCreateInfo::default().push_next(&mut tl), None)
            .unwrap();
        let event = d
            .create_event(&vk::EventCreateInfo::default(), None)
            .unwrap();
        let cb = gpu.command_buffer();
        d.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default())
            .unwrap();
        d.cmd_reset_query_pool(cb, qp, 0, 1);
        d.end_command_buffer(cb).unwrap();

        // Submission 1: fine.
        let f1 = gpu.fence();
        assert_eq!(gpu.submit(&[cb], f1), vk::Result::SUCCESS);
        assert_eq!(gpu.wait(f1).0, vk::Result::SUCCESS);
        assert_eq!(d.get_fence_status(f1), Ok(true));

        // Submission 2 (vkQueueSubmit2, signalling the timeline): faults, guilty. The submit
        // itself is accepted; the loss shows from the next call.
        let f2 = gpu.fence();
        let cbi = [vk::CommandBufferSubmitInfo::default().command_buffer(cb)];
        let ssi = [vk::SemaphoreSubmitInfo::default()
            .semaphore(sem)
            .value(1)
            .stage_mask(vk::PipelineStageFlags2::ALL_COMMANDS)];
        let si = [vk::SubmitInfo2::default()
            .command_buffer_infos(&cbi)
            .signal_semaphore_infos(&ssi)];
        assert_eq!(d.queue_submit2(gpu.queue, &si, f2), Ok(()));
        let (w, t) = gpu.wait(f2);
        assert_eq!(
            w,
            vk::Result::ERROR_DEVICE_LOST,
            "the wait on the faulting submission"
        );
        assert!(t < Duration::from_secs(2), "wait took {t:?}");
        println!("wait after loss took {t:?}");

        // Sticky everywhere.
        const LOST: vk::Result = vk::Result::ERROR_DEVICE_LOST;
        assert_eq!(
            (d.get_fence_status(f1)).err(),
            Some(LOST),
            "even a fence signalled before"
        );
        assert_eq!((d.get_fence_status(f2)).err(), Some(LOST));
        let f3 = gpu.fence();
        assert_eq!(gpu.submit(&[cb], f3), vk::Result::ERROR_DEVICE_LOST);
        assert_eq!(gpu.wait(f3).0, vk::Result::ERROR_DEVICE_LOST);
        assert_eq!(
            (d.queue_submit2(gpu.queue, &si, vk::Fence::null())).err(),
            Some(LOST)
        );
        assert_eq!((d.queue_wait_idle(gpu.queue)).err(), Some(LOST));
        assert_eq!((d.device_wait_idle()).err(), Some(LOST));
        let mut data = [0u64; 1];
        let r = d.get_query_pool_results(
            qp,
            0,
            &mut data,
            vk::QueryResultFlags::TYPE_64 | vk::QueryResultFlags::WAIT,
        );
        assert_eq!(
            (r).err(),
            Some(LOST),
            "query results (with WAIT) return promptly"
        );
        let sems = [sem];
        let vals = [100u64];
        let t0 = std::time::Instant::now();
        let r = d.wait_semaphores(
            &vk::SemaphoreWaitInfo::default()
                .semaphores(&sems)
                .values(&vals),
            u64::MAX,
        );
        assert_eq!(
            (r).err(),
            Some(LOST),
            "timeline wait on a value nobody signals"
        );
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        assert_eq!((d.get_semaphore_counter_value(sem)).err(), Some(LOST));
        assert_eq!((d.get_event_status(event)).err(), Some(LOST));
        // An unsignalled, never-submitted fence: still finite.
        let f4 = gpu.fence();
        let (w, t) = gpu.wait(f4);
        assert_eq!(w, vk::Result::ERROR_DEVICE_LOST);
        assert!(t < Duration::from_secs(2), "{t:?}");

        guilty_checks(&gpu, 2, true);

        // Destroy calls keep working.
        d.destroy_event(event, None);
        d.destroy_semaphore(sem, None);
        d.destroy_query_pool(qp, None);
        for f in [f1, f2, f3, f4] {
            d.destroy_fence(f, None);
        }
    }
    gpu.destroy();
}

/// `hang@1`: guilty timeout, no address.
fn hang() {
    let gpu = Gpu::new();
    let f = gpu.fence();
    assert_eq!(gpu.submit(&[], f), vk::Result::SUCCESS);
    assert_eq!(gpu.wait(f).0, vk::Result::ERROR_DEVICE_LOST);
    guilty_checks(&gpu, 1, false);
    let (desc, _, vendors) = gpu.fault_info();
    assert!(desc.contains("hang"), "{desc}");
    assert_eq!(vendor(&vendors, KIND).unwrap().0, "kind: timeout");
    gpu.destroy();
}

/// `neighbor-every@1` on two devices, one after the other (statistics summed).
fn two_devices() {
    for _ in 0..2 {
        let gpu = Gpu::new();
        let scene = Scene::new(&gpu);
        let kind = CLEARED;
        // Two submissions (pass, readback); both hit: the readback's copy is restartable too.
        let (r, p) = render_and_read(&gpu, &scene, kind);
        assert_eq!(r, vk::Result::SUCCESS);
        check_triangle(&p);
        gpu.destroy();
    }
}

/// No fault planned (or a rejected plan): everything works.
fn no_fault() {
    let gpu = Gpu::new();
    let scene = Scene::new(&gpu);
    let (r, p) = render_and_read(&gpu, &scene, CLEARED);
    assert_eq!(r, vk::Result::SUCCESS);
    check_triangle(&p);
    gpu.destroy();
}

/// A pass that only clears the target (submission 1), its readback (2), a pass that loads the
/// target and draws the triangle with min blending (3, the one `neighbor@3` hits), its
/// readback (4). Prints `RESULT lost`, `RESULT right-pixels` or `RESULT wrong-pixels`.
fn load_pass() {
    const MIN_RGBA: [u8; 4] = [0, 0, 0, 128];
    let gpu = Gpu::new();
    let scene = Scene::new(&gpu);
    let clear_only = PassKind {
        draw: false,
        ..CLEARED
    };
    let (r, p) = render_and_read(&gpu, &scene, clear_only);
    assert_eq!(r, vk::Result::SUCCESS);
    assert!(p.chunks(4).all(|c| c == CLEAR_RGBA));
    let kind = PassKind {
        load: true,
        blend: Blend::Min,
        ..CLEARED
    };
    let (r, p) = render_and_read(&gpu, &scene, kind);
    if r == vk::Result::ERROR_DEVICE_LOST {
        println!("RESULT lost");
    } else {
        let right =
            p.chunks(4).all(|c| c == MIN_RGBA || c == CLEAR_RGBA) && pixel(&p, 2, 2) == MIN_RGBA;
        println!(
            "RESULT {}",
            if right {
                "right-pixels"
            } else {
                "wrong-pixels"
            }
        );
    }
    gpu.destroy();
}

/// A host-visible buffer the host fills with a pattern, then one submission filling its
/// middle half on the GPU. Prints `RESULT right` or `RESULT wrong at <offset>`.
fn partial_fill() {
    let gpu = Gpu::new();
    let d = &gpu.device;
    // SAFETY: plain Vulkan object creation, recording and mapping with valid structures.
    unsafe {
        let size = 4096u64;
        let (buf, mem) = gpu.buffer(
            size,
            vk::BufferUsageFlags::TRANSFER_DST,
            vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT,
        );
        let p = d
            .map_memory(mem, 0, size, vk::MemoryMapFlags::empty())
            .unwrap() as *mut u8;
        let bytes = std::slice::from_raw_parts_mut(p, size as usize);
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i * 7 % 251) as u8;
        }
        let cb = gpu.command_buffer();
        d.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default())
            .unwrap();
        d.cmd_fill_buffer(cb, buf, 1024, 2048, 0x5555_5555);
        d.end_command_buffer(cb).unwrap();
        let f = gpu.fence();
        assert_eq!(gpu.submit(&[cb], f), vk::Result::SUCCESS);
        assert_eq!(gpu.wait(f).0, vk::Result::SUCCESS);
        let wrong = bytes.iter().enumerate().find(|&(i, &b)| {
            let want = if (1024..3072).contains(&i) {
                0x55
            } else {
                (i * 7 % 251) as u8
            };
            b != want
        });
        match wrong {
            None => println!("RESULT right"),
            Some((i, _)) => println!("RESULT wrong at {i}"),
        }
        d.unmap_memory(mem);
        d.destroy_buffer(buf, None);
        d.free_memory(mem, None);
    }
    gpu.destroy();
}
