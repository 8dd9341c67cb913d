//! The caselist: groups of dEQP tests (`tools/deqp/groups.txt`, each with the reason it is
//! there), sampled evenly, written as the plain list deqp-runner reads (`caselist.txt`), and the
//! CI slice (`ci-caselist.txt`): the groups marked `ci` whole, plus every N-th other test.
//!
//! Groups file lines (blank lines and `#` comments, which say why each group is there, are
//! skipped):
//!
//! ```text
//! <max> <pattern> [ci]
//! ```
//!
//! `<max>` is the number of tests to take from those matching `<pattern>` (dEQP's wildcard
//! syntax, as `--deqp-case` takes it), evenly spaced in dEQP's order, or `all`; `ci` puts the
//! whole group in the CI slice. A test matched by two groups counts once, in the first.

use std::path::Path;
use std::process::Command;

/// One group of the groups file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub max: Option<usize>,
    pub pattern: String,
    pub ci: bool,
    /// 1-based line in the groups file.
    pub line: usize,
}

/// Parses the groups file.
pub fn parse_groups(text: &str) -> Result<Vec<Group>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let bad = |why: &str| format!("groups line {}: {why}: {raw:?}", i + 1);
        if f.len() < 2 || f.len() > 3 {
            return Err(bad("expected `<max> <pattern> [ci]`"));
        }
        let max = match f[0] {
            "all" => None,
            n => Some(
                n.parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| bad("<max> is a positive number or `all`"))?,
            ),
        };
        let ci = match f.get(2) {
            None => false,
            Some(&"ci") => true,
            Some(_) => return Err(bad("the third field can only be `ci`")),
        };
        if !f[1].starts_with("dEQP-VK") {
            return Err(bad("patterns start with dEQP-VK"));
        }
        out.push(Group {
            max,
            pattern: f[1].to_string(),
            ci,
            line: i + 1,
        });
    }
    Ok(out)
}

/// `k` of `items`, evenly spaced (all of them when `k` is `None` or not smaller).
pub fn sample<T: Clone>(items: &[T], k: Option<usize>) -> Vec<T> {
    let n = items.len();
    match k {
        Some(k) if k < n => (0..k).map(|i| items[i * n / k].clone()).collect(),
        _ => items.to_vec(),
    }
}

/// The tests dEQP knows that match `pattern`, in its order.
pub fn list_tests(deqp: &Path, pattern: &str) -> Result<Vec<String>, String> {
    let dir = deqp.parent().ok_or("the dEQP binary has no directory")?;
    let out = Command::new(deqp)
        .current_dir(dir)
        .arg("--deqp-runmode=stdout-caselist")
        .arg(format!("--deqp-case={pattern}"))
        .output()
        .map_err(|e| format!("{}: {e}", deqp.display()))?;
    if !out.status.success() {
        return Err(format!(
            "listing {pattern}: {} ({})",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("TEST: "))
        .map(|t| t.trim().to_string())
        .collect())
}

/// A built caselist.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Built {
    /// Every test, in group order.
    pub all: Vec<String>,
    /// The CI slice.
    pub ci: Vec<String>,
    /// Per group: (groups file line, tests matched, tests taken).
    pub counts: Vec<(usize, usize, usize)>,
}

/// The caselist and the CI slice from the groups (`list` gives a pattern's tests).
pub fn build(
    groups: &[Group],
    ci_every: usize,
    mut list: impl FnMut(&str) -> Result<Vec<String>, String>,
) -> Result<Built, String> {
    let mut seen = std::collections::HashSet::new();
    let mut all = Vec::new();
    let mut ci_whole = Vec::new();
    // Per group: (line, matched, taken).
    let mut counts = Vec::new();
    for g in groups {
        let matched = list(&g.pattern)?;
        if matched.is_empty() {
            return Err(format!(
                "groups line {}: {} matches no test",
                g.line, g.pattern
            ));
        }
        let fresh: Vec<String> = matched
            .iter()
            .filter(|t| !seen.contains(*t))
            .cloned()
            .collect();
        let taken = sample(&fresh, g.max);
        for t in &taken {
            seen.insert(t.clone());
            if g.ci {
                ci_whole.push(t.clone());
            }
        }
        counts.push((g.line, matched.len(), taken.len()));
        all.extend(taken);
    }
    let mut ci = ci_whole.clone();
    let rest: Vec<&String> = all.iter().filter(|t| !ci_whole.contains(t)).collect();
    ci.extend(rest.iter().step_by(ci_every.max(1)).map(|t| (*t).clone()));
    Ok(Built { all, ci, counts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_file() {
        let g = parse_groups(
            "# why\n\n300 dEQP-VK.draw.*\nall dEQP-VK-experimental.postmortem.device_fault.* ci\n",
        )
        .unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].max, Some(300));
        assert!(!g[0].ci);
        assert_eq!(g[1].max, None);
        assert!(g[1].ci);
        assert_eq!(g[1].line, 4);
        for bad in [
            "0 dEQP-VK.x",
            "x dEQP-VK.x",
            "1 draw.*",
            "1 dEQP-VK.x cix",
            "1",
        ] {
            assert!(parse_groups(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn evenly_spaced() {
        let v: Vec<u32> = (0..10).collect();
        assert_eq!(sample(&v, Some(5)), vec![0, 2, 4, 6, 8]);
        assert_eq!(sample(&v, Some(3)), vec![0, 3, 6]);
        assert_eq!(sample(&v, Some(20)), v);
        assert_eq!(sample(&v, None), v);
    }

    #[test]
    fn build_dedups_and_slices() {
        let groups = parse_groups("2 dEQP-VK.a.*\nall dEQP-VK.b.* ci\n3 dEQP-VK.all.*\n").unwrap();
        let b = build(&groups, 2, |p| {
            Ok(match p {
                "dEQP-VK.a.*" => vec!["a1", "a2", "a3", "a4"],
                "dEQP-VK.b.*" => vec!["b1"],
                _ => vec!["a1", "b1", "c1", "c2"],
            }
            .into_iter()
            .map(String::from)
            .collect())
        })
        .unwrap();
        assert_eq!(b.all, ["a1", "a3", "b1", "c1", "c2"]);
        assert_eq!(b.ci, ["b1", "a1", "c1"]);
        assert_eq!(b.counts, [(1, 4, 2), (2, 1, 1), (3, 4, 2)]);
        assert!(build(&groups, 1, |_| Ok(Vec::new())).is_err());
    }
}
