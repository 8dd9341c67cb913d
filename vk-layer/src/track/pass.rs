//! Render passes being recorded (render pass objects and dynamic rendering), lowered to the
//! analysis' `RenderPass` when they end. A dynamic rendering pass suspended in one command
//! buffer and resumed in the next of the same submission is merged at analysis time.

use std::collections::HashMap;

use agx_winsys::analysis::{
    Access, ColorAttachment, DepthStencilAttachment, LoadOp, RenderPass, ShaderAccessKind, StoreOp,
};

use super::{Objects, Reach, Reg, Space, Weaken};

/// One attachment of a pass being recorded.
#[derive(Clone, Copy, Debug)]
pub struct Att {
    /// Its bytes (None: the view is unknown).
    pub reg: Option<Reg>,
    pub view: u64,
    pub load: LoadOp,
    pub store: StoreOp,
    /// Its previous content feeds its new content (blending, input attachment, ...).
    pub blend: bool,
    /// Some aspect's store op is not `NONE`.
    pub writes: bool,
}

/// What one draw does to the current pass.
#[derive(Clone, Debug, Default)]
pub struct DrawFx {
    pub blend: Vec<bool>,
    pub blend_all: bool,
    pub depth_write: bool,
    pub shader: Vec<(ShaderAccessKind, Reg)>,
    pub unknown: bool,
}

/// A render pass being recorded.
#[derive(Clone, Debug, Default)]
pub struct PassRec {
    pub colors: Vec<Att>,
    /// Per subpass: color location -> index in `colors`.
    pub locations: Vec<Vec<Option<usize>>>,
    pub subpass: usize,
    pub depth: Option<Att>,
    pub depth_written: bool,
    pub shader: Vec<(ShaderAccessKind, Reg)>,
    pub unknown: bool,
    pub queries: Vec<Reg>,
    pub timestamps: Vec<Reg>,
    /// Dynamic rendering: the pass is suspended at its end / resumed at its start.
    pub suspending: bool,
    pub resumed: bool,
}

/// A dynamic rendering colour attachment: view, resolve view, load, store, store writes.
pub type RenderingColor = (Option<u64>, Option<u64>, LoadOp, StoreOp, bool);
/// A dynamic rendering depth or stencil attachment: view, load, store, store writes.
pub type RenderingDepth = (u64, LoadOp, StoreOp, bool);

impl PassRec {
    /// A `vkCmdBeginRenderPass*` of `desc` with the framebuffer's (or the imageless begin
    /// info's) `views`.
    pub fn render_pass(o: &Objects, desc: &super::RenderPassDesc, views: &[u64]) -> PassRec {
        let mut pass = PassRec::default();
        let mut color_index = HashMap::new();
        for (i, a) in desc.atts.iter().enumerate() {
            let view = views.get(i).copied().unwrap_or(0);
            let reg = o.view_region(view);
            if a.depth_stencil {
                let load = if a.load == LoadOp::Load || a.stencil_load == LoadOp::Load {
                    LoadOp::Load
                } else {
                    a.load
                };
                let store = if a.store == StoreOp::Store || a.stencil_store == StoreOp::Store {
                    StoreOp::Store
                } else {
                    StoreOp::DontCare
                };
                let att = Att {
                    reg,
                    view,
                    load,
                    store,
                    blend: false,
                    writes: a.writes,
                };
                if pass.depth.is_some() {
                    // Two depth attachments in one pass: model the second as a color one.
                    color_index.insert(i as u32, pass.colors.len());
                    pass.colors.push(Att { blend: true, ..att });
                } else {
                    pass.depth = Some(att);
                }
            } else {
                color_index.insert(i as u32, pass.colors.len());
                pass.colors.push(Att {
                    reg,
                    view,
                    load: a.load,
                    store: a.store,
                    blend: false,
                    writes: a.writes,
                });
            }
        }
        for sp in &desc.subpasses {
            pass.locations.push(
                sp.colors
                    .iter()
                    .map(|c| c.and_then(|a| color_index.get(&a).copied()))
                    .collect(),
            );
            // Input attachments read the tile.
            for a in &sp.inputs {
                if let Some(&ci) = color_index.get(a) {
                    pass.colors[ci].blend = true;
                }
            }
        }
        pass
    }

    /// A `vkCmdBeginRendering`.
    pub fn rendering(o: &Objects, colors: &[RenderingColor], depth: &[RenderingDepth]) -> PassRec {
        let mut pass = PassRec::default();
        let mut locs = Vec::new();
        for &(view, resolve, load, store, writes) in colors {
            match view {
                Some(v) => {
                    locs.push(Some(pass.colors.len()));
                    pass.colors.push(Att {
                        reg: o.view_region(v),
                        view: v,
                        load,
                        store,
                        blend: false,
                        writes,
                    });
                }
                None => locs.push(None),
            }
            if let Some(r) = resolve {
                pass.colors.push(Att {
                    reg: o.view_region(r),
                    view: r,
                    load: LoadOp::DontCare,
                    store: StoreOp::Store,
                    blend: false,
                    writes: true,
                });
            }
        }
        pass.locations.push(locs);
        for &(v, load, store, writes) in depth {
            let reg = o.view_region(v);
            match &mut pass.depth {
                None => {
                    pass.depth = Some(Att {
                        reg,
                        view: v,
                        load,
                        store,
                        blend: false,
                        writes,
                    })
                }
                Some(d) => {
                    // Separate depth and stencil views of one image: merge the ops.
                    if load == LoadOp::Load {
                        d.load = LoadOp::Load;
                    }
                    if store == StoreOp::Store {
                        d.store = StoreOp::Store;
                    }
                    d.writes |= writes;
                    if d.reg != reg {
                        pass.colors.push(Att {
                            reg,
                            view: v,
                            load,
                            store,
                            blend: true,
                            writes,
                        });
                    }
                }
            }
        }
        pass
    }

    /// Applies one draw (its shader accesses too when `with_shader`: a repeated draw's are
    /// already there).
    pub fn draw(&mut self, fx: &DrawFx, with_shader: bool) {
        let locs = self
            .locations
            .get(self.subpass)
            .cloned()
            .unwrap_or_default();
        for (loc, ci) in locs.iter().enumerate() {
            let Some(ci) = *ci else { continue };
            if fx.blend_all || fx.unknown || fx.blend.get(loc).copied().unwrap_or(false) {
                self.colors[ci].blend = true;
            }
        }
        self.depth_written |= fx.depth_write || fx.unknown;
        self.unknown |= fx.unknown;
        if with_shader {
            self.shader.extend(fx.shader.iter().copied());
        }
    }

    /// Adds the later part of a suspended pass (same attachments, by the rules of suspend and
    /// resume).
    pub fn merge(&mut self, later: PassRec) {
        if later.colors.len() != self.colors.len() {
            self.unknown = true;
        }
        for (a, b) in self.colors.iter_mut().zip(&later.colors) {
            a.blend |= b.blend;
            a.store = b.store;
        }
        if let (Some(a), Some(b)) = (&mut self.depth, &later.depth) {
            a.store = b.store;
        }
        self.depth_written |= later.depth_written;
        self.shader.extend(later.shader);
        self.unknown |= later.unknown;
        self.queries.extend(later.queries);
        self.timestamps.extend(later.timestamps);
    }

    /// Every attachment the pass can write, for the scramble: colour attachments whose store
    /// op is not `NONE`, and a depth/stencil attachment that is stored unless it was loaded
    /// and never written (then its store writes it back bit for bit).
    pub fn reach(&self) -> Vec<Reach> {
        let mut out: Vec<Reach> = self
            .colors
            .iter()
            .filter(|a| a.writes || a.load != LoadOp::Load)
            .map(|a| Reach::View(a.view))
            .collect();
        if let Some(d) = &self.depth {
            let preserved = d.load == LoadOp::Load && !self.depth_written;
            if d.writes && !preserved {
                out.push(Reach::View(d.view));
            }
        }
        out
    }

    /// Lowers the pass to accesses in phases 0..3.
    pub fn lower_into(&self, out: &mut Vec<Access<Space>>, weaken: Weaken) {
        let mut rp: RenderPass<Space> = RenderPass::new();
        if weaken.attachment_writes {
            rp = rp.partial_render_spills(false);
        }
        let mut unknown = self.unknown;
        for a in &self.colors {
            let Some(reg) = a.reg else {
                unknown |= a.load == LoadOp::Load || a.store == StoreOp::Store;
                continue;
            };
            let store = if weaken.attachment_writes {
                StoreOp::DontCare
            } else {
                a.store
            };
            let mut c = ColorAttachment::new(reg, a.load, store);
            if a.blend {
                c = c.blended();
            }
            rp = rp.color(c);
        }
        if let Some(d) = &self.depth {
            match d.reg {
                Some(reg) => {
                    let mut att = DepthStencilAttachment::new(reg, d.load, d.store);
                    if !self.depth_written {
                        att = att.read_only();
                    }
                    rp = rp.depth(att);
                }
                None => unknown |= d.load == LoadOp::Load || d.store == StoreOp::Store,
            }
        }
        if unknown {
            rp = rp.shader_unknown();
        }
        for &(k, r) in &self.shader {
            rp = rp.shader_access(k, r);
        }
        for &q in &self.queries {
            rp = rp.occlusion_query(q, false);
        }
        for &t in &self.timestamps {
            rp = rp.timestamp(t);
        }
        rp.lower_into(out);
    }
}
