//! Cost of the restartability analysis of one render pass: 12 color attachments, depth and
//! stencil, a few shader ranges. Run with `cargo bench -p agx-winsys --bench analysis`.

use std::hint::black_box;

use agx_winsys::analysis::{
    analyse, ColorAttachment, ComputeCommand, DepthStencilAttachment, Dispatch, LoadOp, Region,
    RenderPass, ShaderAccessKind, StoreOp, Va,
};
use criterion::{criterion_group, criterion_main, Criterion};

fn render_pass() -> RenderPass<Va> {
    let rt = |i: u64| Region::image(Va, 0x1_0000_0000 + i * (16 << 20), 4, 1920 * 1080, 1, 0);
    let mut p = RenderPass::new();
    for i in 0..12 {
        let load = if i % 3 == 0 {
            LoadOp::Load
        } else {
            LoadOp::Clear
        };
        let store = if i % 3 == 0 {
            StoreOp::DontCare
        } else {
            StoreOp::Store
        };
        let mut c = ColorAttachment::new(rt(i).unwrap(), load, store);
        c.blend = i % 2 == 0;
        p = p.color(c);
    }
    p.depth(DepthStencilAttachment::new(rt(12).unwrap(), LoadOp::Load, StoreOp::Store).read_only())
        .stencil(DepthStencilAttachment::new(
            rt(13).unwrap(),
            LoadOp::Clear,
            StoreOp::DontCare,
        ))
        .shader_access(ShaderAccessKind::Read, Region::va(0x2_0000_0000, 1 << 20))
        .shader_access(ShaderAccessKind::Read, Region::va(0x2_0010_0000, 1 << 16))
        .shader_access(ShaderAccessKind::Write, Region::va(0x2_0020_0000, 1 << 20))
        .shader_access(ShaderAccessKind::ReadWrite, Region::va(0x2_0040_0000, 4096))
        .occlusion_query(Region::va(0x3_0000_0000, 8), true)
        .timestamp(Region::va(0x3_0000_0100, 16))
}

fn bench(c: &mut Criterion) {
    let pass = render_pass();
    // The ReadWrite shader range makes it not restartable; the sweep runs to the end anyway.
    assert!(!pass.analyse().restartable());
    c.bench_function(
        "render pass 12 rt + z/s + 4 shader ranges (describe + analyse)",
        |b| b.iter(|| black_box(&pass).analyse()),
    );
    let mut restartable = pass.clone();
    if let agx_winsys::analysis::SideEffects::Declared(list) = &mut restartable.shader {
        list.pop();
    }
    assert!(restartable
        .clone()
        .partial_render_spills(false)
        .analyse()
        .restartable());
    let accesses = restartable.accesses();
    c.bench_function("render pass, pre-lowered accesses (analyse only)", |b| {
        b.iter(|| analyse(black_box(&accesses)))
    });
    let compute = (0..8u64).fold(ComputeCommand::new(), |c, i| {
        c.dispatch(
            Dispatch::new()
                .read(Region::va(0x1000_0000 + i * 0x10_0000, 0x10_0000))
                .overwrite(Region::va(0x1000_0000 + (i + 1) * 0x10_0000, 0x10_0000)),
        )
    });
    assert!(compute.analyse().restartable());
    c.bench_function("compute, 8 chained dispatches", |b| {
        b.iter(|| black_box(&compute).analyse())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
