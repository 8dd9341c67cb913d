//! `agx.device.*`: the device as a whole: firmware crash (every accepted job `DeviceGone`,
//! every driver ioctl `ENODEV`, DRM core calls and teardown still work), parameters.

use agx_sim::Errno;
use agx_winsys::{Deadline, FenceStatus, JobOutcome, SyncObj, Vm, WaitFlags};

use super::*;
use crate::{check, check_eq};

pub fn cases() -> Vec<Case> {
    crate::cases![
        "agx.device.firmware_crash" => firmware_crash,
        "agx.device.crash_enodev_ioctls" => crash_enodev_ioctls,
        "agx.device.crash_all_files" => crash_all_files,
        "agx.device.crash_teardown_works" => crash_teardown_works,
        "agx.device.crash_idle" => crash_idle,
        "agx.device.crash_during_recovery" => crash_during_recovery,
        "agx.device.params_and_extension" => params_and_extension,
    ]
}

fn firmware_crash(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let sim = dev.sim_control().expect("sim").clone();
    let c = cx.ctx(&dev, "a", Role::Innocent)?;
    sim.hold();
    let (cb, _) = clear_cb(&c, 4096, 1)?;
    let j = cx.submit(&c, &cb, &[], &[])?;
    let j2 = cx.submit(&c, &cb, &[], &[])?;
    let fds = [
        super::teardown::fence_fd(&j)?,
        super::teardown::fence_fd(&j2)?,
    ];
    sim.crash_firmware();
    for (i, j) in [&j, &j2].into_iter().enumerate() {
        check_eq!(wait(j)?, JobOutcome::DeviceGone, "job {i}");
        check_eq!(
            agx_winsys::sync::sync_file_status(&dev, std::os::fd::AsFd::as_fd(&fds[i]))?,
            FenceStatus::Error(-libc::ENODEV),
            "job {i} fence"
        );
    }
    let e = c.queue.submit(&cb, &[], &[]).err();
    check!(
        e.as_ref().and_then(JobOutcome::from_submit_error) == Some(JobOutcome::DeviceGone),
        "submit after crash: {e:?}"
    );
    check_eq!(sim.pending_commands(), 0, "pending");
    sim.release();
    cx.finish()
}

fn crash_enodev_ioctls(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "a", Role::Innocent)?;
    dev.sim_control().expect("sim").crash_firmware();
    check_eq!(
        Vm::new(&dev).err().map(|e| e.errno()),
        Some(Errno::NODEV),
        "VM_CREATE"
    );
    check_eq!(
        c.queue.state().err().map(|e| e.errno()),
        Some(Errno::NODEV),
        "QUEUE_GET_STATE"
    );
    check_eq!(
        dev.gpu_time_ns().err().map(|e| e.errno()),
        Some(Errno::NODEV),
        "GET_TIME"
    );
    // DRM core keeps working: the device is wedged, not unplugged.
    let s = SyncObj::new(&dev, true)?;
    s.wait(None, Deadline::NOW, WaitFlags::default())?;
    cx.finish()
}

fn crash_all_files(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let sim = dev.sim_control().expect("sim").clone();
    let mut jobs = Vec::new();
    let mut ctxs = Vec::new();
    sim.hold();
    for i in 0..4 {
        let c = cx.ctx(&cx.file(&dev)?, &format!("file{i}"), Role::Innocent)?;
        let (cb, _) = clear_cb(&c, 1024, i)?;
        jobs.push(cx.submit(&c, &cb, &[], &[])?);
        ctxs.push(c);
    }
    sim.crash_firmware();
    for (i, j) in jobs.iter().enumerate() {
        check_eq!(wait(j)?, JobOutcome::DeviceGone, "file {i}");
    }
    sim.release();
    cx.finish()
}

fn crash_teardown_works(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let sim = dev.sim_control().expect("sim").clone();
    let d2 = cx.file(&dev)?;
    let c = cx.ctx(&d2, "a", Role::Innocent)?;
    sim.hold();
    let (cb, _) = clear_cb(&c, 64, 1)?;
    let j = c.queue.submit(&cb, &[], &[])?;
    sim.crash_firmware();
    check_eq!(wait(&Box::new(j))?, JobOutcome::DeviceGone, "job");
    drop(c); // QUEUE_DESTROY, VM_DESTROY, GEM_CLOSE after a crash
    drop(d2);
    sim.release();
    check_eq!(sim.pending_commands(), 0, "pending");
    cx.finish()
}

fn crash_idle(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "a", Role::Innocent)?;
    let (cb, va) = clear_cb(&c, 64, 0x0101_0101)?;
    check_eq!(
        wait(&cx.submit(&c, &cb, &[], &[])?)?,
        JobOutcome::Complete,
        "before"
    );
    // Reading maps the BO (GEM_MMAP_OFFSET is a driver ioctl: ENODEV after the crash).
    check_eq!(c.read(va, 64)?, vec![1; 64], "memory before the crash");
    dev.sim_control().expect("sim").crash_firmware();
    let e = c.queue.submit(&cb, &[], &[]).err();
    check!(
        e.as_ref().and_then(JobOutcome::from_submit_error) == Some(JobOutcome::DeviceGone),
        "{e:?}"
    );
    // Completed work stays readable (CPU mappings survive).
    check_eq!(c.read(va, 64)?, vec![1; 64], "memory after the crash");
    cx.finish()
}

/// The firmware crashes in the middle of a recovery: the culprit has faulted, the victim has
/// been stopped and is waiting to be replayed, the stop-the-world window is not over. The
/// culprit keeps the guilt its record already has; the stopped victim, the work queued behind
/// it and work submitted meanwhile all end `DeviceGone`; the recovery never completes.
fn crash_during_recovery(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim:policy=replay")?;
    let sim = dev.sim_control().expect("sim").clone();
    let victim = cx.ctx_sized(&dev, "victim", Role::Innocent, 8 << 20)?;
    let culprit = cx.ctx(&cx.file(&dev)?, "culprit", Role::Culprit)?;
    let other = cx.ctx(&cx.file(&dev)?, "other", Role::Innocent)?;
    let (dst, src) = (victim.alloc(COLLIDE_LEN)?, victim.alloc(COLLIDE_LEN)?);
    let mut cb = victim.command_buffer();
    cb.render(victim.draw_pass(dst, src, COLLIDE_LEN)?)?;
    let (behind, _) = clear_cb(&victim, 64, 2)?;
    sim.hold();
    let vj = cx.submit(&victim, &cb, &[], &[])?;
    let vj2 = cx.submit(&victim, &behind, &[], &[])?;
    let cj = culprit_job(cx, &culprit, Fault::UnmappedRead, 5_000)?;
    // Past the fault (5 us), inside the window (it lasts the model's stop-the-world time).
    sim.advance(20_000);
    let names: Vec<&'static str> = sim.trace_events().iter().map(|e| e.kind.name()).collect();
    check!(
        names.contains(&"recovery_start") && names.contains(&"replay"),
        "the recovery has begun and scheduled the replay: {names:?}"
    );
    check!(!names.contains(&"recovery_end"), "the window is not over");
    check!(
        is_guilty_of(&wait(&cj)?, Fault::UnmappedRead),
        "culprit, before the crash"
    );
    check_eq!(vj.poll()?, None, "the victim waits for its replay");
    let (ocb, _) = clear_cb(&other, 64, 3)?;
    let oj = cx.submit(&other, &ocb, &[], &[])?;
    sim.crash_firmware();
    check_eq!(wait(&vj)?, JobOutcome::DeviceGone, "stopped victim");
    check_eq!(wait(&vj2)?, JobOutcome::DeviceGone, "queued behind it");
    check_eq!(
        wait(&oj)?,
        JobOutcome::DeviceGone,
        "submitted during the window"
    );
    check!(
        is_guilty_of(&wait(&cj)?, Fault::UnmappedRead),
        "culprit after the crash"
    );
    let names: Vec<&'static str> = sim.trace_events().iter().map(|e| e.kind.name()).collect();
    let crash = names.iter().position(|n| *n == "firmware_crash");
    let start = names.iter().position(|n| *n == "recovery_start");
    check!(
        start < crash && !names.contains(&"recovery_end"),
        "crash inside the recovery: {names:?}"
    );
    let s = sim.stats();
    check!(
        s.recoveries_closed == 0 && s.recovery_ns == 0,
        "never completed: {s:?}"
    );
    sim.release();
    cx.finish()
}

fn params_and_extension(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim:hang-timeout-ms=7,replay-limit=2")?;
    let p = dev.params();
    check!(p.max_commands_per_submission > 0, "{p:?}");
    check!(p.max_attachments > 0, "{p:?}");
    let e = dev
        .fault_ext()
        .ok_or_else(|| CaseError::Fail("no extension".into()))?;
    check_eq!(e.version, 1, "version");
    check_eq!(e.result_size, 64, "result size");
    check_eq!(e.hang_timeout_ns, 7_000_000, "watchdog");
    check_eq!(e.replay_limit, 2, "replay limit");
    cx.finish()
}
