//! Command descriptions (specs): the one source of both the analysis input and the stream.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aspect {
    Color,
    Depth,
    Stencil,
}

/// One attachment of a render pass.
#[derive(Clone, Debug)]
pub struct AttSpec {
    pub aspect: Aspect,
    pub reg: Reg,
    pub load: LoadOp,
    pub store: StoreOp,
    /// Color: blending onto the tile.
    pub blend: bool,
    /// Depth/stencil: no draw writes it.
    pub read_only: bool,
    /// Draws into the tile (0 when read-only).
    pub draws: u32,
    pub clear: u32,
}

#[derive(Clone, Debug)]
pub struct XfbSpec {
    pub buffer: Reg,
    pub counter: Option<Reg>,
    pub append: bool,
}

/// A render pass: the description and what the stream does, in one.
#[derive(Clone, Debug)]
pub struct RenderSpec {
    pub atts: Vec<AttSpec>,
    pub shader: Vec<(ShaderAccessKind, Reg)>,
    /// `SideEffects::Unknown`: the stream also writes undeclared memory.
    pub unknown: bool,
    /// Occlusion counters (8 aligned bytes) and whether the pass resets them.
    pub queries: Vec<(Reg, bool)>,
    pub xfb: Vec<XfbSpec>,
    pub timestamps: Vec<Reg>,
    /// `RenderPass::partial_render_spills`.
    pub spills_declared: bool,
    /// The stream really spills (only when declared).
    pub spill_happens: bool,
}

#[derive(Clone, Debug, Default)]
pub struct DispatchSpec {
    pub reads: Vec<Reg>,
    pub writes: Vec<Reg>,
    pub read_writes: Vec<Reg>,
    pub atomics: Vec<Reg>,
    pub overwrites: Vec<Reg>,
    pub undeclared: bool,
    pub concurrent: bool,
}

#[derive(Clone, Debug)]
pub struct ComputeSpec {
    pub dispatches: Vec<DispatchSpec>,
    /// `access: None`: the whole command is undeclared.
    pub described: bool,
}

#[derive(Clone, Debug)]
pub enum Spec {
    Render(RenderSpec),
    Compute(ComputeSpec),
}

impl RenderSpec {
    /// (a): the analysis's description.
    pub fn describe(&self, base: u64) -> RenderPass<Va> {
        let mut p = RenderPass::new().partial_render_spills(self.spills_declared);
        for a in &self.atts {
            let r = a.reg.va(base);
            match a.aspect {
                Aspect::Color => {
                    let mut c = ColorAttachment::new(r, a.load, a.store);
                    c.blend = a.blend;
                    p = p.color(c);
                }
                Aspect::Depth | Aspect::Stencil => {
                    let mut d = DepthStencilAttachment::new(r, a.load, a.store);
                    d.read_only = a.read_only;
                    p = if a.aspect == Aspect::Depth {
                        p.depth(d)
                    } else {
                        p.stencil(d)
                    };
                }
            }
        }
        for &(k, r) in &self.shader {
            p = p.shader_access(k, r.va(base));
        }
        if self.unknown {
            p = p.shader_unknown();
        }
        for &(q, reset) in &self.queries {
            p = p.occlusion_query(q.va(base), reset);
        }
        for x in &self.xfb {
            p = p.transform_feedback(TransformFeedback {
                buffer: x.buffer.va(base),
                counter: x.counter.map(|c| c.va(base)),
                append: x.append,
            });
        }
        for t in &self.timestamps {
            p = p.timestamp(t.va(base));
        }
        p
    }

    pub(super) fn attachments(&self, base: u64) -> Vec<(u64, u64)> {
        self.atts
            .iter()
            .map(|a| (base + a.reg.off, a.reg.len))
            .collect()
    }
}

impl ComputeSpec {
    /// (a): the analysis's description (`None`: undeclared command).
    pub fn describe(&self, base: u64) -> Option<ComputeCommand<Va>> {
        if !self.described {
            return None;
        }
        let mut c = ComputeCommand::new();
        for d in &self.dispatches {
            let mut x = if d.undeclared {
                Dispatch::undeclared()
            } else {
                Dispatch::new()
            };
            for r in &d.reads {
                x = x.read(r.va(base));
            }
            for r in &d.writes {
                x = x.write(r.va(base));
            }
            for r in &d.read_writes {
                x = x.read_write(r.va(base));
            }
            for r in &d.atomics {
                x = x.atomic(r.va(base));
            }
            for r in &d.overwrites {
                x = x.overwrite(r.va(base));
            }
            x.concurrent_with_previous = d.concurrent;
            c = c.dispatch(x);
        }
        Some(c)
    }
}

impl Spec {
    /// Whether every access is declared (no unknown side effects, no undeclared dispatch).
    pub fn all_declared(&self) -> bool {
        match self {
            Spec::Render(r) => !r.unknown,
            Spec::Compute(c) => c.described && c.dispatches.iter().all(|d| !d.undeclared),
        }
    }

    pub(super) fn kind(&self) -> &'static str {
        match self {
            Spec::Render(_) => "render",
            Spec::Compute(_) => "compute",
        }
    }

    /// The verdict of the description, as the winsys computes it.
    pub fn verdict(&self, base: u64) -> Verdict {
        match self {
            Spec::Render(r) => r.describe(base).analyse(),
            Spec::Compute(c) => match c.describe(base) {
                Some(cmd) => cmd.analyse(),
                None => Verdict {
                    reasons: Reasons::COMPUTE_UNDECLARED,
                },
            },
        }
    }
}
