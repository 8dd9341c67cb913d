//! Restartability soundness against the simulator (issue "Restartability"): a short random
//! campaign in which no command the analysis calls restartable may leave memory different from
//! a fault-free run when replayed after an innocent interruption, and the explicit aliasing
//! check. The full campaign is `agx-fault-suite soundness --commands 10000`.

#[path = "../src/rng.rs"]
#[allow(dead_code)]
mod rng;
#[path = "../src/soundness/mod.rs"]
#[allow(dead_code)]
mod soundness;

use soundness::{aliasing_check, aliasing_ok, campaign, generate, Rig};

#[test]
fn short_campaign_finds_no_unsound_verdict() {
    let s = campaign(300, 1, false).unwrap();
    assert_eq!(s.mismatches, 0, "{}", s.failures.join("\n"));
    assert_eq!(s.outcome_errors, 0, "{}", s.failures.join("\n"));
    assert_eq!(s.commands, 300);
    // The campaign exercises what it must: restartable commands replayed, some from inside a
    // memory op (partial writes), non-restartable ones killed innocent, and the cost model the
    // interruption points are aimed with matches the simulator.
    assert!(s.restartable >= 50, "{s:?}");
    assert!(s.replayed >= 300, "{s:?}");
    assert!(s.mid_op >= 100, "{s:?}");
    assert!(s.killed_innocent >= 50, "{s:?}");
    assert!(s.replayed_twice >= 30, "{s:?}");
    assert_eq!(s.cost_model_misses, 0);
    assert_eq!(s.reference_disagreements, 0, "{}", s.failures.join("\n"));
    assert!(s.restartable_idempotent == s.restartable, "{s:?}");
    assert!(s.precision() > 0.0 && s.precision() <= 100.0);
}

#[test]
fn aliasing_attachments_are_caught_and_would_corrupt() {
    let mut rig = Rig::new().unwrap();
    let reports = aliasing_check(&mut rig).unwrap();
    assert_eq!(reports.len(), 3);
    for r in &reports {
        assert!(aliasing_ok(r), "{r:?}");
    }
    // The two aliased cases: not restartable, replaying them anyway corrupts memory, and the
    // real submission is killed innocent instead of replayed.
    for r in &reports[..2] {
        assert!(r.corrupting_points > 0 && r.killed_innocent, "{r:?}");
    }
    assert!(reports[2].reasons.is_empty() && reports[2].corrupting_points == 0);
}

#[test]
fn generation_is_reproducible_from_the_seed() {
    for seed in [0, 1, 17, u64::MAX] {
        let (a, b) = (generate(seed), generate(seed));
        assert_eq!(a.ops, b.ops);
        assert_eq!(format!("{:?}", a.spec), format!("{:?}", b.spec));
    }
    assert_ne!(generate(1).ops, generate(2).ops);
}

#[test]
fn cli_prints_the_figures() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_agx-fault-suite"))
        .args(["soundness", "--commands", "20", "--seed", "5"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.lines().any(|l| l == "mismatches: 0"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("precision: ")), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("check aliasing-same-memory:") && l.ends_with(": ok")),
        "{text}"
    );
}
