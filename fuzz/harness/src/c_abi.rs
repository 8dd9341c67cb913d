//! Target `c_abi`: the C ABI (`include/agx_winsys.h`) as a C driver calls it, with arbitrary
//! descriptors, flags, sizes, handles (live, destroyed, of another kind, made up, NULL) and fds,
//! on the simulated device.
//!
//! What the harness keeps to the ABI's contract (anything else would be the harness's bug, not
//! the library's): every non-NULL array pointer points to as many elements as its count says
//! (counts are capped at 16 when the pointer is not NULL); every descriptor is a whole struct
//! (its `struct_size` is fuzzed); fds are the fuzzer's own; `agx_ws_bo_map_fixed` only maps
//! into a range the harness reserved; waits last at most 1 ms; device specs name the simulator
//! (`sim...`), `auto` or `/dev/null`, never arbitrary files.
//!
//! Invariants: no panic crosses the ABI (`AGX_WS_ERR_PANIC` is a finding); every error is a
//! negative errno from the documented set; a call that fails changes nothing: the live handles
//! and the simulated device's state ([`agx_winsys::ffi::sim::debug_state`]) and every command
//! buffer's command count are the same before and after.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_void};

use agx_winsys::ffi::cmd::*;
use agx_winsys::ffi::cmd_desc::*;
use agx_winsys::ffi::device::*;
use agx_winsys::ffi::memory::*;
use agx_winsys::ffi::queue::*;
use agx_winsys::ffi::reset::*;
use agx_winsys::ffi::sim::*;
use agx_winsys::ffi::sync::*;
use agx_winsys::ffi::vulkan::*;
use agx_winsys::ffi::AGX_WS_ERR_PANIC;

use crate::arena::{Arena, Fds, ARENA_LEN};
use crate::input::Input;

/// Errnos the ABI documents.
const ERRNOS: &[c_int] = &[
    libc::EINVAL,
    libc::EBADF,
    libc::ENOENT,
    libc::ENOMEM,
    libc::ENODEV,
    libc::ETIMEDOUT,
    libc::ECANCELED,
    libc::ENOTSUP,
    libc::ENOSPC,
    libc::EFAULT,
    libc::EBUSY,
    libc::EPERM,
    libc::EMFILE,
    libc::ENOTTY,
];

/// Calls per input at most.
const MAX_CALLS: usize = 64;
/// Array elements passed at most behind a non-NULL pointer.
const MAX_ELEMS: u32 = 16;
/// The range reserved for `agx_ws_bo_map_fixed`.
const RESERVED: usize = 16 << 20;

/// Every handle the input made, live or not, by kind.
#[derive(Default)]
struct Handles {
    devices: Vec<*mut agx_ws_device>,
    vms: Vec<*mut agx_ws_vm>,
    bos: Vec<*mut agx_ws_bo>,
    queues: Vec<*mut agx_ws_queue>,
    cmdbufs: Vec<*mut agx_ws_cmdbuf>,
    syncobjs: Vec<*mut agx_ws_syncobj>,
    jobs: Vec<*mut agx_ws_job>,
    trackers: Vec<*mut agx_ws_reset_tracker>,
    vks: Vec<*mut agx_ws_vk_device>,
    streams: Vec<*mut agx_ws_sim_stream>,
}

/// A handle from the fuzzer: mostly one of `v` (live or destroyed), sometimes NULL, a made-up
/// value, or a handle of another kind.
fn pick<T>(inp: &mut Input, v: &[*mut T], other: *mut c_void) -> *mut T {
    let b = inp.u8();
    match b % 8 {
        0 => std::ptr::null_mut(),
        1 => std::ptr::without_provenance_mut(0xdead_0000 | (usize::from(b) << 4)),
        2 => other.cast(),
        _ if v.is_empty() => std::ptr::null_mut(),
        _ => v[usize::from(b) % v.len()],
    }
}

/// A count from the fuzzer, and the elements it stands for (NULL and the raw count, or a
/// pointer to at most [`MAX_ELEMS`] elements made by `f`).
fn array<T>(inp: &mut Input, mut f: impl FnMut(&mut Input) -> T) -> (u32, Option<Vec<T>>) {
    let c = inp.u8();
    if c & 0x80 != 0 {
        // NULL with whatever count: 0 is fine, anything else must be refused.
        let n = if c & 0x40 != 0 { inp.u32() } else { 0 };
        return (n, None);
    }
    let n = u32::from(c) % (MAX_ELEMS + 1);
    (n, Some((0..n).map(|_| f(inp)).collect()))
}

fn ptr<T>(a: &Option<Vec<T>>) -> *const T {
    a.as_ref().map_or(std::ptr::null(), |v| v.as_ptr())
}

/// A struct of the ABI: every byte from the fuzzer, then `fix` sets its pointers (plain
/// integers and pointers only, so any bytes are a valid value).
fn fuzzed<T>(inp: &mut Input) -> T {
    let mut v = MaybeUninit::<T>::zeroed();
    let b = inp.padded(std::mem::size_of::<T>());
    // SAFETY: `b` has exactly size_of::<T>() bytes; every T here is a repr(C) struct of
    // integers and raw pointers, for which any bit pattern is valid (pointers are fixed up by
    // the caller before use).
    unsafe {
        std::ptr::copy_nonoverlapping(b.as_ptr(), v.as_mut_ptr().cast::<u8>(), b.len());
        v.assume_init()
    }
}

/// `struct_size`: right most of the time.
fn size_field<T>(inp: &mut Input) -> u32 {
    let s = std::mem::size_of::<T>() as u32;
    match inp.u8() % 8 {
        0 => 0,
        1 => s + 8,
        2 => s.wrapping_sub(8),
        _ => s,
    }
}

fn range(inp: &mut Input) -> agx_ws_range {
    agx_ws_range {
        base: inp.u64() % (1 << 40),
        size: u64::from(inp.u32()),
    }
}

fn timeout(inp: &mut Input) -> u64 {
    u64::from(inp.u32()) % 1_000_000
}

/// Keeps every descriptor a call points to alive until the call returns. Boxed where a pointer
/// to an element is taken while the vector may still grow (a box does not move).
#[derive(Default)]
#[allow(clippy::vec_box)]
struct Keep {
    ranges: Vec<Option<Vec<agx_ws_range>>>,
    colors: Vec<Option<Vec<agx_ws_color_attachment>>>,
    ds: Vec<Box<agx_ws_ds_attachment>>,
    shader: Vec<Option<Vec<agx_ws_shader_access>>>,
    queries: Vec<Option<Vec<agx_ws_occlusion_query>>>,
    xfbs: Vec<Option<Vec<agx_ws_xfb>>>,
    dispatches: Vec<Option<Vec<agx_ws_dispatch>>>,
    render_access: Vec<Box<agx_ws_render_access>>,
    compute_access: Vec<Box<agx_ws_compute_access>>,
}

impl Keep {
    fn ranges(&mut self, inp: &mut Input) -> (u32, *const agx_ws_range) {
        let (n, a) = array(inp, range);
        let p = ptr(&a);
        self.ranges.push(a);
        (n, p)
    }
}

fn render_desc(inp: &mut Input, k: &mut Keep) -> agx_ws_render_desc {
    let mut d: agx_ws_render_desc = fuzzed(inp);
    d.struct_size = size_field::<agx_ws_render_desc>(inp);
    (d.vertex_attachment_count, d.vertex_attachments) = k.ranges(inp);
    (d.fragment_attachment_count, d.fragment_attachments) = k.ranges(inp);
    d.access = std::ptr::null();
    if inp.u8() & 1 == 1 {
        let mut a: agx_ws_render_access = fuzzed(inp);
        a.struct_size = size_field::<agx_ws_render_access>(inp);
        let (n, colors) = array(inp, |i| {
            let mut c: agx_ws_color_attachment = fuzzed(i);
            c.range = range(i);
            c
        });
        (a.color_count, a.colors) = (n, ptr(&colors));
        k.colors.push(colors);
        for slot in [&mut a.depth, &mut a.stencil] {
            *slot = if inp.u8() & 1 == 1 {
                let mut d: agx_ws_ds_attachment = fuzzed(inp);
                d.range = range(inp);
                k.ds.push(Box::new(d));
                &**k.ds.last().expect("pushed")
            } else {
                std::ptr::null()
            };
        }
        let (n, s) = array(inp, |i| {
            let mut s: agx_ws_shader_access = fuzzed(i);
            s.range = range(i);
            s
        });
        (a.shader_access_count, a.shader_accesses) = (n, ptr(&s));
        k.shader.push(s);
        let (n, q) = array(inp, |i| {
            let mut q: agx_ws_occlusion_query = fuzzed(i);
            q.range = range(i);
            q
        });
        (a.occlusion_query_count, a.occlusion_queries) = (n, ptr(&q));
        k.queries.push(q);
        let (n, x) = array(inp, |i| {
            let mut x: agx_ws_xfb = fuzzed(i);
            x.buffer = range(i);
            x.counter = range(i);
            x
        });
        (a.xfb_count, a.xfbs) = (n, ptr(&x));
        k.xfbs.push(x);
        (a.timestamp_count, a.timestamps) = k.ranges(inp);
        k.render_access.push(Box::new(a));
        d.access = &**k.render_access.last().expect("pushed");
    }
    d
}

fn compute_desc(inp: &mut Input, k: &mut Keep) -> agx_ws_compute_desc {
    let mut d: agx_ws_compute_desc = fuzzed(inp);
    d.struct_size = size_field::<agx_ws_compute_desc>(inp);
    (d.attachment_count, d.attachments) = k.ranges(inp);
    d.access = std::ptr::null();
    if inp.u8() & 1 == 1 {
        let mut a: agx_ws_compute_access = fuzzed(inp);
        a.struct_size = size_field::<agx_ws_compute_access>(inp);
        let mut lists = Vec::new();
        let (n, ds) = array(inp, |i| {
            let mut x: agx_ws_dispatch = fuzzed(i);
            let mut l = |i: &mut Input| {
                let (n, a) = array(i, range);
                let p = ptr(&a);
                lists.push(a);
                (n, p)
            };
            (x.read_count, x.reads) = l(i);
            (x.write_count, x.writes) = l(i);
            (x.read_write_count, x.read_writes) = l(i);
            (x.atomic_count, x.atomics) = l(i);
            (x.overwrite_count, x.overwrites) = l(i);
            x
        });
        k.ranges.extend(lists);
        (a.dispatch_count, a.dispatches) = (n, ptr(&ds));
        k.dispatches.push(ds);
        k.compute_access.push(Box::new(a));
        d.access = &**k.compute_access.last().expect("pushed");
    }
    d
}

/// The state a failing call must leave as it was.
fn snapshot(h: &Handles) -> (Option<String>, Vec<u32>) {
    let state = h.devices.first().and_then(|&d| debug_state(d));
    let counts = h
        .cmdbufs
        .iter()
        .map(|&c| {
            let mut n = u32::MAX;
            // SAFETY: a handle (possibly dead) and a valid out-pointer.
            unsafe { agx_ws_cmdbuf_get_count(c, &mut n) };
            n
        })
        .collect();
    (state, counts)
}

/// A range of the address space kept for `agx_ws_bo_map_fixed`: inaccessible, and only ever
/// replaced by the BO mapping the call makes (and put back after).
struct Reserved(*mut c_void);

impl Reserved {
    fn new() -> Reserved {
        // SAFETY: a fresh anonymous PROT_NONE mapping where the kernel chooses.
        let p = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                RESERVED,
                rustix::mm::ProtFlags::empty(),
                rustix::mm::MapFlags::PRIVATE | rustix::mm::MapFlags::NORESERVE,
            )
        }
        .expect("reserve");
        Reserved(p)
    }

    /// Puts the reservation back over the whole range (after a fixed mapping was unmapped).
    fn restore(&self) {
        // SAFETY: the range is ours (reserved by `new`); nothing but the harness's own fixed
        // BO mapping, already gone, was ever placed in it.
        unsafe {
            rustix::mm::mmap_anonymous(
                self.0,
                RESERVED,
                rustix::mm::ProtFlags::empty(),
                rustix::mm::MapFlags::PRIVATE
                    | rustix::mm::MapFlags::NORESERVE
                    | rustix::mm::MapFlags::FIXED,
            )
        }
        .expect("re-reserve");
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        // SAFETY: our reservation.
        let _ = unsafe { rustix::mm::munmap(self.0, RESERVED) };
    }
}

unsafe extern "C" fn on_reset(_user: *mut c_void, _status: u32) {}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let mut h = Handles::default();
    let mut fds = Fds::new();
    let arena = Arena::new();
    let reserved = Reserved::new();
    // A device to start from: the simulated GPU, with fuzzed options.
    let opts = [
        "sim",
        "sim:policy=kill-inflight",
        "sim:policy=continue",
        "sim:upstream",
    ];
    let spec = CString::new(opts[inp.u8() as usize % opts.len()]).expect("no NUL");
    let mut dev = std::ptr::null_mut();
    // SAFETY: a NUL-terminated spec and a valid out-pointer.
    let r = unsafe { agx_ws_device_open(spec.as_ptr(), &mut dev) };
    assert_eq!(r, 0, "opening the simulated device");
    h.devices.push(dev);

    for _ in 0..MAX_CALLS {
        if inp.is_empty() {
            break;
        }
        let op = inp.u8();
        let before = snapshot(&h);
        // A live handle of some kind, for the "wrong kind" picks.
        let other: *mut c_void = h
            .jobs
            .first()
            .map(|p| p.cast())
            .or_else(|| h.bos.first().map(|p| p.cast()))
            .unwrap_or(std::ptr::null_mut());
        let mut k = Keep::default();
        // SAFETY: every call below follows the ABI's contract as the module documentation says:
        // handles are tokens (any value is safe), out-pointers point to locals, arrays and
        // descriptors are whole and alive for the call, fds are the harness's own.
        let r: c_int = unsafe {
            match op % 48 {
                0 => {
                    let prefix = ["sim:", "sim", "auto", "/dev/null", ""][inp.u8() as usize % 5];
                    let n = inp_len(&mut inp, 48);
                    let tail: Vec<u8> = inp.bytes(n).iter().copied().filter(|&b| b != 0).collect();
                    let mut s = prefix.as_bytes().to_vec();
                    if prefix.starts_with("sim") {
                        s.extend(tail);
                    }
                    let s = CString::new(s).expect("no NUL");
                    let mut d = std::ptr::null_mut();
                    let r = agx_ws_device_open(s.as_ptr(), &mut d);
                    if r == 0 {
                        h.devices.push(d);
                    }
                    r
                }
                1 => {
                    let mut d = std::ptr::null_mut();
                    let r = agx_ws_device_open_fd(fds.pick(inp.u8() as i32 - 2), &mut d);
                    if r == 0 {
                        h.devices.push(d);
                    }
                    r
                }
                2 => {
                    let d = pick(&mut inp, &h.devices, other);
                    // The first device is the one whose state is checked: kept alive.
                    if h.devices.first() == Some(&d) {
                        0
                    } else {
                        agx_ws_device_destroy(d)
                    }
                }
                3 => {
                    let mut p: agx_ws_params = MaybeUninit::zeroed().assume_init();
                    p.struct_size = size_field::<agx_ws_params>(&mut inp);
                    agx_ws_device_get_params(pick(&mut inp, &h.devices, other), &mut p)
                }
                4 => {
                    let mut t = 0;
                    agx_ws_device_get_gpu_time(pick(&mut inp, &h.devices, other), &mut t)
                }
                5 => {
                    let mut v = std::ptr::null_mut();
                    let r = agx_ws_vm_create(pick(&mut inp, &h.devices, other), &mut v);
                    if r == 0 {
                        h.vms.push(v);
                    }
                    r
                }
                6 => agx_ws_vm_destroy(pick(&mut inp, &h.vms, other)),
                7 => {
                    let (vm, bo) = (pick(&mut inp, &h.vms, other), pick(&mut inp, &h.bos, other));
                    let mut va = 0;
                    agx_ws_vm_bind(vm, bo, inp.u32(), inp.u32(), &mut va)
                }
                8 => {
                    let (vm, bo) = (pick(&mut inp, &h.vms, other), pick(&mut inp, &h.bos, other));
                    agx_ws_vm_bind_at(vm, bo, inp.u64(), inp.u64(), inp.u64(), inp.u32())
                }
                9 => agx_ws_vm_unbind(pick(&mut inp, &h.vms, other), inp.u64()),
                10 => {
                    let d = pick(&mut inp, &h.devices, other);
                    let size = match inp.u8() % 4 {
                        0 => inp.u64(),
                        _ => u64::from(inp.u32()) % (8 << 20),
                    };
                    let flags = inp.u32();
                    let vm = if inp.u8() & 1 == 1 {
                        pick(&mut inp, &h.vms, other)
                    } else {
                        std::ptr::null_mut()
                    };
                    let mut b = std::ptr::null_mut();
                    let r = agx_ws_bo_create(d, size, flags, vm, &mut b);
                    if r == 0 {
                        h.bos.push(b);
                    }
                    r
                }
                11 => agx_ws_bo_destroy(pick(&mut inp, &h.bos, other)),
                12 => {
                    let (mut p, mut n) = (std::ptr::null_mut(), 0);
                    agx_ws_bo_map(pick(&mut inp, &h.bos, other), &mut p, &mut n)
                }
                13 => {
                    let mut fd = -1;
                    let r = agx_ws_bo_export(pick(&mut inp, &h.bos, other), &mut fd);
                    if r == 0 {
                        fds.adopt(fd);
                    }
                    r
                }
                14 => {
                    let d = pick(&mut inp, &h.devices, other);
                    let mut b = std::ptr::null_mut();
                    let r = agx_ws_bo_import(d, fds.pick(inp.u8() as i32 - 2), &mut b);
                    if r == 0 {
                        h.bos.push(b);
                    }
                    r
                }
                15 => map_fixed(&mut inp, &h, &reserved),
                16 => {
                    let d = pick(&mut inp, &h.devices, other);
                    let mut fd = -1;
                    let r = agx_ws_dmabuf_export_sync_file(
                        d,
                        fds.pick(inp.u8() as i32 - 2),
                        inp.u32(),
                        &mut fd,
                    );
                    if r == 0 {
                        fds.adopt(fd);
                    }
                    r
                }
                17 => {
                    let d = pick(&mut inp, &h.devices, other);
                    let (a, b) = (fds.pick(inp.u8() as i32 - 2), fds.pick(inp.u8() as i32 - 2));
                    agx_ws_dmabuf_import_sync_file(d, a, inp.u32(), b)
                }
                18 => {
                    let mut q = std::ptr::null_mut();
                    let r = agx_ws_queue_create(pick(&mut inp, &h.vms, other), inp.u32(), &mut q);
                    if r == 0 {
                        h.queues.push(q);
                    }
                    r
                }
                19 => agx_ws_queue_destroy(pick(&mut inp, &h.queues, other)),
                20 => {
                    let q = pick(&mut inp, &h.queues, other);
                    let c = pick(&mut inp, &h.cmdbufs, other);
                    let mut sp = |i: &mut Input| agx_ws_sync_point {
                        syncobj: pick(i, &h.syncobjs, other),
                        point: u64::from(i.u8()),
                    };
                    let (wn, waits) = array(&mut inp, &mut sp);
                    let (sn, signals) = array(&mut inp, &mut sp);
                    let info = agx_ws_submit_info {
                        struct_size: size_field::<agx_ws_submit_info>(&mut inp),
                        wait_count: wn,
                        waits: ptr(&waits),
                        signal_count: sn,
                        pad: u32::from(inp.u8() == 0xff),
                        signals: ptr(&signals),
                    };
                    let info_ptr = if inp.u8() == 0xfe {
                        std::ptr::null()
                    } else {
                        &info
                    };
                    let mut j = std::ptr::null_mut();
                    let r = agx_ws_queue_submit(q, c, info_ptr, &mut j);
                    if r == 0 {
                        h.jobs.push(j);
                    }
                    r
                }
                21 => agx_ws_queue_wait_idle(pick(&mut inp, &h.queues, other), timeout(&mut inp)),
                22 => {
                    let mut s: agx_ws_queue_state = MaybeUninit::zeroed().assume_init();
                    s.struct_size = size_field::<agx_ws_queue_state>(&mut inp);
                    agx_ws_queue_get_state(pick(&mut inp, &h.queues, other), &mut s)
                }
                23 => {
                    let j = pick(&mut inp, &h.jobs, other);
                    let mut o: agx_ws_job_outcome = MaybeUninit::zeroed().assume_init();
                    o.struct_size = size_field::<agx_ws_job_outcome>(&mut inp);
                    let t = timeout(&mut inp);
                    agx_ws_job_wait(j, t, &mut o)
                }
                24 => {
                    let mut fd = -1;
                    let r = agx_ws_job_export_sync_file(pick(&mut inp, &h.jobs, other), &mut fd);
                    if r == 0 {
                        fds.adopt(fd);
                    }
                    r
                }
                25 => agx_ws_job_destroy(pick(&mut inp, &h.jobs, other)),
                26 => {
                    let mut c = std::ptr::null_mut();
                    let r = agx_ws_cmdbuf_create(pick(&mut inp, &h.devices, other), &mut c);
                    if r == 0 {
                        h.cmdbufs.push(c);
                    }
                    r
                }
                27 => agx_ws_cmdbuf_destroy(pick(&mut inp, &h.cmdbufs, other)),
                28 => agx_ws_cmdbuf_reset(pick(&mut inp, &h.cmdbufs, other)),
                29 => {
                    let c = pick(&mut inp, &h.cmdbufs, other);
                    let d = render_desc(&mut inp, &mut k);
                    let mut i = 0;
                    agx_ws_cmdbuf_add_render(c, &d, &mut i)
                }
                30 => {
                    let c = pick(&mut inp, &h.cmdbufs, other);
                    let d = compute_desc(&mut inp, &mut k);
                    let mut i = 0;
                    agx_ws_cmdbuf_add_compute(c, &d, &mut i)
                }
                31 => {
                    let mut r = 0;
                    agx_ws_cmdbuf_get_reasons(pick(&mut inp, &h.cmdbufs, other), inp.u32(), &mut r)
                }
                32 => {
                    let mut n = 0;
                    agx_ws_cmdbuf_get_count(pick(&mut inp, &h.cmdbufs, other), &mut n)
                }
                33 => {
                    let mut s = std::ptr::null_mut();
                    let r =
                        agx_ws_syncobj_create(pick(&mut inp, &h.devices, other), inp.u32(), &mut s);
                    if r == 0 {
                        h.syncobjs.push(s);
                    }
                    r
                }
                34 => agx_ws_syncobj_destroy(pick(&mut inp, &h.syncobjs, other)),
                35 => {
                    let mut s = std::ptr::null_mut();
                    let d = pick(&mut inp, &h.devices, other);
                    let r = agx_ws_syncobj_wrap(d, u32::from(inp.u8()), &mut s);
                    if r == 0 {
                        h.syncobjs.push(s);
                    }
                    r
                }
                36 => {
                    let mut v = 0;
                    agx_ws_syncobj_get_handle(pick(&mut inp, &h.syncobjs, other), &mut v)
                }
                37 => {
                    agx_ws_syncobj_signal(pick(&mut inp, &h.syncobjs, other), u64::from(inp.u8()))
                }
                38 => agx_ws_syncobj_reset(pick(&mut inp, &h.syncobjs, other)),
                39 => {
                    let mut v = 0;
                    agx_ws_syncobj_query(pick(&mut inp, &h.syncobjs, other), inp.u32(), &mut v)
                }
                40 => {
                    let (d, s) = (
                        pick(&mut inp, &h.syncobjs, other),
                        pick(&mut inp, &h.syncobjs, other),
                    );
                    agx_ws_syncobj_transfer(d, u64::from(inp.u8()), s, u64::from(inp.u8()))
                }
                41 => {
                    let s = pick(&mut inp, &h.syncobjs, other);
                    agx_ws_syncobj_wait(s, u64::from(inp.u8()), timeout(&mut inp), inp.u32())
                }
                42 => {
                    let d = pick(&mut inp, &h.devices, other);
                    let (n, pts) = array(&mut inp, |i| agx_ws_sync_point {
                        syncobj: pick(i, &h.syncobjs, other),
                        point: u64::from(i.u8()),
                    });
                    let mut first = 0;
                    agx_ws_syncobj_wait_many(
                        d,
                        ptr(&pts),
                        n,
                        timeout(&mut inp),
                        inp.u32(),
                        &mut first,
                    )
                }
                43 => {
                    let mut fd = -1;
                    let s = pick(&mut inp, &h.syncobjs, other);
                    let r = agx_ws_syncobj_export_sync_file(s, u64::from(inp.u8()), &mut fd);
                    if r == 0 {
                        fds.adopt(fd);
                    }
                    r
                }
                44 => {
                    let s = pick(&mut inp, &h.syncobjs, other);
                    agx_ws_syncobj_import_sync_file(
                        s,
                        fds.pick(inp.u8() as i32 - 2),
                        u64::from(inp.u8()),
                    )
                }
                45 => {
                    let mut st = 0;
                    agx_ws_syncobj_status(
                        pick(&mut inp, &h.syncobjs, other),
                        u64::from(inp.u8()),
                        &mut st,
                    )
                }
                46 => {
                    let mut st = 0;
                    let d = pick(&mut inp, &h.devices, other);
                    agx_ws_sync_file_status(d, fds.pick(inp.u8() as i32 - 2), &mut st)
                }
                _ => misc(&mut inp, &mut h, other, &arena),
            }
        };
        crate::trace(|| format!("op {}: {r}", op % 48));
        assert_ne!(r, AGX_WS_ERR_PANIC, "a panic reached the C ABI (op {op})");
        if r < 0 {
            assert!(
                ERRNOS.contains(&-r),
                "op {op}: error {r} is not a documented errno"
            );
            let after = snapshot(&h);
            assert!(
                before == after,
                "op {op}: failed with {r} but changed state:\n{before:?}\n{after:?}"
            );
        }
        drop(k);
    }
    // Destroy everything, children first; errors (dead handles) are fine.
    // SAFETY: handles are tokens; destroying a dead one is -EBADF.
    unsafe {
        for &j in &h.jobs {
            agx_ws_job_destroy(j);
        }
        for &c in &h.cmdbufs {
            agx_ws_cmdbuf_destroy(c);
        }
        for &q in &h.queues {
            agx_ws_queue_destroy(q);
        }
        for &s in &h.syncobjs {
            agx_ws_syncobj_destroy(s);
        }
        for &b in &h.bos {
            agx_ws_bo_destroy(b);
        }
        for &v in &h.vms {
            agx_ws_vm_destroy(v);
        }
        for &t in &h.trackers {
            agx_ws_reset_tracker_destroy(t);
        }
        for &v in &h.vks {
            agx_ws_vk_device_destroy(v);
        }
        for &s in &h.streams {
            agx_ws_sim_stream_destroy(s);
        }
        for &d in &h.devices {
            agx_ws_device_destroy(d);
        }
    }
}

fn inp_len(inp: &mut Input, max: u8) -> usize {
    usize::from(inp.u8() % max)
}

/// `agx_ws_bo_map_fixed` into the reserved range: a fresh BO of fuzzed size and flags, mapped at
/// a fuzzed (possibly unaligned) address whose whole range is reserved, then destroyed and the
/// reservation put back. The call's own result is checked here, between the harness's BO
/// creation and destruction (which change the state themselves); returns 0.
unsafe fn map_fixed(inp: &mut Input, h: &Handles, reserved: &Reserved) -> c_int {
    let Some(&dev) = h.devices.first() else {
        return 0;
    };
    let size = u64::from(inp.u32()) % (8 << 20) + 1;
    let mut bo = std::ptr::null_mut();
    // SAFETY: a valid out-pointer.
    if unsafe { agx_ws_bo_create(dev, size, inp.u32() & 3, std::ptr::null_mut(), &mut bo) } != 0 {
        return 0;
    }
    // At most 8 MiB in: the BO (at most 8 MiB, rounded up to a page) fits in the 16 MiB range.
    let off = (inp.u32() as usize) % (8 << 20);
    let addr = if inp.u8() & 1 == 1 {
        reserved.0.wrapping_byte_add(off)
    } else {
        reserved.0.wrapping_byte_add(off & !0x3fff)
    };
    let mut out = std::ptr::null_mut();
    let before = snapshot(h);
    // SAFETY: `[addr, addr + size)` lies in the reservation, which holds no Rust object.
    let r = unsafe { agx_ws_bo_map_fixed(bo, addr, &mut out) };
    assert_ne!(
        r, AGX_WS_ERR_PANIC,
        "a panic reached the C ABI (bo_map_fixed)"
    );
    if r < 0 {
        assert!(
            ERRNOS.contains(&-r),
            "bo_map_fixed: error {r} is not a documented errno"
        );
        assert!(
            before == snapshot(h),
            "bo_map_fixed failed with {r} but changed state"
        );
    } else {
        assert_eq!(out, addr, "mapped where asked");
    }
    // SAFETY: our BO.
    unsafe { agx_ws_bo_destroy(bo) };
    reserved.restore();
    0
}

/// Reset trackers, the Vulkan state, the simulator's controls and its stream builder.
unsafe fn misc(inp: &mut Input, h: &mut Handles, other: *mut c_void, arena: &Arena) -> c_int {
    // SAFETY: as in `run`.
    unsafe {
        match inp.u8() % 24 {
            0 => {
                let mut t = std::ptr::null_mut();
                let r = agx_ws_reset_tracker_create(&mut t);
                if r == 0 {
                    h.trackers.push(t);
                }
                r
            }
            1 => agx_ws_reset_tracker_destroy(pick(inp, &h.trackers, other)),
            2 => agx_ws_reset_tracker_observe(pick(inp, &h.trackers, other), inp.u32()),
            3 => agx_ws_reset_tracker_observe_queue(
                pick(inp, &h.trackers, other),
                pick(inp, &h.queues, other),
            ),
            4 => {
                let mut s = 0;
                agx_ws_reset_tracker_get_status(pick(inp, &h.trackers, other), &mut s)
            }
            5 => {
                let mut l = false;
                agx_ws_reset_tracker_is_lost(pick(inp, &h.trackers, other), &mut l)
            }
            6 => {
                let cb: agx_ws_reset_callback = if inp.u8() & 1 == 1 {
                    Some(on_reset)
                } else {
                    None
                };
                agx_ws_reset_tracker_set_callback(
                    pick(inp, &h.trackers, other),
                    cb,
                    std::ptr::null_mut(),
                )
            }
            7 => agx_ws_queue_set_reset_tracker(
                pick(inp, &h.queues, other),
                pick(inp, &h.trackers, other),
            ),
            8 => {
                let mut v = std::ptr::null_mut();
                let r = agx_ws_vk_device_create(&mut v);
                if r == 0 {
                    h.vks.push(v);
                }
                r
            }
            9 => agx_ws_vk_device_destroy(pick(inp, &h.vks, other)),
            10 => {
                let mut vr = 0;
                let (v, j) = (pick(inp, &h.vks, other), pick(inp, &h.jobs, other));
                agx_ws_vk_device_wait_job(
                    v,
                    j,
                    inp.u64(),
                    u64::from(inp.u32()) % 1_000_000,
                    &mut vr,
                )
            }
            11 => {
                let mut vr = 0;
                agx_ws_vk_device_observe_submit_error(
                    pick(inp, &h.vks, other),
                    inp.u32() as i32,
                    inp.u64(),
                    &mut vr,
                )
            }
            12 => {
                let mut vr = 0;
                agx_ws_vk_device_check_status(pick(inp, &h.vks, other), &mut vr)
            }
            13 => {
                let v = pick(inp, &h.vks, other);
                let mut c: agx_ws_fault_counts = MaybeUninit::zeroed().assume_init();
                c.struct_size = size_field::<agx_ws_fault_counts>(inp);
                c.address_info_count = u32::from(inp.u8()) % 4;
                c.vendor_info_count = u32::from(inp.u8()) % 4;
                let mut addrs: Vec<agx_ws_fault_address_info> = (0..4)
                    .map(|_| MaybeUninit::zeroed().assume_init())
                    .collect();
                let mut vendor: Vec<agx_ws_fault_vendor_info> = (0..4)
                    .map(|_| MaybeUninit::zeroed().assume_init())
                    .collect();
                let mut info: agx_ws_fault_info = MaybeUninit::zeroed().assume_init();
                info.struct_size = size_field::<agx_ws_fault_info>(inp);
                info.address_infos = addrs.as_mut_ptr();
                info.vendor_infos = vendor.as_mut_ptr();
                let with_info = inp.u8() & 1 == 1;
                agx_ws_vk_device_get_fault_info(
                    v,
                    &mut c,
                    if with_info {
                        &mut info
                    } else {
                        std::ptr::null_mut()
                    },
                )
            }
            14 => {
                let mut d = std::ptr::null_mut();
                let r = agx_ws_sim_open_peer(pick(inp, &h.devices, other), &mut d);
                if r == 0 {
                    h.devices.push(d);
                }
                r
            }
            15 => agx_ws_sim_hold(pick(inp, &h.devices, other)),
            16 => agx_ws_sim_release(pick(inp, &h.devices, other)),
            17 => agx_ws_sim_crash_firmware(pick(inp, &h.devices, other)),
            18 => agx_ws_sim_inject(pick(inp, &h.queues, other), inp.u32(), u64::from(inp.u32())),
            19 => {
                let mut s = std::ptr::null_mut();
                let r = agx_ws_sim_stream_create(&mut s);
                if r == 0 {
                    h.streams.push(s);
                }
                r
            }
            20 => {
                let s = pick(inp, &h.streams, other);
                let (a, b, c) = (inp.u64(), inp.u64(), inp.u64());
                match inp.u8() % 8 {
                    0 => agx_ws_sim_stream_fill(s, a, b % (1 << 20), c as u32),
                    1 => agx_ws_sim_stream_copy(s, a, b, c % (1 << 20)),
                    2 => agx_ws_sim_stream_rmw(s, a, b, c % (1 << 20), inp.u32()),
                    3 => agx_ws_sim_stream_atomic_add(s, a, b),
                    4 => agx_ws_sim_stream_load(s, a, b % (1 << 20)),
                    5 => agx_ws_sim_stream_store(s, a, b),
                    6 => agx_ws_sim_stream_spin(s, a % 1_000_000),
                    _ => agx_ws_sim_stream_hang(s),
                }
            }
            21 => {
                let mut n = 0;
                agx_ws_sim_stream_get_size(pick(inp, &h.streams, other), &mut n)
            }
            22 => {
                let s = pick(inp, &h.streams, other);
                let cap = u64::from(inp.u16()) % ARENA_LEN as u64;
                let mut n = 0;
                // Into the arena, whose `cap` bytes from its start are writable.
                agx_ws_sim_stream_write(s, arena.addr() as *mut c_void, cap, &mut n)
            }
            _ => agx_ws_sim_stream_destroy(pick(inp, &h.streams, other)),
        }
    }
}

/// Seed sessions (see [`crate::seeds`]): objects made and used the way a driver would, and the
/// entry points added for Mesa (an fd of its own, a wrapped syncobj, a fixed map, dma-buf
/// implicit sync).
pub fn seeds() -> Vec<Vec<u8>> {
    use crate::input::Writer;
    let live = 3u8; // `pick`: the first handle of the kind
    let mut basic = Writer::default();
    basic.u8(0);
    basic.u8(5).u8(live); // vm_create
    basic.u8(10).u8(live).u8(1).u32(64 << 10).u32(0).u8(0); // bo_create
    basic.u8(7).u8(live).u8(live).u32(3).u32(0); // vm_bind
    basic.u8(18).u8(live).u32(1); // queue_create
    basic.u8(26).u8(live); // cmdbuf_create
    basic.u8(33).u8(live).u32(0); // syncobj_create
    basic.u8(30).u8(live); // add_compute
    basic
        .raw(&[0; std::mem::size_of::<agx_ws_compute_desc>()])
        .u8(3)
        .u8(0)
        .u8(0);
    basic
        .u8(20)
        .u8(live)
        .u8(live)
        .u8(0)
        .u8(1)
        .u8(live)
        .u8(0)
        .u8(3)
        .u8(0)
        .u8(0); // submit
    basic.u8(23).u8(live).u8(3).u32(500_000); // job_wait
    basic.u8(43).u8(live).u8(0); // syncobj_export_sync_file
    basic.u8(46).u8(live).u8(7); // sync_file_status
    let mut mesa = Writer::default();
    mesa.u8(1);
    mesa.u8(1).u8(2); // device_open_fd on a pipe: not a DRM device
    mesa.u8(15).u32(64 << 10).u32(0).u32(0).u8(0); // bo_map_fixed
    mesa.u8(15).u32(64 << 10).u32(0).u32(12345).u8(1); // ... unaligned
    mesa.u8(33).u8(live).u32(1); // syncobj_create signalled
    mesa.u8(36).u8(live); // get_handle
    mesa.u8(35).u8(live).u8(1); // syncobj_wrap handle 1
    mesa.u8(10).u8(live).u8(1).u32(16 << 10).u32(0).u8(0); // bo_create
    mesa.u8(13).u8(live); // bo_export: a dma-buf fd
    mesa.u8(16).u8(live).u8(7).u32(3); // dmabuf_export_sync_file
    mesa.u8(17).u8(live).u8(7).u8(8).u32(2); // dmabuf_import_sync_file
    let mut misc = Writer::default();
    misc.u8(2);
    misc.u8(47).u8(0); // reset_tracker_create
    misc.u8(47).u8(8); // vk_device_create
    misc.u8(47).u8(12).u8(live); // check_status
    misc.u8(47).u8(19); // stream_create
    misc.u8(47).u8(20).u8(live).u64(0x1000).u64(64).u64(7).u8(0); // fill
    misc.u8(47).u8(22).u8(live).u16(4096); // stream_write
    misc.u8(0).u8(0).u8(12).raw(b"policy=replay"); // device_open("sim:policy=replay")
    vec![basic.bytes, mesa.bytes, misc.bytes]
}
