//! `streams=opaque`: commands carrying real AGX control streams (VDM/CDM words, as Mesa's
//! asahi and honeykrisp submit them) run as opaque jobs. Everything goes through the ioctls with
//! render and compute payloads shaped like the ones Gallium's `agx_batch_submit` builds.

mod common;

use agx_sim::gpu::exec::OP_COST_NS;
use agx_sim::gpu::opaque::{COMPUTE_NS, NS_PER_TILE, RENDER_BASE_NS};
use agx_sim::stream::StreamBuilder;
use agx_sim::{Injection, RecoveryPolicy, SimConfig, StreamMode};
use agx_uapi::asahi::*;
use agx_uapi::fault_ext as ext;
use common::*;

/// VA layout of the scene, clear of the `Env`'s own buffers (Mesa puts its heap above 4 GiB;
/// any mapped VA does here).
const VDM: u64 = 0x40_0000;
const CDM: u64 = 0x40_4000;
const COLOR: u64 = 0x1000_0000;
const COLOR_SIZE: u64 = 1920 * 1080 * 4;
const DEPTH: u64 = 0x2000_0000;
const RO_BUF: u64 = 0x3000_0000;

/// Words of a VDM control stream as Mesa encodes them (genxml `VDM Block Type` in bits 29-31):
/// a VDM state update with vertex shader words, a PPP state update, an index list, terminate.
const VDM_WORDS: [u32; 10] = [
    0x4000_0006, // VDM State Update: VS word 0 + 1 present
    0x0001_2340, // VS word 0
    0x0000_0015, // VS word 1
    0x0000_0315, // PPP State Update: pointer hi 0x15, 3 words
    0x0000_8000, // PPP pointer lo
    0x6000_0043, // Index List header
    0x0000_0003, // count
    0x0000_0001, // instances
    0xC000_0000, // Stream terminate
    0,
];

/// A CDM stream: a barrier, a direct launch, terminate (`CDM Block Type`).
const CDM_WORDS: [u32; 8] = [
    0x6000_0000, // Barrier
    0x0000_0012, // Launch word 0: uniforms, textures, direct mode
    0x0001_0040, // Launch word 1: pipeline
    0x0000_0040, // grid x
    0x0000_0001, // grid y
    0x0000_0001, // grid z
    0x4000_0000, // Stream terminate
    0,
];

fn cfg(policy: RecoveryPolicy) -> SimConfig {
    SimConfig {
        policy,
        streams: StreamMode::Opaque,
        hang_timeout_ns: 2_000_000,
        ..Default::default()
    }
}

struct Scene {
    e: Env,
    color: agx_sim::mem::Mapping,
    _keep: Vec<u32>,
}

/// A device (opaque streams unless `streams` says otherwise) with VDM and CDM streams, a
/// 1080p colour target and a depth buffer mapped read-write, and a read-only buffer.
fn scene_with(c: SimConfig) -> Scene {
    let e = Env::with(c);
    let (vdm, vm_map) = buffer(&e.f, e.vm, VDM, PAGE, RW);
    let (cdm, cm_map) = buffer(&e.f, e.vm, CDM, PAGE, RW);
    vm_map.write(0, bytemuck::cast_slice(&VDM_WORDS));
    cm_map.write(0, bytemuck::cast_slice(&CDM_WORDS));
    let color_len = COLOR_SIZE.next_multiple_of(PAGE);
    let (cb, color) = buffer(&e.f, e.vm, COLOR, color_len, RW);
    color.write(0, &[0x5a; 4096]);
    let (db, _) = buffer(&e.f, e.vm, DEPTH, PAGE * 4, RW);
    let (ro, _) = buffer(&e.f, e.vm, RO_BUF, PAGE, RO);
    Scene {
        e,
        color,
        _keep: vec![vdm, cdm, cb, db, ro],
    }
}

fn scene(policy: RecoveryPolicy) -> Scene {
    scene_with(cfg(policy))
}

const PAGE: u64 = agx_sim::PAGE_SIZE;

/// A 1080p render pass as Gallium fills `drm_asahi_cmd_render` (32x32 tiles, one sample).
fn render_1080p(stream: u64) -> drm_asahi_cmd_render {
    drm_asahi_cmd_render {
        flags: DRM_ASAHI_RENDER_PROCESS_EMPTY_TILES,
        vdm_ctrl_stream_base: stream,
        isp_scissor_base: DEPTH + 0x4000,
        isp_dbias_base: DEPTH + 0x8000,
        depth: drm_asahi_zls_buffer {
            base: DEPTH,
            stride: 0x4000,
            ..Default::default()
        },
        zls_ctrl: 0x0003_0000,
        ppp_ctrl: 0x0000_0140,
        width_px: 1920,
        height_px: 1080,
        layers: 1,
        utile_width_px: 32,
        utile_height_px: 32,
        samples: 1,
        sample_size_B: 8,
        isp_merge_upper_x: 0x3f80_0000,
        isp_merge_upper_y: 0x3f80_0000,
        ..Default::default()
    }
}

fn compute_dispatch(stream: u64) -> drm_asahi_cmd_compute {
    drm_asahi_cmd_compute {
        cdm_ctrl_stream_base: stream,
        // honeykrisp's linked streams claim 64 KiB past the base: only the base is checked.
        cdm_ctrl_stream_end: stream + 0x1_0000,
        ..Default::default()
    }
}

fn att(pointer: u64, size: u64) -> drm_asahi_attachment {
    drm_asahi_attachment {
        pointer,
        size,
        ..Default::default()
    }
}

fn info(flags: u32, slot: usize) -> ext::drm_asahi_ext_job_info {
    ext::drm_asahi_ext_job_info {
        flags,
        result_handle: 0,
        result_offset: slot as u64 * SLOT,
        ..Default::default()
    }
}

/// A cmdbuf being built the way Mesa lays one out: attachments, then the command.
#[derive(Default)]
struct Buf(Vec<u8>);

impl Buf {
    fn info(&mut self, e: &Env, flags: u32, slot: usize) -> &mut Self {
        let mut i = info(flags, slot);
        i.result_handle = e.res_bo;
        push(&mut self.0, ext::DRM_ASAHI_CMD_EXT_JOB_INFO, NONE, NONE, &i);
        self
    }
    fn attachments(&mut self, cmd_type: u16, list: &[drm_asahi_attachment]) -> &mut Self {
        push_bytes(
            &mut self.0,
            cmd_type,
            std::mem::size_of_val(list) as u16,
            NONE,
            NONE,
            bytemuck::cast_slice(list),
        );
        self
    }
    fn render(&mut self, r: &drm_asahi_cmd_render, vdm: u16, cdm: u16) -> &mut Self {
        push(&mut self.0, DRM_ASAHI_CMD_RENDER, vdm, cdm, r);
        self
    }
    fn compute(&mut self, c: &drm_asahi_cmd_compute, vdm: u16, cdm: u16) -> &mut Self {
        push(&mut self.0, DRM_ASAHI_CMD_COMPUTE, vdm, cdm, c);
        self
    }
}

fn run(e: &Env, q: u32, b: &Buf) -> (i32, u32) {
    let done = submit_buf(&e.f, q, &b.0, &[]).unwrap();
    (wait_status(&e.f, done), done)
}

fn ran_for(r: &ext::drm_asahi_ext_result) -> u64 {
    r.gpu_end_ns - r.gpu_start_ns
}

const RENDER_1080P_NS: u64 = RENDER_BASE_NS + 60 * 34 * NS_PER_TILE;

#[test]
fn opaque_render_and_compute_complete_cost_time_and_leave_memory() {
    let s = scene(RecoveryPolicy::Replay);
    let e = &s.e;
    let q = e.queue();
    let mut b = Buf::default();
    b.info(e, ext::DRM_ASAHI_EXT_JOB_TIMESTAMPS, 0)
        .compute(&compute_dispatch(CDM), 0, 0)
        .attachments(
            DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS,
            &[att(COLOR, COLOR_SIZE), att(DEPTH, PAGE * 2)],
        )
        .info(e, ext::DRM_ASAHI_EXT_JOB_TIMESTAMPS | RESTART, 1)
        .render(&render_1080p(VDM), NONE, 1);
    let before = read_bytes(&s.color, 0, 8192);
    let (st, _) = run(e, q, &b);
    assert_eq!(st, 1, "fence signalled without error");
    let (c, r) = (e.result(0), e.result(1));
    for rec in [c, r] {
        assert_eq!(rec.status, ext::DRM_ASAHI_EXT_STATUS_COMPLETE, "{rec:?}");
        assert_eq!(rec.guilt, ext::DRM_ASAHI_EXT_GUILT_NONE);
    }
    assert_eq!(ran_for(&c), OP_COST_NS + COMPUTE_NS);
    assert_eq!(
        ran_for(&r),
        OP_COST_NS + RENDER_1080P_NS,
        "60x34 tiles of 32 px"
    );
    // The render waited for the compute command (its cdm barrier).
    assert!(r.gpu_start_ns >= c.gpu_end_ns, "{c:?} {r:?}");
    assert_eq!(
        read_bytes(&s.color, 0, 8192),
        before,
        "opaque jobs write no memory"
    );
    assert_eq!(e.dev.stats().opaque, 2);
    assert!(e
        .dev
        .trace_events()
        .iter()
        .any(|ev| ev.detail.contains("opaque")));
}

#[test]
fn render_cost_follows_size_layers_and_samples() {
    let s = scene(RecoveryPolicy::Replay);
    let e = &s.e;
    let q = e.queue();
    let mut r = render_1080p(VDM);
    r.width_px = 100; // 7 x 3 tiles of 16 px
    r.height_px = 40;
    r.utile_width_px = 16;
    r.utile_height_px = 16;
    r.layers = 3;
    r.samples = 4;
    let mut b = Buf::default();
    b.info(e, ext::DRM_ASAHI_EXT_JOB_TIMESTAMPS, 0)
        .render(&r, NONE, NONE);
    assert_eq!(run(e, q, &b).0, 1);
    let want = RENDER_BASE_NS + 7 * 3 * 3 * 4 * NS_PER_TILE;
    assert_eq!(ran_for(&e.result(0)), OP_COST_NS + want);
}

#[test]
fn the_simulators_own_streams_still_execute_on_an_opaque_device() {
    let s = scene(RecoveryPolicy::Replay);
    let e = &s.e;
    let stream = e.stream(StreamBuilder::new().fill(COLOR, 64, 0x1122_3344));
    wait_ok(&e.f, e.submit(e.queue(), &[Cmd::render(stream)]).unwrap());
    assert_eq!(read_bytes(&s.color, 0, 64), pattern_bytes(0x1122_3344, 64));
    assert_eq!(e.dev.stats().opaque, 0);
}

#[test]
fn without_the_option_an_agx_stream_is_a_corrupt_stream() {
    let s = scene_with(SimConfig {
        streams: StreamMode::Sim,
        ..cfg(RecoveryPolicy::Replay)
    });
    let e = &s.e;
    let mut b = Buf::default();
    b.info(e, 0, 0).render(&render_1080p(VDM), NONE, NONE);
    assert_eq!(run(e, e.queue(), &b).0, -libc::EIO);
    let r = e.result(0);
    assert_eq!(r.status, ext::DRM_ASAHI_EXT_STATUS_FAULT);
    assert_eq!(r.fault.fault_type, ext::DRM_ASAHI_EXT_FAULT_INVALID);
    assert_eq!(
        (r.fault.unit, r.fault.address),
        (ext::DRM_ASAHI_EXT_UNIT_VDM, VDM)
    );
}

/// Runs one command and returns its record (after checking the guilty fence error).
fn fault_of(e: &Env, b: &mut Buf) -> ext::drm_asahi_ext_fault {
    let (st, _) = run(e, e.queue(), b);
    let r = e.result(0);
    assert_eq!(st, -libc::EIO, "{r:?}");
    assert_eq!(r.status, ext::DRM_ASAHI_EXT_STATUS_FAULT);
    assert_eq!(r.guilt, ext::DRM_ASAHI_EXT_GUILT_GUILTY);
    r.fault
}

#[test]
fn unmapped_control_streams_fault_vdm_and_cdm() {
    let s = scene(RecoveryPolicy::Replay);
    let e = &s.e;
    let f = fault_of(
        e,
        Buf::default()
            .info(e, 0, 0)
            .render(&render_1080p(UNMAPPED), NONE, NONE),
    );
    assert_eq!(f.fault_type, ext::DRM_ASAHI_EXT_FAULT_UNMAPPED);
    assert_eq!((f.unit, f.address), (ext::DRM_ASAHI_EXT_UNIT_VDM, UNMAPPED));
    assert_eq!(f.flags & ext::DRM_ASAHI_EXT_FAULT_WRITE, 0);
    let s = scene(RecoveryPolicy::Replay);
    let e = &s.e;
    let f = fault_of(
        e,
        Buf::default()
            .info(e, 0, 0)
            .compute(&compute_dispatch(UNMAPPED + 0x40), NONE, NONE),
    );
    assert_eq!(f.fault_type, ext::DRM_ASAHI_EXT_FAULT_UNMAPPED);
    assert_eq!(
        (f.unit, f.address),
        (ext::DRM_ASAHI_EXT_UNIT_CDM, UNMAPPED + 0x40)
    );
}

#[test]
fn attachments_must_be_mapped_writable_with_the_writing_unit_blamed() {
    // A colour target whose last page is missing: the fault names that page.
    let s = scene(RecoveryPolicy::Replay);
    let e = &s.e;
    let tail = COLOR + COLOR_SIZE.next_multiple_of(PAGE);
    let f = fault_of(
        e,
        Buf::default()
            .attachments(
                DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS,
                &[att(COLOR, COLOR_SIZE + PAGE)],
            )
            .info(e, 0, 0)
            .render(&render_1080p(VDM), NONE, NONE),
    );
    assert_eq!(f.fault_type, ext::DRM_ASAHI_EXT_FAULT_UNMAPPED);
    assert_eq!(
        (f.unit, f.address),
        (ext::DRM_ASAHI_EXT_UNIT_FRAGMENT, tail)
    );
    assert_ne!(f.flags & ext::DRM_ASAHI_EXT_FAULT_WRITE, 0);

    // A vertex-stage attachment bound read-only.
    let s = scene(RecoveryPolicy::Replay);
    let e = &s.e;
    let f = fault_of(
        e,
        Buf::default()
            .attachments(DRM_ASAHI_SET_VERTEX_ATTACHMENTS, &[att(RO_BUF + 0x100, 64)])
            .info(e, 0, 0)
            .render(&render_1080p(VDM), NONE, NONE),
    );
    assert_eq!(f.fault_type, ext::DRM_ASAHI_EXT_FAULT_PERMISSION);
    assert_eq!(
        (f.unit, f.address),
        (ext::DRM_ASAHI_EXT_UNIT_VERTEX, RO_BUF + 0x100)
    );

    // A compute attachment nothing maps.
    let s = scene(RecoveryPolicy::Replay);
    let e = &s.e;
    let f = fault_of(
        e,
        Buf::default()
            .attachments(DRM_ASAHI_SET_COMPUTE_ATTACHMENTS, &[att(UNMAPPED, 16)])
            .info(e, 0, 0)
            .compute(&compute_dispatch(CDM), NONE, NONE),
    );
    assert_eq!(
        (f.unit, f.address),
        (ext::DRM_ASAHI_EXT_UNIT_COMPUTE, UNMAPPED)
    );
    // Attachments set for render commands are not the compute command's.
    let s = scene(RecoveryPolicy::Replay);
    let e = &s.e;
    let mut b = Buf::default();
    b.attachments(DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS, &[att(UNMAPPED, 16)])
        .info(e, 0, 0)
        .compute(&compute_dispatch(CDM), NONE, NONE);
    assert_eq!(run(e, e.queue(), &b).0, 1);
}

#[test]
fn soft_faults_drop_unmapped_attachment_writes_but_not_permission_faults() {
    let soft = SimConfig {
        soft_faults: true,
        ..cfg(RecoveryPolicy::Replay)
    };
    let s = scene_with(soft.clone());
    let e = &s.e;
    let mut b = Buf::default();
    b.attachments(DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS, &[att(UNMAPPED, PAGE)])
        .info(e, 0, 0)
        .render(&render_1080p(VDM), NONE, NONE);
    assert_eq!(run(e, e.queue(), &b).0, 1);
    let s = scene_with(soft);
    let e = &s.e;
    let f = fault_of(
        e,
        Buf::default()
            .attachments(DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS, &[att(RO_BUF, 64)])
            .info(e, 0, 0)
            .render(&render_1080p(VDM), NONE, NONE),
    );
    assert_eq!(f.fault_type, ext::DRM_ASAHI_EXT_FAULT_PERMISSION);
}

#[test]
fn injected_fault_and_hang_stop_an_opaque_job() {
    let s = scene(RecoveryPolicy::Replay);
    let e = &s.e;
    let q = e.queue();
    e.dev
        .inject(&e.f, q, Injection::Fault { after_ns: 100_000 })
        .unwrap();
    let mut b = Buf::default();
    b.info(e, ext::DRM_ASAHI_EXT_JOB_TIMESTAMPS, 0)
        .render(&render_1080p(VDM), NONE, NONE);
    assert_eq!(run(e, q, &b).0, -libc::EIO);
    let r = e.result(0);
    assert_eq!(r.fault.fault_type, ext::DRM_ASAHI_EXT_FAULT_INJECTED);
    assert_eq!(r.fault.unit, ext::DRM_ASAHI_EXT_UNIT_FRAGMENT);
    assert_eq!(ran_for(&r), 100_000, "stopped mid-job");

    let q = e.queue();
    e.dev
        .inject(&e.f, q, Injection::Hang { after_ns: 5_000 })
        .unwrap();
    let mut b = Buf::default();
    b.info(e, ext::DRM_ASAHI_EXT_JOB_TIMESTAMPS, 0)
        .compute(&compute_dispatch(CDM), NONE, NONE);
    assert_eq!(run(e, q, &b).0, -libc::ETIMEDOUT);
    let r = e.result(0);
    assert_eq!(r.status, ext::DRM_ASAHI_EXT_STATUS_TIMEOUT);
    assert_eq!(r.guilt, ext::DRM_ASAHI_EXT_GUILT_GUILTY);
    assert_eq!(
        ran_for(&r),
        e.dev.config().hang_timeout_ns,
        "the watchdog ended it"
    );
}

/// An opaque render in flight on one queue while a command of another queue faults.
fn victim_of_a_neighbour(
    policy: RecoveryPolicy,
    restartable: bool,
) -> (i32, ext::drm_asahi_ext_result) {
    let s = scene(policy);
    let e = &s.e;
    let (qv, qg) = (e.queue(), e.queue());
    e.dev.hold();
    let mut b = Buf::default();
    let flags = ext::DRM_ASAHI_EXT_JOB_TIMESTAMPS | if restartable { RESTART } else { 0 };
    b.info(e, flags, 0).render(&render_1080p(VDM), NONE, NONE);
    let victim = submit_buf(&e.f, qv, &b.0, &[]).unwrap();
    e.dev.advance(50_000);
    let mut g = Buf::default();
    g.info(e, 0, 1)
        .compute(&compute_dispatch(UNMAPPED), NONE, NONE);
    let guilty = submit_buf(&e.f, qg, &g.0, &[]).unwrap();
    e.dev.release();
    assert_eq!(wait_status(&e.f, guilty), -libc::EIO);
    assert_eq!(e.result(1).guilt, ext::DRM_ASAHI_EXT_GUILT_GUILTY);
    (wait_status(&e.f, victim), e.result(0))
}

#[test]
fn recovery_replays_or_kills_an_opaque_victim() {
    let (st, r) = victim_of_a_neighbour(RecoveryPolicy::Replay, true);
    assert_eq!(st, 1);
    assert_eq!(r.status, ext::DRM_ASAHI_EXT_STATUS_COMPLETE);
    assert_eq!(r.replay_count, 1);
    assert_eq!(
        ran_for(&r),
        OP_COST_NS + RENDER_1080P_NS,
        "a replay runs it whole again"
    );

    let (st, r) = victim_of_a_neighbour(RecoveryPolicy::Replay, false);
    assert_eq!(st, -libc::ECANCELED);
    assert_eq!(r.status, ext::DRM_ASAHI_EXT_STATUS_KILLED);
    assert_eq!(r.guilt, ext::DRM_ASAHI_EXT_GUILT_INNOCENT);

    let (st, r) = victim_of_a_neighbour(RecoveryPolicy::KillInflight, true);
    assert_eq!(st, -libc::ECANCELED);
    assert_eq!(r.status, ext::DRM_ASAHI_EXT_STATUS_KILLED);
    assert_eq!(r.guilt, ext::DRM_ASAHI_EXT_GUILT_INNOCENT);
    assert_eq!(
        r.fault.unit,
        ext::DRM_ASAHI_EXT_UNIT_CDM,
        "the culprit's fault"
    );
}

#[test]
fn hundreds_of_opaque_submits_all_signal() {
    let s = scene(RecoveryPolicy::KillInflight);
    let e = &s.e;
    let q = e.queue();
    let mut fences = Vec::new();
    for i in 0..300 {
        let mut b = Buf::default();
        if i % 3 == 0 {
            b.compute(&compute_dispatch(CDM), NONE, NONE);
        } else {
            b.attachments(
                DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS,
                &[att(COLOR, COLOR_SIZE)],
            )
            .render(&render_1080p(VDM), NONE, NONE);
        }
        fences.push(submit_buf(&e.f, q, &b.0, &[]).unwrap());
    }
    for f in fences {
        wait_ok(&e.f, f);
    }
    let st = e.dev.stats();
    assert_eq!((st.opaque, st.completed, st.faults), (300, 300, 0));
}

/// `zls_ctrl` bits (genxml `ZLS Control`).
const Z_LOAD: u64 = 1 << 15;
const Z_STORE: u64 = 1 << 19;
const S_STORE: u64 = 1 << 18;
const Z_STORE_COMPRESS: u64 = 1 << 6;

#[test]
fn depth_and_stencil_loads_and_stores_reach_their_buffers() {
    // A depth buffer loaded from and stored to, mapped: the pass completes.
    let s = scene(RecoveryPolicy::Replay);
    let e = &s.e;
    let mut r = render_1080p(VDM);
    r.zls_ctrl |= Z_LOAD | Z_STORE;
    let mut b = Buf::default();
    b.info(e, 0, 0).render(&r, NONE, NONE);
    assert_eq!(run(e, e.queue(), &b).0, 1);

    // The same pass after the depth buffer went away (a stale buffer): the load reads an
    // unmapped page first.
    let s = scene(RecoveryPolicy::Replay);
    let e = &s.e;
    let mut r = render_1080p(VDM);
    r.depth.base = UNMAPPED;
    r.zls_ctrl |= Z_LOAD | Z_STORE;
    let f = fault_of(e, Buf::default().info(e, 0, 0).render(&r, NONE, NONE));
    assert_eq!(f.fault_type, ext::DRM_ASAHI_EXT_FAULT_UNMAPPED);
    assert_eq!(
        (f.unit, f.address),
        (ext::DRM_ASAHI_EXT_UNIT_FRAGMENT, UNMAPPED)
    );
    assert_eq!(f.flags & ext::DRM_ASAHI_EXT_FAULT_WRITE, 0, "a read");

    // A stencil store into read-only memory: a write, refused.
    let s = scene(RecoveryPolicy::Replay);
    let e = &s.e;
    let mut r = render_1080p(VDM);
    r.stencil.base = RO_BUF;
    r.zls_ctrl |= S_STORE;
    let f = fault_of(e, Buf::default().info(e, 0, 0).render(&r, NONE, NONE));
    assert_eq!(f.fault_type, ext::DRM_ASAHI_EXT_FAULT_PERMISSION);
    assert_eq!(
        (f.unit, f.address),
        (ext::DRM_ASAHI_EXT_UNIT_FRAGMENT, RO_BUF)
    );
    assert_ne!(f.flags & ext::DRM_ASAHI_EXT_FAULT_WRITE, 0);

    // A compressed store also writes the metadata.
    let s = scene(RecoveryPolicy::Replay);
    let e = &s.e;
    let mut r = render_1080p(VDM);
    r.depth.comp_base = UNMAPPED + PAGE;
    r.zls_ctrl |= Z_STORE | Z_STORE_COMPRESS;
    let f = fault_of(e, Buf::default().info(e, 0, 0).render(&r, NONE, NONE));
    assert_eq!(f.address, UNMAPPED + PAGE);

    // No load or store: the buffers are not touched, whatever they point at.
    let s = scene(RecoveryPolicy::Replay);
    let e = &s.e;
    let mut r = render_1080p(VDM);
    r.depth.base = UNMAPPED;
    r.stencil.base = UNMAPPED;
    let mut b = Buf::default();
    b.info(e, 0, 0).render(&r, NONE, NONE);
    assert_eq!(run(e, e.queue(), &b).0, 1);
}
