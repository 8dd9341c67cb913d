//! The verdict of runs with the layer against the run without it: every test that differs,
//! classified; the rule of each run; the share of tests that stay Pass; the layer's census.

use std::collections::{BTreeMap, BTreeSet};

use crate::classify::{breaks_rule, classify, Class, PlanKind, Status};
use crate::run::{census, device_lost, Run};

/// One test that differs from the baseline.
#[derive(Clone, Debug)]
pub struct Difference {
    pub test: String,
    pub base: Status,
    pub run: Status,
    pub class: Class,
    /// Breaks the run's rule.
    pub breaks: bool,
    /// Reruns without the layer gave more than one result: the test is flaky on the driver
    /// alone, so its difference is not the layer's.
    pub flaky_without_layer: bool,
}

/// The verdict on one run.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub name: String,
    pub plan: String,
    pub wall_s: f64,
    pub tests: usize,
    pub counts: BTreeMap<Class, usize>,
    pub baseline_pass: usize,
    /// Tests passing without the layer that pass with it.
    pub still_pass: usize,
    /// Tests passing without the layer that lost their device with it.
    pub lost: usize,
    pub differences: Vec<Difference>,
    pub census: serde_json::Value,
}

impl Verdict {
    /// Differences that break the rule and are not explained by the driver's own flakiness.
    pub fn violations(&self) -> impl Iterator<Item = &Difference> {
        self.differences
            .iter()
            .filter(|d| d.breaks && !d.flaky_without_layer)
    }

    pub fn ok(&self) -> bool {
        self.violations().next().is_none()
    }
}

/// Classifies `run` against `base`. `confirm` gives, for tests whose difference breaks the
/// rule, the statuses of reruns without the layer (empty when none were made).
pub fn verdict(base: &Run, run: &Run, confirm: &BTreeMap<String, BTreeSet<Status>>) -> Verdict {
    let kind = PlanKind::of(&run.config.plan);
    let mut counts: BTreeMap<Class, usize> = Class::ALL.iter().map(|c| (*c, 0)).collect();
    let mut differences = Vec::new();
    let (mut baseline_pass, mut still_pass, mut lost) = (0, 0, 0);
    for (test, &b) in &base.results {
        let Some(&r) = run.results.get(test) else {
            continue;
        };
        let dl = r != b && r != Status::Pass && device_lost(&run.dir, test);
        let class = classify(b, r, dl);
        *counts.entry(class).or_default() += 1;
        if b == Status::Pass {
            baseline_pass += 1;
            match class {
                Class::Same => still_pass += 1,
                Class::DeviceLost => lost += 1,
                _ => {}
            }
        }
        if class != Class::Same {
            let breaks = breaks_rule(kind, b, class);
            let flaky_without_layer = confirm.get(test).is_some_and(|s| s.iter().any(|&x| x != b));
            differences.push(Difference {
                test: test.clone(),
                base: b,
                run: r,
                class,
                breaks,
                flaky_without_layer,
            });
        }
    }
    Verdict {
        name: run.config.name.clone(),
        plan: run.config.plan.clone(),
        wall_s: run.wall_s,
        tests: run.results.len(),
        counts,
        baseline_pass,
        still_pass,
        lost,
        differences,
        census: census(&run.dir),
    }
}

fn pct(a: usize, b: usize) -> String {
    if b == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * a as f64 / b as f64)
    }
}

/// The census' reasons, most frequent first.
fn ranked_reasons(census: &serde_json::Value) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = census["not_restartable_reasons"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// The summary as Markdown.
pub fn markdown(base: &Run, verdicts: &[Verdict]) -> String {
    let mut s = String::new();
    let bp = base
        .results
        .values()
        .filter(|&&x| x == Status::Pass)
        .count();
    let bskip = base
        .results
        .values()
        .filter(|&&x| x == Status::Skip)
        .count();
    s += &format!(
        "Baseline (lavapipe, no layer): {} tests, {bp} Pass, {bskip} NotSupported, {} other; \
         {:.0} s.\n\n",
        base.results.len(),
        base.results.len() - bp - bskip,
        base.wall_s
    );
    s += "| run | tests | Pass (of baseline Pass) | DeviceLost | WrongResult | Crash | Timeout | \
          Gained | KnownFlake | wall | rule |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
    for v in verdicts {
        let c = |k| v.counts.get(&k).copied().unwrap_or(0);
        s += &format!(
            "| {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} | {:.0} s | {} |\n",
            if v.plan.is_empty() {
                "layer, no plan".to_string()
            } else {
                format!("`{}`", v.plan)
            },
            v.tests,
            v.still_pass,
            pct(v.still_pass, v.baseline_pass),
            c(Class::DeviceLost),
            c(Class::WrongResult),
            c(Class::Crash),
            c(Class::Timeout),
            c(Class::Gained),
            c(Class::KnownFlake),
            v.wall_s,
            if v.ok() { "held" } else { "BROKEN" }
        );
    }
    for v in verdicts {
        let notable: Vec<&super::summary::Difference> = v
            .differences
            .iter()
            .filter(|d| d.class != Class::DeviceLost)
            .collect();
        if !notable.is_empty() {
            s += &format!("\n{} — differences other than DeviceLost:\n\n", v.name);
            for d in notable {
                s += &format!(
                    "- {} {}: {} -> {}{}{}\n",
                    d.class.name(),
                    d.test,
                    d.base,
                    d.run,
                    if d.breaks { " (breaks the rule)" } else { "" },
                    if d.flaky_without_layer {
                        " (flaky without the layer too: not counted)"
                    } else {
                        ""
                    }
                );
            }
        }
        let c = &v.census;
        if c["analysed"].as_u64().is_some() {
            s += &format!(
                "\n{} census: {} submissions analysed, {} restartable, {} replayed, {} devices \
                 lost, {} scramble failures; reasons:",
                v.name,
                c["analysed"],
                c["restartable"],
                c["replays"],
                c["devices_lost"],
                c["scramble_failures"]
            );
            let r = ranked_reasons(c);
            if r.is_empty() {
                s += " none";
            }
            for (k, n) in r {
                s += &format!(" `{k}` {n},");
            }
            if s.ends_with(',') {
                s.pop();
            }
            s += "\n";
        }
    }
    s
}

/// The summary as JSON.
pub fn json(base: &Run, verdicts: &[Verdict]) -> serde_json::Value {
    let runs: Vec<serde_json::Value> = verdicts
        .iter()
        .map(|v| {
            serde_json::json!({
                "name": v.name,
                "plan": v.plan,
                "wall_s": v.wall_s,
                "tests": v.tests,
                "classes": v.counts.iter().map(|(k, n)| (k.name().to_string(), *n)).collect::<BTreeMap<_, _>>(),
                "baseline_pass": v.baseline_pass,
                "still_pass": v.still_pass,
                "device_lost": v.lost,
                "rule_held": v.ok(),
                "differences": v.differences.iter().map(|d| serde_json::json!({
                    "test": d.test, "baseline": d.base.name(), "run": d.run.name(),
                    "class": d.class.name(), "breaks_rule": d.breaks,
                    "flaky_without_layer": d.flaky_without_layer,
                })).collect::<Vec<_>>(),
                "census": v.census,
            })
        })
        .collect();
    serde_json::json!({
        "baseline": {"tests": base.results.len(), "wall_s": base.wall_s},
        "runs": runs,
    })
}
