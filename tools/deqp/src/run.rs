//! One run of a caselist through deqp-runner in one configuration (without the layer, with it
//! and no plan, with it and a plan), and what its output says about each test.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::classify::{log_shows_device_lost, parse_results, stdout_section, Status};
use crate::setup::LAVAPIPE_ICD;

/// A configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Directory name of its output (`baseline`, `noplan`, or the plan with `@` and `,`
    /// replaced).
    pub name: String,
    /// Whether `VK_LAYER_AGX_fault` is enabled.
    pub layer: bool,
    /// `AGX_FAULT_PLAN` (empty: none).
    pub plan: String,
}

impl Config {
    pub fn baseline() -> Config {
        Config {
            name: "baseline".into(),
            layer: false,
            plan: String::new(),
        }
    }

    pub fn noplan() -> Config {
        Config {
            name: "noplan".into(),
            layer: true,
            plan: String::new(),
        }
    }

    pub fn plan(plan: &str) -> Config {
        let name = plan
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Config {
            name,
            layer: true,
            plan: plan.to_string(),
        }
    }
}

/// What every run shares.
#[derive(Clone, Debug)]
pub struct Setup {
    pub deqp: PathBuf,
    pub runner: PathBuf,
    pub layer_dir: PathBuf,
    pub jobs: usize,
    pub timeout: f64,
    pub fraction: usize,
    pub fraction_start: usize,
    /// deqp-runner's `--flakes` file (the driver's known flakes), if any.
    pub flakes: Option<PathBuf>,
    /// A private `XDG_RUNTIME_DIR` (mode 0700), as lavapipe's WSI wants.
    pub xdg: PathBuf,
    /// deqp-runner's `--tests-per-group` (tests per dEQP process), when not its default.
    pub tests_per_group: Option<usize>,
}

/// A finished run.
#[derive(Clone, Debug)]
pub struct Run {
    pub config: Config,
    pub dir: PathBuf,
    pub results: BTreeMap<String, Status>,
    pub wall_s: f64,
}

/// Runs `caselist` in `config`, writing deqp-runner's output into `dir` (emptied first).
pub fn run(setup: &Setup, config: &Config, caselist: &Path, dir: &Path) -> Result<Run, String> {
    let _ = std::fs::remove_dir_all(dir);
    let stats = dir.join("stats");
    std::fs::create_dir_all(&stats).map_err(|e| format!("{}: {e}", stats.display()))?;
    let log = File::create(dir.join("runner.log")).map_err(|e| e.to_string())?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&setup.runner);
    cmd.arg("run")
        .arg("--deqp")
        .arg(&setup.deqp)
        .arg("--caselist")
        .arg(caselist)
        .arg("--output")
        .arg(dir)
        .arg("--jobs")
        .arg(setup.jobs.to_string())
        .arg("--timeout")
        .arg(setup.timeout.to_string())
        .arg("--fraction")
        .arg(setup.fraction.to_string())
        .arg("--fraction-start")
        .arg(setup.fraction_start.to_string())
        .arg("--summary-limit")
        .arg("0");
    if let Some(f) = &setup.flakes {
        cmd.arg("--flakes").arg(f);
    }
    if let Some(n) = setup.tests_per_group {
        cmd.arg("--tests-per-group").arg(n.to_string());
    }
    cmd.arg("--")
        .arg("--deqp-log-images=disable")
        .arg("--deqp-log-shader-sources=disable")
        .env("VK_ICD_FILENAMES", LAVAPIPE_ICD)
        .env("XDG_RUNTIME_DIR", &setup.xdg)
        .env_remove("VK_INSTANCE_LAYERS")
        .env_remove("AGX_FAULT_PLAN")
        .env_remove("AGX_FAULT_WEAKEN")
        .env_remove("AGX_FAULT_FRAMES")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    if config.layer {
        cmd.env("VK_LAYER_PATH", &setup.layer_dir)
            .env("VK_INSTANCE_LAYERS", "VK_LAYER_AGX_fault")
            .env("AGX_FAULT_PLAN", &config.plan)
            // One file per process (`%p`): deqp-runner runs many.
            .env("AGX_FAULT_STATS", stats.join("%p.json"));
    }
    let t0 = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{}: {e}", setup.runner.display()))?;
    let wall_s = t0.elapsed().as_secs_f64();
    let csv = dir.join("results.csv");
    let text = std::fs::read_to_string(&csv).map_err(|e| {
        format!(
            "deqp-runner ({status}) wrote no {}: {e}; see {}",
            csv.display(),
            dir.join("runner.log").display()
        )
    })?;
    let results = parse_results(&text)?;
    // A layer that did not load (a wrong VK_LAYER_PATH, a broken manifest) would make every
    // layer run look like the baseline: the layer writes its statistics in every process.
    if config.layer && !results.is_empty() && census(dir)["processes"] == 0 {
        return Err(format!(
            "{}: no AGX_FAULT_STATS file from any dEQP process: the layer did not load (VK_LAYER_PATH={})",
            config.name,
            setup.layer_dir.display()
        ));
    }
    let meta = serde_json::json!({
        "name": config.name, "layer": config.layer, "plan": config.plan,
        "wall_s": wall_s, "jobs": setup.jobs, "fraction": setup.fraction,
        "fraction_start": setup.fraction_start, "tests": results.len(),
        "flakes": setup.flakes.as_ref().map(|f| f.display().to_string()),
    });
    std::fs::write(dir.join("run.json"), format!("{meta:#}\n")).map_err(|e| e.to_string())?;
    Ok(Run {
        config: config.clone(),
        dir: dir.to_path_buf(),
        results,
        wall_s,
    })
}

/// A run done earlier (its `run.json` and `results.csv`).
pub fn load(config: &Config, dir: &Path) -> Result<Run, String> {
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("run.json")).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let results = parse_results(
        &std::fs::read_to_string(dir.join("results.csv")).map_err(|e| e.to_string())?,
    )?;
    Ok(Run {
        config: config.clone(),
        dir: dir.to_path_buf(),
        results,
        wall_s: meta["wall_s"].as_f64().unwrap_or(0.0),
    })
}

/// Whether the run's logs of `test` show a lost device: the test's own QPA extract
/// (deqp-runner keeps one per failing test), else its section of the dEQP stdout logs
/// deqp-runner names for it.
pub fn device_lost(dir: &Path, test: &str) -> bool {
    if let Ok(q) = std::fs::read_to_string(dir.join(format!("{test}.qpa"))) {
        if log_shows_device_lost(&q) {
            return true;
        }
    }
    process_logs(dir, test)
        .iter()
        .any(|text| stdout_section(text, test).is_some_and(log_shows_device_lost))
}

/// Whether the layer reported a lost device (its one line on stderr) in a dEQP process that
/// ran `test`: an earlier test of the process may have lost the device they share.
pub fn layer_lost_device_in_process(dir: &Path, test: &str) -> bool {
    process_logs(dir, test)
        .iter()
        .any(|text| text.contains("VK_LAYER_AGX_fault: device lost"))
}

/// Whether `test` passed by dEQP's own verdict in a process that then died of glibc's heap
/// check at exit ("corrupted double-linked list" and the like): lavapipe's known teardown
/// crash (seen without the layer, `lavapipe-flakes.txt`), which deqp-runner blames on the
/// test that ran last.
pub fn passed_then_died_at_exit(dir: &Path, test: &str) -> bool {
    process_logs(dir, test).iter().any(|text| {
        let passed = stdout_section(text, test)
            .is_some_and(|s| s.lines().nth(1).is_some_and(|l| l.starts_with("  Pass (")));
        let heap = text.split_once("\nstderr:").is_some_and(|(_, err)| {
            err.contains("double-linked list") || err.contains("double linked list")
        });
        passed && heap
    })
}

/// The dEQP process logs (stdout and stderr) deqp-runner names for `test` in its log.
fn process_logs(dir: &Path, test: &str) -> Vec<String> {
    let Ok(runner) = std::fs::read_to_string(dir.join("runner.log")) else {
        return Vec::new();
    };
    let prefix = format!("Test {test}: ");
    let mut logs = Vec::new();
    for line in runner.lines() {
        let Some(rest) = line.split_once(&prefix).map(|(_, r)| r) else {
            continue;
        };
        let Some(path) = rest
            .split_once("See \"")
            .and_then(|(_, p)| p.strip_suffix('"'))
        else {
            continue;
        };
        let p = Path::new(path);
        let p = if p.is_absolute() || p.exists() {
            p.to_path_buf()
        } else {
            dir.join(p.file_name().unwrap_or_default())
        };
        if let Ok(text) = std::fs::read_to_string(&p) {
            logs.push(text);
        }
    }
    logs
}

/// The layer's statistics of a run: the per-process `AGX_FAULT_STATS` files summed.
pub fn census(dir: &Path) -> serde_json::Value {
    let mut sums: BTreeMap<String, u64> = BTreeMap::new();
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    let mut files = 0u64;
    if let Ok(rd) = std::fs::read_dir(dir.join("stats")) {
        for e in rd.flatten() {
            if e.path().extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            let Ok(v) = std::fs::read_to_string(e.path())
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string())
                })
            else {
                continue;
            };
            files += 1;
            let Some(obj) = v.as_object() else { continue };
            for (k, v) in obj {
                if let Some(n) = v.as_u64() {
                    *sums.entry(k.clone()).or_default() += n;
                } else if let Some(m) = v.as_object() {
                    for (r, n) in m {
                        *reasons.entry(r.clone()).or_default() += n.as_u64().unwrap_or(0);
                    }
                }
            }
        }
    }
    let mut out = serde_json::Map::new();
    out.insert("processes".into(), files.into());
    for (k, v) in sums {
        out.insert(k, v.into());
    }
    out.insert(
        "not_restartable_reasons".into(),
        serde_json::to_value(reasons).unwrap_or_default(),
    );
    serde_json::Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_names() {
        assert_eq!(Config::plan("neighbor-every@1").name, "neighbor-every_1");
        assert_eq!(Config::plan("guilty@3,hang@4").name, "guilty_3_hang_4");
    }

    #[test]
    fn evidence_and_census_from_files() {
        let dir = std::env::temp_dir().join(format!("agx-deqp-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("stats")).unwrap();
        std::fs::write(
            dir.join("dEQP-VK.a.qpa"),
            "<Result StatusCode=\"DeviceLost\">x</Result>",
        )
        .unwrap();
        std::fs::write(
            dir.join("dEQP-VK.b.qpa"),
            "<Result StatusCode=\"Fail\">bad pixels</Result>",
        )
        .unwrap();
        std::fs::write(
            dir.join("c0.r1.log"),
            "stdout:\nTest case 'dEQP-VK.c'..\n  DeviceLost (x: VK_ERROR_DEVICE_LOST)\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("runner.log"),
            "ERROR - Test dEQP-VK.c: Crash: See \"nowhere/c0.r1.log\"\n",
        )
        .unwrap();
        assert!(device_lost(&dir, "dEQP-VK.a"));
        assert!(!device_lost(&dir, "dEQP-VK.b"));
        assert!(device_lost(&dir, "dEQP-VK.c"));
        assert!(!device_lost(&dir, "dEQP-VK.d"));
        std::fs::write(
            dir.join("stats/1.json"),
            r#"{"analysed": 3, "restartable": 2, "not_restartable_reasons": {"atomics": 1}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("stats/2.json"),
            r#"{"analysed": 4, "restartable": 1, "not_restartable_reasons": {"atomics": 2, "x": 1}}"#,
        )
        .unwrap();
        let c = census(&dir);
        assert_eq!(c["processes"], 2);
        assert_eq!(c["analysed"], 7);
        assert_eq!(c["restartable"], 3);
        assert_eq!(c["not_restartable_reasons"]["atomics"], 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
