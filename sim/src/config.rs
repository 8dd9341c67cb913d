//! What the simulated device is: its parameters (a G13G-class GPU, as in the M1) and the
//! firmware behaviour chosen for a run (recovery policy, watchdog, replay limit).

use agx_uapi::asahi::{drm_asahi_params_global, DRM_ASAHI_FEATURE_SOFT_FAULTS};
use agx_uapi::fault_ext as ext;

/// GPU page size: AGX uses 16 KiB pages.
pub const PAGE_SIZE: u64 = 16 * 1024;

/// What the firmware and kernel do with innocent work in flight when another job faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecoveryPolicy {
    /// Kill it and ban its queue (what upstream does today).
    KillInflight,
    /// Re-run restartable work from its start; kill the rest (DESIGN section 3).
    Replay,
    /// Let it continue where it stopped (to measure the silent corruption this causes).
    Continue,
}

impl RecoveryPolicy {
    pub const ALL: [RecoveryPolicy; 3] = [
        RecoveryPolicy::KillInflight,
        RecoveryPolicy::Replay,
        RecoveryPolicy::Continue,
    ];

    /// The extension's `recovery_policy` value.
    pub fn to_raw(self) -> u32 {
        match self {
            RecoveryPolicy::KillInflight => ext::DRM_ASAHI_RECOVERY_KILL_INFLIGHT,
            RecoveryPolicy::Replay => ext::DRM_ASAHI_RECOVERY_REPLAY,
            RecoveryPolicy::Continue => ext::DRM_ASAHI_RECOVERY_CONTINUE,
        }
    }

    /// Decodes the extension's `recovery_policy` value.
    pub fn from_raw(raw: u32) -> Option<RecoveryPolicy> {
        RecoveryPolicy::ALL.into_iter().find(|p| p.to_raw() == raw)
    }

    /// The name used on command lines and in `AGXWS_DEVICE` (`kill-inflight`, ...).
    pub fn name(self) -> &'static str {
        match self {
            RecoveryPolicy::KillInflight => "kill-inflight",
            RecoveryPolicy::Replay => "replay",
            RecoveryPolicy::Continue => "continue",
        }
    }

    /// Parses a [`RecoveryPolicy::name`].
    pub fn from_name(name: &str) -> Option<RecoveryPolicy> {
        RecoveryPolicy::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// What GPU time follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Clock {
    /// Virtual time: the GPU runs whenever work is runnable, as fast as the host can simulate
    /// it, so results do not depend on host timing (tests, campaigns).
    #[default]
    Virtual,
    /// GPU time is host time since the device was created: a command that costs 5 ms of GPU
    /// time takes 5 ms, and work of several processes overlaps as on real hardware
    /// (interactive programs, the evil-neighbour experiment).
    Host,
}

impl Clock {
    /// The name in option strings (`clock=host`).
    pub fn name(self) -> &'static str {
        match self {
            Clock::Virtual => "virtual",
            Clock::Host => "host",
        }
    }
}

/// Which control streams the simulated GPU runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StreamMode {
    /// Every stream is in the simulator's command language; anything else faults `INVALID`.
    #[default]
    Sim,
    /// Streams in the language run as usual; any other command (real AGX VDM/CDM words, as
    /// Mesa submits) runs as an opaque job (`gpu::opaque`, docs/sim-command-stream.md).
    Opaque,
}

impl StreamMode {
    pub const ALL: [StreamMode; 2] = [StreamMode::Sim, StreamMode::Opaque];

    /// The name used in device specs (`streams=opaque`).
    pub fn name(self) -> &'static str {
        match self {
            StreamMode::Sim => "sim",
            StreamMode::Opaque => "opaque",
        }
    }

    /// Parses a [`StreamMode::name`].
    pub fn from_name(name: &str) -> Option<StreamMode> {
        StreamMode::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// Configuration of one simulated device.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    pub policy: RecoveryPolicy,
    /// Times one command may be replayed.
    pub replay_limit: u32,
    /// Watchdog, in GPU nanoseconds.
    pub hang_timeout_ns: u64,
    /// `DRM_ASAHI_FEATURE_SOFT_FAULTS`.
    pub soft_faults: bool,
    /// Whether the fault-report extension exists (false: an upstream kernel).
    pub fault_ext: bool,
    /// Virtual GPU time one recovery (stop the world, reset, resume) takes.
    pub recovery_cost_ns: u64,
    /// What GPU time follows.
    pub clock: Clock,
    /// Whether commands in a foreign stream language run as opaque jobs.
    pub streams: StreamMode,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            policy: RecoveryPolicy::Replay,
            replay_limit: 3,
            hang_timeout_ns: 50_000_000,
            soft_faults: false,
            fault_ext: true,
            recovery_cost_ns: 200_000,
            clock: Clock::Virtual,
            streams: StreamMode::Sim,
        }
    }
}

impl SimConfig {
    /// Parses an option string, the part after `sim:` in a device spec: comma-separated
    /// `policy=kill-inflight|replay|continue`, `replay-limit=N`, `hang-timeout-ms=N` (or
    /// `hang-timeout-ns=N`), `recovery-cost-ns=N`, `soft-faults`, `upstream` (no fault-report
    /// extension), `streams=sim|opaque`, `clock=virtual|host`. Unnamed fields keep their
    /// defaults.
    pub fn from_options(opts: &str) -> Result<SimConfig, String> {
        let mut c = SimConfig::default();
        for item in opts.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item.split_once('=').unwrap_or((item, ""));
            let num = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| format!("{k}: not a number: {v:?}"))
            };
            let flag = |v: &str| {
                if v.is_empty() {
                    Ok(true)
                } else {
                    Err(format!("{k} takes no value"))
                }
            };
            match k {
                "policy" => {
                    c.policy = RecoveryPolicy::from_name(v)
                        .ok_or_else(|| format!("unknown policy {v:?}"))?
                }
                "replay-limit" => {
                    c.replay_limit = u32::try_from(num(v)?)
                        .map_err(|_| format!("replay-limit too large: {v}"))?
                }
                "hang-timeout-ms" => {
                    c.hang_timeout_ns = num(v)?
                        .checked_mul(1_000_000)
                        .ok_or_else(|| format!("hang-timeout-ms too large: {v}"))?
                }
                "hang-timeout-ns" => c.hang_timeout_ns = num(v)?,
                "recovery-cost-ns" => c.recovery_cost_ns = num(v)?,
                "soft-faults" => c.soft_faults = flag(v)?,
                "upstream" => c.fault_ext = !flag(v)?,
                "streams" => {
                    c.streams = StreamMode::from_name(v)
                        .ok_or_else(|| format!("unknown stream mode {v:?} (sim or opaque)"))?
                }
                "clock" => {
                    c.clock = [Clock::Virtual, Clock::Host]
                        .into_iter()
                        .find(|c| c.name() == v)
                        .ok_or_else(|| format!("unknown clock {v:?} (virtual or host)"))?
                }
                _ => return Err(format!("unknown option {k:?}")),
            }
        }
        Ok(c)
    }

    /// The options that [`SimConfig::from_options`] turns back into exactly this config.
    pub fn to_options(&self) -> String {
        let mut s = format!(
            "policy={},replay-limit={},hang-timeout-ns={},recovery-cost-ns={},streams={},clock={}",
            self.policy.name(),
            self.replay_limit,
            self.hang_timeout_ns,
            self.recovery_cost_ns,
            self.streams.name(),
            self.clock.name()
        );
        if self.soft_faults {
            s.push_str(",soft-faults");
        }
        if !self.fault_ext {
            s.push_str(",upstream");
        }
        s
    }
}

pub const VM_START: u64 = 0x4000;
pub const VM_END: u64 = 1 << 39;
pub const VM_KERNEL_MIN_SIZE: u64 = 64 << 20;
pub const MAX_COMMANDS_PER_SUBMISSION: u32 = 64;
pub const MAX_ATTACHMENTS: u32 = 64;
/// The timebase of the timestamps commands write: nanoseconds, as the asahi kernel driver
/// reports it ("user timestamps always in nanoseconds"; the firmware's own 24 MHz ticks are
/// not what userspace sees). Honeykrisp asserts this at device creation.
pub const TIMESTAMP_FREQUENCY_HZ: u64 = 1_000_000_000;

impl SimConfig {
    /// Param group 0: the upstream global parameters.
    pub fn params_global(&self) -> drm_asahi_params_global {
        let mut p = drm_asahi_params_global {
            features: if self.soft_faults {
                DRM_ASAHI_FEATURE_SOFT_FAULTS
            } else {
                0
            },
            gpu_generation: 13,
            gpu_variant: b'G' as u32,
            gpu_revision: 0x11,
            chip_id: 0x8103,
            num_dies: 1,
            num_clusters_total: 1,
            num_cores_per_cluster: 8,
            max_frequency_khz: 1_278_000,
            vm_start: VM_START,
            vm_end: VM_END,
            vm_kernel_min_size: VM_KERNEL_MIN_SIZE,
            max_commands_per_submission: MAX_COMMANDS_PER_SUBMISSION,
            max_attachments: MAX_ATTACHMENTS,
            command_timestamp_frequency_hz: TIMESTAMP_FREQUENCY_HZ,
            ..Default::default()
        };
        p.core_masks[0] = 0xff;
        p
    }

    /// Param group 1: the fault-report extension.
    pub fn params_fault_ext(&self) -> ext::drm_asahi_params_fault_ext {
        let mut features =
            ext::DRM_ASAHI_FAULT_EXT_FEATURE_RESULTS | ext::DRM_ASAHI_FAULT_EXT_FEATURE_QUEUE_STATE;
        if self.policy == RecoveryPolicy::Replay {
            features |= ext::DRM_ASAHI_FAULT_EXT_FEATURE_REPLAY;
        }
        ext::drm_asahi_params_fault_ext {
            version: ext::DRM_ASAHI_FAULT_EXT_VERSION,
            result_size: core::mem::size_of::<ext::drm_asahi_ext_result>() as u32,
            features,
            replay_limit: self.replay_limit,
            recovery_policy: self.policy.to_raw(),
            hang_timeout_ns: self.hang_timeout_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip() {
        let c = SimConfig::from_options(
            "policy=kill-inflight, replay-limit=7,hang-timeout-ms=5,soft-faults,upstream,clock=host,\
             streams=opaque",
        )
        .unwrap();
        assert_eq!(c.streams, StreamMode::Opaque);
        assert_eq!(c.policy, RecoveryPolicy::KillInflight);
        assert_eq!(c.replay_limit, 7);
        assert_eq!(c.hang_timeout_ns, 5_000_000);
        assert!(c.soft_faults && !c.fault_ext);
        assert_eq!(c.clock, Clock::Host);
        assert_eq!(SimConfig::from_options(&c.to_options()).unwrap(), c);
        let d = SimConfig::default();
        assert_eq!(SimConfig::from_options("").unwrap(), d);
        assert_eq!(SimConfig::from_options(&d.to_options()).unwrap(), d);
        for bad in [
            "policy=bogus",
            "frobnicate",
            "replay-limit=x",
            "replay-limit=99999999999",
            "hang-timeout-ms=99999999999999999",
            "clock=wall",
            "streams=mesa",
            "upstream=1",
        ] {
            assert!(SimConfig::from_options(bad).is_err(), "{bad}");
        }
    }
}
