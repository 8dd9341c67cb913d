//! Tests of the command-buffer builder, encoder and decoder.

use agx_uapi::asahi::*;
use agx_uapi::fault_ext as ext;
use proptest::prelude::*;

use super::decode::{decode, decode_commands, AttachmentTarget, DecodeError, Payload};
use super::*;
use crate::analysis::{
    ColorAttachment, ComputeCommand, DepthStencilAttachment, Dispatch, LoadOp, Region, RenderPass,
    StoreOp, Va,
};

const NONE: u16 = DRM_ASAHI_BARRIER_NONE;

fn no_info(_: usize) -> Option<JobInfoSlot> {
    None
}

fn slot_for(i: usize) -> Option<JobInfoSlot> {
    Some(JobInfoSlot {
        handle: 7,
        offset: 48 * i as u64,
    })
}

/// A render pass with every field set to a distinct value.
fn full_render() -> RenderDesc {
    RenderDesc {
        flags: RenderFlags::PROCESS_EMPTY_TILES | RenderFlags::DBIAS_IS_INT,
        width_px: 1920,
        height_px: 1080,
        layers: 3,
        samples: 4,
        utile_width_px: 16,
        utile_height_px: 32,
        sample_size_bytes: 12,
        vdm_ctrl_stream_base: 0x1_0000_1000,
        vertex_helper: HelperProgram {
            binary: 0x101,
            cfg: 0x102,
            data: 0x1_0000_0103,
        },
        fragment_helper: HelperProgram {
            binary: 0x201,
            cfg: 0x202,
            data: 0x1_0000_0203,
        },
        isp_scissor_base: 0x2_0000_0000,
        isp_dbias_base: 0x2_0000_1000,
        isp_oclqry_base: 0x2_0000_2000,
        depth: ZlsBuffer {
            base: 0x3_0000_0000,
            comp_base: 0x3_0001_0000,
            stride: 0x301,
            comp_stride: 0x302,
        },
        stencil: ZlsBuffer {
            base: 0x4_0000_0000,
            comp_base: 0x4_0001_0000,
            stride: 0x401,
            comp_stride: 0x402,
        },
        zls_ctrl: 0x5555_0000_0000_0001,
        ppp_multisamplectl: 0x6666_0000_0000_0002,
        sampler_heap: 0x7_0000_0000,
        sampler_count: 77,
        ppp_ctrl: 0x8888_0003,
        isp_zls_pixels: 0x0437_077f,
        isp_merge_upper_x: 0x9999_0004,
        isp_merge_upper_y: 0xaaaa_0005,
        bg: BgEot {
            usc: 0xb001,
            rsrc_spec: 0xb002,
        },
        eot: BgEot {
            usc: 0xc001,
            rsrc_spec: 0xc002,
        },
        partial_bg: BgEot {
            usc: 0xd001,
            rsrc_spec: 0xd002,
        },
        partial_eot: BgEot {
            usc: 0xe001,
            rsrc_spec: 0xe002,
        },
        isp_bgobjdepth: 0x3f80_0000,
        isp_bgobjvals: 0x0000_1234,
        ts_vertex: Timestamps {
            start: Timestamp::new(11, 0x10),
            end: Timestamp::new(12, 0x18),
        },
        ts_fragment: Timestamps {
            start: Timestamp::new(13, 0x20),
            end: Timestamp::new(14, 0x28),
        },
        vertex_attachments: vec![Attachment::new(0xa_0000_0000, 0x1000)],
        fragment_attachments: (0..8)
            .map(|i| Attachment::new(0xb_0000_0000 + i * 0x10_0000, 0x8_0000 + i))
            .collect(),
        access: None,
    }
}

fn full_compute() -> ComputeDesc {
    ComputeDesc {
        cdm_ctrl_stream_base: 0x1_2345_0000,
        cdm_ctrl_stream_end: 0x1_2345_0400,
        sampler_heap: 0x6_0000_0000,
        sampler_count: 0x1_0001,
        helper: HelperProgram {
            binary: 0x301,
            cfg: 0x302,
            data: 0x3_0000_0303,
        },
        timestamps: Timestamps {
            start: Timestamp::new(21, 0x30),
            end: Timestamp::new(22, 0x38),
        },
        attachments: vec![
            Attachment::new(0xc_0000_0000, 0x4000),
            Attachment::new(0xc_0001_0000, 0x100),
        ],
        access: None,
    }
}

fn render(w: u16) -> RenderDesc {
    RenderDesc {
        width_px: w,
        height_px: 64,
        ..RenderDesc::default()
    }
}

fn compute(base: u64) -> ComputeDesc {
    ComputeDesc {
        cdm_ctrl_stream_base: base,
        cdm_ctrl_stream_end: base + 0x100,
        ..ComputeDesc::default()
    }
}

fn encoded(cb: &CommandBuffer, range: core::ops::Range<usize>) -> Vec<u8> {
    let mut out = Vec::new();
    cb.encode(range, &no_info, &mut out);
    out
}

fn barriers(buf: &[u8]) -> Vec<(u16, u16)> {
    decode_commands(buf)
        .unwrap()
        .iter()
        .map(|c| (c.header.vdm_barrier, c.header.cdm_barrier))
        .collect()
}

fn strip_access(kind: &CommandKind) -> CommandKind {
    match kind.clone() {
        CommandKind::Render(mut r) => {
            r.access = None;
            CommandKind::Render(r)
        }
        CommandKind::Compute(mut c) => {
            c.access = None;
            CommandKind::Compute(c)
        }
    }
}

/// The simulated kernel's cmdbuf parser accepts the buffer.
fn sim_accepts(buf: &[u8], max_attachments: u32) -> Vec<agx_sim::cmdbuf::HwCmd> {
    agx_sim::cmdbuf::parse(buf, 1024, max_attachments, true).expect("sim rejects the cmdbuf")
}

#[test]
fn render_fields_round_trip() {
    let d = full_render();
    let mut cb = CommandBuffer::new(16);
    cb.render(d.clone()).unwrap();
    let buf = encoded(&cb, 0..1);
    let cmds = decode_commands(&buf).unwrap();
    assert_eq!(cmds.len(), 1);
    let c = &cmds[0];
    assert_eq!(c.header.cmd_type, DRM_ASAHI_CMD_RENDER);
    assert_eq!(usize::from(c.header.size), 240);
    assert_eq!((c.header.vdm_barrier, c.header.cdm_barrier), (0, 0));
    let r = c.render().unwrap();
    assert_eq!(
        r.flags,
        DRM_ASAHI_RENDER_PROCESS_EMPTY_TILES | DRM_ASAHI_RENDER_DBIAS_IS_INT
    );
    assert_eq!(r.width_px, d.width_px);
    assert_eq!(r.height_px, d.height_px);
    assert_eq!(r.layers, d.layers);
    assert_eq!(r.samples, d.samples);
    assert_eq!(r.utile_width_px, d.utile_width_px);
    assert_eq!(r.utile_height_px, d.utile_height_px);
    assert_eq!(r.sample_size_B, d.sample_size_bytes);
    assert_eq!(r.vdm_ctrl_stream_base, d.vdm_ctrl_stream_base);
    assert_eq!(
        (
            r.vertex_helper.binary,
            r.vertex_helper.cfg,
            r.vertex_helper.data
        ),
        (0x101, 0x102, 0x1_0000_0103)
    );
    assert_eq!(
        (
            r.fragment_helper.binary,
            r.fragment_helper.cfg,
            r.fragment_helper.data
        ),
        (0x201, 0x202, 0x1_0000_0203)
    );
    assert_eq!(r.isp_scissor_base, d.isp_scissor_base);
    assert_eq!(r.isp_dbias_base, d.isp_dbias_base);
    assert_eq!(r.isp_oclqry_base, d.isp_oclqry_base);
    assert_eq!(
        (
            r.depth.base,
            r.depth.comp_base,
            r.depth.stride,
            r.depth.comp_stride
        ),
        (0x3_0000_0000, 0x3_0001_0000, 0x301, 0x302)
    );
    assert_eq!(
        (
            r.stencil.base,
            r.stencil.comp_base,
            r.stencil.stride,
            r.stencil.comp_stride
        ),
        (0x4_0000_0000, 0x4_0001_0000, 0x401, 0x402)
    );
    assert_eq!(r.zls_ctrl, d.zls_ctrl);
    assert_eq!(r.ppp_multisamplectl, d.ppp_multisamplectl);
    assert_eq!(r.sampler_heap, d.sampler_heap);
    assert_eq!(r.sampler_count, d.sampler_count);
    assert_eq!(r.ppp_ctrl, d.ppp_ctrl);
    assert_eq!(r.isp_zls_pixels, d.isp_zls_pixels);
    assert_eq!(r.isp_merge_upper_x, d.isp_merge_upper_x);
    assert_eq!(r.isp_merge_upper_y, d.isp_merge_upper_y);
    assert_eq!((r.bg.usc, r.bg.rsrc_spec), (0xb001, 0xb002));
    assert_eq!((r.eot.usc, r.eot.rsrc_spec), (0xc001, 0xc002));
    assert_eq!((r.partial_bg.usc, r.partial_bg.rsrc_spec), (0xd001, 0xd002));
    assert_eq!(
        (r.partial_eot.usc, r.partial_eot.rsrc_spec),
        (0xe001, 0xe002)
    );
    assert_eq!(r.isp_bgobjdepth, d.isp_bgobjdepth);
    assert_eq!(r.isp_bgobjvals, d.isp_bgobjvals);
    assert_eq!((r.ts_vtx.start.handle, r.ts_vtx.start.offset), (11, 0x10));
    assert_eq!((r.ts_vtx.end.handle, r.ts_vtx.end.offset), (12, 0x18));
    assert_eq!((r.ts_frag.start.handle, r.ts_frag.start.offset), (13, 0x20));
    assert_eq!((r.ts_frag.end.handle, r.ts_frag.end.offset), (14, 0x28));
    match &c.hardware {
        decode::Hardware::Render {
            vertex_attachments,
            fragment_attachments,
            ..
        } => {
            assert_eq!(vertex_attachments.len(), 1);
            assert_eq!(vertex_attachments[0].pointer, 0xa_0000_0000);
            assert_eq!(vertex_attachments[0].size, 0x1000);
            assert_eq!(fragment_attachments.len(), 8);
            for (i, a) in fragment_attachments.iter().enumerate() {
                assert_eq!(a.pointer, 0xb_0000_0000 + i as u64 * 0x10_0000);
                assert_eq!(a.size, 0x8_0000 + i as u64);
                assert_eq!((a.pad, a.flags), (0, 0));
            }
        }
        decode::Hardware::Compute { .. } => panic!("not a render"),
    }
    // And the whole descriptor lifts back.
    assert_eq!(c.to_kind(), CommandKind::Render(d));
    sim_accepts(&buf, 16);
}

#[test]
fn compute_fields_round_trip() {
    let d = full_compute();
    let mut cb = CommandBuffer::new(16);
    cb.compute(d.clone()).unwrap();
    let buf = encoded(&cb, 0..1);
    let cmds = decode_commands(&buf).unwrap();
    let c = &cmds[0];
    assert_eq!(c.header.cmd_type, DRM_ASAHI_CMD_COMPUTE);
    assert_eq!(usize::from(c.header.size), 64);
    let k = c.compute().unwrap();
    assert_eq!(k.flags, 0);
    assert_eq!(k.sampler_count, 0x1_0001);
    assert_eq!(k.cdm_ctrl_stream_base, 0x1_2345_0000);
    assert_eq!(k.cdm_ctrl_stream_end, 0x1_2345_0400);
    assert_eq!(k.sampler_heap, 0x6_0000_0000);
    assert_eq!(
        (k.helper.binary, k.helper.cfg, k.helper.data),
        (0x301, 0x302, 0x3_0000_0303)
    );
    assert_eq!((k.ts.start.handle, k.ts.start.offset), (21, 0x30));
    assert_eq!((k.ts.end.handle, k.ts.end.offset), (22, 0x38));
    match &c.hardware {
        decode::Hardware::Compute { attachments, .. } => {
            assert_eq!(attachments.len(), 2);
            assert_eq!(
                (attachments[1].pointer, attachments[1].size),
                (0xc_0001_0000, 0x100)
            );
        }
        decode::Hardware::Render { .. } => panic!("not a compute"),
    }
    assert_eq!(c.to_kind(), CommandKind::Compute(d));
    sim_accepts(&buf, 16);
}

#[test]
fn item_layout() {
    let mut cb = CommandBuffer::new(16);
    let mut r = full_render();
    r.access = Some(RenderPass::new());
    cb.render(r).unwrap();
    cb.compute(full_compute()).unwrap();
    let mut buf = Vec::new();
    cb.encode(0..2, &slot_for, &mut buf);
    let items = decode(&buf).unwrap();
    let kinds: Vec<u16> = items.iter().map(|i| i.header.cmd_type).collect();
    assert_eq!(
        kinds,
        [
            DRM_ASAHI_SET_VERTEX_ATTACHMENTS,
            DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS,
            ext::DRM_ASAHI_CMD_EXT_JOB_INFO,
            DRM_ASAHI_CMD_RENDER,
            DRM_ASAHI_SET_COMPUTE_ATTACHMENTS,
            ext::DRM_ASAHI_CMD_EXT_JOB_INFO,
            DRM_ASAHI_CMD_COMPUTE,
        ]
    );
    let sizes: Vec<u16> = items.iter().map(|i| i.header.size).collect();
    assert_eq!(sizes, [24, 8 * 24, 24, 240, 2 * 24, 24, 64]);
    for i in &items {
        assert_eq!(i.offset % 8, 0);
        if !i.is_hardware() {
            assert_eq!((i.header.vdm_barrier, i.header.cdm_barrier), (NONE, NONE));
        }
    }
    let total: usize = items.iter().map(|i| 8 + usize::from(i.header.size)).sum();
    assert_eq!(total, buf.len());
    assert!(matches!(
        items[1].payload,
        Payload::Attachments(AttachmentTarget::Fragment, _)
    ));
    let hw = sim_accepts(&buf, 16);
    assert_eq!(hw.len(), 2);
    assert_eq!(hw[0].attachments, 9);
    assert_eq!(hw[1].attachments, 2);
}

#[test]
fn default_ordering_single_submit() {
    let mut cb = CommandBuffer::new(4);
    cb.render(render(1)).unwrap();
    cb.compute(compute(0x1000)).unwrap();
    cb.compute(compute(0x2000)).unwrap();
    cb.render(render(2)).unwrap();
    cb.compute(compute(0x3000)).unwrap();
    assert_eq!(cb.command(3).unwrap().deps(), Deps::both(Dep::Through(2)));
    assert_eq!(
        cb.command(0).unwrap().deps(),
        Deps::both(Dep::PreviousSubmits)
    );
    let buf = encoded(&cb, 0..5);
    assert_eq!(barriers(&buf), [(0, 0), (1, 0), (1, 1), (1, 2), (2, 2)]);
    let hw = sim_accepts(&buf, 4);
    assert_eq!(hw[4].vdm_barrier, Some(2));
}

/// The example of the brief: 5 commands split 2 + 2 + 1.
#[test]
fn barrier_remapping_in_chunks() {
    let mut cb = CommandBuffer::new(4);
    cb.render(render(1)).unwrap(); // 0
    cb.render(render(2)).unwrap(); // 1: default = Through(0)
    cb.compute_with_deps(
        compute(0x1000),
        Deps {
            render: Dep::Through(0),
            compute: Dep::None,
        },
    )
    .unwrap(); // 2
    cb.render_with_deps(
        render(3),
        Deps {
            render: Dep::None,
            compute: Dep::Through(2),
        },
    )
    .unwrap(); // 3
    cb.compute_with_deps(
        compute(0x2000),
        Deps {
            render: Dep::Through(3),
            compute: Dep::Through(2),
        },
    )
    .unwrap(); // 4

    // One submit.
    let whole = encoded(&cb, 0..5);
    assert_eq!(
        barriers(&whole),
        [(0, 0), (1, 0), (1, NONE), (NONE, 1), (3, 1)]
    );
    sim_accepts(&whole, 4);

    // Split into submits of at most 2 commands.
    let chunks: Vec<_> = cb.chunks(2).collect();
    assert_eq!(chunks, [0..2, 2..4, 4..5]);
    let per_chunk: Vec<Vec<(u16, u16)>> = chunks
        .iter()
        .map(|r| {
            let buf = encoded(&cb, r.clone());
            sim_accepts(&buf, 4);
            barriers(&buf)
        })
        .collect();
    assert_eq!(
        per_chunk,
        [
            vec![(0, 0), (1, 0)],
            // Command 2's render dep (command 0) was submitted earlier: 0.
            vec![(0, NONE), (NONE, 1)],
            // Both deps are in earlier submits.
            vec![(0, 0)],
        ]
    );
    // Default ordering at a chunk start: everything earlier was submitted before.
    let buf = encoded(&cb, 1..3);
    assert_eq!(barriers(&buf), [(0, 0), (0, NONE)]);
}

#[test]
fn through_a_command_of_the_other_subqueue() {
    let mut cb = CommandBuffer::new(4);
    cb.render(render(1)).unwrap(); // 0
    cb.compute(compute(0x1000)).unwrap(); // 1
    cb.compute(compute(0x2000)).unwrap(); // 2
                                          // Render subqueue through command 2 (a compute): the last render at or before it is 0.
    cb.render_with_deps(render(2), Deps::both(Dep::Through(2)))
        .unwrap(); // 3
    assert_eq!(barriers(&encoded(&cb, 0..4))[3], (1, 2));
    // In a submit starting at 1, no render command lies in 1..=2: previous submits.
    assert_eq!(barriers(&encoded(&cb, 1..4))[2], (0, 2));
}

#[test]
fn dependencies_must_point_backwards() {
    let mut cb = CommandBuffer::new(4);
    assert_eq!(
        cb.render_with_deps(render(1), Deps::both(Dep::Through(0))),
        Err(BuildError::ForwardDependency {
            command: 0,
            target: 0
        })
    );
    cb.render(render(1)).unwrap();
    assert_eq!(
        cb.compute_with_deps(
            compute(0),
            Deps {
                render: Dep::Through(0),
                compute: Dep::Through(5)
            }
        ),
        Err(BuildError::ForwardDependency {
            command: 1,
            target: 5
        })
    );
    assert_eq!(cb.len(), 1);
    cb.compute_with_deps(compute(0), Deps::NONE).unwrap();
    assert_eq!(barriers(&encoded(&cb, 0..2))[1], (NONE, NONE));
}

#[test]
fn too_many_attachments_is_an_error() {
    let list = |n: u64| (0..n).map(|i| Attachment::new(i << 20, 4096)).collect();
    let mut cb = CommandBuffer::new(4);
    let mut r = render(1);
    r.fragment_attachments = list(4);
    cb.render(r.clone()).unwrap();
    r.fragment_attachments = list(5);
    assert_eq!(
        cb.render(r.clone()),
        Err(BuildError::TooManyAttachments { count: 5, max: 4 })
    );
    r.fragment_attachments.clear();
    r.vertex_attachments = list(6);
    assert_eq!(
        cb.render(r),
        Err(BuildError::TooManyAttachments { count: 6, max: 4 })
    );
    let mut c = compute(0);
    c.attachments = list(5);
    assert_eq!(
        cb.compute(c),
        Err(BuildError::TooManyAttachments { count: 5, max: 4 })
    );
    assert_eq!(
        cb.len(),
        1,
        "failed adds leave the command buffer as it was"
    );
    // A device limit beyond what a u16 size can carry is capped.
    assert_eq!(
        CommandBuffer::new(u32::MAX).max_attachments(),
        MAX_ENCODABLE_ATTACHMENTS
    );
    assert_eq!(MAX_ENCODABLE_ATTACHMENTS, 2730);
}

#[test]
fn attachment_commands_only_on_change() {
    let a = vec![Attachment::new(0x1000, 0x100)];
    let b = vec![Attachment::new(0x1000, 0x100), Attachment::new(0x9000, 8)];
    let with = |frag: &Vec<Attachment>| RenderDesc {
        fragment_attachments: frag.clone(),
        ..render(8)
    };
    let mut cb = CommandBuffer::new(8);
    cb.render(with(&a)).unwrap(); // 0: set fragment a
    cb.render(with(&a)).unwrap(); // 1: nothing
    cb.compute(compute(0)).unwrap(); // 2: nothing (compute list empty, as at start)
    cb.render(with(&b)).unwrap(); // 3: set fragment b
    cb.compute(ComputeDesc {
        attachments: a.clone(),
        ..compute(0)
    })
    .unwrap(); // 4: set compute a
    cb.render(with(&b)).unwrap(); // 5: nothing
    cb.render(with(&vec![])).unwrap(); // 6: set fragment [] (size 0)
    cb.render(with(&a)).unwrap(); // 7: set fragment a
    cb.render(with(&vec![Attachment::new(0x1000, 0x101)]))
        .unwrap(); // 8: same length, new
    let types = |buf: &[u8]| -> Vec<(u16, u16)> {
        decode(buf)
            .unwrap()
            .iter()
            .filter(|i| !i.is_hardware())
            .map(|i| (i.header.cmd_type, i.header.size))
            .collect()
    };
    let buf = encoded(&cb, 0..9);
    assert_eq!(
        types(&buf),
        [
            (DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS, 24),
            (DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS, 48),
            (DRM_ASAHI_SET_COMPUTE_ATTACHMENTS, 24),
            (DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS, 0),
            (DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS, 24),
            (DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS, 24),
        ]
    );
    let hw = sim_accepts(&buf, 8);
    let counts: Vec<usize> = hw.iter().map(|c| c.attachments).collect();
    assert_eq!(counts, [1, 1, 0, 2, 1, 2, 0, 1, 1]);
    let lists: Vec<Vec<Attachment>> = decode_commands(&buf)
        .unwrap()
        .iter()
        .map(|c| match c.to_kind() {
            CommandKind::Render(r) => r.fragment_attachments,
            CommandKind::Compute(c) => c.attachments,
        })
        .collect();
    assert_eq!(lists[8], [Attachment::new(0x1000, 0x101)]);
    // A new submit starts with empty lists: command 5 sets b again.
    let buf = encoded(&cb, 5..7);
    assert_eq!(
        types(&buf),
        [
            (DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS, 48),
            (DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS, 0),
        ]
    );
    // And a submit starting with an empty list emits nothing.
    assert_eq!(types(&encoded(&cb, 6..7)), []);
}

fn rt(i: u64) -> Region<Va> {
    Region::va(0x10_0000_0000 + i * 0x100_0000, 0x80_0000)
}

#[test]
fn job_info_from_verdicts() {
    let mut cb = CommandBuffer::new(8);
    // 0: clear then store: restartable.
    cb.render(RenderDesc {
        access: Some(RenderPass::new().color(ColorAttachment::new(
            rt(0),
            LoadOp::Clear,
            StoreOp::Store,
        ))),
        fragment_attachments: vec![Attachment::new(rt(0).start, rt(0).len)],
        ..render(64)
    })
    .unwrap();
    // 1: load, blend, store: not restartable.
    cb.render(RenderDesc {
        access: Some(
            RenderPass::new()
                .color(ColorAttachment::new(rt(1), LoadOp::Load, StoreOp::Store).blended()),
        ),
        ..render(64)
    })
    .unwrap();
    // 2: no description.
    cb.render(render(64)).unwrap();
    // 3: compute without declared ranges.
    cb.compute(compute(0x1000)).unwrap();
    // 4: compute with disjoint declared ranges: restartable.
    cb.compute(ComputeDesc {
        access: Some(ComputeCommand::new().dispatch(Dispatch::new().read(rt(2)).write(rt(3)))),
        ..compute(0x2000)
    })
    .unwrap();
    // 5: compute with no job info slot.
    cb.compute(compute(0x3000)).unwrap();

    let v: Vec<Verdict> = cb.commands().iter().map(Command::verdict).collect();
    assert!(v[0].restartable());
    assert!(v[1].reasons.contains(Reasons::BLEND_ON_LOADED));
    assert_eq!(v[2].reasons, Reasons::UNKNOWN_ACCESS);
    assert_eq!(v[3].reasons, Reasons::COMPUTE_UNDECLARED);
    assert!(v[4].restartable());
    let reloads: Vec<bool> = cb
        .commands()
        .iter()
        .map(Command::reloads_attachment)
        .collect();
    assert_eq!(reloads, [false, true, true, false, false, false]);
    let zs: Vec<bool> = cb
        .commands()
        .iter()
        .map(Command::reloads_depth_stencil)
        .collect();
    assert_eq!(zs, [false, false, true, false, false, false]);
    let mut zcb = CommandBuffer::new(1);
    zcb.render(RenderDesc {
        access: Some(
            RenderPass::new().depth(
                DepthStencilAttachment::new(rt(5), LoadOp::Load, StoreOp::Store).read_only(),
            ),
        ),
        ..render(64)
    })
    .unwrap();
    let z = &zcb.commands()[0];
    assert!(z.reloads_depth_stencil() && z.reloads_attachment() && z.verdict().restartable());

    let slot = |i: usize| {
        (i != 5).then(|| JobInfoSlot {
            handle: 3,
            offset: 64 * i as u64,
        })
    };
    for (record, flag) in [
        (ResultRecord::Fault, 0),
        (ResultRecord::StatusOnly, ext::DRM_ASAHI_EXT_JOB_STATUS_ONLY),
        (ResultRecord::Timestamps, ext::DRM_ASAHI_EXT_JOB_TIMESTAMPS),
    ] {
        cb.set_result_record(record);
        let mut buf = Vec::new();
        cb.encode(0..6, &slot, &mut buf);
        // Each job info is immediately followed by its hardware command.
        let items = decode(&buf).unwrap();
        for (k, it) in items.iter().enumerate() {
            if let Payload::JobInfo(_) = it.payload {
                assert!(items[k + 1].is_hardware());
            }
        }
        let cmds = decode_commands(&buf).unwrap();
        for (i, c) in cmds.iter().enumerate() {
            if i == 5 {
                assert!(c.job_info.is_none());
                continue;
            }
            let info = c.job_info.expect("job info");
            let restart = if v[i].restartable() {
                ext::DRM_ASAHI_EXT_JOB_RESTARTABLE
            } else {
                0
            };
            assert_eq!(info.flags, restart | flag, "command {i}");
            assert_eq!(info.reasons, v[i].reasons.bits());
            assert_eq!(info.result_handle, 3);
            assert_eq!(info.result_offset, 64 * i as u64);
            assert_eq!(info.pad, 0);
        }
        assert_eq!(
            cmds[1].job_info.unwrap().reasons & ext::DRM_ASAHI_EXT_REASON_BLEND_ON_LOADED,
            ext::DRM_ASAHI_EXT_REASON_BLEND_ON_LOADED
        );
        let hw = sim_accepts(&buf, 8);
        assert!(hw[0].job_info.is_some() && hw[5].job_info.is_none());
    }
}

#[test]
fn descriptors_are_validated() {
    let mut cb = CommandBuffer::new(4);
    let bad = [
        RenderDesc {
            samples: 3,
            ..render(8)
        },
        RenderDesc {
            width_px: 0,
            ..render(8)
        },
        RenderDesc {
            height_px: 0,
            ..render(8)
        },
        RenderDesc {
            layers: 0,
            ..render(8)
        },
        RenderDesc {
            flags: RenderFlags::from_bits_retain(1 << 9),
            ..render(8)
        },
    ];
    for r in bad {
        assert!(matches!(
            cb.render(r),
            Err(BuildError::InvalidDescriptor(_))
        ));
    }
    assert!(matches!(
        cb.compute(ComputeDesc {
            cdm_ctrl_stream_base: 0x2000,
            cdm_ctrl_stream_end: 0x1000,
            ..ComputeDesc::default()
        }),
        Err(BuildError::InvalidDescriptor(_))
    ));
    assert!(cb.is_empty());
    assert_eq!(cb.check_not_empty(), Err(BuildError::EmptyCommandBuffer));
    for samples in [1, 2, 4] {
        cb.render(RenderDesc {
            samples,
            ..render(8)
        })
        .unwrap();
    }
    assert!(cb.check_not_empty().is_ok());
}

#[test]
fn encode_reuses_the_buffer() {
    let mut cb = CommandBuffer::new(16);
    cb.render(full_render()).unwrap();
    cb.compute(full_compute()).unwrap();
    let mut out = Vec::with_capacity(4096);
    let ptr = out.as_ptr();
    cb.encode(0..2, &slot_for, &mut out);
    let first = out.clone();
    cb.encode(0..2, &slot_for, &mut out);
    assert_eq!(out, first, "cleared, not appended");
    assert_eq!(out.as_ptr(), ptr);
    assert_eq!(out.capacity(), 4096);
    cb.encode(1..1, &slot_for, &mut out);
    assert!(out.is_empty());
    assert_eq!(cb.hw_command_count(), 2);
    assert_eq!(cb.hw_commands_in(1..2), 1);
    assert_eq!(cb.hw_commands_in(1..9), 1);
}

#[test]
fn decode_errors() {
    let mut cb = CommandBuffer::new(16);
    cb.render(full_render()).unwrap();
    let mut buf = Vec::new();
    cb.encode(0..1, &slot_for, &mut buf);
    // Vertex attachments (8 + 24), fragment (8 + 192), job info (8 + 24), render (8 + 240).
    assert_eq!(buf.len(), 512);
    assert_eq!(
        decode(&buf[..4]),
        Err(DecodeError::TruncatedHeader {
            offset: 0,
            available: 4
        })
    );
    assert_eq!(
        decode(&buf[..20]),
        Err(DecodeError::TruncatedPayload {
            offset: 0,
            size: 24,
            available: 12
        })
    );
    assert_eq!(
        decode(&buf[..buf.len() - 1]),
        Err(DecodeError::TruncatedPayload {
            offset: 264,
            size: 240,
            available: 239
        })
    );
    // Dropping the render command leaves a dangling job info.
    assert_eq!(
        decode_commands(&buf[..264]),
        Err(DecodeError::DanglingJobInfo { offset: 232 })
    );
    // Two job infos in a row.
    let mut two = buf[..264].to_vec();
    two.extend_from_slice(&buf[232..]);
    assert_eq!(
        decode_commands(&two),
        Err(DecodeError::DanglingJobInfo { offset: 232 })
    );
    // Unknown type.
    let mut bad = buf.clone();
    bad[0] = 0x42;
    assert_eq!(
        decode(&bad),
        Err(DecodeError::UnknownCommandType {
            offset: 0,
            cmd_type: 0x42
        })
    );
    // Attachment size not a multiple of 24.
    let hdr = drm_asahi_cmd_header {
        cmd_type: DRM_ASAHI_SET_COMPUTE_ATTACHMENTS,
        size: 16,
        vdm_barrier: NONE,
        cdm_barrier: NONE,
    };
    let mut bad = bytemuck::bytes_of(&hdr).to_vec();
    bad.extend_from_slice(&[0; 16]);
    assert_eq!(
        decode(&bad),
        Err(DecodeError::BadAttachmentSize {
            offset: 0,
            size: 16
        })
    );
    // A short payload is zero-extended; a long one must have a zero tail.
    let hdr = drm_asahi_cmd_header {
        cmd_type: DRM_ASAHI_CMD_COMPUTE,
        size: 16,
        vdm_barrier: 0,
        cdm_barrier: 0,
    };
    let mut short = bytemuck::bytes_of(&hdr).to_vec();
    short.extend_from_slice(&[0, 0, 0, 0, 5, 0, 0, 0, 0x00, 0x10, 0, 0, 0, 0, 0, 0]);
    let c = decode_commands(&short).unwrap();
    let k = c[0].compute().unwrap();
    assert_eq!(
        (
            k.sampler_count,
            k.cdm_ctrl_stream_base,
            k.cdm_ctrl_stream_end
        ),
        (5, 0x1000, 0)
    );
    let hdr = drm_asahi_cmd_header {
        cmd_type: ext::DRM_ASAHI_CMD_EXT_JOB_INFO,
        size: 32,
        vdm_barrier: NONE,
        cdm_barrier: NONE,
    };
    let mut long = bytemuck::bytes_of(&hdr).to_vec();
    long.extend_from_slice(&[0; 31]);
    long.push(1);
    assert_eq!(decode(&long), Err(DecodeError::NonZeroTail { offset: 0 }));
    // The iterator stops after an error.
    let mut it = decode::Decoder::new(&buf[..20]);
    assert!(it.next().unwrap().is_err());
    assert!(it.next().is_none());
}

// ---------------------------------------------------------------------------------------------
// Property: decode(encode(x)) == x, for whole command buffers and for every split.

fn attachment_pool() -> [Vec<Attachment>; 6] {
    [
        vec![],
        vec![Attachment::new(0x1000, 0x10)],
        vec![Attachment::new(0x1000, 0x11)],
        vec![Attachment::new(0x1000, 0x10), Attachment::new(0x2000, 0x20)],
        vec![Attachment::new(0x3000, 0x30); 3],
        (0..16).map(|i| Attachment::new(i << 12, i)).collect(),
    ]
}

fn render_access(k: u8) -> Option<RenderPass<Va>> {
    match k % 4 {
        0 => None,
        1 => Some(RenderPass::new().color(ColorAttachment::new(
            rt(0),
            LoadOp::Clear,
            StoreOp::Store,
        ))),
        2 => Some(
            RenderPass::new()
                .color(ColorAttachment::new(rt(0), LoadOp::Load, StoreOp::Store).blended()),
        ),
        _ => Some(RenderPass::new().occlusion_query(Region::va(0x9000, 8), false)),
    }
}

fn compute_access(k: u8) -> Option<ComputeCommand<Va>> {
    match k % 3 {
        0 => None,
        1 => Some(ComputeCommand::new().dispatch(Dispatch::new().read(rt(1)).write(rt(2)))),
        _ => Some(ComputeCommand::new().dispatch(Dispatch::new().atomic(rt(1)))),
    }
}

#[derive(Clone, Debug)]
struct GenCmd {
    render: bool,
    bytes: Vec<u8>,
    att: [u8; 3],
    access: u8,
    deps: Option<[(u8, usize); 2]>,
}

fn gen_cmd() -> impl Strategy<Value = GenCmd> {
    (
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 240),
        any::<[u8; 3]>(),
        any::<u8>(),
        prop::option::of(any::<[(u8, usize); 2]>()),
    )
        .prop_map(|(render, bytes, att, access, deps)| GenCmd {
            render,
            bytes,
            att,
            access,
            deps,
        })
}

fn build(gen: &[GenCmd]) -> CommandBuffer {
    let pool = attachment_pool();
    let pick = |k: u8| pool[usize::from(k) % pool.len()].clone();
    let mut cb = CommandBuffer::new(16);
    for (i, g) in gen.iter().enumerate() {
        let dep = |(kind, j): (u8, usize)| match kind % 3 {
            0 => Dep::None,
            1 => Dep::PreviousSubmits,
            _ if i == 0 => Dep::PreviousSubmits,
            _ => Dep::Through(j % i),
        };
        let deps = g.deps.map(|[r, c]| Deps {
            render: dep(r),
            compute: dep(c),
        });
        let idx = if g.render {
            let mut raw: drm_asahi_cmd_render = bytemuck::pod_read_unaligned(&g.bytes);
            raw.flags &= RenderFlags::all().bits();
            raw.samples = [1, 2, 4][usize::from(raw.samples % 3)];
            raw.width_px = raw.width_px.max(1);
            raw.height_px = raw.height_px.max(1);
            raw.layers = raw.layers.max(1);
            let mut d = RenderDesc::from_raw(&raw);
            d.vertex_attachments = pick(g.att[0]);
            d.fragment_attachments = pick(g.att[1]);
            d.access = render_access(g.access);
            match deps {
                Some(deps) => cb.render_with_deps(d, deps),
                None => cb.render(d),
            }
        } else {
            let mut raw: drm_asahi_cmd_compute = bytemuck::pod_read_unaligned(&g.bytes[..64]);
            raw.flags = 0;
            if raw.cdm_ctrl_stream_end < raw.cdm_ctrl_stream_base {
                core::mem::swap(&mut raw.cdm_ctrl_stream_base, &mut raw.cdm_ctrl_stream_end);
            }
            let mut d = ComputeDesc::from_raw(&raw);
            d.attachments = pick(g.att[2]);
            d.access = compute_access(g.access);
            match deps {
                Some(deps) => cb.compute_with_deps(d, deps),
                None => cb.compute(d),
            }
        };
        assert_eq!(idx, Ok(i));
    }
    cb
}

/// Reference barrier: counts by brute force.
fn reference_barrier(cb: &CommandBuffer, start: usize, q: Subqueue, dep: Dep) -> u16 {
    match dep {
        Dep::None => NONE,
        Dep::PreviousSubmits => 0,
        Dep::Through(j) => (start..=j)
            .filter(|&k| cb.commands()[k].subqueue() == q)
            .count() as u16,
    }
}

/// A dependency in canonical form: `Through` names a command of the subqueue itself.
fn canonical(cb: &CommandBuffer, q: Subqueue, dep: Dep) -> Dep {
    match dep {
        Dep::Through(j) => (0..=j)
            .rev()
            .find(|&k| cb.commands()[k].subqueue() == q)
            .map_or(Dep::PreviousSubmits, Dep::Through),
        d => d,
    }
}

/// Dependency from a barrier of a submit holding the whole command buffer.
fn lift_barrier(cb: &CommandBuffer, q: Subqueue, raw: u16) -> Dep {
    match raw {
        NONE => Dep::None,
        0 => Dep::PreviousSubmits,
        n => {
            let k = cb
                .commands()
                .iter()
                .enumerate()
                .filter(|(_, c)| c.subqueue() == q)
                .nth(usize::from(n) - 1)
                .unwrap()
                .0;
            Dep::Through(k)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decode_encode_is_identity(
        gen in prop::collection::vec(gen_cmd(), 1..14),
        max_per_submit in 1usize..6,
        info_mask in any::<u16>(),
    ) {
        let cb = build(&gen);
        let slot = |i: usize| (info_mask >> (i % 16) & 1 == 1).then(|| JobInfoSlot {
            handle: 1 + i as u32,
            offset: 16 * i as u64,
        });
        let mut buf = Vec::new();

        // Whole command buffer in one submit: everything lifts back, deps included.
        cb.encode(0..cb.len(), &slot, &mut buf);
        let cmds = decode_commands(&buf).unwrap();
        prop_assert_eq!(cmds.len(), cb.len());
        for (i, (c, d)) in cmds.iter().zip(cb.commands()).enumerate() {
            prop_assert_eq!(c.to_kind(), strip_access(d.kind()));
            for (q, raw) in [
                (Subqueue::Render, c.header.vdm_barrier),
                (Subqueue::Compute, c.header.cdm_barrier),
            ] {
                prop_assert_eq!(
                    lift_barrier(&cb, q, raw),
                    canonical(&cb, q, d.deps().on(q)),
                    "command {} subqueue {:?}", i, q
                );
            }
        }
        sim_accepts(&buf, 16);

        // Split into submits.
        for range in cb.chunks(max_per_submit) {
            cb.encode(range.clone(), &slot, &mut buf);
            let items = decode(&buf).unwrap();
            let cmds = decode_commands(&buf).unwrap();
            prop_assert_eq!(cmds.len(), range.len());
            // Attachment commands exactly when a list changes (state empty at submit start).
            let mut state: [&[Attachment]; 3] = [&[], &[], &[]];
            let mut expected_sets = 0;
            for (k, i) in range.clone().enumerate() {
                let d = &cb.commands()[i];
                let c = &cmds[k];
                prop_assert_eq!(c.to_kind(), strip_access(d.kind()));
                for (slot_no, want) in d.attachments().into_iter().enumerate() {
                    if let Some(want) = want {
                        if want != state[slot_no] {
                            expected_sets += 1;
                            state[slot_no] = want;
                        }
                    }
                }
                prop_assert_eq!(
                    c.header.vdm_barrier,
                    reference_barrier(&cb, range.start, Subqueue::Render, d.deps().render)
                );
                prop_assert_eq!(
                    c.header.cdm_barrier,
                    reference_barrier(&cb, range.start, Subqueue::Compute, d.deps().compute)
                );
                match (c.job_info, slot(i)) {
                    (None, None) => {}
                    (Some(info), Some(s)) => {
                        prop_assert_eq!(info.flags, d.verdict().job_info_flags());
                        prop_assert_eq!(info.reasons, d.verdict().reasons.bits());
                        prop_assert_eq!(info.result_handle, s.handle);
                        prop_assert_eq!(info.result_offset, s.offset);
                    }
                    (a, b) => prop_assert!(false, "job info {:?} for slot {:?}", a, b),
                }
            }
            let sets = items
                .iter()
                .filter(|i| matches!(i.payload, Payload::Attachments(..)))
                .count();
            prop_assert_eq!(sets, expected_sets);
            let hw = sim_accepts(&buf, 16);
            prop_assert_eq!(hw.len(), range.len());
        }
    }
}
