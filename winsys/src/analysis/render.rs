//! Render passes on a tiler, lowered to ordered accesses.
//!
//! Memory model of one render pass (one hardware render command), in three phases:
//!
//! 1. *load*: each attachment with [`LoadOp::Load`] is read from memory into the tile buffer;
//!    occlusion queries reset in the command are written.
//! 2. *draw*: shaders run with their declared memory accesses; occlusion counters accumulate;
//!    transform feedback writes; and, when the tiler runs out of memory, partial renders spill
//!    every attachment to its memory and reload it (the spill always covers what the reload
//!    reads, so only the spill is a memory effect of its own).
//! 3. *end*: attachments with [`StoreOp::Store`] are written; timestamps are written.
//!
//! Blending, depth/stencil testing and writes happen in the tile buffer, not in memory: what
//! matters is whether memory that was loaded is written back. Clear-then-blend never reads
//! memory and is restartable; load-then-blend-then-store is not.

use std::fmt::Debug;

use super::access::{analyse, Access, AccessKind, Cause};
use super::{Region, Verdict};

const LOAD: u32 = 0;
const DRAW: u32 = 1;
const END: u32 = 2;

/// What happens to an attachment's memory at the start of the pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LoadOp {
    /// The attachment's memory is read into the tile buffer.
    Load,
    /// The tile buffer is cleared; memory is not read.
    Clear,
    /// The tile buffer starts undefined; memory is not read.
    #[default]
    DontCare,
}

/// What happens to an attachment's memory at the end of the pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StoreOp {
    /// The tile buffer is written to the attachment's memory (all of `region`).
    #[default]
    Store,
    /// Not written at the end (partial-render spills may still write it).
    DontCare,
}

/// A color attachment (or a resolve target: `DontCare` load, `Store` store).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ColorAttachment<S> {
    /// Every byte of the attachment the pass may load or store (format size x pixels x layers
    /// of the render area, see [`Region::image`]).
    pub region: Region<S>,
    /// Load op.
    pub load: LoadOp,
    /// Store op.
    pub store: StoreOp,
    /// The tile's previous content feeds its new content: blending, logic ops, partial color
    /// write masks, framebuffer fetch. Only matters with [`LoadOp::Load`] (it names the reason).
    pub blend: bool,
}

impl<S> ColorAttachment<S> {
    /// An attachment without blending.
    pub fn new(region: Region<S>, load: LoadOp, store: StoreOp) -> Self {
        Self {
            region,
            load,
            store,
            blend: false,
        }
    }

    /// With blending (or another read of the tile) onto its content.
    pub fn blended(mut self) -> Self {
        self.blend = true;
        self
    }
}

/// The depth or the stencil aspect of a depth/stencil attachment (describe each aspect that has
/// memory; combined formats can describe the same region twice).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DepthStencilAttachment<S> {
    /// Every byte the pass may load or store for this aspect.
    pub region: Region<S>,
    /// Load op.
    pub load: LoadOp,
    /// Store op.
    pub store: StoreOp,
    /// No draw of the pass writes this aspect. With [`LoadOp::Load`] the tile then always holds
    /// exactly the loaded bytes, so its spills and store write back the bytes that were loaded
    /// and are not counted as writes. Only set it when that holds bit for bit (no re-encoding,
    /// e.g. by compression, that could change the stored bytes).
    pub read_only: bool,
}

impl<S> DepthStencilAttachment<S> {
    /// A writable aspect.
    pub fn new(region: Region<S>, load: LoadOp, store: StoreOp) -> Self {
        Self {
            region,
            load,
            store,
            read_only: false,
        }
    }

    /// No draw writes this aspect.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }
}

/// How a shader touches a declared range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShaderAccessKind {
    /// Loads, texture and image reads, vertex/index/uniform fetches.
    Read,
    /// Stores (may write any bytes of the range, not necessarily all).
    Write,
    /// Loads and stores.
    ReadWrite,
    /// Atomics (returning or not).
    Atomic,
}

/// One declared shader (or fixed-function) memory access of a render pass.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ShaderAccess<S> {
    /// How.
    pub kind: ShaderAccessKind,
    /// Which bytes.
    pub region: Region<S>,
}

/// The memory the shaders of a pass touch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SideEffects<S> {
    /// Exactly these ranges (an empty list: no memory access besides the attachments). Reads
    /// of memory that the pass cannot write may be left out, but when in doubt declare them:
    /// a texture aliasing an attachment the pass stores must be declared.
    Declared(Vec<ShaderAccess<S>>),
    /// Cannot be bounded (bindless, buffer device address): never restartable.
    Unknown,
}

impl<S> Default for SideEffects<S> {
    fn default() -> Self {
        Self::Declared(Vec::new())
    }
}

/// An occlusion (visibility) query counting into `result`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OcclusionQuery<S> {
    /// The counter the pass accumulates into.
    pub result: Region<S>,
    /// The same command zeroes the whole counter before any draw. Without this the counter
    /// accumulates onto memory it read, and the pass is not restartable.
    pub reset_in_command: bool,
}

/// A transform feedback buffer written by the pass.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TransformFeedback<S> {
    /// Bytes captured vertices may be written to.
    pub buffer: Region<S>,
    /// The counter (byte offset) buffer, if any.
    pub counter: Option<Region<S>>,
    /// The write offset is read from `counter` and advanced (resume / append): the counter
    /// accumulates. When false the counter is only written at the end.
    pub append: bool,
}

/// One render pass as executed by one hardware render command.
///
/// `S` is the address space: [`super::Va`] for GPU VAs, a memory-object id in a Vulkan layer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RenderPass<S> {
    /// Color attachments (and resolve targets).
    pub colors: Vec<ColorAttachment<S>>,
    /// Depth aspect.
    pub depth: Option<DepthStencilAttachment<S>>,
    /// Stencil aspect.
    pub stencil: Option<DepthStencilAttachment<S>>,
    /// Shader side effects.
    pub shader: SideEffects<S>,
    /// Occlusion queries active in the pass.
    pub occlusion_queries: Vec<OcclusionQuery<S>>,
    /// Transform feedback buffers.
    pub transform_feedback: Vec<TransformFeedback<S>>,
    /// Timestamps written by the command (harmless unless aliased with something read).
    pub timestamps: Vec<Region<S>>,
    /// Partial renders may spill attachments to their memory mid-pass (the tiler heap may
    /// overflow). True by default, which is always sound; set it to false only when the driver
    /// knows no partial render can happen. With it, a loaded attachment is restartable only when
    /// it is [`DepthStencilAttachment::read_only`] (the firmware's old "reloading Z or S" hint
    /// exists for the same reason).
    pub partial_render_spills: bool,
}

impl<S> Default for RenderPass<S> {
    fn default() -> Self {
        Self {
            colors: Vec::new(),
            depth: None,
            stencil: None,
            shader: SideEffects::default(),
            occlusion_queries: Vec::new(),
            transform_feedback: Vec::new(),
            timestamps: Vec::new(),
            partial_render_spills: true,
        }
    }
}

impl<S: Copy + Ord + Debug + Default> RenderPass<S> {
    /// An empty pass (partial-render spills possible).
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a color attachment.
    pub fn color(mut self, attachment: ColorAttachment<S>) -> Self {
        self.colors.push(attachment);
        self
    }

    /// Set the depth aspect.
    pub fn depth(mut self, depth: DepthStencilAttachment<S>) -> Self {
        self.depth = Some(depth);
        self
    }

    /// Set the stencil aspect.
    pub fn stencil(mut self, stencil: DepthStencilAttachment<S>) -> Self {
        self.stencil = Some(stencil);
        self
    }

    /// Declare a shader access (turns [`SideEffects::Unknown`] into nothing: it stays unknown).
    pub fn shader_access(mut self, kind: ShaderAccessKind, region: Region<S>) -> Self {
        if let SideEffects::Declared(list) = &mut self.shader {
            list.push(ShaderAccess { kind, region });
        }
        self
    }

    /// The shaders access memory that cannot be bounded.
    pub fn shader_unknown(mut self) -> Self {
        self.shader = SideEffects::Unknown;
        self
    }

    /// Add an occlusion query.
    pub fn occlusion_query(mut self, result: Region<S>, reset_in_command: bool) -> Self {
        self.occlusion_queries.push(OcclusionQuery {
            result,
            reset_in_command,
        });
        self
    }

    /// Add a transform feedback buffer.
    pub fn transform_feedback(mut self, xfb: TransformFeedback<S>) -> Self {
        self.transform_feedback.push(xfb);
        self
    }

    /// Add a timestamp write.
    pub fn timestamp(mut self, region: Region<S>) -> Self {
        self.timestamps.push(region);
        self
    }

    /// Whether partial renders may spill attachments (see the field).
    pub fn partial_render_spills(mut self, possible: bool) -> Self {
        self.partial_render_spills = possible;
        self
    }

    /// Whether any attachment (color, depth or stencil) is loaded from memory: the firmware
    /// must reload it in partial renders (the equivalent of the old `SET_WHEN_RELOADING_Z_OR_S`
    /// hint, extended to color).
    pub fn reloads_attachment(&self) -> bool {
        self.colors.iter().any(|c| c.load == LoadOp::Load)
            || self.depth_stencil().any(|d| d.load == LoadOp::Load)
    }

    /// Whether the depth or stencil aspect is loaded (exactly `SET_WHEN_RELOADING_Z_OR_S`).
    pub fn reloads_depth_stencil(&self) -> bool {
        self.depth_stencil().any(|d| d.load == LoadOp::Load)
    }

    fn depth_stencil(&self) -> impl Iterator<Item = &DepthStencilAttachment<S>> {
        self.depth.iter().chain(self.stencil.iter())
    }

    /// Append the pass's accesses (phases 0 to 2) to `out`.
    pub fn lower_into(&self, out: &mut Vec<Access<S>>) {
        let spills = self.partial_render_spills;
        for c in &self.colors {
            if c.load == LoadOp::Load {
                let cause = if c.blend {
                    Cause::BlendedLoad
                } else {
                    Cause::AttachmentLoad
                };
                out.push(Access::new(LOAD, AccessKind::Read, c.region, cause));
            }
            if spills {
                out.push(Access::new(
                    DRAW,
                    AccessKind::MayWrite,
                    c.region,
                    Cause::AttachmentStore,
                ));
            }
            if c.store == StoreOp::Store {
                out.push(Access::new(
                    END,
                    AccessKind::Write,
                    c.region,
                    Cause::AttachmentStore,
                ));
            }
        }
        for d in self.depth_stencil() {
            let loaded = d.load == LoadOp::Load;
            // A loaded read-only aspect is written back bit for bit: no memory change.
            let preserved = loaded && d.read_only;
            if loaded {
                out.push(Access::new(
                    LOAD,
                    AccessKind::Read,
                    d.region,
                    Cause::AttachmentLoad,
                ));
            }
            if spills && !preserved {
                out.push(Access::new(
                    DRAW,
                    AccessKind::MayWrite,
                    d.region,
                    Cause::AttachmentStore,
                ));
            }
            if d.store == StoreOp::Store && !preserved {
                out.push(Access::new(
                    END,
                    AccessKind::Write,
                    d.region,
                    Cause::AttachmentStore,
                ));
            }
        }
        match &self.shader {
            SideEffects::Declared(list) => {
                for s in list {
                    let kind = match s.kind {
                        ShaderAccessKind::Read => AccessKind::Read,
                        ShaderAccessKind::Write => AccessKind::MayWrite,
                        ShaderAccessKind::ReadWrite => AccessKind::ReadMayWrite,
                        ShaderAccessKind::Atomic => AccessKind::Atomic,
                    };
                    out.push(Access::new(DRAW, kind, s.region, Cause::Shader));
                }
            }
            SideEffects::Unknown => out.push(Access::new(
                DRAW,
                AccessKind::Unknown,
                Region::new(S::default(), 0, 0),
                Cause::Shader,
            )),
        }
        for q in &self.occlusion_queries {
            if q.reset_in_command {
                out.push(Access::new(
                    LOAD,
                    AccessKind::Write,
                    q.result,
                    Cause::OcclusionQuery,
                ));
            }
            out.push(Access::new(
                DRAW,
                AccessKind::Atomic,
                q.result,
                Cause::OcclusionQuery,
            ));
        }
        for x in &self.transform_feedback {
            out.push(Access::new(
                DRAW,
                AccessKind::MayWrite,
                x.buffer,
                Cause::TransformFeedback,
            ));
            if let Some(counter) = x.counter {
                let (phase, kind) = if x.append {
                    (DRAW, AccessKind::Atomic)
                } else {
                    (END, AccessKind::Write)
                };
                out.push(Access::new(phase, kind, counter, Cause::TransformFeedback));
            }
        }
        for t in &self.timestamps {
            out.push(Access::new(END, AccessKind::Write, *t, Cause::Timestamp));
        }
    }

    /// The pass's accesses.
    pub fn accesses(&self) -> Vec<Access<S>> {
        let mut out = Vec::new();
        self.lower_into(&mut out);
        out
    }

    /// Whether the pass is restartable, and why not.
    pub fn analyse(&self) -> Verdict {
        analyse(&self.accesses())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Reasons, Va};
    use super::*;

    const MB: u64 = 1 << 20;

    fn rt(i: u64) -> Region<Va> {
        Region::va(0x1_0000_0000 + i * 8 * MB, 8 * MB)
    }

    fn color(i: u64, load: LoadOp, store: StoreOp) -> ColorAttachment<Va> {
        ColorAttachment::new(rt(i), load, store)
    }

    fn pass() -> RenderPass<Va> {
        RenderPass::new().partial_render_spills(false)
    }

    #[test]
    fn clear_store_is_restartable() {
        let p = pass()
            .color(color(0, LoadOp::Clear, StoreOp::Store))
            .color(color(1, LoadOp::DontCare, StoreOp::Store))
            .depth(DepthStencilAttachment::new(
                rt(2),
                LoadOp::Clear,
                StoreOp::DontCare,
            ));
        assert!(p.analyse().restartable());
        assert!(!p.reloads_attachment());
        // Spills write memory but nothing was read from it.
        assert!(p.partial_render_spills(true).analyse().restartable());
    }

    #[test]
    fn load_store_same() {
        let p = pass().color(color(0, LoadOp::Load, StoreOp::Store));
        assert_eq!(p.analyse().reasons, Reasons::LOAD_STORE_SAME);
        assert!(p.reloads_attachment());
        assert!(!p.reloads_depth_stencil());
        let p = pass().depth(DepthStencilAttachment::new(
            rt(0),
            LoadOp::Load,
            StoreOp::Store,
        ));
        assert_eq!(p.analyse().reasons, Reasons::LOAD_STORE_SAME);
        assert!(p.reloads_depth_stencil());
    }

    #[test]
    fn loaded_but_not_stored() {
        let p = pass()
            .color(color(0, LoadOp::Load, StoreOp::DontCare))
            .color(color(1, LoadOp::Clear, StoreOp::Store));
        assert!(p.analyse().restartable());
        assert!(p.reloads_attachment());
        // A partial render spills the loaded attachment onto the memory it was loaded from.
        assert_eq!(
            p.partial_render_spills(true).analyse().reasons,
            Reasons::LOAD_STORE_SAME
        );
    }

    #[test]
    fn clear_then_blend_vs_load_then_blend() {
        let p = pass().color(color(0, LoadOp::Clear, StoreOp::Store).blended());
        assert!(p.analyse().restartable());
        let p = pass().color(color(0, LoadOp::Load, StoreOp::Store).blended());
        assert_eq!(p.analyse().reasons, Reasons::BLEND_ON_LOADED);
        // Blending onto loaded data that is thrown away is fine.
        let p = pass().color(color(0, LoadOp::Load, StoreOp::DontCare).blended());
        assert!(p.analyse().restartable());
    }

    #[test]
    fn aliasing_attachments() {
        // Two attachments over the same memory: one loaded, the other stored.
        let a = ColorAttachment::new(rt(0), LoadOp::Load, StoreOp::DontCare);
        let b = ColorAttachment::new(rt(0), LoadOp::Clear, StoreOp::Store);
        let p = pass().color(a.clone()).color(b);
        assert_eq!(p.analyse().reasons, Reasons::LOAD_STORE_SAME);
        // Partial aliasing: the stored one starts in the last byte of the loaded one.
        let last = Region::va(rt(0).start + rt(0).len - 1, 4096);
        let p = pass().color(a.clone()).color(ColorAttachment::new(
            last,
            LoadOp::Clear,
            StoreOp::Store,
        ));
        assert!(!p.analyse().restartable());
        // Adjacent, not overlapping.
        let next = Region::va(rt(0).start + rt(0).len, 4096);
        let p = pass().color(a.clone()).color(ColorAttachment::new(
            next,
            LoadOp::Clear,
            StoreOp::Store,
        ));
        assert!(p.analyse().restartable());
        // A depth aspect aliasing a loaded color attachment.
        let p = pass().color(a).depth(DepthStencilAttachment::new(
            rt(0),
            LoadOp::Clear,
            StoreOp::Store,
        ));
        assert_eq!(p.analyse().reasons, Reasons::LOAD_STORE_SAME);
    }

    #[test]
    fn read_only_depth_load() {
        let ds = DepthStencilAttachment::new(rt(1), LoadOp::Load, StoreOp::Store).read_only();
        let p = RenderPass::new()
            .color(color(0, LoadOp::Clear, StoreOp::Store))
            .depth(ds.clone())
            .stencil(ds.clone());
        assert!(p.analyse().restartable());
        assert!(p.reloads_depth_stencil());
        // The same, writable: spills and the store write the loaded memory.
        let mut w = ds;
        w.read_only = false;
        let p = RenderPass::new().depth(w.clone());
        assert_eq!(p.analyse().reasons, Reasons::LOAD_STORE_SAME);
        w.store = StoreOp::DontCare;
        assert_eq!(
            RenderPass::new().depth(w.clone()).analyse().reasons,
            Reasons::LOAD_STORE_SAME
        );
        assert!(pass().depth(w).analyse().restartable());
        // Read-only but not loaded: the store writes the cleared values, which is fine too.
        let p = RenderPass::new()
            .depth(DepthStencilAttachment::new(rt(1), LoadOp::Clear, StoreOp::Store).read_only());
        assert!(p.analyse().restartable());
    }

    #[test]
    fn shader_write_read() {
        let buf = Region::va(0x2000_0000, 4096);
        let p = pass()
            .color(color(0, LoadOp::Clear, StoreOp::Store))
            .shader_access(ShaderAccessKind::Read, Region::va(0x3000_0000, 4096))
            .shader_access(ShaderAccessKind::Write, buf);
        assert!(p.analyse().restartable());
        let p = p.clone().shader_access(ShaderAccessKind::Read, buf);
        assert_eq!(p.analyse().reasons, Reasons::SHADER_WRITE_READ);
        let p = pass().shader_access(ShaderAccessKind::ReadWrite, buf);
        assert_eq!(p.analyse().reasons, Reasons::SHADER_WRITE_READ);
        // Sampling a texture that aliases a stored attachment (feedback loop).
        let p = pass()
            .color(color(0, LoadOp::Clear, StoreOp::Store))
            .shader_access(ShaderAccessKind::Read, rt(0));
        assert_eq!(p.analyse().reasons, Reasons::SHADER_WRITE_READ);
        // A shader store into a loaded attachment's memory.
        let p = pass()
            .color(color(0, LoadOp::Load, StoreOp::DontCare))
            .shader_access(ShaderAccessKind::Write, rt(0));
        assert_eq!(p.analyse().reasons, Reasons::SHADER_WRITE_READ);
    }

    #[test]
    fn atomics() {
        let p = pass().shader_access(ShaderAccessKind::Atomic, Region::va(0x2000_0000, 4));
        assert_eq!(p.analyse().reasons, Reasons::ATOMICS);
    }

    #[test]
    fn occlusion() {
        let q = Region::va(0x4000_0000, 8);
        let p = pass()
            .color(color(0, LoadOp::Clear, StoreOp::Store))
            .occlusion_query(q, false);
        assert_eq!(p.analyse().reasons, Reasons::OCCLUSION_ACCUMULATE);
        let p = pass()
            .color(color(0, LoadOp::Clear, StoreOp::Store))
            .occlusion_query(q, true);
        assert!(p.analyse().restartable());
    }

    #[test]
    fn xfb() {
        let xfb = TransformFeedback {
            buffer: Region::va(0x5000_0000, 65536),
            counter: Some(Region::va(0x5100_0000, 4)),
            append: true,
        };
        let p = pass().transform_feedback(xfb.clone());
        assert_eq!(p.analyse().reasons, Reasons::XFB_APPEND);
        let p = pass().transform_feedback(TransformFeedback {
            append: false,
            ..xfb
        });
        assert!(p.analyse().restartable());
    }

    #[test]
    fn unknown_and_timestamps() {
        let p = pass()
            .color(color(0, LoadOp::Clear, StoreOp::Store))
            .shader_unknown();
        assert_eq!(p.analyse().reasons, Reasons::UNKNOWN_ACCESS);
        // Still unknown after declaring more.
        let p = p.shader_access(ShaderAccessKind::Read, rt(3));
        assert_eq!(p.analyse().reasons, Reasons::UNKNOWN_ACCESS);
        let p = pass()
            .color(color(0, LoadOp::Clear, StoreOp::Store))
            .timestamp(Region::va(0x6000_0000, 8))
            .timestamp(Region::va(0x6000_0008, 8));
        assert!(p.analyse().restartable());
    }

    #[test]
    fn several_reasons() {
        let p = pass()
            .color(color(0, LoadOp::Load, StoreOp::Store))
            .color(color(1, LoadOp::Load, StoreOp::Store).blended())
            .occlusion_query(Region::va(0x4000_0000, 8), false)
            .shader_unknown();
        assert_eq!(
            p.analyse().reasons,
            Reasons::LOAD_STORE_SAME
                | Reasons::BLEND_ON_LOADED
                | Reasons::OCCLUSION_ACCUMULATE
                | Reasons::UNKNOWN_ACCESS
        );
    }

    #[test]
    fn vulkan_memory_space() {
        // (VkDeviceMemory id, offset): two images bound to memory 7 at overlapping offsets.
        let a = Region::new(7u64, 0, 1 << 16);
        let b = Region::new(7u64, 1 << 15, 1 << 16);
        let c = Region::new(8u64, 0, 1 << 16);
        let p: RenderPass<u64> = RenderPass::new()
            .partial_render_spills(false)
            .color(ColorAttachment::new(a, LoadOp::Load, StoreOp::DontCare))
            .color(ColorAttachment::new(c, LoadOp::Clear, StoreOp::Store));
        assert!(p.analyse().restartable());
        let p = p.color(ColorAttachment::new(b, LoadOp::Clear, StoreOp::Store));
        assert_eq!(p.analyse().reasons, Reasons::LOAD_STORE_SAME);
    }

    #[test]
    fn image_helper() {
        let r = Region::image(Va, 0x1000, 4, 1920 * 1080, 2, 8 * MB).unwrap();
        assert_eq!(r.len, 8 * MB + 4 * 1920 * 1080);
        assert!(Region::image(Va, 0, u64::MAX, 2, 1, 0).is_none());
        assert_eq!(Region::image(Va, 0, 4, 4, 0, 0).unwrap().len, 0);
    }
}
