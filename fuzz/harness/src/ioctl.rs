//! Target `ioctl`: the simulated kernel's ioctl boundary, every DRM core and asahi ioctl (and
//! any other number) with fuzzed argument bytes, plus the ioctls of the fds it hands out
//! (sync_file, dma-buf), on a device with fuzzed options.
//!
//! User pointers in the arguments are redirected into a fuzzer-owned arena with a guard page
//! ([`Arena::pointer`]): the arena holds fuzzed bytes (handle arrays, bind ops, cmdbufs with
//! streams), and nothing the simulator copies in or out can reach other memory. Fd numbers are
//! redirected to fuzzer-owned fds; wait deadlines are clamped to at most 1 ms from now.
//!
//! Invariants, checked after every call: no panic; an error is an errno the kernel uses for
//! these ioctls; a refused call changes nothing (the device's state, [`SimFile::debug_state`],
//! is the same before and after).
//!
//! Input: one byte of device options, then records: `[kind][...]` (see [`run`]).

use std::mem::offset_of;

use agx_sim::{Errno, RecoveryPolicy, SimConfig, SimDevice, SimFile};
use agx_uapi::asahi::*;
use agx_uapi::dma_buf::*;
use agx_uapi::drm::*;
use agx_uapi::fault_ext::DRM_IOCTL_ASAHI_EXT_QUEUE_GET_STATE;
use agx_uapi::ioctl::ioc_size;
use agx_uapi::sync_file::*;

use crate::arena::{Arena, Fds};
use crate::input::Input;

/// A field of an argument struct the harness rewrites.
#[derive(Clone, Copy, Debug)]
pub enum Field {
    /// A user pointer (u64).
    Ptr(usize),
    /// An fd number given to the device (i32).
    FdIn(usize),
    /// An fd number the device returns (i32), adopted on success.
    FdOut(usize),
    /// An absolute deadline in ns (i64), clamped to soon.
    Deadline(usize),
}

use Field::*;

/// Every ioctl of the device (file ioctls), with its rewritten fields.
pub const FILE_IOCTLS: &[(u32, &[Field])] = &[
    (
        DRM_IOCTL_VERSION,
        &[
            Ptr(offset_of!(drm_version, name)),
            Ptr(offset_of!(drm_version, date)),
            Ptr(offset_of!(drm_version, desc)),
        ],
    ),
    (DRM_IOCTL_GEM_CLOSE, &[]),
    (DRM_IOCTL_GET_CAP, &[]),
    (
        DRM_IOCTL_PRIME_HANDLE_TO_FD,
        &[FdOut(offset_of!(drm_prime_handle, fd))],
    ),
    (
        DRM_IOCTL_PRIME_FD_TO_HANDLE,
        &[FdIn(offset_of!(drm_prime_handle, fd))],
    ),
    (DRM_IOCTL_SYNCOBJ_CREATE, &[]),
    (DRM_IOCTL_SYNCOBJ_DESTROY, &[]),
    (
        DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD,
        &[FdOut(offset_of!(drm_syncobj_handle, fd))],
    ),
    (
        DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE,
        &[FdIn(offset_of!(drm_syncobj_handle, fd))],
    ),
    (
        DRM_IOCTL_SYNCOBJ_WAIT,
        &[
            Ptr(offset_of!(drm_syncobj_wait, handles)),
            Deadline(offset_of!(drm_syncobj_wait, timeout_nsec)),
        ],
    ),
    (
        DRM_IOCTL_SYNCOBJ_RESET,
        &[Ptr(offset_of!(drm_syncobj_array, handles))],
    ),
    (
        DRM_IOCTL_SYNCOBJ_SIGNAL,
        &[Ptr(offset_of!(drm_syncobj_array, handles))],
    ),
    (
        DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT,
        &[
            Ptr(offset_of!(drm_syncobj_timeline_wait, handles)),
            Ptr(offset_of!(drm_syncobj_timeline_wait, points)),
            Deadline(offset_of!(drm_syncobj_timeline_wait, timeout_nsec)),
        ],
    ),
    (
        DRM_IOCTL_SYNCOBJ_QUERY,
        &[
            Ptr(offset_of!(drm_syncobj_timeline_array, handles)),
            Ptr(offset_of!(drm_syncobj_timeline_array, points)),
        ],
    ),
    (DRM_IOCTL_SYNCOBJ_TRANSFER, &[]),
    (
        DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL,
        &[
            Ptr(offset_of!(drm_syncobj_timeline_array, handles)),
            Ptr(offset_of!(drm_syncobj_timeline_array, points)),
        ],
    ),
    (
        DRM_IOCTL_SYNCOBJ_EVENTFD,
        &[FdIn(offset_of!(drm_syncobj_eventfd, fd))],
    ),
    (
        DRM_IOCTL_ASAHI_GET_PARAMS,
        &[Ptr(offset_of!(drm_asahi_get_params, pointer))],
    ),
    (DRM_IOCTL_ASAHI_GET_TIME, &[]),
    (DRM_IOCTL_ASAHI_VM_CREATE, &[]),
    (DRM_IOCTL_ASAHI_VM_DESTROY, &[]),
    (
        DRM_IOCTL_ASAHI_VM_BIND,
        &[Ptr(offset_of!(drm_asahi_vm_bind, userptr))],
    ),
    (DRM_IOCTL_ASAHI_GEM_CREATE, &[]),
    (DRM_IOCTL_ASAHI_GEM_MMAP_OFFSET, &[]),
    (DRM_IOCTL_ASAHI_GEM_BIND_OBJECT, &[]),
    (DRM_IOCTL_ASAHI_QUEUE_CREATE, &[]),
    (DRM_IOCTL_ASAHI_QUEUE_DESTROY, &[]),
    (
        DRM_IOCTL_ASAHI_SUBMIT,
        &[
            Ptr(offset_of!(drm_asahi_submit, syncs)),
            Ptr(offset_of!(drm_asahi_submit, cmdbuf)),
        ],
    ),
    (DRM_IOCTL_ASAHI_EXT_QUEUE_GET_STATE, &[]),
];

/// The ioctls of fds the device hands out.
pub const FD_IOCTLS: &[(u32, &[Field])] = &[
    (
        SYNC_IOC_MERGE,
        &[
            FdIn(offset_of!(sync_merge_data, fd2)),
            FdOut(offset_of!(sync_merge_data, fence)),
        ],
    ),
    (
        SYNC_IOC_FILE_INFO,
        &[Ptr(offset_of!(sync_file_info, sync_fence_info))],
    ),
    (
        DMA_BUF_IOCTL_EXPORT_SYNC_FILE,
        &[FdOut(offset_of!(dma_buf_export_sync_file, fd))],
    ),
    (
        DMA_BUF_IOCTL_IMPORT_SYNC_FILE,
        &[FdIn(offset_of!(dma_buf_import_sync_file, fd))],
    ),
    (DMA_BUF_IOCTL_SYNC, &[]),
];

/// Errnos Linux's DRM core, the asahi driver, sync_file and dma-buf return from these ioctls
/// (an fd table full is the host's `EMFILE`).
const ERRNOS: &[Errno] = &[
    Errno::INVAL,
    Errno::NOENT,
    Errno::FAULT,
    Errno::NOMEM,
    Errno::NOTTY,
    Errno::NODEV,
    Errno::BUSY,
    Errno::TIME,
    Errno::CANCELED,
    Errno::BADF,
    Errno::PERM,
    Errno::OPNOTSUPP,
    Errno::NOSPC,
    Errno::MFILE,
];

/// The record kinds of an input.
pub mod kind {
    /// `[file][index][arg bytes]`: a file ioctl (index past the table: a raw u32 number).
    pub const IOCTL: u8 = 0;
    /// `[off u16][len u8][bytes]`: bytes into the arena.
    pub const ARENA: u8 = 1;
    /// `[fd u8][index][arg bytes]`: an ioctl on one of the fuzzer's fds.
    pub const FD_IOCTL: u8 = 2;
    /// `[op]`: GPU controls: hold, release, advance `[u32 ns]`, crash, or write
    /// `[file][handle u32][off u32][len u8][bytes]` into a BO through its CPU mapping (how a
    /// driver puts streams and data in memory).
    pub const GPU: u8 = 3;
}

/// At most this many records per input.
const MAX_RECORDS: usize = 96;

fn rewrite(arg: &mut [u8], fields: &[Field], arena: &Arena, fds: &Fds) {
    for f in fields {
        match *f {
            Ptr(o) => {
                let v = u64::from_le_bytes(arg[o..o + 8].try_into().expect("8 bytes"));
                arg[o..o + 8].copy_from_slice(&arena.pointer(v).to_le_bytes());
            }
            FdIn(o) => {
                let v = i32::from_le_bytes(arg[o..o + 4].try_into().expect("4 bytes"));
                arg[o..o + 4].copy_from_slice(&fds.pick(v).to_le_bytes());
            }
            FdOut(_) => {}
            Deadline(o) => {
                let v = i64::from_le_bytes(arg[o..o + 8].try_into().expect("8 bytes"));
                let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
                let now = now.tv_sec as i64 * 1_000_000_000 + now.tv_nsec as i64;
                // 0 polls; anything else is at most 1 ms away.
                let t = if v == 0 {
                    0
                } else {
                    now + v.rem_euclid(1_000_000)
                };
                arg[o..o + 8].copy_from_slice(&t.to_le_bytes());
            }
        }
    }
}

fn adopt(arg: &[u8], fields: &[Field], fds: &mut Fds) {
    for f in fields {
        if let FdOut(o) = *f {
            fds.adopt(i32::from_le_bytes(
                arg[o..o + 4].try_into().expect("4 bytes"),
            ));
        }
    }
}

fn state(files: &[SimFile]) -> Vec<String> {
    files.iter().map(SimFile::debug_state).collect()
}

fn check_refusal(what: &str, e: Errno, before: &[String], files: &[SimFile]) {
    assert!(
        ERRNOS.contains(&e),
        "{what}: errno {e:?} is not one Linux gives"
    );
    let after = state(files);
    assert!(
        before == after,
        "{what}: refused with {e:?} but changed the device:\n{}",
        diff(before, &after)
    );
}

fn diff(a: &[String], b: &[String]) -> String {
    let mut out = String::new();
    for (x, y) in a.iter().zip(b) {
        for (l, m) in x.lines().zip(y.lines()) {
            if l != m {
                out += &format!("- {l}\n+ {m}\n");
            }
        }
    }
    out
}

/// Writes `bytes` at `off` of BO `handle` through a CPU mapping, when there is such a BO.
fn write_bo(file: &SimFile, handle: u32, off: usize, bytes: &[u8]) {
    let mut a = drm_asahi_gem_mmap_offset {
        handle,
        flags: 0,
        offset: 0,
    };
    if file
        .ioctl(
            DRM_IOCTL_ASAHI_GEM_MMAP_OFFSET,
            bytemuck::bytes_of_mut(&mut a),
        )
        .is_err()
    {
        return;
    }
    let len = (off % (1 << 20)) + bytes.len();
    if let Ok(m) = file.mmap(a.offset, len.max(1)) {
        if off % (1 << 20) + bytes.len() <= m.len() {
            m.write(off % (1 << 20), bytes);
        }
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let opts = inp.u8();
    let config = SimConfig {
        policy: RecoveryPolicy::ALL[(opts % 3) as usize],
        fault_ext: opts & 4 == 0,
        soft_faults: opts & 8 != 0,
        hang_timeout_ns: 1_000_000,
        ..SimConfig::default()
    };
    let dev = SimDevice::new(config);
    let files = [dev.open(), dev.open()];
    let arena = Arena::new();
    let mut fds = Fds::new();
    for _ in 0..MAX_RECORDS {
        if inp.is_empty() {
            break;
        }
        match inp.u8() % 4 {
            kind::IOCTL => {
                let file = &files[(inp.u8() & 1) as usize];
                let i = inp.u8() as usize;
                let (cmd, fields) = match FILE_IOCTLS.get(i) {
                    Some(&(c, f)) => (c, f),
                    None => (inp.u32(), &[][..]),
                };
                let mut arg = inp.padded(ioc_size(cmd));
                rewrite(&mut arg, fields, &arena, &fds);
                let before = state(&files);
                let r = file.ioctl(cmd, &mut arg);
                crate::trace(|| format!("ioctl {cmd:#x}: {r:?}"));
                match r {
                    Ok(()) => adopt(&arg, fields, &mut fds),
                    Err(e) => check_refusal(&format!("ioctl {cmd:#x}"), e, &before, &files),
                }
            }
            kind::ARENA => {
                let off = inp.u16() as usize;
                let n = inp.u8() as usize;
                arena.write(off, inp.bytes(n));
            }
            kind::FD_IOCTL => {
                let fd = inp.u8();
                let i = inp.u8() as usize % FD_IOCTLS.len();
                let (cmd, fields) = FD_IOCTLS[i];
                let mut arg = inp.padded(ioc_size(cmd));
                rewrite(&mut arg, fields, &arena, &fds);
                let before = state(&files);
                let r = agx_sim::fd_ioctl(fds.get(fd), cmd, &mut arg);
                crate::trace(|| format!("fd ioctl {cmd:#x}: {r:?}"));
                match r {
                    Ok(()) => adopt(&arg, fields, &mut fds),
                    Err(e) => check_refusal(&format!("fd ioctl {cmd:#x}"), e, &before, &files),
                }
            }
            _ => match inp.u8() % 5 {
                0 => dev.hold(),
                1 => dev.release(),
                2 => dev.advance(u64::from(inp.u32())),
                3 => dev.crash_firmware(),
                _ => {
                    let file = &files[(inp.u8() & 1) as usize];
                    let (handle, off) = (inp.u32(), inp.u32() as usize);
                    let n = inp.u8() as usize;
                    let bytes = inp.bytes(n);
                    write_bo(file, handle, off, bytes);
                }
            },
        }
    }
    dev.release();
}
