//! `agx.innocent.*`: work of other contexts in flight during a recovery (`replay` policy):
//! restartable work is replayed invisibly, the rest is killed and its queue banned innocent,
//! idle queues go on untouched.

use agx_sim::stream::StreamBuilder;
use agx_winsys::{FenceStatus, Guilt, JobOutcome, ResetStatus};

use super::*;
use crate::{check, check_eq};

pub fn cases() -> Vec<Case> {
    crate::cases![
        "agx.innocent.restartable_replayed" => restartable_replayed,
        "agx.innocent.nonrestartable_killed" => nonrestartable_killed,
        "agx.innocent.idle_queue_untouched" => idle_queue_untouched,
        "agx.innocent.replay_limit" => replay_limit,
        "agx.innocent.compute_copy_replayed" => compute_copy_replayed,
        "agx.innocent.accumulate_killed" => accumulate_killed,
        "agx.innocent.banned_queue_cancels_later" => banned_queue_cancels_later,
        "agx.innocent.victim_of_hang_replayed" => victim_of_hang_replayed,
        "agx.innocent.victim_of_injection_replayed" => victim_of_injection_replayed,
        "agx.innocent.same_file_other_vm" => same_file_other_vm,
        "agx.innocent.reset_counts" => reset_counts,
        "agx.innocent.replayed_is_success_everywhere" => replayed_is_success_everywhere,
    ]
}

fn culprit_guilty(c: &Collision, f: Fault) -> CaseResult {
    let o = wait(&c.cj)?;
    check!(
        is_guilty_of(&o, f),
        "culprit: expected guilty {f:?}, got {o:?}"
    );
    Ok(())
}

fn restartable_replayed(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(cx, "sim:policy=replay", Victim::Draw, Fault::UnmappedRead)?;
    culprit_guilty(&c, Fault::UnmappedRead)?;
    check_eq!(wait(&c.vj)?, JobOutcome::Replayed(1), "victim");
    let st = c.victim.queue.state()?;
    check!(
        !st.banned && st.guilt.is_none() && st.reset_count == 1,
        "{st:?}"
    );
    check!(
        trace_has(&cx.simulators()[0], "replay"),
        "no replay in the trace"
    );
    cx.finish()
}

fn nonrestartable_killed(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(cx, "sim:policy=replay", Victim::Blend, Fault::UnmappedRead)?;
    culprit_guilty(&c, Fault::UnmappedRead)?;
    let o = wait(&c.vj)?;
    check!(
        matches!(o, JobOutcome::Killed { guilt: Guilt::Innocent, fault: Some(f) } if f.address == Some(HOLE)),
        "victim: {o:?}"
    );
    let (tl, p) = c.vj.fence();
    check_eq!(
        tl.status(Some(p))?,
        FenceStatus::Error(-libc::ECANCELED),
        "victim fence"
    );
    let st = c.victim.queue.state()?;
    check!(st.banned && st.guilt == Some(Guilt::Innocent), "{st:?}");
    let (cb, _) = clear_cb(&c.victim, 64, 0)?;
    let e = c.victim.queue.submit(&cb, &[], &[]).err();
    check!(
        e.as_ref().and_then(JobOutcome::from_submit_error) == Some(JobOutcome::Cancelled),
        "submit on the innocent-banned queue: {e:?}"
    );
    cx.finish()
}

fn idle_queue_untouched(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(cx, "sim:policy=replay", Victim::Blend, Fault::UnmappedWrite)?;
    // Made before the fault is waited on, with nothing in flight during the recovery.
    let idle = cx.ctx(&c.dev, "idle", Role::Innocent)?;
    let (cb, va) = clear_cb(&idle, 512, 0x0909_0909)?;
    culprit_guilty(&c, Fault::UnmappedWrite)?;
    wait(&c.vj)?;
    let st = idle.queue.state()?;
    check!(
        !st.banned && st.reset_count == 0 && st.guilt.is_none(),
        "{st:?}"
    );
    check_eq!(
        wait(&cx.submit(&idle, &cb, &[], &[])?)?,
        JobOutcome::Complete,
        "idle job"
    );
    cx.expect_memory(&idle, va, vec![9; 512]);
    cx.finish()
}

fn replay_limit(cx: &mut CaseCtx) -> CaseResult {
    // Limit 1: the first recovery replays the victim, the second (while the replay runs)
    // finds the limit reached and kills it.
    let dev = cx.sim("sim:policy=replay,replay-limit=1")?;
    let sim = dev.sim_control().expect("sim").clone();
    let victim = cx.ctx_sized(&dev, "victim", Role::Innocent, 8 << 20)?;
    let c1 = cx.ctx(&cx.file(&dev)?, "culprit1", Role::Culprit)?;
    let c2 = cx.ctx(&cx.file(&dev)?, "culprit2", Role::Culprit)?;
    let len = COLLIDE_LEN;
    let (dst, src) = (victim.alloc(len)?, victim.alloc(len)?);
    victim.write(src, &vec![0x40; len as usize])?;
    let mut cb = victim.command_buffer();
    cb.render(victim.draw_pass(dst, src, len)?)?;
    sim.hold();
    let vj = cx.submit(&victim, &cb, &[], &[])?;
    let j1 = culprit_job(cx, &c1, Fault::UnmappedRead, 10_000)?;
    // Runs alongside: replayed by the first recovery too (restartable), faults 30 µs after.
    let j2 = culprit_job(cx, &c2, Fault::UnmappedWrite, 30_000)?;
    sim.release();
    check!(is_guilty_of(&wait(&j1)?, Fault::UnmappedRead), "culprit1");
    check!(is_guilty_of(&wait(&j2)?, Fault::UnmappedWrite), "culprit2");
    let o = wait(&vj)?;
    check!(
        matches!(
            o,
            JobOutcome::Killed {
                guilt: Guilt::Innocent,
                ..
            }
        ),
        "victim after the limit: {o:?}"
    );
    check!(sim.stats().recoveries == 2, "recoveries {:?}", sim.stats());
    check!(sim.stats().replays >= 1, "no replay before the limit");
    let st = victim.queue.state()?;
    check!(st.banned && st.reset_count == 2, "{st:?}");
    cx.finish()
}

fn compute_copy_replayed(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(cx, "sim:policy=replay", Victim::Copy, Fault::ReadonlyWrite)?;
    culprit_guilty(&c, Fault::ReadonlyWrite)?;
    check_eq!(wait(&c.vj)?, JobOutcome::Replayed(1), "victim");
    cx.finish()
}

fn accumulate_killed(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(
        cx,
        "sim:policy=replay",
        Victim::Accumulate,
        Fault::UnmappedRead,
    )?;
    culprit_guilty(&c, Fault::UnmappedRead)?;
    let o = wait(&c.vj)?;
    check!(
        matches!(
            o,
            JobOutcome::Killed {
                guilt: Guilt::Innocent,
                ..
            }
        ),
        "victim {o:?}"
    );
    // Killed half-way: the memory is neither before nor after (which is why it is told).
    let got = c.victim.read(c.dst, COLLIDE_LEN as usize)?;
    check!(
        got.contains(&0x50) && got.contains(&0x10),
        "expected partial accumulation"
    );
    cx.finish()
}

fn banned_queue_cancels_later(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim:policy=replay")?;
    let sim = dev.sim_control().expect("sim").clone();
    let victim = cx.ctx_sized(&dev, "victim", Role::Innocent, 8 << 20)?;
    let culprit = cx.ctx(&cx.file(&dev)?, "culprit", Role::Culprit)?;
    let len = COLLIDE_LEN;
    let (dst, src) = (victim.alloc(len)?, victim.alloc(len)?);
    let mut cb = victim.command_buffer();
    cb.render(victim.blend_pass(dst, src, len)?)?;
    sim.hold();
    let vj = cx.submit(&victim, &cb, &[], &[])?;
    let mut later = Vec::new();
    for i in 0..3 {
        let (cb, _) = clear_cb(&victim, 64, i)?;
        later.push(cx.submit(&victim, &cb, &[], &[])?);
    }
    let cj = culprit_job(cx, &culprit, Fault::UnmappedRead, 5_000)?;
    sim.release();
    wait(&cj)?;
    check!(
        matches!(
            wait(&vj)?,
            JobOutcome::Killed {
                guilt: Guilt::Innocent,
                ..
            }
        ),
        "victim"
    );
    for (i, l) in later.iter().enumerate() {
        check_eq!(wait(l)?, JobOutcome::Cancelled, "later job {i}");
    }
    cx.finish()
}

fn victim_of_hang_replayed(cx: &mut CaseCtx) -> CaseResult {
    // The watchdog fires at 1 ms of the hang. The victim starts at 0.95 ms (gated on another
    // context's 0.95 ms job) and runs 0.2 ms, so it is in flight when the hang is ended.
    let dev = cx.sim("sim:policy=replay,hang-timeout-ms=1")?;
    let sim = dev.sim_control().expect("sim").clone();
    let gate_ctx = cx.ctx(&dev, "gate", Role::Innocent)?;
    let victim = cx.ctx(&dev, "victim", Role::Innocent)?;
    let culprit = cx.ctx(&cx.file(&dev)?, "culprit", Role::Culprit)?;
    let gate = agx_winsys::SyncObj::new(&dev, false)?;
    let (dst, src) = (victim.alloc(4096)?, victim.alloc(4096)?);
    victim.write(src, &[0x33; 4096])?;
    let mut s = StreamBuilder::new();
    s.spin(200_000).fill(dst, 4096, 0).copy(dst, src, 4096);
    use agx_winsys::analysis::{
        ColorAttachment, LoadOp, Region, RenderPass, ShaderAccessKind, StoreOp,
    };
    let access = RenderPass::new()
        .color(ColorAttachment::new(
            Region::va(dst, 4096),
            LoadOp::Clear,
            StoreOp::Store,
        ))
        .shader_access(ShaderAccessKind::Read, Region::va(src, 4096));
    let mut cb = victim.command_buffer();
    cb.render(victim.render(&mut s, access, &[(dst, 4096)])?)?;
    sim.hold();
    let gj = cx.submit(
        &gate_ctx,
        &compute_stream(&gate_ctx, StreamBuilder::new().spin(950_000))?,
        &[],
        &[agx_winsys::SyncPoint::binary(&gate)],
    )?;
    let vj = cx.submit(&victim, &cb, &[agx_winsys::SyncPoint::binary(&gate)], &[])?;
    let cj = culprit_job(cx, &culprit, Fault::Hang, 0)?;
    sim.release();
    check_eq!(wait(&gj)?, JobOutcome::Complete, "gate");
    check_eq!(wait(&cj)?, JobOutcome::TimedOut, "culprit");
    check_eq!(wait(&vj)?, JobOutcome::Replayed(1), "victim");
    cx.expect_memory(&victim, dst, vec![0x33; 4096]);
    cx.finish()
}

fn victim_of_injection_replayed(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(cx, "sim:policy=replay", Victim::Draw, Fault::Injected)?;
    culprit_guilty(&c, Fault::Injected)?;
    check_eq!(wait(&c.vj)?, JobOutcome::Replayed(1), "victim");
    cx.finish()
}

fn same_file_other_vm(cx: &mut CaseCtx) -> CaseResult {
    // Guilt is per queue, not per file: a second VM and queue of the culprit's own file that
    // had restartable work in flight is an innocent victim like any other.
    let dev = cx.sim("sim:policy=replay")?;
    let sim = dev.sim_control().expect("sim").clone();
    let victim = cx.ctx_sized(&dev, "victim", Role::Innocent, 8 << 20)?;
    let culprit = cx.ctx(&dev, "culprit", Role::Culprit)?;
    let len = COLLIDE_LEN;
    let (dst, src) = (victim.alloc(len)?, victim.alloc(len)?);
    victim.write(src, &vec![0x21; len as usize])?;
    let mut cb = victim.command_buffer();
    cb.render(victim.draw_pass(dst, src, len)?)?;
    sim.hold();
    let vj = cx.submit(&victim, &cb, &[], &[])?;
    let cj = culprit_job(cx, &culprit, Fault::UnmappedRead, 40_000)?;
    sim.release();
    check!(is_guilty_of(&wait(&cj)?, Fault::UnmappedRead), "culprit");
    check_eq!(wait(&vj)?, JobOutcome::Replayed(1), "victim");
    cx.expect_memory(&victim, dst, vec![0x21; len as usize]);
    cx.finish()
}

fn reset_counts(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(cx, "sim:policy=replay", Victim::Draw, Fault::UnmappedRead)?;
    let idle = cx.ctx(&c.dev, "idle", Role::Innocent)?;
    wait(&c.vj)?;
    wait(&c.cj)?;
    check_eq!(c.victim.queue.state()?.reset_count, 1, "victim resets");
    check_eq!(c.culprit.queue.state()?.reset_count, 1, "culprit resets");
    check_eq!(idle.queue.state()?.reset_count, 0, "idle resets");
    let s = cx.simulators()[0].stats();
    check!(
        s.recoveries == 1 && s.replays == 1 && s.recovery_ns > 0,
        "stats {s:?}"
    );
    cx.finish()
}

fn replayed_is_success_everywhere(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(cx, "sim:policy=replay", Victim::Copy, Fault::UnmappedWrite)?;
    let o = wait(&c.vj)?;
    check!(matches!(o, JobOutcome::Replayed(_)), "{o:?}");
    check!(o.succeeded() && o.guilt().is_none(), "replayed = success");
    check_eq!(ResetStatus::from_outcome(&o), ResetStatus::NoReset, "GL");
    check_eq!(
        agx_winsys::vulkan::vk_result_for(&o),
        agx_winsys::vulkan::VK_SUCCESS,
        "Vulkan"
    );
    let (tl, p) = c.vj.fence();
    check_eq!(
        tl.status(Some(p))?,
        FenceStatus::Signaled,
        "fence, no error"
    );
    cx.finish()
}
