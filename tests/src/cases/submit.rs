//! `agx.submit.*`: submission through the winsys: clean work, validation and errnos (empty
//! command buffers, attachment limits, bad sync objects, banned queues), splitting.

use agx_sim::stream::StreamBuilder;
use agx_sim::Errno;
use agx_winsys::cmd::{BuildError, Dep, Deps};
use agx_winsys::{DeviceSpec, FenceStatus, JobOutcome, SyncObj, SyncPoint};

use super::*;
use crate::{check, check_eq};

pub fn cases() -> Vec<Case> {
    crate::cases![
        "agx.submit.clean_render" => clean_render,
        "agx.submit.clean_compute" => clean_compute,
        "agx.submit.empty_command_buffer" => empty_command_buffer,
        "agx.submit.too_many_attachments" => too_many_attachments,
        "agx.submit.banned_queue_ecanceled" => banned_queue_ecanceled,
        "agx.submit.foreign_syncobj" => foreign_syncobj,
        "agx.submit.wait_without_fence_einval" => wait_without_fence_einval,
        "agx.submit.split_long_cmdbuf" => split_long_cmdbuf,
        "agx.submit.split_fault_midway" => split_fault_midway,
        "agx.submit.forward_dependency" => forward_dependency,
        "agx.submit.many_submits_in_order" => many_submits_in_order,
        "agx.submit.bad_device_spec" => bad_device_spec,
    ]
}

fn clean_render(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "a", Role::Innocent)?;
    let (src, dst) = (c.alloc(4096)?, c.alloc(4096)?);
    let mut cb = c.command_buffer();
    cb.render(c.clear_pass(src, 4096, 0x1111_1111)?)?;
    cb.render(c.draw_pass(dst, src, 4096)?)?;
    let j = cx.submit(&c, &cb, &[], &[])?;
    check_eq!(wait(&j)?, JobOutcome::Complete, "job");
    check_eq!(j.seqnos().count(), 2, "two hardware commands");
    cx.expect_memory(&c, dst, vec![0x11; 4096]);
    cx.finish()
}

fn clean_compute(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "a", Role::Innocent)?;
    let (src, dst, acc) = (c.alloc(4096)?, c.alloc(4096)?, c.alloc(4096)?);
    c.write(src, &[3; 4096])?;
    c.write(acc, &[1; 4096])?;
    let mut cb = c.command_buffer();
    cb.compute(c.compute_copy(dst, src, 4096)?)?;
    cb.compute(c.compute_accumulate(acc, dst, 4096)?)?;
    check_eq!(
        wait(&cx.submit(&c, &cb, &[], &[])?)?,
        JobOutcome::Complete,
        "job"
    );
    cx.expect_memory(&c, dst, vec![3; 4096]);
    cx.expect_memory(&c, acc, vec![4; 4096]);
    cx.finish()
}

fn empty_command_buffer(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "a", Role::Innocent)?;
    let cb = c.command_buffer();
    check_eq!(
        cb.check_not_empty().err(),
        Some(BuildError::EmptyCommandBuffer),
        "builder"
    );
    let e = c.queue.submit(&cb, &[], &[]).err();
    check_eq!(e.map(|e| e.errno()), Some(Errno::INVAL), "submit");
    check_eq!(
        dev.sim_control().expect("sim").stats().submits,
        0,
        "nothing reached the kernel"
    );
    // The queue is unharmed.
    let (cb, va) = clear_cb(&c, 64, 0x0101_0101)?;
    check_eq!(
        wait(&cx.submit(&c, &cb, &[], &[])?)?,
        JobOutcome::Complete,
        "next"
    );
    cx.expect_memory(&c, va, vec![1; 64]);
    cx.finish()
}

fn too_many_attachments(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "a", Role::Innocent)?;
    let max = dev.params().max_attachments as usize;
    let va = c.alloc(64 * (max as u64 + 1))?;
    let atts: Vec<(u64, u64)> = (0..=max as u64).map(|i| (va + 64 * i, 64)).collect();
    let d = c.render(StreamBuilder::new().store(va, 1), Default::default(), &atts)?;
    let mut cb = c.command_buffer();
    check_eq!(
        cb.render(d).err(),
        Some(BuildError::TooManyAttachments {
            count: max + 1,
            max
        }),
        "one over the limit"
    );
    check!(cb.is_empty(), "refused command not added");
    let d = c.render(
        StreamBuilder::new().store(va, 1),
        Default::default(),
        &atts[..max],
    )?;
    cb.render(d)?;
    check_eq!(
        wait(&cx.submit(&c, &cb, &[], &[])?)?,
        JobOutcome::Complete,
        "at the limit"
    );
    cx.finish()
}

fn banned_queue_ecanceled(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let sim = dev.sim_control().expect("sim").clone();
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    wait(&culprit_job(cx, &c, Fault::UnmappedRead, 0)?)?;
    let before = sim.stats().submits;
    let (cb, _) = clear_cb(&c, 64, 1)?;
    for _ in 0..3 {
        let e = c
            .queue
            .submit(&cb, &[], &[])
            .err()
            .ok_or_else(|| CaseError::Fail("banned queue accepted work".into()))?;
        check_eq!(e.errno(), Errno::CANCELED, "errno");
        check_eq!(
            JobOutcome::from_submit_error(&e),
            Some(JobOutcome::Cancelled),
            "outcome"
        );
    }
    check_eq!(sim.pending_commands(), 0, "nothing queued");
    check_eq!(sim.stats().submits, before, "no submit counted");
    cx.finish()
}

fn foreign_syncobj(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let other = cx.file(&dev)?;
    let c = cx.ctx(&dev, "a", Role::Innocent)?;
    let s = SyncObj::new(&other, true)?;
    let (cb, _) = clear_cb(&c, 64, 1)?;
    for (w, sig) in [(true, false), (false, true)] {
        let waits = if w {
            vec![SyncPoint::binary(&s)]
        } else {
            vec![]
        };
        let sigs = if sig {
            vec![SyncPoint::binary(&s)]
        } else {
            vec![]
        };
        let e = c.queue.submit(&cb, &waits, &sigs).err();
        check!(
            matches!(e, Some(agx_winsys::Error::InvalidArgument(_))),
            "sync object of another file (wait {w}): {e:?}"
        );
    }
    check_eq!(
        dev.sim_control().expect("sim").stats().submits,
        0,
        "nothing submitted"
    );
    cx.finish()
}

fn wait_without_fence_einval(cx: &mut CaseCtx) -> CaseResult {
    // DRM: an in-sync with no fence attached is EINVAL, and nothing is queued.
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "a", Role::Innocent)?;
    let s = SyncObj::new(&dev, false)?;
    let (cb, _) = clear_cb(&c, 64, 1)?;
    let e = c.queue.submit(&cb, &[SyncPoint::binary(&s)], &[]).err();
    check_eq!(
        e.map(|e| e.errno()),
        Some(Errno::INVAL),
        "binary without fence"
    );
    let t = SyncObj::new(&dev, false)?;
    let e = c
        .queue
        .submit(&cb, &[SyncPoint::timeline(&t, 4)], &[])
        .err();
    check_eq!(
        e.map(|e| e.errno()),
        Some(Errno::INVAL),
        "timeline point not there"
    );
    check_eq!(
        dev.sim_control().expect("sim").pending_commands(),
        0,
        "nothing queued"
    );
    // The queue still works (a refused submit leaves it intact).
    let j = cx.submit(&c, &cb, &[], &[])?;
    check_eq!(wait(&j)?, JobOutcome::Complete, "next submit");
    cx.finish()
}

fn long_cb(
    c: &Ctx,
    n: usize,
    slots: u64,
    fault_at: Option<usize>,
) -> Result<agx_winsys::cmd::CommandBuffer, CaseError> {
    let mut cb = c.command_buffer();
    for i in 0..n {
        let mut s = StreamBuilder::new();
        if fault_at == Some(i) {
            s.load(HOLE, 8);
        }
        s.store(slots + 8 * i as u64, i as u64 + 1);
        if i % 2 == 0 {
            cb.render(c.render(&mut s, Default::default(), &[])?)?;
        } else {
            cb.compute(c.compute(&mut s, None)?)?;
        }
    }
    Ok(cb)
}

fn split_long_cmdbuf(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "a", Role::Innocent)?;
    let max = dev.params().max_commands_per_submission as usize;
    let n = 2 * max + 3;
    let slots = c.alloc(8 * n as u64)?;
    let cb = long_cb(&c, n, slots, None)?;
    let j = cx.submit(&c, &cb, &[], &[])?;
    check_eq!(j.seqnos().count(), n, "commands");
    check_eq!(wait(&j)?, JobOutcome::Complete, "job");
    let want: Vec<u8> = (0..n as u64).flat_map(|i| (i + 1).to_le_bytes()).collect();
    cx.expect_memory(&c, slots, want);
    check!(
        dev.sim_control().expect("sim").stats().submits >= 3,
        "split into several submits"
    );
    cx.finish()
}

fn split_fault_midway(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "culprit", Role::Culprit)?;
    let max = dev.params().max_commands_per_submission as usize;
    let n = 2 * max + 3;
    let slots = c.alloc(8 * n as u64)?;
    let s = SyncObj::new(&dev, false)?;
    let cb = long_cb(&c, n, slots, Some(max + 1))?;
    // Held, so every chunk is accepted before the first one runs (see the report: a split
    // submit whose early chunk faults before the later ones are submitted is refused).
    let sim = dev.sim_control().expect("sim").clone();
    sim.hold();
    let j = cx.submit(&c, &cb, &[], &[SyncPoint::binary(&s)])?;
    sim.release();
    let o = wait(&j)?;
    check!(is_guilty_of(&o, Fault::UnmappedRead), "job: {o:?}");
    check_eq!(
        s.status(None)?,
        FenceStatus::Error(-libc::ECANCELED),
        "the last chunk's fence (cancelled)"
    );
    let got = c.read(slots, 8 * n)?;
    let ran = |i: usize| got[8 * i..8 * i + 8] != [0; 8];
    check!((0..=max).all(ran), "commands before the fault ran");
    check!(!(max + 1..n).any(ran), "commands from the fault on did not");
    cx.finish()
}

fn forward_dependency(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "a", Role::Innocent)?;
    let va = c.alloc(64)?;
    let mut cb = c.command_buffer();
    let e = cb
        .render_with_deps(c.clear_pass(va, 64, 1)?, Deps::both(Dep::Through(3)))
        .err();
    check_eq!(
        e,
        Some(BuildError::ForwardDependency {
            command: 0,
            target: 3
        }),
        "dependency on a later command"
    );
    check!(cb.is_empty(), "nothing added");
    cx.finish()
}

fn many_submits_in_order(cx: &mut CaseCtx) -> CaseResult {
    let dev = cx.sim("sim")?;
    let c = cx.ctx(&dev, "a", Role::Innocent)?;
    let last = c.alloc(8)?;
    let sim = dev.sim_control().expect("sim").clone();
    sim.hold();
    let mut jobs = Vec::new();
    for i in 0..200u64 {
        let mut s = StreamBuilder::new();
        s.store(last, i + 1);
        let cb = if i % 3 == 0 {
            compute_stream(&c, &mut s)?
        } else {
            render_stream(&c, &mut s)?
        };
        jobs.push(cx.submit(&c, &cb, &[], &[])?);
    }
    sim.release();
    for (i, j) in jobs.iter().enumerate() {
        check_eq!(wait(j)?, JobOutcome::Complete, "job {i}");
    }
    cx.expect_memory(&c, last, 200u64.to_le_bytes().to_vec());
    cx.finish()
}

fn bad_device_spec(cx: &mut CaseCtx) -> CaseResult {
    for s in [
        "sim:policy=bogus",
        "sim:frobnicate",
        "nvidia",
        "sim:replay-limit=x",
    ] {
        check!(DeviceSpec::parse(s).is_err(), "{s:?} accepted");
    }
    check!(
        DeviceSpec::parse("sim:policy=continue,upstream").is_ok(),
        "valid spec refused"
    );
    cx.finish()
}
