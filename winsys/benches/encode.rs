//! Cost of encoding command buffers into a reused cmdbuf `Vec`: a typical render pass (8
//! fragment attachments, depth/stencil, job info) and a 16-command mixed buffer.
//! Run with `cargo bench -p agx-winsys --bench encode`.

use std::hint::black_box;

use agx_winsys::analysis::{
    ColorAttachment, ComputeCommand, DepthStencilAttachment, Dispatch, LoadOp, Region, RenderPass,
    StoreOp,
};
use agx_winsys::cmd::{Attachment, CommandBuffer, ComputeDesc, JobInfoSlot, RenderDesc, ZlsBuffer};
use criterion::{criterion_group, criterion_main, Criterion};

const RT: u64 = 1920 * 1080 * 4;

fn render_pass(k: u64) -> RenderDesc {
    let base = 0x1_0000_0000 + k * (1 << 30);
    let rt = |i: u64| base + i * (16 << 20);
    let mut access = RenderPass::new();
    for i in 0..8 {
        access = access.color(ColorAttachment::new(
            Region::va(rt(i), RT),
            LoadOp::Clear,
            StoreOp::Store,
        ));
    }
    let access = access.depth(DepthStencilAttachment::new(
        Region::va(rt(8), RT),
        LoadOp::Clear,
        StoreOp::DontCare,
    ));
    RenderDesc {
        width_px: 1920,
        height_px: 1080,
        samples: 1,
        utile_width_px: 32,
        utile_height_px: 32,
        sample_size_bytes: 32,
        vdm_ctrl_stream_base: base + (512 << 20),
        depth: ZlsBuffer {
            base: rt(8),
            stride: RT as u32,
            ..ZlsBuffer::default()
        },
        fragment_attachments: (0..8).map(|i| Attachment::new(rt(i), RT)).collect(),
        access: Some(access),
        ..RenderDesc::default()
    }
}

fn compute(k: u64) -> ComputeDesc {
    let base = 0x8_0000_0000 + k * (1 << 24);
    ComputeDesc {
        cdm_ctrl_stream_base: base,
        cdm_ctrl_stream_end: base + 4096,
        attachments: vec![Attachment::new(base + (1 << 20), 1 << 20)],
        access: Some(
            ComputeCommand::new().dispatch(
                Dispatch::new()
                    .read(Region::va(base + (1 << 20), 1 << 20))
                    .write(Region::va(base + (2 << 20), 1 << 20)),
            ),
        ),
        ..ComputeDesc::default()
    }
}

fn slot(i: usize) -> Option<JobInfoSlot> {
    Some(JobInfoSlot {
        handle: 1,
        offset: 48 * i as u64,
    })
}

fn bench(c: &mut Criterion) {
    let mut one = CommandBuffer::new(16);
    one.render(render_pass(0)).unwrap();
    assert!(one.commands()[0].verdict().restartable());
    let mut out = Vec::with_capacity(4096);
    c.bench_function("encode render pass (8 attachments, job info)", |b| {
        b.iter(|| {
            one.encode(0..1, &slot, &mut out);
            black_box(out.len())
        })
    });

    let mut mixed = CommandBuffer::new(16);
    for k in 0..16 {
        if k % 4 == 3 {
            mixed.compute(compute(k)).unwrap();
        } else {
            mixed.render(render_pass(k)).unwrap();
        }
    }
    c.bench_function(
        "encode 16 commands (12 render, 4 compute, job infos)",
        |b| {
            b.iter(|| {
                mixed.encode(0..16, &slot, &mut out);
                black_box(out.len())
            })
        },
    );

    c.bench_function("build render pass (validate + analysis)", |b| {
        let desc = render_pass(0);
        let mut cb = CommandBuffer::new(16);
        b.iter(|| {
            cb.clear();
            cb.render(black_box(desc.clone())).unwrap();
            black_box(cb.len())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
