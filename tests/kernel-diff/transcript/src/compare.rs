//! Line-by-line comparison of the kernel and simulator transcripts, modulo the documented
//! differences of `expected-differences-<series>.txt`.
//!
//! That file holds entries like
//!
//! ```text
//! step: wait-flag-deadline
//! kernel: wait-flag-deadline: rc=EINVAL
//! sim: wait-flag-deadline: rc=0 first=0
//! reason: 6.1 lacks WAIT_DEADLINE (6.5); the simulator follows upstream.
//!   Continuation lines of the reason are indented.
//! ```
//!
//! separated by blank lines; `#` starts a comment line. A difference passes only when both
//! lines equal an entry's `kernel:` and `sim:` lines exactly.

use std::collections::BTreeMap;

#[derive(Debug, Default, Clone)]
pub struct Entry {
    pub step: String,
    pub kernel: String,
    pub sim: String,
    pub reason: String,
}

/// Parses an `expected-differences-<series>.txt`.
pub fn parse_expected(text: &str) -> Result<Vec<Entry>, String> {
    let mut out: Vec<Entry> = Vec::new();
    let mut cur: Option<Entry> = None;
    let mut last_key = "";
    for (n, raw) in text.lines().enumerate() {
        let n = n + 1;
        if raw.trim_start().starts_with('#') {
            continue;
        }
        if raw.trim().is_empty() {
            if let Some(e) = cur.take() {
                out.push(check(e)?);
            }
            continue;
        }
        if raw.starts_with(' ') || raw.starts_with('\t') {
            match (&mut cur, last_key) {
                (Some(e), "reason") => {
                    e.reason.push(' ');
                    e.reason.push_str(raw.trim());
                    continue;
                }
                _ => return Err(format!("line {n}: unexpected continuation line")),
            }
        }
        let Some((key, value)) = raw.split_once(':') else {
            return Err(format!("line {n}: expected `key: value`"));
        };
        let value = value.trim().to_owned();
        match key {
            "step" => {
                if let Some(e) = cur.take() {
                    out.push(check(e)?);
                }
                cur = Some(Entry {
                    step: value,
                    ..Default::default()
                });
                last_key = "step";
            }
            "kernel" | "sim" | "reason" => {
                let Some(e) = cur.as_mut() else {
                    return Err(format!("line {n}: `{key}:` before `step:`"));
                };
                match key {
                    "kernel" => e.kernel = value,
                    "sim" => e.sim = value,
                    _ => e.reason = value,
                }
                last_key = match key {
                    "kernel" => "kernel",
                    "sim" => "sim",
                    _ => "reason",
                };
            }
            _ => return Err(format!("line {n}: unknown key `{key}`")),
        }
    }
    if let Some(e) = cur.take() {
        out.push(check(e)?);
    }
    let mut seen = BTreeMap::new();
    for e in &out {
        if seen.insert(e.step.clone(), ()).is_some() {
            return Err(format!("step `{}` is listed twice", e.step));
        }
    }
    Ok(out)
}

fn check(e: Entry) -> Result<Entry, String> {
    if e.kernel.is_empty() || e.sim.is_empty() || e.reason.is_empty() {
        return Err(format!(
            "entry `{}` needs `kernel:`, `sim:` and `reason:`",
            e.step
        ));
    }
    for (side, line) in [("kernel", &e.kernel), ("sim", &e.sim)] {
        if step_of(line) != e.step {
            return Err(format!(
                "entry `{}`: its {side} line is for step `{}`",
                e.step,
                step_of(line)
            ));
        }
    }
    Ok(e)
}

/// The step name of a transcript line (up to the first `:`).
pub fn step_of(line: &str) -> &str {
    line.split_once(':').map_or(line, |(s, _)| s)
}

/// Outcome of a comparison.
#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    pub ok: bool,
    pub text: String,
}

/// Compares the transcripts; stops at the first unexplained difference.
pub fn compare(kernel: &str, sim: &str, expected: &[Entry]) -> Report {
    use std::fmt::Write;
    let by_step: BTreeMap<&str, &Entry> = expected.iter().map(|e| (e.step.as_str(), e)).collect();
    let k: Vec<&str> = kernel.lines().collect();
    let s: Vec<&str> = sim.lines().collect();
    let mut text = String::new();
    let mut equal = 0;
    let mut documented = Vec::new();
    let mut unused: Vec<&str> = Vec::new();
    let fail = |text: &mut String, msg: String| {
        let _ = writeln!(text, "FAIL: {msg}");
    };
    for (i, (kl, sl)) in k.iter().zip(&s).enumerate() {
        let n = i + 1;
        let entry = by_step.get(step_of(kl)).copied();
        if kl == sl {
            equal += 1;
            if entry.is_some() {
                unused.push(step_of(kl));
            }
            continue;
        }
        if step_of(kl) != step_of(sl) {
            fail(
                &mut text,
                format!(
                    "line {n}: the transcripts are out of step\n  kernel: {kl}\n  sim:    {sl}"
                ),
            );
            return Report { ok: false, text };
        }
        match entry {
            Some(e) if e.kernel == *kl && e.sim == *sl => {
                let _ = writeln!(text, "documented difference, line {n}: {}", e.step);
                let _ = writeln!(
                    text,
                    "  kernel: {kl}\n  sim:    {sl}\n  reason: {}",
                    e.reason
                );
                documented.push(e.step.as_str());
            }
            Some(e) => {
                fail(
                    &mut text,
                    format!(
                        "line {n}: step `{}` differs, and not as documented\n  kernel: {kl}\n  sim:    {sl}\n  documented kernel: {}\n  documented sim:    {}\n  (reason given: {})",
                        e.step, e.kernel, e.sim, e.reason
                    ),
                );
                return Report { ok: false, text };
            }
            None => {
                fail(
                    &mut text,
                    format!(
                        "line {n}: unexplained difference in step `{}`\n  kernel: {kl}\n  sim:    {sl}\n  Fix the simulator, or if this kernel is older than upstream here, document it in expected-differences-<series>.txt.",
                        step_of(kl)
                    ),
                );
                return Report { ok: false, text };
            }
        }
    }
    if k.len() != s.len() {
        let (longer, name) = if k.len() > s.len() {
            (&k, "kernel")
        } else {
            (&s, "sim")
        };
        fail(
            &mut text,
            format!(
                "the {name} transcript is longer ({} vs {} lines); next line: {}",
                k.len().max(s.len()),
                k.len().min(s.len()),
                longer[k.len().min(s.len())]
            ),
        );
        return Report { ok: false, text };
    }
    if k.last().is_none_or(|l| step_of(l) != "done") {
        fail(
            &mut text,
            "the transcripts do not end with the `done` step (the program stopped early)".into(),
        );
        return Report { ok: false, text };
    }
    for e in expected {
        let st = e.step.as_str();
        if unused.contains(&st) {
            let _ = writeln!(
                text,
                "note: documented difference `{st}` no longer differs (both sides: same line)"
            );
        } else if !documented.contains(&st) {
            let _ = writeln!(
                text,
                "note: documented difference `{st}` has no such step in the transcripts"
            );
        }
    }
    let _ = writeln!(
        text,
        "PASS: {} lines, {equal} identical, {} documented differences",
        k.len(),
        documented.len()
    );
    Report { ok: true, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXP: &str =
        "# comment\nstep: b\nkernel: b: rc=EINVAL\nsim: b: rc=0\nreason: upstream\n  has it\n";

    #[test]
    fn parses_and_compares() {
        let e = parse_expected(EXP).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].reason, "upstream has it");
        let k = "a: rc=0\nb: rc=EINVAL\ndone: rc=0\n";
        let s = "a: rc=0\nb: rc=0\ndone: rc=0\n";
        let r = compare(k, s, &e);
        assert!(r.ok, "{}", r.text);
        assert!(r.text.contains("documented difference"));
        let s2 = "a: rc=ENOENT\nb: rc=0\ndone: rc=0\n";
        let r = compare(k, s2, &e);
        assert!(!r.ok);
        assert!(r.text.contains("unexplained difference in step `a`"));
        let s3 = "a: rc=0\nb: rc=ETIME\ndone: rc=0\n";
        assert!(!compare(k, s3, &e).ok);
        assert!(!compare(k, "a: rc=0\nb: rc=0\n", &e).ok);
        assert!(!compare("a: rc=0\n", "a: rc=0\n", &[]).ok);
    }

    #[test]
    fn rejects_bad_entries() {
        assert!(parse_expected("step: x\nkernel: y: 1\nsim: x: 2\nreason: r\n").is_err());
        assert!(parse_expected("step: x\nkernel: x: 1\nreason: r\n").is_err());
        assert!(parse_expected("kernel: x: 1\n").is_err());
    }
}
