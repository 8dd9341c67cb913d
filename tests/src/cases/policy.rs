//! `agx.policy.*`: the same collision under each recovery policy.

use agx_winsys::{Guilt, JobOutcome};

use super::*;
use crate::{check, check_eq};

pub fn cases() -> Vec<Case> {
    crate::cases![
        "agx.policy.kill_inflight_restartable" => kill_inflight_restartable,
        "agx.policy.replay_restartable" => replay_restartable,
        "agx.policy.continue_restartable" => continue_restartable,
        "agx.policy.kill_inflight_nonrestartable" => kill_inflight_nonrestartable,
        "agx.policy.replay_nonrestartable" => replay_nonrestartable,
        "agx.policy.continue_nonrestartable" => continue_nonrestartable,
        "agx.policy.replay_limit_zero" => replay_limit_zero,
        "agx.policy.culprit_guilty_under_all" => culprit_guilty_under_all,
        "agx.policy.params_report_policy" => params_report_policy,
        "agx.policy.recovery_time_counted" => recovery_time_counted,
    ]
}

fn killed_innocent(o: &JobOutcome) -> bool {
    matches!(
        o,
        JobOutcome::Killed {
            guilt: Guilt::Innocent,
            ..
        }
    )
}

fn kill_inflight_restartable(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(
        cx,
        "sim:policy=kill-inflight",
        Victim::Draw,
        Fault::UnmappedRead,
    )?;
    let o = wait(&c.vj)?;
    check!(
        killed_innocent(&o),
        "kill-inflight kills restartable work too: {o:?}"
    );
    check!(c.victim.queue.state()?.banned, "victim queue banned");
    cx.finish()
}

fn replay_restartable(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(cx, "sim:policy=replay", Victim::Draw, Fault::UnmappedRead)?;
    check_eq!(wait(&c.vj)?, JobOutcome::Replayed(1), "victim");
    check_eq!(
        c.victim.read(c.dst, c.expected.len())?,
        c.expected,
        "replayed memory"
    );
    cx.finish()
}

/// `continue` tells the victim nothing and leaves its memory wrong: the silent corruption this
/// policy exists to measure. The case passes when that corruption is observed.
fn continue_silently_corrupts(cx: &mut CaseCtx, v: Victim) -> CaseResult {
    cx.allow_silent_corruption();
    let c = collide(cx, "sim:policy=continue", v, Fault::UnmappedRead)?;
    check_eq!(
        wait(&c.vj)?,
        JobOutcome::Complete,
        "continue reports nothing"
    );
    let got = c.victim.read(c.dst, c.expected.len())?;
    check!(
        first_diff(&got, &c.expected).is_some(),
        "expected silent corruption under continue"
    );
    check!(!c.victim.queue.state()?.banned, "victim not banned");
    cx.finish()
}

fn continue_restartable(cx: &mut CaseCtx) -> CaseResult {
    continue_silently_corrupts(cx, Victim::Draw)
}

fn continue_nonrestartable(cx: &mut CaseCtx) -> CaseResult {
    continue_silently_corrupts(cx, Victim::Blend)
}

fn kill_inflight_nonrestartable(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(
        cx,
        "sim:policy=kill-inflight",
        Victim::Blend,
        Fault::UnmappedRead,
    )?;
    check!(killed_innocent(&wait(&c.vj)?), "victim");
    cx.finish()
}

fn replay_nonrestartable(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(cx, "sim:policy=replay", Victim::Blend, Fault::UnmappedRead)?;
    check!(
        killed_innocent(&wait(&c.vj)?),
        "replay never re-runs non-restartable work"
    );
    cx.finish()
}

fn replay_limit_zero(cx: &mut CaseCtx) -> CaseResult {
    let c = collide(
        cx,
        "sim:policy=replay,replay-limit=0",
        Victim::Draw,
        Fault::UnmappedRead,
    )?;
    check!(killed_innocent(&wait(&c.vj)?), "limit 0 = kill-inflight");
    cx.finish()
}

fn culprit_guilty_under_all(cx: &mut CaseCtx) -> CaseResult {
    for p in ["kill-inflight", "replay", "continue"] {
        for f in [Fault::UnmappedRead, Fault::ReadonlyWrite, Fault::Injected] {
            let mut sub = CaseCtx::new(None);
            sub.allow_silent_corruption();
            let c = collide(&mut sub, &format!("sim:policy={p}"), Victim::Copy, f)?;
            let o = wait(&c.cj)?;
            check!(is_guilty_of(&o, f), "{p}/{f:?}: culprit {o:?}");
            check_eq!(
                c.culprit.queue.state()?.guilt,
                Some(Guilt::Guilty),
                "{p}/{f:?}: culprit queue"
            );
            sub.finish()?;
        }
    }
    cx.finish()
}

fn params_report_policy(cx: &mut CaseCtx) -> CaseResult {
    use agx_winsys::params::RecoveryPolicy as P;
    for (spec, name, replay) in [
        ("sim:policy=kill-inflight", P::KillInflight, false),
        ("sim:policy=replay,replay-limit=5", P::Replay, true),
        ("sim:policy=continue", P::Continue, false),
    ] {
        let dev = cx.sim(spec)?;
        let e = dev
            .fault_ext()
            .ok_or_else(|| CaseError::Fail("no fault extension".into()))?;
        check_eq!(e.policy, name, "{spec}: policy");
        check_eq!(e.replay, replay, "{spec}: REPLAY feature");
        check!(
            e.version == 1 && e.results && e.queue_state,
            "{spec}: {e:?}"
        );
        if replay {
            check_eq!(e.replay_limit, 5, "replay limit");
        }
    }
    cx.finish()
}

/// The recovery time the simulator counts is the GPU time the recovery really took: from the
/// fault until the replayed victim has finished again, as its trace shows; it is the
/// stop-the-world window plus the victim's whole re-run (as long as a fault-free run of it), so
/// a victim with more work gives a longer recovery by exactly that work.
fn recovery_time_counted(cx: &mut CaseCtx) -> CaseResult {
    let mut measured = Vec::new();
    for len in [512u64 << 10, 2 << 20] {
        // The victim alone, fault-free: how long its work takes.
        let dev = cx.sim("sim:policy=replay")?;
        let v = cx.ctx_sized(&dev, "clean", Role::Innocent, 8 << 20)?;
        let (dst, src) = (v.alloc(len)?, v.alloc(len)?);
        let mut cb = v.command_buffer();
        cb.render(v.draw_pass(dst, src, len)?)?;
        let t0 = dev.gpu_time_ns()?;
        check_eq!(
            wait(&cx.submit(&v, &cb, &[], &[])?)?,
            JobOutcome::Complete,
            "clean run"
        );
        let clean = dev.gpu_time_ns()? - t0;

        // The same work as the victim of a fault 5 us in.
        let dev = cx.sim("sim:policy=replay")?;
        let sim = dev.sim_control().expect("sim").clone();
        let v = cx.ctx_sized(&dev, "victim", Role::Innocent, 8 << 20)?;
        let culprit = cx.ctx(&cx.file(&dev)?, "culprit", Role::Culprit)?;
        let (dst, src) = (v.alloc(len)?, v.alloc(len)?);
        let mut cb = v.command_buffer();
        cb.render(v.draw_pass(dst, src, len)?)?;
        sim.hold();
        let vj = cx.submit(&v, &cb, &[], &[])?;
        let cj = culprit_job(cx, &culprit, Fault::UnmappedRead, 5_000)?;
        sim.release();
        check!(is_guilty_of(&wait(&cj)?, Fault::UnmappedRead), "culprit");
        check_eq!(wait(&vj)?, JobOutcome::Replayed(1), "victim");
        let s = sim.stats();
        check!(s.recoveries == 1 && s.recoveries_closed == 1, "{s:?}");
        let ev = sim.trace_events();
        let at = |kind: &str| ev.iter().find(|e| e.kind.name() == kind).map(|e| e.ts_ns);
        let (Some(fault), Some(restart)) = (at("recovery_start"), at("recovery_end")) else {
            return fail("no recovery window in the trace");
        };
        // The victim's last event: its retirement after the replay.
        let back = ev
            .iter()
            .filter(|e| e.kind.name() == "retire")
            .map(|e| e.ts_ns)
            .max()
            .unwrap_or(0);
        check_eq!(s.recovery_ns, restart - fault, "stop-the-world window");
        check_eq!(
            s.recovery_span_ns,
            back - fault,
            "span from fault to victim back"
        );
        check!(
            s.recovery_span_ns.abs_diff(s.recovery_ns + clean) <= 100,
            "span {} = window {} + a whole clean run {clean}",
            s.recovery_span_ns,
            s.recovery_ns
        );
        measured.push((clean, s.recovery_span_ns));
    }
    let (small, big) = (measured[0], measured[1]);
    check!(
        (big.1 - small.1).abs_diff(big.0 - small.0) <= 200,
        "more victim work, a longer recovery by that work: {measured:?}"
    );
    cx.finish()
}
