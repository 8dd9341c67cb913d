//! What happened to one submitted job, and whose fault it was.
//!
//! With the fault-report extension the outcome is read from the job's result record; on an
//! upstream kernel it is derived from the submit errno and the out-fence error (read through an
//! exported sync_file), and guilt is then [`Guilt::Unknown`]. Everything above (GL reset status,
//! Vulkan device loss, fault reports) is computed from this one type.

use agx_uapi::fault_ext as ext;

/// Whose fault a failed job was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Guilt {
    /// This job caused the fault or hang.
    Guilty,
    /// This job was a victim of another job's recovery.
    Innocent,
    /// The kernel cannot say (upstream uAPI).
    Unknown,
}

/// Kind of GPU fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Access to an unmapped GPU address.
    Unmapped,
    /// Write to a read-only mapping.
    Permission,
    /// The watchdog ended a hang.
    Timeout,
    /// A fault injected for testing.
    Injected,
    /// The firmware crashed.
    Firmware,
    /// A control stream the GPU could not decode.
    InvalidStream,
    /// The kernel did not say.
    Unknown,
}

/// The GPU unit that reported a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultUnit {
    Vdm,
    Cdm,
    Vertex,
    Fragment,
    Compute,
    Firmware,
    Unknown,
}

/// One GPU fault as the kernel reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FaultInfo {
    pub kind: FaultKind,
    pub unit: FaultUnit,
    /// The faulting access was a write (meaningful for access faults).
    pub write: bool,
    /// Faulting GPU virtual address, when the fault is an access fault.
    pub address: Option<u64>,
}

impl FaultInfo {
    /// A fault about which nothing is known (upstream uAPI).
    pub const UNKNOWN: FaultInfo = FaultInfo {
        kind: FaultKind::Unknown,
        unit: FaultUnit::Unknown,
        write: false,
        address: None,
    };

    /// Decodes the extension's fault record.
    pub fn from_raw(raw: &ext::drm_asahi_ext_fault) -> FaultInfo {
        let kind = match raw.fault_type {
            ext::DRM_ASAHI_EXT_FAULT_UNMAPPED => FaultKind::Unmapped,
            ext::DRM_ASAHI_EXT_FAULT_PERMISSION => FaultKind::Permission,
            ext::DRM_ASAHI_EXT_FAULT_TIMEOUT => FaultKind::Timeout,
            ext::DRM_ASAHI_EXT_FAULT_INJECTED => FaultKind::Injected,
            ext::DRM_ASAHI_EXT_FAULT_FIRMWARE => FaultKind::Firmware,
            ext::DRM_ASAHI_EXT_FAULT_INVALID => FaultKind::InvalidStream,
            _ => FaultKind::Unknown,
        };
        let unit = match raw.unit {
            ext::DRM_ASAHI_EXT_UNIT_VDM => FaultUnit::Vdm,
            ext::DRM_ASAHI_EXT_UNIT_CDM => FaultUnit::Cdm,
            ext::DRM_ASAHI_EXT_UNIT_VERTEX => FaultUnit::Vertex,
            ext::DRM_ASAHI_EXT_UNIT_FRAGMENT => FaultUnit::Fragment,
            ext::DRM_ASAHI_EXT_UNIT_COMPUTE => FaultUnit::Compute,
            ext::DRM_ASAHI_EXT_UNIT_FIRMWARE => FaultUnit::Firmware,
            _ => FaultUnit::Unknown,
        };
        let access = matches!(
            kind,
            FaultKind::Unmapped | FaultKind::Permission | FaultKind::InvalidStream
        );
        FaultInfo {
            kind,
            unit,
            write: raw.flags & ext::DRM_ASAHI_EXT_FAULT_WRITE != 0,
            address: access.then_some(raw.address),
        }
    }
}

/// The outcome of one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobOutcome {
    /// Ran once and completed.
    Complete,
    /// Completed after being re-run this many times as an innocent victim of recoveries.
    Replayed(u32),
    /// Ended by a GPU fault.
    Faulted { fault: FaultInfo, guilt: Guilt },
    /// Ended by the watchdog: this job hung.
    TimedOut,
    /// Stopped while running (or torn down with its queue).
    Killed {
        guilt: Guilt,
        fault: Option<FaultInfo>,
    },
    /// Never ran: its queue was banned before it started, or the submit was refused.
    Cancelled,
    /// The device is gone (firmware crash).
    DeviceGone,
}

impl JobOutcome {
    /// The job's work is in memory, exactly once.
    pub fn succeeded(&self) -> bool {
        matches!(self, JobOutcome::Complete | JobOutcome::Replayed(_))
    }

    /// The guilt this outcome implies for the context that submitted the job, if it failed.
    pub fn guilt(&self) -> Option<Guilt> {
        match *self {
            JobOutcome::Complete | JobOutcome::Replayed(_) => None,
            JobOutcome::Faulted { guilt, .. } | JobOutcome::Killed { guilt, .. } => Some(guilt),
            JobOutcome::TimedOut => Some(Guilt::Guilty),
            JobOutcome::Cancelled | JobOutcome::DeviceGone => Some(Guilt::Unknown),
        }
    }

    /// The fault behind a failure, when one is known.
    pub fn fault(&self) -> Option<FaultInfo> {
        match *self {
            JobOutcome::Faulted { fault, .. } => Some(fault),
            JobOutcome::Killed { fault, .. } => fault,
            _ => None,
        }
    }

    /// Decodes a final (non-pending) extension result record. `None` while still pending.
    pub fn from_record(rec: &ext::drm_asahi_ext_result) -> Option<JobOutcome> {
        let guilt = match rec.guilt {
            ext::DRM_ASAHI_EXT_GUILT_GUILTY => Guilt::Guilty,
            ext::DRM_ASAHI_EXT_GUILT_INNOCENT => Guilt::Innocent,
            _ => Guilt::Unknown,
        };
        let fault = FaultInfo::from_raw(&rec.fault);
        Some(match rec.status {
            ext::DRM_ASAHI_EXT_STATUS_PENDING => return None,
            ext::DRM_ASAHI_EXT_STATUS_COMPLETE if rec.replay_count == 0 => JobOutcome::Complete,
            ext::DRM_ASAHI_EXT_STATUS_COMPLETE => JobOutcome::Replayed(rec.replay_count),
            ext::DRM_ASAHI_EXT_STATUS_FAULT => JobOutcome::Faulted { fault, guilt },
            ext::DRM_ASAHI_EXT_STATUS_TIMEOUT => JobOutcome::TimedOut,
            ext::DRM_ASAHI_EXT_STATUS_KILLED => JobOutcome::Killed {
                guilt,
                fault: (rec.fault.fault_type != ext::DRM_ASAHI_EXT_FAULT_NONE).then_some(fault),
            },
            ext::DRM_ASAHI_EXT_STATUS_CANCELLED => JobOutcome::Cancelled,
            _ => JobOutcome::DeviceGone,
        })
    }

    /// Derives the outcome on an upstream kernel from the out-fence's error (the negative errno
    /// that `SYNC_IOC_FILE_INFO` reports; 0 for success). Guilt is unknown there.
    pub fn from_fence_error(error: i32) -> JobOutcome {
        match -error {
            0 => JobOutcome::Complete,
            libc::EIO => JobOutcome::Faulted {
                fault: FaultInfo::UNKNOWN,
                guilt: Guilt::Unknown,
            },
            libc::ETIMEDOUT | libc::ETIME => JobOutcome::TimedOut,
            libc::ENODEV => JobOutcome::DeviceGone,
            libc::ECANCELED | libc::ESRCH => JobOutcome::Killed {
                guilt: Guilt::Unknown,
                fault: None,
            },
            _ => JobOutcome::Faulted {
                fault: FaultInfo::UNKNOWN,
                guilt: Guilt::Unknown,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_decode() {
        let mut rec = ext::drm_asahi_ext_result::default();
        assert_eq!(JobOutcome::from_record(&rec), None);
        rec.status = ext::DRM_ASAHI_EXT_STATUS_COMPLETE;
        assert_eq!(JobOutcome::from_record(&rec), Some(JobOutcome::Complete));
        rec.replay_count = 2;
        assert_eq!(JobOutcome::from_record(&rec), Some(JobOutcome::Replayed(2)));
        rec.status = ext::DRM_ASAHI_EXT_STATUS_FAULT;
        rec.guilt = ext::DRM_ASAHI_EXT_GUILT_GUILTY;
        rec.fault = ext::drm_asahi_ext_fault {
            fault_type: ext::DRM_ASAHI_EXT_FAULT_PERMISSION,
            unit: ext::DRM_ASAHI_EXT_UNIT_FRAGMENT,
            flags: ext::DRM_ASAHI_EXT_FAULT_WRITE,
            pad: 0,
            address: 0x1234_0000,
        };
        let o = JobOutcome::from_record(&rec).unwrap();
        assert_eq!(o.guilt(), Some(Guilt::Guilty));
        assert_eq!(
            o.fault(),
            Some(FaultInfo {
                kind: FaultKind::Permission,
                unit: FaultUnit::Fragment,
                write: true,
                address: Some(0x1234_0000)
            })
        );
        rec.status = ext::DRM_ASAHI_EXT_STATUS_KILLED;
        rec.guilt = ext::DRM_ASAHI_EXT_GUILT_INNOCENT;
        assert_eq!(
            JobOutcome::from_record(&rec).unwrap().guilt(),
            Some(Guilt::Innocent)
        );
    }

    #[test]
    fn fence_errors_decode() {
        assert_eq!(JobOutcome::from_fence_error(0), JobOutcome::Complete);
        assert_eq!(
            JobOutcome::from_fence_error(-libc::ETIMEDOUT),
            JobOutcome::TimedOut
        );
        assert_eq!(
            JobOutcome::from_fence_error(-libc::ENODEV),
            JobOutcome::DeviceGone
        );
        assert_eq!(
            JobOutcome::from_fence_error(-libc::EIO).guilt(),
            Some(Guilt::Unknown)
        );
        assert!(!JobOutcome::from_fence_error(-libc::ECANCELED).succeeded());
    }
}
