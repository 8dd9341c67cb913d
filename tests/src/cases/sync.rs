//! `agx.sync.*`: sync objects around faults: binary and timeline, errors visible only through
//! sync_file (`SYNCOBJ_WAIT` hides them), chains, cross-file sharing, bounded waits.

use std::os::fd::AsFd;
use std::time::Instant;

use agx_winsys::sync::wait_many;
use agx_winsys::{FenceStatus, JobOutcome, SyncObj, SyncPoint, WaitFlags};

use super::*;
use crate::{check, check_eq};

pub fn cases() -> Vec<Case> {
    crate::cases![
        "agx.sync.binary_signal_wait" => binary_signal_wait,
        "agx.sync.timeline_points" => timeline_points,
        "agx.sync.error_visible_in_sync_file" => error_visible_in_sync_file,
        "agx.sync.wait_hides_error" => wait_hides_error,
        "agx.sync.pending_hides_later_error" => pending_hides_later_error,
        "agx.sync.cross_file_gate" => cross_file_gate,
        "agx.sync.cross_file_error_visible" => cross_file_error_visible,
        "agx.sync.wait_timeout_bounded" => wait_timeout_bounded,
        "agx.sync.cancelled_fence_ecanceled" => cancelled_fence_ecanceled,
        "agx.sync.device_gone_enodev" => device_gone_enodev,
        "agx.sync.wait_many_any" => wait_many_any,
        "agx.sync.gated_by_user_signal" => gated_by_user_signal,
    ]
}

fn binary_signal_wait(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "a", Role::Innocent)?;
    let s = SyncObj::new(&dev, false)?;
    let (cb, va) = clear_cb(&c, 64, 0x0101_0101)?;
    let j = cx.submit(&c, &cb, &[], &[SyncPoint::binary(&s)])?;
    s.wait(None, Deadline::After(BOUND), WaitFlags::default())?;
    check_eq!(s.status(None)?, FenceStatus::Signaled, "status");
    check_eq!(wait(&j)?, JobOutcome::Complete, "job");
    cx.expect_memory(&c, va, vec![1; 64]);
    cx.finish()
}

fn timeline_points(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let sim = dev.sim_control().expect("sim").clone();
    let c = cx.ctx(&dev, "a", Role::Innocent)?;
    let t = SyncObj::new(&dev, false)?;
    sim.hold();
    for p in 1..=3u64 {
        let (cb, _) = clear_cb(&c, 64, p as u32)?;
        cx.submit(&c, &cb, &[], &[SyncPoint::timeline(&t, p)])?;
    }
    check_eq!(t.query(false)?, 0, "nothing signalled while held");
    check_eq!(t.status(Some(2))?, FenceStatus::Pending, "point 2 pending");
    sim.release();
    t.wait(Some(3), Deadline::After(BOUND), WaitFlags::default())?;
    check_eq!(t.query(false)?, 3, "last point");
    check_eq!(t.status(Some(2))?, FenceStatus::Signaled, "point 2");
    cx.finish()
}

fn error_visible_in_sync_file(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    let s = SyncObj::new(&dev, false)?;
    let mut sb = agx_sim::stream::StreamBuilder::new();
    Fault::UnmappedRead.emit(&mut sb, &c);
    let cb = render_stream(&c, &mut sb)?;
    let j = cx.submit(&c, &cb, &[], &[SyncPoint::binary(&s)])?;
    let fd = s.export_sync_file(None)?;
    check_eq!(
        agx_winsys::sync::sync_file_status(&dev, fd.as_fd())?,
        FenceStatus::Error(-libc::EIO),
        "SYNC_IOC_FILE_INFO"
    );
    // The same through the job's own timeline point.
    let (tl, p) = j.fence();
    check_eq!(
        tl.status(Some(p))?,
        FenceStatus::Error(-libc::EIO),
        "timeline"
    );
    check!(is_guilty_of(&wait(&j)?, Fault::UnmappedRead), "outcome");
    cx.finish()
}

fn wait_hides_error(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    let s = SyncObj::new(&dev, false)?;
    let mut sb = agx_sim::stream::StreamBuilder::new();
    Fault::ReadonlyWrite.emit(&mut sb, &c);
    cx.submit(
        &c,
        &render_stream(&c, &mut sb)?,
        &[],
        &[SyncPoint::binary(&s)],
    )?;
    // The upstream behaviour: SYNCOBJ_WAIT succeeds on an errored fence.
    s.wait(None, Deadline::NOW, WaitFlags::default())?;
    check_eq!(s.status(None)?, FenceStatus::Error(-libc::EIO), "status");
    cx.finish()
}

fn pending_hides_later_error(cx: &mut CaseCtx) -> CaseResult {
    // A timeline point is a chain link: it signals when its own fence and every earlier point
    // have, and the chain itself never carries an error. With point 1 pending and point 2
    // failed: a wait on point 2 blocks, and `SYNC_IOC_FILE_INFO` without fence infos reports
    // the chain's status (pending) and hides the error; only asking for the fence infos (what
    // the winsys does, as Linux's `sync_file_ioctl_fence_info` takes the minimum status of the
    // unwrapped fences) shows it. Point 1 is a fence of a second, held device.
    let d1 = cx.sim("sim")?;
    let s1 = d1.sim_control().expect("sim").clone();
    let d2 = cx.sim("sim")?;
    let slow = cx.ctx(&d1, "slow", Role::Innocent)?;
    let culprit = cx.ctx(&d2, "culprit", Role::Culprit)?;
    s1.hold();
    let done1 = SyncObj::new(&d1, false)?;
    let (cb, _) = clear_cb(&slow, 64, 1)?;
    let j1 = cx.submit(&slow, &cb, &[], &[SyncPoint::binary(&done1)])?;
    let fd = done1.export_sync_file(None)?;
    let t = SyncObj::new(&d2, false)?;
    t.import_sync_file(fd.as_fd(), Some(1))?;
    let mut sb = agx_sim::stream::StreamBuilder::new();
    Fault::UnmappedRead.emit(&mut sb, &culprit);
    let cb = render_stream(&culprit, &mut sb)?;
    let j2 = cx.submit(&culprit, &cb, &[], &[SyncPoint::timeline(&t, 2)])?;
    check!(
        is_guilty_of(&wait(&j2)?, Fault::UnmappedRead),
        "point 2's job"
    );
    let r = t.wait(
        Some(2),
        Deadline::After(std::time::Duration::from_millis(20)),
        WaitFlags::default(),
    );
    check!(
        matches!(r, Err(agx_winsys::Error::Timeout)),
        "wait on point 2 while point 1 is pending: {r:?}"
    );
    let p2 = t.export_sync_file(Some(2))?;
    check_eq!(
        naive_status(&d2, &p2)?,
        0,
        "FILE_INFO without fence infos: pending"
    );
    check_eq!(
        agx_winsys::sync::sync_file_status(&d2, p2.as_fd())?,
        FenceStatus::Error(-libc::EIO),
        "FILE_INFO with fence infos"
    );
    s1.release();
    check_eq!(wait(&j1)?, JobOutcome::Complete, "point 1's job");
    t.wait(Some(2), Deadline::After(BOUND), WaitFlags::default())?;
    check_eq!(
        naive_status(&d2, &p2)?,
        1,
        "the chain signals without an error"
    );
    check_eq!(
        agx_winsys::sync::sync_file_status(&d2, p2.as_fd())?,
        FenceStatus::Error(-libc::EIO),
        "with fence infos, after"
    );
    cx.finish()
}

/// `SYNC_IOC_FILE_INFO` with `num_fences = 0`: the container's own status (asked through
/// `dev`, whose device made the sync_file).
fn naive_status(dev: &Device, fd: &std::os::fd::OwnedFd) -> Result<i32, CaseError> {
    use agx_uapi::sync_file::{sync_file_info, SYNC_IOC_FILE_INFO};
    let mut info: sync_file_info = bytemuck::Zeroable::zeroed();
    dev.kernel()
        .fd_ioctl(
            fd.as_fd(),
            SYNC_IOC_FILE_INFO,
            bytemuck::bytes_of_mut(&mut info),
        )
        .map_err(|e| CaseError::Fail(format!("SYNC_IOC_FILE_INFO: {e}")))?;
    Ok(info.status)
}

fn cross_file_gate(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let sim = dev.sim_control().expect("sim").clone();
    let d2 = cx.file(&dev)?;
    let a = cx.ctx(&dev, "producer", Role::Innocent)?;
    let b = cx.ctx(&d2, "consumer", Role::Innocent)?;
    let done = SyncObj::new(&dev, false)?;
    sim.hold();
    let (cb, _) = clear_cb(&a, 8192, 1)?;
    let ja = cx.submit(&a, &cb, &[], &[SyncPoint::binary(&done)])?;
    let fd = done.export_sync_file(None)?;
    let gate = SyncObj::new(&d2, false)?;
    gate.import_sync_file(fd.as_fd(), None)?;
    let (cb, vb) = clear_cb(&b, 64, 0x0202_0202)?;
    let jb = cx.submit(&b, &cb, &[SyncPoint::binary(&gate)], &[])?;
    check!(jb.poll()?.is_none(), "consumer ran before its producer");
    sim.release();
    check_eq!(wait(&ja)?, JobOutcome::Complete, "producer");
    check_eq!(wait(&jb)?, JobOutcome::Complete, "consumer");
    cx.expect_memory(&b, vb, vec![2; 64]);
    cx.finish()
}

fn cross_file_error_visible(cx: &mut CaseCtx) -> CaseResult {
    // The producer faults: the consumer's imported fence carries the error, the consumer's
    // own job still runs (the kernel does not cancel dependents); the error is the consumer's
    // to check.
    let dev = cx.sim("sim")?;
    let sim = dev.sim_control().expect("sim").clone();
    let d2 = cx.file(&dev)?;
    let a = cx.ctx(&dev, "producer", Role::Culprit)?;
    let b = cx.ctx(&d2, "consumer", Role::Innocent)?;
    let done = SyncObj::new(&dev, false)?;
    sim.hold();
    let mut sb = agx_sim::stream::StreamBuilder::new();
    sb.spin(1000);
    Fault::UnmappedWrite.emit(&mut sb, &a);
    let ja = cx.submit(
        &a,
        &render_stream(&a, &mut sb)?,
        &[],
        &[SyncPoint::binary(&done)],
    )?;
    let fd = done.export_sync_file(None)?;
    let gate = SyncObj::new(&d2, false)?;
    gate.import_sync_file(fd.as_fd(), None)?;
    let (cb, _) = clear_cb(&b, 64, 2)?;
    let jb = cx.submit(&b, &cb, &[SyncPoint::binary(&gate)], &[])?;
    sim.release();
    check!(is_guilty_of(&wait(&ja)?, Fault::UnmappedWrite), "producer");
    check_eq!(
        gate.status(None)?,
        FenceStatus::Error(-libc::EIO),
        "imported fence"
    );
    check_eq!(wait(&jb)?, JobOutcome::Complete, "consumer ran");
    cx.finish()
}

fn wait_timeout_bounded(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let sim = dev.sim_control().expect("sim").clone();
    let c = cx.ctx(&dev, "a", Role::Innocent)?;
    sim.hold();
    let (cb, _) = clear_cb(&c, 64, 1)?;
    let j = cx.submit(&c, &cb, &[], &[])?;
    let t = Instant::now();
    let r = j.wait(Deadline::After(std::time::Duration::from_millis(50)));
    let took = t.elapsed();
    check!(matches!(r, Err(agx_winsys::Error::Timeout)), "{r:?}");
    check!(
        took >= std::time::Duration::from_millis(45) && took < std::time::Duration::from_secs(2),
        "wait took {took:?}"
    );
    check!(j.poll()?.is_none(), "poll while held");
    sim.release();
    check_eq!(wait(&j)?, JobOutcome::Complete, "after release");
    cx.finish()
}

fn cancelled_fence_ecanceled(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let sim = dev.sim_control().expect("sim").clone();
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    let s = SyncObj::new(&dev, false)?;
    sim.hold();
    culprit_job(cx, &c, Fault::UnmappedRead, 0)?;
    let (cb, _) = clear_cb(&c, 64, 1)?;
    let j = cx.submit(&c, &cb, &[], &[SyncPoint::binary(&s)])?;
    sim.release();
    check_eq!(
        wait(&j)?,
        JobOutcome::Cancelled,
        "queued behind the culprit"
    );
    check_eq!(
        s.status(None)?,
        FenceStatus::Error(-libc::ECANCELED),
        "fence"
    );
    cx.finish()
}

fn device_gone_enodev(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let sim = dev.sim_control().expect("sim").clone();
    let c = cx.ctx(&dev, "a", Role::Innocent)?;
    let s = SyncObj::new(&dev, false)?;
    sim.hold();
    let (cb, _) = clear_cb(&c, 64, 1)?;
    cx.submit(&c, &cb, &[], &[SyncPoint::binary(&s)])?;
    sim.crash_firmware();
    check_eq!(s.status(None)?, FenceStatus::Error(-libc::ENODEV), "fence");
    sim.release();
    cx.finish()
}

fn wait_many_any(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let sim = dev.sim_control().expect("sim").clone();
    let a = cx.ctx(&dev, "a", Role::Innocent)?;
    let s1 = SyncObj::new(&dev, false)?;
    let s2 = SyncObj::new(&dev, true)?;
    sim.hold();
    let (cb, _) = clear_cb(&a, 64, 1)?;
    cx.submit(&a, &cb, &[], &[SyncPoint::binary(&s1)])?;
    let i = wait_many(
        &dev,
        &[(&s1, None), (&s2, None)],
        false,
        Deadline::After(BOUND),
        WaitFlags::default(),
    )?;
    check_eq!(i, 1, "the signalled one");
    let r = wait_many(
        &dev,
        &[(&s1, None), (&s2, None)],
        true,
        Deadline::After(std::time::Duration::from_millis(20)),
        WaitFlags::default(),
    );
    check!(matches!(r, Err(agx_winsys::Error::Timeout)), "all: {r:?}");
    sim.release();
    cx.finish()
}

fn gated_by_user_signal(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let sim = dev.sim_control().expect("sim").clone();
    let a = cx.ctx(&dev, "a", Role::Innocent)?;
    let b = cx.ctx(&dev, "b", Role::Innocent)?;
    let t = SyncObj::new(&dev, false)?;
    // Point 1 from a held job; b waits on it; a CPU signal of point 1 would race it, so b
    // waits on the job-signalled point instead and the CPU signals point 5 beyond.
    sim.hold();
    let (cb, _) = clear_cb(&a, 64, 1)?;
    cx.submit(&a, &cb, &[], &[SyncPoint::timeline(&t, 1)])?;
    let (cb, vb) = clear_cb(&b, 64, 0x0808_0808)?;
    let jb = cx.submit(&b, &cb, &[SyncPoint::timeline(&t, 1)], &[])?;
    sim.release();
    check_eq!(wait(&jb)?, JobOutcome::Complete, "gated job");
    t.signal(Some(5))?;
    check_eq!(t.query(false)?, 5, "CPU-signalled point");
    cx.expect_memory(&b, vb, vec![8; 64]);
    cx.finish()
}
