//! Devices: opening one by spec string, a second file on the same simulated GPU, parameters.

use std::os::raw::{c_char, c_int};

use super::guard::{self, c_str, call, out, output, Sized32};
use super::handle::{self, lookup};
use crate::device::{Device, DeviceSpec};
use crate::params::RecoveryPolicy;

/// An open device (one DRM file, or one file of the embedded simulated GPU). Every object made
/// from it keeps the file open, so it may be destroyed before them.
pub struct agx_ws_device {
    _opaque: [u8; 0],
}

/// What is behind a device (`agx_ws_params::backend`).
#[repr(u32)]
pub enum agx_ws_backend {
    /// A real asahi DRM render node.
    AGX_WS_BACKEND_RENDER_NODE = 0,
    /// The embedded simulated device.
    AGX_WS_BACKEND_SIMULATED = 1,
}

/// The kernel's recovery policy (`agx_ws_params::recovery_policy`).
#[repr(u32)]
pub enum agx_ws_recovery_policy {
    /// Unknown: an upstream kernel without the fault-report extension.
    AGX_WS_RECOVERY_UNKNOWN = 0,
    /// Innocent work in flight is killed and its queue banned (upstream behaviour).
    AGX_WS_RECOVERY_KILL_INFLIGHT = 1,
    /// Restartable innocent work is replayed, the rest killed.
    AGX_WS_RECOVERY_REPLAY = 2,
    /// Nothing is done for innocent work (measurement only: silently corrupts).
    AGX_WS_RECOVERY_CONTINUE = 3,
}

/// `agx_ws_params::fault_ext_features`: per-command result records.
pub const AGX_WS_FAULT_EXT_RESULTS: u32 = 1 << 0;
/// `agx_ws_params::fault_ext_features`: `QUEUE_GET_STATE` (see `agx_ws_queue_get_state`).
pub const AGX_WS_FAULT_EXT_QUEUE_STATE: u32 = 1 << 1;
/// `agx_ws_params::fault_ext_features`: the kernel replays restartable innocent work.
pub const AGX_WS_FAULT_EXT_REPLAY: u32 = 1 << 2;

/// Parameters of a device: the upstream `GET_PARAMS` values and what the fault-report extension
/// offers. Set `struct_size = sizeof(agx_ws_params)` before `agx_ws_device_get_params`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct agx_ws_params {
    pub struct_size: u32,
    /// An `agx_ws_backend`.
    pub backend: u32,
    /// e.g. 13 for G13.
    pub gpu_generation: u32,
    /// ASCII, e.g. 'G' for G13G.
    pub gpu_variant: u32,
    /// BCD, e.g. 0x11 for B1.
    pub gpu_revision: u32,
    /// BCD, e.g. 0x8103 for T8103.
    pub chip_id: u32,
    pub num_dies: u32,
    pub num_clusters: u32,
    pub cores_per_cluster: u32,
    /// Enabled cores in total.
    pub core_count: u32,
    pub max_frequency_khz: u32,
    pub max_commands_per_submission: u32,
    pub max_attachments: u32,
    /// 1: unmapped shader loads read zero and stores are dropped.
    pub soft_faults: u32,
    /// 1: the kernel has the fault-report extension; 0: upstream mode (fault details unknown).
    pub fault_ext: u32,
    pub fault_ext_version: u32,
    /// `AGX_WS_FAULT_EXT_*` bits.
    pub fault_ext_features: u32,
    /// Most replays of one command per recovery episode.
    pub replay_limit: u32,
    /// An `agx_ws_recovery_policy`.
    pub recovery_policy: u32,
    pub pad: u32,
    /// The GPU VA window userspace manages: `[vm_start, vm_end)`.
    pub vm_start: u64,
    pub vm_end: u64,
    pub vm_kernel_min_size: u64,
    pub timestamp_frequency_hz: u64,
    /// The watchdog's limit on one command (0 if unknown).
    pub hang_timeout_ns: u64,
    /// e.g. "G13G B1", NUL-terminated.
    pub gpu_name: [c_char; 32],
}

// SAFETY: repr(C), struct_size first, integers only.
unsafe impl Sized32 for agx_ws_params {}

/// Opens a device. `spec` is what `AGXWS_DEVICE` takes: `auto` (the first render node whose
/// DRM driver is `asahi`: never a simulated device), a `/dev/dri/renderD*` path, or, only in a
/// library built with the simulator (meson `-Dsim=enabled`), `sim[:policy=kill-inflight|replay|
/// continue,replay-limit=N,hang-timeout-ms=N,soft-faults,upstream]`. NULL: the value of
/// `AGXWS_DEVICE` if set, else `auto`.
///
/// Errors: `-EINVAL` bad spec (including `sim` in a library without the simulator) or `out`
/// NULL; `-ENODEV` no such device: for `auto` on a machine without an asahi render node,
/// `agx_ws_last_error()` says what was looked for and how to ask for the simulator; kernel
/// errnos.
///
/// # Safety
///
/// `spec` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_device_open(
    spec: *const c_char,
    out_device: *mut *mut agx_ws_device,
) -> c_int {
    call("agx_ws_device_open", || {
        // SAFETY: the caller's contract, forwarded.
        let out_device = unsafe { out(out_device, "out_device") }?;
        // SAFETY: the caller's contract, forwarded.
        let spec = match unsafe { c_str(spec, "spec") }? {
            Some(s) => DeviceSpec::parse(s)?,
            None => DeviceSpec::from_env_or(DeviceSpec::Auto)?,
        };
        let dev = Device::open(&spec)?;
        out_device.write(handle::register(dev));
        Ok(0)
    })
}

/// Opens a device on a DRM file the caller already opened (Mesa's screen fd, a physical
/// device's render node, a dup of a display fd). The library works on its own close-on-exec
/// duplicate of `fd`: the caller's fd stays open and untouched whatever the outcome (its flags,
/// offset and file are not changed), and the caller may close it at any time after this call.
/// Handles the caller created on the same file (GEM, sync objects) are valid on the device
/// (see `agx_ws_syncobj_wrap`).
///
/// Errors: `-EBADF` negative or closed fd; `-ENODEV` not an asahi DRM device (not a DRM file
/// at all, or another driver; `agx_ws_last_error()` says which); kernel errnos.
///
/// # Safety
///
/// `fd` is NULL-free: any int is accepted, but a non-negative `fd` must not be closed by
/// another thread during the call; `out_device` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_device_open_fd(
    fd: c_int,
    out_device: *mut *mut agx_ws_device,
) -> c_int {
    call("agx_ws_device_open_fd", || {
        // SAFETY: the caller's contract, forwarded.
        let out_device = unsafe { out(out_device, "out_device") }?;
        // SAFETY: not closed during the call (the caller's contract); only borrowed.
        let fd = unsafe { guard::borrow_fd(fd) }?;
        let dev = Device::open_fd(fd)?;
        out_device.write(handle::register(dev));
        Ok(0)
    })
}

/// Destroys the handle. The file closes when the last object made from it is destroyed too.
///
/// Errors: `-EINVAL` NULL, `-EBADF` not a live device handle.
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe; other calls on the same handle racing with it either complete or
/// fail with `-EBADF`.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_device_destroy(device: *mut agx_ws_device) -> c_int {
    call("agx_ws_device_destroy", || handle::destroy(device))
}

/// Fills `out` (whose `struct_size` the caller set) with the device's parameters.
///
/// # Safety
///
/// `out` is NULL or points to a writable `agx_ws_params` (at least its `struct_size`).
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_device_get_params(
    device: *mut agx_ws_device,
    out_params: *mut agx_ws_params,
) -> c_int {
    call("agx_ws_device_get_params", || {
        let dev = lookup(device)?;
        // SAFETY: the caller's contract, forwarded.
        let o = unsafe { output(out_params, "out_params") }?;
        let p = dev.params();
        let e = dev.fault_ext();
        let mut gpu_name = [0; 32];
        guard::copy_c_string(&mut gpu_name, &p.gpu_name());
        o.write(agx_ws_params {
            struct_size: size_of::<agx_ws_params>() as u32,
            backend: if dev.is_simulated() {
                agx_ws_backend::AGX_WS_BACKEND_SIMULATED as u32
            } else {
                agx_ws_backend::AGX_WS_BACKEND_RENDER_NODE as u32
            },
            gpu_generation: p.gpu_generation,
            gpu_variant: p.gpu_variant as u32,
            gpu_revision: p.gpu_revision,
            chip_id: p.chip_id,
            num_dies: p.num_dies,
            num_clusters: p.num_clusters,
            cores_per_cluster: p.cores_per_cluster,
            core_count: p.core_count(),
            max_frequency_khz: p.max_frequency_khz,
            max_commands_per_submission: p.max_commands_per_submission,
            max_attachments: p.max_attachments,
            soft_faults: p.soft_faults as u32,
            fault_ext: e.is_some() as u32,
            fault_ext_version: e.map_or(0, |e| e.version),
            fault_ext_features: e.map_or(0, |e| {
                (if e.results {
                    AGX_WS_FAULT_EXT_RESULTS
                } else {
                    0
                }) | (if e.queue_state {
                    AGX_WS_FAULT_EXT_QUEUE_STATE
                } else {
                    0
                }) | (if e.replay { AGX_WS_FAULT_EXT_REPLAY } else { 0 })
            }),
            replay_limit: e.map_or(0, |e| e.replay_limit),
            recovery_policy: match e.map(|e| e.policy) {
                Some(RecoveryPolicy::KillInflight) => {
                    agx_ws_recovery_policy::AGX_WS_RECOVERY_KILL_INFLIGHT as u32
                }
                Some(RecoveryPolicy::Replay) => {
                    agx_ws_recovery_policy::AGX_WS_RECOVERY_REPLAY as u32
                }
                Some(RecoveryPolicy::Continue) => {
                    agx_ws_recovery_policy::AGX_WS_RECOVERY_CONTINUE as u32
                }
                Some(RecoveryPolicy::Unknown(_)) | None => {
                    agx_ws_recovery_policy::AGX_WS_RECOVERY_UNKNOWN as u32
                }
            },
            pad: 0,
            vm_start: p.vm_range.start,
            vm_end: p.vm_range.end,
            vm_kernel_min_size: p.vm_kernel_min_size,
            timestamp_frequency_hz: p.timestamp_frequency_hz,
            hang_timeout_ns: e.map_or(0, |e| e.hang_timeout_ns),
            gpu_name,
        });
        Ok(0)
    })
}

/// The GPU's current time in nanoseconds.
///
/// # Safety
///
/// `out_ns` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_device_get_gpu_time(
    device: *mut agx_ws_device,
    out_ns: *mut u64,
) -> c_int {
    call("agx_ws_device_get_gpu_time", || {
        // SAFETY: the caller's contract, forwarded.
        let out_ns = unsafe { out(out_ns, "out_ns") }?;
        let dev = lookup(device)?;
        out_ns.write(dev.gpu_time_ns()?);
        Ok(0)
    })
}
