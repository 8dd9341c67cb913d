//! Test-only reference models for the analysis:
//!
//! - an executable byte-level model of a command (reads feed a running hash, writes store values
//!   derived from it, atomics increment), run once versus interrupted at every point and re-run
//!   from the start; "safe" means every interruption (one or two) leaves the memory of one run;
//! - a byte-by-byte implementation of the analysis rule, to check the sweep and its reasons.
//!
//! Precision: on commands of reads, writes, read-modify-writes and atomics (every byte, totally
//! ordered) the analysis must agree exactly with the executable model. With "may" accesses
//! (which bytes are written is not known) it must only never be wrong when it says restartable.

use proptest::prelude::*;

use super::access::conflict_reason;
use super::{analyse, Access, AccessKind, Cause, Reasons, Region};

const CELLS: usize = 16;
const SPACES: usize = 2;

/// How the executable model touches each byte of a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    Rmw,
    /// Atomic increment of the bytes in the mask (returning: the old value feeds the hash).
    Atomic(u16),
    MayWrite(u16),
    ReadMayWrite(u16),
}

#[derive(Clone, Copy, Debug)]
struct Acc {
    phase: u32,
    kind: Kind,
    space: u8,
    start: u8,
    len: u8,
    /// Order among the accesses of the same phase in the executed schedule.
    key: u8,
}

impl Acc {
    fn lower(&self) -> Access<u8> {
        let kind = match self.kind {
            Kind::Read => AccessKind::Read,
            Kind::Write => AccessKind::Write,
            Kind::Rmw => AccessKind::ReadModifyWrite,
            Kind::Atomic(_) => AccessKind::Atomic,
            Kind::MayWrite(_) => AccessKind::MayWrite,
            Kind::ReadMayWrite(_) => AccessKind::ReadMayWrite,
        };
        Access::new(
            self.phase,
            kind,
            Region::new(self.space, u64::from(self.start), u64::from(self.len)),
            Cause::Transfer,
        )
    }
}

#[derive(Clone, Copy)]
enum Op {
    Read,
    Write,
    Rmw,
    Inc,
}

struct Step {
    op: Op,
    cell: usize,
    salt: u64,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn steps(accs: &[Acc]) -> Vec<Step> {
    let mut order: Vec<usize> = (0..accs.len()).collect();
    order.sort_by_key(|&i| (accs[i].phase, accs[i].key, i));
    let mut out = Vec::new();
    for i in order {
        let a = &accs[i];
        for j in 0..a.len as usize {
            let cell = a.space as usize * CELLS + a.start as usize + j;
            let bit = |m: u16| m & (1 << j) != 0;
            let op = match a.kind {
                Kind::Read => Some(Op::Read),
                Kind::Write => Some(Op::Write),
                Kind::Rmw => Some(Op::Rmw),
                Kind::Atomic(m) => bit(m).then_some(Op::Inc),
                Kind::MayWrite(m) => bit(m).then_some(Op::Write),
                Kind::ReadMayWrite(m) => Some(if bit(m) { Op::Rmw } else { Op::Read }),
            };
            if let Some(op) = op {
                out.push(Step {
                    op,
                    cell,
                    salt: (i as u64) << 8 | j as u64,
                });
            }
        }
    }
    out
}

/// Run the first `limit` steps on `mem` (a fresh run: the hash starts from scratch).
fn run(mem: &mut [u64], steps: &[Step], limit: usize) {
    let mut h = 0x1234_5678u64;
    for s in &steps[..limit] {
        let m = &mut mem[s.cell];
        match s.op {
            Op::Read => h = mix(h ^ *m),
            Op::Write => *m = mix(h ^ s.salt.rotate_left(32)),
            Op::Rmw => {
                h = mix(h ^ *m);
                *m = mix(h ^ s.salt.rotate_left(32));
            }
            Op::Inc => {
                h = mix(h ^ *m);
                *m = m.wrapping_add(1);
            }
        }
    }
}

/// Whether re-running from every interruption point (and from two nested ones, sampled) leaves
/// the memory of one run.
fn reference_safe(accs: &[Acc], init: &[u64]) -> bool {
    let steps = steps(accs);
    let n = steps.len();
    let mut once = init.to_vec();
    run(&mut once, &steps, n);
    let rerun_from = |mut mem: Vec<u64>| {
        run(&mut mem, &steps, n);
        mem == once
    };
    for k in 0..=n {
        let mut m = init.to_vec();
        run(&mut m, &steps, k);
        if !rerun_from(m.clone()) {
            return false;
        }
        // Interrupted again during the replay.
        for k2 in (0..=n).step_by(n / 4 + 1) {
            let mut m2 = m.clone();
            run(&mut m2, &steps, k2);
            if !rerun_from(m2) {
                return false;
            }
        }
    }
    true
}

/// The analysis rule, byte by byte (quadratic), with its reasons.
fn rule_bytewise<S: Copy + Ord + std::fmt::Debug>(accs: &[Access<S>]) -> Reasons {
    let mut reasons = Reasons::empty();
    let has = |a: &Access<S>, s: S, b: u64| {
        a.kind != AccessKind::Unknown
            && a.region.space == s
            && a.region.start <= b
            && u128::from(b) < a.region.end()
    };
    let mut points: Vec<(S, u64)> = Vec::new();
    for a in accs {
        if a.kind == AccessKind::Unknown {
            reasons |= if a.cause == Cause::Compute {
                Reasons::COMPUTE_UNDECLARED
            } else {
                Reasons::UNKNOWN_ACCESS
            };
            continue;
        }
        for b in a.region.start..a.region.start + a.region.len {
            points.push((a.region.space, b));
        }
    }
    points.sort();
    points.dedup();
    for (s, b) in points {
        for r in accs.iter().filter(|r| r.kind.reads() && has(r, s, b)) {
            let covered = accs
                .iter()
                .any(|c| c.kind.covers() && c.phase < r.phase && has(c, s, b));
            if covered {
                continue;
            }
            for w in accs.iter().filter(|w| w.kind.writes() && has(w, s, b)) {
                reasons |= conflict_reason(r.cause, r.kind == AccessKind::Atomic, w.cause);
            }
        }
    }
    reasons
}

fn full_acc(max_phase: u32) -> impl Strategy<Value = Acc> {
    (
        0..=max_phase,
        prop_oneof![
            Just(Kind::Read),
            Just(Kind::Write),
            Just(Kind::Rmw),
            Just(Kind::Atomic(u16::MAX)),
        ],
        0..SPACES as u8,
        0..CELLS as u8,
        1..=8u8,
        any::<u8>(),
    )
        .prop_map(|(phase, kind, space, start, len, key)| Acc {
            phase,
            kind,
            space,
            start,
            len: len.min(CELLS as u8 - start),
            key,
        })
}

fn any_acc(max_phase: u32) -> impl Strategy<Value = Acc> {
    (
        full_acc(max_phase),
        prop_oneof![
            Just(None),
            any::<u16>().prop_map(|m| Some(Kind::MayWrite(m))),
            any::<u16>().prop_map(|m| Some(Kind::ReadMayWrite(m))),
            any::<u16>().prop_map(|m| Some(Kind::Atomic(m))),
        ],
    )
        .prop_map(|(mut a, k)| {
            if let Some(k) = k {
                a.kind = k;
            }
            a
        })
}

/// Totally ordered: phase = position.
fn ordered(mut accs: Vec<Acc>) -> Vec<Acc> {
    for (i, a) in accs.iter_mut().enumerate() {
        a.phase = i as u32;
    }
    accs
}

fn memory() -> impl Strategy<Value = Vec<u64>> {
    proptest::collection::vec(any::<u64>(), CELLS * SPACES)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Exact on fully declared, totally ordered commands.
    #[test]
    fn exact_on_full_accesses(
        accs in proptest::collection::vec(full_acc(0), 1..6).prop_map(ordered),
        init in memory(),
    ) {
        let lowered: Vec<_> = accs.iter().map(Acc::lower).collect();
        prop_assert_eq!(analyse(&lowered).restartable(), reference_safe(&accs, &init));
    }

    /// Never wrong when it says restartable: "may" accesses, concurrent phases, any schedule.
    #[test]
    fn sound_on_any_accesses(
        accs in proptest::collection::vec(any_acc(3), 1..7),
        init in memory(),
    ) {
        let lowered: Vec<_> = accs.iter().map(Acc::lower).collect();
        if analyse(&lowered).restartable() {
            prop_assert!(reference_safe(&accs, &init));
        }
    }

    /// The sweep computes exactly the byte-by-byte rule, reasons included.
    #[test]
    fn sweep_matches_bytewise_rule(
        accs in proptest::collection::vec(
            (0..4u32, 0..7usize, 0..9usize, 0..3u8, 0..24u64, 0..12u64),
            0..12,
        ),
    ) {
        const KINDS: [AccessKind; 7] = [
            AccessKind::Read, AccessKind::Write, AccessKind::MayWrite,
            AccessKind::ReadModifyWrite, AccessKind::ReadMayWrite, AccessKind::Atomic,
            AccessKind::Unknown,
        ];
        const CAUSES: [Cause; 9] = [
            Cause::Transfer, Cause::AttachmentLoad, Cause::BlendedLoad,
            Cause::AttachmentStore, Cause::Shader, Cause::Compute, Cause::OcclusionQuery,
            Cause::TransformFeedback, Cause::Timestamp,
        ];
        let lowered: Vec<Access<u8>> = accs
            .iter()
            .map(|&(phase, k, c, space, start, len)| {
                Access::new(phase, KINDS[k], Region::new(space, start, len), CAUSES[c])
            })
            .collect();
        prop_assert_eq!(analyse(&lowered).reasons, rule_bytewise(&lowered));
    }
}

/// A census over random fully declared commands: the analysis must agree with the executable
/// model on every one (precision 100%), with a fair share of restartable ones. Run with
/// `--nocapture` to see the figures.
#[test]
fn precision_census() {
    let mut seed = 0x5eed_u64;
    let mut next = move |n: u64| {
        seed = mix(seed);
        seed % n
    };
    let (mut total, mut safe, mut said) = (0, 0, 0);
    for _ in 0..4000 {
        let n = 1 + next(5) as usize;
        let accs: Vec<Acc> = (0..n)
            .map(|i| {
                let start = next(CELLS as u64) as u8;
                Acc {
                    phase: i as u32,
                    kind: [Kind::Read, Kind::Write, Kind::Rmw, Kind::Atomic(u16::MAX)]
                        [next(4) as usize],
                    space: next(SPACES as u64) as u8,
                    start,
                    len: (1 + next(8) as u8).min(CELLS as u8 - start),
                    key: 0,
                }
            })
            .collect();
        let init: Vec<u64> = (0..CELLS * SPACES).map(|_| next(u64::MAX)).collect();
        let lowered: Vec<_> = accs.iter().map(Acc::lower).collect();
        let r = reference_safe(&accs, &init);
        let a = analyse(&lowered).restartable();
        assert_eq!(a, r, "{accs:?}");
        total += 1;
        safe += usize::from(r);
        said += usize::from(a);
    }
    eprintln!(
        "precision census: {total} commands, {safe} safe by the reference, {said} restartable \
         by the analysis"
    );
    assert!(safe > total / 10, "too few restartable commands: {safe}");
}

/// The executable model itself tells safe from unsafe commands.
#[test]
fn reference_sanity() {
    let a = |phase, kind, start, len| Acc {
        phase,
        kind,
        space: 0,
        start,
        len,
        key: 0,
    };
    let init: Vec<u64> = (0..(CELLS * SPACES) as u64).map(mix).collect();
    let safe = |accs: &[Acc]| reference_safe(accs, &init);
    assert!(!safe(&[a(0, Kind::Read, 0, 4), a(1, Kind::Write, 3, 4)]));
    assert!(safe(&[a(0, Kind::Read, 0, 4), a(1, Kind::Write, 4, 4)]));
    assert!(safe(&[
        a(0, Kind::Write, 0, 4),
        a(1, Kind::Read, 0, 4),
        a(2, Kind::Write, 0, 8)
    ]));
    assert!(!safe(&[a(0, Kind::Atomic(1), 0, 1)]));
    assert!(safe(&[
        a(0, Kind::Write, 0, 1),
        a(1, Kind::Atomic(1), 0, 1)
    ]));
    assert!(!safe(&[a(0, Kind::Rmw, 0, 1)]));
    // A "may" write that happens to write everything covers the read: the analysis, not
    // knowing which bytes are written, says no (its documented gap).
    let accs = [
        a(0, Kind::MayWrite(u16::MAX), 0, 4),
        a(1, Kind::Read, 0, 4),
        a(2, Kind::Write, 0, 4),
    ];
    assert!(safe(&accs));
    let lowered: Vec<_> = accs.iter().map(Acc::lower).collect();
    assert!(!analyse(&lowered).restartable());
}
