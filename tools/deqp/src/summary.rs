//! The verdict of runs with the layer against the run without it: every test that differs,
//! classified; the rule of each run; the share of tests that stay Pass; the layer's census.

use std::collections::{BTreeMap, BTreeSet};

use crate::classify::{breaks_rule, classify, parse_results, Class, PlanKind, Status};
use crate::run::{
    census, device_lost, layer_lost_device_in_process, passed_then_died_at_exit, Run,
};

/// Where a run keeps the reruns of its wrong results, one test per dEQP process.
pub const ALONE_DIR: &str = "alone";

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
    /// A failure in a dEQP process whose shared device the layer had lost (in an earlier
    /// test): the test's status rerun alone under the same plan, which showed it is no wrong
    /// result of its own.
    pub alone: Option<Status>,
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
    let flakes = known_flakes(&run.dir);
    let alone = std::fs::read_to_string(run.dir.join(ALONE_DIR).join("results.csv"))
        .ok()
        .and_then(|t| parse_results(&t).ok())
        .unwrap_or_default();
    for (test, &b) in &base.results {
        let Some(&r) = run.results.get(test) else {
            continue;
        };
        let dl = r != b && r != Status::Pass && device_lost(&run.dir, test);
        let mut class = classify(b, r, dl);
        // deqp-runner labels a listed flake that failed and then passed on its retry `Flake`,
        // like any other; a listed test is the driver's known flake either way.
        if (b == Status::Flake || r == Status::Flake) && flakes.is_match(test) {
            class = Class::KnownFlake;
        }
        if class == Class::Flaky && passed_then_died_at_exit(&run.dir, test) {
            class = Class::KnownFlake;
        }
        // dEQP shares one device across the tests of a process: after a test lost it, the
        // next ones fail on it without saying why. Such a failure is a loss if the layer
        // reported one in that process and the test, alone under the same plan, passes or
        // loses its own device; otherwise it stays a wrong result.
        let mut alone_status = None;
        if class == Class::WrongResult && layer_lost_device_in_process(&run.dir, test) {
            let alone_dir = run.dir.join(ALONE_DIR);
            if let Some(&a) = alone.get(test) {
                if a == Status::Pass || device_lost(&alone_dir, test) {
                    class = Class::DeviceLost;
                    alone_status = Some(a);
                }
            }
        }
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
                alone: alone_status,
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

/// The `--flakes` regexes a run was made with (its `run.json`); none if it had no list.
fn known_flakes(dir: &std::path::Path) -> regex::RegexSet {
    let list = std::fs::read_to_string(dir.join("run.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|m| m["flakes"].as_str().map(str::to_string))
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let patterns = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| format!("^(?:{l})$"));
    regex::RegexSet::new(patterns).unwrap_or_else(|_| regex::RegexSet::empty())
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
          Gained | KnownFlake | Flaky | wall | rule |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
    for v in verdicts {
        let c = |k| v.counts.get(&k).copied().unwrap_or(0);
        s += &format!(
            "| {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} | {} | {:.0} s | {} |\n",
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
            c(Class::Flaky),
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
                    "- {} {}: {} -> {}{}{}{}\n",
                    d.class.name(),
                    d.test,
                    d.base,
                    d.run,
                    d.alone
                        .map(|a| format!(
                            " (its dEQP process had lost the device; alone under the plan: {a})"
                        ))
                        .unwrap_or_default(),
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
                    "alone": d.alone.map(|a| a.name()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Config;

    fn run_of(dir: &std::path::Path, config: Config, results: &[(&str, Status)]) -> Run {
        Run {
            config,
            dir: dir.to_path_buf(),
            results: results.iter().map(|(t, s)| (t.to_string(), *s)).collect(),
            wall_s: 0.0,
        }
    }

    #[test]
    fn a_failure_after_a_loss_in_its_process_is_a_loss_only_if_alone_says_so() {
        let root = std::env::temp_dir().join(format!("agx-deqp-alone-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("neighbor-every_1");
        std::fs::create_dir_all(dir.join(ALONE_DIR)).unwrap();
        // One process ran a (which lost the device), b and c: b and c failed without a reason.
        std::fs::write(
            dir.join("c0.r1.log"),
            "stdout:\nTest case 'dEQP-VK.b'..\n  Fail (Fail)\nTest case 'dEQP-VK.c'..\n  \
             Fail (Fail)\nstderr:\nVK_LAYER_AGX_fault: device lost: job stopped\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("runner.log"),
            "ERROR - Test dEQP-VK.b: Fail: See \"x/c0.r1.log\"\n\
             ERROR - Test dEQP-VK.c: Fail: See \"x/c0.r1.log\"\n\
             ERROR - Test dEQP-VK.d: Fail: See \"x/c0.r2.log\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("c0.r2.log"),
            "stdout:\nTest case 'dEQP-VK.d'..\n  Fail\n",
        )
        .unwrap();
        // Alone: b passes, c fails again without a lost device, d passes.
        std::fs::write(
            dir.join(ALONE_DIR).join("results.csv"),
            "dEQP-VK.b,Pass,0.1\ndEQP-VK.c,Fail,0.1\ndEQP-VK.d,Pass,0.1\n",
        )
        .unwrap();
        let tests = ["dEQP-VK.b", "dEQP-VK.c", "dEQP-VK.d"];
        let base = run_of(
            &root.join("baseline"),
            Config::baseline(),
            &tests.map(|t| (t, Status::Pass)),
        );
        let run = run_of(
            &dir,
            Config::plan("neighbor-every@1"),
            &tests.map(|t| (t, Status::Fail)),
        );
        let v = verdict(&base, &run, &BTreeMap::new());
        let class = |t: &str| v.differences.iter().find(|d| d.test == t).unwrap().class;
        assert_eq!(class("dEQP-VK.b"), Class::DeviceLost);
        // Fails alone too, with no loss: a wrong result.
        assert_eq!(class("dEQP-VK.c"), Class::WrongResult);
        // Passes alone, but no loss was reported in its process: still a wrong result.
        assert_eq!(class("dEQP-VK.d"), Class::WrongResult);
        assert!(!v.ok());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_flake_is_known_only_if_listed() {
        let root = std::env::temp_dir().join(format!("agx-deqp-flakes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("noplan");
        std::fs::create_dir_all(&dir).unwrap();
        let list = root.join("flakes.txt");
        std::fs::write(&list, "# comment\n\ndEQP-VK\\.f\\..*\n").unwrap();
        std::fs::write(
            dir.join("run.json"),
            serde_json::json!({ "flakes": list.display().to_string() }).to_string(),
        )
        .unwrap();
        let tests = ["dEQP-VK.f.x", "dEQP-VK.g"];
        let base = run_of(
            &root.join("baseline"),
            Config::baseline(),
            &tests.map(|t| (t, Status::Pass)),
        );
        let run = run_of(&dir, Config::noplan(), &tests.map(|t| (t, Status::Flake)));
        let v = verdict(&base, &run, &BTreeMap::new());
        let class = |t: &str| v.differences.iter().find(|d| d.test == t).unwrap().class;
        assert_eq!(class("dEQP-VK.f.x"), Class::KnownFlake);
        assert_eq!(class("dEQP-VK.g"), Class::Flaky);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_pass_whose_process_died_of_heap_corruption_at_exit_is_a_known_flake() {
        let root = std::env::temp_dir().join(format!("agx-deqp-exit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("noplan");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("c0.r1.log"),
            "stdout:\nTest case 'dEQP-VK.a'..\n  Pass (OK)\n\nTest case 'dEQP-VK.b'..\n  Fail (bad)\n\
             \nstderr:\n-------\ncorrupted double-linked list\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("runner.log"),
            "ERROR - Test dEQP-VK.a: Crash: See \"x/c0.r1.log\"\n\
             ERROR - Test dEQP-VK.b: Crash: See \"x/c0.r1.log\"\n",
        )
        .unwrap();
        let tests = ["dEQP-VK.a", "dEQP-VK.b"];
        let base = run_of(
            &root.join("baseline"),
            Config::baseline(),
            &tests.map(|t| (t, Status::Pass)),
        );
        let run = run_of(&dir, Config::noplan(), &tests.map(|t| (t, Status::Flake)));
        let v = verdict(&base, &run, &BTreeMap::new());
        let class = |t: &str| v.differences.iter().find(|d| d.test == t).unwrap().class;
        assert_eq!(class("dEQP-VK.a"), Class::KnownFlake);
        // Its own verdict was a failure: not the teardown's doing.
        assert_eq!(class("dEQP-VK.b"), Class::Flaky);
        let _ = std::fs::remove_dir_all(&root);
    }
}
