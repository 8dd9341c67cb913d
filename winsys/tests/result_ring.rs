//! The per-queue ring of result records: a slot is reused only when the GPU is done with its
//! command and its job has read its outcome (or is gone), and a submit never waits for either.

use std::time::Duration;

use agx_sim::config::UNMAPPED_VA;
use agx_sim::stream::StreamBuilder;
use agx_winsys::cmd::{CommandBuffer, ResultRecord};
use agx_winsys::kit::Context;
use agx_winsys::queue::RING_SLOTS;
use agx_winsys::*;

const SEC: Deadline = Deadline::After(Duration::from_secs(10));

fn sim(spec: &str) -> Device {
    Device::open(&DeviceSpec::parse(spec).unwrap()).unwrap()
}

fn clear(c: &Context, record: ResultRecord) -> CommandBuffer {
    let v = c.alloc(64).unwrap();
    let mut cb = c.command_buffer();
    cb.set_result_record(record);
    cb.render(c.clear_pass(v, 64, 0x0707_0707).unwrap())
        .unwrap();
    cb
}

/// A ring full of commands that cannot finish (the GPU clock is held, as a GPU busy with slow
/// work would be): further submits are accepted at once, from any thread, instead of waiting
/// (up to a minute, holding the queue's submit lock) for the oldest slot; their records go
/// elsewhere and their outcomes are exact, a guilty fault included.
#[test]
fn a_ring_full_of_slow_jobs_never_blocks_a_submit() {
    let dev = sim("sim");
    let ctl = dev.sim_control().unwrap().clone();
    let c = Context::new(&dev, 1 << 20).unwrap();
    let cb = clear(&c, ResultRecord::Fault);
    ctl.hold();
    let slow: Vec<Job> = (0..RING_SLOTS)
        .map(|_| c.queue.submit(&cb, &[], &[]).unwrap())
        .collect();
    // With the clock held nothing can complete: a submit that waited for a slot would time out
    // (or, without a bound, never return). Two threads submit at once.
    let (more, faulty) = std::thread::scope(|s| {
        let other = s.spawn(|| {
            (0..8)
                .map(|_| c.queue.submit(&cb, &[], &[]).unwrap())
                .collect::<Vec<_>>()
        });
        let mine: Vec<Job> = (0..8)
            .map(|_| c.queue.submit(&cb, &[], &[]).unwrap())
            .collect();
        let mut more = other.join().unwrap();
        more.extend(mine);
        let mut s = StreamBuilder::new();
        s.load(UNMAPPED_VA, 8);
        let d = c.render(&mut s, Default::default(), &[]).unwrap();
        let mut fcb = c.command_buffer();
        fcb.render(d).unwrap();
        (more, c.queue.submit(&fcb, &[], &[]).unwrap())
    });
    assert_eq!(ctl.pending_commands(), RING_SLOTS as usize + 17);
    ctl.release();
    for j in slow.iter().chain(&more) {
        assert_eq!(j.wait(SEC).unwrap(), JobOutcome::Complete);
    }
    match faulty.wait(SEC).unwrap() {
        JobOutcome::Faulted { fault, guilt } => {
            assert_eq!(guilt, Guilt::Guilty);
            assert_eq!(fault.address, Some(UNMAPPED_VA));
        }
        o => panic!("the faulting job after the full ring: {o:?}"),
    }
    assert_eq!(ctl.pending_commands(), 0);
}

/// A job whose outcome nobody has read yet keeps its records while the ring wraps around it
/// many times (status-only records included, which carry no sequence number to tell a reused
/// slot): its outcome is its own, not a later job's `Complete`.
#[test]
fn an_unread_outcome_survives_the_ring_wrapping() {
    for record in [ResultRecord::StatusOnly, ResultRecord::Fault] {
        let dev = sim("sim:policy=replay");
        let ctl = dev.sim_control().unwrap().clone();
        let victim = Context::new(&dev, 1 << 20).unwrap();
        let culprit = Context::new(&ctl.open_peer().unwrap(), 1 << 20).unwrap();
        // A restartable victim in flight when another file's job faults: replayed.
        let v = victim.alloc(4096).unwrap();
        let mut s = StreamBuilder::new();
        s.spin(30_000).fill(v, 4096, 0x0505_0505);
        let access = agx_winsys::analysis::RenderPass::new().color(
            agx_winsys::analysis::ColorAttachment::new(
                agx_winsys::analysis::Region::va(v, 4096),
                agx_winsys::analysis::LoadOp::Clear,
                agx_winsys::analysis::StoreOp::Store,
            ),
        );
        let mut vcb = victim.command_buffer();
        vcb.set_result_record(record);
        vcb.render(victim.render(&mut s, access, &[(v, 4096)]).unwrap())
            .unwrap();
        let mut cs = StreamBuilder::new();
        cs.spin(5_000).load(UNMAPPED_VA, 8);
        let mut ccb = culprit.command_buffer();
        ccb.render(culprit.render(&mut cs, Default::default(), &[]).unwrap())
            .unwrap();
        ctl.hold();
        let vj = victim.queue.submit(&vcb, &[], &[]).unwrap();
        let cj = culprit.queue.submit(&ccb, &[], &[]).unwrap();
        ctl.release();
        assert!(matches!(
            cj.wait(SEC).unwrap(),
            JobOutcome::Faulted {
                guilt: Guilt::Guilty,
                ..
            }
        ));
        // Wrap the ring twice with jobs that complete (and are read) before looking at vj.
        let cb = clear(&victim, record);
        for _ in 0..2 * RING_SLOTS + 3 {
            let j = victim.queue.submit(&cb, &[], &[]).unwrap();
            assert_eq!(j.wait(SEC).unwrap(), JobOutcome::Complete);
        }
        assert_eq!(
            vj.wait(SEC).unwrap(),
            JobOutcome::Replayed(1),
            "{record:?} records"
        );
        assert_eq!(victim.read(v, 4).unwrap(), vec![5; 4]);
    }
}

/// The same for the driver's own path (`Queue::submit_encoded`, Mesa's cmdbuf): with the ring
/// full of commands that cannot finish, driver submits are accepted at once, and the first
/// job's records are not overwritten by the submits that wrap around its slot: its outcome,
/// a guilty fault, is its own.
#[test]
fn a_full_ring_never_blocks_a_driver_submit() {
    let dev = sim("sim");
    let ctl = dev.sim_control().unwrap().clone();
    let c = Context::new(&dev, 1 << 20).unwrap();
    // The library's own encoding without job infos is exactly a driver-encoded cmdbuf.
    let driver = |cb: &CommandBuffer| {
        let mut bytes = Vec::new();
        cb.encode(0..1, &|_| None, &mut bytes);
        bytes
    };
    let clean = driver(&clear(&c, ResultRecord::Fault));
    let mut s = StreamBuilder::new();
    s.load(UNMAPPED_VA, 8);
    let mut fcb = c.command_buffer();
    fcb.render(c.render(&mut s, Default::default(), &[]).unwrap())
        .unwrap();
    let faulty = driver(&fcb);
    let submit = |bytes: &[u8]| {
        c.queue
            .submit_encoded(
                bytes,
                Some(1),
                &mut |_, _| Ok(analysis::Verdict::RESTARTABLE),
                &[],
                &[],
            )
            .unwrap()
    };
    ctl.hold();
    let bad = submit(&faulty);
    let rest: Vec<Job> = (0..RING_SLOTS + 8).map(|_| submit(&clean)).collect();
    assert_eq!(ctl.pending_commands(), RING_SLOTS as usize + 9);
    ctl.release();
    match bad.wait(SEC).unwrap() {
        JobOutcome::Faulted { fault, guilt } => {
            assert_eq!(guilt, Guilt::Guilty);
            assert_eq!(fault.address, Some(UNMAPPED_VA));
        }
        o => panic!("the faulting driver job, its slot wrapped over while unread: {o:?}"),
    }
    for j in &rest {
        // Behind the fault on the same queue: cancelled, whatever their records say.
        assert!(j.wait(SEC).is_ok());
    }
}
