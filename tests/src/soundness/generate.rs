//! Random generation of specs, and their lowering to simulated stream ops, phase by phase.

use super::*;

/// Region allocation for one command.
pub(super) struct Gen<'a> {
    pub(super) rng: &'a mut Rng,
    /// Declared area size.
    pub(super) decl: u64,
    /// Size multiplier (heavy commands move more memory).
    pub(super) scale: u64,
    pub(super) pool: Vec<Reg>,
    /// Sparse layout: fresh regions do not overlap each other.
    pub(super) bump: Option<u64>,
    /// Next free private byte.
    pub(super) private: u64,
}

impl Gen<'_> {
    pub(super) fn size(&mut self) -> u64 {
        let s = match self.rng.below(100) {
            0..50 => self.rng.range(1, 2048),
            50..85 => self.rng.range(2048, 16 << 10),
            _ => self.rng.range(16 << 10, 64 << 10),
        };
        (s * self.scale).min(self.decl / 2)
    }

    pub(super) fn fresh(&mut self, len: u64) -> Reg {
        if let Some(b) = self.bump {
            let off = b + self.rng.below(64);
            if off + len <= self.decl {
                self.bump = Some(off + len);
                return Reg::new(off, len);
            }
        }
        Reg::new(self.rng.below(self.decl - len + 1), len)
    }

    /// A region: an exact alias of an earlier one (`alias` %), a partial overlap at an odd
    /// offset (`partial` %), or fresh.
    pub(super) fn region(&mut self, alias: u64, partial: u64) -> Reg {
        let roll = self.rng.below(100);
        let r = if !self.pool.is_empty() && roll < alias {
            self.pool[self.rng.index(self.pool.len())]
        } else if !self.pool.is_empty() && roll < alias + partial {
            let o = self.pool[self.rng.index(self.pool.len())];
            let len = self.size();
            // Start anywhere from `len - 1` bytes before `o` to its last byte, odd offsets too.
            let lo = o.off.saturating_sub(len - 1);
            let off = self.rng.range(lo, o.end() - 1) | 1;
            let off = off.min(self.decl - len);
            Reg::new(off, len)
        } else {
            let len = self.size();
            self.fresh(len)
        };
        self.pool.push(r);
        r
    }

    /// An 8-aligned counter region of 8..=`max_slots`*8 bytes (sometimes an earlier one).
    pub(super) fn counter(&mut self, max_slots: u64, reuse: &[Reg]) -> Reg {
        if !reuse.is_empty() && self.rng.chance(75) {
            return reuse[self.rng.index(reuse.len())];
        }
        let len = 8 * self.rng.range(1, max_slots);
        let r = self.fresh(len + 8);
        let off = r.off.next_multiple_of(8);
        let r = Reg::new(off.min((self.decl - len) & !7), len);
        self.pool.push(r);
        r
    }

    /// Sometimes moves a counter region by one slot or grows it by one, so that atomics are only
    /// partly on memory reset earlier.
    pub(super) fn misalign_counter(&mut self, c: Reg) -> Reg {
        if !self.rng.chance(20) {
            return c;
        }
        let r = match self.rng.below(3) {
            0 if c.off >= 8 => Reg::new(c.off - 8, c.len),
            1 => Reg::new(c.off + 8, c.len),
            _ => Reg::new(c.off, c.len + 8),
        };
        if r.end() <= self.decl {
            r
        } else {
            c
        }
    }

    pub(super) fn tile(&mut self, len: u64) -> u64 {
        let off = self.private.next_multiple_of(64) + self.rng.below(64);
        self.private = off + len;
        off
    }
}

/// A generated command: spec, stream ops and the memory extent they touch.
#[derive(Clone, Debug)]
pub struct Built {
    pub spec: Spec,
    pub ops: Vec<MOp>,
    /// Bytes of the arena the command may touch (reset and compared): `[0, extent)`.
    pub extent: u64,
    /// Memory traffic of one run, bytes.
    pub traffic: u64,
}

/// Generates command `seed`.
pub fn generate(seed: u64) -> Built {
    let mut rng = Rng::new(seed);
    let heavy = rng.chance(15);
    let decl = if heavy { 2 << 20 } else { 256 << 10 };
    let sparse = rng.chance(70);
    let mut g = Gen {
        rng: &mut rng,
        decl,
        scale: if heavy { 8 } else { 1 },
        pool: Vec::new(),
        bump: sparse.then_some(0),
        private: decl,
    };
    let (spec, mut ops) = if g.rng.chance(55) {
        let spec = gen_render(&mut g);
        let ops = lower_render(&spec, &mut g);
        (Spec::Render(spec), ops)
    } else {
        let spec = gen_compute(&mut g);
        let ops = lower_compute(&spec, &mut g);
        (Spec::Compute(spec), ops)
    };
    let traffic: u64 = ops.iter().map(|o| o.bytes()).sum();
    stretch(&mut rng, &mut ops, heavy);
    let extent = ops.iter().map(|o| o.extent()).max().unwrap_or(0).max(decl);
    Built {
        spec,
        ops,
        extent,
        traffic,
    }
}

/// Inserts spins so the command spans several quanta (25-80 µs; heavy ones are long anyway).
pub(super) fn stretch(rng: &mut Rng, ops: &mut Vec<MOp>, heavy: bool) {
    let mem_ns: u64 = ops
        .iter()
        .map(|o| OP_COST_NS + o.bytes().div_ceil(BYTES_PER_NS))
        .sum();
    let target = if heavy {
        rng.range(0, 20_000)
    } else {
        rng.range(25_000, 80_000)
    };
    let mut spin_left = target.saturating_sub(mem_ns);
    let mut out = Vec::with_capacity(ops.len() * 2);
    let n = ops.len().max(1) as u64;
    for op in ops.iter() {
        if spin_left > 0 && rng.chance(60) {
            let ns = rng.range(1, (2 * spin_left / n).max(1)).min(spin_left);
            spin_left -= ns;
            out.push(MOp::Spin { ns });
        }
        out.push(*op);
    }
    if spin_left > 0 {
        let at = rng.index(out.len() + 1);
        out.insert(at, MOp::Spin { ns: spin_left });
    }
    *ops = out;
}

pub(super) fn load_op(rng: &mut Rng) -> LoadOp {
    match rng.below(100) {
        0..25 => LoadOp::Load,
        25..65 => LoadOp::Clear,
        _ => LoadOp::DontCare,
    }
}

pub(super) fn store_op(rng: &mut Rng) -> StoreOp {
    if rng.chance(70) {
        StoreOp::Store
    } else {
        StoreOp::DontCare
    }
}

pub(super) fn gen_render(g: &mut Gen) -> RenderSpec {
    let mut atts = Vec::new();
    let min_colors = u64::from(g.rng.chance(85));
    let colors = g.rng.range(min_colors, 4);
    for _ in 0..colors {
        let reg = g.region(8, 8);
        atts.push(AttSpec {
            aspect: Aspect::Color,
            reg,
            load: load_op(g.rng),
            store: store_op(g.rng),
            blend: g.rng.chance(35),
            read_only: false,
            draws: g.rng.range(0, 3) as u32,
            clear: g.rng.next_u64() as u32,
        });
    }
    let mut depth_reg = None;
    for aspect in [Aspect::Depth, Aspect::Stencil] {
        if !g.rng.chance(40) && !atts.is_empty() {
            continue;
        }
        // Combined depth/stencil formats describe the same memory twice.
        let reg = match depth_reg {
            Some(r) if g.rng.chance(50) => r,
            _ => g.region(8, 8),
        };
        depth_reg = Some(reg);
        let read_only = g.rng.chance(40);
        atts.push(AttSpec {
            aspect,
            reg,
            load: load_op(g.rng),
            store: store_op(g.rng),
            blend: false,
            read_only,
            draws: if read_only {
                0
            } else {
                g.rng.range(0, 2) as u32
            },
            clear: g.rng.next_u64() as u32,
        });
    }
    let mut queries = Vec::new();
    if g.rng.chance(25) {
        for _ in 0..g.rng.range(1, 2) {
            let q = g.counter(1, &[]);
            queries.push((q, g.rng.chance(60)));
        }
    }
    // Shader atomics sometimes land on a query counter the pass resets (a reset from another
    // cause, in an earlier phase), sometimes only partly on it.
    let reset: Vec<Reg> = queries.iter().filter(|q| q.1).map(|q| q.0).collect();
    let mut shader = Vec::new();
    for _ in 0..g.rng.range(0, 4) {
        let kind = match g.rng.below(100) {
            0..50 => ShaderAccessKind::Read,
            50..84 => ShaderAccessKind::Write,
            84..93 => ShaderAccessKind::ReadWrite,
            _ => ShaderAccessKind::Atomic,
        };
        let reg = if kind == ShaderAccessKind::Atomic {
            let c = g.counter(4, &reset);
            g.misalign_counter(c)
        } else {
            // Sampling an attachment (feedback loops) and partial overlaps happen.
            g.region(6, 6)
        };
        shader.push((kind, reg));
    }
    let mut xfb = Vec::new();
    if g.rng.chance(12) {
        let buffer = g.region(5, 5);
        let counter = g.rng.chance(70).then(|| g.counter(1, &[]));
        xfb.push(XfbSpec {
            buffer,
            counter,
            append: g.rng.chance(50),
        });
    }
    let mut timestamps = Vec::new();
    if g.rng.chance(15) {
        timestamps.push(g.counter(1, &[]));
    }
    let spills_declared = g.rng.chance(50);
    RenderSpec {
        atts,
        shader,
        unknown: g.rng.chance(8),
        queries,
        xfb,
        timestamps,
        spills_declared,
        spill_happens: spills_declared && g.rng.chance(50),
    }
}

pub(super) fn gen_compute(g: &mut Gen) -> ComputeSpec {
    let n = g.rng.range(1, 4);
    let mut dispatches: Vec<DispatchSpec> = Vec::new();
    let mut counters: Vec<Reg> = Vec::new();
    for i in 0..n {
        let mut d = DispatchSpec {
            concurrent: i > 0 && g.rng.chance(25),
            undeclared: g.rng.chance(6),
            ..DispatchSpec::default()
        };
        // What earlier dispatches produced: consumers read it.
        let produced: Vec<Reg> = dispatches
            .iter()
            .flat_map(|p| {
                let may: &[Reg] = if g.rng.chance(25) { &p.writes } else { &[] };
                p.overwrites.iter().chain(may).copied().collect::<Vec<_>>()
            })
            .collect();
        for _ in 0..g.rng.range(0, 2) {
            let r = if !produced.is_empty() && g.rng.chance(40) {
                produced[g.rng.index(produced.len())]
            } else {
                g.region(6, 6)
            };
            d.reads.push(r);
        }
        for _ in 0..g.rng.range(0, 2) {
            let r = if g.rng.chance(15) {
                let c = g.counter(4, &[]);
                counters.push(c);
                c
            } else {
                g.region(5, 4)
            };
            d.overwrites.push(r);
        }
        for _ in 0..g.rng.range(0, 2) {
            d.writes.push(g.region(5, 4));
        }
        if g.rng.chance(10) {
            d.read_writes.push(g.region(10, 8));
        }
        if g.rng.chance(if counters.is_empty() { 8 } else { 30 }) {
            let c = g.counter(4, &counters);
            let c = g.misalign_counter(c);
            d.atomics.push(c);
        }
        dispatches.push(d);
    }
    ComputeSpec {
        dispatches,
        described: !g.rng.chance(4),
    }
}

/// Ops of one unit (kept together when a phase is shuffled).
pub(super) type Unit = Vec<MOp>;

/// A window of `len` bytes from a random readable source, if any is large enough.
pub(super) fn source(rng: &mut Rng, readable: &[Reg], len: u64) -> Option<u64> {
    let fits: Vec<Reg> = readable.iter().copied().filter(|r| r.len >= len).collect();
    if fits.is_empty() {
        return None;
    }
    let r = fits[rng.index(fits.len())];
    Some(r.window(rng, len))
}

/// Writes covering every byte of `dst`, in 1-3 pieces in random order, from `data(piece)`.
pub(super) fn covering(
    rng: &mut Rng,
    dst: Reg,
    mut piece: impl FnMut(&mut Rng, Reg) -> MOp,
) -> Vec<Unit> {
    let k = rng.range(1, 3).min(dst.len);
    let mut cuts: Vec<u64> = (1..k).map(|_| rng.range(1, dst.len - 1)).collect();
    cuts.push(0);
    cuts.push(dst.len);
    cuts.sort_unstable();
    cuts.dedup();
    let mut units: Vec<Unit> = cuts
        .windows(2)
        .map(|w| vec![piece(rng, Reg::new(dst.off + w[0], w[1] - w[0]))])
        .collect();
    rng.shuffle(&mut units);
    units
}

/// Some writes (possibly none) inside `r`, with data from `readable` or constants.
pub(super) fn may_writes(rng: &mut Rng, r: Reg, readable: &[Reg], max: u64) -> Vec<Unit> {
    let mut units = Vec::new();
    for _ in 0..rng.range(0, max) {
        let n = r.window_len(rng);
        let dst = r.window(rng, n);
        let slots = r.slots();
        let op = match rng.below(3) {
            0 if !slots.is_empty() => MOp::Store {
                addr: slots[rng.index(slots.len())],
                value: rng.next_u64(),
            },
            1 => match source(rng, readable, n) {
                Some(src) => MOp::Copy { dst, src, len: n },
                None => MOp::Fill {
                    dst,
                    len: n,
                    pattern: rng.next_u64() as u32,
                },
            },
            _ => MOp::Fill {
                dst,
                len: n,
                pattern: rng.next_u64() as u32,
            },
        };
        units.push(vec![op]);
    }
    units
}

/// Read-modify-writes inside `r` (with `r` itself readable too). Sources differ from the
/// destination window (an identity copy or a self-`Max` would be trivially idempotent).
pub(super) fn read_writes(rng: &mut Rng, r: Reg, readable: &[Reg]) -> Vec<Unit> {
    let mut units = Vec::new();
    for _ in 0..rng.range(1, 2) {
        let n = r.window_len(rng);
        let dst = r.window(rng, n);
        let op = if n < r.len && rng.chance(25) {
            let mut src = r.window(rng, n);
            if src == dst {
                src = if dst > r.off { dst - 1 } else { dst + 1 };
            }
            MOp::Copy { dst, src, len: n }
        } else {
            let f = match rng.below(100) {
                0..35 => RmwFn::Add,
                35..55 => RmwFn::Xor,
                55..85 => RmwFn::Average,
                _ => RmwFn::Max,
            };
            let mut src = source(rng, readable, n).unwrap_or_else(|| r.window(rng, n));
            let f = if src == dst {
                src = source(rng, readable, n).unwrap_or(src);
                if src == dst {
                    RmwFn::Add
                } else {
                    f
                }
            } else {
                f
            };
            MOp::Rmw {
                dst,
                src,
                len: n,
                f,
            }
        };
        units.push(vec![op]);
    }
    units
}

pub(super) fn atomics(rng: &mut Rng, r: Reg, max: u64) -> Vec<Unit> {
    let slots = r.slots();
    (0..rng.range(1, max))
        .map(|_| {
            vec![MOp::Atomic {
                addr: slots[rng.index(slots.len())],
                value: rng.range(1, 1000),
            }]
        })
        .collect()
}

pub(super) fn touches(rng: &mut Rng, r: Reg) -> Vec<Unit> {
    if rng.chance(50) {
        let n = r.window_len(rng);
        vec![vec![MOp::Load {
            addr: r.window(rng, n),
            len: n,
        }]]
    } else {
        Vec::new()
    }
}

/// Undeclared writes anywhere in the declared area.
pub(super) fn wild(rng: &mut Rng, decl: u64) -> Vec<Unit> {
    let area = Reg::new(0, decl);
    (0..rng.range(1, 2))
        .map(|_| {
            let n = rng.range(1, 8192);
            let dst = area.window(rng, n);
            let op = match rng.below(3) {
                0 => MOp::Fill {
                    dst,
                    len: n,
                    pattern: rng.next_u64() as u32,
                },
                1 => MOp::Rmw {
                    dst,
                    src: area.window(rng, n),
                    len: n,
                    f: RmwFn::Add,
                },
                _ => MOp::Copy {
                    dst,
                    src: area.window(rng, n),
                    len: n,
                },
            };
            vec![op]
        })
        .collect()
}

pub(super) fn flatten(rng: &mut Rng, mut units: Vec<Unit>) -> Vec<MOp> {
    rng.shuffle(&mut units);
    units.into_iter().flatten().collect()
}

/// (b) for a render pass: the load, draw and end phases, each in a random order.
pub(super) fn lower_render(s: &RenderSpec, g: &mut Gen) -> Vec<MOp> {
    let spill = s.spill_happens;
    // Private tile per attachment, when the stream needs one.
    let tiles: Vec<Option<u64>> = s
        .atts
        .iter()
        .map(|a| {
            let needed =
                spill || a.draws > 0 || (a.store == StoreOp::Store && a.load == LoadOp::Load);
            needed.then(|| g.tile(a.reg.len))
        })
        .collect();
    let readable: Vec<Reg> = s
        .shader
        .iter()
        .filter(|(k, _)| matches!(k, ShaderAccessKind::Read | ShaderAccessKind::ReadWrite))
        .map(|&(_, r)| r)
        .collect();
    let tile_regs: Vec<Reg> = s
        .atts
        .iter()
        .zip(&tiles)
        .filter_map(|(a, t)| t.map(|t| Reg::new(t, a.reg.len)))
        .collect();
    let garbage = 0xdead_beef_u32 ^ (g.rng.next_u64() as u32);

    let (mut load, mut draw, mut end) =
        (Vec::<Unit>::new(), Vec::<Unit>::new(), Vec::<Unit>::new());
    for (a, tile) in s.atts.iter().zip(&tiles) {
        let fill_of = |a: &AttSpec| match a.load {
            LoadOp::Clear => a.clear,
            _ => garbage,
        };
        match *tile {
            Some(t) => {
                let tr = Reg::new(t, a.reg.len);
                load.push(vec![match a.load {
                    LoadOp::Load => MOp::Copy {
                        dst: t,
                        src: a.reg.off,
                        len: a.reg.len,
                    },
                    _ => MOp::Fill {
                        dst: t,
                        len: a.reg.len,
                        pattern: fill_of(a),
                    },
                }]);
                for _ in 0..a.draws {
                    let n = tr.window_len(g.rng);
                    let dst = tr.window(g.rng, n);
                    // Draw data: a texture, another attachment's tile (framebuffer fetch), or a
                    // constant.
                    let mut srcs = readable.clone();
                    srcs.extend(tile_regs.iter().filter(|r| r.off != t));
                    let src = source(g.rng, &srcs, n);
                    let op = match (a.blend, src) {
                        (true, s) => MOp::Rmw {
                            dst,
                            src: s.unwrap_or_else(|| tr.window(g.rng, n)),
                            len: n,
                            f: RmwFn::Average,
                        },
                        (false, Some(src)) if g.rng.chance(70) => MOp::Copy { dst, src, len: n },
                        _ => MOp::Fill {
                            dst,
                            len: n,
                            pattern: g.rng.next_u64() as u32,
                        },
                    };
                    draw.push(vec![op]);
                }
                if a.store == StoreOp::Store {
                    end.extend(covering(g.rng, a.reg, |_, p| MOp::Copy {
                        dst: p.off,
                        src: t + (p.off - a.reg.off),
                        len: p.len,
                    }));
                }
            }
            None => {
                if a.load == LoadOp::Load && g.rng.chance(70) {
                    load.push(vec![MOp::Load {
                        addr: a.reg.off,
                        len: a.reg.len,
                    }]);
                }
                if a.store == StoreOp::Store {
                    let pattern = fill_of(a);
                    end.extend(covering(g.rng, a.reg, |_, p| MOp::Fill {
                        dst: p.off,
                        len: p.len,
                        pattern: pattern.rotate_right(8 * ((p.off - a.reg.off) % 4) as u32),
                    }));
                }
            }
        }
    }
    if spill {
        // A partial render: every tile to its memory, then reloaded.
        let mut u = Vec::new();
        for (a, tile) in s.atts.iter().zip(&tiles) {
            if let Some(t) = *tile {
                u.push(MOp::Copy {
                    dst: a.reg.off,
                    src: t,
                    len: a.reg.len,
                });
                u.push(MOp::Copy {
                    dst: t,
                    src: a.reg.off,
                    len: a.reg.len,
                });
            }
        }
        draw.push(u);
    }
    for &(k, r) in &s.shader {
        match k {
            ShaderAccessKind::Read => draw.extend(touches(g.rng, r)),
            ShaderAccessKind::Write => draw.extend(may_writes(g.rng, r, &readable, 2)),
            ShaderAccessKind::ReadWrite => draw.extend(read_writes(g.rng, r, &readable)),
            ShaderAccessKind::Atomic => draw.extend(atomics(g.rng, r, 2)),
        }
    }
    for &(q, reset) in &s.queries {
        if reset {
            load.push(vec![MOp::Store {
                addr: q.off,
                value: 0,
            }]);
        }
        draw.extend(atomics(g.rng, q, 3));
    }
    for x in &s.xfb {
        draw.extend(may_writes(g.rng, x.buffer, &readable, 2));
        if let Some(c) = x.counter {
            if x.append {
                draw.extend(atomics(g.rng, c, 1));
            } else {
                end.push(vec![MOp::Store {
                    addr: c.off,
                    value: g.rng.next_u64(),
                }]);
            }
        }
    }
    for t in &s.timestamps {
        end.push(vec![MOp::Store {
            addr: t.off,
            value: 0x7157_0000 + t.off,
        }]);
    }
    if s.unknown {
        draw.extend(wild(g.rng, g.decl));
    }
    let mut ops = flatten(g.rng, load);
    ops.extend(flatten(g.rng, draw));
    ops.extend(flatten(g.rng, end));
    ops
}

/// (b) for a compute command: dispatch by dispatch, concurrent ones shuffled together.
pub(super) fn lower_compute(s: &ComputeSpec, g: &mut Gen) -> Vec<MOp> {
    let mut ops = Vec::new();
    let mut group: Vec<Unit> = Vec::new();
    for (i, d) in s.dispatches.iter().enumerate() {
        if i > 0 && !d.concurrent {
            ops.extend(flatten(g.rng, std::mem::take(&mut group)));
        }
        let readable: Vec<Reg> = d.reads.iter().chain(&d.read_writes).copied().collect();
        for r in &d.reads {
            group.extend(touches(g.rng, *r));
        }
        for r in &d.overwrites {
            group.extend(covering(g.rng, *r, |rng, p| {
                match source(rng, &readable, p.len) {
                    Some(src) if rng.chance(60) => MOp::Copy {
                        dst: p.off,
                        src,
                        len: p.len,
                    },
                    _ => MOp::Fill {
                        dst: p.off,
                        len: p.len,
                        pattern: rng.next_u64() as u32,
                    },
                }
            }));
        }
        for r in &d.writes {
            group.extend(may_writes(g.rng, *r, &readable, 2));
        }
        for r in &d.read_writes {
            group.extend(read_writes(g.rng, *r, &readable));
        }
        for r in &d.atomics {
            group.extend(atomics(g.rng, *r, 2));
        }
        if d.undeclared || !s.described {
            group.extend(wild(g.rng, g.decl));
        }
    }
    ops.extend(flatten(g.rng, group));
    ops
}
