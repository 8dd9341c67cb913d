//! The aliasing check.

use super::*;

/// What the aliasing check found.
#[derive(Clone, Debug)]
pub struct AliasReport {
    pub name: &'static str,
    pub reasons: Reasons,
    /// Interruption points tried with a forced replay, and how many left memory different
    /// from a fault-free run.
    pub points: usize,
    pub corrupting_points: usize,
    /// Most attachment bytes left different from the fault-free run by one replay.
    pub worst_bytes: usize,
    /// The real descriptor's victim was killed, innocent.
    pub killed_innocent: bool,
}

/// Two color attachments over the same memory `m` (or `m` shifted by an odd offset): the first
/// loaded and read back in the tile by the draws (framebuffer fetch / input attachment, not
/// stored), the second cleared, blended with the first and stored. Plus the control: the second
/// on disjoint memory.
pub fn aliasing_check(rig: &mut Rig) -> Res<Vec<AliasReport>> {
    const M: u64 = 512 << 10;
    let base = rig.base();
    let mut out = Vec::new();
    let cases: [(&'static str, u64); 3] = [
        ("aliasing-same-memory", 0),
        ("aliasing-partial-odd-offset", 4093),
        ("control-disjoint", 2 * M),
    ];
    for (name, shift) in cases {
        let a = Reg::new(0, M);
        let b = Reg::new(shift, M);
        let (ta, tb) = (4 * M, 5 * M);
        let pass = RenderPass::new()
            .partial_render_spills(false)
            .color(ColorAttachment::new(
                a.va(base),
                LoadOp::Load,
                StoreOp::DontCare,
            ))
            .color(ColorAttachment::new(b.va(base), LoadOp::Clear, StoreOp::Store).blended());
        let ops = vec![
            MOp::Copy {
                dst: ta,
                src: a.off,
                len: M,
            },
            MOp::Fill {
                dst: tb,
                len: M,
                pattern: 0x4020_1008,
            },
            MOp::Spin { ns: 5_000 },
            MOp::Rmw {
                dst: tb,
                src: ta,
                len: M,
                f: RmwFn::Average,
            },
            MOp::Spin { ns: 5_000 },
            MOp::Copy {
                dst: b.off,
                src: tb,
                len: M,
            },
            MOp::Spin { ns: 5_000 },
        ];
        let extent = 6 * M;
        let reasons = pass.analyse().reasons;
        // Place with the handmade description.
        let v = &rig.victim;
        v.code.reset();
        let mut s = emit(&ops, base);
        let real = v
            .render(
                &mut s,
                pass,
                &[(base + a.off, a.len), (base + b.off, b.len)],
            )
            .map_err(e)?;
        let mut forced = real.clone();
        forced.access = Some(RenderPass::new().partial_render_spills(false));
        let (real, forced) = (Desc::Render(Box::new(real)), Desc::Render(Box::new(forced)));
        let image = rig.image(&mut Rng::new(0xa11a5), extent as usize);
        let (r1, dur) = rig.clean(&image, &real, 1)?;
        let mut rep = AliasReport {
            name,
            reasons,
            points: 0,
            corrupting_points: 0,
            worst_bytes: 0,
            killed_innocent: false,
        };
        let restartable = reasons.is_empty();
        for k in 1..16 {
            let t = dur * k / 16;
            let d = if restartable { &real } else { &forced };
            let run = rig.interrupted(&image, d, (t, dur), &r1)?;
            rep.points += 1;
            if run.diff.is_some() {
                // Count the attachment memory only (the tiles differ too).
                let n = first_diff(&r1[..3 * M as usize], &rig.buf[..3 * M as usize])
                    .map_or(0, |d| d.1);
                rep.corrupting_points += 1;
                rep.worst_bytes = rep.worst_bytes.max(n);
            }
        }
        if !restartable {
            let run = rig.interrupted(&image, &real, (dur / 2, dur), &r1)?;
            rep.killed_innocent = matches!(
                run.outcome,
                JobOutcome::Killed {
                    guilt: Guilt::Innocent,
                    ..
                }
            );
        }
        out.push(rep);
    }
    Ok(out)
}

/// Whether the aliasing reports show what they must: aliased cases caught (LOAD_STORE_SAME),
/// corrupting when replayed anyway, killed innocent for real; the control restartable and
/// replayed exactly.
pub fn aliasing_ok(r: &AliasReport) -> bool {
    if r.name.starts_with("control") {
        r.reasons.is_empty() && r.corrupting_points == 0
    } else {
        r.reasons.contains(Reasons::LOAD_STORE_SAME) && r.corrupting_points > 0 && r.killed_innocent
    }
}
