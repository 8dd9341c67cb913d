//! Raw-ioctl helpers for the simulator's tests: every call goes through `SimFile::ioctl` with
//! the uAPI structs, as a kernel test would.
#![allow(dead_code)]

use std::cell::Cell;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use agx_sim::mem::Mapping;
use agx_sim::stream::StreamBuilder;
use agx_sim::{Errno, SimConfig, SimDevice, SimFile, PAGE_SIZE};
use agx_uapi::asahi::*;
use agx_uapi::drm::*;
use agx_uapi::fault_ext as ext;
use bytemuck::{bytes_of_mut, Pod};

pub fn io<A: Pod>(f: &SimFile, cmd: u32, a: &mut A) -> Result<(), Errno> {
    f.ioctl(cmd, bytes_of_mut(a))
}

pub const KERNEL_START: u64 = 0x70_0000_0000;
pub const KERNEL_END: u64 = KERNEL_START + (64 << 20);

pub fn device() -> (SimDevice, SimFile) {
    device_with(SimConfig::default())
}

pub fn device_with(cfg: SimConfig) -> (SimDevice, SimFile) {
    let d = SimDevice::new(cfg);
    let f = d.open();
    (d, f)
}

pub fn vm(f: &SimFile) -> u32 {
    let mut a = drm_asahi_vm_create {
        kernel_start: KERNEL_START,
        kernel_end: KERNEL_END,
        ..Default::default()
    };
    io(f, DRM_IOCTL_ASAHI_VM_CREATE, &mut a).unwrap();
    a.vm_id
}

pub fn gem_create(f: &SimFile, size: u64, flags: u32, vm_id: u32) -> Result<u32, Errno> {
    let mut a = drm_asahi_gem_create {
        size,
        flags,
        vm_id,
        ..Default::default()
    };
    io(f, DRM_IOCTL_ASAHI_GEM_CREATE, &mut a)?;
    Ok(a.handle)
}

pub fn gem(f: &SimFile, size: u64) -> u32 {
    gem_create(f, size, 0, 0).unwrap()
}

pub fn gem_close(f: &SimFile, handle: u32) -> Result<(), Errno> {
    let mut a = drm_gem_close { handle, pad: 0 };
    io(f, DRM_IOCTL_GEM_CLOSE, &mut a)
}

pub fn op(flags: u32, handle: u32, offset: u64, range: u64, addr: u64) -> drm_asahi_gem_bind_op {
    drm_asahi_gem_bind_op {
        flags,
        handle,
        offset,
        range,
        addr,
    }
}

/// VM_BIND of an array of ops.
pub fn bind_ops(f: &SimFile, vm: u32, ops: &[drm_asahi_gem_bind_op]) -> Result<(), Errno> {
    let mut a = drm_asahi_vm_bind {
        vm_id: vm,
        num_binds: ops.len() as u32,
        stride: core::mem::size_of::<drm_asahi_gem_bind_op>() as u32,
        pad: 0,
        userptr: ops.as_ptr() as u64,
    };
    io(f, DRM_IOCTL_ASAHI_VM_BIND, &mut a)
}

pub fn bind(
    f: &SimFile,
    vm: u32,
    handle: u32,
    addr: u64,
    range: u64,
    flags: u32,
) -> Result<(), Errno> {
    bind_ops(f, vm, &[op(flags, handle, 0, range, addr)])
}

pub fn unbind(f: &SimFile, vm: u32, addr: u64, range: u64) -> Result<(), Errno> {
    bind_ops(f, vm, &[op(DRM_ASAHI_BIND_UNBIND, 0, 0, range, addr)])
}

pub const RW: u32 = DRM_ASAHI_BIND_READ | DRM_ASAHI_BIND_WRITE;
pub const RO: u32 = DRM_ASAHI_BIND_READ;

/// A BO of `size` bytes bound at `addr`, with its CPU mapping.
pub fn buffer(f: &SimFile, vm: u32, addr: u64, size: u64, flags: u32) -> (u32, Mapping) {
    let h = gem(f, size);
    bind(f, vm, h, addr, size.next_multiple_of(PAGE_SIZE), flags).unwrap();
    (h, map(f, h, size as usize))
}

pub fn mmap_offset(f: &SimFile, handle: u32) -> Result<u64, Errno> {
    let mut a = drm_asahi_gem_mmap_offset {
        handle,
        ..Default::default()
    };
    io(f, DRM_IOCTL_ASAHI_GEM_MMAP_OFFSET, &mut a)?;
    Ok(a.offset)
}

pub fn map(f: &SimFile, handle: u32, len: usize) -> Mapping {
    f.mmap(mmap_offset(f, handle).unwrap(), len).unwrap()
}

pub fn queue_create(f: &SimFile, vm: u32, priority: u32) -> Result<u32, Errno> {
    let mut a = drm_asahi_queue_create {
        vm_id: vm,
        priority,
        usc_exec_base: 0x1_0000_0000,
        ..Default::default()
    };
    io(f, DRM_IOCTL_ASAHI_QUEUE_CREATE, &mut a)?;
    Ok(a.queue_id)
}

pub fn queue(f: &SimFile, vm: u32) -> u32 {
    queue_create(f, vm, DRM_ASAHI_PRIORITY_MEDIUM).unwrap()
}

pub fn queue_destroy(f: &SimFile, queue_id: u32) -> Result<(), Errno> {
    let mut a = drm_asahi_queue_destroy { queue_id, pad: 0 };
    io(f, DRM_IOCTL_ASAHI_QUEUE_DESTROY, &mut a)
}

pub fn vm_destroy(f: &SimFile, vm_id: u32) -> Result<(), Errno> {
    let mut a = drm_asahi_vm_destroy { vm_id, pad: 0 };
    io(f, DRM_IOCTL_ASAHI_VM_DESTROY, &mut a)
}

pub fn queue_state(
    f: &SimFile,
    queue_id: u32,
) -> Result<ext::drm_asahi_ext_queue_get_state, Errno> {
    let mut a = ext::drm_asahi_ext_queue_get_state {
        queue_id,
        ..Default::default()
    };
    io(f, ext::DRM_IOCTL_ASAHI_EXT_QUEUE_GET_STATE, &mut a)?;
    Ok(a)
}

pub fn syncobj(f: &SimFile, signaled: bool) -> u32 {
    let mut a = drm_syncobj_create {
        handle: 0,
        flags: if signaled {
            DRM_SYNCOBJ_CREATE_SIGNALED
        } else {
            0
        },
    };
    io(f, DRM_IOCTL_SYNCOBJ_CREATE, &mut a).unwrap();
    a.handle
}

pub fn syncobj_signal(f: &SimFile, handles: &[u32]) -> Result<(), Errno> {
    let mut a = drm_syncobj_array {
        handles: handles.as_ptr() as u64,
        count_handles: handles.len() as u32,
        pad: 0,
    };
    io(f, DRM_IOCTL_SYNCOBJ_SIGNAL, &mut a)
}

/// SYNCOBJ_TIMELINE_WAIT (all) on `points` with a relative timeout.
pub fn timeline_wait(
    f: &SimFile,
    handles: &[u32],
    points: &[u64],
    flags: u32,
    timeout_ms: i64,
) -> Result<(), Errno> {
    let mut a = drm_syncobj_timeline_wait {
        handles: handles.as_ptr() as u64,
        points: points.as_ptr() as u64,
        timeout_nsec: now_ns() + timeout_ms * 1_000_000,
        count_handles: handles.len() as u32,
        flags: flags | DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL,
        ..Default::default()
    };
    io(f, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &mut a)
}

/// SYNCOBJ_QUERY of one syncobj.
pub fn query(f: &SimFile, handle: u32, flags: u32) -> u64 {
    let handles = [handle];
    let mut points = [u64::MAX];
    let mut a = drm_syncobj_timeline_array {
        handles: handles.as_ptr() as u64,
        points: points.as_mut_ptr() as u64,
        count_handles: 1,
        flags,
    };
    io(f, DRM_IOCTL_SYNCOBJ_QUERY, &mut a).unwrap();
    points[0]
}

/// Exports a syncobj as a syncobj fd (for another file to import).
pub fn syncobj_to_fd(f: &SimFile, handle: u32) -> OwnedFd {
    let mut a = drm_syncobj_handle {
        handle,
        fd: -1,
        ..Default::default()
    };
    io(f, DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &mut a).unwrap();
    // SAFETY: the ioctl returned a new fd that we now own.
    #[allow(unsafe_code)]
    unsafe {
        OwnedFd::from_raw_fd(a.fd)
    }
}

pub fn syncobj_from_fd(f: &SimFile, fd: &OwnedFd) -> u32 {
    use std::os::fd::AsRawFd;
    let mut a = drm_syncobj_handle {
        fd: fd.as_raw_fd(),
        ..Default::default()
    };
    io(f, DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &mut a).unwrap();
    a.handle
}

/// Imports a sync_file into an existing syncobj (replacing its fence).
pub fn import_sync_file(f: &SimFile, handle: u32, fd: &OwnedFd) {
    use std::os::fd::AsRawFd;
    let mut a = drm_syncobj_handle {
        handle,
        flags: DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
        fd: fd.as_raw_fd(),
        ..Default::default()
    };
    io(f, DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &mut a).unwrap();
}

pub fn prime_export(f: &SimFile, handle: u32) -> Result<OwnedFd, Errno> {
    let mut a = drm_prime_handle {
        handle,
        flags: DRM_CLOEXEC | DRM_RDWR,
        fd: -1,
    };
    io(f, DRM_IOCTL_PRIME_HANDLE_TO_FD, &mut a)?;
    // SAFETY: the ioctl returned a new fd that we now own.
    #[allow(unsafe_code)]
    Ok(unsafe { OwnedFd::from_raw_fd(a.fd) })
}

pub fn prime_import(f: &SimFile, fd: &OwnedFd) -> u32 {
    use std::os::fd::AsRawFd;
    let mut a = drm_prime_handle {
        handle: 0,
        flags: 0,
        fd: fd.as_raw_fd(),
    };
    io(f, DRM_IOCTL_PRIME_FD_TO_HANDLE, &mut a).unwrap();
    a.handle
}

/// Writes a stream into a mapping at `offset`.
pub fn put_stream(m: &Mapping, offset: usize, s: &mut StreamBuilder) {
    m.write(offset, &s.end());
}

/// One command of a cmdbuf being built.
#[derive(Clone, Debug)]
pub struct Cmd {
    pub render: bool,
    pub stream: u64,
    pub vdm_barrier: u16,
    pub cdm_barrier: u16,
    pub job_info: Option<ext::drm_asahi_ext_job_info>,
    pub samples: u8,
    pub ts_start: drm_asahi_timestamp,
    pub ts_end: drm_asahi_timestamp,
}

impl Cmd {
    pub fn render(stream: u64) -> Cmd {
        Cmd {
            render: true,
            stream,
            vdm_barrier: DRM_ASAHI_BARRIER_NONE,
            cdm_barrier: DRM_ASAHI_BARRIER_NONE,
            job_info: None,
            samples: 1,
            ts_start: Default::default(),
            ts_end: Default::default(),
        }
    }

    pub fn compute(stream: u64) -> Cmd {
        Cmd {
            render: false,
            ..Cmd::render(stream)
        }
    }

    pub fn info(mut self, flags: u32, result_handle: u32, result_offset: u64) -> Cmd {
        self.job_info = Some(ext::drm_asahi_ext_job_info {
            flags,
            reasons: 0,
            result_handle,
            pad: 0,
            result_offset,
        });
        self
    }

    pub fn job_info(mut self, info: ext::drm_asahi_ext_job_info) -> Cmd {
        self.job_info = Some(info);
        self
    }

    pub fn barriers(mut self, vdm: u16, cdm: u16) -> Cmd {
        self.vdm_barrier = vdm;
        self.cdm_barrier = cdm;
        self
    }

    pub fn timestamps(mut self, handle: u32, start: u32, end: u32) -> Cmd {
        self.ts_start = drm_asahi_timestamp {
            handle,
            offset: start,
        };
        self.ts_end = drm_asahi_timestamp {
            handle,
            offset: end,
        };
        self
    }

    pub fn render_payload(&self) -> drm_asahi_cmd_render {
        let mut r = drm_asahi_cmd_render {
            vdm_ctrl_stream_base: self.stream,
            width_px: 64,
            height_px: 64,
            layers: 1,
            samples: self.samples,
            utile_width_px: 16,
            utile_height_px: 16,
            ..Default::default()
        };
        r.ts_vtx.start = self.ts_start;
        r.ts_frag.end = self.ts_end;
        r
    }

    pub fn compute_payload(&self) -> drm_asahi_cmd_compute {
        drm_asahi_cmd_compute {
            cdm_ctrl_stream_base: self.stream,
            cdm_ctrl_stream_end: self.stream + 0x400,
            ts: drm_asahi_timestamps {
                start: self.ts_start,
                end: self.ts_end,
            },
            ..Default::default()
        }
    }
}

/// Appends a command header and payload bytes (any size, for malformed cmdbufs).
pub fn push_bytes(out: &mut Vec<u8>, cmd_type: u16, size: u16, vdm: u16, cdm: u16, payload: &[u8]) {
    let hdr = drm_asahi_cmd_header {
        cmd_type,
        size,
        vdm_barrier: vdm,
        cdm_barrier: cdm,
    };
    out.extend_from_slice(bytemuck::bytes_of(&hdr));
    out.extend_from_slice(payload);
}

pub fn push<T: Pod>(out: &mut Vec<u8>, cmd_type: u16, vdm: u16, cdm: u16, payload: &T) {
    let bytes = bytemuck::bytes_of(payload);
    push_bytes(out, cmd_type, bytes.len() as u16, vdm, cdm, bytes);
}

pub const NONE: u16 = DRM_ASAHI_BARRIER_NONE;

/// Appends one command (and its job info) to a cmdbuf.
pub fn push_cmd(out: &mut Vec<u8>, c: &Cmd) {
    if let Some(info) = &c.job_info {
        push(out, ext::DRM_ASAHI_CMD_EXT_JOB_INFO, NONE, NONE, info);
    }
    if c.render {
        push(
            out,
            DRM_ASAHI_CMD_RENDER,
            c.vdm_barrier,
            c.cdm_barrier,
            &c.render_payload(),
        );
    } else {
        push(
            out,
            DRM_ASAHI_CMD_COMPUTE,
            c.vdm_barrier,
            c.cdm_barrier,
            &c.compute_payload(),
        );
    }
}

pub fn cmdbuf(cmds: &[Cmd]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in cmds {
        push_cmd(&mut out, c);
    }
    out
}

/// SUBMIT with in/out syncs.
pub fn submit_raw(
    f: &SimFile,
    queue: u32,
    buf: &[u8],
    syncs: &[drm_asahi_sync],
    in_count: u32,
) -> Result<(), Errno> {
    let mut a = drm_asahi_submit {
        syncs: if syncs.is_empty() {
            0
        } else {
            syncs.as_ptr() as u64
        },
        cmdbuf: buf.as_ptr() as u64,
        queue_id: queue,
        in_sync_count: in_count,
        out_sync_count: syncs.len() as u32 - in_count,
        cmdbuf_size: buf.len() as u32,
        ..Default::default()
    };
    io(f, DRM_IOCTL_ASAHI_SUBMIT, &mut a)
}

pub fn binary(handle: u32) -> drm_asahi_sync {
    drm_asahi_sync {
        sync_type: DRM_ASAHI_SYNC_SYNCOBJ,
        handle,
        timeline_value: 0,
    }
}

pub fn timeline(handle: u32, point: u64) -> drm_asahi_sync {
    drm_asahi_sync {
        sync_type: DRM_ASAHI_SYNC_TIMELINE_SYNCOBJ,
        handle,
        timeline_value: point,
    }
}

/// Submits and returns a fresh binary syncobj signalled at completion.
pub fn submit(
    f: &SimFile,
    queue: u32,
    cmds: &[Cmd],
    waits: &[drm_asahi_sync],
) -> Result<u32, Errno> {
    submit_buf(f, queue, &cmdbuf(cmds), waits)
}

/// Submits a prepared cmdbuf and returns a fresh binary syncobj signalled at completion.
pub fn submit_buf(
    f: &SimFile,
    queue: u32,
    buf: &[u8],
    waits: &[drm_asahi_sync],
) -> Result<u32, Errno> {
    let out = syncobj(f, false);
    let mut syncs = waits.to_vec();
    syncs.push(binary(out));
    submit_raw(f, queue, buf, &syncs, waits.len() as u32)?;
    Ok(out)
}

pub fn now_ns() -> i64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as i64 * 1_000_000_000 + t.tv_nsec as i64
}

/// SYNCOBJ_WAIT (all) with a relative timeout.
pub fn wait(f: &SimFile, handles: &[u32], timeout_ms: i64) -> Result<(), Errno> {
    let mut a = drm_syncobj_wait {
        handles: handles.as_ptr() as u64,
        timeout_nsec: now_ns() + timeout_ms * 1_000_000,
        count_handles: handles.len() as u32,
        flags: DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL,
        ..Default::default()
    };
    io(f, DRM_IOCTL_SYNCOBJ_WAIT, &mut a)
}

/// sync_file status of a binary syncobj's fence: 1 signalled, 0 pending, negative errno.
pub fn fence_status(f: &SimFile, handle: u32) -> i32 {
    let mut a = drm_syncobj_handle {
        handle,
        flags: DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE,
        fd: -1,
        ..Default::default()
    };
    io(f, DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &mut a).unwrap();
    // SAFETY: the ioctl returned a new fd that we now own.
    #[allow(unsafe_code)]
    let fd = unsafe { OwnedFd::from_raw_fd(a.fd) };
    let mut info: agx_uapi::sync_file::sync_file_info = bytemuck::Zeroable::zeroed();
    agx_sim::sync::sync_file::sync_file_ioctl(
        fd.as_fd(),
        agx_uapi::sync_file::SYNC_IOC_FILE_INFO,
        bytes_of_mut(&mut info),
    )
    .unwrap();
    info.status
}

/// Waits for `handle` (SYNCOBJ_WAIT returns 0 even for an error) and returns its fence status.
pub fn wait_status(f: &SimFile, handle: u32) -> i32 {
    wait(f, &[handle], 5000).expect("out-fence signals");
    let s = fence_status(f, handle);
    assert_ne!(s, 0, "fence signalled");
    s
}

/// Waits for `handle` and asserts it signalled without error.
pub fn wait_ok(f: &SimFile, handle: u32) {
    assert_eq!(
        wait_status(f, handle),
        1,
        "out-fence signalled without error"
    );
}

pub fn read_result(m: &Mapping, offset: usize) -> ext::drm_asahi_ext_result {
    let mut r = ext::drm_asahi_ext_result::default();
    m.read(offset, bytes_of_mut(&mut r));
    r
}

pub fn read_bytes(m: &Mapping, offset: usize, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    m.read(offset, &mut v);
    v
}

pub fn read_u64(m: &Mapping, offset: usize) -> u64 {
    let mut v = [0u8; 8];
    m.read(offset, &mut v);
    u64::from_le_bytes(v)
}

/// The bytes a `FILL` with `pattern` writes (starting at the fill's first byte).
pub fn pattern_bytes(pattern: u32, len: usize) -> Vec<u8> {
    pattern
        .to_le_bytes()
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

/// GPU address of the stream buffer of an [`Env`].
pub const STREAM: u64 = 0x10_0000;
pub const STREAM_SIZE: u64 = 0x1_0000;
/// Bytes per stream slot.
pub const STREAM_SLOT: u64 = 0x800;
/// GPU address of the data buffer of an [`Env`].
pub const DATA: u64 = 0x100_0000;
pub const DATA_SIZE: u64 = 4 << 20;
/// A GPU address nothing maps.
pub const UNMAPPED: u64 = 0x8000_0000;
/// Result slot size used by [`Env::result`] (a full record).
pub const SLOT: u64 = 64;

/// One device, file, VM and queue with a stream buffer, a data buffer and a result BO.
pub struct Env {
    pub dev: SimDevice,
    pub f: SimFile,
    pub vm: u32,
    pub q: u32,
    pub stream_bo: u32,
    pub streams: Mapping,
    pub data_bo: u32,
    pub data: Mapping,
    pub res_bo: u32,
    pub res: Mapping,
    next_stream: Cell<u64>,
}

impl Env {
    pub fn new() -> Env {
        Env::with(SimConfig::default())
    }

    pub fn with(cfg: SimConfig) -> Env {
        let (dev, f) = device_with(cfg);
        Env::on(dev, f)
    }

    /// An Env on an existing file (a second VM if the file has one already).
    pub fn on(dev: SimDevice, f: SimFile) -> Env {
        let vm = vm(&f);
        let q = queue(&f, vm);
        let (stream_bo, streams) = buffer(&f, vm, STREAM, STREAM_SIZE, RW);
        let (data_bo, data) = buffer(&f, vm, DATA, DATA_SIZE, RW);
        let res_bo = gem(&f, PAGE_SIZE);
        let res = map(&f, res_bo, PAGE_SIZE as usize);
        Env {
            dev,
            f,
            vm,
            q,
            stream_bo,
            streams,
            data_bo,
            data,
            res_bo,
            res,
            next_stream: Cell::new(0),
        }
    }

    /// Places a stream in the next free slot and returns its GPU address.
    pub fn stream(&self, s: &mut StreamBuilder) -> u64 {
        let off = self.next_stream.get();
        assert!(
            s.size_with_end() <= STREAM_SLOT && off + STREAM_SLOT <= STREAM_SIZE,
            "stream space"
        );
        self.next_stream.set(off + STREAM_SLOT);
        put_stream(&self.streams, off as usize, s);
        STREAM + off
    }

    pub fn queue(&self) -> u32 {
        queue(&self.f, self.vm)
    }

    /// The result record in slot `i` of the result BO.
    pub fn result(&self, i: usize) -> ext::drm_asahi_ext_result {
        read_result(&self.res, i * SLOT as usize)
    }

    /// Result BO handle and offset of slot `i`.
    pub fn slot(&self, i: usize) -> (u32, u64) {
        (self.res_bo, i as u64 * SLOT)
    }

    pub fn data_bytes(&self, offset: u64, len: usize) -> Vec<u8> {
        read_bytes(&self.data, offset as usize, len)
    }

    pub fn submit(&self, q: u32, cmds: &[Cmd]) -> Result<u32, Errno> {
        submit(&self.f, q, cmds, &[])
    }
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

/// Job-info flags of a restartable command with a full record.
pub const RESTART: u32 = ext::DRM_ASAHI_EXT_JOB_RESTARTABLE;
