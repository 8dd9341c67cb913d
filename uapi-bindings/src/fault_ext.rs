//! The proposed fault-report extension to the asahi uAPI, as specified in
//! `docs/uapi-fault-extension.md` (the contract the simulator and the winsys both follow).
//!
//! It follows the upstream header's extension rules: a new `GET_PARAMS` group for detection, a
//! synthetic command type outside the upstream range, and a new ioctl id well past the upstream
//! ones. Kernels without it reject all three with `EINVAL`.
#![allow(non_camel_case_types)]

use bytemuck::{Pod, Zeroable};

use crate::drm::{DRM_COMMAND_BASE, DRM_IOCTL_BASE};
use crate::ioctl::iowr;

/// `GET_PARAMS` group returning [`drm_asahi_params_fault_ext`].
pub const DRM_ASAHI_PARAM_GROUP_FAULT_EXT: u32 = 1;
/// Extension version described by this file.
pub const DRM_ASAHI_FAULT_EXT_VERSION: u32 = 1;

// drm_asahi_params_fault_ext::features
/// Per-command result records through `DRM_ASAHI_CMD_EXT_JOB_INFO`.
pub const DRM_ASAHI_FAULT_EXT_FEATURE_RESULTS: u64 = 1 << 0;
/// `DRM_IOCTL_ASAHI_EXT_QUEUE_GET_STATE`.
pub const DRM_ASAHI_FAULT_EXT_FEATURE_QUEUE_STATE: u64 = 1 << 1;
/// Innocent in-flight commands flagged restartable are re-run after a recovery.
pub const DRM_ASAHI_FAULT_EXT_FEATURE_REPLAY: u64 = 1 << 2;

// drm_asahi_params_fault_ext::recovery_policy
pub const DRM_ASAHI_RECOVERY_KILL_INFLIGHT: u32 = 0;
pub const DRM_ASAHI_RECOVERY_REPLAY: u32 = 1;
pub const DRM_ASAHI_RECOVERY_CONTINUE: u32 = 2;

/// Parameters of param group 1 (`DRM_ASAHI_PARAM_GROUP_FAULT_EXT`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_params_fault_ext {
    /// `DRM_ASAHI_FAULT_EXT_VERSION`.
    pub version: u32,
    /// Size of the full result record, `sizeof(struct drm_asahi_ext_result)`.
    pub result_size: u32,
    /// `DRM_ASAHI_FAULT_EXT_FEATURE_*`.
    pub features: u64,
    /// How many times one command may be re-run after recoveries it was innocent in.
    pub replay_limit: u32,
    /// `DRM_ASAHI_RECOVERY_*` in force on this device.
    pub recovery_policy: u32,
    /// Watchdog: a command running longer than this (GPU time) is a hang.
    pub hang_timeout_ns: u64,
}

/// Synthetic command: job info for the next hardware command of the same cmdbuf.
pub const DRM_ASAHI_CMD_EXT_JOB_INFO: u16 = 0x8000;

// drm_asahi_ext_job_info::flags
/// Re-running the command from its start after an abort gives the memory of one run.
pub const DRM_ASAHI_EXT_JOB_RESTARTABLE: u32 = 1 << 0;
/// Write only the first 16 bytes of the record (status, guilt, replay count).
pub const DRM_ASAHI_EXT_JOB_STATUS_ONLY: u32 = 1 << 1;
/// Also write the GPU start and end times (the whole 64-byte record).
pub const DRM_ASAHI_EXT_JOB_TIMESTAMPS: u32 = 1 << 2;
pub const DRM_ASAHI_EXT_JOB_FLAGS_ALL: u32 =
    DRM_ASAHI_EXT_JOB_RESTARTABLE | DRM_ASAHI_EXT_JOB_STATUS_ONLY | DRM_ASAHI_EXT_JOB_TIMESTAMPS;

// drm_asahi_ext_job_info::reasons: why a command is not restartable (diagnostics only).
pub const DRM_ASAHI_EXT_REASON_LOAD_STORE_SAME: u32 = 1 << 0;
pub const DRM_ASAHI_EXT_REASON_BLEND_ON_LOADED: u32 = 1 << 1;
pub const DRM_ASAHI_EXT_REASON_SHADER_WRITE_READ: u32 = 1 << 2;
pub const DRM_ASAHI_EXT_REASON_ATOMICS: u32 = 1 << 3;
pub const DRM_ASAHI_EXT_REASON_OCCLUSION_ACCUMULATE: u32 = 1 << 4;
pub const DRM_ASAHI_EXT_REASON_XFB_APPEND: u32 = 1 << 5;
pub const DRM_ASAHI_EXT_REASON_UNKNOWN_ACCESS: u32 = 1 << 6;
pub const DRM_ASAHI_EXT_REASON_COMPUTE_UNDECLARED: u32 = 1 << 7;
pub const DRM_ASAHI_EXT_REASONS_ALL: u32 = (1 << 8) - 1;

/// Payload of `DRM_ASAHI_CMD_EXT_JOB_INFO` (24 bytes; a shorter `size` is zero-extended).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_ext_job_info {
    /// `DRM_ASAHI_EXT_JOB_*`.
    pub flags: u32,
    /// `DRM_ASAHI_EXT_REASON_*`; must be 0 when `RESTARTABLE` is set.
    pub reasons: u32,
    /// GEM handle of the BO holding the result slot, or 0 for no record.
    pub result_handle: u32,
    /// MBZ.
    pub pad: u32,
    /// Byte offset of the slot in that BO, 8-byte aligned.
    pub result_offset: u64,
}

// drm_asahi_ext_result::status
pub const DRM_ASAHI_EXT_STATUS_PENDING: u32 = 0;
pub const DRM_ASAHI_EXT_STATUS_COMPLETE: u32 = 1;
pub const DRM_ASAHI_EXT_STATUS_FAULT: u32 = 2;
pub const DRM_ASAHI_EXT_STATUS_TIMEOUT: u32 = 3;
pub const DRM_ASAHI_EXT_STATUS_KILLED: u32 = 4;
pub const DRM_ASAHI_EXT_STATUS_CANCELLED: u32 = 5;
pub const DRM_ASAHI_EXT_STATUS_NO_DEVICE: u32 = 6;

// drm_asahi_ext_result::guilt
pub const DRM_ASAHI_EXT_GUILT_NONE: u32 = 0;
pub const DRM_ASAHI_EXT_GUILT_GUILTY: u32 = 1;
pub const DRM_ASAHI_EXT_GUILT_INNOCENT: u32 = 2;

// drm_asahi_ext_fault::fault_type
pub const DRM_ASAHI_EXT_FAULT_NONE: u32 = 0;
pub const DRM_ASAHI_EXT_FAULT_UNMAPPED: u32 = 1;
pub const DRM_ASAHI_EXT_FAULT_PERMISSION: u32 = 2;
pub const DRM_ASAHI_EXT_FAULT_TIMEOUT: u32 = 3;
pub const DRM_ASAHI_EXT_FAULT_INJECTED: u32 = 4;
pub const DRM_ASAHI_EXT_FAULT_FIRMWARE: u32 = 5;
/// A control stream the GPU could not decode.
pub const DRM_ASAHI_EXT_FAULT_INVALID: u32 = 6;

// drm_asahi_ext_fault::unit
pub const DRM_ASAHI_EXT_UNIT_UNKNOWN: u32 = 0;
pub const DRM_ASAHI_EXT_UNIT_VDM: u32 = 1;
pub const DRM_ASAHI_EXT_UNIT_CDM: u32 = 2;
pub const DRM_ASAHI_EXT_UNIT_VERTEX: u32 = 3;
pub const DRM_ASAHI_EXT_UNIT_FRAGMENT: u32 = 4;
pub const DRM_ASAHI_EXT_UNIT_COMPUTE: u32 = 5;
pub const DRM_ASAHI_EXT_UNIT_FIRMWARE: u32 = 6;

// drm_asahi_ext_fault::flags
/// The faulting access was a write.
pub const DRM_ASAHI_EXT_FAULT_WRITE: u32 = 1 << 0;

/// A GPU fault as the firmware reported it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct drm_asahi_ext_fault {
    /// `DRM_ASAHI_EXT_FAULT_*`.
    pub fault_type: u32,
    /// `DRM_ASAHI_EXT_UNIT_*`.
    pub unit: u32,
    /// `DRM_ASAHI_EXT_FAULT_WRITE`.
    pub flags: u32,
    pub pad: u32,
    /// Faulting GPU virtual address (0 when not an access fault).
    pub address: u64,
}

/// Bytes the kernel writes for a `STATUS_ONLY` slot.
pub const DRM_ASAHI_EXT_RESULT_STATUS_SIZE: usize = 16;
/// Bytes the kernel writes for a default slot (no timestamps).
pub const DRM_ASAHI_EXT_RESULT_FAULT_SIZE: usize = 48;

/// Result record of one hardware command, written before its out-fences signal.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct drm_asahi_ext_result {
    /// `DRM_ASAHI_EXT_STATUS_*`; the kernel writes `PENDING` when it accepts the submit.
    pub status: u32,
    /// `DRM_ASAHI_EXT_GUILT_*`.
    pub guilt: u32,
    /// Times the command was re-run after recoveries.
    pub replay_count: u32,
    pub pad: u32,
    /// 1-based sequence number of the command on its queue.
    pub seqno: u64,
    /// The fault that ended the command (guilty) or the recovery (innocent).
    pub fault: drm_asahi_ext_fault,
    /// GPU time the (last) run started, ns (`TIMESTAMPS` only).
    pub gpu_start_ns: u64,
    /// GPU time the command ended, ns (`TIMESTAMPS` only).
    pub gpu_end_ns: u64,
}

// drm_asahi_ext_queue_get_state::flags
pub const DRM_ASAHI_EXT_QUEUE_BANNED: u32 = 1 << 0;
pub const DRM_ASAHI_EXT_QUEUE_GUILTY: u32 = 1 << 1;
pub const DRM_ASAHI_EXT_QUEUE_INNOCENT: u32 = 1 << 2;

/// Arguments of `DRM_IOCTL_ASAHI_EXT_QUEUE_GET_STATE`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct drm_asahi_ext_queue_get_state {
    /// In: the queue.
    pub queue_id: u32,
    /// MBZ.
    pub pad: u32,
    /// Out: `DRM_ASAHI_EXT_QUEUE_*`.
    pub flags: u32,
    /// Out: recoveries (stop-the-world cycles) this queue had work in flight for.
    pub reset_count: u32,
    /// Out: sequence number of the command whose fate banned the queue (0 if not banned).
    pub ban_seqno: u64,
    /// Out: the fault that banned the queue.
    pub fault: drm_asahi_ext_fault,
}

/// Ioctl id of `QUEUE_GET_STATE`, far from the upstream ids so upstream can keep growing.
pub const DRM_ASAHI_EXT_QUEUE_GET_STATE: u32 = 0x20;

pub const DRM_IOCTL_ASAHI_EXT_QUEUE_GET_STATE: u32 = iowr::<drm_asahi_ext_queue_get_state>(
    DRM_IOCTL_BASE,
    DRM_COMMAND_BASE + DRM_ASAHI_EXT_QUEUE_GET_STATE as u8,
);

// The layouts the document fixes; a change here is an ABI break.
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<drm_asahi_params_fault_ext>() == 32);
    assert!(size_of::<drm_asahi_ext_job_info>() == 24);
    assert!(offset_of!(drm_asahi_ext_job_info, result_offset) == 16);
    assert!(size_of::<drm_asahi_ext_fault>() == 24);
    assert!(offset_of!(drm_asahi_ext_fault, address) == 16);
    assert!(size_of::<drm_asahi_ext_result>() == 64);
    assert!(align_of::<drm_asahi_ext_result>() == 8);
    assert!(offset_of!(drm_asahi_ext_result, seqno) == 16);
    assert!(offset_of!(drm_asahi_ext_result, fault) == 24);
    assert!(offset_of!(drm_asahi_ext_result, gpu_start_ns) == DRM_ASAHI_EXT_RESULT_FAULT_SIZE);
    assert!(offset_of!(drm_asahi_ext_result, seqno) == DRM_ASAHI_EXT_RESULT_STATUS_SIZE);
    assert!(size_of::<drm_asahi_ext_queue_get_state>() == 48);
    assert!(offset_of!(drm_asahi_ext_queue_get_state, fault) == 24);
    assert!(DRM_IOCTL_ASAHI_EXT_QUEUE_GET_STATE == 0xC0306460);
};
