//! Command buffer recording: what each recorded command accesses, in its own phase.

use agx_winsys::analysis::{Access, AccessKind, Cause, Region, ShaderAccessKind};

use super::pass::{DrawFx, RenderingColor, RenderingDepth};
use super::{
    push_unique, DescKind, DescRes, DescSet, PassRec, Reach, Reg, Space, Tracker, UNKNOWN_REG,
    WHOLE_SIZE,
};

/// Bind point index: 0 graphics, 1 compute.
pub const GRAPHICS: usize = 0;
/// Bind point index: 0 graphics, 1 compute.
pub const COMPUTE: usize = 1;

/// A descriptor set bound in a command buffer.
#[derive(Clone, Debug)]
enum SetRef {
    Set(u64),
    /// Push descriptors, as pushed.
    Push(DescSet),
}

/// An event command, for the replay rule of [`events_replay_hazard`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventOp {
    Set,
    Reset,
    Wait,
}

/// The accesses of one command buffer.
#[derive(Clone, Debug, Default)]
pub struct CmdRecord {
    pub accesses: Vec<Access<Space>>,
    pub phase: u32,
    /// Reasons outside the memory model (a command the tracker does not model, ...).
    pub extra: Vec<&'static str>,
    /// Every binding the recorded commands can write.
    pub reach: Vec<Reach>,
    /// Event commands, in order (event raw handle).
    pub events: Vec<(EventOp, u64)>,
    pipelines: [Option<u64>; 2],
    sets: [Vec<Option<SetRef>>; 2],
    vertex: Vec<Option<(u64, u64)>>,
    index: Option<(u64, u64)>,
    pub(super) pass: Option<PassRec>,
    /// Draws of a secondary command buffer continuing a render pass.
    pending_draws: Vec<DrawFx>,
    continues_pass: bool,
    /// A dynamic rendering pass begun here and suspended at the end of the command buffer.
    pub suspended: Option<PassRec>,
    /// A pass resumed here and ended here, with the phase reserved for it.
    pub resumed_head: Option<(PassRec, u32)>,
    /// A pass resumed here and suspended again.
    pub resumed_tail: Option<PassRec>,
    /// What a draw with the current graphics state does (and whether it was indexed), until a
    /// binding changes: most draws of a pass share it.
    gfx_cache: Option<(bool, DrawFx)>,
    /// The pass (by generation) whose shader accesses already hold `gfx_cache`'s.
    gfx_applied: Option<u64>,
    /// The shader accesses of a dispatch with the current compute state.
    compute_cache: Option<Option<Vec<(ShaderAccessKind, Reg)>>>,
    /// Counts the passes begun (for `gfx_applied`).
    pass_gen: u64,
}

impl CmdRecord {
    /// A binding of bind point `bp` changed.
    fn dirty(&mut self, bp: usize) {
        if bp == GRAPHICS {
            self.gfx_cache = None;
        } else {
            self.compute_cache = None;
        }
    }

    fn add_reach(&mut self, r: Reach) {
        if !self.reach.contains(&r) {
            self.reach.push(r);
        }
    }
}

/// Whether replaying a submission with these event commands could wait for ever: a wait on an
/// event that the submission resets, unless the submission set it again before the wait.
pub fn events_replay_hazard(ops: &[(EventOp, u64)]) -> Option<&'static str> {
    for (i, &(op, e)) in ops.iter().enumerate() {
        if op != EventOp::Wait {
            continue;
        }
        let last = ops[..i]
            .iter()
            .rev()
            .find(|&&(o, x)| x == e && o != EventOp::Wait);
        if matches!(last, Some((EventOp::Set, _))) {
            continue;
        }
        if ops.iter().any(|&(o, x)| x == e && o == EventOp::Reset) {
            return Some("event_wait_after_reset");
        }
    }
    None
}

fn access_kind(k: ShaderAccessKind) -> AccessKind {
    match k {
        ShaderAccessKind::Read => AccessKind::Read,
        ShaderAccessKind::Write => AccessKind::MayWrite,
        ShaderAccessKind::ReadWrite => AccessKind::ReadMayWrite,
        ShaderAccessKind::Atomic => AccessKind::Atomic,
    }
}

impl Tracker {
    /// `vkBeginCommandBuffer` / `vkResetCommandBuffer`.
    pub fn begin(&mut self, cb: u64, continues_pass: bool) {
        let r = CmdRecord {
            continues_pass,
            ..CmdRecord::default()
        };
        self.cbs.insert(cb, r);
    }

    /// Adds one access in its own phase.
    pub fn access(&mut self, cb: u64, kind: AccessKind, reg: Option<Reg>, cause: Cause) {
        self.accesses(cb, &[(kind, reg, cause)]);
    }

    /// Adds several accesses sharing one phase (a copy: its reads and writes interleave).
    pub fn accesses(&mut self, cb: u64, list: &[(AccessKind, Option<Reg>, Cause)]) {
        let r = self.rec(cb);
        for &(kind, reg, cause) in list {
            let (kind, reg) = match reg {
                Some(g) => (kind, g),
                None => (AccessKind::Unknown, UNKNOWN_REG),
            };
            r.accesses.push(Access::new(r.phase, kind, reg, cause));
        }
        r.phase += 1;
    }

    /// A command the tracker does not model, named by `reason`.
    pub fn unknown(&mut self, cb: u64, reason: &'static str) {
        self.access(cb, AccessKind::Unknown, None, Cause::Transfer);
        push_unique(&mut self.rec(cb).extra, reason);
    }

    /// A binding a command writes (for the scramble).
    pub fn reach(&mut self, cb: u64, r: Reach) {
        self.rec(cb).add_reach(r);
    }

    /// An event command.
    pub fn event(&mut self, cb: u64, op: EventOp, event: u64) {
        self.rec(cb).events.push((op, event));
    }

    pub fn bind_pipeline(&mut self, cb: u64, bp: usize, pipeline: u64) {
        let r = self.rec(cb);
        r.pipelines[bp] = Some(pipeline);
        r.dirty(bp);
    }

    fn set_slot(&mut self, cb: u64, bp: usize, index: usize, s: SetRef) {
        let r = self.rec(cb);
        r.dirty(bp);
        let v = &mut r.sets[bp];
        if v.len() <= index {
            v.resize(index + 1, None);
        }
        v[index] = Some(s);
    }

    pub fn bind_sets(&mut self, cb: u64, bp: usize, first: u32, sets: &[u64]) {
        for (i, s) in sets.iter().enumerate() {
            self.set_slot(cb, bp, first as usize + i, SetRef::Set(*s));
        }
    }

    /// `vkCmdPushDescriptorSet*`: `writes` update set number `set` of `bp` (push descriptors
    /// accumulate until the layout changes, which the tracker does not see: conservative).
    pub fn push_descriptors(&mut self, cb: u64, bp: usize, set: u32, writes: &DescSet) {
        let r = self.rec(cb);
        let cur = match r.sets[bp].get(set as usize) {
            Some(Some(SetRef::Push(d))) => {
                let mut d = d.clone();
                d.slots.extend(writes.slots.iter().map(|(k, v)| (*k, *v)));
                d.unknown |= writes.unknown;
                d
            }
            _ => writes.clone(),
        };
        self.set_slot(cb, bp, set as usize, SetRef::Push(cur));
    }

    pub fn bind_vertex(&mut self, cb: u64, first: u32, bufs: &[(u64, u64)]) {
        let r = self.rec(cb);
        r.dirty(GRAPHICS);
        let end = first as usize + bufs.len();
        if r.vertex.len() < end {
            r.vertex.resize(end, None);
        }
        for (i, b) in bufs.iter().enumerate() {
            r.vertex[first as usize + i] = Some(*b);
        }
    }

    pub fn bind_index(&mut self, cb: u64, buffer: u64, offset: u64) {
        let r = self.rec(cb);
        r.index = Some((buffer, offset));
        r.dirty(GRAPHICS);
    }

    /// The shader accesses of a draw or dispatch at bind point `bp` (`None`: unknown), and
    /// the storage bindings it can reach.
    fn shader_accesses(
        &self,
        cb: u64,
        bp: usize,
    ) -> (Option<Vec<(ShaderAccessKind, Reg)>>, Vec<Reach>) {
        let Some(rec) = self.cbs.get(&cb) else {
            return (None, Vec::new());
        };
        let o = &self.objects;
        let mut reach = Vec::new();
        for s in rec.sets[bp].iter().flatten() {
            match s {
                SetRef::Set(h) => reach.push(Reach::Set(*h)),
                SetRef::Push(d) => reach.push(Reach::Slots(
                    d.slots
                        .values()
                        .filter(|(k, r)| *k == DescKind::Storage && *r != DescRes::None)
                        .map(|(_, r)| *r)
                        .collect(),
                )),
            }
        }
        let list = (|| {
            let p = o.pipelines.get(&rec.pipelines[bp]?)?;
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
            for s in rec.sets[bp].iter().flatten() {
                let set = match s {
                    SetRef::Set(h) => o.sets.get(h)?,
                    SetRef::Push(d) => d,
                };
                if set.unknown {
                    return None;
                }
                for &(kind, res) in set.slots.values() {
                    let k = match kind {
                        DescKind::None => continue,
                        DescKind::Unknown => return None,
                        DescKind::Read => ShaderAccessKind::Read,
                        DescKind::Storage => storage_kind,
                    };
                    match o.desc_region(res) {
                        Some(r) => out.push((k, r)),
                        // An empty descriptor slot accesses nothing.
                        None if res == DescRes::None => {}
                        None => return None,
                    }
                }
            }
            if bp == GRAPHICS {
                for &(b, off) in rec.vertex.iter().flatten() {
                    out.push((ShaderAccessKind::Read, o.buffer_region(b, off, WHOLE_SIZE)?));
                }
            }
            Some(out)
        })();
        (list, reach)
    }

    /// `vkCmdBeginRenderPass*`; `views` are the framebuffer's (or the imageless begin info's).
    pub fn begin_render_pass(&mut self, cb: u64, rp: u64, views: &[u64]) {
        let Some(desc) = self.objects.render_passes.get(&rp) else {
            self.unknown(cb, "untracked_render_pass");
            return;
        };
        let pass = PassRec::render_pass(&self.objects, desc, views);
        let r = self.rec(cb);
        r.pass = Some(pass);
        r.pass_gen += 1;
    }

    /// `vkCmdBeginRendering`.
    pub fn begin_rendering(
        &mut self,
        cb: u64,
        colors: &[RenderingColor],
        depth: &[RenderingDepth],
        suspending: bool,
        resuming: bool,
    ) {
        let mut pass = PassRec::rendering(&self.objects, colors, depth);
        pass.suspending = suspending;
        pass.resumed = resuming;
        let r = self.rec(cb);
        r.pass = Some(pass);
        r.pass_gen += 1;
    }

    pub fn next_subpass(&mut self, cb: u64) {
        if let Some(p) = &mut self.rec(cb).pass {
            p.subpass += 1;
        }
    }

    /// `vkCmdClearAttachments` inside a pass: writes attachments (a depth clear writes depth).
    pub fn clear_attachments(&mut self, cb: u64, depth: bool) {
        let rec = self.rec(cb);
        match &mut rec.pass {
            Some(p) => p.depth_written |= depth,
            None if rec.continues_pass => rec.pending_draws.push(DrawFx {
                depth_write: depth,
                ..DrawFx::default()
            }),
            None => self.unknown(cb, "vkCmdClearAttachments"),
        }
    }

    /// What a draw with the current graphics state does (None: the command buffer is not
    /// being recorded), and the bindings it can write.
    fn draw_fx(&self, cb: u64, indexed: bool) -> Option<(DrawFx, Vec<Reach>)> {
        let rec = self.cbs.get(&cb)?;
        let o = &self.objects;
        let mut fx = DrawFx::default();
        match o.pipelines.get(&rec.pipelines[GRAPHICS].unwrap_or(0)) {
            Some(p) => {
                fx.blend = p.blend.clone();
                fx.blend_all = p.blend_all;
                fx.depth_write = p.depth_write;
            }
            None => fx.unknown = true,
        }
        let (list, reach) = self.shader_accesses(cb, GRAPHICS);
        match list {
            Some(list) => fx.shader = list,
            None => fx.unknown = true,
        }
        if indexed {
            match rec
                .index
                .and_then(|(b, off)| o.buffer_region(b, off, WHOLE_SIZE))
            {
                Some(r) => fx.shader.push((ShaderAccessKind::Read, r)),
                None => fx.unknown = true,
            }
        }
        Some((fx, reach))
    }

    /// A draw (any kind); `indirect` are the indirect (and count) buffer ranges read.
    pub fn draw(&mut self, cb: u64, indexed: bool, indirect: &[(u64, u64)]) {
        let Some(rec) = self.cbs.get(&cb) else {
            return;
        };
        if !matches!(rec.gfx_cache, Some((ix, _)) if ix == indexed) {
            let Some((fx, reach)) = self.draw_fx(cb, indexed) else {
                return;
            };
            let rec = self.rec(cb);
            for r in reach {
                rec.add_reach(r);
            }
            rec.gfx_cache = Some((indexed, fx));
            rec.gfx_applied = None;
        }
        let extra: Vec<Option<Reg>> = indirect
            .iter()
            .map(|&(b, off)| self.objects.buffer_region(b, off, WHOLE_SIZE))
            .collect();
        let CmdRecord {
            gfx_cache,
            gfx_applied,
            pass,
            pending_draws,
            continues_pass,
            accesses,
            phase,
            pass_gen,
            ..
        } = self.rec(cb);
        let Some((_, fx)) = gfx_cache.as_ref() else {
            return;
        };
        match pass {
            Some(p) => {
                // The same state's shader accesses are added to a pass once.
                p.draw(fx, *gfx_applied != Some(*pass_gen));
                *gfx_applied = Some(*pass_gen);
                for e in extra {
                    match e {
                        Some(r) => p.shader.push((ShaderAccessKind::Read, r)),
                        None => p.unknown = true,
                    }
                }
            }
            None if *continues_pass => {
                let mut fx = fx.clone();
                for e in extra {
                    match e {
                        Some(r) => fx.shader.push((ShaderAccessKind::Read, r)),
                        None => fx.unknown = true,
                    }
                }
                pending_draws.push(fx);
            }
            None => {
                // A draw outside a render pass is invalid; be conservative.
                accesses.push(Access::new(
                    *phase,
                    AccessKind::Unknown,
                    UNKNOWN_REG,
                    Cause::Shader,
                ));
                *phase += 1;
            }
        }
    }

    /// A dispatch; `indirect` is the indirect buffer, if any.
    pub fn dispatch(&mut self, cb: u64, indirect: Option<(u64, u64)>) {
        if self.rec(cb).compute_cache.is_none() {
            let (list, reach) = self.shader_accesses(cb, COMPUTE);
            let rec = self.rec(cb);
            for r in reach {
                rec.add_reach(r);
            }
            rec.compute_cache = Some(list);
        }
        let ind = indirect.map(|(b, o)| self.objects.buffer_region(b, o, 12));
        let rec = self.rec(cb);
        let ph = rec.phase;
        let list = rec.compute_cache.clone().flatten();
        match list {
            Some(list) => {
                for (k, r) in list {
                    rec.accesses
                        .push(Access::new(ph, access_kind(k), r, Cause::Compute));
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

    /// `vkCmdBeginQuery*`: inside a pass an occlusion counter, outside an accumulating access.
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

    /// `vkCmdEndRenderPass*` / `vkCmdEndRendering*`: lowers the pass (or keeps a suspended
    /// dynamic rendering pass for the next command buffer of the submission).
    pub fn end_render_pass(&mut self, cb: u64) {
        let weaken = self.weaken;
        let rec = self.rec(cb);
        let Some(p) = rec.pass.take() else {
            return;
        };
        for r in p.reach() {
            rec.add_reach(r);
        }
        match (p.resumed, p.suspending) {
            (false, true) => rec.suspended = Some(p),
            (true, true) => rec.resumed_tail = Some(p),
            (true, false) => {
                rec.resumed_head = Some((p, rec.phase));
                rec.phase += 3;
            }
            (false, false) => {
                let mut out = Vec::new();
                p.lower_into(&mut out, weaken);
                for a in &mut out {
                    a.phase += rec.phase;
                }
                rec.accesses.extend(out);
                rec.phase += 3;
            }
        }
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
                r.extra.push("untracked_command_buffer");
                r.phase = 1;
                r
            });
            let rec = self.rec(cb);
            if let Some(p) = &mut rec.pass {
                for d in &sec.pending_draws {
                    p.draw(d, true);
                }
            }
            if sec.suspended.is_some() || sec.resumed_head.is_some() || sec.resumed_tail.is_some() {
                push_unique(&mut rec.extra, "suspended_pass_in_secondary");
            }
            let base = rec.phase;
            rec.accesses.extend(sec.accesses.iter().map(|a| {
                let mut a = *a;
                a.phase += base;
                a
            }));
            rec.phase += sec.phase;
            for e in &sec.extra {
                push_unique(&mut rec.extra, e);
            }
            for r in sec.reach {
                rec.add_reach(r);
            }
            rec.events.extend(sec.events);
        }
    }
}
