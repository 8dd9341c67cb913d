//! `agx-deqp`: Khronos' dEQP-VK, through deqp-runner, on lavapipe with `VK_LAYER_AGX_fault`
//! and fault plans, judged against the same tests without the layer.
//!
//! `run` runs a caselist without the layer (the baseline), with the layer and no plan (which
//! must change nothing), then under each plan, and classifies every test that differs from the
//! baseline: DeviceLost (its log shows `VK_ERROR_DEVICE_LOST`: allowed under a plan),
//! WrongResult (any other new failure), Crash, Timeout. Under a `neighbor` plan the rule is no
//! WrongResult, Crash or Timeout; the exit status says whether every run kept its rule.

mod caselist;
mod classify;
mod run;
mod setup;
mod summary;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::run::{Config, Run, Setup};

#[derive(Parser)]
#[command(
    name = "agx-deqp",
    version,
    about = "dEQP-VK under fault plans with VK_LAYER_AGX_fault, judged by deqp-runner results"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Unpacks the vendored dEQP-VK build into the cache (once) and checks deqp-runner; prints
    /// the paths.
    Setup,
    /// Regenerates the caselist and the CI slice from the groups file and the dEQP binary.
    Caselist {
        #[arg(long, default_value_os_t = default_path("groups.txt"))]
        groups: PathBuf,
        #[arg(long, default_value_os_t = default_path("caselist.txt"))]
        out: PathBuf,
        #[arg(long, default_value_os_t = default_path("ci-caselist.txt"))]
        ci_out: PathBuf,
        /// The CI slice takes every N-th test (besides the groups marked `ci`).
        #[arg(long, default_value_t = 16)]
        ci_every: usize,
    },
    /// Runs the caselist without the layer, with it and no plan, and under each plan; writes
    /// deqp-runner's results per run and `summary.md`/`summary.json`.
    Run(RunArgs),
    /// Re-makes the summary of the runs in an output directory.
    Summarize {
        #[arg(long, default_value = "target/deqp")]
        output: PathBuf,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    #[arg(long, default_value_os_t = default_path("caselist.txt"))]
    caselist: PathBuf,
    /// A fault plan (`AGX_FAULT_PLAN` grammar); repeatable. The baseline and the no-plan run
    /// always come first.
    #[arg(long = "plan")]
    plans: Vec<String>,
    /// deqp-runner processes in parallel (default: the number of CPUs).
    #[arg(long)]
    jobs: Option<usize>,
    /// Run every N-th test of the caselist...
    #[arg(long, default_value_t = 1)]
    fraction: usize,
    /// ...starting with the K-th (1-based): shards of a long caselist.
    #[arg(long, default_value_t = 1)]
    fraction_start: usize,
    /// Per-test timeout in seconds (deqp-runner's).
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    #[arg(long, default_value = "target/deqp")]
    output: PathBuf,
    /// Directory of the built layer and its manifest (default: target/release).
    #[arg(long)]
    layer_dir: Option<PathBuf>,
    /// Keep runs already in the output directory (same caselist, plan and shard).
    #[arg(long)]
    resume: bool,
    /// deqp-runner `--flakes` file: tests that fail now and then without the layer (classed
    /// KnownFlake when they do); `none` for no list.
    #[arg(long, default_value_os_t = default_path("lavapipe-flakes.txt"))]
    flakes: PathBuf,
    /// Reruns without the layer of each test that breaks a rule (to tell the driver's own
    /// flakiness from the layer's doing).
    #[arg(long, default_value_t = 3)]
    confirm: usize,
}

fn default_path(name: &str) -> PathBuf {
    setup::repo_root().join("tools/deqp").join(name)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Setup => cmd_setup(),
        Cmd::Caselist {
            groups,
            out,
            ci_out,
            ci_every,
        } => cmd_caselist(&groups, &out, &ci_out, ci_every),
        Cmd::Run(a) => cmd_run(a),
        Cmd::Summarize { output } => cmd_summarize(&output),
    };
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("agx-deqp: {e}");
            ExitCode::from(2)
        }
    }
}

fn cmd_setup() -> Result<bool, String> {
    let deqp = setup::deqp_binary()?;
    println!("deqp-vk: {}", deqp.display());
    println!("deqp-runner: {}", setup::deqp_runner()?.display());
    Ok(true)
}

fn cmd_caselist(groups: &Path, out: &Path, ci_out: &Path, ci_every: usize) -> Result<bool, String> {
    let deqp = setup::deqp_binary()?;
    let text = std::fs::read_to_string(groups).map_err(|e| format!("{}: {e}", groups.display()))?;
    let gs = caselist::parse_groups(&text)?;
    let caselist::Built { all, ci, counts } =
        caselist::build(&gs, ci_every, |p| caselist::list_tests(&deqp, p))?;
    for ((line, matched, taken), g) in counts.iter().zip(&gs) {
        eprintln!("line {line:>3}: {taken:>5} of {matched:>7} {}", g.pattern);
    }
    let write = |p: &Path, v: &[String]| {
        std::fs::write(p, v.join("\n") + "\n").map_err(|e| format!("{}: {e}", p.display()))
    };
    write(out, &all)?;
    write(ci_out, &ci)?;
    eprintln!(
        "{} tests in {}, {} in {}",
        all.len(),
        out.display(),
        ci.len(),
        ci_out.display()
    );
    Ok(true)
}

/// A private `XDG_RUNTIME_DIR` under `output`.
fn xdg_dir(output: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let d = output.join("xdg-runtime");
    std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("{}: {e}", d.display()))?;
    Ok(d)
}

/// Whether the run in `dir` was made in this configuration and shard (for `--resume`).
fn reusable(dir: &Path, config: &Config, setup: &Setup, caselist: &Path) -> bool {
    let Ok(t) = std::fs::read_to_string(dir.join("run.json")) else {
        return false;
    };
    let Ok(m) = serde_json::from_str::<serde_json::Value>(&t) else {
        return false;
    };
    let same_list = std::fs::read_to_string(dir.join("caselist.txt")).ok()
        == std::fs::read_to_string(caselist).ok();
    // A layer run in which the layer never loaded is not kept.
    let loaded = !config.layer || run::census(dir)["processes"] != 0;
    same_list
        && loaded
        && m["plan"] == config.plan.as_str()
        && m["layer"] == config.layer
        && m["fraction"] == setup.fraction
        && m["fraction_start"] == setup.fraction_start
        && m["flakes"] == serde_json::json!(setup.flakes.as_ref().map(|f| f.display().to_string()))
}

fn cmd_run(a: RunArgs) -> Result<bool, String> {
    let jobs = a.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    std::fs::create_dir_all(&a.output).map_err(|e| format!("{}: {e}", a.output.display()))?;
    let output = a
        .output
        .canonicalize()
        .map_err(|e| format!("{}: {e}", a.output.display()))?;
    let caselist = a
        .caselist
        .canonicalize()
        .map_err(|e| format!("{}: {e}", a.caselist.display()))?;
    let setup = Setup {
        deqp: setup::deqp_binary()?,
        runner: setup::deqp_runner()?,
        layer_dir: setup::layer_dir(a.layer_dir.clone())?,
        jobs,
        timeout: a.timeout,
        fraction: a.fraction.max(1),
        fraction_start: a.fraction_start.max(1),
        flakes: if a.flakes.as_os_str() == "none" {
            None
        } else {
            Some(
                a.flakes
                    .canonicalize()
                    .map_err(|e| format!("{}: {e}", a.flakes.display()))?,
            )
        },
        xdg: xdg_dir(&output)?,
        tests_per_group: None,
    };
    let mut configs = vec![Config::baseline(), Config::noplan()];
    configs.extend(a.plans.iter().map(|p| Config::plan(p)));
    let mut runs: Vec<Run> = Vec::new();
    for c in &configs {
        let dir = output.join(&c.name);
        let r = if a.resume && reusable(&dir, c, &setup, &caselist) {
            eprintln!("agx-deqp: {}: kept from an earlier run", c.name);
            run::load(c, &dir)?
        } else {
            eprintln!(
                "agx-deqp: {} ({} jobs{})...",
                c.name,
                setup.jobs,
                if c.plan.is_empty() {
                    String::new()
                } else {
                    format!(", AGX_FAULT_PLAN={}", c.plan)
                }
            );
            let r = run::run(&setup, c, &caselist, &dir)?;
            let _ = std::fs::copy(&caselist, dir.join("caselist.txt"));
            r
        };
        eprintln!(
            "agx-deqp: {}: {} tests in {:.0} s",
            c.name,
            r.results.len(),
            r.wall_s
        );
        runs.push(r);
    }
    let base = runs.remove(0);
    rerun_wrong_results_alone(&setup, &base, &runs)?;
    // Rule-breaking tests are rerun without the layer: a test flaky on the driver alone is
    // reported, not blamed on the layer.
    let first: Vec<summary::Verdict> = runs
        .iter()
        .map(|r| summary::verdict(&base, r, &BTreeMap::new()))
        .collect();
    let suspects: BTreeSet<String> = first
        .iter()
        .flat_map(|v| v.violations().map(|d| d.test.clone()))
        .collect();
    let confirm = confirm_without_layer(&setup, &output, &suspects, a.confirm)?;
    let verdicts: Vec<summary::Verdict> = runs
        .iter()
        .map(|r| summary::verdict(&base, r, &confirm))
        .collect();
    finish(&output, &base, &verdicts)
}

/// Reruns each run's wrong results alone (one test per dEQP process, under the run's plan)
/// into the run's `alone/`: a failure that only followed an earlier test's device loss in a
/// shared process is told from a wrong result there (`summary::verdict`).
fn rerun_wrong_results_alone(setup: &Setup, base: &Run, runs: &[Run]) -> Result<(), String> {
    for r in runs {
        let v = summary::verdict(base, r, &BTreeMap::new());
        let tests: Vec<&str> = v
            .differences
            .iter()
            .filter(|d| d.class == crate::classify::Class::WrongResult)
            .map(|d| d.test.as_str())
            .collect();
        if tests.is_empty() {
            continue;
        }
        let list = r.dir.join("alone-caselist.txt");
        std::fs::write(&list, tests.join("\n") + "\n").map_err(|e| e.to_string())?;
        eprintln!(
            "agx-deqp: {}: rerunning {} wrong result(s) alone, one per dEQP process",
            r.config.name,
            tests.len()
        );
        let s = Setup {
            fraction: 1,
            fraction_start: 1,
            tests_per_group: Some(1),
            ..setup.clone()
        };
        run::run(&s, &r.config, &list, &r.dir.join(summary::ALONE_DIR))?;
    }
    Ok(())
}

/// Reruns `tests` without the layer `times` times; their statuses.
fn confirm_without_layer(
    setup: &Setup,
    output: &Path,
    tests: &BTreeSet<String>,
    times: usize,
) -> Result<BTreeMap<String, BTreeSet<crate::classify::Status>>, String> {
    let mut out: BTreeMap<String, BTreeSet<_>> = BTreeMap::new();
    if tests.is_empty() || times == 0 {
        return Ok(out);
    }
    let list = output.join("confirm-caselist.txt");
    std::fs::write(
        &list,
        tests.iter().cloned().collect::<Vec<_>>().join("\n") + "\n",
    )
    .map_err(|e| e.to_string())?;
    let s = Setup {
        fraction: 1,
        fraction_start: 1,
        ..setup.clone()
    };
    for i in 0..times {
        eprintln!(
            "agx-deqp: rerunning {} rule-breaking test(s) without the layer ({}/{times})",
            tests.len(),
            i + 1
        );
        let r = run::run(
            &s,
            &Config::baseline(),
            &list,
            &output.join(format!("confirm-{}", i + 1)),
        )?;
        for (t, st) in r.results {
            out.entry(t).or_default().insert(st);
        }
    }
    std::fs::write(
        output.join("confirm.json"),
        format!(
            "{:#}\n",
            serde_json::json!(out
                .iter()
                .map(|(t, s)| (t.clone(), s.iter().map(|x| x.name()).collect::<Vec<_>>()))
                .collect::<BTreeMap<_, _>>())
        ),
    )
    .map_err(|e| e.to_string())?;
    Ok(out)
}

fn finish(output: &Path, base: &Run, verdicts: &[summary::Verdict]) -> Result<bool, String> {
    let md = summary::markdown(base, verdicts);
    let js = summary::json(base, verdicts);
    std::fs::write(output.join("summary.md"), &md).map_err(|e| e.to_string())?;
    std::fs::write(output.join("summary.json"), format!("{js:#}\n")).map_err(|e| e.to_string())?;
    println!("{md}");
    let ok = verdicts.iter().all(summary::Verdict::ok);
    if !ok {
        for v in verdicts {
            for d in v.violations() {
                eprintln!(
                    "agx-deqp: {}: {} {} ({} -> {}), logs in {}",
                    v.name,
                    d.class.name(),
                    d.test,
                    d.base,
                    d.run,
                    output.join(&v.name).display()
                );
            }
        }
    }
    Ok(ok)
}

fn cmd_summarize(output: &Path) -> Result<bool, String> {
    let base = run::load(&Config::baseline(), &output.join("baseline"))?;
    let mut runs = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(output)
        .map_err(|e| format!("{}: {e}", output.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("run.json").is_file())
        .collect();
    names.sort();
    // The no-plan run first, then the plans.
    names.sort_by_key(|p| !p.ends_with("noplan"));
    for d in names {
        let meta: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(d.join("run.json")).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        let name = meta["name"].as_str().unwrap_or_default().to_string();
        if name == "baseline" || name.is_empty() || !meta["layer"].as_bool().unwrap_or(false) {
            continue;
        }
        let c = Config {
            name,
            layer: true,
            plan: meta["plan"].as_str().unwrap_or_default().to_string(),
        };
        runs.push(run::load(&c, &d)?);
    }
    let confirm: BTreeMap<String, BTreeSet<crate::classify::Status>> =
        std::fs::read_to_string(output.join("confirm.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<BTreeMap<String, Vec<String>>>(&t).ok())
            .map(|m| {
                m.into_iter()
                    .map(|(t, v)| {
                        (
                            t,
                            v.iter()
                                .filter_map(|s| crate::classify::Status::parse(s))
                                .collect(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
    let verdicts: Vec<summary::Verdict> = runs
        .iter()
        .map(|r| summary::verdict(&base, r, &confirm))
        .collect();
    finish(output, &base, &verdicts)
}
