//! Randomized fault campaigns.
//!
//! A scenario (fully determined by `--seed` and its index) is a small random workload on one
//! simulated GPU: 2-4 contexts, each its own DRM file, VM and queue, submitting render and
//! compute commands (restartable and not) that read and write the context's buffers, some
//! gated on other contexts' jobs through sync objects (exported and imported as sync_files);
//! submitted in one or two waves with the GPU clock held so work overlaps. Into that go random
//! faults at random times: unmapped reads and writes, writes to read-only memory, hangs,
//! injected faults and hangs after a random GPU time, and now and then a firmware crash.
//!
//! After the run the invariants are checked:
//!
//! 1. every accepted job's fence signalled and every wait returned within its bound; nothing
//!    is left pending on the device;
//! 2. no silent corruption: a context told nothing (every job `Complete`/`Replayed`) has
//!    exactly the memory of a fault-free run of the same workload on a fresh device;
//! 3. guilt is right: a context whose fault fired is told guilty (and its queue says so); no
//!    context without a fault is told guilty; a fault is never lost (its job never
//!    "succeeds");
//! 4. under `replay`, no restartable work was lost: a restartable job in flight during a
//!    recovery is replayed, not killed, unless the replay limit was reached.
//!
//! A failing scenario is shrunk (contexts, jobs, commands dropped greedily while the same
//! invariant still fails) and printed with a one-line command that reproduces it.

mod check;
mod execute;
mod scenario;

#[cfg(feature = "mutants")]
pub use check::Violation;
use check::*;
use execute::*;
use scenario::*;

use crate::rng::Rng;
use std::collections::BTreeMap;
use std::fmt;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use agx_sim::stream::{RmwFn, StreamBuilder};
use agx_sim::RecoveryPolicy;
use agx_winsys::analysis::{
    ColorAttachment, ComputeCommand, Dispatch, LoadOp, Region, RenderPass, ShaderAccessKind,
    StoreOp,
};
use agx_winsys::cmd::CommandBuffer;
use agx_winsys::kit::Context;
use agx_winsys::sim::Injection;
use agx_winsys::{
    Deadline, Device, DeviceSpec, FenceStatus, Guilt, JobOutcome, SyncObj, SyncPoint,
};

use crate::CampaignOpts;

/// Replay limit of campaign devices.
const REPLAY_LIMIT: u32 = 3;
/// Watchdog of campaign devices: far above any legitimate command plus a few recoveries.
const HANG_TIMEOUT_MS: u64 = 5;
/// Bound of every wait.
const BOUND: Duration = Duration::from_secs(10);
/// Buffers per context.
const BUFFERS: usize = 4;
/// An address no VM maps.
use agx_sim::config::UNMAPPED_VA as HOLE;

/// The seed of scenario `index` of campaign `seed`.
fn scenario_seed(seed: u64, index: u64) -> u64 {
    let mut r = Rng::new(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
    r.next_u64()
}

// ----- driving -----

struct Outcome {
    tally: Tally,
    /// Failing scenarios: (index, violations).
    failures: Vec<(u64, Vec<Violation>)>,
    elapsed: Duration,
}

fn run_many(seed: u64, first: u64, count: u64, policy: RecoveryPolicy, bar: bool) -> Outcome {
    let t0 = Instant::now();
    let next = AtomicU64::new(0);
    let tally = Mutex::new(Tally::default());
    let failures = Mutex::new(Vec::new());
    let pb = (bar && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(count);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} scenarios ({per_sec}, eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads.min(count.max(1) as usize) {
            s.spawn(|| {
                let mut local = Tally::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let index = first + i;
                    let sc = Scenario::generate(seed, index);
                    let (v, t) = check(&sc, policy);
                    local.add(&t);
                    if !v.is_empty() {
                        failures
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((index, v));
                        if let Some(pb) = &pb {
                            pb.set_message(format!("{} failing", local.failed_scenarios));
                        }
                    }
                    if let Some(pb) = &pb {
                        pb.inc(1);
                    }
                }
                tally.lock().unwrap_or_else(|e| e.into_inner()).add(&local);
            });
        }
    });
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort_by_key(|(i, _)| *i);
    Outcome {
        tally: tally.into_inner().unwrap_or_else(|e| e.into_inner()),
        failures,
        elapsed: t0.elapsed(),
    }
}

/// The first failing scenario of campaign `seed` under `policy` among scenarios
/// `0..limit` (run in parallel batches, so the lowest failing index is found): its index and
/// first violation, and how many scenarios were checked.
#[cfg(feature = "mutants")]
pub fn first_violation(
    seed: u64,
    limit: u64,
    policy: RecoveryPolicy,
) -> (Option<(u64, Violation)>, u64) {
    const BATCH: u64 = 64;
    let mut first = 0;
    while first < limit {
        let n = BATCH.min(limit - first);
        let out = run_many(seed, first, n, policy, false);
        if let Some((i, v)) = out.failures.into_iter().next() {
            let v = v.into_iter().next().expect("a failure has a violation");
            return (Some((i, v)), i + 1);
        }
        first += n;
    }
    (None, limit)
}

fn pct(a: u64, b: u64) -> String {
    if b == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * a as f64 / b as f64)
    }
}

/// Mean GPU time from a fault until the stopped innocent work that goes on is back (replayed
/// victims finished again, continued ones resumed); "-" when no stopped innocent work went on
/// (all of it killed).
fn mean_back_us(t: &Tally) -> String {
    if t.recoveries_closed == 0 {
        "-".into()
    } else {
        format!(
            "{:.1}",
            t.recovery_span_ns as f64 / t.recoveries_closed as f64 / 1000.0
        )
    }
}

/// Mean modelled stop-the-world time per recovery.
fn mean_stw_us(t: &Tally) -> String {
    if t.recoveries == 0 {
        "-".into()
    } else {
        format!("{:.1}", t.stw_ns as f64 / t.recoveries as f64 / 1000.0)
    }
}

fn ms(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1e6)
}

/// The stop-the-world model constants of campaign devices: (reset ns, per-command ns).
fn stw_model() -> (u64, u64) {
    let c = agx_sim::SimConfig::default();
    STW_MODEL_US
        .get()
        .map(|&(r, p)| (r * 1000, p * 1000))
        .unwrap_or((c.stw_reset_ns, c.stw_per_command_ns))
}

pub const INVARIANTS: [&str; 5] = [
    "scenario ran",
    "fences signalled, waits bounded",
    "no silent corruption",
    "guilt right",
    "no restartable work lost (replay)",
];

pub fn campaign(o: &CampaignOpts) -> u8 {
    let Some(policy) = RecoveryPolicy::from_name(&o.policy) else {
        eprintln!(
            "agx-fault-suite: unknown policy {:?} (kill-inflight, replay, continue)",
            o.policy
        );
        return 2;
    };
    let first = o.scenario.unwrap_or(0);
    let count = o.iterations;
    if o.scenario.is_some() && count == 1 {
        println!("{}", Scenario::generate(o.seed, first));
    }
    let out = run_many(o.seed, first, count, policy, true);
    let t = &out.tally;
    let per_min = t.scenarios as f64 / out.elapsed.as_secs_f64().max(1e-9) * 60.0;
    println!(
        "campaign: seed {}, policy {}, {} scenario(s) in {:.1} s ({:.0} scenarios/min)",
        o.seed,
        policy.name(),
        t.scenarios,
        out.elapsed.as_secs_f64(),
        per_min
    );
    let rows: Vec<(&str, String)> = vec![
        ("scenarios", t.scenarios.to_string()),
        ("contexts", t.contexts.to_string()),
        ("jobs accepted", t.accepted.to_string()),
        (
            "fences signalled",
            format!("{}/{}", t.signalled, t.accepted),
        ),
        ("faults (guilty jobs)", t.faults.to_string()),
        ("firmware crashes", t.crashes.to_string()),
        ("recoveries", t.recoveries.to_string()),
        ("replays", t.replays.to_string()),
        ("contexts reset guilty", t.ctx_guilty.to_string()),
        ("contexts reset innocent", t.ctx_innocent_reset.to_string()),
        (
            "innocent contexts untouched",
            format!(
                "{}/{} ({})",
                t.innocent_survived,
                t.innocent_contexts,
                pct(t.innocent_survived, t.innocent_contexts)
            ),
        ),
        ("stop-the-world (model, mean us)", mean_stw_us(t)),
        ("stopped innocent work back (us)", mean_back_us(t)),
        (
            "innocent work redone/lost (ms)",
            format!("{} / {}", ms(t.innocent_redone_ns), ms(t.innocent_lost_ns)),
        ),
        ("invariant violations", t.violation_total().to_string()),
    ];
    for (k, v) in rows {
        println!("  {k:<30} {v}");
    }
    for (i, name) in INVARIANTS.iter().enumerate() {
        if i == 0 && t.violations[0] == 0 {
            continue;
        }
        println!("    {}. {name:<34} {}", i, t.violations[i]);
    }
    if out.failures.is_empty() {
        return 0;
    }
    println!(
        "{} failing scenario(s){}:",
        out.failures.len(),
        if policy == RecoveryPolicy::Continue {
            " (expected under continue: it silently corrupts)"
        } else {
            ""
        }
    );
    for (index, v) in out.failures.iter().take(5) {
        println!(
            "  agx-fault-suite campaign --seed {} --iterations 1 --scenario {index} --policy {}",
            o.seed,
            policy.name()
        );
        for x in v.iter().take(3) {
            println!("      invariant {}: {}", x.invariant, x.what);
        }
    }
    if out.failures.len() > 5 {
        println!("  ... and {} more", out.failures.len() - 5);
    }
    let (index, v) = &out.failures[0];
    let sc = Scenario::generate(o.seed, *index);
    let small = shrink(&sc, policy, v[0].invariant);
    println!(
        "shrunk (invariant {} still fails; reproduce with the first command above):",
        v[0].invariant
    );
    println!("{small}");
    1
}

pub fn compare_policies(iterations: u64, seed: u64, stw_us: Option<(u64, u64)>) -> u8 {
    if let Some(m) = stw_us {
        let _ = STW_MODEL_US.set(m);
    }
    println!("compare-policies: the same {iterations} scenario(s) (seed {seed}) under each policy");
    let mut rows = Vec::new();
    for p in RecoveryPolicy::ALL {
        let out = run_many(seed, 0, iterations, p, true);
        rows.push((p, out));
    }
    println!();
    println!(
        "| policy | innocent contexts told nothing, memory right | told nothing, memory wrong (silent corruption) | told (reset) | fences signalled | stop-the-world per recovery (model, µs) | stopped innocent work back after (GPU µs) | innocent GPU work redone / lost (ms) | replays | invariant violations |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (p, out) in &rows {
        let t = &out.tally;
        let right = t.innocent_survived - t.innocent_corrupted;
        let n = t.innocent_contexts;
        println!(
            "| {} | {} ({right}/{n}) | {} ({}) | {} ({}) | {}/{} | {} | {} | {} / {} | {} | {} |",
            p.name(),
            pct(right, n),
            pct(t.innocent_corrupted, n),
            t.innocent_corrupted,
            pct(n - t.innocent_survived, n),
            n - t.innocent_survived,
            t.signalled,
            t.accepted,
            mean_stw_us(t),
            mean_back_us(t),
            ms(t.innocent_redone_ns),
            ms(t.innocent_lost_ns),
            t.replays,
            t.violation_total()
        );
    }
    println!();
    let c = stw_model();
    println!(
        "Innocent contexts: contexts without a fault of their own; told nothing: every job \
         complete or invisibly replayed; memory right/wrong: compared with a fault-free run of \
         the same workload. Stop-the-world: the model's cost, {} us + {} us per running command \
         (assumptions, docs/recovery-model.md). Back after: GPU time from the fault until the \
         stopped innocent work that goes on is back (replayed victims finished again, continued \
         ones resumed; '-' when all of it was killed). Redone / lost: GPU time of innocent work \
         thrown away by replays (done again) and by kills (gone; their queued work, cancelled, \
         not counted), measured by the simulator under the model.",
        c.0 / 1000,
        c.1 / 1000
    );
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_determine_scenarios() {
        let a = Scenario::generate(7, 42);
        let b = Scenario::generate(7, 42);
        assert_eq!(a.to_string(), b.to_string());
        assert_ne!(a.to_string(), Scenario::generate(7, 43).to_string());
        assert_ne!(a.to_string(), Scenario::generate(8, 42).to_string());
    }

    #[test]
    fn scenarios_are_well_formed() {
        for i in 0..500 {
            let s = Scenario::generate(1, i);
            let n: usize = s.ctxs.iter().map(|c| c.jobs.len()).sum();
            assert_eq!(s.order.len(), n);
            for (k, &(c, j)) in s.order.iter().enumerate() {
                if let Some(w) = s.ctxs[c].jobs[j].wait_on {
                    assert!(s.order[..k].contains(&w), "waits on a later job");
                }
            }
        }
    }

    /// The campaign's verdicts come from the real analysis of each op's description: the
    /// idempotent ops are restartable, the others (which the mutation check relies on) are not.
    #[test]
    fn op_verdicts_come_from_the_analysis() {
        let dev = Device::open(&DeviceSpec::parse("sim").unwrap()).unwrap();
        let len = 16 << 10;
        let ctx = Context::new(&dev, len * BUFFERS as u64).unwrap();
        let bufs: Vec<u64> = (0..BUFFERS).map(|_| ctx.alloc(len).unwrap()).collect();
        let ops = [
            (Op::Clear, true),
            (Op::Draw, true),
            (Op::Copy, true),
            (Op::Blend, false),
            (Op::Accumulate, false),
            (Op::Count, false),
            (Op::Shift, false),
            (Op::Transform, false),
            (Op::Bindless, false),
        ];
        for (op, restartable) in ops {
            let cmd = Cmd {
                op,
                dst: 2,
                src: 0,
                pattern: 7,
                spin_ns: 1_000,
            };
            let mut cb = ctx.command_buffer();
            build_cmd(&ctx, &bufs, len, &cmd, None, &mut cb).unwrap();
            let v = cb.commands()[0].verdict();
            assert_eq!(v.restartable(), restartable, "{op:?}: {v}");
        }
    }

    #[test]
    fn shrinking_helpers_keep_indices_valid() {
        let s = Scenario::generate(3, 9);
        let t = s.without_ctx(0).without_job(0, 0);
        for &(c, j) in &t.order {
            assert!(j < t.ctxs[c].jobs.len());
        }
    }
}
