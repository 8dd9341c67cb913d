//! What the application's command buffers do to memory, as ordered accesses over
//! `(VkDeviceMemory, offset)` ranges, for the restartability analysis of `agx_winsys::analysis`.
//!
//! The tracker keeps the objects that turn API handles into memory ranges (allocations, buffer
//! and image bindings, views, render passes, framebuffers, pipelines with their shaders'
//! effects, descriptor sets) and, per command buffer, the accesses recorded so far. Everything
//! here is safe code working on already-decoded Vulkan structures; the hooks decode them.
//!
//! Phases: each recorded command gets a phase of its own in submission order (a valid
//! application orders dependent commands with barriers, which order everything before them),
//! and a render pass takes three (load, draw, store; see `agx_winsys::analysis::RenderPass`).
//! Anything the tracker cannot bound (an unbound object, an untracked descriptor set, a shader
//! using buffer device addresses, a command it does not model) is an `Unknown` access, which
//! makes the submission not restartable.

use std::collections::HashMap;

use agx_winsys::analysis::{
    analyse, Access, AccessKind, Cause, ColorAttachment, DepthStencilAttachment, LoadOp, Reasons,
    Region, RenderPass, ShaderAccessKind, StoreOp,
};

use crate::spirv::ShaderEffects;

/// The address space of the analysis: a memory object, or a query pool (indexed by query).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Space {
    /// No memory (diagnostic hint of unknown accesses).
    #[default]
    Unbound,
    /// A `VkDeviceMemory` (raw handle), in bytes.
    Memory(u64),
    /// A `VkQueryPool` (raw handle), in queries.
    Query(u64),
}

/// A range in a [`Space`].
pub type Reg = Region<Space>;

const UNKNOWN_REG: Reg = Region::new(Space::Unbound, 0, 0);

/// `VK_WHOLE_SIZE`.
pub const WHOLE_SIZE: u64 = u64::MAX;

/// A `VkDeviceMemory`.
#[derive(Clone, Debug)]
pub struct Memory {
    pub size: u64,
    pub type_index: u32,
    pub host_visible: bool,
    pub coherent: bool,
    /// The application's current mapping: (pointer, offset, size).
    pub app_map: Option<(usize, u64, u64)>,
}

/// Where a buffer or image lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    pub memory: u64,
    pub offset: u64,
    pub size: u64,
}

/// A `VkBuffer`.
#[derive(Clone, Debug, Default)]
pub struct Buffer {
    pub size: u64,
    pub binding: Option<Binding>,
}

/// One attachment description.
#[derive(Clone, Copy, Debug)]
pub struct AttDesc {
    pub load: LoadOp,
    pub store: StoreOp,
    pub stencil_load: LoadOp,
    pub stencil_store: StoreOp,
    pub depth_stencil: bool,
}

/// One subpass: attachment indices.
#[derive(Clone, Debug, Default)]
pub struct Subpass {
    pub colors: Vec<Option<u32>>,
    pub resolves: Vec<u32>,
    pub depth: Option<u32>,
    pub inputs: Vec<u32>,
}

/// A `VkRenderPass`.
#[derive(Clone, Debug, Default)]
pub struct RenderPassDesc {
    pub atts: Vec<AttDesc>,
    pub subpasses: Vec<Subpass>,
}

/// A pipeline.
#[derive(Clone, Debug, Default)]
pub struct Pipeline {
    pub fx: ShaderEffects,
    /// Per color location: blending, logic op or a partial write mask (reads the tile).
    pub blend: Vec<bool>,
    /// Blend state is dynamic or a logic op is on: every location may read the tile.
    pub blend_all: bool,
    pub depth_write: bool,
}

/// Descriptor type, as far as memory is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescKind {
    /// Read only (uniform buffers, sampled images, uniform texel buffers, input attachments).
    Read,
    /// Storage (buffers, images, texel buffers).
    Storage,
    /// No memory (samplers, inline uniform blocks).
    None,
    /// Cannot be bounded (acceleration structures, anything unknown).
    Unknown,
}

/// What a descriptor points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescRes {
    None,
    Buffer {
        buffer: u64,
        offset: u64,
        range: u64,
    },
    ImageView(u64),
    BufferView(u64),
}

/// A `VkDescriptorSet`.
#[derive(Clone, Debug, Default)]
pub struct DescSet {
    pub slots: HashMap<(u32, u32), (DescKind, DescRes)>,
    /// Updated in a way the tracker does not follow (templates).
    pub unknown: bool,
}

/// The effects of one draw on the current pass.
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
struct PassRec {
    /// Per attachment: region (None: unknown), load, store, blended.
    colors: Vec<(Option<Reg>, LoadOp, StoreOp, bool)>,
    /// Per subpass: color location -> index in `colors`.
    locations: Vec<Vec<Option<usize>>>,
    subpass: usize,
    depth: Option<(Option<Reg>, LoadOp, StoreOp)>,
    depth_written: bool,
    shader: Vec<(ShaderAccessKind, Reg)>,
    unknown: bool,
    queries: Vec<Reg>,
    timestamps: Vec<Reg>,
}

/// The accesses of one command buffer.
#[derive(Clone, Debug, Default)]
pub struct CmdRecord {
    pub accesses: Vec<Access<Space>>,
    pub phase: u32,
    /// Reasons outside the memory model (one-time submit, ...).
    pub extra: Vec<&'static str>,
    pipelines: [Option<u64>; 2],
    sets: [Vec<Option<u64>>; 2],
    vertex: Vec<Option<(u64, u64)>>,
    index: Option<(u64, u64)>,
    pass: Option<PassRec>,
    /// Draws of a secondary command buffer continuing a render pass.
    pending_draws: Vec<DrawFx>,
    continues_pass: bool,
}

/// Bind point index: 0 graphics, 1 compute.
pub const GRAPHICS: usize = 0;
/// Bind point index: 0 graphics, 1 compute.
pub const COMPUTE: usize = 1;

/// Per-device tracked objects and command buffers (raw handles as keys).
#[derive(Debug, Default)]
pub struct Tracker {
    pub memories: HashMap<u64, Memory>,
    pub buffers: HashMap<u64, Buffer>,
    pub images: HashMap<u64, Option<Binding>>,
    pub views: HashMap<u64, u64>,
    pub buffer_views: HashMap<u64, (u64, u64, u64)>,
    pub render_passes: HashMap<u64, RenderPassDesc>,
    pub framebuffers: HashMap<u64, Vec<u64>>,
    pub shaders: HashMap<u64, ShaderEffects>,
    pub pipelines: HashMap<u64, Pipeline>,
    pub sets: HashMap<u64, DescSet>,
    pub cbs: HashMap<u64, CmdRecord>,
}

/// The verdict on one submission.
#[derive(Clone, Debug)]
pub struct SubmissionVerdict {
    pub reasons: Reasons,
    pub extra: Vec<&'static str>,
    /// Memory ranges the submission may have written.
    pub written: Vec<Reg>,
}

impl SubmissionVerdict {
    pub fn restartable(&self) -> bool {
        self.reasons.is_empty() && self.extra.is_empty()
    }

    /// The reasons' short names (analysis reasons, then the layer's own).
    pub fn reason_names(&self) -> Vec<&'static str> {
        self.reasons
            .short_names()
            .chain(self.extra.iter().copied())
            .collect()
    }
}

impl Tracker {
    /// The bytes of buffer `b` from `offset`, `size` bytes (or [`WHOLE_SIZE`]).
    pub fn buffer_region(&self, b: u64, offset: u64, size: u64) -> Option<Reg> {
        let buf = self.buffers.get(&b)?;
        let bind = buf.binding?;
        let avail = buf.size.saturating_sub(offset);
        let len = if size == WHOLE_SIZE {
            avail
        } else {
            size.min(avail)
        };
        Some(Region::new(
            Space::Memory(bind.memory),
            bind.offset.checked_add(offset)?,
            len,
        ))
    }

    /// Every byte of image `i` (its whole binding).
    pub fn image_region(&self, i: u64) -> Option<Reg> {
        let b = (*self.images.get(&i)?)?;
        Some(Region::new(Space::Memory(b.memory), b.offset, b.size))
    }

    /// Every byte of the image behind view `v`.
    pub fn view_region(&self, v: u64) -> Option<Reg> {
        self.image_region(*self.views.get(&v)?)
    }

    fn desc_region(&self, res: DescRes) -> Option<Reg> {
        match res {
            DescRes::None => None,
            DescRes::Buffer {
                buffer,
                offset,
                range,
            } => self.buffer_region(buffer, offset, range),
            DescRes::ImageView(v) => self.view_region(v),
            DescRes::BufferView(v) => {
                let &(b, off, range) = self.buffer_views.get(&v)?;
                self.buffer_region(b, off, range)
            }
        }
    }

    /// The shader accesses of a draw or dispatch at bind point `bp`; `None`: unknown.
    fn shader_accesses(&self, rec: &CmdRecord, bp: usize) -> Option<Vec<(ShaderAccessKind, Reg)>> {
        let p = self.pipelines.get(&rec.pipelines[bp]?)?;
        if p.fx.unknown {
            return None;
        }
        let storage_kind = if p.fx.atomics {
            ShaderAccessKind::Atomic
        } else if p.fx.stores && p.fx.loads_storage {
            ShaderAccessKind::ReadWrite
        } else if p.fx.stores {
            ShaderAccessKind::Write
        } else {
            ShaderAccessKind::Read
        };
        let mut out = Vec::new();
        for set in rec.sets[bp].iter().flatten() {
            let s = self.sets.get(set)?;
            if s.unknown {
                return None;
            }
            for &(kind, res) in s.slots.values() {
                let k = match kind {
                    DescKind::None => continue,
                    DescKind::Unknown => return None,
                    DescKind::Read => ShaderAccessKind::Read,
                    DescKind::Storage => storage_kind,
                };
                match self.desc_region(res) {
                    Some(r) => out.push((k, r)),
                    // An empty descriptor slot accesses nothing.
                    None if res == DescRes::None => {}
                    None => return None,
                }
            }
        }
        if bp == GRAPHICS {
            for &(b, off) in rec.vertex.iter().flatten() {
                out.push((
                    ShaderAccessKind::Read,
                    self.buffer_region(b, off, WHOLE_SIZE)?,
                ));
            }
        }
        Some(out)
    }

    /// The record of command buffer `cb` (created empty on first use).
    pub fn rec(&mut self, cb: u64) -> &mut CmdRecord {
        self.cbs.entry(cb).or_default()
    }

    /// `vkBeginCommandBuffer` / `vkResetCommandBuffer`.
    pub fn begin(&mut self, cb: u64, one_time: bool, continues_pass: bool) {
        let mut r = CmdRecord {
            continues_pass,
            ..CmdRecord::default()
        };
        if one_time {
            r.extra.push("one_time_submit");
        }
        self.cbs.insert(cb, r);
    }

    /// Adds one access in its own phase.
    pub fn access(&mut self, cb: u64, kind: AccessKind, reg: Option<Reg>, cause: Cause) {
        let r = self.rec(cb);
        let (kind, reg) = match reg {
            Some(g) => (kind, g),
            None => (AccessKind::Unknown, UNKNOWN_REG),
        };
        r.accesses.push(Access::new(r.phase, kind, reg, cause));
        r.phase += 1;
    }

    /// Adds several accesses sharing one phase (a copy: its reads and writes interleave).
    pub fn accesses(&mut self, cb: u64, list: &[(AccessKind, Option<Reg>, Cause)]) {
        let r = self.cbs.entry(cb).or_default();
        for &(kind, reg, cause) in list {
            let (kind, reg) = match reg {
                Some(g) => (kind, g),
                None => (AccessKind::Unknown, UNKNOWN_REG),
            };
            r.accesses.push(Access::new(r.phase, kind, reg, cause));
        }
        r.phase += 1;
    }

    /// A command the tracker does not model.
    pub fn unknown(&mut self, cb: u64) {
        self.access(cb, AccessKind::Unknown, None, Cause::Transfer);
    }

    pub fn bind_pipeline(&mut self, cb: u64, bp: usize, pipeline: u64) {
        self.rec(cb).pipelines[bp] = Some(pipeline);
    }

    pub fn bind_sets(&mut self, cb: u64, bp: usize, first: u32, sets: &[u64]) {
        let r = self.rec(cb);
        let v = &mut r.sets[bp];
        let end = first as usize + sets.len();
        if v.len() < end {
            v.resize(end, None);
        }
        for (i, s) in sets.iter().enumerate() {
            v[first as usize + i] = Some(*s);
        }
    }

    pub fn bind_vertex(&mut self, cb: u64, first: u32, bufs: &[(u64, u64)]) {
        let r = self.rec(cb);
        let end = first as usize + bufs.len();
        if r.vertex.len() < end {
            r.vertex.resize(end, None);
        }
        for (i, b) in bufs.iter().enumerate() {
            r.vertex[first as usize + i] = Some(*b);
        }
    }

    pub fn bind_index(&mut self, cb: u64, buffer: u64, offset: u64) {
        self.rec(cb).index = Some((buffer, offset));
    }

    /// `vkCmdBeginRenderPass*`; `views` are the framebuffer's (or the imageless begin info's).
    pub fn begin_render_pass(&mut self, cb: u64, rp: u64, views: &[u64]) {
        let Some(desc) = self.render_passes.get(&rp).cloned() else {
            self.unknown(cb);
            return;
        };
        let mut pass = PassRec::default();
        let mut color_index = HashMap::new();
        for (i, a) in desc.atts.iter().enumerate() {
            let reg = views.get(i).and_then(|&v| self.view_region(v));
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
                if pass.depth.is_some() {
                    // Two depth attachments in one pass: model the second as a color one.
                    color_index.insert(i as u32, pass.colors.len());
                    pass.colors.push((reg, load, store, true));
                } else {
                    pass.depth = Some((reg, load, store));
                }
            } else {
                color_index.insert(i as u32, pass.colors.len());
                pass.colors.push((reg, a.load, a.store, false));
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
                    pass.colors[ci].3 = true;
                }
            }
        }
        self.rec(cb).pass = Some(pass);
    }

    /// `vkCmdBeginRendering`: `colors` per location (view, resolve view, load, store), depth
    /// and stencil (view, load, store).
    pub fn begin_rendering(
        &mut self,
        cb: u64,
        colors: &[(Option<u64>, Option<u64>, LoadOp, StoreOp)],
        depth: &[(u64, LoadOp, StoreOp)],
    ) {
        let mut pass = PassRec::default();
        let mut locs = Vec::new();
        for &(view, resolve, load, store) in colors {
            match view {
                Some(v) => {
                    locs.push(Some(pass.colors.len()));
                    pass.colors.push((self.view_region(v), load, store, false));
                }
                None => locs.push(None),
            }
            if let Some(r) = resolve {
                pass.colors
                    .push((self.view_region(r), LoadOp::DontCare, StoreOp::Store, false));
            }
        }
        pass.locations.push(locs);
        for &(v, load, store) in depth {
            let reg = self.view_region(v);
            match &mut pass.depth {
                None => pass.depth = Some((reg, load, store)),
                Some(d) => {
                    // Separate depth and stencil views of one image: merge the ops.
                    if load == LoadOp::Load {
                        d.1 = LoadOp::Load;
                    }
                    if store == StoreOp::Store {
                        d.2 = StoreOp::Store;
                    }
                    if d.0 != reg {
                        pass.colors.push((reg, load, store, true));
                    }
                }
            }
        }
        self.rec(cb).pass = Some(pass);
    }

    pub fn next_subpass(&mut self, cb: u64) {
        if let Some(p) = &mut self.rec(cb).pass {
            p.subpass += 1;
        }
    }

    /// A draw (any kind); `indirect` is the indirect buffer range read, if any.
    pub fn draw(&mut self, cb: u64, indexed: bool, indirect: &[(u64, u64)]) {
        let Some(rec) = self.cbs.get(&cb) else {
            return;
        };
        let mut fx = DrawFx::default();
        match self.pipelines.get(&rec.pipelines[GRAPHICS].unwrap_or(0)) {
            Some(p) => {
                fx.blend = p.blend.clone();
                fx.blend_all = p.blend_all;
                fx.depth_write = p.depth_write;
            }
            None => fx.unknown = true,
        }
        match self.shader_accesses(rec, GRAPHICS) {
            Some(list) => fx.shader = list,
            None => fx.unknown = true,
        }
        let mut extra = Vec::new();
        if indexed {
            extra.push(rec.index.map(|(b, o)| (b, o, WHOLE_SIZE)));
        }
        for &(b, o) in indirect {
            extra.push(Some((b, o, WHOLE_SIZE)));
        }
        for e in extra {
            match e.and_then(|(b, o, s)| self.buffer_region(b, o, s)) {
                Some(r) => fx.shader.push((ShaderAccessKind::Read, r)),
                None => fx.unknown = true,
            }
        }
        let rec = self.rec(cb);
        match &mut rec.pass {
            Some(p) => apply_draw(p, &fx),
            None if rec.continues_pass => rec.pending_draws.push(fx),
            None => {
                // A draw outside a render pass is invalid; be conservative.
                rec.accesses.push(Access::new(
                    rec.phase,
                    AccessKind::Unknown,
                    UNKNOWN_REG,
                    Cause::Shader,
                ));
                rec.phase += 1;
            }
        }
    }

    /// A dispatch; `indirect` is the indirect buffer, if any.
    pub fn dispatch(&mut self, cb: u64, indirect: Option<(u64, u64)>) {
        let Some(rec) = self.cbs.get(&cb) else {
            return;
        };
        let list = self.shader_accesses(rec, COMPUTE);
        let ind = indirect.map(|(b, o)| self.buffer_region(b, o, 12));
        let rec = self.cbs.get_mut(&cb).expect("looked up above");
        let ph = rec.phase;
        match list {
            Some(list) => {
                for (k, r) in list {
                    let kind = match k {
                        ShaderAccessKind::Read => AccessKind::Read,
                        ShaderAccessKind::Write => AccessKind::MayWrite,
                        ShaderAccessKind::ReadWrite => AccessKind::ReadMayWrite,
                        ShaderAccessKind::Atomic => AccessKind::Atomic,
                    };
                    rec.accesses.push(Access::new(ph, kind, r, Cause::Compute));
                }
            }
            None => rec.accesses.push(Access::new(
                ph,
                AccessKind::Unknown,
                UNKNOWN_REG,
                Cause::Compute,
            )),
        }
        match ind {
            None => {}
            Some(Some(r)) => {
                rec.accesses
                    .push(Access::new(ph, AccessKind::Read, r, Cause::Compute))
            }
            Some(None) => rec.accesses.push(Access::new(
                ph,
                AccessKind::Unknown,
                UNKNOWN_REG,
                Cause::Compute,
            )),
        }
        rec.phase += 1;
    }

    /// `vkCmdBeginQuery`: inside a pass an occlusion counter, outside an accumulating access.
    pub fn begin_query(&mut self, cb: u64, pool: u64, query: u32) {
        let reg = Region::new(Space::Query(pool), u64::from(query), 1);
        let rec = self.rec(cb);
        match &mut rec.pass {
            Some(p) => p.queries.push(reg),
            None => {
                rec.accesses.push(Access::new(
                    rec.phase,
                    AccessKind::Atomic,
                    reg,
                    Cause::OcclusionQuery,
                ));
                rec.phase += 1;
            }
        }
    }

    /// `vkCmdWriteTimestamp*`.
    pub fn timestamp(&mut self, cb: u64, pool: u64, query: u32) {
        let reg = Region::new(Space::Query(pool), u64::from(query), 1);
        let rec = self.rec(cb);
        match &mut rec.pass {
            Some(p) => p.timestamps.push(reg),
            None => {
                rec.accesses.push(Access::new(
                    rec.phase,
                    AccessKind::Write,
                    reg,
                    Cause::Timestamp,
                ));
                rec.phase += 1;
            }
        }
    }

    /// `vkCmdEndRenderPass*` / `vkCmdEndRendering*`: lowers the pass.
    pub fn end_render_pass(&mut self, cb: u64) {
        let rec = self.rec(cb);
        let Some(p) = rec.pass.take() else {
            return;
        };
        let mut rp: RenderPass<Space> = RenderPass::new();
        let mut unknown = p.unknown;
        for &(reg, load, store, blend) in &p.colors {
            let Some(reg) = reg else {
                unknown |= load == LoadOp::Load || store == StoreOp::Store;
                continue;
            };
            let mut a = ColorAttachment::new(reg, load, store);
            if blend {
                a = a.blended();
            }
            rp = rp.color(a);
        }
        if let Some((reg, load, store)) = p.depth {
            match reg {
                Some(reg) => {
                    let mut d = DepthStencilAttachment::new(reg, load, store);
                    if !p.depth_written {
                        d = d.read_only();
                    }
                    rp = rp.depth(d);
                }
                None => unknown |= load == LoadOp::Load || store == StoreOp::Store,
            }
        }
        if unknown {
            rp = rp.shader_unknown();
        }
        for &(k, r) in &p.shader {
            rp = rp.shader_access(k, r);
        }
        for &q in &p.queries {
            rp = rp.occlusion_query(q, false);
        }
        for &t in &p.timestamps {
            rp = rp.timestamp(t);
        }
        let mut out = Vec::new();
        rp.lower_into(&mut out);
        for a in &mut out {
            a.phase += rec.phase;
        }
        rec.accesses.extend(out);
        rec.phase += 3;
    }

    /// `vkCmdExecuteCommands`: inlines the secondaries.
    pub fn execute(&mut self, cb: u64, secondaries: &[u64]) {
        for s in secondaries {
            let sec = self.cbs.get(s).cloned().unwrap_or_else(|| {
                let mut r = CmdRecord::default();
                r.accesses.push(Access::new(
                    0,
                    AccessKind::Unknown,
                    UNKNOWN_REG,
                    Cause::Transfer,
                ));
                r.phase = 1;
                r
            });
            let rec = self.rec(cb);
            if let Some(p) = &mut rec.pass {
                for d in &sec.pending_draws {
                    apply_draw(p, d);
                }
            }
            let base = rec.phase;
            rec.accesses.extend(sec.accesses.iter().map(|a| {
                let mut a = *a;
                a.phase += base;
                a
            }));
            rec.phase += sec.phase;
            rec.extra.extend(sec.extra.iter().copied());
        }
    }

    /// Analyses a submission made of command buffers `cbs`, in submission order.
    pub fn analyse_submission(&self, cbs: &[u64]) -> SubmissionVerdict {
        let mut all = Vec::new();
        let mut extra = Vec::new();
        let mut base = 0u32;
        for cb in cbs {
            match self.cbs.get(cb) {
                Some(r) => {
                    all.extend(r.accesses.iter().map(|a| {
                        let mut a = *a;
                        a.phase += base;
                        a
                    }));
                    base += r.phase;
                    for e in &r.extra {
                        if !extra.contains(e) {
                            extra.push(*e);
                        }
                    }
                }
                None => {
                    all.push(Access::new(
                        base,
                        AccessKind::Unknown,
                        UNKNOWN_REG,
                        Cause::Transfer,
                    ));
                    base += 1;
                }
            }
        }
        let verdict = analyse(&all);
        let written = all
            .iter()
            .filter(|a| {
                a.kind.writes()
                    && a.kind != AccessKind::Unknown
                    && matches!(a.region.space, Space::Memory(_))
                    && a.region.len > 0
            })
            .map(|a| a.region)
            .collect();
        SubmissionVerdict {
            reasons: verdict.reasons,
            extra,
            written,
        }
    }
}

fn apply_draw(p: &mut PassRec, fx: &DrawFx) {
    let locs = p.locations.get(p.subpass).cloned().unwrap_or_default();
    for (loc, ci) in locs.iter().enumerate() {
        let Some(ci) = *ci else { continue };
        if fx.blend_all || fx.unknown || fx.blend.get(loc).copied().unwrap_or(false) {
            p.colors[ci].3 = true;
        }
    }
    p.depth_written |= fx.depth_write || fx.unknown;
    p.unknown |= fx.unknown;
    p.shader.extend(fx.shader.iter().copied());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> Tracker {
        let mut t = Tracker::default();
        t.images.insert(
            1,
            Some(Binding {
                memory: 100,
                offset: 0,
                size: 4096,
            }),
        );
        t.views.insert(10, 1);
        t.pipelines.insert(
            20,
            Pipeline {
                blend: vec![false],
                ..Pipeline::default()
            },
        );
        t.pipelines.insert(
            21,
            Pipeline {
                blend: vec![true],
                ..Pipeline::default()
            },
        );
        t
    }

    fn pass(t: &mut Tracker, load: LoadOp, pipeline: u64) -> SubmissionVerdict {
        t.begin(5, false, false);
        t.begin_rendering(5, &[(Some(10), None, load, StoreOp::Store)], &[]);
        t.bind_pipeline(5, GRAPHICS, pipeline);
        t.draw(5, false, &[]);
        t.end_render_pass(5);
        t.analyse_submission(&[5])
    }

    #[test]
    fn clear_and_draw_is_restartable() {
        let mut t = setup();
        let v = pass(&mut t, LoadOp::Clear, 20);
        assert!(v.restartable(), "{:?}", v.reason_names());
        assert_eq!(v.written.len(), 2);
        let v = pass(&mut t, LoadOp::Clear, 21);
        assert!(v.restartable());
    }

    #[test]
    fn load_and_blend_is_not() {
        let mut t = setup();
        let v = pass(&mut t, LoadOp::Load, 21);
        assert!(!v.restartable());
        assert!(
            v.reason_names().contains(&"blend_on_loaded"),
            "{:?}",
            v.reason_names()
        );
    }

    #[test]
    fn unknown_pipeline_and_one_time() {
        let mut t = setup();
        let v = pass(&mut t, LoadOp::Clear, 99);
        assert!(v.reason_names().contains(&"unknown_access"));
        t.begin(6, true, false);
        let v = t.analyse_submission(&[6]);
        assert_eq!(v.reason_names(), vec!["one_time_submit"]);
        assert!(!t.analyse_submission(&[7]).restartable());
    }

    #[test]
    fn copies_in_place_are_not_restartable() {
        let mut t = setup();
        t.buffers.insert(
            2,
            Buffer {
                size: 256,
                binding: Some(Binding {
                    memory: 100,
                    offset: 0,
                    size: 256,
                }),
            },
        );
        t.begin(5, false, false);
        // fill then copy a sub-range over an overlapping one.
        let src = t.buffer_region(2, 0, 128);
        let dst = t.buffer_region(2, 64, 128);
        t.accesses(
            5,
            &[
                (AccessKind::Read, src, Cause::Transfer),
                (AccessKind::Write, dst, Cause::Transfer),
            ],
        );
        assert!(!t.analyse_submission(&[5]).restartable());
        t.begin(5, false, false);
        t.access(
            5,
            AccessKind::Write,
            t.buffer_region(2, 0, WHOLE_SIZE),
            Cause::Transfer,
        );
        assert!(t.analyse_submission(&[5]).restartable());
    }
}
