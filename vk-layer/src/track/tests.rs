use agx_winsys::analysis::{AccessKind, Cause, LoadOp, StoreOp};

use super::*;

fn setup() -> Tracker {
    let mut t = Tracker::default();
    let o = &mut t.objects;
    o.images.insert(
        1,
        Some(Binding {
            memory: 100,
            offset: 0,
            size: 4096,
        }),
    );
    o.views.insert(10, 1);
    o.pipelines.insert(
        20,
        Pipeline {
            blend: vec![false],
            ..Pipeline::default()
        },
    );
    o.pipelines.insert(
        21,
        Pipeline {
            blend: vec![true],
            ..Pipeline::default()
        },
    );
    t
}

fn color(view: u64, load: LoadOp) -> pass::RenderingColor {
    (Some(view), None, load, StoreOp::Store, true)
}

fn pass(t: &mut Tracker, load: LoadOp, pipeline: u64) -> SubmissionVerdict {
    t.begin(5, false);
    t.begin_rendering(5, &[color(10, load)], &[], false, false);
    t.bind_pipeline(5, GRAPHICS, pipeline);
    t.draw(5, false, &[]);
    t.end_render_pass(5);
    t.analyse_submission(&[5])
}

#[test]
fn clear_and_draw_is_restartable_and_scrambles_the_attachment() {
    let mut t = setup();
    let v = pass(&mut t, LoadOp::Clear, 20);
    assert!(v.restartable(), "{:?}", v.reason_names());
    assert_eq!(v.scramble, vec![Region::new(Space::Memory(100), 0, 4096)]);
    assert_eq!(v.unresolved, None);
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
fn weakened_tracker_misses_the_store_but_not_the_scramble() {
    let mut t = setup();
    assert!(!pass(&mut t, LoadOp::Load, 20).restartable());
    t.weaken = Weaken::parse("attachment-writes").unwrap();
    let v = pass(&mut t, LoadOp::Load, 20);
    assert!(v.restartable(), "the weakened analysis sees a read only");
    assert_eq!(v.scramble, vec![Region::new(Space::Memory(100), 0, 4096)]);
    assert!(Weaken::parse("bogus").is_err());
}

#[test]
fn unknown_pipeline_and_untracked_command_buffers() {
    let mut t = setup();
    let v = pass(&mut t, LoadOp::Clear, 99);
    assert!(v.reason_names().contains(&"unknown_access"));
    t.begin(6, false);
    t.unknown(6, "vkCmdBeginTransformFeedbackEXT");
    let v = t.analyse_submission(&[6]);
    assert!(v.reason_names().contains(&"vkCmdBeginTransformFeedbackEXT"));
    let v = t.analyse_submission(&[7]);
    assert!(v.reason_names().contains(&"untracked_command_buffer"));
}

#[test]
fn copies_in_place_are_not_restartable() {
    let mut t = setup();
    t.objects.buffers.insert(
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
    t.begin(5, false);
    // fill then copy a sub-range over an overlapping one.
    let src = t.objects.buffer_region(2, 0, 128);
    let dst = t.objects.buffer_region(2, 64, 128);
    t.accesses(
        5,
        &[
            (AccessKind::Read, src, Cause::Transfer),
            (AccessKind::Write, dst, Cause::Transfer),
        ],
    );
    assert!(!t.analyse_submission(&[5]).restartable());
    t.begin(5, false);
    let r = t.objects.buffer_region(2, 0, WHOLE_SIZE);
    t.access(5, AccessKind::Write, r, Cause::Transfer);
    t.reach(5, Reach::Buffer(2));
    let v = t.analyse_submission(&[5]);
    assert!(v.restartable());
    assert_eq!(v.scramble, vec![Region::new(Space::Memory(100), 0, 256)]);
}

#[test]
fn swapchain_images_are_spaces_of_their_own() {
    let mut t = setup();
    t.objects.swap_images.insert(
        3,
        SwapImage {
            swapchain: 9,
            format: 44,
            width: 8,
            height: 4,
            layers: 1,
            transfer_dst: true,
            transfer_src: false,
            color_attachment: true,
        },
    );
    t.objects.swapchains.insert(9, vec![3]);
    t.objects.views.insert(11, 3);
    let v = {
        t.begin(5, false);
        t.begin_rendering(5, &[color(11, LoadOp::Clear)], &[], false, false);
        t.bind_pipeline(5, GRAPHICS, 20);
        t.draw(5, false, &[]);
        t.end_render_pass(5);
        t.analyse_submission(&[5])
    };
    assert!(v.restartable(), "{:?}", v.reason_names());
    assert_eq!(v.scramble, vec![Region::new(Space::Image(3), 0, 128)]);
    t.objects.remove_swapchain(9);
    assert!(t.objects.swap_images.is_empty());
}

#[test]
fn suspended_rendering_is_merged_across_command_buffers() {
    let mut t = setup();
    // cb 5: load, draw (no blend), suspend; cb 6: resume, blend, end: blend on loaded.
    t.begin(5, false);
    t.begin_rendering(5, &[color(10, LoadOp::Load)], &[], true, false);
    t.bind_pipeline(5, GRAPHICS, 20);
    t.draw(5, false, &[]);
    t.end_render_pass(5);
    t.begin(6, false);
    t.begin_rendering(6, &[color(10, LoadOp::Load)], &[], false, true);
    t.bind_pipeline(6, GRAPHICS, 21);
    t.draw(6, false, &[]);
    t.end_render_pass(6);
    let v = t.analyse_submission(&[5, 6]);
    assert!(
        v.reason_names().contains(&"blend_on_loaded"),
        "{:?}",
        v.reason_names()
    );
    // Cleared and resumed without blending: restartable.
    t.begin(5, false);
    t.begin_rendering(5, &[color(10, LoadOp::Clear)], &[], true, false);
    t.end_render_pass(5);
    t.begin(6, false);
    t.begin_rendering(6, &[color(10, LoadOp::Clear)], &[], false, true);
    t.bind_pipeline(6, GRAPHICS, 20);
    t.draw(6, false, &[]);
    t.end_render_pass(6);
    let v = t.analyse_submission(&[5, 6]);
    assert!(v.restartable(), "{:?}", v.reason_names());
    // Alone, each half is refused.
    assert!(t
        .analyse_submission(&[6])
        .reason_names()
        .contains(&"resume_without_suspend"));
    assert!(t
        .analyse_submission(&[5])
        .reason_names()
        .contains(&"suspended_pass_not_resumed"));
}

#[test]
fn push_descriptors_reach_their_storage() {
    let mut t = setup();
    t.objects.buffers.insert(
        2,
        Buffer {
            size: 256,
            binding: Some(Binding {
                memory: 200,
                offset: 512,
                size: 256,
            }),
        },
    );
    t.objects.pipelines.insert(
        30,
        Pipeline {
            fx: crate::spirv::ShaderEffects {
                stores: true,
                ..Default::default()
            },
            ..Pipeline::default()
        },
    );
    let mut d = DescSet::default();
    d.write(
        0,
        0,
        DescKind::Storage,
        &[DescRes::Buffer {
            buffer: 2,
            offset: 16,
            range: 16,
        }],
    );
    t.begin(5, false);
    t.bind_pipeline(5, COMPUTE, 30);
    t.push_descriptors(5, COMPUTE, 0, &d);
    t.dispatch(5, None);
    let v = t.analyse_submission(&[5]);
    assert!(v.restartable(), "{:?}", v.reason_names());
    // The analysis sees the descriptor's 16 bytes; the scramble the whole binding.
    assert_eq!(v.scramble, vec![Region::new(Space::Memory(200), 512, 256)]);
}

#[test]
fn event_waits_after_a_reset_are_not_replayable() {
    use EventOp::*;
    assert_eq!(record::events_replay_hazard(&[(Wait, 1)]), None);
    assert_eq!(
        record::events_replay_hazard(&[(Set, 1), (Wait, 1), (Reset, 1)]),
        None
    );
    assert_eq!(
        record::events_replay_hazard(&[(Wait, 1), (Reset, 1)]),
        Some("event_wait_after_reset")
    );
    assert_eq!(
        record::events_replay_hazard(&[(Reset, 1), (Wait, 1)]),
        Some("event_wait_after_reset")
    );
}

#[test]
fn repeated_draws_reuse_their_effects_until_a_binding_changes() {
    let mut t = setup();
    for (b, mem) in [(2, 200), (3, 300)] {
        t.objects.buffers.insert(
            b,
            Buffer {
                size: 64,
                binding: Some(Binding {
                    memory: mem,
                    offset: 0,
                    size: 64,
                }),
            },
        );
    }
    t.objects.pipelines.insert(
        30,
        Pipeline {
            fx: crate::spirv::ShaderEffects {
                stores: true,
                ..Default::default()
            },
            blend: vec![false],
            ..Pipeline::default()
        },
    );
    let storage = |buffer| {
        let mut d = DescSet::default();
        d.write(
            0,
            0,
            DescKind::Storage,
            &[DescRes::Buffer {
                buffer,
                offset: 0,
                range: WHOLE_SIZE,
            }],
        );
        d
    };
    t.begin(5, false);
    t.begin_rendering(5, &[color(10, LoadOp::Clear)], &[], false, false);
    t.bind_pipeline(5, GRAPHICS, 30);
    t.push_descriptors(5, GRAPHICS, 0, &storage(2));
    t.draw(5, false, &[]);
    t.draw(5, false, &[]);
    let once = t.cbs[&5].pass.as_ref().unwrap().shader.len();
    assert_eq!(once, 1, "a repeated draw adds nothing");
    t.push_descriptors(5, GRAPHICS, 0, &storage(3));
    t.draw(5, false, &[]);
    t.end_render_pass(5);
    let v = t.analyse_submission(&[5]);
    let mems: Vec<Space> = v.scramble.iter().map(|r| r.space).collect();
    assert!(
        mems.contains(&Space::Memory(200)) && mems.contains(&Space::Memory(300)),
        "both storage buffers: {mems:?}"
    );
}
