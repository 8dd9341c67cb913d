//! Deliberate bugs in the analysis, switched in at run time, for the mutation check of the
//! soundness and fault campaigns (`agx-fault-suite mutants`): each campaign must catch every
//! one of them, which shows that its "0 violations" says something about the real analysis.
//!
//! Only built with the cargo feature `analysis-mutants`, which nothing but that check enables;
//! with no mutant selected (the default) [`super::analyse`] is the real analysis. One build
//! serves every mutant: [`set`] selects one for the whole process.
//!
//! Each mutant rewrites the access list that the real analysis then judges, the way a bug in a
//! description's lowering or in the sweep would (see the variants of [`Mutant`]).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU8, Ordering};

use super::access::{analyse_real, Access, AccessKind, Cause};
use super::{Reasons, Verdict};

/// One deliberate bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mutant {
    /// Blending onto a loaded attachment is not seen as reading it: loads feeding a blend
    /// (`Cause::BlendedLoad`) are dropped.
    IgnoreBlendOnLoaded,
    /// Accesses conflict only when they name exactly the same range (API-object identity
    /// instead of bytes): two different ranges over shared memory never do.
    IgnoreAliasing,
    /// Atomics (and accumulating counters) are taken for plain may-writes.
    AtomicsAsPlainWrites,
    /// A covering write protects a read whatever their phases (the write-before-read phase
    /// rule is dropped): a write at the end covers a read at the start.
    DropPhaseRule,
    /// An access that cannot be bounded is trusted to touch nothing.
    TrustUnknown,
}

impl Mutant {
    /// Every mutant.
    pub const ALL: [Mutant; 5] = [
        Mutant::IgnoreBlendOnLoaded,
        Mutant::IgnoreAliasing,
        Mutant::AtomicsAsPlainWrites,
        Mutant::DropPhaseRule,
        Mutant::TrustUnknown,
    ];

    /// Its name on command lines (`ignore-blend-on-loaded`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Mutant::IgnoreBlendOnLoaded => "ignore-blend-on-loaded",
            Mutant::IgnoreAliasing => "ignore-aliasing",
            Mutant::AtomicsAsPlainWrites => "atomics-as-plain-writes",
            Mutant::DropPhaseRule => "drop-phase-rule",
            Mutant::TrustUnknown => "trust-unknown",
        }
    }

    /// Parses a [`Mutant::name`].
    pub fn from_name(name: &str) -> Option<Mutant> {
        Mutant::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// 0: none; else 1 + index in [`Mutant::ALL`].
static ACTIVE: AtomicU8 = AtomicU8::new(0);

/// Selects the mutant every later analysis in this process runs with (`None`: the real one).
pub fn set(m: Option<Mutant>) {
    let v = m.map_or(0, |m| {
        1 + Mutant::ALL.iter().position(|x| *x == m).expect("listed") as u8
    });
    ACTIVE.store(v, Ordering::SeqCst);
}

/// The mutant in force.
pub fn active() -> Option<Mutant> {
    match ACTIVE.load(Ordering::SeqCst) {
        0 => None,
        v => Some(Mutant::ALL[v as usize - 1]),
    }
}

/// The analysis of `accesses` with mutant `m`.
pub(super) fn analyse<S: Copy + Ord + Debug>(m: Mutant, accesses: &[Access<S>]) -> Verdict {
    let mut v: Vec<Access<S>> = accesses.to_vec();
    match m {
        Mutant::IgnoreBlendOnLoaded => v.retain(|a| a.cause != Cause::BlendedLoad),
        Mutant::IgnoreAliasing => {
            let mut groups: BTreeMap<_, Vec<Access<S>>> = BTreeMap::new();
            for a in v {
                groups.entry(a.region).or_default().push(a);
            }
            let mut reasons = Reasons::empty();
            for g in groups.values() {
                reasons |= analyse_real(g).reasons;
            }
            return Verdict { reasons };
        }
        Mutant::AtomicsAsPlainWrites => {
            for a in &mut v {
                if a.kind == AccessKind::Atomic {
                    a.kind = AccessKind::MayWrite;
                }
            }
        }
        Mutant::DropPhaseRule => {
            // Every covering write first, everything else after it.
            for a in &mut v {
                a.phase = if a.kind.covers() { 0 } else { 1 };
            }
        }
        Mutant::TrustUnknown => v.retain(|a| a.kind != AccessKind::Unknown),
    }
    analyse_real(&v)
}

#[cfg(test)]
mod tests {
    use super::super::{AccessList, Region, Va};
    use super::*;

    /// One command the real analysis refuses and each mutant accepts (the campaigns' work is
    /// built so that each such mistake corrupts memory when the command is replayed).
    fn witness(m: Mutant) -> Vec<Access<Va>> {
        let r = |a, n| Region::va(a, n);
        let mut l = AccessList::new();
        match m {
            Mutant::IgnoreBlendOnLoaded => {
                l.push(AccessKind::Read, r(0, 64), Cause::BlendedLoad)
                    .barrier()
                    .push(AccessKind::Write, r(0, 64), Cause::AttachmentStore);
            }
            Mutant::IgnoreAliasing => {
                l.read(r(0, 64)).write(r(32, 64));
            }
            Mutant::AtomicsAsPlainWrites => {
                l.atomic(r(0, 8));
            }
            Mutant::DropPhaseRule => {
                l.read(r(0, 64)).barrier().write(r(0, 64));
            }
            Mutant::TrustUnknown => {
                l.unknown(r(0, 0));
            }
        }
        l.into_vec()
    }

    #[test]
    fn each_mutant_accepts_what_the_real_analysis_refuses() {
        for m in Mutant::ALL {
            let w = witness(m);
            assert!(!analyse_real(&w).restartable(), "{m:?}");
            assert!(analyse(m, &w).restartable(), "{m:?}");
            assert_eq!(Mutant::from_name(m.name()), Some(m));
        }
    }
}
