//! Device parameters, typed: what `GET_PARAMS` group 0 (upstream) and group 1 (the fault-report
//! extension) say about the GPU.

use std::ops::Range;

use agx_uapi::asahi::{drm_asahi_params_global, DRM_ASAHI_FEATURE_SOFT_FAULTS};
use agx_uapi::fault_ext as ext;

/// The upstream global parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceParams {
    /// e.g. 13 for G13.
    pub gpu_generation: u32,
    /// e.g. 'G' for G13G.
    pub gpu_variant: char,
    /// BCD, e.g. 0x11 for B1.
    pub gpu_revision: u32,
    /// BCD, e.g. 0x8103 for T8103.
    pub chip_id: u32,
    pub num_dies: u32,
    pub num_clusters: u32,
    pub cores_per_cluster: u32,
    pub max_frequency_khz: u32,
    /// Enabled cores per cluster.
    pub core_masks: Vec<u64>,
    /// Window of GPU VAs userspace manages.
    pub vm_range: Range<u64>,
    /// Minimum size of the kernel's carve-out in each VM.
    pub vm_kernel_min_size: u64,
    pub max_commands_per_submission: u32,
    pub max_attachments: u32,
    pub timestamp_frequency_hz: u64,
    /// Unmapped shader loads read zero and stores are dropped.
    pub soft_faults: bool,
}

impl DeviceParams {
    pub fn from_raw(p: &drm_asahi_params_global) -> DeviceParams {
        let n = (p.num_clusters_total as usize).min(p.core_masks.len());
        DeviceParams {
            gpu_generation: p.gpu_generation,
            gpu_variant: char::from_u32(p.gpu_variant).unwrap_or('?'),
            gpu_revision: p.gpu_revision,
            chip_id: p.chip_id,
            num_dies: p.num_dies,
            num_clusters: p.num_clusters_total,
            cores_per_cluster: p.num_cores_per_cluster,
            max_frequency_khz: p.max_frequency_khz,
            core_masks: p.core_masks[..n].to_vec(),
            vm_range: p.vm_start..p.vm_end,
            vm_kernel_min_size: p.vm_kernel_min_size,
            max_commands_per_submission: p.max_commands_per_submission,
            max_attachments: p.max_attachments,
            timestamp_frequency_hz: p.command_timestamp_frequency_hz,
            soft_faults: p.features & DRM_ASAHI_FEATURE_SOFT_FAULTS != 0,
        }
    }

    /// Marketing-style name, e.g. `G13G B1`.
    pub fn gpu_name(&self) -> String {
        let rev = self.gpu_revision;
        let letter = (b'A' + ((rev >> 4) as u8).min(25)) as char;
        format!(
            "G{}{} {}{}",
            self.gpu_generation,
            self.gpu_variant,
            letter,
            rev & 0xf
        )
    }

    /// Total enabled cores.
    pub fn core_count(&self) -> u32 {
        self.core_masks.iter().map(|m| m.count_ones()).sum()
    }
}

/// The kernel's recovery policy, as the extension reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryPolicy {
    KillInflight,
    Replay,
    Continue,
    Unknown(u32),
}

/// What the fault-report extension offers on this kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultExtInfo {
    pub version: u32,
    pub result_size: u32,
    /// Per-command result records.
    pub results: bool,
    /// `QUEUE_GET_STATE`.
    pub queue_state: bool,
    /// The kernel replays restartable innocent work.
    pub replay: bool,
    pub replay_limit: u32,
    pub policy: RecoveryPolicy,
    pub hang_timeout_ns: u64,
}

impl FaultExtInfo {
    pub fn from_raw(p: &ext::drm_asahi_params_fault_ext) -> FaultExtInfo {
        FaultExtInfo {
            version: p.version,
            result_size: p.result_size,
            results: p.features & ext::DRM_ASAHI_FAULT_EXT_FEATURE_RESULTS != 0,
            queue_state: p.features & ext::DRM_ASAHI_FAULT_EXT_FEATURE_QUEUE_STATE != 0,
            replay: p.features & ext::DRM_ASAHI_FAULT_EXT_FEATURE_REPLAY != 0,
            replay_limit: p.replay_limit,
            policy: match p.recovery_policy {
                ext::DRM_ASAHI_RECOVERY_KILL_INFLIGHT => RecoveryPolicy::KillInflight,
                ext::DRM_ASAHI_RECOVERY_REPLAY => RecoveryPolicy::Replay,
                ext::DRM_ASAHI_RECOVERY_CONTINUE => RecoveryPolicy::Continue,
                other => RecoveryPolicy::Unknown(other),
            },
            hang_timeout_ns: p.hang_timeout_ns,
        }
    }
}
