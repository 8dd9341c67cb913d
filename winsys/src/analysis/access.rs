//! The generic access model and the analysis proper.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Debug;

use super::{Reasons, Region, Verdict};

/// How one access touches the bytes of its range.
///
/// "Every byte" kinds ([`Write`](Self::Write), [`ReadModifyWrite`](Self::ReadModifyWrite)) must
/// really touch every byte of the range unconditionally whenever the command runs: they are what
/// makes a later read of those bytes safe. When in doubt use the "may" kinds, which are always
/// sound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessKind {
    /// May read any byte of the range (reads need not be complete).
    Read,
    /// Writes every byte of the range: an attachment store, a clear, a fill, a copy destination,
    /// a query reset.
    Write,
    /// May write some bytes of the range (shader stores, scattered writes, partial-render spills).
    MayWrite,
    /// Reads every byte of the range, then writes every byte (an in-place transform).
    ReadModifyWrite,
    /// May read and may write bytes of the range (a shader's read-write storage buffer).
    ReadMayWrite,
    /// Atomic or accumulating read-modify-write of some bytes of the range (atomics, query
    /// counters, append counters), whether or not the old value is returned.
    Atomic,
    /// Touches memory that cannot be bounded (bindless, buffer device address); the region is
    /// only a hint for diagnostics. Always makes the command not restartable.
    Unknown,
}

impl AccessKind {
    /// Whether the access may read bytes of its range.
    pub fn reads(self) -> bool {
        matches!(
            self,
            Self::Read | Self::ReadModifyWrite | Self::ReadMayWrite | Self::Atomic | Self::Unknown
        )
    }

    /// Whether the access may write bytes of its range.
    pub fn writes(self) -> bool {
        !matches!(self, Self::Read)
    }

    /// Whether the access writes every byte of its range (so later phases may read them).
    pub fn covers(self) -> bool {
        matches!(self, Self::Write | Self::ReadModifyWrite)
    }
}

/// What issued an access. It does not change whether a command is restartable, only which
/// [`Reasons`] are reported for a conflict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Cause {
    /// A transfer or any other fixed-function access (copies, fills, resolves).
    #[default]
    Transfer,
    /// Loading an attachment into the tile buffer at the start of a render pass.
    AttachmentLoad,
    /// Loading an attachment that is then blended onto (or otherwise read back in the tile:
    /// logic ops, partial write masks, framebuffer fetch).
    BlendedLoad,
    /// Writing the tile buffer to an attachment (final store or partial-render spill).
    AttachmentStore,
    /// A graphics shader's memory access (storage buffers and images, textures, vertex data).
    Shader,
    /// A compute shader's memory access.
    Compute,
    /// An occlusion query's counter (reset or accumulate).
    OcclusionQuery,
    /// Transform feedback: captured data or its counter.
    TransformFeedback,
    /// A timestamp write (the value differs between runs, as it does between any two runs).
    Timestamp,
}

const N_CAUSES: usize = 9;
const N_READ_CLASSES: usize = 2 * N_CAUSES;

impl Cause {
    fn index(self) -> usize {
        self as usize
    }

    fn from_index(i: usize) -> Self {
        const ALL: [Cause; N_CAUSES] = [
            Cause::Transfer,
            Cause::AttachmentLoad,
            Cause::BlendedLoad,
            Cause::AttachmentStore,
            Cause::Shader,
            Cause::Compute,
            Cause::OcclusionQuery,
            Cause::TransformFeedback,
            Cause::Timestamp,
        ];
        ALL[i]
    }

    fn unknown_reason(self) -> Reasons {
        match self {
            Cause::Compute => Reasons::COMPUTE_UNDECLARED,
            _ => Reasons::UNKNOWN_ACCESS,
        }
    }

    fn accumulate_reason(self) -> Reasons {
        match self {
            Cause::OcclusionQuery => Reasons::OCCLUSION_ACCUMULATE,
            Cause::TransformFeedback => Reasons::XFB_APPEND,
            _ => Reasons::ATOMICS,
        }
    }
}

/// The reason reported when an exposed read by `read` (atomic or not) hits bytes `write` writes.
pub(super) fn conflict_reason(read: Cause, read_atomic: bool, write: Cause) -> Reasons {
    use Cause::*;
    if read_atomic {
        return read.accumulate_reason();
    }
    match (read, write) {
        (BlendedLoad, _) => Reasons::BLEND_ON_LOADED,
        (Shader | Compute, _) | (_, Shader | Compute) => Reasons::SHADER_WRITE_READ,
        (_, OcclusionQuery) => Reasons::OCCLUSION_ACCUMULATE,
        (_, TransformFeedback) => Reasons::XFB_APPEND,
        _ => Reasons::LOAD_STORE_SAME,
    }
}

/// One memory access of a command.
///
/// Accesses are ordered by `phase`: every access of a phase completes before any access of a
/// later phase starts (a barrier, the end of the load stage of a render pass, the next
/// dispatch after a barrier). Accesses of the same phase are unordered and may interleave. The
/// order of the slice given to [`analyse`] does not matter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Access<S> {
    /// Ordering phase; see above.
    pub phase: u32,
    /// How the bytes are touched.
    pub kind: AccessKind,
    /// The bytes.
    pub region: Region<S>,
    /// Who accesses them (only used to name the [`Reasons`]).
    pub cause: Cause,
}

impl<S> Access<S> {
    /// An access.
    pub const fn new(phase: u32, kind: AccessKind, region: Region<S>, cause: Cause) -> Self {
        Self {
            phase,
            kind,
            region,
            cause,
        }
    }
}

/// Decide whether a command made of `accesses` is restartable.
///
/// A command is restartable when no byte is both read at some phase `p` without having been
/// written by a covering ([`AccessKind::covers`]) access of a phase before `p`, and written
/// (by any access, at any phase, including the reading access itself); when no atomic touches
/// bytes not covered by an earlier phase; and when no access is [`AccessKind::Unknown`]. See the
/// [module documentation](super) for what this promises.
///
/// Runs in `O(n log n)` for `n` accesses, whatever their sizes.
pub fn analyse<S: Copy + Ord + Debug>(accesses: &[Access<S>]) -> Verdict {
    #[cfg(feature = "analysis-mutants")]
    if let Some(m) = super::mutants::active() {
        return super::mutants::analyse(m, accesses);
    }
    analyse_real(accesses)
}

/// [`analyse`], never mutated.
pub(super) fn analyse_real<S: Copy + Ord + Debug>(accesses: &[Access<S>]) -> Verdict {
    let mut reasons = Reasons::empty();
    let mut events: Vec<Event<S>> = Vec::with_capacity(accesses.len() * 2);
    for (i, a) in accesses.iter().enumerate() {
        if a.kind == AccessKind::Unknown {
            reasons |= a.cause.unknown_reason();
            continue;
        }
        if a.region.is_empty() {
            continue;
        }
        let idx = u32::try_from(i).expect("more than 2^32 accesses");
        events.push(Event {
            space: a.region.space,
            pos: u128::from(a.region.start),
            idx,
            start: true,
        });
        events.push(Event {
            space: a.region.space,
            pos: a.region.end(),
            idx,
            start: false,
        });
    }
    if events.is_empty() {
        return Verdict { reasons };
    }
    events.sort_unstable_by(|a, b| a.space.cmp(&b.space).then(a.pos.cmp(&b.pos)));

    let mut sweep = Sweep::new(accesses.len());
    let mut i = 0;
    while i < events.len() {
        let (space, pos) = (events[i].space, events[i].pos);
        while i < events.len() && events[i].space == space && events[i].pos == pos {
            let e = &events[i];
            let a = &accesses[e.idx as usize];
            if e.start {
                sweep.enter(e.idx, a);
            } else {
                sweep.leave(e.idx, a);
            }
            i += 1;
        }
        // The elementary segment [pos, next pos) is covered by exactly the live accesses; when
        // the next event is in another space (or there is none) nothing is live any more.
        if i < events.len() && events[i].space == space {
            reasons |= sweep.segment();
        }
    }
    Verdict { reasons }
}

struct Event<S> {
    space: S,
    pos: u128,
    idx: u32,
    start: bool,
}

type MinHeap = BinaryHeap<Reverse<(u32, u32)>>;

/// Live accesses over the current elementary segment.
struct Sweep {
    live: Vec<bool>,
    /// Per read class (cause, atomic): (phase, access) of the live reads, lazily pruned.
    reads: [MinHeap; N_READ_CLASSES],
    read_count: [u32; N_READ_CLASSES],
    read_mask: u32,
    /// Live covering writes (phase, access), lazily pruned.
    covers: MinHeap,
    cover_count: u32,
    /// Per cause: live writes of any kind.
    write_count: [u32; N_CAUSES],
    write_mask: u32,
}

fn read_class<S>(a: &Access<S>) -> usize {
    a.cause.index() * 2 + usize::from(a.kind == AccessKind::Atomic)
}

fn min_live(heap: &mut MinHeap, live: &[bool]) -> Option<u32> {
    while let Some(&Reverse((phase, idx))) = heap.peek() {
        if live[idx as usize] {
            return Some(phase);
        }
        heap.pop();
    }
    None
}

impl Sweep {
    fn new(n: usize) -> Self {
        Self {
            live: vec![false; n],
            reads: std::array::from_fn(|_| BinaryHeap::new()),
            read_count: [0; N_READ_CLASSES],
            read_mask: 0,
            covers: BinaryHeap::new(),
            cover_count: 0,
            write_count: [0; N_CAUSES],
            write_mask: 0,
        }
    }

    fn enter<S>(&mut self, idx: u32, a: &Access<S>) {
        self.live[idx as usize] = true;
        if a.kind.reads() {
            let rc = read_class(a);
            self.reads[rc].push(Reverse((a.phase, idx)));
            self.read_count[rc] += 1;
            self.read_mask |= 1 << rc;
        }
        if a.kind.writes() {
            let wc = a.cause.index();
            self.write_count[wc] += 1;
            self.write_mask |= 1 << wc;
        }
        if a.kind.covers() {
            self.covers.push(Reverse((a.phase, idx)));
            self.cover_count += 1;
        }
    }

    fn leave<S>(&mut self, idx: u32, a: &Access<S>) {
        self.live[idx as usize] = false;
        if a.kind.reads() {
            let rc = read_class(a);
            self.read_count[rc] -= 1;
            if self.read_count[rc] == 0 {
                self.reads[rc].clear();
                self.read_mask &= !(1 << rc);
            }
        }
        if a.kind.writes() {
            let wc = a.cause.index();
            self.write_count[wc] -= 1;
            if self.write_count[wc] == 0 {
                self.write_mask &= !(1 << wc);
            }
        }
        if a.kind.covers() {
            self.cover_count -= 1;
            if self.cover_count == 0 {
                self.covers.clear();
            }
        }
    }

    /// Reasons contributed by the current segment.
    fn segment(&mut self) -> Reasons {
        let mut reasons = Reasons::empty();
        if self.read_mask == 0 || self.write_mask == 0 {
            return reasons;
        }
        // First phase that overwrote the whole segment; reads of later phases are not exposed.
        let covered_from = min_live(&mut self.covers, &self.live);
        let mut rm = self.read_mask;
        while rm != 0 {
            let rc = rm.trailing_zeros() as usize;
            rm &= rm - 1;
            let first_read = min_live(&mut self.reads[rc], &self.live)
                .expect("read class mask out of sync with its heap");
            if covered_from.is_some_and(|c| c < first_read) {
                continue;
            }
            let (cause, atomic) = (Cause::from_index(rc / 2), rc % 2 == 1);
            let mut wm = self.write_mask;
            while wm != 0 {
                let wc = wm.trailing_zeros() as usize;
                wm &= wm - 1;
                reasons |= conflict_reason(cause, atomic, Cause::from_index(wc));
            }
        }
        reasons
    }
}

/// A builder of ordered accesses for [`analyse`], for callers that record their own accesses
/// (a Vulkan layer's transfer commands, tests).
///
/// Accesses are added to the current phase; [`barrier`](Self::barrier) starts the next one.
#[derive(Clone, Debug)]
pub struct AccessList<S> {
    accesses: Vec<Access<S>>,
    phase: u32,
}

impl<S> Default for AccessList<S> {
    fn default() -> Self {
        Self {
            accesses: Vec::new(),
            phase: 0,
        }
    }
}

impl<S: Copy + Ord + Debug> AccessList<S> {
    /// An empty list at phase 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The phase new accesses are added to.
    pub fn phase(&self) -> u32 {
        self.phase
    }

    /// Everything added so far completes before anything added later starts.
    pub fn barrier(&mut self) -> &mut Self {
        self.phase += 1;
        self
    }

    /// Add an access to the current phase.
    pub fn push(&mut self, kind: AccessKind, region: Region<S>, cause: Cause) -> &mut Self {
        self.accesses
            .push(Access::new(self.phase, kind, region, cause));
        self
    }

    /// May read `region`.
    pub fn read(&mut self, region: Region<S>) -> &mut Self {
        self.push(AccessKind::Read, region, Cause::Transfer)
    }

    /// Writes every byte of `region`.
    pub fn write(&mut self, region: Region<S>) -> &mut Self {
        self.push(AccessKind::Write, region, Cause::Transfer)
    }

    /// May write bytes of `region`.
    pub fn may_write(&mut self, region: Region<S>) -> &mut Self {
        self.push(AccessKind::MayWrite, region, Cause::Transfer)
    }

    /// Reads then writes every byte of `region`.
    pub fn read_modify_write(&mut self, region: Region<S>) -> &mut Self {
        self.push(AccessKind::ReadModifyWrite, region, Cause::Transfer)
    }

    /// Atomics on `region`.
    pub fn atomic(&mut self, region: Region<S>) -> &mut Self {
        self.push(AccessKind::Atomic, region, Cause::Transfer)
    }

    /// An access that cannot be bounded; `hint` is only for diagnostics.
    pub fn unknown(&mut self, hint: Region<S>) -> &mut Self {
        self.push(AccessKind::Unknown, hint, Cause::Transfer)
    }

    /// A copy: reads `src` and writes all of `dst`, interleaved (same phase), so overlapping
    /// source and destination are caught.
    pub fn copy(&mut self, src: Region<S>, dst: Region<S>) -> &mut Self {
        self.read(src).write(dst)
    }

    /// A fill or clear of all of `dst`.
    pub fn fill(&mut self, dst: Region<S>) -> &mut Self {
        self.write(dst)
    }

    /// Append accesses (their phases are kept as they are).
    pub fn extend(&mut self, accesses: impl IntoIterator<Item = Access<S>>) -> &mut Self {
        self.accesses.extend(accesses);
        self
    }

    /// The accesses added so far.
    pub fn accesses(&self) -> &[Access<S>] {
        &self.accesses
    }

    /// The accesses, by value.
    pub fn into_vec(self) -> Vec<Access<S>> {
        self.accesses
    }

    /// [`analyse`] the accesses added so far.
    pub fn analyse(&self) -> Verdict {
        analyse(&self.accesses)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Va;
    use super::*;

    fn va(start: u64, len: u64) -> Region<Va> {
        Region::va(start, len)
    }

    #[test]
    fn empty_command_is_restartable() {
        assert!(analyse::<Va>(&[]).restartable());
        assert!(AccessList::<Va>::new().analyse().restartable());
    }

    #[test]
    fn read_x_write_y() {
        let mut l = AccessList::new();
        l.read(va(0, 100)).write(va(100, 100));
        assert!(l.analyse().restartable());
        let mut l = AccessList::new();
        l.read(va(0, 101)).write(va(100, 100));
        assert_eq!(l.analyse().reasons, Reasons::LOAD_STORE_SAME);
    }

    #[test]
    fn byte_granularity() {
        // [0x1000, 0x1040) vs [0x1040, 0x1080): touching, not overlapping.
        let mut l = AccessList::new();
        l.read(va(0x1000, 0x40)).write(va(0x1040, 0x40));
        assert!(l.analyse().restartable());
        // One byte of overlap at either end.
        let mut l = AccessList::new();
        l.read(va(0x1000, 0x41)).write(va(0x1040, 0x40));
        assert!(!l.analyse().restartable());
        let mut l = AccessList::new();
        l.write(va(0x1000, 0x40)).read(va(0x103f, 0x40));
        assert!(!l.analyse().restartable());
    }

    #[test]
    fn write_then_read_is_fine() {
        let mut l = AccessList::new();
        l.write(va(0, 64))
            .barrier()
            .read(va(0, 64))
            .write(va(64, 64));
        assert!(l.analyse().restartable());
        // ... but not in the same phase (the read may run first) ...
        let mut l = AccessList::new();
        l.write(va(0, 64)).read(va(0, 64));
        assert!(!l.analyse().restartable());
        // ... nor when the write only covers part of the read ...
        let mut l = AccessList::new();
        l.write(va(0, 63))
            .barrier()
            .read(va(0, 64))
            .barrier()
            .write(va(63, 1));
        assert!(!l.analyse().restartable());
        // ... nor when the earlier write is only a "may" write.
        let mut l = AccessList::new();
        l.may_write(va(0, 64)).barrier().read(va(0, 64));
        assert!(!l.analyse().restartable());
    }

    #[test]
    fn read_then_write_later_is_not() {
        let mut l = AccessList::new();
        l.read(va(0, 64)).barrier().write(va(32, 64));
        assert_eq!(l.analyse().reasons, Reasons::LOAD_STORE_SAME);
    }

    #[test]
    fn write_covering_across_pieces() {
        // The read is covered by two earlier writes together.
        let mut l = AccessList::new();
        l.write(va(0, 32))
            .write(va(32, 32))
            .barrier()
            .read(va(0, 64))
            .write(va(0, 64));
        assert!(l.analyse().restartable());
    }

    #[test]
    fn rmw() {
        let mut l = AccessList::new();
        l.read_modify_write(va(0, 16));
        assert_eq!(l.analyse().reasons, Reasons::LOAD_STORE_SAME);
        // An RMW of memory fully written before is fine, and itself covers later reads.
        let mut l = AccessList::new();
        l.fill(va(0, 16))
            .barrier()
            .read_modify_write(va(0, 16))
            .barrier()
            .read(va(0, 16))
            .write(va(0, 16));
        assert!(l.analyse().restartable());
    }

    #[test]
    fn atomics() {
        let mut l = AccessList::new();
        l.atomic(va(0, 4));
        assert_eq!(l.analyse().reasons, Reasons::ATOMICS);
        // Atomics on memory the command reset first are restartable.
        let mut l = AccessList::new();
        l.fill(va(0, 4)).barrier().atomic(va(0, 4));
        assert!(l.analyse().restartable());
        // Not when the reset is concurrent.
        let mut l = AccessList::new();
        l.fill(va(0, 4)).atomic(va(0, 4));
        assert_eq!(l.analyse().reasons, Reasons::ATOMICS);
    }

    #[test]
    fn unknown() {
        let mut l = AccessList::new();
        l.read(va(0, 4)).unknown(va(0, 0));
        assert_eq!(l.analyse().reasons, Reasons::UNKNOWN_ACCESS);
        let a = [Access::new(
            0,
            AccessKind::Unknown,
            va(0, 0),
            Cause::Compute,
        )];
        assert_eq!(analyse(&a).reasons, Reasons::COMPUTE_UNDECLARED);
    }

    #[test]
    fn spaces_do_not_alias() {
        // Vulkan-layer style: (memory object, offset).
        let mut l = AccessList::<u32>::new();
        l.read(Region::new(1, 0, 64)).write(Region::new(2, 0, 64));
        assert!(l.analyse().restartable());
        l.write(Region::new(1, 60, 8));
        assert!(!l.analyse().restartable());
    }

    #[test]
    fn copy_overlap() {
        let mut l = AccessList::new();
        l.copy(va(0, 64), va(64, 64));
        assert!(l.analyse().restartable());
        let mut l = AccessList::new();
        l.copy(va(0, 64), va(32, 64));
        assert!(!l.analyse().restartable());
        // Copy back what an earlier copy wrote: fine.
        let mut l = AccessList::new();
        l.copy(va(0, 64), va(64, 64))
            .barrier()
            .copy(va(64, 64), va(128, 64));
        assert!(l.analyse().restartable());
    }

    #[test]
    fn huge_ranges_do_not_wrap() {
        let mut l = AccessList::new();
        l.read(va(u64::MAX - 1, u64::MAX)).write(va(0, 16));
        assert!(l.analyse().restartable());
        l.write(va(u64::MAX, 1));
        assert!(!l.analyse().restartable());
    }

    #[test]
    fn slice_order_does_not_matter() {
        let a = [
            Access::new(1, AccessKind::Read, va(0, 8), Cause::Transfer),
            Access::new(0, AccessKind::Write, va(0, 8), Cause::Transfer),
            Access::new(1, AccessKind::Write, va(0, 8), Cause::Transfer),
        ];
        assert!(analyse(&a).restartable());
    }

    #[test]
    fn many_accesses() {
        // A read spanning many written pieces: the gaps are exposed, but nobody writes them.
        let mut l = AccessList::new();
        for i in 0..1000u64 {
            l.write(va(i * 16, 8));
        }
        l.barrier().read(va(0, 16_000));
        assert!(l.analyse().restartable());
        l.barrier().may_write(va(16 * 500 + 8, 1));
        assert!(!l.analyse().restartable());
        let mut l = AccessList::new();
        for i in 0..1000u64 {
            l.write(va(i * 16, 16));
        }
        l.barrier().read(va(0, 16_000));
        assert!(l.analyse().restartable());
    }
}
