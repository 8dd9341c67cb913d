//! `agx.upstream.*`: an upstream kernel (no fault-report extension). Outcomes come from the
//! fence errors (read through exported sync_files); guilt is unknown.

use agx_winsys::{FaultInfo, FenceStatus, Guilt, JobOutcome, ResetStatus};

use super::*;
use crate::{check, check_eq};

pub fn cases() -> Vec<Case> {
    crate::cases![
        "agx.upstream.fence_error_detected" => fence_error_detected,
        "agx.upstream.guilt_unknown" => guilt_unknown,
        "agx.upstream.no_queue_state" => no_queue_state,
        "agx.upstream.hang_etimedout" => hang_etimedout,
        "agx.upstream.killed_victim" => killed_victim,
        "agx.upstream.clean_complete" => clean_complete,
        "agx.upstream.crash_enodev" => crash_enodev,
        "agx.upstream.cancelled_behind_culprit" => cancelled_behind_culprit,
    ]
}

const UP: &str = "sim:upstream,policy=kill-inflight,hang-timeout-ms=1";

fn fence_error_detected(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim(UP)?;
    check!(dev.fault_ext().is_none(), "upstream mode has no extension");
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    let j = culprit_job(cx, &c, Fault::UnmappedRead, 0)?;
    // SYNCOBJ_WAIT says nothing...
    let (tl, p) = j.fence();
    tl.wait(Some(p), Deadline::After(BOUND), Default::default())?;
    // ...the sync_file does.
    check_eq!(tl.status(Some(p))?, FenceStatus::Error(-libc::EIO), "fence");
    check_eq!(
        wait(&j)?,
        JobOutcome::Faulted {
            fault: FaultInfo::UNKNOWN,
            guilt: Guilt::Unknown
        },
        "outcome from the fence"
    );
    cx.finish()
}

fn guilt_unknown(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim(UP)?;
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    let o = wait(&culprit_job(cx, &c, Fault::ReadonlyWrite, 0)?)?;
    check_eq!(o.guilt(), Some(Guilt::Unknown), "guilt");
    check_eq!(ResetStatus::from_outcome(&o), ResetStatus::Unknown, "GL");
    check_eq!(
        agx_winsys::vulkan::vk_result_for(&o),
        agx_winsys::vulkan::VK_ERROR_DEVICE_LOST,
        "Vulkan"
    );
    cx.finish()
}

fn no_queue_state(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim(UP)?;
    let c = cx.ctx(&dev, "a", Role::Innocent)?;
    check!(
        matches!(c.queue.state(), Err(agx_winsys::Error::Unsupported(_))),
        "QUEUE_GET_STATE upstream"
    );
    cx.finish()
}

fn hang_etimedout(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim(UP)?;
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    let j = culprit_job(cx, &c, Fault::Hang, 0)?;
    check_eq!(wait(&j)?, JobOutcome::TimedOut, "outcome");
    let (tl, p) = j.fence();
    check_eq!(
        tl.status(Some(p))?,
        FenceStatus::Error(-libc::ETIMEDOUT),
        "fence"
    );
    cx.finish()
}

fn killed_victim(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(cx, UP, Victim::Draw, Fault::UnmappedRead)?;
    check_eq!(
        wait(&c.vj)?,
        JobOutcome::Killed {
            guilt: Guilt::Unknown,
            fault: None
        },
        "victim"
    );
    cx.finish()
}

fn clean_complete(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim(UP)?;
    let c = cx.ctx(&dev, "a", Role::Innocent)?;
    let (cb, va) = clear_cb(&c, 4096, 0x0707_0707)?;
    check_eq!(
        wait(&cx.submit(&c, &cb, &[], &[])?)?,
        JobOutcome::Complete,
        "job"
    );
    cx.expect_memory(&c, va, vec![7; 4096]);
    cx.finish()
}

fn crash_enodev(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim(UP)?;
    let sim = dev.sim_control().expect("sim").clone();
    let c = cx.ctx(&dev, "a", Role::Innocent)?;
    sim.hold();
    let (cb, _) = clear_cb(&c, 64, 1)?;
    let j = cx.submit(&c, &cb, &[], &[])?;
    sim.crash_firmware();
    check_eq!(wait(&j)?, JobOutcome::DeviceGone, "from -ENODEV");
    sim.release();
    cx.finish()
}

fn cancelled_behind_culprit(cx: &mut CaseCtx) -> CaseResult {
    // Work queued behind the culprit never ran: its fence carries -ECANCELED, and the job must
    // not be reported complete (its memory was never written).
    let dev = cx.sim(UP)?;
    let sim = dev.sim_control().expect("sim").clone();
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    sim.hold();
    let cj = culprit_job(cx, &c, Fault::UnmappedRead, 0)?;
    let mut later = Vec::new();
    for i in 0..2 {
        let (cb, _) = clear_cb(&c, 64, i)?;
        later.push(cx.submit(&c, &cb, &[], &[])?);
    }
    sim.release();
    let o = wait(&cj)?;
    check!(
        o.guilt() == Some(Guilt::Unknown),
        "the culprit faulted (-EIO) but is reported {o:?}; queued: {:?}",
        later.iter().map(|l| wait(l).ok()).collect::<Vec<_>>()
    );
    for (i, l) in later.iter().enumerate() {
        let o = wait(l)?;
        check!(
            !o.succeeded(),
            "queued job {i} never ran but is reported {o:?}"
        );
    }
    cx.finish()
}
