//! The recovery model of the simulated device (docs/uapi-fault-extension.md sections 3-6):
//! result records, fence errors, bans, replay of innocent work and its memory, the three
//! policies, fault injection, teardown with work pending, firmware crashes, and the trace.

mod common;

use std::os::fd::AsFd;

use agx_sim::stream::{RawOp, StreamBuilder};
use agx_sim::{Errno, Injection, RecoveryPolicy, SimConfig, PAGE_SIZE};
use agx_uapi::fault_ext as ext;
use common::*;

const RO_VA: u64 = 0x300_0000;

fn cfg(policy: RecoveryPolicy) -> SimConfig {
    SimConfig {
        policy,
        hang_timeout_ns: 2_000_000,
        ..Default::default()
    }
}

fn compute_or_render(render: bool, s: u64) -> Cmd {
    if render {
        Cmd::render(s)
    } else {
        Cmd::compute(s)
    }
}

/// Runs one command with a record in slot 0 and returns (fence status, record).
fn run_one(e: &Env, c: Cmd, flags: u32) -> (i32, ext::drm_asahi_ext_result) {
    let (h, off) = e.slot(0);
    e.res.write(0, &[0xEE; 64]);
    let q = e.queue();
    let done = submit(&e.f, q, &[c.info(flags, h, off)], &[]).unwrap();
    let st = wait_status(&e.f, done);
    assert_eq!(e.dev.pending_commands(), 0);
    (st, e.result(0))
}

fn assert_guilty_fault(
    rec: &ext::drm_asahi_ext_result,
    fault_type: u32,
    unit: u32,
    write: bool,
    address: u64,
) {
    assert_eq!(rec.status, ext::DRM_ASAHI_EXT_STATUS_FAULT, "{rec:?}");
    assert_eq!(rec.guilt, ext::DRM_ASAHI_EXT_GUILT_GUILTY);
    assert_eq!(rec.replay_count, 0);
    assert_eq!(rec.pad, 0);
    assert_eq!(rec.fault.fault_type, fault_type, "{rec:?}");
    assert_eq!(rec.fault.unit, unit, "{rec:?}");
    assert_eq!(
        rec.fault.flags,
        if write {
            ext::DRM_ASAHI_EXT_FAULT_WRITE
        } else {
            0
        },
        "{rec:?}"
    );
    assert_eq!(rec.fault.address, address, "{rec:?}");
}

// ---------------------------------------------------------------------------------------------
// Guilty faults and their records

#[test]
fn guilty_unmapped_read_and_write() {
    let e = Env::new();
    for render in [true, false] {
        let unit = if render {
            ext::DRM_ASAHI_EXT_UNIT_FRAGMENT
        } else {
            ext::DRM_ASAHI_EXT_UNIT_COMPUTE
        };
        let s = e.stream(
            StreamBuilder::new()
                .fill(DATA, 64, 1)
                .load(UNMAPPED + 0x40, 16),
        );
        let (st, rec) = run_one(&e, compute_or_render(render, s), 0);
        assert_eq!(st, -libc::EIO);
        assert_guilty_fault(
            &rec,
            ext::DRM_ASAHI_EXT_FAULT_UNMAPPED,
            unit,
            false,
            UNMAPPED + 0x40,
        );
        assert_eq!(rec.seqno, 1);
        // A fill running off the end of a mapping: faults at the first unmapped page, writes
        // nothing there, and the part before it stays written.
        let end = DATA + DATA_SIZE;
        let s = e.stream(StreamBuilder::new().fill(end - 64, 128, 0x0102_0304));
        let (st, rec) = run_one(&e, compute_or_render(render, s), 0);
        assert_eq!(st, -libc::EIO);
        assert_guilty_fault(&rec, ext::DRM_ASAHI_EXT_FAULT_UNMAPPED, unit, true, end);
        assert_eq!(
            e.data_bytes(DATA_SIZE - 64, 64),
            pattern_bytes(0x0102_0304, 64)
        );
        e.data.write(DATA_SIZE as usize - 64, &[0; 64]);
        // A store to an unmapped address.
        let s = e.stream(StreamBuilder::new().store(UNMAPPED + 8, 1));
        let (st, rec) = run_one(&e, compute_or_render(render, s), 0);
        assert_eq!(st, -libc::EIO);
        assert_guilty_fault(
            &rec,
            ext::DRM_ASAHI_EXT_FAULT_UNMAPPED,
            unit,
            true,
            UNMAPPED + 8,
        );
    }
}

#[test]
fn guilty_write_to_read_only_binding() {
    let e = Env::new();
    let bo = gem(&e.f, PAGE_SIZE);
    let m = map(&e.f, bo, PAGE_SIZE as usize);
    bind(&e.f, e.vm, bo, RO_VA, PAGE_SIZE, RO).unwrap();
    for render in [true, false] {
        let unit = if render {
            ext::DRM_ASAHI_EXT_UNIT_FRAGMENT
        } else {
            ext::DRM_ASAHI_EXT_UNIT_COMPUTE
        };
        // Reading it is fine; writing faults PERMISSION.
        let s = e.stream(
            StreamBuilder::new()
                .copy(DATA, RO_VA, 64)
                .fill(RO_VA + 0x100, 32, 7),
        );
        let (st, rec) = run_one(&e, compute_or_render(render, s), 0);
        assert_eq!(st, -libc::EIO);
        assert_guilty_fault(
            &rec,
            ext::DRM_ASAHI_EXT_FAULT_PERMISSION,
            unit,
            true,
            RO_VA + 0x100,
        );
        assert_eq!(read_bytes(&m, 0x100, 32), [0; 32], "nothing written");
    }
    // A write-only binding: a read faults UNMAPPED (no read permission), a write works.
    let wo = gem(&e.f, PAGE_SIZE);
    bind(
        &e.f,
        e.vm,
        wo,
        RO_VA + PAGE_SIZE,
        PAGE_SIZE,
        agx_uapi::asahi::DRM_ASAHI_BIND_WRITE,
    )
    .unwrap();
    let s = e.stream(
        StreamBuilder::new()
            .store(RO_VA + PAGE_SIZE, 5)
            .load(RO_VA + PAGE_SIZE, 8),
    );
    let (st, rec) = run_one(&e, Cmd::compute(s), 0);
    assert_eq!(st, -libc::EIO);
    assert_guilty_fault(
        &rec,
        ext::DRM_ASAHI_EXT_FAULT_UNMAPPED,
        ext::DRM_ASAHI_EXT_UNIT_COMPUTE,
        false,
        RO_VA + PAGE_SIZE,
    );
}

#[test]
fn guilty_stream_faults() {
    let e = Env::new();
    // An unmapped control stream: VDM / CDM.
    let (st, rec) = run_one(&e, Cmd::render(UNMAPPED), 0);
    assert_eq!(st, -libc::EIO);
    assert_guilty_fault(
        &rec,
        ext::DRM_ASAHI_EXT_FAULT_UNMAPPED,
        ext::DRM_ASAHI_EXT_UNIT_VDM,
        false,
        UNMAPPED,
    );
    let (st, rec) = run_one(&e, Cmd::compute(UNMAPPED + 0x100), 0);
    assert_eq!(st, -libc::EIO);
    assert_guilty_fault(
        &rec,
        ext::DRM_ASAHI_EXT_FAULT_UNMAPPED,
        ext::DRM_ASAHI_EXT_UNIT_CDM,
        false,
        UNMAPPED + 0x100,
    );
    // A stream that jumps off the mapping.
    let s = e.stream(StreamBuilder::new().store(DATA, 1).jump(UNMAPPED + 0x200));
    let (st, rec) = run_one(&e, Cmd::compute(s), 0);
    assert_eq!(st, -libc::EIO);
    assert_guilty_fault(
        &rec,
        ext::DRM_ASAHI_EXT_FAULT_UNMAPPED,
        ext::DRM_ASAHI_EXT_UNIT_CDM,
        false,
        UNMAPPED + 0x200,
    );
    assert_eq!(read_u64(&e.data, 0), 1, "the op before the jump ran");
    // Invalid opcode: INVALID at the op's address, blamed on the stream unit.
    let s = e.stream(StreamBuilder::new().spin(10).raw(RawOp {
        op: 0x77,
        ..Default::default()
    }));
    let (st, rec) = run_one(&e, Cmd::render(s), 0);
    assert_eq!(st, -libc::EIO);
    assert_guilty_fault(
        &rec,
        ext::DRM_ASAHI_EXT_FAULT_INVALID,
        ext::DRM_ASAHI_EXT_UNIT_VDM,
        false,
        s + 32,
    );
    // Misaligned store operand and an unknown RMW modifier are INVALID too.
    let s = e.stream(StreamBuilder::new().store(DATA + 4, 1));
    let (st, rec) = run_one(&e, Cmd::compute(s), 0);
    assert_eq!(st, -libc::EIO);
    assert_guilty_fault(
        &rec,
        ext::DRM_ASAHI_EXT_FAULT_INVALID,
        ext::DRM_ASAHI_EXT_UNIT_CDM,
        false,
        s,
    );
    let s = e.stream(StreamBuilder::new().raw(RawOp {
        op: 3,
        flags: 9,
        a: DATA,
        b: DATA,
        c: 8,
    }));
    let (st, rec) = run_one(&e, Cmd::compute(s), 0);
    assert_eq!(st, -libc::EIO);
    assert_eq!(rec.fault.fault_type, ext::DRM_ASAHI_EXT_FAULT_INVALID);
    // A unit override in bits 8-15 (VERTEX store in a render command).
    let vertex = ext::DRM_ASAHI_EXT_UNIT_VERTEX << 8;
    let s = e.stream(StreamBuilder::new().raw(RawOp {
        op: 6,
        flags: vertex,
        a: UNMAPPED + 16,
        b: 1,
        c: 0,
    }));
    let (st, rec) = run_one(&e, Cmd::render(s), 0);
    assert_eq!(st, -libc::EIO);
    assert_guilty_fault(
        &rec,
        ext::DRM_ASAHI_EXT_FAULT_UNMAPPED,
        ext::DRM_ASAHI_EXT_UNIT_VERTEX,
        true,
        UNMAPPED + 16,
    );
}

#[test]
fn soft_faults_mode() {
    let e = Env::with(SimConfig {
        soft_faults: true,
        ..Default::default()
    });
    e.data.write(0x100, &[9; 16]);
    // Unmapped reads return zeroes, unmapped writes are dropped; the command completes.
    let s = e.stream(
        StreamBuilder::new()
            .copy(DATA + 0x100, UNMAPPED, 16)
            .store(UNMAPPED + 64, 1),
    );
    let (st, rec) = run_one(&e, Cmd::compute(s), 0);
    assert_eq!(st, 1);
    assert_eq!(rec.status, ext::DRM_ASAHI_EXT_STATUS_COMPLETE);
    assert_eq!(e.data_bytes(0x100, 16), [0; 16]);
    // Stream fetches and permission faults still fault.
    let (st, rec) = run_one(&e, Cmd::compute(UNMAPPED), 0);
    assert_eq!(st, -libc::EIO);
    assert_eq!(rec.fault.unit, ext::DRM_ASAHI_EXT_UNIT_CDM);
    let bo = gem(&e.f, PAGE_SIZE);
    bind(&e.f, e.vm, bo, RO_VA, PAGE_SIZE, RO).unwrap();
    let s = e.stream(StreamBuilder::new().store(RO_VA, 1));
    let (st, rec) = run_one(&e, Cmd::compute(s), 0);
    assert_eq!(st, -libc::EIO);
    assert_eq!(rec.fault.fault_type, ext::DRM_ASAHI_EXT_FAULT_PERMISSION);
}

#[test]
fn hang_times_out() {
    let e = Env::with(cfg(RecoveryPolicy::Replay));
    let s = e.stream(StreamBuilder::new().spin(1000).hang());
    let (st, rec) = run_one(&e, Cmd::compute(s), ext::DRM_ASAHI_EXT_JOB_TIMESTAMPS);
    assert_eq!(st, -libc::ETIMEDOUT);
    assert_eq!(rec.status, ext::DRM_ASAHI_EXT_STATUS_TIMEOUT);
    assert_eq!(rec.guilt, ext::DRM_ASAHI_EXT_GUILT_GUILTY);
    assert_eq!(rec.fault.fault_type, ext::DRM_ASAHI_EXT_FAULT_TIMEOUT);
    assert_eq!(rec.fault.unit, ext::DRM_ASAHI_EXT_UNIT_COMPUTE);
    let ran = rec.gpu_end_ns - rec.gpu_start_ns;
    assert!(
        (2_000_000..2_100_000).contains(&ran),
        "watchdog after hang_timeout_ns: {ran}"
    );
    assert_eq!(e.dev.stats().timeouts, 1);
}

#[test]
fn record_slot_sizes_are_respected() {
    let e = Env::new();
    let s = e.stream(StreamBuilder::new().load(UNMAPPED, 8));
    // STATUS_ONLY: 16 bytes.
    let (st, rec) = run_one(&e, Cmd::compute(s), ext::DRM_ASAHI_EXT_JOB_STATUS_ONLY);
    assert_eq!(st, -libc::EIO);
    assert_eq!(
        (rec.status, rec.guilt, rec.replay_count, rec.pad),
        (ext::DRM_ASAHI_EXT_STATUS_FAULT, 1, 0, 0)
    );
    assert_eq!(
        read_bytes(&e.res, 16, 48),
        [0xEE; 48],
        "STATUS_ONLY writes 16 bytes"
    );
    // Default: 48 bytes.
    let (_, rec) = run_one(&e, Cmd::compute(s), 0);
    assert_eq!(rec.fault.fault_type, ext::DRM_ASAHI_EXT_FAULT_UNMAPPED);
    assert_eq!(
        read_bytes(&e.res, 48, 16),
        [0xEE; 16],
        "the default record is 48 bytes"
    );
    // TIMESTAMPS: 64 bytes with start <= end.
    let t0 = e.dev.now_ns();
    let good = e.stream(StreamBuilder::new().spin(5000).store(DATA, 1));
    let (st, rec) = run_one(&e, Cmd::compute(good), ext::DRM_ASAHI_EXT_JOB_TIMESTAMPS);
    assert_eq!(st, 1);
    assert_eq!(rec.status, ext::DRM_ASAHI_EXT_STATUS_COMPLETE);
    assert_eq!(rec.guilt, ext::DRM_ASAHI_EXT_GUILT_NONE);
    assert_eq!(rec.fault, ext::drm_asahi_ext_fault::default());
    assert!(
        rec.gpu_start_ns >= t0 && rec.gpu_end_ns >= rec.gpu_start_ns + 5000,
        "{rec:?}"
    );
    assert!(rec.gpu_end_ns <= e.dev.now_ns());
}

#[test]
fn pending_record_at_submit() {
    let e = Env::new();
    let s = e.stream(StreamBuilder::new().store(DATA, 1));
    e.res.write(0, &[0xEE; 64]);
    e.dev.hold();
    let (h, off) = e.slot(0);
    let done = submit(
        &e.f,
        e.q,
        &[Cmd::compute(s), Cmd::compute(s).info(0, h, off)],
        &[],
    )
    .unwrap();
    let rec = e.result(0);
    assert_eq!(rec.status, ext::DRM_ASAHI_EXT_STATUS_PENDING);
    assert_eq!(rec.seqno, 2);
    assert_eq!(rec.fault, ext::drm_asahi_ext_fault::default());
    assert_eq!(read_bytes(&e.res, 48, 16), [0xEE; 16]);
    e.dev.release();
    wait_ok(&e.f, done);
    assert_eq!(e.result(0).status, ext::DRM_ASAHI_EXT_STATUS_COMPLETE);
}

#[test]
fn fence_errors_visible_in_sync_file_not_in_wait() {
    let e = Env::new();
    let s = e.stream(StreamBuilder::new().load(UNMAPPED, 8));
    let done = e.submit(e.q, &[Cmd::compute(s)]).unwrap();
    // SYNCOBJ_WAIT succeeds: the fence signalled (with an error).
    wait(&e.f, &[done], 1000).unwrap();
    assert_eq!(fence_status(&e.f, done), -libc::EIO);
    // The per-fence info says the same, with a timestamp.
    let mut a = agx_uapi::drm::drm_syncobj_handle {
        handle: done,
        flags: agx_uapi::drm::DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE,
        fd: -1,
        ..Default::default()
    };
    io(&e.f, agx_uapi::drm::DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &mut a).unwrap();
    #[allow(unsafe_code)]
    // SAFETY: a new fd the ioctl returned, owned from here.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(a.fd) };
    let mut infos: [agx_uapi::sync_file::sync_fence_info; 2] = bytemuck::Zeroable::zeroed();
    let mut info: agx_uapi::sync_file::sync_file_info = bytemuck::Zeroable::zeroed();
    info.num_fences = 2;
    info.sync_fence_info = infos.as_mut_ptr() as u64;
    agx_sim::sync::sync_file::sync_file_ioctl(
        fd.as_fd(),
        agx_uapi::sync_file::SYNC_IOC_FILE_INFO,
        bytemuck::bytes_of_mut(&mut info),
    )
    .unwrap();
    assert_eq!(info.num_fences, 1);
    assert_eq!(info.status, -libc::EIO);
    assert_eq!(infos[0].status, -libc::EIO);
    assert_ne!(infos[0].timestamp_ns, 0);
}

// ---------------------------------------------------------------------------------------------
// Bans and cancellation

#[test]
fn guilty_queue_is_banned_and_its_queued_work_cancelled() {
    let e = Env::new();
    let bad = e.stream(StreamBuilder::new().spin(1000).store(UNMAPPED + 0x18, 1));
    let good = e.stream(StreamBuilder::new().atomic_add(DATA, 1));
    let earlier = e.submit(e.q, &[Cmd::compute(good)]).unwrap();
    wait_ok(&e.f, earlier);
    e.dev.hold();
    let (h, _) = e.slot(0);
    let culprit = e.submit(e.q, &[Cmd::render(bad).info(0, h, 0)]).unwrap();
    let behind_same = e.submit(e.q, &[Cmd::render(good).info(0, h, 64)]).unwrap();
    let behind_other = e
        .submit(e.q, &[Cmd::compute(good).barriers(0, NONE).info(0, h, 128)])
        .unwrap();
    e.dev.release();
    assert_eq!(wait_status(&e.f, culprit), -libc::EIO);
    assert_eq!(wait_status(&e.f, behind_same), -libc::ECANCELED);
    assert_eq!(wait_status(&e.f, behind_other), -libc::ECANCELED);
    let r = e.result(0);
    assert_guilty_fault(
        &r,
        ext::DRM_ASAHI_EXT_FAULT_UNMAPPED,
        ext::DRM_ASAHI_EXT_UNIT_FRAGMENT,
        true,
        UNMAPPED + 0x18,
    );
    assert_eq!(r.seqno, 2);
    for (i, seqno) in [(1, 3), (2, 4)] {
        let r = e.result(i);
        assert_eq!(r.status, ext::DRM_ASAHI_EXT_STATUS_CANCELLED, "{r:?}");
        assert_eq!(r.guilt, ext::DRM_ASAHI_EXT_GUILT_NONE);
        assert_eq!(r.seqno, seqno);
    }
    assert_eq!(read_u64(&e.data, 0), 1, "the cancelled work never ran");
    let st = queue_state(&e.f, e.q).unwrap();
    assert_eq!(
        st.flags,
        ext::DRM_ASAHI_EXT_QUEUE_BANNED | ext::DRM_ASAHI_EXT_QUEUE_GUILTY
    );
    assert_eq!(st.reset_count, 1);
    assert_eq!(st.ban_seqno, 2);
    assert_eq!(st.fault.fault_type, ext::DRM_ASAHI_EXT_FAULT_UNMAPPED);
    assert_eq!(st.fault.address, UNMAPPED + 0x18);
    assert_eq!(st.fault.flags, ext::DRM_ASAHI_EXT_FAULT_WRITE);
    // Later submits: ECANCELED, nothing queued, out-sync untouched.
    let out = syncobj(&e.f, false);
    let buf = cmdbuf(&[Cmd::compute(good)]);
    assert_eq!(
        submit_raw(&e.f, e.q, &buf, &[binary(out)], 0),
        Err(Errno::CANCELED)
    );
    assert_eq!(wait(&e.f, &[out], 0), Err(Errno::INVAL));
    assert_eq!(e.dev.pending_commands(), 0);
    // A new queue on the same VM works.
    let q2 = e.queue();
    wait_ok(&e.f, e.submit(q2, &[Cmd::compute(good)]).unwrap());
    assert_eq!(read_u64(&e.data, 0), 2);
    queue_destroy(&e.f, e.q).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Innocent victims: the three policies

const X: u64 = DATA + 0x10_0000;
const X_LEN: u64 = 1 << 20;

/// The outcome of one guilty + innocent scenario.
struct Outcome {
    env: Env,
    qi: u32,
    innocent_status: i32,
    innocent: ext::drm_asahi_ext_result,
    guilty_status: i32,
    guilty: ext::drm_asahi_ext_result,
}

/// An innocent command mid-way through a long fill on queue I while a command on queue G
/// faults (or, with `fault` false, does nothing wrong). Both start at the same GPU time.
fn scenario(policy: RecoveryPolicy, restartable: bool, fault: bool) -> Outcome {
    let e = Env::with(cfg(policy));
    let qi = e.queue();
    let innocent_s = e.stream(
        StreamBuilder::new()
            .spin(2000)
            .fill(X, X_LEN, 0x5a5a_0f0f)
            .store(DATA + 8, 0x77),
    );
    let guilty_s = if fault {
        e.stream(StreamBuilder::new().spin(5000).load(UNMAPPED, 8))
    } else {
        e.stream(StreamBuilder::new().spin(5000).load(DATA, 8))
    };
    let (h, _) = e.slot(0);
    let flags = if restartable { RESTART } else { 0 };
    e.dev.hold();
    let g = e
        .submit(e.q, &[Cmd::compute(guilty_s).info(0, h, 0)])
        .unwrap();
    let flags = flags | ext::DRM_ASAHI_EXT_JOB_TIMESTAMPS;
    let i = e
        .submit(qi, &[Cmd::render(innocent_s).info(flags, h, 64)])
        .unwrap();
    e.dev.release();
    let guilty_status = wait_status(&e.f, g);
    let innocent_status = wait_status(&e.f, i);
    assert_eq!(e.dev.pending_commands(), 0);
    let (guilty, innocent) = (e.result(0), e.result(1));
    Outcome {
        env: e,
        qi,
        innocent_status,
        innocent,
        guilty_status,
        guilty,
    }
}

fn data_of(e: &Env) -> Vec<u8> {
    e.data_bytes(0, DATA_SIZE as usize)
}

#[test]
fn the_scenario_is_concurrent() {
    // The fault-free run: both complete, the innocent was running when the other ended.
    let o = scenario(RecoveryPolicy::Replay, true, false);
    assert_eq!((o.guilty_status, o.innocent_status), (1, 1));
    assert!(o.guilty.gpu_end_ns == 0, "no TIMESTAMPS requested");
    let ev = o.env.dev.trace_events();
    let starts = ev
        .iter()
        .filter(|x| x.kind == agx_sim::trace::EventKind::Start)
        .count();
    assert_eq!(starts, 2);
    assert_eq!(
        o.env.data_bytes(X - DATA, X_LEN as usize),
        pattern_bytes(0x5a5a_0f0f, X_LEN as usize)
    );
}

#[test]
fn replay_restores_the_innocent() {
    let reference = scenario(RecoveryPolicy::Replay, true, false);
    let o = scenario(RecoveryPolicy::Replay, true, true);
    assert_eq!(o.guilty_status, -libc::EIO);
    assert_eq!(o.guilty.status, ext::DRM_ASAHI_EXT_STATUS_FAULT);
    assert_eq!(
        o.innocent_status, 1,
        "a replayed innocent signals without error"
    );
    assert_eq!(o.innocent.status, ext::DRM_ASAHI_EXT_STATUS_COMPLETE);
    assert_eq!(o.innocent.replay_count, 1);
    assert_eq!(o.innocent.seqno, 1);
    assert_eq!(
        data_of(&o.env),
        data_of(&reference.env),
        "memory exactly as the fault-free run"
    );
    // The record's start is the replay's start (after the recovery), and the run was whole.
    let cost = o.env.dev.stats().recovery_ns;
    assert_eq!(reference.innocent.gpu_start_ns, 0);
    assert!(o.innocent.gpu_start_ns >= cost, "{:?}", o.innocent);
    let whole = reference.innocent.gpu_end_ns - reference.innocent.gpu_start_ns;
    let replayed = o.innocent.gpu_end_ns - o.innocent.gpu_start_ns;
    assert!(
        replayed.abs_diff(whole) < whole / 100,
        "replayed run {replayed} vs {whole}"
    );
    let st = queue_state(&o.env.f, o.qi).unwrap();
    assert_eq!(st.flags, 0, "the innocent queue is not banned");
    assert_eq!(st.reset_count, 1);
    // and keeps working.
    let s = o.env.stream(StreamBuilder::new().store(DATA + 16, 5));
    wait_ok(&o.env.f, o.env.submit(o.qi, &[Cmd::compute(s)]).unwrap());
    let stats = o.env.dev.stats();
    assert_eq!((stats.recoveries, stats.replays, stats.faults), (1, 1, 1));
    // The trace has the whole story, as Chrome JSON.
    let v: serde_json::Value =
        serde_json::from_str(&o.env.dev.trace_json()).expect("trace is JSON");
    let events = v["traceEvents"].as_array().expect("traceEvents array");
    let names: Vec<&str> = events.iter().filter_map(|e| e["name"].as_str()).collect();
    for want in [
        "submit",
        "start",
        "fault",
        "recovery_start",
        "preempt",
        "replay",
        "recovery_end",
        "retire",
        "signal",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(pos("recovery_start") < pos("replay") && pos("replay") <= pos("recovery_end"));
    for e in events {
        assert!(
            e["ts"].as_f64().is_some() && e["ph"].as_str().is_some(),
            "{e}"
        );
    }
    assert!(
        events.iter().any(|e| e["ph"] == "X"),
        "complete slices for runs"
    );
}

#[test]
fn replay_of_a_non_restartable_innocent_kills_it() {
    let o = scenario(RecoveryPolicy::Replay, false, true);
    assert_eq!(o.guilty_status, -libc::EIO);
    assert_eq!(o.innocent_status, -libc::ECANCELED);
    assert_eq!(o.innocent.status, ext::DRM_ASAHI_EXT_STATUS_KILLED);
    assert_eq!(o.innocent.guilt, ext::DRM_ASAHI_EXT_GUILT_INNOCENT);
    assert_eq!(
        o.innocent.fault.fault_type,
        ext::DRM_ASAHI_EXT_FAULT_UNMAPPED,
        "the fault that caused the recovery"
    );
    assert_eq!(o.innocent.fault.address, UNMAPPED);
    let st = queue_state(&o.env.f, o.qi).unwrap();
    assert_eq!(
        st.flags,
        ext::DRM_ASAHI_EXT_QUEUE_BANNED | ext::DRM_ASAHI_EXT_QUEUE_INNOCENT
    );
    assert_eq!(st.reset_count, 1);
    assert_eq!(st.ban_seqno, 1);
    assert_eq!(st.fault.address, UNMAPPED);
    let s = o.env.stream(StreamBuilder::new().store(DATA + 16, 5));
    assert_eq!(o.env.submit(o.qi, &[Cmd::compute(s)]), Err(Errno::CANCELED));
    // Killed half-way: its partial writes stay.
    let x = o.env.data_bytes(X - DATA, X_LEN as usize);
    let want = pattern_bytes(0x5a5a_0f0f, X_LEN as usize);
    assert_eq!(&x[..4096], &want[..4096], "started");
    assert_eq!(
        &x[X_LEN as usize - 4096..],
        &[0; 4096][..],
        "did not finish"
    );
    assert_eq!(read_u64(&o.env.data, 8), 0);
}

#[test]
fn kill_inflight_kills_even_restartable_innocents() {
    let o = scenario(RecoveryPolicy::KillInflight, true, true);
    assert_eq!(o.guilty_status, -libc::EIO);
    assert_eq!(o.innocent_status, -libc::ECANCELED);
    assert_eq!(o.innocent.status, ext::DRM_ASAHI_EXT_STATUS_KILLED);
    assert_eq!(o.innocent.guilt, ext::DRM_ASAHI_EXT_GUILT_INNOCENT);
    assert_eq!(o.innocent.replay_count, 0);
    let st = queue_state(&o.env.f, o.qi).unwrap();
    assert_eq!(
        st.flags,
        ext::DRM_ASAHI_EXT_QUEUE_BANNED | ext::DRM_ASAHI_EXT_QUEUE_INNOCENT
    );
    assert_eq!(o.env.dev.stats().replays, 0);
}

#[test]
fn continue_corrupts_silently() {
    let reference = scenario(RecoveryPolicy::Continue, true, false);
    let o = scenario(RecoveryPolicy::Continue, true, true);
    assert_eq!(o.guilty_status, -libc::EIO);
    assert_eq!(o.innocent_status, 1, "no error reported");
    assert_eq!(o.innocent.status, ext::DRM_ASAHI_EXT_STATUS_COMPLETE);
    assert_eq!(o.innocent.replay_count, 0);
    assert_eq!(queue_state(&o.env.f, o.qi).unwrap().flags, 0);
    assert_ne!(
        data_of(&o.env),
        data_of(&reference.env),
        "the silent corruption"
    );
    // The op in progress was dropped; the ops after it ran.
    assert_eq!(read_u64(&o.env.data, 8), 0x77);
    let x = o.env.data_bytes(X - DATA, X_LEN as usize);
    assert_eq!(&x[X_LEN as usize - 4096..], &[0; 4096][..]);
}

#[test]
fn replay_limit_reached_kills() {
    for (limit, faults) in [(2u32, 3usize), (3, 3)] {
        let e = Env::with(SimConfig {
            replay_limit: limit,
            ..cfg(RecoveryPolicy::Replay)
        });
        let qi = e.queue();
        let (h, _) = e.slot(0);
        let innocent_s = e.stream(StreamBuilder::new().spin(100_000).fill(X, 4096, 3));
        let guilty_s = e.stream(StreamBuilder::new().spin(5000).load(UNMAPPED, 8));
        e.dev.hold();
        let i = e
            .submit(qi, &[Cmd::compute(innocent_s).info(RESTART, h, 0)])
            .unwrap();
        // Each culprit on its own queue, each starting when the previous one has failed.
        let mut prev: Option<u32> = None;
        let mut culprits = Vec::new();
        for _ in 0..faults {
            let q = e.queue();
            let waits: Vec<_> = prev.iter().map(|&p| binary(p)).collect();
            let g = submit(&e.f, q, &[Cmd::compute(guilty_s)], &waits).unwrap();
            culprits.push(g);
            prev = Some(g);
        }
        e.dev.release();
        for g in culprits {
            assert_eq!(wait_status(&e.f, g), -libc::EIO);
        }
        let st = wait_status(&e.f, i);
        let rec = e.result(0);
        assert_eq!(e.dev.stats().recoveries, faults as u64);
        if (faults as u32) > limit {
            assert_eq!(st, -libc::ECANCELED, "limit {limit}");
            assert_eq!(rec.status, ext::DRM_ASAHI_EXT_STATUS_KILLED);
            assert_eq!(rec.guilt, ext::DRM_ASAHI_EXT_GUILT_INNOCENT);
            assert_eq!(rec.replay_count, limit);
            assert_eq!(
                queue_state(&e.f, qi).unwrap().flags,
                ext::DRM_ASAHI_EXT_QUEUE_BANNED | ext::DRM_ASAHI_EXT_QUEUE_INNOCENT
            );
        } else {
            assert_eq!(st, 1, "limit {limit}");
            assert_eq!(rec.status, ext::DRM_ASAHI_EXT_STATUS_COMPLETE);
            assert_eq!(rec.replay_count, faults as u32);
            assert_eq!(e.data_bytes(X - DATA, 4096), pattern_bytes(3, 4096));
        }
        assert_eq!(
            queue_state(&e.f, qi).unwrap().reset_count,
            faults.min(limit as usize + 1) as u32
        );
    }
}

#[test]
fn idle_innocent_queues_are_untouched() {
    let e = Env::with(cfg(RecoveryPolicy::KillInflight));
    let idle = e.queue();
    let waiting = e.queue();
    let s = e.stream(StreamBuilder::new().atomic_add(DATA, 1));
    wait_ok(&e.f, e.submit(idle, &[Cmd::compute(s)]).unwrap());
    // A queue whose work waits on a fence nobody has signalled yet is idle too.
    let gate = agx_sim::sync::fence::Fence::new();
    let user = syncobj(&e.f, false);
    import_sync_file(
        &e.f,
        user,
        &agx_sim::sync::sync_file::export(vec![gate.clone()]).unwrap(),
    );
    let (h, _) = e.slot(0);
    let gated = submit(
        &e.f,
        waiting,
        &[Cmd::compute(s).info(0, h, 0)],
        &[binary(user)],
    )
    .unwrap();
    let bad = e.stream(StreamBuilder::new().load(UNMAPPED, 8));
    assert_eq!(
        wait_status(&e.f, e.submit(e.q, &[Cmd::compute(bad)]).unwrap()),
        -libc::EIO
    );
    for q in [idle, waiting] {
        let st = queue_state(&e.f, q).unwrap();
        assert_eq!(
            (st.flags, st.reset_count, st.ban_seqno),
            (0, 0, 0),
            "queue {q}"
        );
    }
    wait_ok(&e.f, e.submit(idle, &[Cmd::compute(s)]).unwrap());
    gate.signal(0);
    wait_ok(&e.f, gated);
    assert_eq!(e.result(0).status, ext::DRM_ASAHI_EXT_STATUS_COMPLETE);
    assert_eq!(read_u64(&e.data, 0), 3);
}

// ---------------------------------------------------------------------------------------------
// Injection

#[test]
fn injected_fault_and_hang() {
    let e = Env::with(cfg(RecoveryPolicy::Replay));
    let s = e.stream(StreamBuilder::new().spin(100_000).store(DATA, 1));
    let q = e.queue();
    e.dev
        .inject(&e.f, q, Injection::Fault { after_ns: 30_000 })
        .unwrap();
    let (h, off) = e.slot(0);
    let done = submit(
        &e.f,
        q,
        &[Cmd::render(s).info(ext::DRM_ASAHI_EXT_JOB_TIMESTAMPS, h, off)],
        &[],
    )
    .unwrap();
    assert_eq!(wait_status(&e.f, done), -libc::EIO);
    let r = e.result(0);
    assert_eq!(r.status, ext::DRM_ASAHI_EXT_STATUS_FAULT);
    assert_eq!(r.guilt, ext::DRM_ASAHI_EXT_GUILT_GUILTY);
    assert_eq!(r.fault.fault_type, ext::DRM_ASAHI_EXT_FAULT_INJECTED);
    assert_eq!(r.fault.unit, ext::DRM_ASAHI_EXT_UNIT_FRAGMENT);
    assert_eq!(
        r.gpu_end_ns - r.gpu_start_ns,
        30_000,
        "after_ns of GPU time"
    );
    assert_eq!(read_u64(&e.data, 0), 0, "stopped before the store");

    // Hang: the command stops making progress and the watchdog ends it.
    let q = e.queue();
    e.dev
        .inject(&e.f, q, Injection::Hang { after_ns: 10_000 })
        .unwrap();
    let done = submit(
        &e.f,
        q,
        &[Cmd::compute(s).info(ext::DRM_ASAHI_EXT_JOB_TIMESTAMPS, h, off)],
        &[],
    )
    .unwrap();
    assert_eq!(wait_status(&e.f, done), -libc::ETIMEDOUT);
    let r = e.result(0);
    assert_eq!(r.status, ext::DRM_ASAHI_EXT_STATUS_TIMEOUT);
    assert_eq!(r.fault.fault_type, ext::DRM_ASAHI_EXT_FAULT_TIMEOUT);
    assert_eq!(r.gpu_end_ns - r.gpu_start_ns, 2_000_000, "the watchdog");
    assert_eq!(read_u64(&e.data, 0), 0);

    // An injection applies to the next command only; unknown queues are ENOENT.
    let q = e.queue();
    e.dev
        .inject(
            &e.f,
            q,
            Injection::Fault {
                after_ns: 1_000_000,
            },
        )
        .unwrap();
    let quick = e.stream(StreamBuilder::new().store(DATA, 2));
    wait_ok(&e.f, e.submit(q, &[Cmd::compute(quick)]).unwrap());
    wait_ok(&e.f, e.submit(q, &[Cmd::compute(s)]).unwrap());
    assert_eq!(
        e.dev.inject(&e.f, 999, Injection::Hang { after_ns: 0 }),
        Err(Errno::NOENT)
    );
    let f2 = e.dev.open();
    assert_eq!(
        e.dev.inject(&f2, q, Injection::Hang { after_ns: 0 }),
        Err(Errno::NOENT)
    );
}

// ---------------------------------------------------------------------------------------------
// Teardown with work pending, firmware crash

/// Queues three commands (held) with records in slots 0..3 and returns their out-syncs.
fn pending_work(e: &Env, q: u32) -> Vec<u32> {
    let s = e.stream(StreamBuilder::new().spin(1000).atomic_add(DATA, 1));
    let (h, _) = e.slot(0);
    e.dev.hold();
    let a = submit(
        &e.f,
        q,
        &[Cmd::render(s).info(0, h, 0), Cmd::compute(s).info(0, h, 64)],
        &[],
    )
    .unwrap();
    let b = submit(
        &e.f,
        q,
        &[Cmd::compute(s).info(ext::DRM_ASAHI_EXT_JOB_STATUS_ONLY, h, 128)],
        &[],
    )
    .unwrap();
    assert_eq!(e.dev.pending_commands(), 3);
    vec![a, b]
}

fn assert_all_ended(e: &Env, outs: &[u32], fence_error: i32, status: u32) {
    for &o in outs {
        assert_eq!(wait_status(&e.f, o), fence_error);
    }
    for i in 0..3 {
        let r = e.result(i);
        assert_eq!(r.status, status, "slot {i}: {r:?}");
        assert_eq!(r.guilt, ext::DRM_ASAHI_EXT_GUILT_NONE);
    }
    assert_eq!(e.dev.pending_commands(), 0);
}

#[test]
fn queue_destroy_with_work_pending() {
    let e = Env::new();
    let q = e.queue();
    let outs = pending_work(&e, q);
    queue_destroy(&e.f, q).unwrap();
    assert_all_ended(
        &e,
        &outs,
        -libc::ECANCELED,
        ext::DRM_ASAHI_EXT_STATUS_KILLED,
    );
    e.dev.release();
    assert_eq!(read_u64(&e.data, 0), 0, "never ran");
    // Other queues go on.
    let s = e.stream(StreamBuilder::new().store(DATA, 9));
    wait_ok(&e.f, e.submit(e.q, &[Cmd::compute(s)]).unwrap());
}

#[test]
fn vm_destroy_with_work_pending() {
    let e = Env::new();
    let outs = pending_work(&e, e.q);
    vm_destroy(&e.f, e.vm).unwrap();
    assert_all_ended(
        &e,
        &outs,
        -libc::ECANCELED,
        ext::DRM_ASAHI_EXT_STATUS_KILLED,
    );
    e.dev.release();
    assert_eq!(read_u64(&e.data, 0), 0);
    let s = e.stream(StreamBuilder::new().store(DATA, 9));
    assert!(
        e.submit(e.q, &[Cmd::compute(s)]).is_err(),
        "the queue's VM is gone"
    );
    queue_destroy(&e.f, e.q).unwrap();
}

#[test]
fn file_close_with_work_pending() {
    let (dev, f) = device();
    let e = Env::on(dev.clone(), f);
    // A second file that waits on the first one's work, and holds its record BO.
    let f2 = dev.open();
    let outs = pending_work(&e, e.q);
    let shared: Vec<u32> = outs
        .iter()
        .map(|&o| syncobj_from_fd(&f2, &syncobj_to_fd(&e.f, o)))
        .collect();
    let Env {
        f,
        res: res_map,
        dev: _,
        data,
        ..
    } = e;
    drop(f);
    assert_eq!(dev.pending_commands(), 0);
    for &o in &shared {
        assert_eq!(wait_status(&f2, o), -libc::ECANCELED);
    }
    for i in 0..3 {
        assert_eq!(
            read_result(&res_map, i * 64).status,
            ext::DRM_ASAHI_EXT_STATUS_KILLED
        );
    }
    dev.release();
    assert_eq!(read_u64(&data, 0), 0);
}

#[test]
fn firmware_crash_ends_everything() {
    let e = Env::new();
    let q2 = e.queue();
    let outs = pending_work(&e, e.q);
    let s = e.stream(StreamBuilder::new().spin(10));
    let (h, _) = e.slot(0);
    let other = submit(&e.f, q2, &[Cmd::compute(s).info(0, h, 192)], &[]).unwrap();
    e.dev.crash_firmware();
    assert_all_ended(
        &e,
        &outs,
        -libc::ENODEV,
        ext::DRM_ASAHI_EXT_STATUS_NO_DEVICE,
    );
    assert_eq!(wait_status(&e.f, other), -libc::ENODEV);
    let r = e.result(3);
    assert_eq!(r.status, ext::DRM_ASAHI_EXT_STATUS_NO_DEVICE);
    assert_eq!(r.fault.fault_type, ext::DRM_ASAHI_EXT_FAULT_FIRMWARE);
    assert_eq!(r.fault.unit, ext::DRM_ASAHI_EXT_UNIT_FIRMWARE);
    e.dev.release();
    assert_eq!(read_u64(&e.data, 0), 0);
    assert_eq!(e.submit(e.q, &[Cmd::compute(s)]), Err(Errno::NODEV));
    // Teardown still works, and nothing is left.
    queue_destroy(&e.f, q2).unwrap();
    vm_destroy(&e.f, e.vm).unwrap();
    assert_eq!(e.dev.pending_commands(), 0);
    let v: serde_json::Value = serde_json::from_str(&e.dev.trace_json()).unwrap();
    assert!(v["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["name"] == "firmware_crash"));
}

// ---------------------------------------------------------------------------------------------
// Hostile streams: addresses at the top of the 64-bit space fault (or, with soft faults, read
// zeroes), never crash the simulator.

#[test]
fn hostile_addresses_fault_cleanly() {
    let m = u64::MAX;
    let streams = |e: &Env| -> Vec<u64> {
        vec![
            e.stream(StreamBuilder::new().load(m - 15, 16)),
            e.stream(StreamBuilder::new().atomic_add(m - 7, 1)),
            e.stream(StreamBuilder::new().store(m - 7, 1)),
            e.stream(StreamBuilder::new().fill(m - 15, 64, 1)),
            e.stream(StreamBuilder::new().copy(DATA, m - 15, 64)),
            e.stream(StreamBuilder::new().copy(m - 15, DATA, 64)),
            e.stream(StreamBuilder::new().rmw(m - 15, m - 15, 64, agx_sim::stream::RmwFn::Add)),
            e.stream(StreamBuilder::new().jump(m - 7)),
        ]
    };
    let e = Env::new();
    for s in streams(&e) {
        let (st, rec) = run_one(&e, Cmd::compute(s), 0);
        assert_eq!(st, -libc::EIO);
        assert!(rec.fault.address >= m - 15, "{rec:?}");
    }
    // Runaway lengths end at the first unmapped byte.
    let s = e.stream(StreamBuilder::new().fill(DATA, u64::MAX, 1));
    let (st, rec) = run_one(&e, Cmd::compute(s), 0);
    assert_eq!(st, -libc::EIO);
    assert_eq!(rec.fault.address, DATA + DATA_SIZE);
    let soft = Env::with(SimConfig {
        soft_faults: true,
        ..Default::default()
    });
    for s in streams(&soft).into_iter().take(7) {
        let (st, _) = run_one(&soft, Cmd::compute(s), 0);
        assert_eq!(st, 1);
    }
}
