//! `agx.teardown.*`: destroying a queue, a VM or closing the file with work in flight signals
//! every pending fence with `-ECANCELED` (records `KILLED`), in bounded time.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

use agx_sim::stream::StreamBuilder;
use agx_winsys::{sync, FenceStatus, Guilt, JobOutcome, SyncObj, SyncPoint};

use super::*;
use crate::{check, check_eq};

pub fn cases() -> Vec<Case> {
    crate::cases![
        "agx.teardown.queue_destroy_inflight" => queue_destroy_inflight,
        "agx.teardown.vm_destroy_inflight" => vm_destroy_inflight,
        "agx.teardown.file_close_inflight" => file_close_inflight,
        "agx.teardown.queue_destroy_hung" => queue_destroy_hung,
        "agx.teardown.queue_destroy_after_completion" => queue_destroy_after_completion,
        "agx.teardown.other_file_untouched" => other_file_untouched,
        "agx.teardown.destroy_banned_queue" => destroy_banned_queue,
        "agx.teardown.gated_work_killed" => gated_work_killed,
    ]
}

fn killed_by_teardown(o: &JobOutcome) -> bool {
    matches!(
        o,
        JobOutcome::Killed {
            guilt: Guilt::Unknown,
            fault: None
        }
    )
}

/// Submits `n` jobs and exports each one's fence as a sync_file right away (a timeline point
/// queried after the fact may have been collected and read as a signalled stub).
fn held_jobs(cx: &CaseCtx, c: &Ctx, n: u32) -> Result<Vec<(Arc<Job>, OwnedFd)>, CaseError> {
    let mut v = Vec::new();
    for i in 0..n {
        let (cb, _) = clear_cb(c, 4096, i)?;
        let j = cx.submit(c, &cb, &[], &[])?;
        let fd = fence_fd(&j)?;
        v.push((j, fd));
    }
    Ok(v)
}

pub fn fence_fd(j: &Job) -> Result<OwnedFd, CaseError> {
    let (tl, p) = j.fence();
    Ok(tl.export_sync_file(Some(p))?)
}

fn all_cancelled(dev: &Device, jobs: &[(Arc<Job>, OwnedFd)]) -> CaseResult {
    for (i, (j, fd)) in jobs.iter().enumerate() {
        let o = wait(j)?;
        check!(killed_by_teardown(&o), "job {i}: {o:?}");
        check_eq!(
            sync::sync_file_status(dev, fd.as_fd())?,
            FenceStatus::Error(-libc::ECANCELED),
            "job {i} fence"
        );
    }
    Ok(())
}

fn queue_destroy_inflight(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let sim = dev.sim_control().expect("sim").clone();
    let c = cx.ctx(&dev, "torn", Role::Innocent)?;
    sim.hold();
    let jobs = held_jobs(cx, &c, 3)?;
    check_eq!(sim.pending_commands(), 3, "pending before");
    let t = Instant::now();
    drop(c); // QUEUE_DESTROY (then VM_DESTROY)
    check_eq!(
        sim.pending_commands(),
        0,
        "pending after destroy, clock still held"
    );
    all_cancelled(&dev, &jobs)?;
    check!(t.elapsed() < BOUND, "teardown took {:?}", t.elapsed());
    sim.release();
    cx.finish()
}

fn vm_destroy_inflight(cx: &mut CaseCtx) -> CaseResult {
    if cx.sim("sim").is_err() {
        return Err(CaseError::Skip("needs the simulated device".into()));
    }
    let sim = cx.simulators()[0].clone();
    let dev = sim.open_peer()?;
    let c = cx.ctx(&dev, "vm-torn", Role::Innocent)?;
    sim.hold();
    let jobs = held_jobs(cx, &c, 2)?;
    // VM_DESTROY while the queue on it still exists and has work queued.
    agx_winsys::ioctl::vm_destroy(dev.kernel(), c.vm.id())?;
    check_eq!(sim.pending_commands(), 0, "pending after VM_DESTROY");
    all_cancelled(&dev, &jobs)?;
    sim.release();
    // The queue lost its VM: it refuses work.
    let (cb, _) = clear_cb(&c, 64, 1)?;
    let e = c.queue.submit(&cb, &[], &[]).err();
    check!(e.is_some(), "submit on a queue whose VM is gone succeeded");
    drop(c); // the winsys's own VM_DESTROY then fails harmlessly
    cx.finish()
}

fn file_close_inflight(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let sim = dev.sim_control().expect("sim").clone();
    let d2 = cx.file(&dev)?;
    let c2 = cx.ctx(&d2, "closed", Role::Innocent)?;
    sim.hold();
    let mut fds = Vec::new();
    for i in 0..3 {
        let (cb, _) = clear_cb(&c2, 4096, i)?;
        // Not tracked: a job keeps its file open, and this case closes the file.
        let j = c2.queue.submit(&cb, &[], &[])?;
        let (tl, p) = j.fence();
        fds.push(tl.export_sync_file(Some(p))?);
    }
    let t = Instant::now();
    drop(c2);
    drop(d2); // close(): the last reference to the file
    check_eq!(sim.pending_commands(), 0, "pending after close, clock held");
    for (i, fd) in fds.iter().enumerate() {
        check_eq!(
            sync::sync_file_status(&dev, fd.as_fd())?,
            FenceStatus::Error(-libc::ECANCELED),
            "job {i} fence via sync_file"
        );
    }
    check!(t.elapsed() < BOUND, "close took {:?}", t.elapsed());
    sim.release();
    cx.finish()
}

fn queue_destroy_hung(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim:hang-timeout-ms=1000")?;
    let sim = dev.sim_control().expect("sim").clone();
    // An accepted hang (the clock is held, so the watchdog never fires): the queue goes, the
    // job is killed, not timed out.
    let c2 = cx.ctx(&dev, "hung2", Role::Culprit)?;
    sim.hold();
    let mut s = StreamBuilder::new();
    s.hang();
    let j2 = cx.submit(&c2, &render_stream(&c2, &mut s)?, &[], &[])?;
    drop(c2);
    check!(killed_by_teardown(&wait(&j2)?), "destroyed while hung");
    sim.release();
    cx.finish()
}

fn queue_destroy_after_completion(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "done", Role::Innocent)?;
    let jobs = held_jobs(cx, &c, 3)?;
    for (j, _) in &jobs {
        check_eq!(wait(j)?, JobOutcome::Complete, "before destroy");
    }
    drop(c);
    for (j, _) in &jobs {
        check_eq!(
            j.wait(Deadline::NOW)?,
            JobOutcome::Complete,
            "outcome stays after destroy"
        );
    }
    cx.finish()
}

fn other_file_untouched(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let sim = dev.sim_control().expect("sim").clone();
    let keep = cx.ctx(&dev, "kept", Role::Innocent)?;
    let d2 = cx.file(&dev)?;
    let gone = cx.ctx(&d2, "closed", Role::Innocent)?;
    sim.hold();
    let (cb, va) = clear_cb(&keep, 8192, 0x0505_0505)?;
    let kj = cx.submit(&keep, &cb, &[], &[])?;
    let (cb2, _) = clear_cb(&gone, 8192, 0x0606_0606)?;
    let gj = gone.queue.submit(&cb2, &[], &[])?;
    let (tl, p) = gj.fence();
    let fd = tl.export_sync_file(Some(p))?;
    drop(gj);
    drop(gone);
    drop(d2);
    sim.release();
    check_eq!(wait(&kj)?, JobOutcome::Complete, "other file's job");
    check_eq!(
        sync::sync_file_status(&dev, fd.as_fd())?,
        FenceStatus::Error(-libc::ECANCELED),
        "closed file's job"
    );
    check_eq!(keep.queue.state()?.reset_count, 0, "no recovery");
    cx.expect_memory(&keep, va, vec![5; 8192]);
    cx.finish()
}

fn destroy_banned_queue(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    wait(&culprit_job(cx, &c, Fault::UnmappedRead, 0)?)?;
    drop(c);
    let n = cx.ctx(&dev, "new", Role::Innocent)?;
    let (cb, va) = clear_cb(&n, 64, 0x0202_0202)?;
    check_eq!(
        wait(&cx.submit(&n, &cb, &[], &[])?)?,
        JobOutcome::Complete,
        "new context"
    );
    cx.expect_memory(&n, va, vec![2; 64]);
    cx.finish()
}

fn gated_work_killed(cx: &mut CaseCtx) -> CaseResult {
    // Work gated on a fence of another (held) queue is killed by its own queue's teardown.
    let dev = cx.sim("sim")?;
    let sim = dev.sim_control().expect("sim").clone();
    let gate_ctx = cx.ctx(&dev, "gate", Role::Innocent)?;
    let gated = cx.ctx(&dev, "gated", Role::Innocent)?;
    let gate = SyncObj::new(&dev, false)?;
    sim.hold();
    let (cb, _) = clear_cb(&gate_ctx, 64, 1)?;
    let gj = cx.submit(&gate_ctx, &cb, &[], &[SyncPoint::binary(&gate)])?;
    let jobs = held_jobs(cx, &gated, 1)?;
    let (cb, _) = clear_cb(&gated, 64, 2)?;
    let waiting = cx.submit(&gated, &cb, &[SyncPoint::binary(&gate)], &[])?;
    drop(gated);
    all_cancelled(&dev, &jobs)?;
    check!(killed_by_teardown(&wait(&waiting)?), "gated job");
    sim.release();
    check_eq!(wait(&gj)?, JobOutcome::Complete, "gate job");
    cx.finish()
}
