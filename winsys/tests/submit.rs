//! Submission, ordering, splitting, and job outcomes (issue: winsys core + faults end to end).
//! Every test that submits asserts that every job's fence signalled with an outcome.

use std::time::Duration;

use agx_sim::stream::StreamBuilder;
use agx_winsys::cmd::CommandBuffer;
use agx_winsys::kit::Context;
use agx_winsys::*;

const SEC: Deadline = Deadline::After(Duration::from_secs(10));

fn sim(spec: &str) -> Device {
    Device::open(&DeviceSpec::parse(spec).unwrap()).unwrap()
}

fn one(ctx: &Context, desc: impl FnOnce(&mut CommandBuffer)) -> Job {
    let mut cb = ctx.command_buffer();
    desc(&mut cb);
    ctx.queue.submit(&cb, &[], &[]).unwrap()
}

#[test]
fn render_and_compute_consume_each_other_across_queues() {
    let dev = sim("sim");
    let a = Context::new(&dev, 1 << 20).unwrap();
    // A second file of the same GPU, as another process would have.
    let dev2 = dev.sim_control().unwrap().open_peer().unwrap();
    let b = Context::new(&dev2, 1 << 20).unwrap();
    let len = 4096;
    let (src, dst) = (a.alloc(len).unwrap(), a.alloc(len).unwrap());
    let done_a = SyncObj::new(&dev, false).unwrap();
    let mut cb = a.command_buffer();
    cb.render(a.clear_pass(src, len, 0x0101_0101).unwrap())
        .unwrap();
    cb.compute(a.compute_copy(dst, src, len).unwrap()).unwrap();
    let ja = a
        .queue
        .submit(&cb, &[], &[SyncPoint::binary(&done_a)])
        .unwrap();
    assert_eq!(ja.wait(SEC).unwrap(), JobOutcome::Complete);
    assert_eq!(a.read(dst, len as usize).unwrap(), vec![1u8; len as usize]);

    // Hand the fence to the other file through a sync_file, gate b's work on it.
    let fd = done_a.export_sync_file(None).unwrap();
    let gate = SyncObj::new(&dev2, false).unwrap();
    gate.import_sync_file(std::os::fd::AsFd::as_fd(&fd), None)
        .unwrap();
    let x = b.alloc(len).unwrap();
    let mut cb = b.command_buffer();
    cb.render(b.clear_pass(x, len, 0x0202_0202).unwrap())
        .unwrap();
    let jb = b
        .queue
        .submit(&cb, &[SyncPoint::binary(&gate)], &[])
        .unwrap();
    assert_eq!(jb.wait(SEC).unwrap(), JobOutcome::Complete);
    assert_eq!(b.read(x, 4).unwrap(), vec![2; 4]);
}

#[test]
fn user_syncobj_gates_start() {
    let dev = sim("sim");
    let c = Context::new(&dev, 1 << 20).unwrap();
    let v = c.alloc(64).unwrap();
    // An in-sync needs a fence: point 1 of `t` gets one from a job held on the GPU.
    let t = SyncObj::new(&dev, false).unwrap();
    let mut cb = c.command_buffer();
    cb.render(c.clear_pass(v, 64, 0x0909_0909).unwrap())
        .unwrap();
    dev.sim_control().unwrap().hold();
    let j0 = c
        .queue
        .submit(&cb, &[], &[SyncPoint::timeline(&t, 1)])
        .unwrap();
    let other = Context::new(&dev, 1 << 20).unwrap();
    let w = other.alloc(64).unwrap();
    let mut cb2 = other.command_buffer();
    cb2.render(other.clear_pass(w, 64, 0x0303_0303).unwrap())
        .unwrap();
    let j1 = other
        .queue
        .submit(&cb2, &[SyncPoint::timeline(&t, 1)], &[])
        .unwrap();
    assert_eq!(j1.poll().unwrap(), None, "gated behind a pending point");
    assert_eq!(other.read(w, 4).unwrap(), vec![0; 4]);
    dev.sim_control().unwrap().release();
    assert_eq!(j0.wait(SEC).unwrap(), JobOutcome::Complete);
    assert_eq!(j1.wait(SEC).unwrap(), JobOutcome::Complete);
    assert_eq!(other.read(w, 4).unwrap(), vec![3; 4]);
}

#[test]
fn long_command_buffers_are_split_in_order() {
    let dev = sim("sim");
    let c = Context::new(&dev, 1 << 20).unwrap();
    let max = dev.params().max_commands_per_submission as usize;
    let n = 2 * max + 7;
    let slots = c.alloc(8 * n as u64).unwrap();
    let last = c.alloc(8).unwrap();
    let mut cb = c.command_buffer();
    for i in 0..n {
        let mut s = StreamBuilder::new();
        s.store(slots + 8 * i as u64, i as u64 + 1)
            .store(last, i as u64 + 1);
        if i % 2 == 0 {
            cb.render(c.render(&mut s, Default::default(), &[]).unwrap())
                .unwrap();
        } else {
            cb.compute(c.compute(&mut s, None).unwrap()).unwrap();
        }
    }
    let job = c.queue.submit(&cb, &[], &[]).unwrap();
    assert_eq!(job.seqnos().count(), n);
    assert_eq!(job.wait(SEC).unwrap(), JobOutcome::Complete);
    let got = c.read(slots, 8 * n).unwrap();
    for i in 0..n {
        assert_eq!(
            u64::from_le_bytes(got[8 * i..8 * i + 8].try_into().unwrap()),
            i as u64 + 1
        );
    }
    assert_eq!(
        c.read(last, 8).unwrap(),
        (n as u64).to_le_bytes(),
        "the last command ran last"
    );
}

fn faulting(ctx: &Context, s: &mut StreamBuilder) -> Job {
    let d = ctx.render(s, Default::default(), &[]).unwrap();
    one(ctx, |cb| {
        cb.render(d).unwrap();
    })
}

#[test]
fn guilty_faults_are_reported_with_address() {
    let dev = sim("sim:hang-timeout-ms=1");
    let c = Context::new(&dev, 1 << 20).unwrap();
    let hole = agx_sim::config::UNMAPPED_VA;
    let o = faulting(&c, StreamBuilder::new().load(hole, 64))
        .wait(SEC)
        .unwrap();
    let JobOutcome::Faulted { fault, guilt } = o else {
        panic!("{o:?}")
    };
    assert_eq!(
        (fault.kind, fault.write, fault.address, guilt),
        (FaultKind::Unmapped, false, Some(hole), Guilt::Guilty)
    );
    assert_eq!(fault.unit, FaultUnit::Fragment);

    let c = Context::new(&dev, 1 << 20).unwrap();
    let o = faulting(&c, StreamBuilder::new().store(hole + 8, 1))
        .wait(SEC)
        .unwrap();
    assert!(
        matches!(
            o,
            JobOutcome::Faulted {
                fault: FaultInfo {
                    kind: FaultKind::Unmapped,
                    write: true,
                    ..
                },
                ..
            }
        ),
        "{o:?}"
    );

    // A write into the read-only code arena.
    let c = Context::new(&dev, 1 << 20).unwrap();
    let ro = c.code.va;
    let o = faulting(&c, StreamBuilder::new().store(ro, 1))
        .wait(SEC)
        .unwrap();
    assert!(
        matches!(o, JobOutcome::Faulted { fault: FaultInfo { kind: FaultKind::Permission, write: true, address: Some(a), .. }, guilt: Guilt::Guilty } if a == ro),
        "{o:?}"
    );
    let st = c.queue.state().unwrap();
    assert!(st.banned && st.guilt == Some(Guilt::Guilty));
    // The banned queue refuses work: ECANCELED, a cancelled job for the API.
    let mut cb = c.command_buffer();
    cb.render(c.clear_pass(c.alloc(64).unwrap(), 64, 0).unwrap())
        .unwrap();
    let e = c.queue.submit(&cb, &[], &[]).unwrap_err();
    assert_eq!(e.errno(), rustix::io::Errno::CANCELED);
    assert_eq!(
        JobOutcome::from_submit_error(&e),
        Some(JobOutcome::Cancelled)
    );

    let c = Context::new(&dev, 1 << 20).unwrap();
    assert_eq!(
        faulting(&c, StreamBuilder::new().hang()).wait(SEC).unwrap(),
        JobOutcome::TimedOut
    );
}

/// Two contexts whose work overlaps in GPU time: `victim` is mid-flight when `culprit` faults.
/// The victim's pass moves 2 MiB (tens of microseconds of GPU time, several scheduling quanta);
/// the culprit faults inside the victim's last memory operation, so a policy that resumes the
/// victim instead of replaying it loses part of that operation.
fn collide(spec: &str, restartable_victim: bool) -> (Device, Context, Job, Vec<u8>, Job) {
    let dev = sim(spec);
    let sim = dev.sim_control().unwrap().clone();
    let victim = Context::new(&dev, 8 << 20).unwrap();
    let culprit = Context::new(&sim.open_peer().unwrap(), 1 << 20).unwrap();
    let len = 2 << 20;
    let (dst, src) = (victim.alloc(len).unwrap(), victim.alloc(len).unwrap());
    assert_eq!(dst, victim.data.va);
    victim.write(src, &vec![0x40; len as usize]).unwrap();
    victim.write(dst, &vec![0x10; len as usize]).unwrap();
    let mut cb = victim.command_buffer();
    let (desc, expected, culprit_delay) = if restartable_victim {
        // fill: 0-32 us, copy: 32-64 us; the fault lands in the copy.
        (
            victim.draw_pass(dst, src, len).unwrap(),
            vec![0x40; len as usize],
            40_000,
        )
    } else {
        // blend: 0-32 us; the fault lands in it.
        (
            victim.blend_pass(dst, src, len).unwrap(),
            vec![0x28; len as usize],
            10_000,
        )
    };
    cb.render(desc).unwrap();
    sim.hold();
    let vj = victim.queue.submit(&cb, &[], &[]).unwrap();
    let cj = faulting(
        &culprit,
        StreamBuilder::new()
            .spin(culprit_delay)
            .load(agx_sim::config::UNMAPPED_VA, 8),
    );
    sim.release();
    (dev, victim, vj, expected, cj)
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a == b
}

#[test]
fn innocent_restartable_work_is_replayed_exactly() {
    let (dev, victim, vj, expected, cj) = collide("sim:policy=replay", true);
    assert!(matches!(
        cj.wait(SEC).unwrap(),
        JobOutcome::Faulted {
            guilt: Guilt::Guilty,
            ..
        }
    ));
    assert_eq!(vj.wait(SEC).unwrap(), JobOutcome::Replayed(1));
    let dst = victim.data.va;
    assert!(
        same(&victim.read(dst, expected.len()).unwrap(), &expected),
        "memory exactly as a fault-free run"
    );
    let st = victim.queue.state().unwrap();
    assert!(!st.banned);
    assert_eq!(st.reset_count, 1);
    // The recovery lasted until the replayed victim was done again: longer than the
    // stop-the-world cycle itself, by the victim's re-run (64 us of memory traffic).
    let stats = dev.sim_control().unwrap().stats();
    assert_eq!((stats.recoveries, stats.recoveries_closed), (1, 1));
    assert!(
        stats.recovery_span_ns >= stats.recovery_ns + 60_000,
        "{stats:?}"
    );
}

#[test]
fn innocent_nonrestartable_work_is_killed_and_banned() {
    let (_dev, victim, vj, _expected, cj) = collide("sim:policy=replay", false);
    assert!(matches!(
        cj.wait(SEC).unwrap(),
        JobOutcome::Faulted {
            guilt: Guilt::Guilty,
            ..
        }
    ));
    let o = vj.wait(SEC).unwrap();
    assert!(
        matches!(
            o,
            JobOutcome::Killed {
                guilt: Guilt::Innocent,
                fault: Some(_)
            }
        ),
        "{o:?}"
    );
    let st = victim.queue.state().unwrap();
    assert!(st.banned && st.guilt == Some(Guilt::Innocent));
    let mut cb = victim.command_buffer();
    cb.render(victim.clear_pass(victim.alloc(64).unwrap(), 64, 0).unwrap())
        .unwrap();
    assert_eq!(
        victim.queue.submit(&cb, &[], &[]).unwrap_err().errno(),
        rustix::io::Errno::CANCELED
    );
}

#[test]
fn policies_differ_on_the_same_scenario() {
    let (_d, _v, vj, _, _) = collide("sim:policy=kill-inflight", true);
    assert!(matches!(
        vj.wait(SEC).unwrap(),
        JobOutcome::Killed {
            guilt: Guilt::Innocent,
            ..
        }
    ));
    let (_d, v, vj, expected, _) = collide("sim:policy=continue", true);
    assert_eq!(
        vj.wait(SEC).unwrap(),
        JobOutcome::Complete,
        "continue reports nothing"
    );
    let dst = v.data.va;
    assert!(
        !same(&v.read(dst, expected.len()).unwrap(), &expected),
        "... and the memory is silently wrong"
    );
    let (_d, _v, vj, _, _) = collide("sim:policy=replay,replay-limit=0", true);
    assert!(
        matches!(vj.wait(SEC).unwrap(), JobOutcome::Killed { .. }),
        "replay limit reached"
    );
}

#[test]
fn idle_innocent_queue_is_untouched() {
    let (dev, _v, vj, _, _) = collide("sim:policy=replay", true);
    let idle = Context::new(&dev, 1 << 20).unwrap();
    vj.wait(SEC).unwrap();
    let st = idle.queue.state().unwrap();
    assert!(!st.banned && st.reset_count == 0);
    let x = idle.alloc(64).unwrap();
    let j = one(&idle, |cb| {
        cb.render(idle.clear_pass(x, 64, 0x0505_0505).unwrap())
            .unwrap();
    });
    assert_eq!(j.wait(SEC).unwrap(), JobOutcome::Complete);
}

#[test]
fn upstream_mode_derives_outcomes_from_fence_errors() {
    let (_d, _v, vj, _, cj) = collide("sim:policy=kill-inflight,upstream", true);
    let o = cj.wait(SEC).unwrap();
    assert_eq!(
        o,
        JobOutcome::Faulted {
            fault: FaultInfo::UNKNOWN,
            guilt: Guilt::Unknown
        }
    );
    assert_eq!(
        vj.wait(SEC).unwrap(),
        JobOutcome::Killed {
            guilt: Guilt::Unknown,
            fault: None
        }
    );
    assert_eq!(ResetStatus::from_outcome(&o), ResetStatus::Unknown);
    let dev = sim("sim:upstream,hang-timeout-ms=1");
    let c = Context::new(&dev, 1 << 20).unwrap();
    assert_eq!(
        faulting(&c, StreamBuilder::new().hang()).wait(SEC).unwrap(),
        JobOutcome::TimedOut
    );
    assert!(c.queue.state().is_err(), "no QUEUE_GET_STATE upstream");
}

#[test]
fn teardown_with_work_in_flight_signals_everything() {
    let dev = sim("sim");
    // With the clock held, submitted work stays pending.
    dev.sim_control().unwrap().hold();
    let pending = |ctx: &Context| {
        let mut cb = ctx.command_buffer();
        cb.render(ctx.clear_pass(ctx.alloc(64).unwrap(), 64, 7).unwrap())
            .unwrap();
        ctx.queue.submit(&cb, &[], &[]).unwrap()
    };
    // Queue destroy.
    let c = Context::new(&dev, 1 << 20).unwrap();
    let j = pending(&c);
    drop(c); // drops the queue (and VM): pending work is killed
    assert!(matches!(j.wait(SEC).unwrap(), JobOutcome::Killed { .. }));
    // File close.
    let d2 = dev.sim_control().unwrap().open_peer().unwrap();
    let c2 = Context::new(&d2, 1 << 20).unwrap();
    let j2 = pending(&c2);
    let (tl, point) = j2.fence();
    let fd = tl.export_sync_file(Some(point)).unwrap();
    drop(j2);
    drop(c2);
    drop(d2);
    assert_eq!(
        sync::sync_file_status(&dev, std::os::fd::AsFd::as_fd(&fd)).unwrap(),
        FenceStatus::Error(-libc::ECANCELED)
    );
    dev.sim_control().unwrap().release();
    assert_eq!(dev.sim_control().unwrap().pending_commands(), 0);
}

#[test]
fn firmware_crash_means_device_gone_everywhere() {
    let dev = sim("sim");
    let c = Context::new(&dev, 1 << 20).unwrap();
    let mut cb = c.command_buffer();
    cb.render(c.clear_pass(c.alloc(64).unwrap(), 64, 7).unwrap())
        .unwrap();
    dev.sim_control().unwrap().hold();
    let j = c.queue.submit(&cb, &[], &[]).unwrap();
    dev.sim_control().unwrap().crash_firmware();
    assert_eq!(j.wait(SEC).unwrap(), JobOutcome::DeviceGone);
    assert_eq!(Vm::new(&dev).unwrap_err().errno(), rustix::io::Errno::NODEV);
    let e = c.queue.submit(&cb, &[], &[]).unwrap_err();
    assert_eq!(
        JobOutcome::from_submit_error(&e),
        Some(JobOutcome::DeviceGone)
    );
    // Sync objects still work: the device is wedged, not unplugged.
    SyncObj::new(&dev, true)
        .unwrap()
        .wait(None, Deadline::NOW, WaitFlags::default())
        .unwrap();
    // Teardown still works.
    drop(c);
}

#[test]
fn gl_reset_status_reported_once_and_new_context_works() {
    let (dev, victim, vj, _, cj) = collide("sim:policy=kill-inflight", true);
    let innocent = ResetTracker::new();
    let guilty = ResetTracker::new();
    innocent.observe(ResetStatus::from_outcome(&vj.wait(SEC).unwrap()));
    guilty.observe(ResetStatus::from_outcome(&cj.wait(SEC).unwrap()));
    assert_eq!(innocent.status(), ResetStatus::Innocent);
    assert_eq!(innocent.status(), ResetStatus::NoReset);
    assert_eq!(guilty.status(), ResetStatus::Guilty);
    assert_eq!(guilty.status(), ResetStatus::NoReset);
    drop(victim);
    let fresh = Context::new(&dev, 1 << 20).unwrap();
    let x = fresh.alloc(64).unwrap();
    let j = one(&fresh, |cb| {
        cb.render(fresh.clear_pass(x, 64, 0x0606_0606).unwrap())
            .unwrap();
    });
    assert_eq!(j.wait(SEC).unwrap(), JobOutcome::Complete);
    assert_eq!(fresh.read(x, 4).unwrap(), vec![6; 4]);
}

#[test]
fn trace_of_a_recovery_is_chrome_json() {
    let (dev, _v, vj, _, _) = collide("sim:policy=replay", true);
    vj.wait(SEC).unwrap();
    let json = dev.sim_control().unwrap().trace_json();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let events = v["traceEvents"].as_array().unwrap();
    for name in [
        "submit",
        "start",
        "fault",
        "recovery_start",
        "recovery_end",
        "replay",
        "preempt",
        "retire",
        "signal",
    ] {
        assert!(events.iter().any(|e| e["name"] == name), "missing {name}");
    }
    assert!(events
        .iter()
        .all(|e| e["ts"].is_number() && e["ph"].is_string()));
}

#[test]
fn victim_with_both_subqueues_running_is_killed_once() {
    // Render and compute of one queue in flight together (no barrier between them), both not
    // restartable: killing the first victim bans the queue and ends the second with it.
    let dev = sim("sim:policy=replay");
    let sim = dev.sim_control().unwrap().clone();
    let victim = Context::new(&dev, 8 << 20).unwrap();
    let culprit = Context::new(&sim.open_peer().unwrap(), 1 << 20).unwrap();
    let len = 2 << 20;
    let (a, b, src) = (
        victim.alloc(len).unwrap(),
        victim.alloc(len).unwrap(),
        victim.alloc(len).unwrap(),
    );
    let mut cb = victim.command_buffer();
    cb.render(victim.blend_pass(a, src, len).unwrap()).unwrap();
    cb.compute_with_deps(
        victim.compute_accumulate(b, src, len).unwrap(),
        agx_winsys::cmd::Deps::NONE,
    )
    .unwrap();
    sim.hold();
    let vj = victim.queue.submit(&cb, &[], &[]).unwrap();
    let cj = faulting(
        &culprit,
        StreamBuilder::new()
            .spin(10_000)
            .load(agx_sim::config::UNMAPPED_VA, 8),
    );
    sim.release();
    assert!(matches!(
        cj.wait(SEC).unwrap(),
        JobOutcome::Faulted {
            guilt: Guilt::Guilty,
            ..
        }
    ));
    assert!(matches!(
        vj.wait(SEC).unwrap(),
        JobOutcome::Killed {
            guilt: Guilt::Innocent,
            ..
        }
    ));
    assert_eq!(sim.pending_commands(), 0);
}

#[test]
fn split_submit_refused_midway_still_signals_and_reports() {
    // The first chunk faults while the second is being submitted (the simulated GPU runs inside
    // the ioctl): the kernel refuses the second chunk (ECANCELED, queue banned). The caller
    // still gets a job with the fault and an out-sync that signals, with the error.
    for spec in ["sim", "sim:upstream"] {
        let dev = sim(spec);
        let c = Context::new(&dev, 1 << 20).unwrap();
        let max = dev.params().max_commands_per_submission as usize;
        let mut cb = c.command_buffer();
        let bad = c
            .render(
                StreamBuilder::new().store(agx_sim::config::UNMAPPED_VA, 1),
                Default::default(),
                &[],
            )
            .unwrap();
        cb.render(bad).unwrap();
        for _ in 1..max + 3 {
            cb.render(c.clear_pass(c.alloc(64).unwrap(), 64, 9).unwrap())
                .unwrap();
        }
        let out = SyncObj::new(&dev, false).unwrap();
        let job = c
            .queue
            .submit(&cb, &[], &[SyncPoint::binary(&out)])
            .unwrap();
        assert_eq!(
            job.seqnos().count(),
            max,
            "{spec}: only the first chunk was accepted"
        );
        let o = job.wait(SEC).unwrap();
        assert!(matches!(o, JobOutcome::Faulted { .. }), "{spec}: {o:?}");
        out.wait(None, SEC, WaitFlags::default()).unwrap();
        assert_eq!(
            out.status(None).unwrap(),
            FenceStatus::Error(-libc::EIO),
            "{spec}"
        );
    }
}

#[test]
fn queue_destroyed_while_its_command_is_running() {
    // The clock stopped 10 us into a 2 MiB clear (32 us of GPU time): the command is really
    // running, half done. Destroying its queue kills it; its partial writes stay.
    let dev = sim("sim");
    let sim = dev.sim_control().unwrap().clone();
    let c = Context::new(&dev, 4 << 20).unwrap();
    let len = 2 << 20;
    let dst = c.alloc(len).unwrap();
    let mut cb = c.command_buffer();
    cb.render(c.clear_pass(dst, len, 0x0707_0707).unwrap())
        .unwrap();
    sim.hold();
    let job = c.queue.submit(&cb, &[], &[]).unwrap();
    sim.advance(10_000);
    assert_eq!(job.poll().unwrap(), None, "still running");
    let written = |c: &Context| {
        c.read(dst, len as usize)
            .unwrap()
            .iter()
            .filter(|&&b| b == 7)
            .count()
    };
    let partial = written(&c);
    assert!(
        partial > 0 && partial < len as usize,
        "{partial} of {len} bytes written"
    );
    let Context { queue, data, .. } = c;
    drop(queue);
    // The queue is gone; the job still reports, within its bound.
    let o = job.wait(SEC).unwrap();
    assert!(matches!(o, JobOutcome::Killed { .. }), "{o:?}");
    let mut after = vec![0u8; len as usize];
    data.bo.read(dst - data.va, &mut after).unwrap();
    assert_eq!(
        after.iter().filter(|&&b| b == 7).count(),
        partial,
        "partial writes stay"
    );
    sim.release();
    assert_eq!(sim.pending_commands(), 0);
}
