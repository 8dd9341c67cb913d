//! Vulkan semantics of job failures, shared by the Vulkan layer (`agx-vk-layer`) and
//! honeykrisp (through the C ABI, `ffi::vulkan`).
//!
//! Vulkan knows one failure for work that went wrong on the GPU: `VK_ERROR_DEVICE_LOST`, and it
//! is for ever. This module holds the pieces of that contract that do not depend on a Vulkan
//! binding (no `ash` here; `VkResult` values are plain `i32` constants):
//!
//! - [`DeviceLostState`]: the sticky "device lost" bit of one `VkDevice`, set once, keeping the
//!   first fault report;
//! - [`vk_result_for`] / [`vk_result_for_submit_errno`]: the `VkResult` a job outcome or a
//!   refused submit maps to;
//! - [`FaultReport`]: what `vkGetDeviceFaultInfoEXT` reports (description, address infos,
//!   vendor infos carrying guilt, unit and the submission), built from a [`JobOutcome`];
//! - [`fault_log::FaultLog`]: what `vkGetDeviceFaultReportsKHR` reports (every fault once, in
//!   order, masked ones included), and [`DeviceFaultState`], which feeds both from the outcomes
//!   of a device's jobs.

pub mod fault_log;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;

use crate::outcome::{FaultInfo, FaultKind, FaultUnit, Guilt, JobOutcome};

/// `VK_SUCCESS`.
pub const VK_SUCCESS: i32 = 0;
/// `VK_NOT_READY`.
pub const VK_NOT_READY: i32 = 1;
/// `VK_TIMEOUT`.
pub const VK_TIMEOUT: i32 = 2;
/// `VK_INCOMPLETE`.
pub const VK_INCOMPLETE: i32 = 5;
/// `VK_ERROR_OUT_OF_HOST_MEMORY`.
pub const VK_ERROR_OUT_OF_HOST_MEMORY: i32 = -1;
/// `VK_ERROR_OUT_OF_DEVICE_MEMORY`.
pub const VK_ERROR_OUT_OF_DEVICE_MEMORY: i32 = -2;
/// `VK_ERROR_DEVICE_LOST`.
pub const VK_ERROR_DEVICE_LOST: i32 = -4;
/// `VK_ERROR_UNKNOWN`.
pub const VK_ERROR_UNKNOWN: i32 = -13;

/// `VK_MAX_DESCRIPTION_SIZE`: the size of the description arrays of `VkDeviceFaultInfoEXT` and
/// `VkDeviceFaultVendorInfoEXT`, terminating NUL included.
pub const VK_MAX_DESCRIPTION_SIZE: usize = 256;

/// The precision reported with a fault address: one page, as radv does.
pub const FAULT_ADDRESS_PRECISION: u64 = 4096;

/// The `VkResult` the completion of a job maps to: `VK_SUCCESS` for a job whose work is in
/// memory exactly once (complete or invisibly replayed), `VK_ERROR_DEVICE_LOST` for any failed
/// job, whatever its guilt.
pub fn vk_result_for(outcome: &JobOutcome) -> i32 {
    if outcome.succeeded() {
        VK_SUCCESS
    } else {
        VK_ERROR_DEVICE_LOST
    }
}

/// The `VkResult` of a submit the kernel refused with `errno` (0: accepted).
///
/// `ENOMEM` is the one error that leaves the device usable (`VK_ERROR_OUT_OF_DEVICE_MEMORY`,
/// nothing was queued); every other refusal (`ECANCELED`/`EIO`/`ENODEV` on a dead context,
/// anything unexpected) means the work cannot run and the device is lost.
pub fn vk_result_for_submit_errno(errno: i32) -> i32 {
    match errno {
        0 => VK_SUCCESS,
        libc::ENOMEM => VK_ERROR_OUT_OF_DEVICE_MEMORY,
        _ => VK_ERROR_DEVICE_LOST,
    }
}

/// Mirrors `VkDeviceFaultAddressTypeEXT` (same values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum FaultAddressType {
    /// `VK_DEVICE_FAULT_ADDRESS_TYPE_NONE_EXT`.
    None = 0,
    /// `VK_DEVICE_FAULT_ADDRESS_TYPE_READ_INVALID_EXT`.
    ReadInvalid = 1,
    /// `VK_DEVICE_FAULT_ADDRESS_TYPE_WRITE_INVALID_EXT`.
    WriteInvalid = 2,
    /// `VK_DEVICE_FAULT_ADDRESS_TYPE_EXECUTE_INVALID_EXT`.
    ExecuteInvalid = 3,
    /// `VK_DEVICE_FAULT_ADDRESS_TYPE_INSTRUCTION_POINTER_UNKNOWN_EXT`.
    InstructionPointerUnknown = 4,
    /// `VK_DEVICE_FAULT_ADDRESS_TYPE_INSTRUCTION_POINTER_INVALID_EXT`.
    InstructionPointerInvalid = 5,
    /// `VK_DEVICE_FAULT_ADDRESS_TYPE_INSTRUCTION_POINTER_FAULT_EXT`.
    InstructionPointerFault = 6,
}

/// One `VkDeviceFaultAddressInfoEXT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FaultAddress {
    /// `addressType`.
    pub kind: FaultAddressType,
    /// `reportedAddress`.
    pub address: u64,
    /// `addressPrecision`: a power of two; the fault is within the aligned block of this size
    /// around `address`.
    pub precision: u64,
}

/// One `VkDeviceFaultVendorInfoEXT`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FaultVendorInfo {
    /// `description` (truncated to 255 bytes when copied out).
    pub description: String,
    /// `vendorFaultCode`.
    pub code: u64,
    /// `vendorFaultData`.
    pub data: u64,
}

/// Vendor info codes used by [`FaultReport`] (`vendorFaultCode`).
pub mod vendor_code {
    /// Guilt: `data` is 0 guilty, 1 innocent, 2 unknown.
    pub const GUILT: u64 = 1;
    /// The GPU unit: `data` is the [`super::unit_code`] of the unit.
    pub const UNIT: u64 = 2;
    /// The submission (1-based count of the device's queue submissions): `data` is its number.
    pub const SUBMISSION: u64 = 3;
    /// The kind of fault: `data` is the [`super::kind_code`] of the kind.
    pub const KIND: u64 = 4;
    /// In masked reports (`VK_KHR_device_fault`): `data` is how many times the submission was
    /// re-run.
    pub const REPLAYS: u64 = 6;
}

/// Numeric code of a guilt in the `GUILT` vendor info.
pub fn guilt_code(g: Guilt) -> u64 {
    match g {
        Guilt::Guilty => 0,
        Guilt::Innocent => 1,
        Guilt::Unknown => 2,
    }
}

/// Human name of a guilt.
pub fn guilt_name(g: Guilt) -> &'static str {
    match g {
        Guilt::Guilty => "guilty",
        Guilt::Innocent => "innocent",
        Guilt::Unknown => "unknown",
    }
}

/// Numeric code of a unit in the `UNIT` vendor info.
pub fn unit_code(u: FaultUnit) -> u64 {
    match u {
        FaultUnit::Vdm => 1,
        FaultUnit::Cdm => 2,
        FaultUnit::Vertex => 3,
        FaultUnit::Fragment => 4,
        FaultUnit::Compute => 5,
        FaultUnit::Firmware => 6,
        FaultUnit::Unknown => 0,
    }
}

/// Human name of a unit.
pub fn unit_name(u: FaultUnit) -> &'static str {
    match u {
        FaultUnit::Vdm => "vdm",
        FaultUnit::Cdm => "cdm",
        FaultUnit::Vertex => "vertex",
        FaultUnit::Fragment => "fragment",
        FaultUnit::Compute => "compute",
        FaultUnit::Firmware => "firmware",
        FaultUnit::Unknown => "unknown",
    }
}

/// Numeric code of a fault kind in the `KIND` vendor info.
pub fn kind_code(k: FaultKind) -> u64 {
    match k {
        FaultKind::Unmapped => 1,
        FaultKind::Permission => 2,
        FaultKind::Timeout => 3,
        FaultKind::Injected => 4,
        FaultKind::Firmware => 5,
        FaultKind::InvalidStream => 6,
        FaultKind::Unknown => 0,
    }
}

/// Human name of a fault kind.
pub fn kind_name(k: FaultKind) -> &'static str {
    match k {
        FaultKind::Unmapped => "unmapped address",
        FaultKind::Permission => "permission",
        FaultKind::Timeout => "timeout",
        FaultKind::Injected => "injected",
        FaultKind::Firmware => "firmware crash",
        FaultKind::InvalidStream => "invalid command stream",
        FaultKind::Unknown => "unknown",
    }
}

/// What `vkGetDeviceFaultInfoEXT` reports about the fault that lost a device.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FaultReport {
    /// Whose fault it was.
    pub guilt: Guilt,
    /// The submission (1-based count of the device's queue submissions) the fault hit.
    pub submission: u64,
    /// `VkDeviceFaultInfoEXT::description`.
    pub description: String,
    /// Address infos (empty when no address is known).
    pub addresses: Vec<FaultAddress>,
    /// Vendor infos: guilt, submission, and unit and kind when known.
    pub vendor: Vec<FaultVendorInfo>,
}

impl FaultReport {
    /// The report for a failed job `outcome` of submission `submission`; `None` when the job
    /// succeeded (nothing to report).
    pub fn from_outcome(outcome: &JobOutcome, submission: u64) -> Option<FaultReport> {
        let guilt = outcome.guilt()?;
        let fault = outcome.fault();
        let what = match outcome {
            JobOutcome::Faulted { .. } => "GPU fault",
            JobOutcome::TimedOut => "GPU hang ended by the watchdog",
            JobOutcome::Killed { .. } => "job stopped by a GPU recovery",
            JobOutcome::Cancelled => "job cancelled before it ran",
            JobOutcome::DeviceGone => "GPU device gone",
            JobOutcome::Complete | JobOutcome::Replayed(_) => unreachable!("succeeded() above"),
        };
        let mut description = format!("{what} in submission {submission}");
        match guilt {
            Guilt::Guilty => description.push_str(", caused by this device's work (guilty)"),
            Guilt::Innocent => {
                description.push_str(", caused by another context (innocent, not restartable)")
            }
            Guilt::Unknown => description.push_str(", guilt unknown"),
        }
        let mut addresses = Vec::new();
        // An innocent job's fault is another context's: its address says nothing about this
        // application's memory (and belongs to someone else), so it is not reported.
        let own_fault = fault.filter(|_| guilt != Guilt::Innocent);
        if let Some(FaultInfo {
            address: Some(address),
            write,
            ..
        }) = own_fault
        {
            use std::fmt::Write as _;
            let _ = write!(
                description,
                ": invalid {} at 0x{address:x}",
                if write { "write" } else { "read" }
            );
            addresses.push(FaultAddress {
                kind: if write {
                    FaultAddressType::WriteInvalid
                } else {
                    FaultAddressType::ReadInvalid
                },
                address,
                precision: FAULT_ADDRESS_PRECISION,
            });
        }
        let mut vendor = vec![
            FaultVendorInfo {
                description: format!("guilt: {}", guilt_name(guilt)),
                code: vendor_code::GUILT,
                data: guilt_code(guilt),
            },
            FaultVendorInfo {
                description: format!("submission: {submission}"),
                code: vendor_code::SUBMISSION,
                data: submission,
            },
        ];
        let (unit, kind) = match (outcome, fault) {
            (_, Some(f)) => (f.unit, f.kind),
            (JobOutcome::TimedOut, None) => (FaultUnit::Unknown, FaultKind::Timeout),
            _ => (FaultUnit::Unknown, FaultKind::Unknown),
        };
        vendor.push(FaultVendorInfo {
            description: format!("unit: {}", unit_name(unit)),
            code: vendor_code::UNIT,
            data: unit_code(unit),
        });
        vendor.push(FaultVendorInfo {
            description: format!("kind: {}", kind_name(kind)),
            code: vendor_code::KIND,
            data: kind_code(kind),
        });
        Some(FaultReport {
            guilt,
            submission,
            description,
            addresses,
            vendor,
        })
    }

    /// The report for a loss the driver below reported (`VK_ERROR_DEVICE_LOST` from a call
    /// named `call`), of which nothing else is known.
    pub fn reported_below(call: &str, submissions: u64) -> FaultReport {
        let mut r = FaultReport::from_outcome(
            &JobOutcome::Killed {
                guilt: Guilt::Unknown,
                fault: None,
            },
            submissions,
        )
        .expect("a killed job is a failure");
        r.description = format!("device lost reported by the driver (by {call})");
        r
    }

    /// The report of a fault that would have been masked (another context's fault stopped
    /// submission `submission`, which could be replayed) made a loss, as
    /// `deviceFaultDeviceLostOnMasked` asks.
    pub fn masked_made_fatal(submission: u64) -> FaultReport {
        let mut r = FaultReport::from_outcome(
            &JobOutcome::Killed {
                guilt: Guilt::Innocent,
                fault: None,
            },
            submission,
        )
        .expect("a killed job is a failure");
        r.description = format!(
            "masked fault made fatal (deviceFaultDeviceLostOnMasked): another context's GPU \
             fault stopped submission {submission}, which could have been replayed"
        );
        r
    }

    /// `description` as a NUL-terminated `char[VK_MAX_DESCRIPTION_SIZE]` (truncated on a
    /// character boundary).
    pub fn description_array(&self) -> [u8; VK_MAX_DESCRIPTION_SIZE] {
        c_array(&self.description)
    }
}

/// `s` as a NUL-terminated `char[VK_MAX_DESCRIPTION_SIZE]`, truncated on a character boundary
/// to at most 255 bytes.
pub fn c_array(s: &str) -> [u8; VK_MAX_DESCRIPTION_SIZE] {
    let mut out = [0u8; VK_MAX_DESCRIPTION_SIZE];
    let mut n = s.len().min(VK_MAX_DESCRIPTION_SIZE - 1);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
    out
}

/// The sticky lost state of one `VkDevice`: set once, for ever; the first report is kept.
///
/// Lock-free to read ([`is_lost`](Self::is_lost) is one relaxed-acquire load), so every entry
/// point can check it.
#[derive(Debug, Default)]
pub struct DeviceLostState {
    lost: AtomicBool,
    report: OnceLock<FaultReport>,
}

impl DeviceLostState {
    /// A device that is not lost.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the device is lost.
    #[inline]
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// Marks the device lost with `report`. Returns true for the call that lost the device;
    /// later calls change nothing (the first report stays).
    pub fn set_lost(&self, report: FaultReport) -> bool {
        let first = self.report.set(report).is_ok();
        self.lost.store(true, Ordering::Release);
        first
    }

    /// The report of the fault that lost the device.
    pub fn report(&self) -> Option<&FaultReport> {
        if self.is_lost() {
            self.report.get()
        } else {
            None
        }
    }

    /// `result` of a call that may return `VK_ERROR_DEVICE_LOST`, made sticky: the loss if the
    /// device is lost, `result` otherwise.
    #[inline]
    pub fn sticky(&self, result: i32) -> i32 {
        if self.is_lost() {
            VK_ERROR_DEVICE_LOST
        } else {
            result
        }
    }
}

/// What a [`DeviceFaultState`] does with masked faults (`VK_KHR_device_fault`'s features).
pub mod masked_mode {
    /// `deviceFaultReportMasked`: a job replayed after another context's fault is logged as a
    /// masked fault (no loss).
    pub const REPORT: u32 = 1 << 0;
    /// `deviceFaultDeviceLostOnMasked`: such a job loses the device instead.
    pub const LOSE_DEVICE: u32 = 1 << 1;
    /// Every bit defined.
    pub const ALL: u32 = REPORT | LOSE_DEVICE;
}

/// The fault state of one `VkDevice` fed by the outcomes of its jobs: the sticky lost state
/// with the first fault (`VK_EXT_device_fault`) and the log of every fault
/// (`VK_KHR_device_fault`).
///
/// A job's outcome maps to the log as follows: a failed job (whatever its guilt) loses the
/// device and logs its report as a `DEVICE_LOST` group (a guilty fault with its address as
/// `MEMORY_ADDRESS`, a hang as `WATCHDOG_TIMEOUT`); a job replayed after another context's
/// fault (`JobOutcome::Replayed`) is a masked fault, logged with the submission it hit and the
/// replay count when [`masked_mode::REPORT`] is set, or a loss when
/// [`masked_mode::LOSE_DEVICE`] is; a complete job logs nothing.
#[derive(Debug, Default)]
pub struct DeviceFaultState {
    lost: DeviceLostState,
    log: fault_log::FaultLog,
    masked: AtomicU32,
}

impl DeviceFaultState {
    /// A device that is not lost, with an empty log, masked faults not reported.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sticky lost state and its first report.
    pub fn lost(&self) -> &DeviceLostState {
        &self.lost
    }

    /// The log `vkGetDeviceFaultReportsKHR` reads.
    pub fn log(&self) -> &fault_log::FaultLog {
        &self.log
    }

    /// Sets what masked faults do ([`masked_mode`] bits; unknown bits are ignored: the C ABI
    /// refuses them before).
    pub fn set_masked_mode(&self, mode: u32) {
        self.masked
            .store(mode & masked_mode::ALL, Ordering::Relaxed);
    }

    /// The [`masked_mode`] bits.
    pub fn masked_mode(&self) -> u32 {
        self.masked.load(Ordering::Relaxed)
    }

    /// Loses the device with `report`, logged as a `DEVICE_LOST` group. Returns true for the
    /// call that lost the device; later calls change nothing.
    pub fn set_lost(&self, report: FaultReport) -> bool {
        let first = self.lost.set_lost(report.clone());
        if first {
            self.log.lost(&report);
        }
        first
    }

    /// The outcome of a job of submission `submission` (the driver's 1-based count), once per
    /// job: loses the device or logs a masked fault as the type's documentation says. Returns
    /// the job's `VkResult`, sticky.
    pub fn observe(&self, outcome: &JobOutcome, submission: u64) -> i32 {
        match outcome {
            JobOutcome::Replayed(replays) => {
                let mode = self.masked_mode();
                if mode & masked_mode::LOSE_DEVICE != 0 {
                    self.set_lost(FaultReport::masked_made_fatal(submission));
                } else if mode & masked_mode::REPORT != 0 && !self.lost.is_lost() {
                    self.log.masked(submission, *replays);
                }
            }
            o => {
                if let Some(report) = FaultReport::from_outcome(o, submission) {
                    self.set_lost(report);
                }
            }
        }
        self.lost.sticky(vk_result_for(outcome))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guilty_fault() -> JobOutcome {
        JobOutcome::Faulted {
            fault: FaultInfo {
                kind: FaultKind::Unmapped,
                unit: FaultUnit::Fragment,
                write: true,
                address: Some(0xdead_1000),
            },
            guilt: Guilt::Guilty,
        }
    }

    #[test]
    fn results() {
        assert_eq!(vk_result_for(&JobOutcome::Complete), VK_SUCCESS);
        assert_eq!(vk_result_for(&JobOutcome::Replayed(3)), VK_SUCCESS);
        assert_eq!(vk_result_for(&guilty_fault()), VK_ERROR_DEVICE_LOST);
        assert_eq!(vk_result_for(&JobOutcome::TimedOut), VK_ERROR_DEVICE_LOST);
        assert_eq!(vk_result_for(&JobOutcome::Cancelled), VK_ERROR_DEVICE_LOST);
        let innocent = JobOutcome::Killed {
            guilt: Guilt::Innocent,
            fault: None,
        };
        assert_eq!(vk_result_for(&innocent), VK_ERROR_DEVICE_LOST);
        assert_eq!(vk_result_for_submit_errno(0), VK_SUCCESS);
        assert_eq!(
            vk_result_for_submit_errno(libc::ENOMEM),
            VK_ERROR_OUT_OF_DEVICE_MEMORY
        );
        for e in [libc::ECANCELED, libc::EIO, libc::ENODEV, libc::EINVAL] {
            assert_eq!(vk_result_for_submit_errno(e), VK_ERROR_DEVICE_LOST);
        }
    }

    #[test]
    fn report_from_guilty_fault() {
        let r = FaultReport::from_outcome(&guilty_fault(), 7).unwrap();
        assert_eq!(r.guilt, Guilt::Guilty);
        assert_eq!(r.submission, 7);
        assert!(r.description.contains("guilty"), "{}", r.description);
        assert!(r.description.contains("0xdead1000"), "{}", r.description);
        assert_eq!(
            r.addresses,
            vec![FaultAddress {
                kind: FaultAddressType::WriteInvalid,
                address: 0xdead_1000,
                precision: 4096
            }]
        );
        assert!(r.addresses[0].precision.is_power_of_two());
        let code = |c| r.vendor.iter().find(|v| v.code == c).unwrap().data;
        assert_eq!(code(vendor_code::GUILT), 0);
        assert_eq!(code(vendor_code::SUBMISSION), 7);
        assert_eq!(code(vendor_code::UNIT), unit_code(FaultUnit::Fragment));
        assert_eq!(code(vendor_code::KIND), kind_code(FaultKind::Unmapped));
    }

    #[test]
    fn report_innocent_and_timeout() {
        assert_eq!(FaultReport::from_outcome(&JobOutcome::Complete, 1), None);
        let r = FaultReport::from_outcome(
            &JobOutcome::Killed {
                guilt: Guilt::Innocent,
                fault: None,
            },
            3,
        )
        .unwrap();
        assert!(r.description.contains("innocent"));
        assert!(r.addresses.is_empty());
        assert_eq!(r.vendor[0].description, "guilt: innocent");
        let t = FaultReport::from_outcome(&JobOutcome::TimedOut, 2).unwrap();
        assert_eq!(t.guilt, Guilt::Guilty);
        assert!(t.vendor.iter().any(|v| v.description == "kind: timeout"));
        let b = FaultReport::reported_below("vkQueueSubmit", 4);
        assert_eq!(b.guilt, Guilt::Unknown);
        assert!(b.description.contains("vkQueueSubmit"));
    }

    #[test]
    fn c_array_truncates() {
        let a = c_array("abc");
        assert_eq!(&a[..4], b"abc\0");
        let long = "é".repeat(200);
        let a = c_array(&long);
        let n = a.iter().position(|&b| b == 0).unwrap();
        assert!(n <= 255);
        assert!(std::str::from_utf8(&a[..n]).is_ok());
    }

    #[test]
    fn lost_state_is_sticky_and_keeps_first_report() {
        let s = DeviceLostState::new();
        assert!(!s.is_lost());
        assert_eq!(s.report(), None);
        assert_eq!(s.sticky(VK_SUCCESS), VK_SUCCESS);
        let first = FaultReport::from_outcome(&guilty_fault(), 1).unwrap();
        assert!(s.set_lost(first.clone()));
        assert!(!s.set_lost(FaultReport::reported_below("x", 2)));
        assert!(s.is_lost());
        assert_eq!(s.report(), Some(&first));
        assert_eq!(s.sticky(VK_SUCCESS), VK_ERROR_DEVICE_LOST);
        assert_eq!(s.sticky(VK_TIMEOUT), VK_ERROR_DEVICE_LOST);
    }

    #[test]
    fn device_fault_state_maps_outcomes_to_the_log() {
        use fault_log::flags;
        let s = DeviceFaultState::new();
        // Masked faults are not reported unless asked for.
        assert_eq!(s.observe(&JobOutcome::Replayed(1), 1), VK_SUCCESS);
        assert_eq!(s.log().read(None, std::time::Duration::ZERO).left, 0);
        s.set_masked_mode(masked_mode::REPORT);
        assert_eq!(s.observe(&JobOutcome::Complete, 2), VK_SUCCESS);
        assert_eq!(s.observe(&JobOutcome::Replayed(2), 3), VK_SUCCESS);
        let r = s.log().read(Some(10), std::time::Duration::ZERO);
        assert_eq!(r.entries.len(), 3);
        assert!(r
            .entries
            .iter()
            .all(|e| e.flags == flags::VENDOR && e.group == 1));
        let data = |c| {
            r.entries
                .iter()
                .find_map(|e| e.vendor.as_ref().filter(|v| v.code == c))
                .unwrap()
                .data
        };
        assert_eq!(data(vendor_code::SUBMISSION), 3);
        assert_eq!(data(vendor_code::REPLAYS), 2);
        assert_eq!(data(vendor_code::GUILT), guilt_code(Guilt::Innocent));
        assert!(!s.lost().is_lost());
        // A guilty fault: lost, one DEVICE_LOST group with the address.
        assert_eq!(s.observe(&guilty_fault(), 4), VK_ERROR_DEVICE_LOST);
        assert_eq!(s.observe(&JobOutcome::Complete, 5), VK_ERROR_DEVICE_LOST);
        let e = s.log().read(Some(10), std::time::Duration::ZERO).entries;
        assert_eq!(e.len(), 4);
        assert_eq!(e[0].flags, flags::MEMORY_ADDRESS | flags::VENDOR);
        assert_eq!(e[0].address.unwrap().address, 0xdead_1000);
        assert_eq!(e[3].flags & flags::DEVICE_LOST, flags::DEVICE_LOST);
        assert!(e.iter().all(|x| x.group == 2));
        // Nothing after the loss, and the first report stays.
        assert!(!s.set_lost(FaultReport::reported_below("x", 6)));
        assert_eq!(s.lost().report().unwrap().submission, 4);
        assert!(s.log().read(Some(10), std::time::Duration::ZERO).closed);
    }

    #[test]
    fn innocent_loss_and_hang_and_lost_on_masked() {
        use fault_log::flags;
        let s = DeviceFaultState::new();
        let killed = JobOutcome::Killed {
            guilt: Guilt::Innocent,
            fault: None,
        };
        assert_eq!(s.observe(&killed, 9), VK_ERROR_DEVICE_LOST);
        let e = s.log().read(Some(10), std::time::Duration::ZERO).entries;
        assert!(e.iter().all(|x| x.flags & flags::MEMORY_ADDRESS == 0));
        assert_eq!(
            e.last().unwrap().flags & flags::DEVICE_LOST,
            flags::DEVICE_LOST
        );
        let guilt = e
            .iter()
            .find_map(|x| x.vendor.as_ref().filter(|v| v.code == vendor_code::GUILT))
            .unwrap();
        assert_eq!(guilt.data, guilt_code(Guilt::Innocent));

        let h = DeviceFaultState::new();
        assert_eq!(h.observe(&JobOutcome::TimedOut, 1), VK_ERROR_DEVICE_LOST);
        let e = h.log().read(Some(10), std::time::Duration::ZERO).entries;
        assert!(e.iter().all(|x| x.flags & flags::WATCHDOG_TIMEOUT != 0));

        let m = DeviceFaultState::new();
        m.set_masked_mode(masked_mode::REPORT | masked_mode::LOSE_DEVICE);
        assert_eq!(m.observe(&JobOutcome::Replayed(1), 3), VK_ERROR_DEVICE_LOST);
        let r = m.lost().report().unwrap();
        assert!(r.description.contains("deviceFaultDeviceLostOnMasked"));
        let e = m.log().read(Some(10), std::time::Duration::ZERO).entries;
        assert_eq!(
            e.last().unwrap().flags & flags::DEVICE_LOST,
            flags::DEVICE_LOST
        );
    }
}
