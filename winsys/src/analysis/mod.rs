//! Restartability (idempotency) analysis: may the firmware re-run a GPU command from its start
//! after aborting it for someone else's fault?
//!
//! # What "restartable" promises
//!
//! A command is *restartable* when running it from its start on the memory left by any number of
//! partial executions of itself (each stopped at an arbitrary point, with its partial writes left
//! in memory), and then to completion, leaves exactly the memory that one complete run would
//! leave. The kernel may then replay it after a stop-the-world recovery
//! (`DRM_ASAHI_EXT_JOB_RESTARTABLE`, see `docs/uapi-fault-extension.md`), invisibly to the
//! application. It is decided on memory ranges, never on API objects, so aliasing (two images or
//! buffers over the same memory) is handled by construction:
//!
//! - bytes the command reads before it has written them itself (its *exposed* reads) must not be
//!   written anywhere in the command, by any access;
//! - an atomic or accumulating access (atomics, occlusion counters, transform-feedback appends) is
//!   a read-modify-write: fine only on bytes the same command overwrote completely before;
//! - every access must be known: one [`AccessKind::Unknown`] access (bindless, buffer device
//!   address, undeclared compute) makes the command not restartable.
//!
//! The analysis never calls restartable a command whose description is accurate but whose re-run
//! changes memory; it is exact (restartable whenever every interruption point is safe) for
//! commands made of reads, definite writes, read-modify-writes and atomics in distinct phases
//! (checked against a byte-level executable model in the tests). Its only conservative points
//! are the "may" accesses (a [`AccessKind::MayWrite`] does not count as covering later reads, and
//! [`AccessKind::Read`] means "may read any byte of the range") and accesses of the same phase,
//! which are assumed to interleave in any order. It assumes nothing about determinism: values
//! may differ between runs (timestamps, races), but no exposed read ever sees the command's own
//! writes, so a replay is always some complete run.
//!
//! The caller's part of the contract: **every** memory range the command may read or write is
//! described (attachments, textures, vertex/index/uniform buffers if they might alias anything the
//! command writes, storage buffers, query and counter memory), and anything that cannot be bounded
//! is [`AccessKind::Unknown`]. Memory the command privately initialises before use (tiler heap,
//! scratch, the control stream itself) is not part of it.
//!
//! # Layers
//!
//! - [`analyse`]: the generic entry point over ordered [`Access`]es, generic over the address
//!   space `S` (GPU VAs with [`Va`]; `(VkDeviceMemory, offset)` in a Vulkan layer with a memory
//!   id as `S`). [`AccessList`] builds such lists (phases, transfer helpers).
//! - [`RenderPass`]: a tiler render pass (attachments with load/store ops, blending, depth and
//!   stencil, shader side effects, queries, transform feedback, timestamps), lowered to accesses.
//! - [`ComputeCommand`]: ordered dispatches with declared ranges.
//!
//! The verdict's [`Reasons`] bits are the uAPI's `DRM_ASAHI_EXT_REASON_*` values, so
//! `verdict.reasons.bits()` goes straight into `drm_asahi_ext_job_info::reasons`.
//!
//! Cost: `O(n log n)` in the number of accesses (one sort and a sweep with heaps), no per-byte
//! work; a render pass with a dozen attachments takes about a microsecond.

mod access;
mod compute;
#[cfg(feature = "analysis-mutants")]
pub mod mutants;
mod render;
mod verdict;

#[cfg(test)]
mod reference;

pub use access::{analyse, Access, AccessKind, AccessList, Cause};
pub use compute::{ComputeCommand, Dispatch};
pub use render::{
    ColorAttachment, DepthStencilAttachment, LoadOp, OcclusionQuery, RenderPass, ShaderAccess,
    ShaderAccessKind, SideEffects, StoreOp, TransformFeedback,
};
pub use verdict::{Reasons, Verdict};

/// The address space of GPU virtual addresses (the kernel path): one space per VM, so the space
/// carries no data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Va;

/// A byte range `[start, start + len)` in address space `space`.
///
/// Ranges in different spaces never overlap. For GPU VAs use [`Va`] (see [`Region::va`]); a
/// Vulkan layer uses its memory-object id, so that two images bound to the same
/// `VkDeviceMemory` at overlapping offsets alias. Empty ranges touch nothing. A range running
/// past `u64::MAX` is treated as ending at 2^64 (it is not wrapped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region<S> {
    /// Address space (memory object, VM, ...).
    pub space: S,
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
}

impl<S> Region<S> {
    /// `[start, start + len)` in `space`.
    pub const fn new(space: S, start: u64, len: u64) -> Self {
        Self { space, start, len }
    }

    /// One past the last byte, as a 65-bit number (never wraps).
    pub fn end(&self) -> u128 {
        u128::from(self.start) + u128::from(self.len)
    }

    /// Whether the range holds no byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes of an image or buffer of `texels` elements of `bytes_per_texel` bytes, repeated
    /// for `layers` layers `layer_stride` bytes apart, as one covering range (the layers and any
    /// padding between them are included, which is conservative for reads and writes alike).
    ///
    /// Returns `None` when the size overflows `u64`.
    pub fn image(
        space: S,
        base: u64,
        bytes_per_texel: u64,
        texels: u64,
        layers: u64,
        layer_stride: u64,
    ) -> Option<Self> {
        if layers == 0 {
            return Some(Self::new(space, base, 0));
        }
        let layer = bytes_per_texel.checked_mul(texels)?;
        let len = layer_stride.checked_mul(layers - 1)?.checked_add(layer)?;
        Some(Self::new(space, base, len))
    }

    /// Whether the two ranges share at least one byte.
    pub fn overlaps(&self, other: &Self) -> bool
    where
        S: PartialEq,
    {
        self.space == other.space
            && !self.is_empty()
            && !other.is_empty()
            && u128::from(self.start) < other.end()
            && u128::from(other.start) < self.end()
    }
}

impl Region<Va> {
    /// A GPU VA range.
    pub const fn va(start: u64, len: u64) -> Self {
        Self::new(Va, start, len)
    }
}
