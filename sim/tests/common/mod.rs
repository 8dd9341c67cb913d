//! Raw-ioctl helpers for the simulator's tests: every call goes through `SimFile::ioctl` with
//! the uAPI structs, as a kernel test would.
#![allow(dead_code)]

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
    let mut a = drm_asahi_vm_create { kernel_start: KERNEL_START, kernel_end: KERNEL_END, ..Default::default() };
    io(f, DRM_IOCTL_ASAHI_VM_CREATE, &mut a).unwrap();
    a.vm_id
}

pub fn gem(f: &SimFile, size: u64) -> u32 {
    let mut a = drm_asahi_gem_create { size, ..Default::default() };
    io(f, DRM_IOCTL_ASAHI_GEM_CREATE, &mut a).unwrap();
    a.handle
}

pub fn bind(f: &SimFile, vm: u32, handle: u32, addr: u64, range: u64, flags: u32) -> Result<(), Errno> {
    let op = drm_asahi_gem_bind_op { flags, handle, offset: 0, range, addr };
    let mut a = drm_asahi_vm_bind {
        vm_id: vm,
        num_binds: 1,
        stride: core::mem::size_of::<drm_asahi_gem_bind_op>() as u32,
        pad: 0,
        userptr: &op as *const _ as u64,
    };
    io(f, DRM_IOCTL_ASAHI_VM_BIND, &mut a)
}

pub const RW: u32 = DRM_ASAHI_BIND_READ | DRM_ASAHI_BIND_WRITE;

/// A BO of `size` bytes bound read-write at `addr`, with its CPU mapping.
pub fn buffer(f: &SimFile, vm: u32, addr: u64, size: u64, flags: u32) -> (u32, Mapping) {
    let h = gem(f, size);
    bind(f, vm, h, addr, size.next_multiple_of(PAGE_SIZE), flags).unwrap();
    (h, map(f, h, size as usize))
}

pub fn map(f: &SimFile, handle: u32, len: usize) -> Mapping {
    let mut a = drm_asahi_gem_mmap_offset { handle, ..Default::default() };
    io(f, DRM_IOCTL_ASAHI_GEM_MMAP_OFFSET, &mut a).unwrap();
    f.mmap(a.offset, len).unwrap()
}

pub fn queue(f: &SimFile, vm: u32) -> u32 {
    let mut a = drm_asahi_queue_create { vm_id: vm, priority: DRM_ASAHI_PRIORITY_MEDIUM, usc_exec_base: 0x1_0000_0000, ..Default::default() };
    io(f, DRM_IOCTL_ASAHI_QUEUE_CREATE, &mut a).unwrap();
    a.queue_id
}

pub fn syncobj(f: &SimFile, signaled: bool) -> u32 {
    let mut a = drm_syncobj_create { handle: 0, flags: if signaled { DRM_SYNCOBJ_CREATE_SIGNALED } else { 0 } };
    io(f, DRM_IOCTL_SYNCOBJ_CREATE, &mut a).unwrap();
    a.handle
}

/// Writes a stream into a mapping at `offset`.
pub fn put_stream(m: &Mapping, offset: usize, s: &mut StreamBuilder) {
    m.write(offset, &s.end());
}

/// One command of a cmdbuf being built.
pub struct Cmd {
    pub render: bool,
    pub stream: u64,
    pub vdm_barrier: u16,
    pub cdm_barrier: u16,
    pub job_info: Option<ext::drm_asahi_ext_job_info>,
}

impl Cmd {
    pub fn render(stream: u64) -> Cmd {
        Cmd { render: true, stream, vdm_barrier: DRM_ASAHI_BARRIER_NONE, cdm_barrier: DRM_ASAHI_BARRIER_NONE, job_info: None }
    }

    pub fn compute(stream: u64) -> Cmd {
        Cmd { render: false, ..Cmd::render(stream) }
    }

    pub fn info(mut self, flags: u32, result_handle: u32, result_offset: u64) -> Cmd {
        self.job_info = Some(ext::drm_asahi_ext_job_info { flags, reasons: 0, result_handle, pad: 0, result_offset });
        self
    }
}

fn push<T: Pod>(out: &mut Vec<u8>, cmd_type: u16, vdm: u16, cdm: u16, payload: &T) {
    let bytes = bytemuck::bytes_of(payload);
    let hdr = drm_asahi_cmd_header { cmd_type, size: bytes.len() as u16, vdm_barrier: vdm, cdm_barrier: cdm };
    out.extend_from_slice(bytemuck::bytes_of(&hdr));
    out.extend_from_slice(bytes);
}

pub fn cmdbuf(cmds: &[Cmd]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in cmds {
        if let Some(info) = &c.job_info {
            push(&mut out, ext::DRM_ASAHI_CMD_EXT_JOB_INFO, DRM_ASAHI_BARRIER_NONE, DRM_ASAHI_BARRIER_NONE, info);
        }
        if c.render {
            let r = drm_asahi_cmd_render {
                vdm_ctrl_stream_base: c.stream,
                width_px: 64,
                height_px: 64,
                layers: 1,
                samples: 1,
                utile_width_px: 16,
                utile_height_px: 16,
                ..Default::default()
            };
            push(&mut out, DRM_ASAHI_CMD_RENDER, c.vdm_barrier, c.cdm_barrier, &r);
        } else {
            let r = drm_asahi_cmd_compute { cdm_ctrl_stream_base: c.stream, ..Default::default() };
            push(&mut out, DRM_ASAHI_CMD_COMPUTE, c.vdm_barrier, c.cdm_barrier, &r);
        }
    }
    out
}

/// SUBMIT with binary in/out syncobjs.
pub fn submit_raw(f: &SimFile, queue: u32, buf: &[u8], syncs: &[drm_asahi_sync], in_count: u32) -> Result<(), Errno> {
    let mut a = drm_asahi_submit {
        syncs: if syncs.is_empty() { 0 } else { syncs.as_ptr() as u64 },
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
    drm_asahi_sync { sync_type: DRM_ASAHI_SYNC_SYNCOBJ, handle, timeline_value: 0 }
}

pub fn timeline(handle: u32, point: u64) -> drm_asahi_sync {
    drm_asahi_sync { sync_type: DRM_ASAHI_SYNC_TIMELINE_SYNCOBJ, handle, timeline_value: point }
}

/// Submits and returns a fresh binary syncobj signalled at completion.
pub fn submit(f: &SimFile, queue: u32, cmds: &[Cmd], waits: &[drm_asahi_sync]) -> Result<u32, Errno> {
    let out = syncobj(f, false);
    let mut syncs = waits.to_vec();
    syncs.push(binary(out));
    submit_raw(f, queue, &cmdbuf(cmds), &syncs, waits.len() as u32)?;
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

/// sync_file status of a binary syncobj's fence.
pub fn fence_status(f: &SimFile, handle: u32) -> i32 {
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};
    let mut a = drm_syncobj_handle { handle, flags: DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE, fd: -1, ..Default::default() };
    io(f, DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &mut a).unwrap();
    // SAFETY: the ioctl returned a new fd that we now own.
    #[allow(unsafe_code)]
    let fd = unsafe { OwnedFd::from_raw_fd(a.fd) };
    let mut info: agx_uapi::sync_file::sync_file_info = bytemuck::Zeroable::zeroed();
    agx_sim::sync::sync_file::sync_file_ioctl(fd.as_fd(), agx_uapi::sync_file::SYNC_IOC_FILE_INFO, bytes_of_mut(&mut info)).unwrap();
    info.status
}

pub fn read_result(m: &Mapping, offset: usize) -> ext::drm_asahi_ext_result {
    let mut r = ext::drm_asahi_ext_result::default();
    m.read(offset, bytes_of_mut(&mut r));
    r
}
