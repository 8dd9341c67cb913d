//! The campaign: each command checked fault-free, interrupted and replayed; the figures.

use super::*;

/// Figures of a campaign.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub commands: u64,
    pub render: u64,
    pub compute: u64,
    /// Commands whose accesses are all declared.
    pub declared: u64,
    /// The analysis said restartable (the description's verdict).
    pub restartable: u64,
    /// The stream's exact access list is restartable.
    pub exact_restartable: u64,
    pub idempotent: u64,
    /// Idempotent judged on the first [`POINTS`] points only.
    pub idempotent_base: u64,
    pub restartable_idempotent_base: u64,
    pub restartable_idempotent: u64,
    pub exact_idempotent: u64,
    pub declared_idempotent: u64,
    pub declared_restartable_idempotent: u64,
    /// Restartable (by either verdict) but a replay or a second run changed memory.
    pub mismatches: u64,
    /// Of those, commands whose description's verdict (the one the winsys submits) said
    /// restartable.
    pub declared_mismatches: u64,
    /// Unexpected outcomes (a restartable victim not replayed, a non-restartable one not
    /// killed innocent, the winsys verdict differing from the description's).
    pub outcome_errors: u64,
    /// Description restartable but exact list not (value-level knowledge in the description,
    /// e.g. read-only depth written back bit for bit).
    pub declared_only: u64,
    pub reasons: BTreeMap<&'static str, u64>,
    /// Idempotent but not restartable, by where the precision goes.
    pub gap_unknown: u64,
    pub gap_spills: u64,
    pub gap_description: u64,
    pub gap_value: u64,
    /// The value-level gap by the most likely cause (see [`value_gap_kind`]).
    pub value_gap_kinds: BTreeMap<&'static str, u64>,
    pub runs: u64,
    pub interrupted: u64,
    pub mid_op: u64,
    /// Aimed interruptions that did not land inside a memory op.
    pub aim_missed: u64,
    /// Commands whose exact access list [`analyse`] judges unlike the byte-level reference.
    pub reference_disagreements: u64,
    /// Fault-free runs whose GPU time differs from the cost model's (should be 0).
    pub cost_model_misses: u64,
    pub replayed: u64,
    /// Victims stopped twice (in their first run and in their replay), then replayed again.
    pub replayed_twice: u64,
    pub killed_innocent: u64,
    pub traffic: u64,
    pub gpu_ns: u64,
    pub failures: Vec<String>,
}

impl Summary {
    pub(super) fn pct(a: u64, b: u64) -> f64 {
        if b == 0 {
            100.0
        } else {
            100.0 * a as f64 / b as f64
        }
    }

    /// Restartable & idempotent over idempotent.
    pub fn precision(&self) -> f64 {
        Self::pct(self.restartable_idempotent, self.idempotent)
    }

    pub fn precision_declared(&self) -> f64 {
        Self::pct(
            self.declared_restartable_idempotent,
            self.declared_idempotent,
        )
    }

    pub fn precision_exact(&self) -> f64 {
        Self::pct(self.exact_idempotent, self.idempotent)
    }
}

/// Why a command that is idempotent in fact is not restartable even on its exact access list:
/// a value-level fact no range-based analysis sees. A heuristic tag (the first that applies).
pub(super) fn value_gap_kind(b: &Built) -> &'static str {
    if let Spec::Render(r) = &b.spec {
        let writes_back = r.atts.iter().any(|a| {
            a.load == LoadOp::Load
                && !a.read_only
                && (a.store == StoreOp::Store || r.spill_happens)
                && (!a.blend || a.draws == 0)
        });
        if writes_back {
            // The tile's loaded bytes go back unchanged, or are overwritten by draws whose data
            // does not depend on them.
            return "loaded bytes written back unchanged";
        }
    }
    let max = b
        .ops
        .iter()
        .any(|o| matches!(o, MOp::Rmw { f: RmwFn::Max, .. }));
    if max {
        return "idempotent function (max)";
    }
    "dead reads/writes (read values never reach memory, or results overwritten)"
}

/// With `SOUNDNESS_DUMP=<what>` in the environment, prints the commands of that category
/// (`value-gap`, `declared-only`) to stderr, for inspection.
pub(super) fn dump(what: &str, seed: u64, b: &Built) {
    if std::env::var("SOUNDNESS_DUMP").is_ok_and(|v| v.split(',').any(|x| x == what)) {
        eprintln!(
            "{what}: seed {seed}\n  spec {:?}\n  ops {:?}",
            b.spec, b.ops
        );
    }
}

/// Runs command `seed` through every check, updating `s`.
pub fn check_command(rig: &mut Rig, seed: u64, s: &mut Summary) -> Res<()> {
    let b = generate(seed);
    let base = rig.base();
    let mut rng = Rng::new(seed ^ 0x1234_5678_9abc_def0);
    let image = rig.image(&mut rng, b.extent as usize);

    let verdict = b.spec.verdict(base);
    let exact = analyse(&exact_accesses(&b.ops, base));
    if exact.restartable() != reference_restartable(&b.ops, b.extent) {
        s.reference_disagreements += 1;
        s.failures.push(format!(
            "seed {seed}: analyse() on the exact access list says {exact}, the byte-level \
             reference disagrees (agx-fault-suite soundness --commands 1 --seed {seed})"
        ));
    }
    rig.victim.code.reset();
    let placed = rig.place(&b.spec, &b.ops)?;
    s.commands += 1;
    s.traffic += b.traffic;
    match b.spec {
        Spec::Render(_) => s.render += 1,
        Spec::Compute(_) => s.compute += 1,
    }
    let declared = b.spec.all_declared();
    s.declared += u64::from(declared);
    let restartable = verdict.restartable();
    s.restartable += u64::from(restartable);
    s.exact_restartable += u64::from(exact.restartable());
    if restartable && !exact.restartable() {
        s.declared_only += 1;
        dump("declared-only", seed, &b);
    }
    for r in verdict.reasons.short_names() {
        *s.reasons.entry(r).or_default() += 1;
    }
    let repro = format!("agx-fault-suite soundness --commands 1 --seed {seed}");
    if placed.winsys_verdict != verdict {
        s.outcome_errors += 1;
        s.failures.push(format!(
            "seed {seed}: winsys verdict {} != description verdict {verdict} ({repro})",
            placed.winsys_verdict
        ));
    }
    // Soundness obligations: what either verdict promises.
    let must_replay_exactly = restartable || exact.restartable();

    let (r1, dur) = rig.clean(&image, &placed.real, 1)?;
    s.runs += 1;
    s.gpu_ns += dur;
    if dur != duration(&b.ops, base) {
        s.cost_model_misses += 1;
    }
    let mut idempotent = true;
    let mut idempotent_at_base = true;
    let mismatch = |what: String, (at, n): (usize, usize), s: &mut Summary| {
        s.failures.push(format!(
            "MISMATCH seed {seed} ({kind}, {verdict}, exact list {exact}): {what}: {n} bytes \
             differ from the fault-free run, first at arena offset {at:#x}\n  reproduce: {repro}\n  \
             spec: {spec:?}\n  ops: {ops:?}",
            kind = b.spec.kind(),
            spec = b.spec,
            ops = b.ops,
        ));
    };

    // A complete run, then a second one.
    let (twice, _) = rig.clean(&image, &placed.real, 2)?;
    s.runs += 1;
    if let Some(diff) = first_diff(&r1, &twice) {
        idempotent = false;
        idempotent_at_base = false;
        if must_replay_exactly {
            mismatch("run twice".into(), diff, s);
        }
    }
    // Point 0: a random culprit time on the stream as generated (mostly between ops); the
    // others aimed inside memory ops.
    let t0 = rng.below(dur.max(1));
    for i in 0..POINTS + EXTRA_POINTS {
        if !idempotent && !must_replay_exactly {
            break;
        }
        let aimed = if i % 3 == 0 {
            None
        } else {
            targeted(&mut rng, &b.ops, base)
        };
        let (ops, t, variant) = match &aimed {
            Some((ops, t)) => (ops.as_slice(), *t, Some(rig.place(&b.spec, ops)?)),
            None => (
                b.ops.as_slice(),
                if i == 0 { t0 } else { rng.below(dur.max(1)) },
                None,
            ),
        };
        let p = variant.as_ref().unwrap_or(&placed);
        let desc = if restartable { &p.real } else { &p.forced };
        let vdur = duration(ops, base);
        // Points 3 and 6: a second culprit stops the victim again, in its replay.
        let second = (i > 0 && aimed.is_none()).then(|| rng.below(dur.max(1)));
        let times: Vec<u64> = std::iter::once(t).chain(second).collect();
        let run = rig.interrupted_by(&image, desc, &times, vdur, &r1)?;
        s.runs += 1;
        match run.outcome {
            JobOutcome::Complete => {}
            JobOutcome::Replayed(2) if second.is_some() => {
                s.interrupted += 1;
                s.replayed += 1;
                s.replayed_twice += 1;
            }
            JobOutcome::Replayed(1) => {
                s.interrupted += 1;
                s.replayed += 1;
                if let Some(p) = run.progress {
                    match classify(ops, base, p) {
                        Point::MidOp => s.mid_op += 1,
                        Point::Between if aimed.is_some() => s.aim_missed += 1,
                        Point::Between => {}
                    }
                }
            }
            o => {
                s.outcome_errors += 1;
                s.failures.push(format!(
                    "seed {seed}: replayable victim ended {o:?} ({repro})"
                ));
            }
        }
        if run.diff.is_some() {
            idempotent = false;
            if i < POINTS {
                idempotent_at_base = false;
            }
            if must_replay_exactly {
                let at = run.progress.map_or("not stopped".into(), |p| {
                    format!("stopped at {p} ns ({:?})", classify(ops, base, p))
                });
                let how = match (&aimed, second) {
                    (Some(_), _) => "aimed culprit fault at".to_string(),
                    (None, Some(t2)) => format!("culprit faults at {t2} ns into the replay and"),
                    (None, None) => "random culprit fault at".to_string(),
                };
                mismatch(
                    format!("{how} {t} ns, victim {at}"),
                    first_diff(&r1, &rig.buf).unwrap_or_default(),
                    s,
                );
            }
        }
    }
    if !restartable {
        // The real descriptor: the victim must be killed, innocent.
        let run = rig.interrupted(&image, &placed.real, (t0, dur), &r1)?;
        s.runs += 1;
        match run.outcome {
            JobOutcome::Killed {
                guilt: Guilt::Innocent,
                ..
            } => {
                s.interrupted += 1;
                s.killed_innocent += 1;
            }
            JobOutcome::Complete => {}
            o => {
                s.outcome_errors += 1;
                s.failures.push(format!(
                    "seed {seed}: non-restartable victim ended {o:?}, expected Killed {{ Innocent }} ({repro})"
                ));
            }
        }
    }
    if must_replay_exactly && !idempotent {
        s.mismatches += 1;
        s.declared_mismatches += u64::from(restartable);
    }
    if idempotent_at_base {
        s.idempotent_base += 1;
        s.restartable_idempotent_base += u64::from(restartable);
    }
    if idempotent {
        s.idempotent += 1;
        s.restartable_idempotent += u64::from(restartable);
        s.exact_idempotent += u64::from(exact.restartable());
        if declared {
            s.declared_idempotent += 1;
            s.declared_restartable_idempotent += u64::from(restartable);
        }
        if !restartable {
            if !declared {
                s.gap_unknown += 1;
            } else if exact.restartable() {
                let spills_only = match &b.spec {
                    Spec::Render(r) if r.spills_declared => r
                        .describe(base)
                        .partial_render_spills(false)
                        .analyse()
                        .restartable(),
                    _ => false,
                };
                if spills_only {
                    s.gap_spills += 1;
                } else {
                    s.gap_description += 1;
                }
            } else {
                s.gap_value += 1;
                *s.value_gap_kinds.entry(value_gap_kind(&b)).or_default() += 1;
                dump("value-gap", seed, &b);
            }
        }
    }
    Ok(())
}

/// Runs `commands` commands with seeds `seed..seed + commands`.
pub fn campaign(commands: u64, seed: u64, progress: bool) -> Res<Summary> {
    let mut rig = Rig::new()?;
    let mut s = Summary::default();
    let start = Instant::now();
    for i in 0..commands {
        check_command(&mut rig, seed.wrapping_add(i), &mut s)?;
        if progress && (i + 1) % 1000 == 0 {
            eprintln!(
                "  {} commands, {} mismatches, {:.1} s",
                i + 1,
                s.mismatches,
                start.elapsed().as_secs_f64()
            );
        }
    }
    Ok(s)
}
