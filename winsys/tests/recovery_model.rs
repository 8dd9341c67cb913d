//! The simulated firmware's recovery model (docs/recovery-model.md): the stop-the-world time
//! depends on what was running, the world is really stopped for that long, and under
//! `continue` a render loses what its tiles held.

use std::time::Duration;

use agx_sim::config::UNMAPPED_VA;
use agx_sim::stream::StreamBuilder;
use agx_sim::trace::EventKind;
use agx_winsys::analysis::{ColorAttachment, LoadOp, Region, RenderPass, StoreOp};
use agx_winsys::kit::Context;
use agx_winsys::sim::SimControl;
use agx_winsys::*;

const SEC: Deadline = Deadline::After(Duration::from_secs(10));

fn sim(spec: &str) -> Device {
    Device::open(&DeviceSpec::parse(spec).unwrap()).unwrap()
}

/// A culprit on its own file that faults after `after_ns`.
fn culprit(
    ctl: &std::sync::Arc<dyn SimControl>,
    after_ns: u64,
) -> (Context, agx_winsys::cmd::CommandBuffer) {
    let c = Context::new(&ctl.open_peer().unwrap(), 1 << 20).unwrap();
    let mut s = StreamBuilder::new();
    s.spin(after_ns).load(UNMAPPED_VA, 8);
    let d = c.render(&mut s, RenderPass::new(), &[]).unwrap();
    let mut cb = c.command_buffer();
    cb.render(d).unwrap();
    (c, cb)
}

/// A long compute spin on its own file (a bystander that is running when the fault hits).
fn bystander(ctl: &std::sync::Arc<dyn SimControl>) -> (Context, agx_winsys::cmd::CommandBuffer) {
    let c = Context::new(&ctl.open_peer().unwrap(), 1 << 20).unwrap();
    let mut s = StreamBuilder::new();
    s.spin(100_000);
    let d = c
        .compute(&mut s, Some(agx_winsys::analysis::ComputeCommand::new()))
        .unwrap();
    let mut cb = c.command_buffer();
    cb.compute(d).unwrap();
    (c, cb)
}

/// The (start, end) of each stop-the-world cycle in the trace.
fn cycles(ctl: &std::sync::Arc<dyn SimControl>) -> Vec<(u64, u64)> {
    let ev = ctl.trace_events();
    let starts = ev.iter().filter(|e| e.kind == EventKind::RecoveryStart);
    let ends = ev.iter().filter(|e| e.kind == EventKind::RecoveryEnd);
    starts.zip(ends).map(|(s, e)| (s.ts_ns, e.ts_ns)).collect()
}

#[test]
fn stop_the_world_time_grows_with_the_commands_it_stops() {
    let mut took = Vec::new();
    for running in [0usize, 1, 3] {
        let dev = sim("sim:policy=replay");
        let ctl = dev.sim_control().unwrap().clone();
        let cfg = ctl.config();
        let (c, ccb) = culprit(&ctl, 5_000);
        let others: Vec<_> = (0..running).map(|_| bystander(&ctl)).collect();
        ctl.hold();
        let cj = c.queue.submit(&ccb, &[], &[]).unwrap();
        let jobs: Vec<Job> = others
            .iter()
            .map(|(o, cb)| o.queue.submit(cb, &[], &[]).unwrap())
            .collect();
        ctl.release();
        cj.wait(SEC).unwrap();
        for j in &jobs {
            assert_eq!(j.wait(SEC).unwrap(), JobOutcome::Replayed(1));
        }
        let cyc = cycles(&ctl);
        assert_eq!(cyc.len(), 1);
        let (s, e) = cyc[0];
        // Culprit + bystanders were running.
        assert_eq!(e - s, cfg.stop_the_world_ns(1 + running as u64));
        assert_eq!(ctl.stats().recovery_ns, e - s);
        took.push(e - s);
    }
    assert!(took[0] < took[1] && took[1] < took[2], "{took:?}");
}

/// Inside the stop-the-world window nothing runs: a command submitted (or replayed) then only
/// starts when the window ends.
#[test]
fn nothing_runs_while_the_world_is_stopped() {
    let dev = sim("sim:policy=replay");
    let ctl = dev.sim_control().unwrap().clone();
    let (c, ccb) = culprit(&ctl, 5_000);
    let (b, bcb) = bystander(&ctl);
    ctl.hold();
    let cj = c.queue.submit(&ccb, &[], &[]).unwrap();
    let bj = b.queue.submit(&bcb, &[], &[]).unwrap();
    // Past the fault, into the window.
    ctl.advance(20_000);
    assert!(
        cj.poll().unwrap().is_some(),
        "the culprit ended at its fault"
    );
    let t = ctl.now_ns();
    let stw = ctl.config().stop_the_world_ns(2);
    assert!(t < 5_000 + stw, "still inside the window at {t}");
    // A new command on another file does not start before the window ends.
    let x = Context::new(&ctl.open_peer().unwrap(), 1 << 20).unwrap();
    let v = x.alloc(64).unwrap();
    let mut xcb = x.command_buffer();
    xcb.render(x.clear_pass(v, 64, 0x0909_0909).unwrap())
        .unwrap();
    let xj = x.queue.submit(&xcb, &[], &[]).unwrap();
    ctl.advance(10_000);
    assert_eq!(xj.poll().unwrap(), None);
    assert_eq!(x.read(v, 4).unwrap(), vec![0; 4]);
    ctl.release();
    assert_eq!(xj.wait(SEC).unwrap(), JobOutcome::Complete);
    assert_eq!(bj.wait(SEC).unwrap(), JobOutcome::Replayed(1));
    let start = ctl
        .trace_events()
        .iter()
        .filter(|e| e.kind == EventKind::Start)
        .map(|e| e.ts_ns)
        .max()
        .unwrap();
    assert!(start >= 5_000 + stw, "{start}");
}

/// `continue`: a render stopped by a reset loses what its tiles held: every byte of its render
/// targets it had written reads as zero afterwards, bytes it had not reached keep their old
/// content, and it goes on after the interrupted op. A compute command loses only the rest of
/// the op it was in.
#[test]
fn continue_loses_a_renders_tiles() {
    let len: u64 = 2 << 20;
    for render in [true, false] {
        let dev = sim("sim:policy=continue");
        let ctl = dev.sim_control().unwrap().clone();
        let v = Context::new(&dev, 8 << 20).unwrap();
        let (dst, marker) = (v.alloc(len).unwrap(), v.alloc(8).unwrap());
        v.write(dst, &vec![0xee; len as usize]).unwrap();
        // 32 us of fill (64 bytes/ns), then a store after it.
        let mut s = StreamBuilder::new();
        s.fill(dst, len, 0x1111_1111).store(marker, 7);
        let mut cb = v.command_buffer();
        if render {
            let pass = RenderPass::new().color(ColorAttachment::new(
                Region::va(dst, len),
                LoadOp::Clear,
                StoreOp::Store,
            ));
            cb.render(v.render(&mut s, pass, &[(dst, len)]).unwrap())
                .unwrap();
        } else {
            cb.compute(v.compute(&mut s, None).unwrap()).unwrap();
        }
        let (c, ccb) = culprit(&ctl, 12_000);
        ctl.hold();
        let vj = v.queue.submit(&cb, &[], &[]).unwrap();
        let cj = c.queue.submit(&ccb, &[], &[]).unwrap();
        ctl.release();
        cj.wait(SEC).unwrap();
        assert_eq!(vj.wait(SEC).unwrap(), JobOutcome::Complete, "told nothing");
        let got = v.read(dst, len as usize).unwrap();
        let done = got.iter().position(|&b| b == 0xee).unwrap();
        assert!(
            done > 0 && done < len as usize,
            "stopped mid-fill at {done}"
        );
        let want = if render { 0 } else { 0x11 };
        assert!(got[..done].iter().all(|&b| b == want), "render={render}");
        assert!(got[done..].iter().all(|&b| b == 0xee), "never reached");
        assert_eq!(v.read(marker, 8).unwrap(), 7u64.to_le_bytes(), "went on");
    }
}
