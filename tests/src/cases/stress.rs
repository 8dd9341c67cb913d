//! `agx.stress.*`: many queues and contexts; faults while submitting and destroying from
//! several threads. The invariants are what matter here: every job ends, in bounded time,
//! nothing stays pending, no innocent context is told guilty.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agx_sim::stream::StreamBuilder;
use agx_winsys::{Guilt, JobOutcome};

use super::*;
use crate::{check, check_eq};

pub fn cases() -> Vec<Case> {
    crate::cases![
        "agx.stress.many_queues" => many_queues,
        "agx.stress.many_files" => many_files,
        "agx.stress.threads_submit_and_fault" => threads_submit_and_fault,
        "agx.stress.threads_destroy_while_submitting" => threads_destroy_while_submitting,
        "agx.stress.repeated_recoveries" => repeated_recoveries,
        "agx.stress.result_ring_wrap" => result_ring_wrap,
        "agx.stress.simultaneous_culprits" => simultaneous_culprits,
    ]
}

/// A restartable draw of `len` bytes behind a spin, so it is in flight for `spin_ns`.
fn slow_draw(
    c: &Ctx,
    len: u64,
    spin_ns: u64,
    fill: u8,
) -> Result<(agx_winsys::cmd::CommandBuffer, u64), CaseError> {
    use agx_winsys::analysis::{
        ColorAttachment, LoadOp, Region, RenderPass, ShaderAccessKind, StoreOp,
    };
    let (dst, src) = (c.alloc(len)?, c.alloc(len)?);
    c.write(src, &vec![fill; len as usize])?;
    let access = RenderPass::new()
        .color(ColorAttachment::new(
            Region::va(dst, len),
            LoadOp::Clear,
            StoreOp::Store,
        ))
        .shader_access(ShaderAccessKind::Read, Region::va(src, len));
    let mut s = StreamBuilder::new();
    s.spin(spin_ns).fill(dst, len, 0).copy(dst, src, len);
    let mut cb = c.command_buffer();
    cb.render(c.render(&mut s, access, &[(dst, len)])?)?;
    Ok((cb, dst))
}

fn many_queues(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim:policy=replay")?;
    let sim = dev.sim_control().expect("sim").clone();
    let mut ctxs = Vec::new();
    for f in 0..4 {
        let file = cx.file(&dev)?;
        for q in 0..6 {
            ctxs.push(cx.ctx_sized(&file, &format!("f{f}q{q}"), Role::Innocent, 64 << 10)?);
        }
    }
    let culprit = cx.ctx(&dev, "culprit", Role::Culprit)?;
    sim.hold();
    let mut jobs = Vec::new();
    for (i, c) in ctxs.iter().enumerate() {
        for k in 0..3 {
            let (cb, dst) = slow_draw(c, 4096, 15_000 + 1_000 * (i as u64 % 7), (i * 3 + k) as u8)?;
            jobs.push(cx.submit(c, &cb, &[], &[])?);
            cx.expect_memory(c, dst, vec![(i * 3 + k) as u8; 4096]);
        }
    }
    let cj = culprit_job(cx, &culprit, Fault::UnmappedRead, 2_000)?;
    sim.release();
    check!(is_guilty_of(&wait(&cj)?, Fault::UnmappedRead), "culprit");
    let mut replayed = 0;
    for j in &jobs {
        let o = wait(j)?;
        check!(
            o.succeeded(),
            "restartable innocent work under replay: {o:?}"
        );
        replayed += matches!(o, JobOutcome::Replayed(_)) as u32;
    }
    check!(
        replayed >= 24,
        "every context had a job in flight: {replayed} replayed"
    );
    cx.finish()
}

fn many_files(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim:policy=kill-inflight")?;
    let sim = dev.sim_control().expect("sim").clone();
    let mut ctxs = Vec::new();
    for f in 0..16 {
        ctxs.push(cx.ctx_sized(
            &cx.file(&dev)?,
            &format!("file{f}"),
            Role::Innocent,
            64 << 10,
        )?);
    }
    let culprit = cx.ctx(&cx.file(&dev)?, "culprit", Role::Culprit)?;
    sim.hold();
    let mut jobs = Vec::new();
    for c in &ctxs {
        let (cb, _) = slow_draw(c, 4096, 20_000, 1)?;
        jobs.push(cx.submit(c, &cb, &[], &[])?);
        let (cb, _) = clear_cb(c, 64, 2)?;
        jobs.push(cx.submit(c, &cb, &[], &[])?);
    }
    let cj = culprit_job(cx, &culprit, Fault::Injected, 3_000)?;
    sim.release();
    check!(is_guilty_of(&wait(&cj)?, Fault::Injected), "culprit");
    for pair in jobs.chunks(2) {
        check!(
            matches!(
                wait(&pair[0])?,
                JobOutcome::Killed {
                    guilt: Guilt::Innocent,
                    ..
                }
            ),
            "in flight under kill-inflight"
        );
        check_eq!(
            wait(&pair[1])?,
            JobOutcome::Cancelled,
            "queued behind the kill"
        );
    }
    cx.finish()
}

/// Four threads submit at once, round after round, on one GPU (the clock is held while they
/// submit, so their work is in flight together); every fifth round one of them, the culprit,
/// submits a job that faults 0.5 us in while the three others' jobs are running. No submit may
/// be refused (innocent queues are never banned; the culprit makes a new context after each
/// fault); every culprit job is guilty of its fault; every innocent job hit by a fault is
/// replayed (it is restartable) and its memory is right; all other jobs complete.
fn threads_submit_and_fault(cx: &mut CaseCtx) -> CaseResult {
    const THREADS: usize = 4;
    const ROUNDS: u32 = 40;
    const FAULTS: [Fault; 4] = [
        Fault::UnmappedRead,
        Fault::UnmappedWrite,
        Fault::ReadonlyWrite,
        Fault::Injected,
    ];
    let faulting = |r: u32| r % 5 == 4;
    let dev = cx.sim("sim:policy=replay")?;
    let sim = dev.sim_control().expect("sim").clone();
    let barrier = std::sync::Barrier::new(THREADS + 1);
    // Per thread: every non-culprit job (round, job, context, address, fill), the errors seen.
    type Jobs = Vec<(
        u32,
        std::sync::Arc<agx_winsys::Job>,
        std::sync::Arc<Ctx>,
        u64,
        u8,
    )>;
    let shared: &CaseCtx = cx;
    let results: Vec<(Jobs, Vec<String>)> = std::thread::scope(|s| {
        let cx = shared;
        let barrier = &barrier;
        let hs: Vec<_> = (0..THREADS)
            .map(|t| {
                let dev = dev.clone();
                s.spawn(move || {
                    let mut jobs = Vec::new();
                    let mut errors = Vec::new();
                    let culprit = t == 0;
                    let role = if culprit {
                        Role::Culprit
                    } else {
                        Role::Innocent
                    };
                    let file = cx.file(&dev);
                    let mut c = file.as_ref().map_err(|e| format!("{e:?}")).and_then(|f| {
                        cx.ctx_sized(f, &format!("thread{t}"), role, 256 << 10)
                            .map_err(|e| format!("{e:?}"))
                    });
                    // Every round: wait for the held clock, submit, let the others submit.
                    for r in 0..ROUNDS {
                        barrier.wait();
                        let mut culprit_job_of_round = None;
                        match &c {
                            Err(e) => errors.push(format!("round {r}: no context: {e}")),
                            Ok(ctx) if culprit && faulting(r) => {
                                let f = FAULTS[(r / 5) as usize % FAULTS.len()];
                                match culprit_job(cx, ctx, f, 500) {
                                    Ok(j) => culprit_job_of_round = Some((f, j)),
                                    Err(e) => errors.push(format!("round {r}: culprit: {e:?}")),
                                }
                            }
                            Ok(ctx) => {
                                let fill = (r as u8).wrapping_mul(7) ^ t as u8;
                                // Longer than a quantum: still running when the fault's
                                // recovery stops the world at the quantum's end.
                                let spin = 15_000 + 1_000 * u64::from(r % 4);
                                match slow_draw(ctx, 1024, spin, fill) {
                                    Ok((cb, dst)) => match ctx.queue.submit(&cb, &[], &[]) {
                                        Ok(j) => {
                                            let j = std::sync::Arc::new(j);
                                            cx.track(ctx, j.clone());
                                            jobs.push((r, j, ctx.clone(), dst, fill));
                                        }
                                        Err(e) => {
                                            errors.push(format!("round {r}: submit refused: {e}"))
                                        }
                                    },
                                    Err(e) => errors.push(format!("round {r}: {e:?}")),
                                }
                            }
                        }
                        barrier.wait();
                        if let Some((f, j)) = culprit_job_of_round {
                            match wait(&j) {
                                Ok(o) if is_guilty_of(&o, f) => {}
                                o => errors.push(format!("round {r}: culprit {f:?}: {o:?}")),
                            }
                            // Its queue is banned: a new context, as an application would.
                            if let Ok(f) = &file {
                                c = cx
                                    .ctx_sized(f, &format!("thread{t}"), role, 256 << 10)
                                    .map_err(|e| format!("{e:?}"));
                            }
                        }
                    }
                    (jobs, errors)
                })
            })
            .collect();
        for _ in 0..ROUNDS {
            sim.hold();
            barrier.wait();
            barrier.wait();
            sim.release();
        }
        hs.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| (Vec::new(), vec!["thread panicked".into()]))
            })
            .collect()
    });
    let mut replayed = 0;
    for (t, (jobs, errors)) in results.iter().enumerate() {
        if let Some(e) = errors.first() {
            return fail(format!("thread {t}: {e} ({} error(s))", errors.len()));
        }
        for (r, j, ctx, dst, fill) in jobs {
            let o = wait(j)?;
            let hit = faulting(*r) && t != 0;
            match o {
                JobOutcome::Replayed(1) if hit => replayed += 1,
                JobOutcome::Complete if !hit => {}
                o => {
                    return fail(format!(
                        "thread {t} round {r}: {o:?} (hit by a fault: {hit})"
                    ))
                }
            }
            check_eq!(
                ctx.read(*dst, 1024)?,
                vec![*fill; 1024],
                "thread {t} round {r} memory"
            );
        }
    }
    let fault_rounds = (0..ROUNDS).filter(|&r| faulting(r)).count();
    check_eq!(
        replayed,
        fault_rounds * (THREADS - 1),
        "innocent jobs replayed"
    );
    check_eq!(sim.stats().recoveries, fault_rounds as u64, "recoveries");
    cx.finish()
}

fn threads_destroy_while_submitting(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim:policy=replay")?;
    let sim = dev.sim_control().expect("sim").clone();
    let stop = AtomicBool::new(false);
    {
        let cx: &CaseCtx = cx;
        std::thread::scope(|s| -> Result<(), CaseError> {
            // A thread that stops and restarts the GPU clock, so work piles up and is in
            // flight when contexts go away.
            let sim2 = sim.clone();
            let stop = &stop;
            let clock = s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    sim2.hold();
                    std::thread::sleep(Duration::from_micros(300));
                    sim2.release();
                    std::thread::sleep(Duration::from_micros(100));
                }
            });
            let mut hs = Vec::new();
            for t in 0..3u32 {
                let dev = dev.clone();
                hs.push(s.spawn(move || -> Result<(), CaseError> {
                    for round in 0..15u32 {
                        let file = cx.file(&dev)?;
                        let role = if t == 0 {
                            Role::Culprit
                        } else {
                            Role::Innocent
                        };
                        let c = cx.ctx_sized(&file, &format!("t{t}r{round}"), role, 64 << 10)?;
                        for i in 0..4u32 {
                            if t == 0 && i == 2 {
                                culprit_job(cx, &c, Fault::UnmappedWrite, 500)?;
                                continue;
                            }
                            let (cb, _) = slow_draw(&c, 1024, 1_000, i as u8)?;
                            match c.queue.submit(&cb, &[], &[]) {
                                Ok(j) => cx.track(&c, std::sync::Arc::new(j)),
                                Err(e) if JobOutcome::from_submit_error(&e).is_some() => {}
                                Err(e) => return Err(e.into()),
                            }
                        }
                        // Destroyed with whatever is still in flight.
                        drop(c);
                        drop(file);
                    }
                    Ok(())
                }));
            }
            let mut r = Ok(());
            for h in hs {
                let x = h
                    .join()
                    .map_err(|_| CaseError::Fail("thread panicked".into()))
                    .and_then(|x| x);
                if r.is_ok() {
                    r = x;
                }
            }
            stop.store(true, Ordering::Relaxed);
            let _ = clock.join();
            r
        })?;
    }
    sim.release();
    cx.finish()
}

fn repeated_recoveries(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim:policy=replay,replay-limit=3")?;
    let sim = dev.sim_control().expect("sim").clone();
    let victim = cx.ctx_sized(&dev, "victim", Role::Innocent, 4 << 20)?;
    for round in 0..30u32 {
        let culprit = cx.ctx(&cx.file(&dev)?, "culprit", Role::Culprit)?;
        let (cb, dst) = slow_draw(&victim, 4096, 30_000, round as u8)?;
        sim.hold();
        let vj = cx.submit(&victim, &cb, &[], &[])?;
        let f = [Fault::UnmappedRead, Fault::ReadonlyWrite, Fault::Injected][round as usize % 3];
        let cj = culprit_job(cx, &culprit, f, 5_000)?;
        sim.release();
        check!(is_guilty_of(&wait(&cj)?, f), "round {round}: culprit");
        check_eq!(wait(&vj)?, JobOutcome::Replayed(1), "round {round}: victim");
        cx.expect_memory(&victim, dst, vec![round as u8; 4096]);
    }
    let st = victim.queue.state()?;
    check!(!st.banned && st.reset_count == 30, "{st:?}");
    cx.finish()
}

/// More commands on one queue than its result ring has slots, then two jobs whose outcome is
/// not `Complete` in slots that held `Complete` records: one replayed as the victim of another
/// file's fault, then one guilty of its own. Each must read its own record (a stale one would
/// say `Complete`); the work before them all completed, in order.
fn result_ring_wrap(cx: &mut CaseCtx) -> CaseResult {
    use agx_winsys::queue::RING_SLOTS;
    let dev = cx.sim("sim:policy=replay")?;
    let sim = dev.sim_control().expect("sim").clone();
    // It faults itself at the end: a culprit.
    let c = cx.ctx(&dev, "a", Role::Culprit)?;
    let counter = c.alloc(8)?;
    let mut s = StreamBuilder::new();
    s.atomic_add(counter, 1);
    let mut cb = c.command_buffer();
    cb.compute(c.compute(&mut s, None)?)?;
    let n = RING_SLOTS + 100;
    for i in 0..n {
        let j = c.queue.submit(&cb, &[], &[])?;
        check_eq!(wait(&Box::new(j))?, JobOutcome::Complete, "job {i}");
    }
    cx.expect_memory(&c, counter, n.to_le_bytes().to_vec());
    // Replayed, in a reused slot.
    let other = cx.ctx(&cx.file(&dev)?, "other", Role::Culprit)?;
    let (vcb, dst) = slow_draw(&c, 4096, 20_000, 0x6b)?;
    sim.hold();
    let vj = cx.submit(&c, &vcb, &[], &[])?;
    let oj = culprit_job(cx, &other, Fault::UnmappedRead, 2_000)?;
    sim.release();
    check!(
        is_guilty_of(&wait(&oj)?, Fault::UnmappedRead),
        "the other file's culprit"
    );
    check!(vj.seqnos().start > RING_SLOTS, "wrapped: {:?}", vj.seqnos());
    check_eq!(wait(&vj)?, JobOutcome::Replayed(1), "victim after the wrap");
    check_eq!(c.read(dst, 4096)?, vec![0x6b; 4096], "replayed memory");
    // Guilty, in a reused slot.
    let gj = culprit_job(cx, &c, Fault::UnmappedWrite, 0)?;
    check!(gj.seqnos().start > RING_SLOTS, "wrapped: {:?}", gj.seqnos());
    let o = wait(&gj)?;
    check!(
        is_guilty_of(&o, Fault::UnmappedWrite),
        "culprit after the wrap: {o:?}"
    );
    cx.finish()
}

fn simultaneous_culprits(cx: &mut CaseCtx) -> CaseResult {
    // Two culprits fault in the same slice: one recovery, both guilty, the victim replayed.
    let dev = cx.sim("sim:policy=replay")?;
    let sim = dev.sim_control().expect("sim").clone();
    let victim = cx.ctx(&dev, "victim", Role::Innocent)?;
    let a = cx.ctx(&cx.file(&dev)?, "culprit-a", Role::Culprit)?;
    let b = cx.ctx(&cx.file(&dev)?, "culprit-b", Role::Culprit)?;
    let (cb, dst) = slow_draw(&victim, 4096, 50_000, 0x5a)?;
    sim.hold();
    let vj = cx.submit(&victim, &cb, &[], &[])?;
    let ja = culprit_job(cx, &a, Fault::UnmappedRead, 3_000)?;
    let jb = culprit_job(cx, &b, Fault::ReadonlyWrite, 3_000)?;
    sim.release();
    check!(is_guilty_of(&wait(&ja)?, Fault::UnmappedRead), "a");
    check!(is_guilty_of(&wait(&jb)?, Fault::ReadonlyWrite), "b");
    check_eq!(wait(&vj)?, JobOutcome::Replayed(1), "victim");
    check_eq!(sim.stats().recoveries, 1, "one recovery for both");
    cx.expect_memory(&victim, dst, vec![0x5a; 4096]);
    cx.finish()
}
