//! Compute commands: ordered dispatches with declared memory ranges.

use std::fmt::Debug;

use super::access::{analyse, Access, AccessKind, Cause};
use super::{Region, Verdict};

/// The memory one dispatch may touch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dispatch<S> {
    /// Ranges the shader may read.
    pub reads: Vec<Region<S>>,
    /// Ranges the shader may store to (not necessarily every byte).
    pub writes: Vec<Region<S>>,
    /// Ranges the shader may both read and store to.
    pub read_writes: Vec<Region<S>>,
    /// Ranges the shader does atomics on.
    pub atomics: Vec<Region<S>>,
    /// Ranges the dispatch writes completely, every byte, whatever the data (driver-internal
    /// clears and copies): later dispatches may read them safely.
    pub overwrites: Vec<Region<S>>,
    /// The shader's accesses are not declared (or not boundable): never restartable.
    pub undeclared: bool,
    /// The dispatch may overlap the previous one (no barrier between them). False by default:
    /// each dispatch starts after the previous one's memory accesses completed.
    pub concurrent_with_previous: bool,
}

impl<S> Default for Dispatch<S> {
    fn default() -> Self {
        Self {
            reads: Vec::new(),
            writes: Vec::new(),
            read_writes: Vec::new(),
            atomics: Vec::new(),
            overwrites: Vec::new(),
            undeclared: false,
            concurrent_with_previous: false,
        }
    }
}

impl<S> Dispatch<S> {
    /// A dispatch touching no memory yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A dispatch whose accesses are not declared.
    pub fn undeclared() -> Self {
        Self {
            undeclared: true,
            ..Self::default()
        }
    }

    /// May read `r`.
    pub fn read(mut self, r: Region<S>) -> Self {
        self.reads.push(r);
        self
    }

    /// May write `r`.
    pub fn write(mut self, r: Region<S>) -> Self {
        self.writes.push(r);
        self
    }

    /// May read and write `r`.
    pub fn read_write(mut self, r: Region<S>) -> Self {
        self.read_writes.push(r);
        self
    }

    /// Atomics on `r`.
    pub fn atomic(mut self, r: Region<S>) -> Self {
        self.atomics.push(r);
        self
    }

    /// Writes every byte of `r`.
    pub fn overwrite(mut self, r: Region<S>) -> Self {
        self.overwrites.push(r);
        self
    }

    /// No barrier before this dispatch.
    pub fn concurrent(mut self) -> Self {
        self.concurrent_with_previous = true;
        self
    }
}

/// One compute command: its dispatches in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ComputeCommand<S> {
    /// The dispatches.
    pub dispatches: Vec<Dispatch<S>>,
}

impl<S> Default for ComputeCommand<S> {
    fn default() -> Self {
        Self {
            dispatches: Vec::new(),
        }
    }
}

impl<S: Copy + Ord + Debug + Default> ComputeCommand<S> {
    /// No dispatch yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a dispatch.
    pub fn dispatch(mut self, d: Dispatch<S>) -> Self {
        self.dispatches.push(d);
        self
    }

    /// Append the command's accesses to `out`; dispatch `i` is in phase `i`, unless it is
    /// concurrent with the previous one.
    pub fn lower_into(&self, out: &mut Vec<Access<S>>) {
        let mut phase = 0u32;
        for (i, d) in self.dispatches.iter().enumerate() {
            if i > 0 && !d.concurrent_with_previous {
                phase += 1;
            }
            let lists = [
                (&d.reads, AccessKind::Read),
                (&d.writes, AccessKind::MayWrite),
                (&d.read_writes, AccessKind::ReadMayWrite),
                (&d.atomics, AccessKind::Atomic),
                (&d.overwrites, AccessKind::Write),
            ];
            for (list, kind) in lists {
                out.extend(
                    list.iter()
                        .map(|r| Access::new(phase, kind, *r, Cause::Compute)),
                );
            }
            if d.undeclared {
                out.push(Access::new(
                    phase,
                    AccessKind::Unknown,
                    Region::new(S::default(), 0, 0),
                    Cause::Compute,
                ));
            }
        }
    }

    /// The command's accesses.
    pub fn accesses(&self) -> Vec<Access<S>> {
        let mut out = Vec::new();
        self.lower_into(&mut out);
        out
    }

    /// Whether the command is restartable, and why not.
    pub fn analyse(&self) -> Verdict {
        analyse(&self.accesses())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Reasons, Va};
    use super::*;

    fn x() -> Region<Va> {
        Region::va(0x1000, 0x1000)
    }
    fn y() -> Region<Va> {
        Region::va(0x2000, 0x1000)
    }

    #[test]
    fn disjoint_read_write() {
        let c = ComputeCommand::new().dispatch(Dispatch::new().read(x()).write(y()));
        assert!(c.analyse().restartable());
    }

    #[test]
    fn overlapping_read_write() {
        let c = ComputeCommand::new()
            .dispatch(Dispatch::new().read(x()).write(Region::va(0x1fff, 0x1000)));
        assert_eq!(c.analyse().reasons, Reasons::SHADER_WRITE_READ);
        let c = ComputeCommand::new().dispatch(Dispatch::new().read_write(x()));
        assert_eq!(c.analyse().reasons, Reasons::SHADER_WRITE_READ);
    }

    #[test]
    fn undeclared() {
        let c = ComputeCommand::<Va>::new().dispatch(Dispatch::undeclared());
        assert_eq!(c.analyse().reasons, Reasons::COMPUTE_UNDECLARED);
    }

    #[test]
    fn atomics() {
        let c = ComputeCommand::new().dispatch(Dispatch::new().read(x()).atomic(y()));
        assert_eq!(c.analyse().reasons, Reasons::ATOMICS);
        // A counter cleared by an earlier dispatch of the same command.
        let c = ComputeCommand::new()
            .dispatch(Dispatch::new().overwrite(y()))
            .dispatch(Dispatch::new().read(x()).atomic(y()));
        assert!(c.analyse().restartable());
        let c = ComputeCommand::new()
            .dispatch(Dispatch::new().overwrite(y()))
            .dispatch(Dispatch::new().read(x()).atomic(y()).concurrent());
        assert_eq!(c.analyse().reasons, Reasons::ATOMICS);
    }

    #[test]
    fn ordered_dispatches() {
        // Producer/consumer through an intermediate buffer written only in part ("may"):
        // conservatively not restartable, since the consumer may read bytes the producer left.
        let c = ComputeCommand::new()
            .dispatch(Dispatch::new().read(x()).write(y()))
            .dispatch(Dispatch::new().read(y()).write(Region::va(0x3000, 0x1000)));
        assert_eq!(c.analyse().reasons, Reasons::SHADER_WRITE_READ);
        // Declared as fully overwritten: restartable.
        let c = ComputeCommand::new()
            .dispatch(Dispatch::new().read(x()).overwrite(y()))
            .dispatch(Dispatch::new().read(y()).write(Region::va(0x3000, 0x1000)));
        assert!(c.analyse().restartable());
        // A later dispatch writing what an earlier one read.
        let c = ComputeCommand::new()
            .dispatch(Dispatch::new().read(x()).write(y()))
            .dispatch(Dispatch::new().write(x()));
        assert_eq!(c.analyse().reasons, Reasons::SHADER_WRITE_READ);
    }
}
