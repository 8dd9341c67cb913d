//! The fault reports of one `VkDevice` for `vkGetDeviceFaultReportsKHR` (`VK_KHR_device_fault`):
//! a bounded log, read destructively (each report is returned once, in order, to one caller),
//! which a reader may wait on for a bounded time.
//!
//! A fault is a *group* of entries sharing a `groupId`: a device-losing fault gives one entry
//! per address and vendor info of its [`FaultReport`], the last one flagged `DEVICE_LOST`,
//! after which nothing is logged; a *masked* fault (a neighbour's fault whose victim was
//! replayed invisibly, by the kernel's recovery or by the Vulkan layer) gives entries without
//! `DEVICE_LOST`: its guilt, the submission it hit and the number of replays. When the log is
//! full the oldest entries go and the next entry read carries `OVERFLOW` (the losing group is
//! the newest, so it is never the one dropped).
//!
//! Shared by the Vulkan layer (`agx-vk-layer`) and, through the C ABI, honeykrisp.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{
    guilt_code, guilt_name, kind_code, vendor_code, FaultAddress, FaultReport, FaultVendorInfo,
};
use crate::outcome::{FaultKind, Guilt};

/// `VkDeviceFaultFlagBitsKHR` (same values).
pub mod flags {
    /// The fault lost the device (the last entry of its group); nothing follows it.
    pub const DEVICE_LOST: u32 = 1 << 0;
    /// `faultAddressInfo` is filled.
    pub const MEMORY_ADDRESS: u32 = 1 << 1;
    /// `instructionAddressInfo` is filled.
    pub const INSTRUCTION_ADDRESS: u32 = 1 << 2;
    /// `vendorInfo` is filled.
    pub const VENDOR: u32 = 1 << 3;
    /// The fault was a GPU timeout.
    pub const WATCHDOG_TIMEOUT: u32 = 1 << 4;
    /// Earlier reports were lost (the log overflowed); set on the first entry read after.
    pub const OVERFLOW: u32 = 1 << 5;
}

/// How many entries the log keeps (`maxDeviceFaultCount`). Model constant.
pub const CAPACITY: usize = 64;

/// The longest a reader waits, whatever timeout it asked for (about 31.7 years): every wait of
/// the library is bounded, and `Instant` arithmetic must not overflow.
const MAX_WAIT: Duration = Duration::from_secs(1 << 30);

/// One `VkDeviceFaultInfoKHR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `flags` ([`flags`]).
    pub flags: u32,
    /// `groupId`: the entries of one fault share it (1, 2, ... per device).
    pub group: u64,
    /// `description`.
    pub description: String,
    /// `faultAddressInfo` (`MEMORY_ADDRESS`).
    pub address: Option<FaultAddress>,
    /// `vendorInfo` (`VENDOR`).
    pub vendor: Option<FaultVendorInfo>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: VecDeque<Entry>,
    next_group: u64,
    /// Entries were dropped since the last read.
    overflowed: bool,
    /// A device-losing group was logged: nothing more will be.
    closed: bool,
}

/// The log of one device.
#[derive(Debug, Default)]
pub struct FaultLog {
    inner: Mutex<Inner>,
    cv: Condvar,
}

/// What a read returned.
#[derive(Debug, PartialEq, Eq)]
pub struct Read {
    /// The entries taken, oldest first (none for a read that only counts).
    pub entries: Vec<Entry>,
    /// Entries still in the log after this read.
    pub left: usize,
    /// The log is closed (the device is lost): nothing will be logged any more.
    pub closed: bool,
}

impl FaultLog {
    /// An empty log.
    pub fn new() -> FaultLog {
        FaultLog::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs one fault made of `parts` (flags, address, vendor info), all with `description`;
    /// `lost` flags the last entry `DEVICE_LOST` and closes the log.
    fn push_group(
        &self,
        description: &str,
        parts: Vec<(u32, Option<FaultAddress>, Option<FaultVendorInfo>)>,
        lost: bool,
    ) {
        let mut g = self.lock();
        if g.closed {
            return;
        }
        g.next_group += 1;
        let group = g.next_group;
        let n = parts.len();
        for (i, (mut fl, address, vendor)) in parts.into_iter().enumerate() {
            if lost && i + 1 == n {
                fl |= flags::DEVICE_LOST;
            }
            g.entries.push_back(Entry {
                flags: fl,
                group,
                description: description.to_string(),
                address,
                vendor,
            });
        }
        while g.entries.len() > CAPACITY {
            g.entries.pop_front();
            g.overflowed = true;
        }
        g.closed |= lost;
        drop(g);
        self.cv.notify_all();
    }

    /// A masked fault: a neighbour's fault hit submission `n`, which was replayed `replays`
    /// times and completed; the application was told nothing.
    pub fn masked(&self, n: u64, replays: u32) {
        let vendor = |description: String, code, data| {
            (
                flags::VENDOR,
                None,
                Some(FaultVendorInfo {
                    description,
                    code,
                    data,
                }),
            )
        };
        self.push_group(
            &format!(
                "masked: another context's GPU fault stopped submission {n}, replayed {replays} \
                 time(s), no loss"
            ),
            vec![
                vendor(
                    format!("guilt: {}", guilt_name(Guilt::Innocent)),
                    vendor_code::GUILT,
                    guilt_code(Guilt::Innocent),
                ),
                vendor(format!("submission: {n}"), vendor_code::SUBMISSION, n),
                vendor(
                    format!("replays: {replays}"),
                    vendor_code::REPLAYS,
                    u64::from(replays),
                ),
            ],
            false,
        );
    }

    /// The fault that lost the device: one entry per address and vendor info of `report`
    /// (one at least), `WATCHDOG_TIMEOUT` on every entry of a hang, `DEVICE_LOST` on the last.
    /// Closes the log.
    pub fn lost(&self, report: &FaultReport) {
        let hang = report
            .vendor
            .iter()
            .any(|v| v.code == vendor_code::KIND && v.data == kind_code(FaultKind::Timeout));
        let base = if hang { flags::WATCHDOG_TIMEOUT } else { 0 };
        let n = report.addresses.len().max(report.vendor.len()).max(1);
        let parts = (0..n)
            .map(|i| {
                let address = report.addresses.get(i).copied();
                let vendor = report.vendor.get(i).cloned();
                let mut fl = base;
                if address.is_some() {
                    fl |= flags::MEMORY_ADDRESS;
                }
                if vendor.is_some() {
                    fl |= flags::VENDOR;
                }
                (fl, address, vendor)
            })
            .collect();
        self.push_group(&report.description, parts, true);
    }

    /// Takes up to `max` entries (`None`: only counts them), waiting up to `timeout` until one
    /// is there. A closed, drained log returns at once: nothing more will come. The wait is
    /// bounded (at most about 31 years, whatever `timeout` says) and holds no lock: the
    /// condition variable releases the log's mutex while it waits.
    pub fn read(&self, max: Option<usize>, timeout: Duration) -> Read {
        let now = Instant::now();
        let deadline = now
            .checked_add(timeout.min(MAX_WAIT))
            .unwrap_or(now + Duration::from_secs(1));
        let mut g = self.lock();
        while g.entries.is_empty() && !g.closed {
            let now = Instant::now();
            if deadline <= now {
                break;
            }
            g = self
                .cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let closed = g.closed;
        let Some(max) = max else {
            return Read {
                entries: Vec::new(),
                left: g.entries.len(),
                closed,
            };
        };
        let k = max.min(g.entries.len());
        let mut entries: Vec<Entry> = g.entries.drain(..k).collect();
        if let Some(first) = entries.first_mut() {
            if std::mem::take(&mut g.overflowed) {
                first.flags |= flags::OVERFLOW;
            }
        }
        Read {
            entries,
            left: g.entries.len(),
            closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{FaultInfo, FaultUnit};
    use crate::JobOutcome;
    use std::sync::Arc;

    const LONG: Duration = Duration::from_secs(20);

    fn guilty_report() -> FaultReport {
        FaultReport::from_outcome(
            &JobOutcome::Faulted {
                fault: FaultInfo {
                    address: Some(0x7fde_ad00_1000),
                    write: true,
                    unit: FaultUnit::Fragment,
                    kind: FaultKind::Unmapped,
                },
                guilt: Guilt::Guilty,
            },
            7,
        )
        .unwrap()
    }

    #[test]
    fn masked_then_lost_in_order_once() {
        let log = FaultLog::new();
        log.masked(3, 1);
        log.lost(&guilty_report());
        log.masked(9, 1); // after the loss: nothing more
        let r = log.read(None, Duration::ZERO);
        assert_eq!(r.left, 3 + 4);
        assert!(r.closed);
        let r = log.read(Some(2), LONG);
        assert_eq!(r.left, 5);
        assert!(r.entries.iter().all(|e| e.group == 1));
        assert!(r.entries.iter().all(|e| e.flags == flags::VENDOR));
        assert_eq!(r.entries[1].vendor.as_ref().unwrap().data, 3);
        let r = log.read(Some(10), LONG);
        assert_eq!(r.left, 0);
        assert_eq!(
            r.entries[0].vendor.as_ref().unwrap().code,
            vendor_code::REPLAYS
        );
        let lost: Vec<&Entry> = r.entries.iter().filter(|e| e.group == 2).collect();
        assert_eq!(lost.len(), 4);
        assert_eq!(lost[0].flags, flags::MEMORY_ADDRESS | flags::VENDOR);
        assert_eq!(lost[0].address.unwrap().address, 0x7fde_ad00_1000);
        assert!(lost[..3].iter().all(|e| e.flags & flags::DEVICE_LOST == 0));
        assert_ne!(lost[3].flags & flags::DEVICE_LOST, 0);
        // Drained and closed: a read with a long timeout returns at once.
        let t0 = Instant::now();
        let r = log.read(Some(1), LONG);
        assert!(r.entries.is_empty() && r.closed);
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn hang_is_a_watchdog_timeout() {
        let log = FaultLog::new();
        let r = FaultReport::from_outcome(&JobOutcome::TimedOut, 2).unwrap();
        log.lost(&r);
        let e = log.read(Some(100), LONG).entries;
        assert!(!e.is_empty());
        assert!(e.iter().all(|e| e.flags & flags::WATCHDOG_TIMEOUT != 0));
        assert!(e.iter().all(|e| e.flags & flags::MEMORY_ADDRESS == 0));
    }

    #[test]
    fn overflow_keeps_the_newest_and_says_so() {
        let log = FaultLog::new();
        for n in 1..=30 {
            log.masked(n, 1); // 3 entries each: 90 > CAPACITY
        }
        let r = log.read(Some(1), LONG);
        assert_eq!(r.left, CAPACITY - 1);
        assert_ne!(r.entries[0].flags & flags::OVERFLOW, 0);
        let r = log.read(Some(CAPACITY), LONG);
        assert!(r.entries.iter().all(|e| e.flags & flags::OVERFLOW == 0));
        let last = r.entries.last().unwrap();
        assert_eq!(last.group, 30);
    }

    #[test]
    fn a_reader_waits_for_a_fault_from_another_thread() {
        let log = Arc::new(FaultLog::new());
        let t0 = Instant::now();
        let r = log.read(Some(1), Duration::from_millis(50));
        assert!(r.entries.is_empty() && !r.closed);
        assert!(t0.elapsed() >= Duration::from_millis(50));
        let l2 = log.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            l2.masked(5, 2);
        });
        let r = log.read(Some(8), LONG);
        writer.join().unwrap();
        assert_eq!(r.entries.len(), 3);
        assert!(t0.elapsed() < LONG);
    }

    #[test]
    fn the_longest_timeout_is_bounded_and_does_not_overflow() {
        let log = FaultLog::new();
        log.masked(1, 1);
        // u64::MAX ns (the C ABI's "infinite") with an entry there: returns at once.
        let r = log.read(Some(3), Duration::from_nanos(u64::MAX));
        assert_eq!(r.entries.len(), 3);
    }
}
