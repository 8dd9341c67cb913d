//! The deqp-runner style runner: `list`, `run` (each case in a child process, in parallel,
//! with a timeout), `run-one` (what `run` spawns), `trace`.

use std::collections::{BTreeMap, VecDeque};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cases::{self, Case, CaseCtx, CaseError};
use crate::results::{self, CaseResult, Status};
use crate::{DeviceArg, RunOpts};

/// Exit code of `run-one` for a skipped case (the automake convention).
pub const EXIT_SKIP: u8 = 77;

pub fn list() -> u8 {
    for c in cases::all() {
        println!("{}", c.name);
    }
    0
}

/// Whether `name` matches an `--include-tests` pattern: a substring, or with `*`, a glob
/// over the whole name.
pub fn matches(pattern: &str, name: &str) -> bool {
    if !pattern.contains('*') {
        return name.contains(pattern);
    }
    glob(pattern.as_bytes(), name.as_bytes())
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

/// The cases `o` selects, in order: the caselist (or every case), filtered by
/// `--include-tests`, then every `fraction`-th starting at the `fraction_start`-th (1-based).
pub fn select(o: &RunOpts) -> Result<Vec<Case>, String> {
    if o.fraction == 0 || o.fraction_start == 0 || o.fraction_start > o.fraction {
        return Err(format!(
            "--fraction {} --fraction-start {}: need 1 <= start <= fraction",
            o.fraction, o.fraction_start
        ));
    }
    let all = cases::all();
    let mut list: Vec<Case> = match &o.caselist {
        None => all,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("caselist {}: {e}", path.display()))?;
            let mut v = Vec::new();
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                match all.iter().find(|c| c.name == line) {
                    Some(c) => v.push(*c),
                    None => {
                        return Err(format!("caselist {}: unknown case {line}", path.display()))
                    }
                }
            }
            v
        }
    };
    if !o.include.is_empty() {
        list.retain(|c| o.include.iter().any(|p| matches(p, c.name)));
    }
    Ok(list
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % o.fraction == o.fraction_start - 1)
        .map(|(_, c)| c)
        .collect())
}

/// Runs one case in a child process with a timeout.
fn run_child(case: &Case, device: Option<&str>, timeout: Duration) -> CaseResult {
    let start = Instant::now();
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return crash(case, start, format!("current_exe: {e}")),
    };
    let mut cmd = Command::new(exe);
    cmd.arg("run-one").arg(case.name);
    if let Some(d) = device {
        cmd.arg("--device").arg(d);
    }
    // A case's own AGXWS_TRACE would be overwritten by every other case.
    cmd.env_remove("AGXWS_TRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return crash(case, start, format!("spawn: {e}")),
    };
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let ereader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                timed_out = true;
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => break None,
        }
    };
    let duration = start.elapsed();
    let mut output = reader.join().unwrap_or_default();
    output.push_str(&ereader.join().unwrap_or_default());
    let status = match status {
        _ if timed_out => {
            output.push_str(&format!("killed after the {:?} timeout\n", timeout));
            Status::Timeout
        }
        None => Status::Crash,
        Some(st) => match st.code() {
            Some(0) => Status::Pass,
            Some(1) => Status::Fail,
            Some(c) if c == EXIT_SKIP as i32 => Status::Skip,
            Some(c) => {
                output.push_str(&format!("exit code {c}\n"));
                Status::Crash
            }
            None => {
                use std::os::unix::process::ExitStatusExt;
                output.push_str(&format!("killed by signal {:?}\n", st.signal()));
                Status::Crash
            }
        },
    };
    CaseResult {
        name: case.name.to_owned(),
        status,
        duration,
        output,
    }
}

fn crash(case: &Case, start: Instant, msg: String) -> CaseResult {
    CaseResult {
        name: case.name.to_owned(),
        status: Status::Crash,
        duration: start.elapsed(),
        output: msg,
    }
}

pub fn run(o: &RunOpts) -> u8 {
    let selected = match select(o) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("agx-fault-suite: {e}");
            return 2;
        }
    };
    if let Err(e) = o.device.spec() {
        eprintln!("agx-fault-suite: {e}");
        return 2;
    }
    let jobs = o
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let timeout = Duration::from_secs_f64(o.timeout.max(0.001));
    let device = o.device.device.clone();
    println!(
        "agx-fault-suite: running {} of {} cases ({} job(s), timeout {:?}{}{})",
        selected.len(),
        cases::all().len(),
        jobs,
        timeout,
        match &device {
            Some(d) => format!(", device {d}"),
            None => String::new(),
        },
        if o.fraction > 1 {
            format!(", fraction {} start {}", o.fraction, o.fraction_start)
        } else {
            String::new()
        }
    );
    let t0 = Instant::now();
    let queue: Mutex<VecDeque<(usize, Case)>> =
        Mutex::new(selected.iter().copied().enumerate().collect());
    let done: Mutex<Vec<(usize, CaseResult)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(selected.len().max(1)) {
            s.spawn(|| loop {
                let Some((i, case)) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
                else {
                    return;
                };
                let r = run_child(&case, device.as_deref(), timeout);
                if r.status != Status::Pass {
                    let first = r
                        .output
                        .lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("");
                    println!("  {:<8} {}: {}", r.status.name(), r.name, first.trim());
                }
                done.lock().unwrap_or_else(|e| e.into_inner()).push((i, r));
            });
        }
    });
    let total = t0.elapsed();
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(i, _)| *i);
    let results: Vec<CaseResult> = done.into_iter().map(|(_, r)| r).collect();
    report(&results, total);
    let written = results::write_all(&o.output, &results, total);
    match &written {
        Ok(()) => println!(
            "results: {0}/results.csv, {0}/failures.csv, {0}/junit.xml",
            o.output.display()
        ),
        Err(e) => eprintln!("agx-fault-suite: cannot write {}: {e}", o.output.display()),
    }
    let count = |st: Status| results.iter().filter(|r| r.status == st).count();
    let failed = results.iter().filter(|r| r.status.failed()).count();
    let skipped = count(Status::Skip);
    let mut code = u8::from(failed > 0 || written.is_err());
    if o.campaign > 0 {
        println!();
        println!(
            "short campaign ({} scenarios, policy replay, seed 1):",
            o.campaign
        );
        let c = crate::campaign::campaign(&crate::CampaignOpts {
            seed: 1,
            iterations: o.campaign,
            policy: "replay".into(),
            scenario: None,
        });
        code |= u8::from(c != 0);
        println!();
    }
    // The closing line, alone, as deqp-runner and CI tooling read it: the cases' tally.
    if skipped > 0 {
        println!(
            "{} passed, {failed} failed, {skipped} skipped",
            count(Status::Pass)
        );
    } else {
        println!("{} passed, {failed} failed", count(Status::Pass));
    }
    code
}

/// The readable part: per group what ran and how it ended, and what every case checked.
fn report(results: &[CaseResult], total: Duration) {
    let mut groups: BTreeMap<&str, [usize; 5]> = BTreeMap::new();
    for r in results {
        let g = r.name.rsplit_once('.').map_or("agx", |(g, _)| g);
        let e = groups.entry(g).or_default();
        e[r.status as usize] += 1;
    }
    println!();
    println!(
        "{:<16} {:>5} {:>5} {:>5} {:>5} {:>5} {:>7}",
        "group", "cases", "pass", "fail", "skip", "crash", "timeout"
    );
    for (g, c) in &groups {
        println!(
            "{:<16} {:>5} {:>5} {:>5} {:>5} {:>5} {:>7}",
            g,
            c.iter().sum::<usize>(),
            c[Status::Pass as usize],
            c[Status::Fail as usize],
            c[Status::Skip as usize],
            c[Status::Crash as usize],
            c[Status::Timeout as usize]
        );
    }
    let passed = results.iter().filter(|r| r.status == Status::Pass).count();
    println!();
    println!(
        "{} case(s) in {:.1} s, each in its own process on a fresh simulated device.",
        results.len(),
        total.as_secs_f64()
    );
    println!(
        "Held in the {passed} passing case(s), besides each case's own point: every job ended \
         within {:?} with its fence signalled and no command left pending; no context told \
         nothing has memory different from a fault-free run; no innocent context was told \
         guilty.",
        cases::BOUND
    );
    let failed: Vec<&CaseResult> = results.iter().filter(|r| r.status.failed()).collect();
    if !failed.is_empty() {
        println!();
        println!("Failures:");
        for r in failed {
            println!(
                "  {} {} ({:.2} s)",
                r.status.name(),
                r.name,
                r.duration.as_secs_f64()
            );
            for l in r.output.lines().take(8) {
                println!("      {l}");
            }
        }
    }
}

fn run_case(case: &Case, cx: &mut CaseCtx) -> u8 {
    match (case.run)(cx) {
        Ok(()) => {
            println!("Pass");
            0
        }
        Err(CaseError::Skip(why)) => {
            println!("Skip: {why}");
            EXIT_SKIP
        }
        Err(CaseError::Fail(why)) => {
            println!("Fail: {why}");
            1
        }
    }
}

pub fn run_one(name: &str, d: &DeviceArg) -> u8 {
    let Some(case) = cases::find(name) else {
        eprintln!("agx-fault-suite: unknown case {name} (see `agx-fault-suite list`)");
        return 2;
    };
    let mut cx = CaseCtx::new(d.device.clone());
    run_case(&case, &mut cx)
}

pub fn trace(name: &str, out: &Path) -> u8 {
    let Some(case) = cases::find(name) else {
        eprintln!("agx-fault-suite: unknown case {name} (see `agx-fault-suite list`)");
        return 2;
    };
    let mut cx = CaseCtx::new(None);
    let code = run_case(&case, &mut cx);
    let Some(sim) = cx.simulators().first() else {
        eprintln!("agx-fault-suite: {name} opened no simulated device: no trace");
        return code.max(1);
    };
    if let Err(e) = std::fs::write(out, sim.trace_json()) {
        eprintln!("agx-fault-suite: cannot write {}: {e}", out.display());
        return 1;
    }
    println!(
        "trace of {name} ({} events{}) written to {} (open in ui.perfetto.dev or chrome://tracing)",
        sim.trace_events().len(),
        if cx.simulators().len() > 1 {
            format!("; the first of {} devices", cx.simulators().len())
        } else {
            String::new()
        },
        out.display()
    );
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("agx.guilty", "agx.guilty.hang_timeout"));
        assert!(matches("agx.*.hang*", "agx.guilty.hang_timeout"));
        assert!(!matches("agx.*.hang", "agx.guilty.hang_timeout"));
        assert!(matches("*replay*", "agx.innocent.replay_limit"));
    }
}
