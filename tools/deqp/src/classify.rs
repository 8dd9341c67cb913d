//! How one test's result under the layer compares with its result without the layer.
//!
//! Pure logic over deqp-runner's statuses (its `results.csv`) and one fact read from the test's
//! log: whether the test saw `VK_ERROR_DEVICE_LOST`.

use std::collections::BTreeMap;
use std::fmt;

/// A result as deqp-runner writes it in `results.csv` (dEQP's `NotSupported` is `Skip`, its
/// `InternalError` and `ResourceError` are `Fail`, `DeviceLost` aborts the process: `Crash`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Pass,
    Fail,
    Skip,
    Crash,
    Flake,
    KnownFlake,
    Warn,
    Missing,
    ExpectedFail,
    UnexpectedImprovement,
    Timeout,
}

impl Status {
    /// Parses a `results.csv` status (`UnexpectedImprovement(Pass)` and the like included).
    pub fn parse(s: &str) -> Option<Status> {
        if s.starts_with("UnexpectedImprovement(") {
            return Some(Status::UnexpectedImprovement);
        }
        Some(match s {
            "Pass" => Status::Pass,
            "Fail" => Status::Fail,
            "Skip" => Status::Skip,
            "Crash" => Status::Crash,
            "Flake" => Status::Flake,
            "KnownFlake" => Status::KnownFlake,
            "Warn" => Status::Warn,
            "Missing" => Status::Missing,
            "ExpectedFail" => Status::ExpectedFail,
            "Timeout" => Status::Timeout,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "Pass",
            Status::Fail => "Fail",
            Status::Skip => "Skip",
            Status::Crash => "Crash",
            Status::Flake => "Flake",
            Status::KnownFlake => "KnownFlake",
            Status::Warn => "Warn",
            Status::Missing => "Missing",
            Status::ExpectedFail => "ExpectedFail",
            Status::UnexpectedImprovement => "UnexpectedImprovement",
            Status::Timeout => "Timeout",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a `results.csv` (`test,status,duration` lines).
pub fn parse_results(text: &str) -> Result<BTreeMap<String, Status>, String> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut f = line.split(',');
        let (Some(test), Some(status)) = (f.next(), f.next()) else {
            return Err(format!("results.csv line {}: {line:?}", i + 1));
        };
        let status = Status::parse(status)
            .ok_or_else(|| format!("results.csv line {}: unknown status {status:?}", i + 1))?;
        out.insert(test.to_string(), status);
    }
    Ok(out)
}

/// What happened to a test under the layer, compared with the run without it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// The same status as without the layer (a passing test passed: replayed invisibly, or
    /// never hit).
    Same,
    /// Passes with the layer, did not without: a test of what the layer adds (e.g.
    /// `VK_EXT_device_fault`, not supported by the driver alone).
    Gained,
    /// A new failure whose log says `VK_ERROR_DEVICE_LOST`: allowed under a plan.
    DeviceLost,
    /// A test of the known-flakes list (`lavapipe-flakes.txt`) failed in either run: the
    /// driver's own flakiness, never counted as Pass nor as a rule violation.
    KnownFlake,
    /// Failed, then passed on deqp-runner's retry (its `Flake`), and not a known flake:
    /// reported; under a `neighbor` plan a violation (a wrong result or a hang once is one).
    Flaky,
    /// Any other new failure: never allowed under a `neighbor` plan.
    WrongResult,
    Crash,
    Timeout,
}

impl Class {
    pub const ALL: [Class; 8] = [
        Class::Same,
        Class::Gained,
        Class::DeviceLost,
        Class::KnownFlake,
        Class::Flaky,
        Class::WrongResult,
        Class::Crash,
        Class::Timeout,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Same => "Same",
            Class::Gained => "Gained",
            Class::DeviceLost => "DeviceLost",
            Class::KnownFlake => "KnownFlake",
            Class::Flaky => "Flaky",
            Class::WrongResult => "WrongResult",
            Class::Crash => "Crash",
            Class::Timeout => "Timeout",
        }
    }
}

/// Classifies one test: `base` without the layer, `run` with it, `device_lost` whether the
/// run's log of the test shows `VK_ERROR_DEVICE_LOST`.
pub fn classify(base: Status, run: Status, device_lost: bool) -> Class {
    // A flake of the baseline is the driver's own, whatever deqp-runner's list says.
    if run == Status::KnownFlake || base == Status::KnownFlake || base == Status::Flake {
        return Class::KnownFlake;
    }
    if run == base {
        return Class::Same;
    }
    match run {
        Status::Pass => Class::Gained,
        Status::Timeout => Class::Timeout,
        Status::Flake => Class::Flaky,
        _ if device_lost => Class::DeviceLost,
        Status::Crash => Class::Crash,
        _ => Class::WrongResult,
    }
}

/// Whether a class breaks the rule of a run: with the layer and no plan nothing may change
/// but tests the layer makes supported (`Gained` from `Skip`) and known flakes; under a `neighbor` plan no
/// WrongResult, Crash or Timeout; under other plans (guilty, hang) losses and what a lost
/// application does next are the point, so only crashes and timeouts break it.
pub fn breaks_rule(kind: PlanKind, base: Status, class: Class) -> bool {
    match kind {
        PlanKind::NoPlan => match class {
            // A failure that did not come back on deqp-runner's retry: reported, not blamed
            // (nothing of the layer runs differently without a plan; see tools/deqp/README).
            Class::Same | Class::KnownFlake | Class::Flaky => false,
            Class::Gained => base != Status::Skip,
            _ => true,
        },
        PlanKind::Neighbor => matches!(
            class,
            Class::WrongResult | Class::Flaky | Class::Crash | Class::Timeout
        ),
        PlanKind::Guilty => matches!(class, Class::Crash | Class::Timeout),
    }
}

/// What a run's plan is, for [`breaks_rule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanKind {
    NoPlan,
    /// Only `neighbor` terms: every fault must be replayed invisibly or lose the device.
    Neighbor,
    /// Some `guilty` or `hang` term: the device is meant to be lost.
    Guilty,
}

impl PlanKind {
    pub fn of(plan: &str) -> PlanKind {
        let terms: Vec<&str> = plan
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if terms.is_empty() {
            PlanKind::NoPlan
        } else if terms.iter().all(|t| t.starts_with("neighbor")) {
            PlanKind::Neighbor
        } else {
            PlanKind::Guilty
        }
    }
}

/// Whether a test's log shows a lost device: dEQP's `DeviceLost` status (it aborts the run on
/// `VK_ERROR_DEVICE_LOST`), or the error named in the test's messages.
pub fn log_shows_device_lost(text: &str) -> bool {
    text.contains("StatusCode=\"DeviceLost\"")
        || text.contains("VK_ERROR_DEVICE_LOST")
        || text.contains("  DeviceLost (")
        // A test that checks a call's result itself: `vkWaitForFences Fail (DEVICE_LOST)`.
        || text.contains("Fail (DEVICE_LOST)")
}

/// The part of a dEQP stdout log about `test` (from its `Test case '...'..` line to the next
/// test's, or the end).
pub fn stdout_section<'a>(log: &'a str, test: &str) -> Option<&'a str> {
    let start = log.find(&format!("Test case '{test}'.."))?;
    let rest = &log[start..];
    let end = rest[1..].find("Test case '").map_or(rest.len(), |e| e + 1);
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        use Status::*;
        assert_eq!(classify(Pass, Pass, false), Class::Same);
        assert_eq!(classify(Skip, Skip, true), Class::Same);
        assert_eq!(classify(Skip, Pass, false), Class::Gained);
        assert_eq!(classify(Pass, Crash, true), Class::DeviceLost);
        assert_eq!(classify(Pass, Fail, true), Class::DeviceLost);
        assert_eq!(classify(Pass, Crash, false), Class::Crash);
        assert_eq!(classify(Pass, Fail, false), Class::WrongResult);
        assert_eq!(classify(Pass, Flake, false), Class::Flaky);
        assert_eq!(classify(Flake, Pass, false), Class::KnownFlake);
        assert_eq!(classify(Pass, Skip, false), Class::WrongResult);
        assert_eq!(classify(Pass, Timeout, true), Class::Timeout);
        assert_eq!(classify(Fail, Crash, false), Class::Crash);
        assert_eq!(classify(Pass, KnownFlake, false), Class::KnownFlake);
        assert_eq!(classify(KnownFlake, Pass, false), Class::KnownFlake);
        assert_eq!(classify(KnownFlake, KnownFlake, false), Class::KnownFlake);
    }

    #[test]
    fn rules() {
        use Class::*;
        let n = PlanKind::of("neighbor-every@1");
        assert_eq!(n, PlanKind::Neighbor);
        assert_eq!(PlanKind::of(""), PlanKind::NoPlan);
        assert_eq!(PlanKind::of("guilty@3"), PlanKind::Guilty);
        assert_eq!(PlanKind::of("neighbor@2,hang@9"), PlanKind::Guilty);
        assert!(!breaks_rule(n, Status::Pass, DeviceLost));
        assert!(breaks_rule(n, Status::Pass, WrongResult));
        assert!(breaks_rule(n, Status::Pass, Timeout));
        assert!(breaks_rule(n, Status::Pass, Crash));
        assert!(!breaks_rule(PlanKind::NoPlan, Status::Skip, Gained));
        assert!(breaks_rule(PlanKind::NoPlan, Status::Fail, Gained));
        assert!(breaks_rule(PlanKind::NoPlan, Status::Pass, DeviceLost));
        assert!(!breaks_rule(PlanKind::NoPlan, Status::Pass, Flaky));
        assert!(breaks_rule(
            PlanKind::of("neighbor-every@1"),
            Status::Pass,
            Flaky
        ));
        assert!(!breaks_rule(PlanKind::Guilty, Status::Pass, WrongResult));
        for k in [PlanKind::NoPlan, n, PlanKind::Guilty] {
            assert!(!breaks_rule(k, Status::Pass, KnownFlake));
        }
    }

    #[test]
    fn results_csv() {
        let r = parse_results(
            "dEQP-VK.a,Pass,0.1\ndEQP-VK.b,Crash,2\n\ndEQP-VK.c,UnexpectedImprovement(Pass),1\n",
        )
        .unwrap();
        assert_eq!(r["dEQP-VK.a"], Status::Pass);
        assert_eq!(r["dEQP-VK.b"], Status::Crash);
        assert_eq!(r["dEQP-VK.c"], Status::UnexpectedImprovement);
        assert!(parse_results("dEQP-VK.a,Bogus,1\n").is_err());
        assert!(parse_results("nocomma\n").is_err());
    }

    #[test]
    fn device_lost_in_logs() {
        let log = "Test case 'dEQP-VK.a'..\n  Pass (ok)\n\nTest case 'dEQP-VK.b'..\n  \
                   DeviceLost (vk.waitForFences(...): VK_ERROR_DEVICE_LOST at x.cpp:1)\n\nDONE!\n";
        assert!(!log_shows_device_lost(
            stdout_section(log, "dEQP-VK.a").unwrap()
        ));
        assert!(log_shows_device_lost(
            stdout_section(log, "dEQP-VK.b").unwrap()
        ));
        assert!(stdout_section(log, "dEQP-VK.c").is_none());
        assert!(log_shows_device_lost(
            "<Result StatusCode=\"DeviceLost\">x</Result>"
        ));
        assert!(!log_shows_device_lost(
            "<Result StatusCode=\"Fail\">Image comparison failed</Result>"
        ));
        assert!(log_shows_device_lost(
            "<Text>Vulkan::Calling vkWaitForFences Fail (DEVICE_LOST)\n</Text>"
        ));
    }
}
