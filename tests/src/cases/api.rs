//! `agx.api.*`: what the APIs above are told. Vulkan: any failed job loses the device for ever,
//! with a fault report (`VK_EXT_device_fault`). GL robustness: the reset status is latched and
//! reported once, with the right guilt; a new context works.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use agx_winsys::vulkan::{
    self, vendor_code, DeviceLostState, FaultAddressType, FaultReport, VK_ERROR_DEVICE_LOST,
    VK_SUCCESS,
};
use agx_winsys::{FaultKind, Guilt, JobOutcome, ResetStatus, ResetTracker};

use super::*;
use crate::{check, check_eq};

pub fn cases() -> Vec<Case> {
    crate::cases![
        "agx.api.vk_lost_sticky" => vk_lost_sticky,
        "agx.api.vk_innocent_lost_too" => vk_innocent_lost_too,
        "agx.api.vk_replayed_not_lost" => vk_replayed_not_lost,
        "agx.api.vk_submit_errno" => vk_submit_errno,
        "agx.api.fault_report_contents" => fault_report_contents,
        "agx.api.fault_report_innocent" => fault_report_innocent,
        "agx.api.gl_reset_status_once" => gl_reset_status_once,
        "agx.api.gl_innocent_status" => gl_innocent_status,
        "agx.api.gl_reset_callback_once" => gl_reset_callback_once,
        "agx.api.gl_new_context_works" => gl_new_context_works,
    ]
}

fn vk_lost_sticky(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(cx, "sim:policy=replay", Victim::Blend, Fault::UnmappedWrite)?;
    let vk = DeviceLostState::new();
    check!(!vk.is_lost(), "fresh device lost");
    check_eq!(vk.sticky(VK_SUCCESS), VK_SUCCESS, "before");
    let o = wait(&c.cj)?;
    let r = vulkan::vk_result_for(&o);
    check_eq!(r, VK_ERROR_DEVICE_LOST, "failed job");
    let first = FaultReport::from_outcome(&o, 1)
        .ok_or_else(|| CaseError::Fail("no report for a failure".into()))?;
    check!(vk.set_lost(first.clone()), "first loss");
    // A second failure (the innocent victim's) changes nothing: the first report stays.
    let vo = wait(&c.vj)?;
    let second = FaultReport::from_outcome(&vo, 2)
        .ok_or_else(|| CaseError::Fail("no report for the victim".into()))?;
    check!(
        !vk.set_lost(second),
        "second loss must not replace the first"
    );
    check_eq!(vk.report(), Some(&first), "kept report");
    for _ in 0..3 {
        check_eq!(vk.sticky(VK_SUCCESS), VK_ERROR_DEVICE_LOST, "sticky");
    }
    // Even a later successful job does not bring the device back.
    let other = cx.ctx(&c.dev, "later", Role::Innocent)?;
    let (cb, _) = clear_cb(&other, 64, 1)?;
    let ok = wait(&cx.submit(&other, &cb, &[], &[])?)?;
    check_eq!(
        vk.sticky(vulkan::vk_result_for(&ok)),
        VK_ERROR_DEVICE_LOST,
        "for ever"
    );
    cx.finish()
}

fn vk_innocent_lost_too(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(
        cx,
        "sim:policy=kill-inflight",
        Victim::Draw,
        Fault::UnmappedRead,
    )?;
    let o = wait(&c.vj)?;
    check_eq!(
        vulkan::vk_result_for(&o),
        VK_ERROR_DEVICE_LOST,
        "innocent but killed"
    );
    cx.finish()
}

fn vk_replayed_not_lost(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(cx, "sim:policy=replay", Victim::Draw, Fault::UnmappedRead)?;
    let vk = DeviceLostState::new();
    let o = wait(&c.vj)?;
    check_eq!(
        vk.sticky(vulkan::vk_result_for(&o)),
        VK_SUCCESS,
        "replayed: {o:?}"
    );
    check!(!vk.is_lost(), "device not lost");
    cx.finish()
}

fn vk_submit_errno(cx: &mut CaseCtx) -> CaseResult {
    check_eq!(
        vulkan::vk_result_for_submit_errno(0),
        VK_SUCCESS,
        "accepted"
    );
    check_eq!(
        vulkan::vk_result_for_submit_errno(libc::ENOMEM),
        vulkan::VK_ERROR_OUT_OF_DEVICE_MEMORY,
        "ENOMEM"
    );
    for e in [libc::ECANCELED, libc::ENODEV, libc::EIO] {
        check_eq!(
            vulkan::vk_result_for_submit_errno(e),
            VK_ERROR_DEVICE_LOST,
            "errno {e}"
        );
    }
    // And the real refusal of a banned queue.
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    wait(&culprit_job(cx, &c, Fault::UnmappedRead, 0)?)?;
    let (cb, _) = clear_cb(&c, 64, 0)?;
    let e = c
        .queue
        .submit(&cb, &[], &[])
        .err()
        .ok_or_else(|| CaseError::Fail("banned queue accepted work".into()))?;
    check_eq!(
        vulkan::vk_result_for_submit_errno(e.errno().raw_os_error()),
        VK_ERROR_DEVICE_LOST,
        "banned submit"
    );
    cx.finish()
}

fn fault_report_contents(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    let o = wait(&culprit_job(cx, &c, Fault::UnmappedWrite, 0)?)?;
    let r = FaultReport::from_outcome(&o, 7).ok_or_else(|| CaseError::Fail("no report".into()))?;
    check_eq!(r.guilt, Guilt::Guilty, "guilt");
    check_eq!(r.submission, 7, "submission");
    check_eq!(r.addresses.len(), 1, "one address");
    let a = r.addresses[0];
    check_eq!(
        (a.kind, a.address),
        (FaultAddressType::WriteInvalid, HOLE + 8),
        "address info"
    );
    check!(a.precision.is_power_of_two(), "precision {}", a.precision);
    let code = |c: u64| r.vendor.iter().find(|v| v.code == c).map(|v| v.data);
    check_eq!(
        code(vendor_code::GUILT),
        Some(vulkan::guilt_code(Guilt::Guilty)),
        "GUILT"
    );
    check_eq!(
        code(vendor_code::KIND),
        Some(vulkan::kind_code(FaultKind::Unmapped)),
        "KIND"
    );
    check!(code(vendor_code::UNIT).is_some(), "UNIT missing");
    check!(
        r.description.contains("guilty") && r.description.contains("write"),
        "description {:?}",
        r.description
    );
    let arr = r.description_array();
    check!(arr.contains(&0), "description array NUL-terminated");
    check!(
        FaultReport::from_outcome(&JobOutcome::Complete, 1).is_none(),
        "report for success"
    );
    cx.finish()
}

fn fault_report_innocent(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(cx, "sim:policy=replay", Victim::Blend, Fault::UnmappedRead)?;
    let o = wait(&c.vj)?;
    let r = FaultReport::from_outcome(&o, 3).ok_or_else(|| CaseError::Fail("no report".into()))?;
    check_eq!(r.guilt, Guilt::Innocent, "guilt");
    check!(r.description.contains("innocent"), "{:?}", r.description);
    // Another context's fault address is not this application's business: not reported.
    check!(
        r.addresses.is_empty(),
        "innocent report leaks an address: {r:?}"
    );
    check!(
        r.vendor
            .iter()
            .any(|v| v.code == vendor_code::GUILT && v.data == vulkan::guilt_code(Guilt::Innocent)),
        "GUILT vendor info: {r:?}"
    );
    cx.finish()
}

fn gl_reset_status_once(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(
        cx,
        "sim:policy=kill-inflight",
        Victim::Draw,
        Fault::UnmappedRead,
    )?;
    let innocent = ResetTracker::new();
    let guilty = ResetTracker::new();
    check_eq!(innocent.status(), ResetStatus::NoReset, "before");
    innocent.observe(ResetStatus::from_outcome(&wait(&c.vj)?));
    guilty.observe(ResetStatus::from_outcome(&wait(&c.cj)?));
    check_eq!(
        innocent.status(),
        ResetStatus::Innocent,
        "innocent, first query"
    );
    check_eq!(
        innocent.status(),
        ResetStatus::NoReset,
        "innocent, second query"
    );
    check_eq!(guilty.status(), ResetStatus::Guilty, "guilty, first query");
    check_eq!(
        guilty.status(),
        ResetStatus::NoReset,
        "guilty, second query"
    );
    check!(innocent.is_lost() && guilty.is_lost(), "contexts lost");
    cx.finish()
}

fn gl_innocent_status(cx: &mut CaseCtx) -> CaseResult {
    // Under replay the restartable victim is never reset; the culprit is.
    let c = collide(cx, "sim:policy=replay", Victim::Draw, Fault::ReadonlyWrite)?;
    let v = ResetTracker::new();
    let g = ResetTracker::new();
    v.observe(ResetStatus::from_outcome(&wait(&c.vj)?));
    g.observe(ResetStatus::from_outcome(&wait(&c.cj)?));
    check_eq!(v.status(), ResetStatus::NoReset, "replayed victim");
    check!(!v.is_lost(), "replayed victim not lost");
    check_eq!(g.status(), ResetStatus::Guilty, "culprit");
    cx.finish()
}

fn gl_reset_callback_once(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(
        cx,
        "sim:policy=kill-inflight",
        Victim::Blend,
        Fault::UnmappedRead,
    )?;
    let t = ResetTracker::new();
    let calls = Arc::new(AtomicU32::new(0));
    let k = calls.clone();
    t.set_callback(Some(Box::new(move |s| {
        if s == ResetStatus::Innocent {
            k.fetch_add(1, Ordering::SeqCst);
        } else {
            k.fetch_add(100, Ordering::SeqCst);
        }
    })));
    let o = wait(&c.vj)?;
    t.observe(ResetStatus::from_outcome(&o));
    t.observe(ResetStatus::from_outcome(&o));
    t.observe(ResetStatus::Guilty);
    check_eq!(calls.load(Ordering::SeqCst), 1, "callback calls");
    check_eq!(t.status(), ResetStatus::Innocent, "latched first");
    cx.finish()
}

fn gl_new_context_works(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(
        cx,
        "sim:policy=kill-inflight",
        Victim::Draw,
        Fault::UnmappedRead,
    )?;
    wait(&c.vj)?;
    wait(&c.cj)?;
    let fresh = cx.ctx(&c.dev, "fresh", Role::Innocent)?;
    let (cb, va) = clear_cb(&fresh, 256, 0x0606_0606)?;
    check_eq!(
        wait(&cx.submit(&fresh, &cb, &[], &[])?)?,
        JobOutcome::Complete,
        "fresh"
    );
    cx.expect_memory(&fresh, va, vec![6; 256]);
    let t = ResetTracker::new();
    check_eq!(t.status(), ResetStatus::NoReset, "new context starts clean");
    cx.finish()
}
