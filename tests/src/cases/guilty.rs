//! `agx.guilty.*`: the context whose work faults or hangs is told guilty, with the fault's
//! kind, unit, access and address; its queue is banned and refuses work with `ECANCELED`.

use agx_sim::stream::{RawOp, StreamBuilder};
use agx_winsys::sim::Injection;
use agx_winsys::{FaultKind, FaultUnit, FenceStatus, Guilt, JobOutcome};

use super::*;
use crate::{check, check_eq};

pub fn cases() -> Vec<Case> {
    crate::cases![
        "agx.guilty.unmapped_read" => unmapped_read,
        "agx.guilty.unmapped_write" => unmapped_write,
        "agx.guilty.readonly_write" => readonly_write,
        "agx.guilty.hang_timeout" => hang_timeout,
        "agx.guilty.injected_fault" => injected_fault,
        "agx.guilty.injected_hang" => injected_hang,
        "agx.guilty.unmapped_stream_fetch" => unmapped_stream_fetch,
        "agx.guilty.invalid_stream" => invalid_stream,
        "agx.guilty.compute_fault_unit" => compute_fault_unit,
        "agx.guilty.queued_work_cancelled" => queued_work_cancelled,
        "agx.guilty.queue_state_reports_fault" => queue_state_reports_fault,
        "agx.guilty.soft_faults_read_zero" => soft_faults_read_zero,
        "agx.guilty.partial_writes_stay" => partial_writes_stay,
        "agx.guilty.other_context_unaffected" => other_context_unaffected,
    ]
}

/// The common checks of a guilty fault: outcome, fence error, queue state and ban.
fn guilty(cx: &mut CaseCtx, f: Fault) -> Result<JobOutcome, CaseError> {
    let dev = cx.sim("sim:hang-timeout-ms=1")?;
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    let j = culprit_job(cx, &c, f, 0)?;
    let o = wait(&j)?;
    check!(is_guilty_of(&o, f), "expected a guilty {f:?}, got {o:?}");
    let (tl, p) = j.fence();
    let want = if f == Fault::Hang {
        -libc::ETIMEDOUT
    } else {
        -libc::EIO
    };
    check_eq!(tl.status(Some(p))?, FenceStatus::Error(want), "fence error");
    let st = c.queue.state()?;
    check!(
        st.banned && st.guilt == Some(Guilt::Guilty),
        "queue state {st:?}"
    );
    let (cb, _) = clear_cb(&c, 64, 1)?;
    let e = c.queue.submit(&cb, &[], &[]).err();
    check!(
        e.as_ref().and_then(JobOutcome::from_submit_error) == Some(JobOutcome::Cancelled),
        "submit to the banned queue: {e:?}"
    );
    Ok(o)
}

fn access(o: &JobOutcome) -> Option<(FaultKind, bool, Option<u64>, FaultUnit)> {
    o.fault().map(|f| (f.kind, f.write, f.address, f.unit))
}

fn unmapped_read(cx: &mut CaseCtx) -> CaseResult {
    let o = guilty(cx, Fault::UnmappedRead)?;
    check_eq!(
        access(&o),
        Some((FaultKind::Unmapped, false, Some(HOLE), FaultUnit::Fragment)),
        "fault"
    );
    cx.finish()
}

fn unmapped_write(cx: &mut CaseCtx) -> CaseResult {
    let o = guilty(cx, Fault::UnmappedWrite)?;
    check_eq!(
        access(&o),
        Some((
            FaultKind::Unmapped,
            true,
            Some(HOLE + 8),
            FaultUnit::Fragment
        )),
        "fault"
    );
    cx.finish()
}

fn readonly_write(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    let j = culprit_job(cx, &c, Fault::ReadonlyWrite, 0)?;
    let o = wait(&j)?;
    check_eq!(
        access(&o),
        Some((
            FaultKind::Permission,
            true,
            Some(c.code.va),
            FaultUnit::Fragment
        )),
        "fault"
    );
    check_eq!(o.guilt(), Some(Guilt::Guilty), "guilt");
    let st = c.queue.state()?;
    check!(st.banned && st.guilt == Some(Guilt::Guilty), "{st:?}");
    check_eq!(
        st.fault.map(|f| f.kind),
        Some(FaultKind::Permission),
        "ban fault"
    );
    cx.finish()
}

fn hang_timeout(cx: &mut CaseCtx) -> CaseResult {
    let o = guilty(cx, Fault::Hang)?;
    check_eq!(o, JobOutcome::TimedOut, "outcome");
    let sim = cx.simulators()[0].clone();
    check!(sim.now_ns() >= 1_000_000, "watchdog fired before 1 ms");
    check!(sim.stats().timeouts == 1, "stats {:?}", sim.stats());
    cx.finish()
}

fn injected_fault(cx: &mut CaseCtx) -> CaseResult {
    let o = guilty(cx, Fault::Injected)?;
    check_eq!(o.fault().map(|f| f.kind), Some(FaultKind::Injected), "kind");
    cx.finish()
}

fn injected_hang(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim:hang-timeout-ms=1")?;
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    c.queue.inject(Injection::Hang { after_ns: 5_000 })?;
    let va = c.alloc(4096)?;
    let cb = render_stream(&c, StreamBuilder::new().spin(20_000).fill(va, 4096, 7))?;
    let j = cx.submit(&c, &cb, &[], &[])?;
    check_eq!(wait(&j)?, JobOutcome::TimedOut, "outcome");
    // The injection is consumed: a fresh queue on the same VM works.
    let d = cx.ctx(&dev, "after", Role::Innocent)?;
    let (cb, va) = clear_cb(&d, 64, 0x0101_0101)?;
    check_eq!(
        wait(&cx.submit(&d, &cb, &[], &[])?)?,
        JobOutcome::Complete,
        "next context"
    );
    cx.expect_memory(&d, va, vec![1; 64]);
    cx.finish()
}

fn unmapped_stream_fetch(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    let mut d = c.render(
        StreamBuilder::new().store(c.alloc(8)?, 1),
        Default::default(),
        &[],
    )?;
    d.vdm_ctrl_stream_base = HOLE;
    let mut cb = c.command_buffer();
    cb.render(d)?;
    let o = wait(&cx.submit(&c, &cb, &[], &[])?)?;
    check_eq!(
        access(&o),
        Some((FaultKind::Unmapped, false, Some(HOLE), FaultUnit::Vdm)),
        "stream fetch fault"
    );
    check_eq!(o.guilt(), Some(Guilt::Guilty), "guilt");
    cx.finish()
}

fn invalid_stream(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    let mut s = StreamBuilder::new();
    s.raw(RawOp {
        op: 0x77,
        ..RawOp::default()
    });
    let cb = compute_stream(&c, &mut s)?;
    let o = wait(&cx.submit(&c, &cb, &[], &[])?)?;
    check_eq!(
        o.fault().map(|f| (f.kind, f.unit)),
        Some((FaultKind::InvalidStream, FaultUnit::Cdm)),
        "fault"
    );
    check_eq!(o.guilt(), Some(Guilt::Guilty), "guilt");
    cx.finish()
}

fn compute_fault_unit(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    let cb = compute_stream(&c, StreamBuilder::new().store(HOLE, 5))?;
    let o = wait(&cx.submit(&c, &cb, &[], &[])?)?;
    check_eq!(
        access(&o),
        Some((FaultKind::Unmapped, true, Some(HOLE), FaultUnit::Compute)),
        "fault"
    );
    cx.finish()
}

fn queued_work_cancelled(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let sim = dev.sim_control().expect("sim").clone();
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    sim.hold();
    let j = culprit_job(cx, &c, Fault::UnmappedRead, 1000)?;
    let mut later = Vec::new();
    for i in 0..3 {
        let (cb, _) = clear_cb(&c, 256, i)?;
        let l = cx.submit(&c, &cb, &[], &[])?;
        let fd = super::teardown::fence_fd(&l)?;
        later.push((l, fd));
    }
    sim.release();
    check!(is_guilty_of(&wait(&j)?, Fault::UnmappedRead), "culprit");
    for (i, (l, fd)) in later.iter().enumerate() {
        check_eq!(wait(l)?, JobOutcome::Cancelled, "queued job {i}");
        check_eq!(
            agx_winsys::sync::sync_file_status(&dev, std::os::fd::AsFd::as_fd(fd))?,
            FenceStatus::Error(-libc::ECANCELED),
            "queued job {i} fence"
        );
    }
    check_eq!(sim.stats().cancelled, 3, "cancelled count");
    cx.finish()
}

fn queue_state_reports_fault(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    let st = c.queue.state()?;
    check!(
        !st.banned && st.guilt.is_none() && st.reset_count == 0,
        "fresh queue {st:?}"
    );
    for i in 0..2 {
        let (cb, _) = clear_cb(&c, 64, i)?;
        check_eq!(
            wait(&cx.submit(&c, &cb, &[], &[])?)?,
            JobOutcome::Complete,
            "job {i}"
        );
    }
    let j = culprit_job(cx, &c, Fault::UnmappedWrite, 0)?;
    wait(&j)?;
    let st = c.queue.state()?;
    check!(st.banned && st.guilt == Some(Guilt::Guilty), "{st:?}");
    check_eq!(st.ban_seqno, 3, "ban seqno (third command of the queue)");
    check_eq!(st.reset_count, 1, "reset count");
    let f = st
        .fault
        .ok_or_else(|| CaseError::Fail("no fault in state".into()))?;
    check_eq!(
        (f.kind, f.write, f.address),
        (FaultKind::Unmapped, true, Some(HOLE + 8)),
        "state fault"
    );
    cx.finish()
}

fn soft_faults_read_zero(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim:soft-faults")?;
    check!(
        dev.params().soft_faults,
        "soft faults not reported in params"
    );
    let c = cx.ctx(&dev, "soft", Role::Innocent)?;
    let dst = c.alloc(64)?;
    c.write(dst, &[0xaa; 64])?;
    let mut s = StreamBuilder::new();
    s.copy(dst, HOLE, 64).store(HOLE + 64, 1);
    let o = wait(&cx.submit(&c, &render_stream(&c, &mut s)?, &[], &[])?)?;
    check_eq!(o, JobOutcome::Complete, "soft faults: no fault");
    cx.expect_memory(&c, dst, vec![0; 64]);
    // Permission faults still fault.
    let w = cx.ctx(&dev, "culprit", Role::Culprit)?;
    let o = wait(&culprit_job(cx, &w, Fault::ReadonlyWrite, 0)?)?;
    check!(is_guilty_of(&o, Fault::ReadonlyWrite), "{o:?}");
    cx.finish()
}

fn partial_writes_stay(cx: &mut CaseCtx) -> CaseResult {
    // A guilty command's writes before its fault stay in memory (the hardware does not undo).
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    let a = c.alloc(64)?;
    let mut s = StreamBuilder::new();
    s.fill(a, 64, 0x1111_1111)
        .load(HOLE, 8)
        .fill(a, 64, 0x2222_2222);
    let o = wait(&cx.submit(&c, &render_stream(&c, &mut s)?, &[], &[])?)?;
    check!(is_guilty_of(&o, Fault::UnmappedRead), "{o:?}");
    check_eq!(c.read(a, 64)?, vec![0x11; 64], "writes before the fault");
    cx.finish()
}

fn other_context_unaffected(cx: &mut CaseCtx) -> CaseResult {
    // An idle context on another file: untouched by the fault, and works after it.
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    let other = cx.ctx(&cx.file(&dev)?, "other", Role::Innocent)?;
    let (cb, va) = clear_cb(&other, 1024, 0x0303_0303)?;
    check_eq!(
        wait(&cx.submit(&other, &cb, &[], &[])?)?,
        JobOutcome::Complete,
        "before"
    );
    wait(&culprit_job(cx, &c, Fault::ReadonlyWrite, 0)?)?;
    let st = other.queue.state()?;
    check!(!st.banned && st.reset_count == 0, "{st:?}");
    let (cb, vb) = clear_cb(&other, 1024, 0x0404_0404)?;
    check_eq!(
        wait(&cx.submit(&other, &cb, &[], &[])?)?,
        JobOutcome::Complete,
        "after"
    );
    cx.expect_memory(&other, va, vec![3; 1024]);
    cx.expect_memory(&other, vb, vec![4; 1024]);
    cx.finish()
}
