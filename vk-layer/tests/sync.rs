//! Held submissions on the real loader and lavapipe: the neighbour path never waits for the
//! GPU in `vkQueueSubmit` and never turns a legal submission order into a hang (timeline
//! wait-before-signal, two threads signalling each other from the host, events the host sets
//! after the submit, binary semaphores between submits and batches), and a lost device's waits
//! wait for the work below. Scenarios run in child processes, as in `layer.rs`.

mod common;

use std::time::{Duration, Instant};

use ash::vk;
use common::*;

#[test]
fn wait_before_signal_neither_hangs_the_submit_nor_the_replay() {
    let c = run_scenario("wait_before_signal", "neighbor-every@1");
    assert_eq!(c.stat("faults_injected"), 2);
    assert_eq!(c.stat("replays"), 2, "{:?}", c.stats);
    assert_eq!(c.stat("devices_lost"), 0);
}

#[test]
fn two_threads_with_host_signals_do_not_deadlock() {
    let c = run_scenario("two_threads", "neighbor-every@1");
    // Thread A: 4 passes + 4 readbacks; thread B: 4 passes; every one hit and replayed.
    assert_eq!(c.stat("faults_injected"), 12);
    assert_eq!(c.stat("replays"), 12, "{:?}", c.stats);
    assert_eq!(c.stat("devices_lost"), 0);
}

#[test]
fn event_set_by_the_host_after_the_submit() {
    let c = run_scenario("events", "neighbor-every@1");
    // The wait-then-pass submission is replayed; the one that resets the event it waited
    // for cannot be (its replay would wait for ever): an innocent loss, not a hang.
    assert_eq!(c.stat("faults_injected"), 2);
    assert_eq!(c.stat("replays"), 1, "{:?}", c.stats);
    assert_eq!(c.stat("devices_lost"), 1);
    assert_eq!(c.reasons()["event_wait_after_reset"], 1, "{:?}", c.stats);
}

#[test]
fn binary_semaphores_between_submits_and_batches() {
    let c = run_scenario("binary_semaphores", "neighbor-every@1");
    assert_eq!(c.stat("faults_injected"), 3);
    assert_eq!(c.stat("replays"), 3, "{:?}", c.stats);
    assert_eq!(c.stat("devices_lost"), 0);
}

#[test]
fn lost_means_finished_waits_for_the_work_below() {
    let c = run_scenario("lost_waits_for_work", "guilty@2");
    assert_eq!(c.stat("devices_lost"), 1);
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
        "wait_before_signal" => wait_before_signal(),
        "two_threads" => two_threads(),
        "events" => events(),
        "binary_semaphores" => binary_semaphores(),
        "lost_waits_for_work" => lost_waits_for_work(),
        other => panic!("unknown scenario {other}"),
    }
    println!("SCENARIO {name} OK");
}

/// How long a submit call may take: it must never wait for the GPU.
const SUBMIT_BOUND: Duration = Duration::from_secs(1);

/// `neighbor-every@1`: a pass waits for a timeline value the host signals only after the
/// submit returned (wait-before-signal); the readback waits for the pass's signal.
fn wait_before_signal() {
    let gpu = Gpu::new();
    let scene = Scene::new(&gpu);
    let sem = gpu.timeline(0);
    let pass = scene.pass(&gpu, CLEARED);
    let rb = scene.readback_cb(&gpu);
    let f = gpu.fence();
    let t0 = Instant::now();
    let r1 = gpu.submit_sync(&[(&[pass], &[(sem, 1)], &[(sem, 2)])], vk::Fence::null());
    let r2 = gpu.submit_sync(&[(&[rb], &[(sem, 2)], &[])], f);
    let dt = t0.elapsed();
    assert_eq!((r1, r2), (vk::Result::SUCCESS, vk::Result::SUCCESS));
    assert!(dt < SUBMIT_BOUND, "the submits waited: {dt:?}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        gpu.fence_status(f),
        vk::Result::NOT_READY,
        "nothing ran yet"
    );
    // SAFETY: a valid timeline semaphore.
    unsafe {
        gpu.device
            .signal_semaphore(&vk::SemaphoreSignalInfo::default().semaphore(sem).value(1))
            .unwrap();
    }
    assert_eq!(gpu.wait(f).0, vk::Result::SUCCESS);
    check_triangle(&scene.pixels());
    // SAFETY: a valid timeline semaphore.
    assert_eq!(
        unsafe { gpu.device.get_semaphore_counter_value(sem) },
        Ok(2)
    );
    gpu.destroy();
}

/// `neighbor-every@1`, two threads on one queue (locked, as Vulkan wants): thread A's passes
/// wait for timeline values that thread B signals from the host after A's submit returned.
fn two_threads() {
    use std::sync::{mpsc, Mutex};
    let gpu = Gpu::new();
    let queue_lock = Mutex::new(());
    let ta = gpu.timeline(0);
    let (tx, rx) = mpsc::channel::<u64>();
    std::thread::scope(|s| {
        s.spawn(|| {
            let scene = Scene::new(&gpu);
            let pass = scene.pass(&gpu, CLEARED);
            let rb = scene.readback_cb(&gpu);
            for k in 1..=4u64 {
                let f = gpu.fence();
                let t0 = Instant::now();
                {
                    let _q = queue_lock.lock().unwrap();
                    let r = gpu.submit_sync(&[(&[pass], &[(ta, k)], &[])], f);
                    assert_eq!(r, vk::Result::SUCCESS);
                }
                assert!(t0.elapsed() < SUBMIT_BOUND, "submit waited");
                tx.send(k).unwrap();
                assert_eq!(gpu.wait(f).0, vk::Result::SUCCESS, "A's pass {k}");
                let f = gpu.fence();
                {
                    let _q = queue_lock.lock().unwrap();
                    assert_eq!(gpu.submit(&[rb], f), vk::Result::SUCCESS);
                }
                assert_eq!(gpu.wait(f).0, vk::Result::SUCCESS);
                check_triangle(&scene.pixels());
            }
        });
        let (gpu, queue_lock) = (&gpu, &queue_lock);
        s.spawn(move || {
            let scene = Scene::new(gpu);
            let pass = scene.pass(gpu, CLEARED);
            for k in rx.iter().take(4) {
                std::thread::sleep(Duration::from_millis(50));
                // SAFETY: a valid timeline semaphore.
                unsafe {
                    gpu.device
                        .signal_semaphore(
                            &vk::SemaphoreSignalInfo::default().semaphore(ta).value(k),
                        )
                        .unwrap();
                }
                let f = gpu.fence();
                {
                    let _q = queue_lock.lock().unwrap();
                    assert_eq!(gpu.submit(&[pass], f), vk::Result::SUCCESS);
                }
                assert_eq!(gpu.wait(f).0, vk::Result::SUCCESS, "B's pass {k}");
            }
        });
    });
    gpu.destroy();
}

/// A command buffer that waits for `event` (set by the host), optionally resetting it after.
fn event_waiter(gpu: &Gpu, event: vk::Event, reset_after: bool) -> vk::CommandBuffer {
    let d = &gpu.device;
    let cb = gpu.command_buffer();
    // SAFETY: recording with valid structures.
    unsafe {
        d.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default())
            .unwrap();
        d.cmd_wait_events(
            cb,
            &[event],
            vk::PipelineStageFlags::HOST,
            vk::PipelineStageFlags::ALL_COMMANDS,
            &[],
            &[],
            &[],
        );
        if reset_after {
            d.cmd_reset_event(cb, event, vk::PipelineStageFlags::ALL_COMMANDS);
        }
        d.end_command_buffer(cb).unwrap();
    }
    cb
}

/// `neighbor-every@1`: a submission that waits for an event the host sets after the submit
/// returned is replayed (the event stays set); one that resets the event after waiting for it
/// cannot be replayed (its replay would wait for ever): the device is lost, nothing hangs.
fn events() {
    let gpu = Gpu::new();
    let scene = Scene::new(&gpu);
    let d = &gpu.device;
    // SAFETY: valid Vulkan usage throughout.
    unsafe {
        let event = d
            .create_event(&vk::EventCreateInfo::default(), None)
            .unwrap();
        let wait = event_waiter(&gpu, event, false);
        let pass = scene.pass(&gpu, CLEARED);
        let rb = scene.readback_cb(&gpu);
        let f = gpu.fence();
        let t0 = Instant::now();
        assert_eq!(gpu.submit(&[wait, pass, rb], f), vk::Result::SUCCESS);
        assert!(t0.elapsed() < SUBMIT_BOUND, "submit waited");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            gpu.fence_status(f),
            vk::Result::NOT_READY,
            "waits for the event"
        );
        d.set_event(event).unwrap();
        assert_eq!(gpu.wait(f).0, vk::Result::SUCCESS);
        check_triangle(&scene.pixels());

        let e2 = d
            .create_event(&vk::EventCreateInfo::default(), None)
            .unwrap();
        let wait_reset = event_waiter(&gpu, e2, true);
        let f = gpu.fence();
        assert_eq!(gpu.submit(&[wait_reset], f), vk::Result::SUCCESS);
        std::thread::sleep(Duration::from_millis(100));
        d.set_event(e2).unwrap();
        let (w, t) = gpu.wait(f);
        assert_eq!(w, vk::Result::ERROR_DEVICE_LOST);
        assert!(t < Duration::from_secs(3), "{t:?}");
        let (desc, _, _) = gpu.fault_info();
        assert!(desc.contains("event_wait_after_reset"), "{desc}");
    }
    gpu.destroy();
}

/// `neighbor-every@1`: binary semaphores between two submit calls, and between two batches
/// of one call; every submission held, the signals released in order.
fn binary_semaphores() {
    let gpu = Gpu::new();
    let scene = Scene::new(&gpu);
    let pass = scene.pass(&gpu, CLEARED);
    let rb = scene.readback_cb(&gpu);
    let (b1, b2) = (gpu.binary(), gpu.binary());
    let f = gpu.fence();
    assert_eq!(
        gpu.submit_sync(&[(&[pass], &[], &[(b1, 0)])], vk::Fence::null()),
        vk::Result::SUCCESS
    );
    assert_eq!(
        gpu.submit_sync(&[(&[rb], &[(b1, 0)], &[])], f),
        vk::Result::SUCCESS
    );
    assert_eq!(gpu.wait(f).0, vk::Result::SUCCESS);
    check_triangle(&scene.pixels());
    let f = gpu.fence();
    assert_eq!(
        gpu.submit_sync(&[(&[pass], &[], &[(b2, 0)]), (&[rb], &[(b2, 0)], &[])], f),
        vk::Result::SUCCESS
    );
    assert_eq!(gpu.wait(f).0, vk::Result::SUCCESS);
    check_triangle(&scene.pixels());
    gpu.destroy();
}

/// `guilty@2` while submission 1 (work the host lets finish only after 1.5 s, three times the
/// old 0.5 s cap) still runs: the wait on the lost device returns
/// `VK_ERROR_DEVICE_LOST` only once that work is done below.
fn lost_waits_for_work() {
    let gpu = Gpu::new();
    let spin = Spin::new(&gpu);
    let f1 = gpu.fence();
    assert_eq!(gpu.submit(&[spin.cb], f1), vk::Result::SUCCESS);
    let f2 = gpu.fence();
    assert_eq!(
        gpu.submit(&[], f2),
        vk::Result::SUCCESS,
        "the faulting submit"
    );
    let hold = Duration::from_millis(1500);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(hold);
            spin.release();
        });
        let (w, t) = gpu.wait(f2);
        assert_eq!(w, vk::Result::ERROR_DEVICE_LOST);
        assert!(
            spin.finished(),
            "DEVICE_LOST after {t:?} while the GPU still runs submission 1"
        );
        assert!(t0.elapsed() >= hold, "{t:?}");
        println!("lost wait returned after {t:?}, once the work below finished");
        // Every other wait agrees; status queries too.
        assert_eq!(gpu.wait(f1).0, vk::Result::ERROR_DEVICE_LOST);
        assert_eq!(gpu.fence_status(f1), vk::Result::ERROR_DEVICE_LOST);
    });
    gpu.destroy();
}
