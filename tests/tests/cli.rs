//! The `agx-fault-suite` binary as CI runs it: case list, sharding, result files, campaigns.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_agx-fault-suite"))
}

fn run(args: &[&str]) -> Output {
    let o = bin().args(args).output().expect("run agx-fault-suite");
    assert!(o.status.code().is_some(), "killed by a signal: {args:?}");
    o
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("agx-fault-suite-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

const REQUIRED: [&str; 16] = [
    "agx.guilty.unmapped_read",
    "agx.guilty.unmapped_write",
    "agx.guilty.readonly_write",
    "agx.guilty.hang_timeout",
    "agx.innocent.restartable_replayed",
    "agx.innocent.nonrestartable_killed",
    "agx.innocent.idle_queue_untouched",
    "agx.innocent.replay_limit",
    "agx.teardown.queue_destroy_inflight",
    "agx.teardown.vm_destroy_inflight",
    "agx.teardown.file_close_inflight",
    "agx.device.firmware_crash",
    "agx.api.vk_lost_sticky",
    "agx.api.gl_reset_status_once",
    "agx.upstream.fence_error_detected",
    "agx.sync.error_visible_in_sync_file",
];

fn names() -> Vec<String> {
    let o = run(&["list"]);
    assert!(o.status.success());
    stdout(&o).lines().map(str::to_owned).collect()
}

#[test]
fn list_has_the_cases() {
    let n = names();
    assert!(n.len() >= 60, "{} cases", n.len());
    let set: BTreeSet<&str> = n.iter().map(String::as_str).collect();
    assert_eq!(set.len(), n.len(), "duplicate names");
    for r in REQUIRED {
        assert!(set.contains(r), "missing {r}");
    }
    for g in [
        "submit", "sync", "guilty", "innocent", "policy", "teardown", "device", "api", "upstream",
        "stress",
    ] {
        assert!(
            n.iter().any(|x| x.starts_with(&format!("agx.{g}."))),
            "no case in group {g}"
        );
    }
    assert!(n
        .iter()
        .all(|x| x.starts_with("agx.") && x.split('.').count() == 3));
}

/// The test names of a results.csv.
fn ran(dir: &std::path::Path) -> Vec<String> {
    let csv = std::fs::read_to_string(dir.join("results.csv")).expect("results.csv");
    csv.lines()
        .map(|l| l.split(',').next().unwrap().to_owned())
        .collect()
}

#[test]
fn fractions_cover_every_case_exactly_once() {
    // A cheap group, so the split runs quickly; the split itself is over the filtered list.
    let mut all = Vec::new();
    for k in ["1", "2"] {
        let d = tmpdir(&format!("frac{k}"));
        let o = run(&[
            "run",
            "--include-tests",
            "agx.api",
            "--fraction",
            "2",
            "--fraction-start",
            k,
            "--campaign",
            "0",
            "--output",
            d.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stdout(&o));
        all.extend(ran(&d));
        let _ = std::fs::remove_dir_all(&d);
    }
    all.sort();
    let mut want: Vec<String> = names()
        .into_iter()
        .filter(|n| n.contains("agx.api"))
        .collect();
    want.sort();
    assert_eq!(all, want, "fraction 2 start 1 + start 2 = every case once");
    assert!(want.len() >= 4);
}

#[test]
fn run_writes_deqp_runner_files() {
    let d = tmpdir("guilty");
    let o = run(&[
        "run",
        "--include-tests",
        "agx.guilty",
        "--campaign",
        "0",
        "--output",
        d.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    let results = std::fs::read_to_string(d.join("results.csv")).unwrap();
    let lines: Vec<&str> = results.lines().collect();
    assert!(lines.len() >= 4);
    for l in &lines {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f.len(), 3, "test,status,duration: {l}");
        assert!(f[0].starts_with("agx.guilty."), "{l}");
        assert_eq!(f[1], "Pass", "{l}");
        assert!(f[2].parse::<f64>().unwrap() >= 0.0, "{l}");
    }
    assert!(lines
        .iter()
        .any(|l| l.starts_with("agx.guilty.unmapped_read,Pass,")));
    assert_eq!(std::fs::read_to_string(d.join("failures.csv")).unwrap(), "");
    let junit = std::fs::read_to_string(d.join("junit.xml")).unwrap();
    assert!(junit.starts_with("<?xml"));
    assert!(junit.contains(&format!("tests=\"{}\" failures=\"0\"", lines.len())));
    assert_eq!(junit.matches("<testcase ").count(), lines.len());
    assert!(junit.trim_end().ends_with("</testsuites>"));
    let summary = format!("{} passed, 0 failed", lines.len());
    assert!(
        out.lines().any(|l| l == summary),
        "summary line {summary:?} in:\n{out}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn caselist_and_failures() {
    // A caselist naming an unknown case is refused.
    let d = tmpdir("caselist");
    std::fs::create_dir_all(&d).unwrap();
    let list = d.join("list.txt");
    std::fs::write(
        &list,
        "agx.api.vk_submit_errno\n\nagx.api.gl_reset_status_once\n",
    )
    .unwrap();
    let o = run(&[
        "run",
        "--caselist",
        list.to_str().unwrap(),
        "--campaign",
        "0",
        "--output",
        d.join("out").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert_eq!(
        ran(&d.join("out")),
        vec!["agx.api.vk_submit_errno", "agx.api.gl_reset_status_once"]
    );
    assert!(stdout(&o).lines().any(|l| l == "2 passed, 0 failed"));
    std::fs::write(&list, "agx.no.such_case\n").unwrap();
    let o = run(&[
        "run",
        "--caselist",
        list.to_str().unwrap(),
        "--campaign",
        "0",
    ]);
    assert!(!o.status.success());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn short_campaign_passes() {
    let o = run(&["campaign", "--iterations", "50"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("invariant violations           0"), "{out}");
}

#[test]
fn continue_policy_is_caught_corrupting() {
    let o = run(&["campaign", "--policy", "continue", "--iterations", "100"]);
    let out = stdout(&o);
    assert!(
        !o.status.success(),
        "continue must fail the campaign:\n{out}"
    );
    assert!(out.contains("no silent corruption"), "{out}");
    let repro = out
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("agx-fault-suite campaign --seed")
        })
        .expect("a reproduction line");
    assert!(repro.contains("--iterations 1 --scenario") && repro.contains("--policy continue"));
    // The reproduction line reproduces.
    let args: Vec<&str> = repro.split_whitespace().skip(1).collect();
    let o = run(&args);
    assert!(!o.status.success(), "{}", stdout(&o));
}

#[test]
fn trace_writes_chrome_json() {
    let d = tmpdir("trace");
    std::fs::create_dir_all(&d).unwrap();
    let f = d.join("t.json");
    let o = run(&[
        "trace",
        "agx.innocent.restartable_replayed",
        "--out",
        f.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stdout(&o));
    let json = std::fs::read_to_string(&f).unwrap();
    assert!(json.contains("\"traceEvents\""));
    assert!(json.contains("\"replay\""));
    let _ = std::fs::remove_dir_all(&d);
}
