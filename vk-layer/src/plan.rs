//! The fault plan (`AGX_FAULT_PLAN`) and the fault model that turns it into a decision per
//! submission.
//!
//! Grammar (terms separated by commas, blanks around terms ignored, submissions counted per
//! `VkDevice` from 1 over `vkQueueSubmit` and `vkQueueSubmit2` calls):
//!
//! ```text
//! plan  := term ( "," term )*
//! term  := "guilty@" N | "hang@" N | "neighbor@" N | "neighbor-every@" K
//! N, K  := decimal integer >= 1
//! ```
//!
//! [`FaultModel`] is the one seam where the layer decides what happens to a submission; a
//! shadow job on the simulated device can replace it without touching the rest of the layer.

use std::fmt;

use agx_winsys::outcome::{FaultInfo, FaultKind, FaultUnit};

/// One term of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Term {
    /// Submission N faults on an invalid write: the application is guilty.
    Guilty(u64),
    /// Submission N hangs and the watchdog kills it: the application is guilty.
    Hang(u64),
    /// Another context faults while submission N is in flight: the application is innocent.
    Neighbor(u64),
    /// Like `Neighbor` for every K-th submission (K, 2K, ...).
    NeighborEvery(u64),
}

/// A parsed plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub terms: Vec<Term>,
}

/// Why a plan was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanError {
    pub term: String,
    pub why: &'static str,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad term {:?}: {} (expected guilty@N, hang@N, neighbor@N or neighbor-every@K with \
             N, K >= 1, separated by commas)",
            self.term, self.why
        )
    }
}

impl Plan {
    /// Parses a plan; an empty string is the empty plan.
    pub fn parse(s: &str) -> Result<Plan, PlanError> {
        let mut terms = Vec::new();
        if s.trim().is_empty() {
            return Ok(Plan { terms });
        }
        for raw in s.split(',') {
            let t = raw.trim();
            let err = |why| PlanError {
                term: t.to_string(),
                why,
            };
            let (name, n) = t.split_once('@').ok_or_else(|| err("missing '@'"))?;
            let n: u64 = n
                .trim()
                .parse()
                .map_err(|_| err("the count is not a decimal number"))?;
            if n == 0 {
                return Err(err("counts start at 1"));
            }
            terms.push(match name.trim() {
                "guilty" => Term::Guilty(n),
                "hang" => Term::Hang(n),
                "neighbor" => Term::Neighbor(n),
                "neighbor-every" => Term::NeighborEvery(n),
                _ => return Err(err("unknown fault kind")),
            });
        }
        Ok(Plan { terms })
    }

    /// Whether some term makes the application an innocent victim (then the layer must track
    /// what command buffers access).
    pub fn has_neighbor(&self) -> bool {
        self.terms
            .iter()
            .any(|t| matches!(t, Term::Neighbor(_) | Term::NeighborEvery(_)))
    }
}

/// What happens to one submission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// It runs normally.
    Run,
    /// It faults and the application is guilty.
    Guilty(FaultInfo),
    /// It hangs and is killed by the watchdog (guilty).
    Hang,
    /// Another context faults while it runs: it is stopped half-way; replayed if restartable,
    /// otherwise the device is lost (innocent).
    Neighbor,
}

/// The synthetic GPU address reported for a guilty fault of submission `n`: page-aligned,
/// distinct per submission, far from anything a driver would hand out first.
pub fn injected_fault_address(n: u64) -> u64 {
    0x0000_7fde_ad00_0000 | ((n & 0xfff) << 12)
}

/// Decides the fate of each submission of one device.
#[derive(Clone, Debug, Default)]
pub struct FaultModel {
    plan: Plan,
}

impl FaultModel {
    pub fn new(plan: Plan) -> Self {
        Self { plan }
    }

    /// Whether no submission can ever fault (the fast path).
    pub fn is_idle(&self) -> bool {
        self.plan.terms.is_empty()
    }

    /// Whether the model may ever call a submission an innocent victim.
    pub fn needs_tracking(&self) -> bool {
        self.plan.has_neighbor()
    }

    /// The decision for submission `n` (1-based). Guilty terms win over neighbor terms.
    pub fn on_submit(&self, n: u64) -> Decision {
        let mut d = Decision::Run;
        for t in &self.plan.terms {
            match *t {
                Term::Guilty(k) if k == n => {
                    return Decision::Guilty(FaultInfo {
                        kind: FaultKind::Injected,
                        unit: FaultUnit::Fragment,
                        write: true,
                        address: Some(injected_fault_address(n)),
                    })
                }
                Term::Hang(k) if k == n => return Decision::Hang,
                Term::Neighbor(k) if k == n => d = Decision::Neighbor,
                Term::NeighborEvery(k) if n % k == 0 => d = Decision::Neighbor,
                _ => {}
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(Plan::parse("").unwrap(), Plan::default());
        let p = Plan::parse("guilty@3, neighbor@1,neighbor-every@4,hang@9").unwrap();
        assert_eq!(
            p.terms,
            vec![
                Term::Guilty(3),
                Term::Neighbor(1),
                Term::NeighborEvery(4),
                Term::Hang(9)
            ]
        );
        assert!(p.has_neighbor());
        assert!(!Plan::parse("guilty@1").unwrap().has_neighbor());
    }

    #[test]
    fn rejects() {
        for bad in [
            "guilty",
            "guilty@0",
            "guilty@x",
            "bogus@1",
            "guilty@1,",
            "neighbor@-1",
        ] {
            let e = Plan::parse(bad).unwrap_err();
            assert!(e.to_string().contains("bad term"), "{bad}: {e}");
        }
    }

    #[test]
    fn decides() {
        let m = FaultModel::new(Plan::parse("neighbor-every@2,guilty@4,hang@5").unwrap());
        assert_eq!(m.on_submit(1), Decision::Run);
        assert_eq!(m.on_submit(2), Decision::Neighbor);
        assert!(matches!(m.on_submit(4), Decision::Guilty(f) if f.address.is_some()));
        assert_eq!(m.on_submit(5), Decision::Hang);
        assert_eq!(m.on_submit(6), Decision::Neighbor);
        assert!(FaultModel::default().is_idle());
        assert_eq!(injected_fault_address(1) % 4096, 0);
    }
}
