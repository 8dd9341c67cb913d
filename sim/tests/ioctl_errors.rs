//! The ioctl boundary of the simulated device: every asahi ioctl's success path and its bad
//! inputs with the errno the kernel gives, and that a rejected call changed nothing.

mod common;

use agx_sim::stream::StreamBuilder;
use agx_sim::{Errno, RecoveryPolicy, SimConfig, PAGE_SIZE};
use agx_uapi::asahi::*;
use agx_uapi::drm::*;
use agx_uapi::fault_ext as ext;
use agx_uapi::ioctl::{ioc, ioc_nr, IOC_READ, IOC_WRITE};
use common::*;

// ---------------------------------------------------------------------------------------------
// helpers

/// Reads `len` bytes at `addr` on the GPU; returns the fence status and the result record.
/// Each probe runs on a fresh queue, as a fault bans the queue.
fn probe(e: &Env, addr: u64, len: u64) -> (i32, ext::drm_asahi_ext_result) {
    probe_on(e, e.queue(), addr, len)
}

fn probe_on(e: &Env, q: u32, addr: u64, len: u64) -> (i32, ext::drm_asahi_ext_result) {
    let s = e.stream(StreamBuilder::new().load(addr, len));
    let (h, off) = e.slot(60);
    let done = submit(&e.f, q, &[Cmd::compute(s).info(0, h, off)], &[]).unwrap();
    let st = wait_status(&e.f, done);
    (st, e.result(60))
}

/// Writes `value` at `addr` on the GPU; returns the fence status and the record.
fn poke(e: &Env, addr: u64, value: u64) -> (i32, ext::drm_asahi_ext_result) {
    let s = e.stream(StreamBuilder::new().store(addr, value));
    let (h, off) = e.slot(61);
    let q = e.queue();
    let done = submit(&e.f, q, &[Cmd::render(s).info(0, h, off)], &[]).unwrap();
    let st = wait_status(&e.f, done);
    (st, e.result(61))
}

fn get_params(f: &agx_sim::SimFile, group: u32, buf: &mut [u8], size: u64) -> Result<(), Errno> {
    let mut a = drm_asahi_get_params {
        param_group: group,
        pad: 0,
        pointer: buf.as_mut_ptr() as u64,
        size,
    };
    io(f, DRM_IOCTL_ASAHI_GET_PARAMS, &mut a)
}

fn global_params(f: &agx_sim::SimFile) -> drm_asahi_params_global {
    let mut p = drm_asahi_params_global::default();
    let size = core::mem::size_of_val(&p) as u64;
    get_params(f, 0, bytemuck::bytes_of_mut(&mut p), size).unwrap();
    p
}

fn ext_params(f: &agx_sim::SimFile) -> Result<ext::drm_asahi_params_fault_ext, Errno> {
    let mut p = ext::drm_asahi_params_fault_ext::default();
    get_params(
        f,
        ext::DRM_ASAHI_PARAM_GROUP_FAULT_EXT,
        bytemuck::bytes_of_mut(&mut p),
        32,
    )?;
    Ok(p)
}

const CANARY: u8 = 0xA5;

// ---------------------------------------------------------------------------------------------
// GET_PARAMS

#[test]
fn get_params_global_values_are_sane() {
    let (_d, f) = device();
    let p = global_params(&f);
    assert_eq!(p.gpu_generation, 13);
    assert!(p.num_clusters_total >= 1 && p.num_cores_per_cluster >= 1 && p.num_dies >= 1);
    assert_ne!(p.core_masks[0], 0);
    assert!(p.vm_start >= PAGE_SIZE && p.vm_start < p.vm_end);
    assert_eq!(p.vm_start % PAGE_SIZE, 0);
    assert!(p.vm_kernel_min_size > 0 && p.vm_kernel_min_size < p.vm_end - p.vm_start);
    assert!(p.max_commands_per_submission >= 1);
    assert!(p.max_attachments >= 1);
    // What the asahi kernel reports (timestamps in ns); honeykrisp's hk_CreateDevice asserts it.
    assert_eq!(p.command_timestamp_frequency_hz, 1_000_000_000);
    assert!(p.max_frequency_khz > 0);
    assert_eq!(p.features & DRM_ASAHI_FEATURE_SOFT_FAULTS, 0);
    // The helpers' kernel range fits the VM and the minimum.
    assert!(KERNEL_START >= p.vm_start && KERNEL_END <= p.vm_end);
    assert!(KERNEL_END - KERNEL_START >= p.vm_kernel_min_size);

    let soft = SimConfig {
        soft_faults: true,
        ..Default::default()
    };
    let (_d, f) = device_with(soft);
    assert_eq!(
        global_params(&f).features & DRM_ASAHI_FEATURE_SOFT_FAULTS,
        DRM_ASAHI_FEATURE_SOFT_FAULTS
    );
}

#[test]
fn get_params_never_writes_past_size() {
    let (_d, f) = device();
    let full = core::mem::size_of::<drm_asahi_params_global>();
    let want = global_params(&f);
    let want = bytemuck::bytes_of(&want);
    for size in [0usize, 1, 8, 13, full - 1, full] {
        let mut buf = vec![CANARY; full + 16];
        get_params(&f, 0, &mut buf, size as u64).unwrap();
        assert_eq!(&buf[..size], &want[..size], "size {size}");
        assert!(
            buf[size..].iter().all(|&b| b == CANARY),
            "wrote past size {size}"
        );
    }
    // A larger size (newer userspace) gets the kernel's struct and nothing more.
    let mut buf = vec![CANARY; full + 16];
    get_params(&f, 0, &mut buf, (full + 16) as u64).unwrap();
    assert_eq!(&buf[..full], want);
    assert!(buf[full..].iter().all(|&b| b == CANARY));
    // Same for group 1.
    let mut buf = vec![CANARY; 48];
    get_params(&f, 1, &mut buf, 20).unwrap();
    assert_eq!(u32::from_le_bytes(buf[0..4].try_into().unwrap()), 1);
    assert!(buf[20..].iter().all(|&b| b == CANARY));
}

#[test]
fn get_params_fault_ext_group() {
    let (_d, f) = device();
    let p = ext_params(&f).unwrap();
    let cfg = SimConfig::default();
    assert_eq!(p.version, ext::DRM_ASAHI_FAULT_EXT_VERSION);
    assert_eq!(p.result_size, 64);
    let all = ext::DRM_ASAHI_FAULT_EXT_FEATURE_RESULTS
        | ext::DRM_ASAHI_FAULT_EXT_FEATURE_QUEUE_STATE
        | ext::DRM_ASAHI_FAULT_EXT_FEATURE_REPLAY;
    assert_eq!(p.features, all);
    assert_eq!(p.replay_limit, cfg.replay_limit);
    assert_eq!(p.recovery_policy, ext::DRM_ASAHI_RECOVERY_REPLAY);
    assert_eq!(p.hang_timeout_ns, cfg.hang_timeout_ns);

    for (policy, raw) in [
        (
            RecoveryPolicy::KillInflight,
            ext::DRM_ASAHI_RECOVERY_KILL_INFLIGHT,
        ),
        (RecoveryPolicy::Continue, ext::DRM_ASAHI_RECOVERY_CONTINUE),
    ] {
        let (_d, f) = device_with(SimConfig {
            policy,
            replay_limit: 7,
            ..Default::default()
        });
        let p = ext_params(&f).unwrap();
        assert_eq!(p.recovery_policy, raw);
        assert_eq!(
            p.features & ext::DRM_ASAHI_FAULT_EXT_FEATURE_REPLAY,
            0,
            "{policy:?}"
        );
        assert_eq!(p.replay_limit, 7);
    }
}

#[test]
fn upstream_kernel_rejects_every_extension_piece() {
    let e = Env::with(SimConfig {
        fault_ext: false,
        ..Default::default()
    });
    let mut buf = vec![CANARY; 32];
    assert_eq!(get_params(&e.f, 1, &mut buf, 32), Err(Errno::INVAL));
    assert!(buf.iter().all(|&b| b == CANARY));
    assert_eq!(queue_state(&e.f, e.q).unwrap_err(), Errno::INVAL);
    let s = e.stream(StreamBuilder::new().store(DATA, 1));
    let (h, off) = e.slot(0);
    assert_eq!(
        submit(&e.f, e.q, &[Cmd::compute(s).info(0, h, off)], &[]),
        Err(Errno::INVAL)
    );
    // Upstream submits still work.
    let done = submit(&e.f, e.q, &[Cmd::compute(s)], &[]).unwrap();
    wait_ok(&e.f, done);
    assert_eq!(read_u64(&e.data, 0), 1);
}

#[test]
fn get_params_bad_inputs() {
    let (_d, f) = device();
    let mut buf = vec![CANARY; 512];
    assert_eq!(get_params(&f, 2, &mut buf, 64), Err(Errno::INVAL));
    assert_eq!(get_params(&f, u32::MAX, &mut buf, 64), Err(Errno::INVAL));
    let mut a = drm_asahi_get_params {
        param_group: 0,
        pad: 1,
        pointer: buf.as_mut_ptr() as u64,
        size: 64,
    };
    assert_eq!(
        io(&f, DRM_IOCTL_ASAHI_GET_PARAMS, &mut a),
        Err(Errno::INVAL)
    );
    assert!(buf.iter().all(|&b| b == CANARY));
    let mut a = drm_asahi_get_params {
        param_group: 0,
        pad: 0,
        pointer: 16,
        size: 64,
    };
    assert_eq!(
        io(&f, DRM_IOCTL_ASAHI_GET_PARAMS, &mut a),
        Err(Errno::FAULT)
    );
    // Read-only memory is not writable either.
    static RO: [u8; 64] = [0; 64];
    let mut a = drm_asahi_get_params {
        param_group: 0,
        pad: 0,
        pointer: RO.as_ptr() as u64,
        size: 64,
    };
    assert_eq!(
        io(&f, DRM_IOCTL_ASAHI_GET_PARAMS, &mut a),
        Err(Errno::FAULT)
    );
}

// ---------------------------------------------------------------------------------------------
// GET_TIME

#[test]
fn get_time() {
    let e = Env::new();
    let mut a = drm_asahi_get_time::default();
    io(&e.f, DRM_IOCTL_ASAHI_GET_TIME, &mut a).unwrap();
    let t0 = a.gpu_timestamp;
    let s = e.stream(StreamBuilder::new().spin(1_000_000));
    let done = e.submit(e.q, &[Cmd::compute(s)]).unwrap();
    wait_ok(&e.f, done);
    io(&e.f, DRM_IOCTL_ASAHI_GET_TIME, &mut a).unwrap();
    assert!(
        a.gpu_timestamp >= t0 + 1_000_000,
        "GPU time advanced by the spin"
    );
    let mut bad = drm_asahi_get_time {
        flags: 1,
        gpu_timestamp: 77,
    };
    assert_eq!(
        io(&e.f, DRM_IOCTL_ASAHI_GET_TIME, &mut bad),
        Err(Errno::INVAL)
    );
}

// ---------------------------------------------------------------------------------------------
// VM_CREATE / VM_DESTROY

fn vm_create(f: &agx_sim::SimFile, start: u64, end: u64, pad: u32) -> Result<u32, Errno> {
    let mut a = drm_asahi_vm_create {
        kernel_start: start,
        kernel_end: end,
        vm_id: 0,
        pad,
    };
    io(f, DRM_IOCTL_ASAHI_VM_CREATE, &mut a)?;
    Ok(a.vm_id)
}

#[test]
fn vm_create_checks_the_kernel_range() {
    let (_d, f) = device();
    let p = global_params(&f);
    let min = p.vm_kernel_min_size;
    let a = vm_create(&f, KERNEL_START, KERNEL_END, 0).unwrap();
    let b = vm_create(&f, p.vm_start, p.vm_start + min, 0).unwrap();
    let c = vm_create(&f, p.vm_end - min, p.vm_end, 0).unwrap();
    assert!(a != b && b != c && a != c, "distinct ids");
    for (start, end, pad) in [
        (KERNEL_START, KERNEL_END, 1),                             // pad
        (p.vm_start - PAGE_SIZE, p.vm_start - PAGE_SIZE + min, 0), // below the VM
        (0, min, 0),                                               // below the VM
        (p.vm_end - min + PAGE_SIZE, p.vm_end + PAGE_SIZE, 0),     // past the VM
        (KERNEL_START, KERNEL_START + min - PAGE_SIZE, 0),         // smaller than the minimum
        (KERNEL_END, KERNEL_START, 0),                             // reversed
        (KERNEL_START, KERNEL_START, 0),                           // empty
        (KERNEL_START + 0x1000, KERNEL_END + 0x1000, 0),           // misaligned start
        (KERNEL_START, KERNEL_END + 0x1000, 0),                    // misaligned end
    ] {
        assert_eq!(
            vm_create(&f, start, end, pad),
            Err(Errno::INVAL),
            "{start:#x}..{end:#x} pad {pad}"
        );
    }
    // Binding into the kernel range of a VM is refused; right below it works.
    let bo = gem(&f, PAGE_SIZE);
    assert_eq!(
        bind(&f, a, bo, KERNEL_START, PAGE_SIZE, RW),
        Err(Errno::INVAL)
    );
    bind(&f, a, bo, KERNEL_START - PAGE_SIZE, PAGE_SIZE, RW).unwrap();
    bind(&f, a, bo, KERNEL_END, PAGE_SIZE, RW).unwrap();
}

#[test]
fn vm_destroy_errors() {
    let (d, f) = device();
    let f2 = d.open();
    let v = vm(&f);
    assert_eq!(vm_destroy(&f, v + 100), Err(Errno::NOENT));
    assert_eq!(
        vm_destroy(&f2, v),
        Err(Errno::NOENT),
        "another file's handle"
    );
    let mut a = drm_asahi_vm_destroy { vm_id: v, pad: 1 };
    assert_eq!(
        io(&f, DRM_IOCTL_ASAHI_VM_DESTROY, &mut a),
        Err(Errno::INVAL)
    );
    // The failed calls left the VM alone.
    let bo = gem(&f, PAGE_SIZE);
    bind(&f, v, bo, 0x10_0000, PAGE_SIZE, RW).unwrap();
    vm_destroy(&f, v).unwrap();
    assert_eq!(vm_destroy(&f, v), Err(Errno::NOENT));
    assert_eq!(bind(&f, v, bo, 0x10_0000, PAGE_SIZE, RW), Err(Errno::NOENT));
    assert_eq!(queue_create(&f, v, 0), Err(Errno::NOENT));
}

// ---------------------------------------------------------------------------------------------
// VM_BIND

#[test]
fn vm_bind_rejects_bad_ops() {
    let e = Env::new();
    let f = &e.f;
    let bo = gem(f, 4 * PAGE_SIZE);
    let at = 0x200_0000;
    let r = DRM_ASAHI_BIND_READ;
    let cases: Vec<(&str, drm_asahi_gem_bind_op, Errno)> = vec![
        (
            "misaligned addr",
            op(r, bo, 0, PAGE_SIZE, at + 0x1000),
            Errno::INVAL,
        ),
        (
            "misaligned offset",
            op(r, bo, 0x1000, PAGE_SIZE, at),
            Errno::INVAL,
        ),
        ("misaligned range", op(r, bo, 0, 0x1000, at), Errno::INVAL),
        ("zero range", op(r, bo, 0, 0, at), Errno::INVAL),
        (
            "kernel range",
            op(r, bo, 0, 2 * PAGE_SIZE, KERNEL_START - PAGE_SIZE),
            Errno::INVAL,
        ),
        (
            "kernel range end",
            op(r, bo, 0, PAGE_SIZE, KERNEL_END - PAGE_SIZE),
            Errno::INVAL,
        ),
        ("below the VM", op(r, bo, 0, PAGE_SIZE, 0), Errno::INVAL),
        (
            "past the VM",
            op(r, bo, 0, PAGE_SIZE, 1 << 39),
            Errno::INVAL,
        ),
        (
            "wrapping",
            op(r, bo, 0, 2 * PAGE_SIZE, u64::MAX - PAGE_SIZE + 1),
            Errno::INVAL,
        ),
        (
            "unknown flag",
            op(r | (1 << 4), bo, 0, PAGE_SIZE, at),
            Errno::INVAL,
        ),
        (
            "neither read nor write",
            op(0, bo, 0, PAGE_SIZE, at),
            Errno::INVAL,
        ),
        ("unknown handle", op(r, 999, 0, PAGE_SIZE, at), Errno::NOENT),
        ("handle 0", op(r, 0, 0, PAGE_SIZE, at), Errno::NOENT),
        (
            "offset + range past the BO",
            op(r, bo, PAGE_SIZE, 4 * PAGE_SIZE, at),
            Errno::INVAL,
        ),
        (
            "range past the BO",
            op(r, bo, 0, 5 * PAGE_SIZE, at),
            Errno::INVAL,
        ),
        (
            "offset past the BO",
            op(r, bo, 4 * PAGE_SIZE, PAGE_SIZE, at),
            Errno::INVAL,
        ),
        (
            "single page past the BO",
            op(
                r | DRM_ASAHI_BIND_SINGLE_PAGE,
                bo,
                4 * PAGE_SIZE,
                PAGE_SIZE,
                at,
            ),
            Errno::INVAL,
        ),
        (
            "unbind with a handle",
            op(DRM_ASAHI_BIND_UNBIND, bo, 0, PAGE_SIZE, at),
            Errno::INVAL,
        ),
        (
            "unbind with read",
            op(DRM_ASAHI_BIND_UNBIND | r, 0, 0, PAGE_SIZE, at),
            Errno::INVAL,
        ),
        (
            "unbind misaligned",
            op(DRM_ASAHI_BIND_UNBIND, 0, 0, PAGE_SIZE, at + 8),
            Errno::INVAL,
        ),
    ];
    for (what, o, errno) in cases {
        assert_eq!(bind_ops(f, e.vm, &[o]), Err(errno), "{what}");
        // A good op before the bad one is not applied either: the bind is all or nothing.
        let good = op(RW, e.data_bo, 0, PAGE_SIZE, at);
        assert_eq!(
            bind_ops(f, e.vm, &[good, o]),
            Err(errno),
            "{what} after a good op"
        );
        let (st, rec) = probe(&e, at, 8);
        assert_eq!(st, -libc::EIO, "{what}: the good op was not applied");
        assert_eq!(rec.fault.fault_type, ext::DRM_ASAHI_EXT_FAULT_UNMAPPED);
        assert_eq!(rec.fault.address, at);
    }
}

#[test]
fn vm_bind_failed_bind_maps_nothing() {
    let e = Env::new();
    let at = 0x200_0000;
    let ops = [
        op(RW, e.data_bo, 0, PAGE_SIZE, at),
        op(RW, e.data_bo, PAGE_SIZE, PAGE_SIZE, at + PAGE_SIZE),
        op(RW, 12345, 0, PAGE_SIZE, at + 2 * PAGE_SIZE),
    ];
    assert_eq!(bind_ops(&e.f, e.vm, &ops), Err(Errno::NOENT));
    // An earlier mapping an op of the failed bind would have replaced is still there.
    e.data.write(0, &[7; 8]);
    let (st, rec) = probe(&e, at, 8);
    assert_eq!(st, -libc::EIO);
    assert_eq!(rec.status, ext::DRM_ASAHI_EXT_STATUS_FAULT);
    assert_eq!(rec.fault.address, at);
    // The same ops without the bad one work.
    bind_ops(&e.f, e.vm, &ops[..2]).unwrap();
    let q = e.queue();
    let (st, rec) = probe_on(&e, q, at, 2 * PAGE_SIZE);
    assert_eq!(st, 1);
    assert_eq!(rec.status, ext::DRM_ASAHI_EXT_STATUS_COMPLETE);
}

#[test]
fn vm_bind_struct_errors() {
    let e = Env::new();
    let o = op(RW, e.data_bo, 0, PAGE_SIZE, 0x200_0000);
    let mk = |vm_id, stride, pad, userptr| drm_asahi_vm_bind {
        vm_id,
        num_binds: 1,
        stride,
        pad,
        userptr,
    };
    let ptr = &o as *const _ as u64;
    for (what, mut a, errno) in [
        ("stride 0", mk(e.vm, 0, 0, ptr), Errno::INVAL),
        ("pad", mk(e.vm, 32, 1, ptr), Errno::INVAL),
        ("bad userptr", mk(e.vm, 32, 0, 16), Errno::FAULT),
        ("unknown vm", mk(e.vm + 100, 32, 0, ptr), Errno::NOENT),
    ] {
        assert_eq!(
            io(&e.f, DRM_IOCTL_ASAHI_VM_BIND, &mut a),
            Err(errno),
            "{what}"
        );
    }
    // A newer, larger op struct (stride 48, zero tail) is accepted.
    let mut wide = [0u8; 48];
    wide[..32].copy_from_slice(bytemuck::bytes_of(&o));
    let mut a = mk(e.vm, 48, 0, wide.as_ptr() as u64);
    io(&e.f, DRM_IOCTL_ASAHI_VM_BIND, &mut a).unwrap();
    let (st, _) = probe(&e, 0x200_0000, 8);
    assert_eq!(st, 1);
}

#[test]
fn vm_bind_handles_belong_to_their_file_and_vm() {
    let e = Env::new();
    let f2 = e.dev.open();
    let theirs: Vec<u32> = (0..20).map(|_| gem(&f2, PAGE_SIZE)).collect();
    let vm2 = vm(&f2);
    assert_ne!(vm2, e.vm);
    let foreign = *theirs.last().unwrap();
    assert_eq!(
        bind(&e.f, e.vm, foreign, 0x200_0000, PAGE_SIZE, RW),
        Err(Errno::NOENT),
        "another file's BO"
    );
    assert_eq!(
        bind(&f2, e.vm, theirs[0], 0x200_0000, PAGE_SIZE, RW),
        Err(Errno::NOENT),
        "another file's VM"
    );
    bind(&f2, vm2, theirs[0], 0x200_0000, PAGE_SIZE, RW).unwrap();

    // A VM-private BO binds into its own VM only.
    let other_vm = vm(&e.f);
    let private = gem_create(&e.f, PAGE_SIZE, DRM_ASAHI_GEM_VM_PRIVATE, other_vm).unwrap();
    assert_eq!(
        bind(&e.f, e.vm, private, 0x200_0000, PAGE_SIZE, RW),
        Err(Errno::INVAL)
    );
    bind(&e.f, other_vm, private, 0x200_0000, PAGE_SIZE, RW).unwrap();
    // and cannot be exported.
    assert_eq!(prime_export(&e.f, private).unwrap_err(), Errno::INVAL);
    let (st, _) = probe(&e, 0x200_0000, 8);
    assert_eq!(st, -libc::EIO, "not mapped in the first VM");
}

#[test]
fn vm_bind_unbind_semantics() {
    let e = Env::new();
    let at = 0x200_0000;
    bind(&e.f, e.vm, e.data_bo, at, 4 * PAGE_SIZE, RW).unwrap();
    // Unbinding the second page splits the mapping.
    unbind(&e.f, e.vm, at + PAGE_SIZE, PAGE_SIZE).unwrap();
    let (st, _) = probe(&e, at, PAGE_SIZE);
    assert_eq!(st, 1);
    let q = e.queue();
    let (st, _) = probe_on(&e, q, at + 2 * PAGE_SIZE, 2 * PAGE_SIZE);
    assert_eq!(st, 1, "the tail keeps its mapping");
    let q = e.queue();
    let (st, rec) = probe_on(&e, q, at + PAGE_SIZE - 8, 16);
    assert_eq!(st, -libc::EIO);
    assert_eq!(
        rec.fault.address,
        at + PAGE_SIZE,
        "faults at the first unmapped byte"
    );
    assert_eq!(rec.fault.flags & ext::DRM_ASAHI_EXT_FAULT_WRITE, 0);
    // The tail still maps the right BO pages.
    e.data.write(2 * PAGE_SIZE as usize + 5, &[0x5a]);
    let q = e.queue();
    let s = e.stream(StreamBuilder::new().copy(DATA + 0x1000, at + 2 * PAGE_SIZE, 8));
    let done = submit(&e.f, q, &[Cmd::compute(s)], &[]).unwrap();
    wait_ok(&e.f, done);
    assert_eq!(e.data_bytes(0x1005, 1), [0x5a]);
    // Unbinding what is not mapped is fine; unbinding everything leaves nothing.
    unbind(&e.f, e.vm, at + 16 * PAGE_SIZE, PAGE_SIZE).unwrap();
    unbind(&e.f, e.vm, at, 4 * PAGE_SIZE).unwrap();
    let q = e.queue();
    let (st, _) = probe_on(&e, q, at, 8);
    assert_eq!(st, -libc::EIO);
}

#[test]
fn vm_bind_remap_and_single_page() {
    let e = Env::new();
    let at = 0x200_0000;
    let b1 = gem(&e.f, PAGE_SIZE);
    let b2 = gem(&e.f, PAGE_SIZE);
    let m1 = map(&e.f, b1, PAGE_SIZE as usize);
    let m2 = map(&e.f, b2, PAGE_SIZE as usize);
    bind(&e.f, e.vm, b1, at, PAGE_SIZE, RW).unwrap();
    bind(&e.f, e.vm, b2, at, PAGE_SIZE, RW).unwrap();
    let (st, _) = poke(&e, at + 8, 0x1122);
    assert_eq!(st, 1);
    assert_eq!(read_u64(&m1, 8), 0);
    assert_eq!(
        read_u64(&m2, 8),
        0x1122,
        "the second bind replaced the first"
    );

    // SINGLE_PAGE: every page of the range maps the same BO page.
    let sp = at + 0x10_0000;
    let flags = RW | DRM_ASAHI_BIND_SINGLE_PAGE;
    bind_ops(&e.f, e.vm, &[op(flags, b1, 0, 8 * PAGE_SIZE, sp)]).unwrap();
    let (st, _) = poke(&e, sp + 5 * PAGE_SIZE + 16, 0xabcd);
    assert_eq!(st, 1);
    assert_eq!(read_u64(&m1, 16), 0xabcd);

    // A read-only binding faults PERMISSION on write.
    bind(&e.f, e.vm, b1, at, PAGE_SIZE, RO).unwrap();
    let (st, rec) = poke(&e, at + 24, 1);
    assert_eq!(st, -libc::EIO);
    assert_eq!(rec.fault.fault_type, ext::DRM_ASAHI_EXT_FAULT_PERMISSION);
    assert_eq!(rec.fault.flags, ext::DRM_ASAHI_EXT_FAULT_WRITE);
    assert_eq!(read_u64(&m1, 24), 0);
}

// ---------------------------------------------------------------------------------------------
// GEM_CREATE / MMAP_OFFSET / CLOSE

#[test]
fn gem_create_errors() {
    let (_d, f) = device();
    let v = vm(&f);
    assert_eq!(gem_create(&f, 0, 0, 0), Err(Errno::INVAL), "size 0");
    assert_eq!(
        gem_create(&f, PAGE_SIZE, 1 << 2, 0),
        Err(Errno::INVAL),
        "unknown flag"
    );
    assert_eq!(
        gem_create(&f, PAGE_SIZE, DRM_ASAHI_GEM_VM_PRIVATE, v + 50),
        Err(Errno::NOENT)
    );
    assert_eq!(
        gem_create(&f, PAGE_SIZE, DRM_ASAHI_GEM_VM_PRIVATE, 0),
        Err(Errno::NOENT)
    );
    assert_eq!(
        gem_create(&f, PAGE_SIZE, 0, v),
        Err(Errno::INVAL),
        "vm_id without VM_PRIVATE"
    );
    let mut a = drm_asahi_gem_create {
        size: PAGE_SIZE,
        pad: 1,
        ..Default::default()
    };
    assert_eq!(
        io(&f, DRM_IOCTL_ASAHI_GEM_CREATE, &mut a),
        Err(Errno::INVAL),
        "pad"
    );
    // Good ones; the size is rounded up to a page.
    let a = gem_create(&f, 1, DRM_ASAHI_GEM_WRITEBACK, 0).unwrap();
    let b = gem_create(
        &f,
        PAGE_SIZE,
        DRM_ASAHI_GEM_VM_PRIVATE | DRM_ASAHI_GEM_WRITEBACK,
        v,
    )
    .unwrap();
    assert_ne!(a, b);
    let m = f
        .mmap(mmap_offset(&f, a).unwrap(), PAGE_SIZE as usize)
        .unwrap();
    m.write(PAGE_SIZE as usize - 1, &[1]);
    bind(&f, v, a, 0x10_0000, PAGE_SIZE, RW).unwrap();
}

#[test]
fn gem_mmap_offset_and_close() {
    let (d, f) = device();
    let a = gem(&f, 2 * PAGE_SIZE);
    let b = gem(&f, PAGE_SIZE);
    let oa = mmap_offset(&f, a).unwrap();
    let ob = mmap_offset(&f, b).unwrap();
    assert_ne!(oa, ob);
    assert_eq!(oa % 4096, 0);
    assert_eq!(mmap_offset(&f, a).unwrap(), oa, "stable");
    assert_eq!(mmap_offset(&f, 999), Err(Errno::NOENT));
    let mut x = drm_asahi_gem_mmap_offset {
        handle: a,
        flags: 1,
        offset: 0,
    };
    assert_eq!(
        io(&f, DRM_IOCTL_ASAHI_GEM_MMAP_OFFSET, &mut x),
        Err(Errno::INVAL)
    );
    let f2 = d.open();
    assert_eq!(
        mmap_offset(&f2, a),
        Err(Errno::NOENT),
        "another file's handle"
    );
    assert!(
        f2.mmap(oa, PAGE_SIZE as usize).is_err(),
        "another file cannot map it"
    );
    // Two mappings share pages.
    let m1 = f.mmap(oa, 2 * PAGE_SIZE as usize).unwrap();
    let m2 = f.mmap(oa, PAGE_SIZE as usize).unwrap();
    m1.write(100, &[9, 8, 7]);
    assert_eq!(read_bytes(&m2, 100, 3), [9, 8, 7]);
    assert!(
        f.mmap(oa, 3 * PAGE_SIZE as usize).is_err(),
        "longer than the BO"
    );
    assert!(f.mmap(oa + 4096, 4096).is_err(), "unknown offset");
    // GEM_CLOSE: once, then EINVAL; the handle is gone; existing mappings stay valid.
    gem_close(&f, a).unwrap();
    assert_eq!(gem_close(&f, a), Err(Errno::INVAL));
    assert_eq!(gem_close(&f, 4242), Err(Errno::INVAL));
    assert_eq!(mmap_offset(&f, a), Err(Errno::NOENT));
    assert_eq!(read_bytes(&m1, 100, 3), [9, 8, 7]);
    // b is unaffected.
    assert_eq!(mmap_offset(&f, b).unwrap(), ob);
}

/// The asahi driver's GEM `close` callback drops the object's mappings in the file's VMs when
/// its handle goes (Mesa's `agx_bo_free` closes the handle and relies on it to unbind the VA).
/// The memory itself lives on while a CPU mapping holds it.
#[test]
fn closing_a_bos_handle_unmaps_it_from_the_files_vms() {
    let e = Env::new();
    let at = 0x200_0000;
    let bo = gem(&e.f, PAGE_SIZE);
    let other = gem(&e.f, PAGE_SIZE);
    let m = map(&e.f, bo, PAGE_SIZE as usize);
    bind(&e.f, e.vm, bo, at, PAGE_SIZE, RW).unwrap();
    bind(&e.f, e.vm, bo, at + 4 * PAGE_SIZE, PAGE_SIZE, RW).unwrap();
    bind(&e.f, e.vm, other, at + PAGE_SIZE, PAGE_SIZE, RW).unwrap();
    let (st, _) = poke(&e, at, 0xfeed);
    assert_eq!(st, 1);
    gem_close(&e.f, bo).unwrap();
    for va in [at, at + 4 * PAGE_SIZE] {
        let (st, _) = poke(&e, va, 0xbad);
        assert_eq!(
            st,
            -libc::EIO,
            "{va:#x}: a write to a closed BO's address faults"
        );
    }
    let (st, _) = poke(&e, at + PAGE_SIZE, 0x1234);
    assert_eq!(st, 1, "other BOs stay mapped");
    assert_eq!(read_u64(&m, 0), 0xfeed, "the memory outlives the handle");
}

// ---------------------------------------------------------------------------------------------
// GEM_BIND_OBJECT (timestamps)

fn bind_object(f: &agx_sim::SimFile, a: &mut drm_asahi_gem_bind_object) -> Result<u32, Errno> {
    io(f, DRM_IOCTL_ASAHI_GEM_BIND_OBJECT, a)?;
    Ok(a.object_handle)
}

fn ts_bind(handle: u32, offset: u64, range: u64) -> drm_asahi_gem_bind_object {
    drm_asahi_gem_bind_object {
        op: DRM_ASAHI_BIND_OBJECT_OP_BIND,
        flags: DRM_ASAHI_BIND_OBJECT_USAGE_TIMESTAMPS,
        handle,
        offset,
        range,
        ..Default::default()
    }
}

fn ts_unbind(object_handle: u32) -> drm_asahi_gem_bind_object {
    drm_asahi_gem_bind_object {
        op: DRM_ASAHI_BIND_OBJECT_OP_UNBIND,
        object_handle,
        ..Default::default()
    }
}

#[test]
fn gem_bind_object_errors() {
    let e = Env::new();
    let bo = gem(&e.f, PAGE_SIZE);
    let cases: Vec<(&str, drm_asahi_gem_bind_object, Errno)> = vec![
        (
            "no usage flag",
            drm_asahi_gem_bind_object {
                flags: 0,
                ..ts_bind(bo, 0, 64)
            },
            Errno::INVAL,
        ),
        (
            "unknown flag",
            drm_asahi_gem_bind_object {
                flags: 3,
                ..ts_bind(bo, 0, 64)
            },
            Errno::INVAL,
        ),
        ("unknown handle", ts_bind(999, 0, 64), Errno::NOENT),
        ("zero range", ts_bind(bo, 0, 0), Errno::INVAL),
        ("past the BO", ts_bind(bo, PAGE_SIZE - 8, 16), Errno::INVAL),
        ("wrapping", ts_bind(bo, u64::MAX - 7, 16), Errno::INVAL),
        ("misaligned", ts_bind(bo, 4, 16), Errno::INVAL),
        (
            "vm_id",
            drm_asahi_gem_bind_object {
                vm_id: e.vm,
                ..ts_bind(bo, 0, 64)
            },
            Errno::INVAL,
        ),
        (
            "pad",
            drm_asahi_gem_bind_object {
                pad: 1,
                ..ts_bind(bo, 0, 64)
            },
            Errno::INVAL,
        ),
        (
            "object_handle in",
            drm_asahi_gem_bind_object {
                object_handle: 5,
                ..ts_bind(bo, 0, 64)
            },
            Errno::INVAL,
        ),
        (
            "unknown op",
            drm_asahi_gem_bind_object {
                op: 2,
                ..ts_bind(bo, 0, 64)
            },
            Errno::INVAL,
        ),
        ("unbind unknown", ts_unbind(777), Errno::NOENT),
    ];
    for (what, mut a, errno) in cases {
        assert_eq!(bind_object(&e.f, &mut a), Err(errno), "{what}");
    }
    let obj = bind_object(&e.f, &mut ts_bind(bo, 64, 64)).unwrap();
    assert_ne!(obj, 0);
    let mut bad = ts_unbind(obj);
    bad.flags = DRM_ASAHI_BIND_OBJECT_USAGE_TIMESTAMPS;
    assert_eq!(
        bind_object(&e.f, &mut bad),
        Err(Errno::INVAL),
        "unbind with flags"
    );
    let mut bad = ts_unbind(obj);
    bad.handle = bo;
    assert_eq!(
        bind_object(&e.f, &mut bad),
        Err(Errno::INVAL),
        "unbind with a handle"
    );
    bind_object(&e.f, &mut ts_unbind(obj)).unwrap();
    assert_eq!(
        bind_object(&e.f, &mut ts_unbind(obj)),
        Err(Errno::NOENT),
        "twice"
    );
}

#[test]
fn timestamps_are_written() {
    let e = Env::new();
    let bo = gem(&e.f, PAGE_SIZE);
    let m = map(&e.f, bo, PAGE_SIZE as usize);
    let obj = bind_object(&e.f, &mut ts_bind(bo, 256, 64)).unwrap();
    let s = e.stream(StreamBuilder::new().spin(2_000_000).fill(DATA, 64, 1));
    // A first command so the GPU clock is not at zero.
    let warm = e
        .submit(
            e.q,
            &[Cmd::compute(e.stream(StreamBuilder::new().spin(1_000_000)))],
        )
        .unwrap();
    wait_ok(&e.f, warm);
    let done = e
        .submit(
            e.q,
            &[
                Cmd::render(s).timestamps(obj, 0, 8),
                Cmd::compute(s).timestamps(obj, 16, 24),
            ],
        )
        .unwrap();
    wait_ok(&e.f, done);
    let freq = global_params(&e.f).command_timestamp_frequency_hz;
    let ticks_2ms = 2_000_000 * freq / 1_000_000_000;
    for base in [256, 256 + 16] {
        let start = read_u64(&m, base);
        let end = read_u64(&m, base + 8);
        assert_ne!(start, 0, "start written");
        assert!(
            end >= start + ticks_2ms,
            "end {end} after start {start} by the spin"
        );
    }
    assert_eq!(read_u64(&m, 0), 0, "nothing outside the object");
    assert_eq!(read_u64(&m, 256 + 32), 0);

    // Submit-time checks on timestamp handles.
    let bad_off = Cmd::render(s).timestamps(obj, 60, 0);
    assert_eq!(
        e.submit(e.q, &[bad_off]),
        Err(Errno::INVAL),
        "offset past the object range"
    );
    assert_eq!(
        e.submit(e.q, &[Cmd::compute(s).timestamps(obj + 99, 0, 8)]),
        Err(Errno::NOENT)
    );
    assert_eq!(
        e.submit(e.q, &[Cmd::compute(s).timestamps(bo, 0, 8)]),
        Err(Errno::NOENT),
        "a BO handle is not a ts object"
    );
    bind_object(&e.f, &mut ts_unbind(obj)).unwrap();
    assert_eq!(
        e.submit(e.q, &[Cmd::compute(s).timestamps(obj, 0, 8)]),
        Err(Errno::NOENT),
        "unbound"
    );
}

// ---------------------------------------------------------------------------------------------
// QUEUE_CREATE / QUEUE_DESTROY / QUEUE_GET_STATE

#[test]
fn queue_create_destroy_errors() {
    let e = Env::new();
    for p in [
        DRM_ASAHI_PRIORITY_LOW,
        DRM_ASAHI_PRIORITY_MEDIUM,
        DRM_ASAHI_PRIORITY_HIGH,
        DRM_ASAHI_PRIORITY_REALTIME,
    ] {
        queue_create(&e.f, e.vm, p).unwrap();
    }
    assert_eq!(queue_create(&e.f, e.vm, 4), Err(Errno::INVAL), "priority");
    assert_eq!(
        queue_create(&e.f, e.vm + 100, 0),
        Err(Errno::NOENT),
        "unknown vm"
    );
    let f2 = e.dev.open();
    assert_eq!(
        queue_create(&f2, e.vm, 0),
        Err(Errno::NOENT),
        "another file's vm"
    );
    let mut a = drm_asahi_queue_create {
        flags: 1,
        vm_id: e.vm,
        ..Default::default()
    };
    assert_eq!(
        io(&e.f, DRM_IOCTL_ASAHI_QUEUE_CREATE, &mut a),
        Err(Errno::INVAL),
        "flags"
    );

    assert_eq!(queue_destroy(&e.f, e.q + 100), Err(Errno::NOENT));
    assert_eq!(
        queue_destroy(&f2, e.q),
        Err(Errno::NOENT),
        "another file's queue"
    );
    let mut a = drm_asahi_queue_destroy {
        queue_id: e.q,
        pad: 1,
    };
    assert_eq!(
        io(&e.f, DRM_IOCTL_ASAHI_QUEUE_DESTROY, &mut a),
        Err(Errno::INVAL)
    );
    // Still usable after the failed destroys.
    let s = e.stream(StreamBuilder::new().store(DATA, 3));
    wait_ok(&e.f, e.submit(e.q, &[Cmd::compute(s)]).unwrap());
    let st = queue_state(&e.f, e.q).unwrap();
    assert_eq!((st.flags, st.reset_count, st.ban_seqno), (0, 0, 0));
    queue_destroy(&e.f, e.q).unwrap();
    assert_eq!(queue_destroy(&e.f, e.q), Err(Errno::NOENT));
    assert_eq!(e.submit(e.q, &[Cmd::compute(s)]), Err(Errno::NOENT));
    assert_eq!(queue_state(&e.f, e.q).unwrap_err(), Errno::NOENT);
    let q2 = e.queue();
    let mut a = ext::drm_asahi_ext_queue_get_state {
        queue_id: q2,
        pad: 1,
        ..Default::default()
    };
    assert_eq!(
        io(&e.f, ext::DRM_IOCTL_ASAHI_EXT_QUEUE_GET_STATE, &mut a),
        Err(Errno::INVAL)
    );
    assert_eq!(queue_state(&f2, q2).unwrap_err(), Errno::NOENT);
}

// ---------------------------------------------------------------------------------------------
// SUBMIT

/// Checks that a rejected submit changed nothing: the out-syncobj has no fence, the result slot
/// was not touched, nothing is pending, and the next good command gets the next seqno.
struct SubmitCheck<'a> {
    e: &'a Env,
    s: u64,
    seq: u64,
}

impl<'a> SubmitCheck<'a> {
    fn new(e: &'a Env) -> Self {
        let s = e.stream(StreamBuilder::new().atomic_add(DATA + 0x800, 1));
        SubmitCheck { e, s, seq: 0 }
    }

    /// A good command with a record in slot 0.
    fn good(&self) -> Cmd {
        let (h, off) = self.e.slot(0);
        Cmd::compute(self.s).info(0, h, off)
    }

    fn reject(
        &mut self,
        what: &str,
        buf: &[u8],
        syncs: &[drm_asahi_sync],
        in_count: u32,
        errno: Errno,
    ) {
        let e = self.e;
        e.res.write(0, &[0xAB; 64]);
        let out = syncobj(&e.f, false);
        let mut all = syncs.to_vec();
        all.push(binary(out));
        assert_eq!(
            submit_raw(&e.f, e.q, buf, &all, in_count),
            Err(errno),
            "{what}"
        );
        assert_eq!(e.dev.pending_commands(), 0, "{what}: nothing queued");
        assert_eq!(
            read_bytes(&e.res, 0, 64),
            [0xAB; 64],
            "{what}: result slot untouched"
        );
        assert_eq!(
            wait(&e.f, &[out], 0),
            Err(Errno::INVAL),
            "{what}: out-sync got no fence"
        );
        self.accept(what);
    }

    fn accept(&mut self, what: &str) {
        let e = self.e;
        let before = read_u64(&e.data, 0x800);
        let done = e.submit(e.q, &[self.good()]).unwrap();
        wait_ok(&e.f, done);
        self.seq += 1;
        let r = e.result(0);
        assert_eq!(r.status, ext::DRM_ASAHI_EXT_STATUS_COMPLETE, "{what}");
        assert_eq!(
            r.seqno, self.seq,
            "{what}: seqno not consumed by the rejected submit"
        );
        assert_eq!(read_u64(&e.data, 0x800), before + 1, "{what}: ran once");
    }
}

#[test]
fn submit_header_and_cmdbuf_errors() {
    let e = Env::new();
    let mut chk = SubmitCheck::new(&e);
    let good = cmdbuf(&[chk.good()]);
    chk.accept("first");

    // flags/pad MBZ, unknown queue, pointers.
    let out = syncobj(&e.f, false);
    let syncs = [binary(out)];
    let base = drm_asahi_submit {
        syncs: syncs.as_ptr() as u64,
        cmdbuf: good.as_ptr() as u64,
        queue_id: e.q,
        in_sync_count: 0,
        out_sync_count: 1,
        cmdbuf_size: good.len() as u32,
        ..Default::default()
    };
    for (what, mut a, errno) in [
        ("flags", drm_asahi_submit { flags: 1, ..base }, Errno::INVAL),
        ("pad", drm_asahi_submit { pad: 1, ..base }, Errno::INVAL),
        (
            "unknown queue",
            drm_asahi_submit {
                queue_id: e.q + 100,
                ..base
            },
            Errno::NOENT,
        ),
        (
            "bad cmdbuf pointer",
            drm_asahi_submit { cmdbuf: 16, ..base },
            Errno::FAULT,
        ),
        (
            "bad syncs pointer",
            drm_asahi_submit { syncs: 16, ..base },
            Errno::FAULT,
        ),
        (
            "empty cmdbuf",
            drm_asahi_submit {
                cmdbuf_size: 0,
                ..base
            },
            Errno::INVAL,
        ),
    ] {
        assert_eq!(
            io(&e.f, DRM_IOCTL_ASAHI_SUBMIT, &mut a),
            Err(errno),
            "{what}"
        );
        assert_eq!(wait(&e.f, &[out], 0), Err(Errno::INVAL), "{what}");
        chk.accept(what);
    }

    // Truncated header; payload past the end; unknown command type.
    chk.reject("truncated header", &good[..4], &[], 0, Errno::INVAL);
    let mut trailing = good.clone();
    trailing.extend_from_slice(&[0; 4]);
    chk.reject("trailing partial header", &trailing, &[], 0, Errno::INVAL);
    chk.reject(
        "payload past the end",
        &good[..good.len() - 8],
        &[],
        0,
        Errno::INVAL,
    );
    let mut unknown = good.clone();
    push_bytes(&mut unknown, 5, 0, NONE, NONE, &[]);
    chk.reject("unknown cmd type", &unknown, &[], 0, Errno::INVAL);
    let mut unknown = Vec::new();
    push_bytes(&mut unknown, 0x7fff, 0, NONE, NONE, &[]);
    unknown.extend_from_slice(&good);
    chk.reject("unknown cmd type first", &unknown, &[], 0, Errno::INVAL);

    // A short render/compute payload is zero-extended: a compute without a stream address
    // reads address 0 (unmapped). A long payload with non-zero tail is rejected.
    let mut long = Vec::new();
    let mut p = bytemuck::bytes_of(&chk.good().compute_payload()).to_vec();
    p.extend_from_slice(&[0, 0, 0, 1]);
    push_bytes(
        &mut long,
        DRM_ASAHI_CMD_COMPUTE,
        p.len() as u16,
        NONE,
        NONE,
        &p,
    );
    chk.reject("long payload, non-zero tail", &long, &[], 0, Errno::INVAL);
    let mut long = Vec::new();
    let mut p = bytemuck::bytes_of(&chk.good().compute_payload()).to_vec();
    p.extend_from_slice(&[0; 8]);
    push_bytes(
        &mut long,
        DRM_ASAHI_CMD_COMPUTE,
        p.len() as u16,
        NONE,
        NONE,
        &p,
    );
    wait_ok(&e.f, submit_buf(&e.f, e.q, &long, &[]).unwrap());
    chk.seq += 1;
    chk.accept("end");
}

#[test]
fn submit_command_errors() {
    let e = Env::new();
    let mut chk = SubmitCheck::new(&e);
    let s = chk.s;

    // Zero hardware commands.
    let mut only_att = Vec::new();
    let att = drm_asahi_attachment {
        pointer: DATA,
        size: 64,
        pad: 0,
        flags: 0,
    };
    push(
        &mut only_att,
        DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS,
        NONE,
        NONE,
        &att,
    );
    chk.reject("no hardware command", &only_att, &[], 0, Errno::INVAL);

    // max_commands_per_submission.
    let max = global_params(&e.f).max_commands_per_submission as usize;
    let noop = e.stream(&mut StreamBuilder::new());
    let many: Vec<Cmd> = (0..max + 1)
        .map(|i| {
            if i % 2 == 0 {
                Cmd::render(noop)
            } else {
                Cmd::compute(noop)
            }
        })
        .collect();
    chk.reject("too many commands", &cmdbuf(&many), &[], 0, Errno::INVAL);
    let (h, _) = e.slot(0);
    let with_info: Vec<Cmd> = many[..max]
        .iter()
        .enumerate()
        .map(|(i, c)| c.clone().info(0, h, 64 * (i as u64 % 32) + 2048))
        .collect();
    let done = submit(&e.f, e.q, &with_info, &[]).unwrap();
    wait_ok(&e.f, done);
    chk.seq += max as u64;
    chk.accept("max commands with job infos");

    // Barrier indices: at most the number of commands of that subqueue before it.
    let c = |render: bool, vdm: u16, cdm: u16| Cmd {
        vdm_barrier: vdm,
        cdm_barrier: cdm,
        ..if render {
            Cmd::render(s)
        } else {
            Cmd::compute(s)
        }
    };
    chk.reject(
        "vdm barrier with no render before",
        &cmdbuf(&[c(false, 1, NONE)]),
        &[],
        0,
        Errno::INVAL,
    );
    chk.reject(
        "cdm barrier with no compute before",
        &cmdbuf(&[c(true, NONE, 1)]),
        &[],
        0,
        Errno::INVAL,
    );
    chk.reject(
        "vdm barrier 2 after one render",
        &cmdbuf(&[c(true, NONE, NONE), c(false, 2, NONE)]),
        &[],
        0,
        Errno::INVAL,
    );
    chk.reject(
        "own-subqueue barrier beyond",
        &cmdbuf(&[c(true, NONE, NONE), c(true, 2, NONE)]),
        &[],
        0,
        Errno::INVAL,
    );
    let ok = cmdbuf(&[c(true, 0, 0), c(false, 1, 0), c(true, 1, 1), c(false, 2, 1)]);
    wait_ok(&e.f, submit_buf(&e.f, e.q, &ok, &[]).unwrap());
    chk.seq += 4;
    chk.accept("good barriers");

    // Render/compute payload checks.
    let mut r = Cmd::render(s);
    r.samples = 3;
    chk.reject("samples 3", &cmdbuf(&[r]), &[], 0, Errno::INVAL);
    for (what, tweak) in [
        (
            "width 0",
            (|p: &mut drm_asahi_cmd_render| p.width_px = 0) as fn(&mut drm_asahi_cmd_render),
        ),
        ("height 0", |p| p.height_px = 0),
        ("layers 0", |p| p.layers = 0),
        ("unknown render flag", |p| p.flags = 1 << 3),
    ] {
        let mut p = Cmd::render(s).render_payload();
        tweak(&mut p);
        let mut buf = Vec::new();
        push(&mut buf, DRM_ASAHI_CMD_RENDER, NONE, NONE, &p);
        chk.reject(what, &buf, &[], 0, Errno::INVAL);
    }
    for samples in [1, 2, 4] {
        let mut r = Cmd::render(s);
        r.samples = samples;
        wait_ok(&e.f, e.submit(e.q, &[r]).unwrap());
        chk.seq += 1;
    }
    let mut p = Cmd::compute(s).compute_payload();
    p.flags = 1;
    let mut buf = Vec::new();
    push(&mut buf, DRM_ASAHI_CMD_COMPUTE, NONE, NONE, &p);
    chk.reject("compute flags", &buf, &[], 0, Errno::INVAL);
    chk.accept("end");
}

#[test]
fn submit_attachment_errors() {
    let e = Env::new();
    let mut chk = SubmitCheck::new(&e);
    let s = chk.s;
    let max = global_params(&e.f).max_attachments as usize;
    let att = drm_asahi_attachment {
        pointer: DATA,
        size: 64,
        pad: 0,
        flags: 0,
    };
    let with = |ty: u16, vdm: u16, cdm: u16, atts: &[drm_asahi_attachment], tail: &[u8]| {
        let mut bytes: Vec<u8> = bytemuck::cast_slice(atts).to_vec();
        bytes.extend_from_slice(tail);
        let mut buf = Vec::new();
        push_bytes(&mut buf, ty, bytes.len() as u16, vdm, cdm, &bytes);
        push_cmd(&mut buf, &Cmd::render(s));
        buf
    };
    for ty in [
        DRM_ASAHI_SET_VERTEX_ATTACHMENTS,
        DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS,
        DRM_ASAHI_SET_COMPUTE_ATTACHMENTS,
    ] {
        chk.reject(
            "vdm barrier",
            &with(ty, 0, NONE, &[att], &[]),
            &[],
            0,
            Errno::INVAL,
        );
        chk.reject(
            "cdm barrier",
            &with(ty, NONE, 0, &[att], &[]),
            &[],
            0,
            Errno::INVAL,
        );
        chk.reject(
            "size not a multiple of 24",
            &with(ty, NONE, NONE, &[att], &[0]),
            &[],
            0,
            Errno::INVAL,
        );
        chk.reject(
            "too many",
            &with(ty, NONE, NONE, &vec![att; max + 1], &[]),
            &[],
            0,
            Errno::INVAL,
        );
        chk.reject(
            "pad",
            &with(
                ty,
                NONE,
                NONE,
                &[drm_asahi_attachment { pad: 1, ..att }],
                &[],
            ),
            &[],
            0,
            Errno::INVAL,
        );
        chk.reject(
            "flags",
            &with(
                ty,
                NONE,
                NONE,
                &[drm_asahi_attachment { flags: 1, ..att }],
                &[],
            ),
            &[],
            0,
            Errno::INVAL,
        );
        wait_ok(
            &e.f,
            submit_buf(&e.f, e.q, &with(ty, NONE, NONE, &vec![att; max], &[]), &[]).unwrap(),
        );
        wait_ok(
            &e.f,
            submit_buf(&e.f, e.q, &with(ty, NONE, NONE, &[], &[]), &[]).unwrap(),
        );
        chk.seq += 2;
        chk.accept("after attachments");
    }
}

#[test]
fn submit_job_info_errors() {
    let e = Env::new();
    let mut chk = SubmitCheck::new(&e);
    let s = chk.s;
    let (h, _) = e.slot(0);
    let info = |flags: u32, reasons: u32, offset: u64| ext::drm_asahi_ext_job_info {
        flags,
        reasons,
        result_handle: h,
        pad: 0,
        result_offset: offset,
    };
    let one = |i: ext::drm_asahi_ext_job_info| cmdbuf(&[Cmd::compute(s).job_info(i)]);
    const RS: u32 = ext::DRM_ASAHI_EXT_JOB_RESTARTABLE;
    const SO: u32 = ext::DRM_ASAHI_EXT_JOB_STATUS_ONLY;
    const TS: u32 = ext::DRM_ASAHI_EXT_JOB_TIMESTAMPS;
    let size = PAGE_SIZE;
    chk.reject(
        "unknown flag",
        &one(info(1 << 3, 0, 0)),
        &[],
        0,
        Errno::INVAL,
    );
    chk.reject(
        "unknown reason",
        &one(info(0, 1 << 8, 0)),
        &[],
        0,
        Errno::INVAL,
    );
    chk.reject(
        "reasons with RESTARTABLE",
        &one(info(RS, ext::DRM_ASAHI_EXT_REASON_ATOMICS, 0)),
        &[],
        0,
        Errno::INVAL,
    );
    chk.reject(
        "STATUS_ONLY with TIMESTAMPS",
        &one(info(SO | TS, 0, 0)),
        &[],
        0,
        Errno::INVAL,
    );
    chk.reject(
        "pad",
        &one(ext::drm_asahi_ext_job_info {
            pad: 1,
            ..info(0, 0, 0)
        }),
        &[],
        0,
        Errno::INVAL,
    );
    chk.reject(
        "misaligned offset",
        &one(info(0, 0, 4)),
        &[],
        0,
        Errno::INVAL,
    );
    chk.reject(
        "default slot past the BO",
        &one(info(0, 0, size - 40)),
        &[],
        0,
        Errno::INVAL,
    );
    chk.reject(
        "timestamps slot past the BO",
        &one(info(TS, 0, size - 48)),
        &[],
        0,
        Errno::INVAL,
    );
    chk.reject(
        "status slot past the BO",
        &one(info(SO, 0, size - 8)),
        &[],
        0,
        Errno::INVAL,
    );
    chk.reject(
        "offset wraps",
        &one(info(0, 0, u64::MAX - 7)),
        &[],
        0,
        Errno::INVAL,
    );
    chk.reject(
        "unknown result handle",
        &one(ext::drm_asahi_ext_job_info {
            result_handle: 999,
            ..info(0, 0, 0)
        }),
        &[],
        0,
        Errno::NOENT,
    );
    let f2 = e.dev.open();
    let theirs: Vec<u32> = (0..30).map(|_| gem(&f2, PAGE_SIZE)).collect();
    let foreign = ext::drm_asahi_ext_job_info {
        result_handle: *theirs.last().unwrap(),
        ..info(0, 0, 0)
    };
    chk.reject(
        "another file's result BO",
        &one(foreign),
        &[],
        0,
        Errno::NOENT,
    );

    // Barriers, sequencing.
    let mut buf = Vec::new();
    push(
        &mut buf,
        ext::DRM_ASAHI_CMD_EXT_JOB_INFO,
        0,
        NONE,
        &info(0, 0, 0),
    );
    push_cmd(&mut buf, &Cmd::compute(s));
    chk.reject("job info with a vdm barrier", &buf, &[], 0, Errno::INVAL);
    let mut buf = Vec::new();
    push(
        &mut buf,
        ext::DRM_ASAHI_CMD_EXT_JOB_INFO,
        NONE,
        0,
        &info(0, 0, 0),
    );
    push_cmd(&mut buf, &Cmd::compute(s));
    chk.reject("job info with a cdm barrier", &buf, &[], 0, Errno::INVAL);
    let mut buf = Vec::new();
    push(
        &mut buf,
        ext::DRM_ASAHI_CMD_EXT_JOB_INFO,
        NONE,
        NONE,
        &info(0, 0, 0),
    );
    push_cmd(&mut buf, &Cmd::compute(s).info(0, h, 0));
    chk.reject("two job infos in a row", &buf, &[], 0, Errno::INVAL);
    let mut buf = cmdbuf(&[Cmd::compute(s)]);
    push(
        &mut buf,
        ext::DRM_ASAHI_CMD_EXT_JOB_INFO,
        NONE,
        NONE,
        &info(0, 0, 0),
    );
    chk.reject("job info at the end", &buf, &[], 0, Errno::INVAL);
    let mut buf = Vec::new();
    let mut p = bytemuck::bytes_of(&info(0, 0, 0)).to_vec();
    p.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    push_bytes(
        &mut buf,
        ext::DRM_ASAHI_CMD_EXT_JOB_INFO,
        32,
        NONE,
        NONE,
        &p,
    );
    push_cmd(&mut buf, &Cmd::compute(s));
    chk.reject(
        "long job info with non-zero tail",
        &buf,
        &[],
        0,
        Errno::INVAL,
    );
    // A job info between attachments and its command still applies to the command.
    let mut buf = Vec::new();
    push(
        &mut buf,
        ext::DRM_ASAHI_CMD_EXT_JOB_INFO,
        NONE,
        NONE,
        &info(0, 0, 0),
    );
    let att = drm_asahi_attachment {
        pointer: DATA,
        size: 64,
        pad: 0,
        flags: 0,
    };
    push(
        &mut buf,
        DRM_ASAHI_SET_COMPUTE_ATTACHMENTS,
        NONE,
        NONE,
        &att,
    );
    push_cmd(&mut buf, &Cmd::compute(s));
    e.res.write(0, &[0xAB; 64]);
    wait_ok(&e.f, submit_buf(&e.f, e.q, &buf, &[]).unwrap());
    chk.seq += 1;
    assert_eq!(e.result(0).status, ext::DRM_ASAHI_EXT_STATUS_COMPLETE);
    assert_eq!(e.result(0).seqno, chk.seq);

    // Slots at the very end of the BO work, and each size writes exactly its bytes.
    for (flags, bytes) in [(SO, 16usize), (0, 48), (TS, 64)] {
        let off = size - bytes as u64;
        e.res.write(off as usize - 8, &vec![0xCD; bytes + 8]);
        wait_ok(
            &e.f,
            submit_buf(&e.f, e.q, &one(info(flags, 0, off)), &[]).unwrap(),
        );
        chk.seq += 1;
        let tail = read_bytes(&e.res, off as usize - 8, bytes + 8);
        assert_eq!(&tail[..8], &[0xCD; 8], "nothing written before the slot");
        let st = u32::from_le_bytes(tail[8..12].try_into().unwrap());
        assert_eq!(st, ext::DRM_ASAHI_EXT_STATUS_COMPLETE);
        if bytes >= 48 {
            assert_eq!(
                u64::from_le_bytes(tail[8 + 16..8 + 24].try_into().unwrap()),
                chk.seq
            );
        }
    }
    // A short (16-byte) job info is zero-extended: result_offset 0.
    let mut buf = Vec::new();
    let short = info(0, 0, 0);
    push_bytes(
        &mut buf,
        ext::DRM_ASAHI_CMD_EXT_JOB_INFO,
        16,
        NONE,
        NONE,
        &bytemuck::bytes_of(&short)[..16],
    );
    push_cmd(&mut buf, &Cmd::compute(s));
    e.res.write(0, &[0xAB; 64]);
    wait_ok(&e.f, submit_buf(&e.f, e.q, &buf, &[]).unwrap());
    chk.seq += 1;
    assert_eq!(e.result(0).seqno, chk.seq);
    // result_handle 0: no record, and valid.
    wait_ok(
        &e.f,
        submit_buf(
            &e.f,
            e.q,
            &one(ext::drm_asahi_ext_job_info {
                result_handle: 0,
                ..info(RS, 0, 4096)
            }),
            &[],
        )
        .unwrap(),
    );
    chk.seq += 1;
    chk.accept("end");
}

#[test]
fn submit_sync_errors() {
    let e = Env::new();
    let mut chk = SubmitCheck::new(&e);
    let buf = cmdbuf(&[chk.good()]);
    let signalled = syncobj(&e.f, true);
    let empty = syncobj(&e.f, false);
    chk.reject(
        "in-sync unknown handle",
        &buf,
        &[binary(999)],
        1,
        Errno::NOENT,
    );
    chk.reject(
        "in-sync without fence",
        &buf,
        &[binary(empty)],
        1,
        Errno::INVAL,
    );
    chk.reject(
        "binary with timeline value",
        &buf,
        &[drm_asahi_sync {
            timeline_value: 1,
            ..binary(signalled)
        }],
        1,
        Errno::INVAL,
    );
    chk.reject(
        "unknown sync type",
        &buf,
        &[drm_asahi_sync {
            sync_type: 2,
            ..binary(signalled)
        }],
        1,
        Errno::INVAL,
    );
    chk.reject(
        "timeline point without fence",
        &buf,
        &[timeline(signalled, 5)],
        1,
        Errno::INVAL,
    );
    chk.reject(
        "out-sync unknown handle",
        &buf,
        &[binary(999)],
        0,
        Errno::NOENT,
    );
    chk.reject(
        "out-sync binary with timeline value",
        &buf,
        &[drm_asahi_sync {
            timeline_value: 3,
            ..binary(empty)
        }],
        0,
        Errno::INVAL,
    );
    let f2 = e.dev.open();
    let theirs: Vec<u32> = (0..40).map(|_| syncobj(&f2, true)).collect();
    chk.reject(
        "another file's syncobj",
        &buf,
        &[binary(*theirs.last().unwrap())],
        1,
        Errno::NOENT,
    );
    // Good in-syncs: a signalled binary, and several out-syncs all signalled.
    let o1 = syncobj(&e.f, false);
    let o2 = syncobj(&e.f, false);
    let tl = syncobj(&e.f, false);
    submit_raw(
        &e.f,
        e.q,
        &buf,
        &[binary(signalled), binary(o1), binary(o2), timeline(tl, 4)],
        1,
    )
    .unwrap();
    chk.seq += 1;
    wait_ok(&e.f, o1);
    wait_ok(&e.f, o2);
    timeline_wait(&e.f, &[tl], &[4], 0, 5000).unwrap();
    assert_eq!(query(&e.f, tl, 0), 4);
    chk.accept("end");
}

#[test]
fn huge_user_arrays_are_enomem_not_an_abort() {
    let e = Env::new();
    let mut chk = SubmitCheck::new(&e);
    let buf = cmdbuf(&[chk.good()]);
    let syncs = [binary(1)];
    let mut a = drm_asahi_submit {
        syncs: syncs.as_ptr() as u64,
        cmdbuf: buf.as_ptr() as u64,
        queue_id: e.q,
        in_sync_count: u32::MAX,
        out_sync_count: u32::MAX,
        cmdbuf_size: buf.len() as u32,
        ..Default::default()
    };
    assert_eq!(io(&e.f, DRM_IOCTL_ASAHI_SUBMIT, &mut a), Err(Errno::NOMEM));
    let o = op(RW, e.data_bo, 0, PAGE_SIZE, 0x200_0000);
    let mut b = drm_asahi_vm_bind {
        vm_id: e.vm,
        num_binds: u32::MAX,
        stride: 1 << 31,
        pad: 0,
        userptr: &o as *const _ as u64,
    };
    assert_eq!(io(&e.f, DRM_IOCTL_ASAHI_VM_BIND, &mut b), Err(Errno::NOMEM));
    // Large but allocatable: the copy from user memory fails.
    let mut b = drm_asahi_vm_bind {
        vm_id: e.vm,
        num_binds: 1 << 20,
        stride: 32,
        pad: 0,
        userptr: &o as *const _ as u64,
    };
    assert_eq!(io(&e.f, DRM_IOCTL_ASAHI_VM_BIND, &mut b), Err(Errno::FAULT));
    let (st, _) = probe(&e, 0x200_0000, 8);
    assert_eq!(st, -libc::EIO, "nothing bound");
    chk.accept("after huge arrays");
}

// ---------------------------------------------------------------------------------------------
// The DRM core: struct sizes, unknown ioctls

#[test]
fn ioctl_sizes_follow_the_drm_core() {
    let e = Env::new();
    let s = e.stream(StreamBuilder::new().store(DATA, 1));
    let done = e.submit(e.q, &[Cmd::compute(s)]).unwrap();
    let handles = [done];
    let nr = ioc_nr(DRM_IOCTL_SYNCOBJ_WAIT);
    // libdrm's 32-byte drm_syncobj_wait (before deadline_nsec) works.
    let old = ioc(IOC_READ | IOC_WRITE, DRM_IOCTL_BASE, nr, 32);
    let a = drm_syncobj_wait {
        handles: handles.as_ptr() as u64,
        timeout_nsec: now_ns() + 5_000_000_000,
        count_handles: 1,
        flags: DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL,
        first_signaled: 77,
        ..Default::default()
    };
    let mut bytes = bytemuck::bytes_of(&a)[..32].to_vec();
    e.f.ioctl(old, &mut bytes).unwrap();
    assert_eq!(
        u32::from_le_bytes(bytes[24..28].try_into().unwrap()),
        0,
        "first_signaled written back"
    );
    // A newer, larger struct works too, and its unknown tail comes back unchanged.
    let new = ioc(IOC_READ | IOC_WRITE, DRM_IOCTL_BASE, nr, 48);
    let mut bytes = bytemuck::bytes_of(&a).to_vec();
    bytes.extend_from_slice(&[0x11; 8]);
    e.f.ioctl(new, &mut bytes).unwrap();
    assert_eq!(&bytes[40..], &[0x11; 8]);
    // A short GEM_CREATE (no handle field) still creates, the handle simply not returned.
    let short = ioc(
        IOC_READ | IOC_WRITE,
        DRM_IOCTL_BASE,
        ioc_nr(DRM_IOCTL_ASAHI_GEM_CREATE),
        12,
    );
    let mut bytes = vec![0u8; 12];
    bytes[..8].copy_from_slice(&PAGE_SIZE.to_le_bytes());
    e.f.ioctl(short, &mut bytes).unwrap();
    // A write-only number gets nothing copied back.
    let wo = ioc(
        IOC_WRITE,
        DRM_IOCTL_BASE,
        ioc_nr(DRM_IOCTL_ASAHI_GEM_CREATE),
        24,
    );
    let mut g = drm_asahi_gem_create {
        size: PAGE_SIZE,
        ..Default::default()
    };
    e.f.ioctl(wo, bytemuck::bytes_of_mut(&mut g)).unwrap();
    assert_eq!(g.handle, 0);
    // The argument length must match the number.
    let mut small = [0u8; 8];
    assert_eq!(
        e.f.ioctl(DRM_IOCTL_ASAHI_GET_TIME, &mut small),
        Err(Errno::FAULT)
    );
}

#[test]
fn unknown_ioctls() {
    let (_d, f) = device();
    let mut buf = [0u8; 16];
    let driver_unknown = ioc(
        IOC_READ | IOC_WRITE,
        DRM_IOCTL_BASE,
        DRM_COMMAND_BASE + 0x1f,
        16,
    );
    assert_eq!(f.ioctl(driver_unknown, &mut buf), Err(Errno::INVAL));
    let driver_past = ioc(
        IOC_READ | IOC_WRITE,
        DRM_IOCTL_BASE,
        DRM_COMMAND_BASE + 11,
        16,
    );
    assert_eq!(f.ioctl(driver_past, &mut buf), Err(Errno::INVAL));
    let core_unknown = ioc(IOC_READ | IOC_WRITE, DRM_IOCTL_BASE, 0x99, 16);
    assert_eq!(f.ioctl(core_unknown, &mut buf), Err(Errno::INVAL));
    let not_drm = ioc(IOC_READ | IOC_WRITE, b'x', DRM_COMMAND_BASE, 16);
    assert_eq!(f.ioctl(not_drm, &mut buf), Err(Errno::NOTTY));
    // DRM_IOCTL_VERSION and GET_CAP answer.
    let mut name = [0u8; 16];
    let mut v = drm_version {
        name: name.as_mut_ptr() as u64,
        name_len: 16,
        ..Default::default()
    };
    io(&f, DRM_IOCTL_VERSION, &mut v).unwrap();
    assert_eq!(&name[..v.name_len as usize], b"asahi");
    let mut c = drm_get_cap {
        capability: DRM_CAP_SYNCOBJ_TIMELINE,
        value: 0,
    };
    io(&f, DRM_IOCTL_GET_CAP, &mut c).unwrap();
    assert_eq!(c.value, 1);
}

// ---------------------------------------------------------------------------------------------
// ENODEV after a firmware crash

#[test]
fn crashed_device_refuses_driver_ioctls() {
    let e = Env::new();
    let q2 = e.queue();
    let bo = gem(&e.f, PAGE_SIZE);
    let obj = bind_object(&e.f, &mut ts_bind(bo, 0, 64)).unwrap();
    let s = e.stream(StreamBuilder::new().store(DATA, 1));
    e.dev.crash_firmware();
    let mut buf = [0u8; 64];
    assert_eq!(get_params(&e.f, 0, &mut buf, 64), Err(Errno::NODEV));
    assert_eq!(ext_params(&e.f).unwrap_err(), Errno::NODEV);
    let mut t = drm_asahi_get_time::default();
    assert_eq!(
        io(&e.f, DRM_IOCTL_ASAHI_GET_TIME, &mut t),
        Err(Errno::NODEV)
    );
    assert_eq!(
        vm_create(&e.f, KERNEL_START, KERNEL_END, 0),
        Err(Errno::NODEV)
    );
    assert_eq!(
        bind(&e.f, e.vm, bo, 0x200_0000, PAGE_SIZE, RW),
        Err(Errno::NODEV)
    );
    assert_eq!(gem_create(&e.f, PAGE_SIZE, 0, 0), Err(Errno::NODEV));
    assert_eq!(mmap_offset(&e.f, bo), Err(Errno::NODEV));
    assert_eq!(
        bind_object(&e.f, &mut ts_bind(bo, 0, 64)),
        Err(Errno::NODEV)
    );
    assert_eq!(bind_object(&e.f, &mut ts_unbind(obj)), Err(Errno::NODEV));
    assert_eq!(queue_create(&e.f, e.vm, 0), Err(Errno::NODEV));
    assert_eq!(e.submit(e.q, &[Cmd::compute(s)]), Err(Errno::NODEV));
    assert_eq!(queue_state(&e.f, e.q).unwrap_err(), Errno::NODEV);
    // Teardown works.
    queue_destroy(&e.f, q2).unwrap();
    assert_eq!(queue_destroy(&e.f, q2), Err(Errno::NOENT));
    gem_close(&e.f, bo).unwrap();
    // DRM core ioctls keep working: sync objects and PRIME.
    let so = syncobj(&e.f, false);
    syncobj_signal(&e.f, &[so]).unwrap();
    wait(&e.f, &[so], 100).unwrap();
    assert_eq!(fence_status(&e.f, so), 1);
    let fd = prime_export(&e.f, e.data_bo).unwrap();
    assert_eq!(prime_import(&e.f, &fd), e.data_bo);
    let mut c = drm_get_cap {
        capability: DRM_CAP_SYNCOBJ,
        value: 0,
    };
    io(&e.f, DRM_IOCTL_GET_CAP, &mut c).unwrap();
    // New files open, and get ENODEV too.
    let f2 = e.dev.open();
    assert_eq!(
        vm_create(&f2, KERNEL_START, KERNEL_END, 0),
        Err(Errno::NODEV)
    );
    vm_destroy(&e.f, e.vm).unwrap();
}
