//! The fault reports of one device for `vkGetDeviceFaultReportsKHR`: a bounded log, read
//! destructively (each report is returned once, in order, to one caller), which a reader may
//! wait on.
//!
//! A fault is a *group* of entries sharing a `groupId`: a device-losing fault gives one entry
//! per address and vendor info of its [`FaultReport`], the last one flagged `DEVICE_LOST`,
//! after which nothing is logged; a *masked* fault (a neighbour's fault the layer replayed
//! invisibly) gives entries without `DEVICE_LOST`: its guilt, the submission it hit and the
//! number of replays. When the log is full the oldest entries go and the next entry read
//! carries `OVERFLOW` (the losing group is the newest, so it is never the one dropped).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use agx_winsys::outcome::{FaultKind, Guilt};
use agx_winsys::vulkan::{
    guilt_code, guilt_name, kind_code, vendor_code, FaultAddress, FaultReport, FaultVendorInfo,
};

use super::khr::flags;
use crate::dispatch::lock;

/// How many entries the log keeps (`maxDeviceFaultCount`). Model constant.
pub const CAPACITY: usize = 64;

/// Vendor info code of the replay count in masked reports (`vendorFaultData`: how many times
/// the submission was re-run).
pub const VENDOR_CODE_REPLAYS: u64 = 6;

/// One `VkDeviceFaultInfoKHR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub flags: u32,
    pub group: u64,
    pub description: String,
    pub address: Option<FaultAddress>,
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

/// The log.
#[derive(Debug, Default)]
pub struct FaultLog {
    inner: Mutex<Inner>,
    cv: Condvar,
}

/// What a read returned.
#[derive(Debug, PartialEq, Eq)]
pub struct Read {
    pub entries: Vec<Entry>,
    /// Entries still in the log after this read.
    pub left: usize,
}

impl FaultLog {
    /// Logs one fault made of `parts` (flags, address, vendor info), all with `description`;
    /// `lost` flags the last entry `DEVICE_LOST` and closes the log.
    fn push_group(
        &self,
        description: &str,
        parts: Vec<(u32, Option<FaultAddress>, Option<FaultVendorInfo>)>,
        lost: bool,
    ) {
        let mut g = lock(&self.inner);
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
                    VENDOR_CODE_REPLAYS,
                    u64::from(replays),
                ),
            ],
            false,
        );
    }

    /// The fault that lost the device: one entry per address and vendor info of `report`
    /// (one at least), `WATCHDOG_TIMEOUT` on every entry of a hang, `DEVICE_LOST` on the last.
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

    /// Takes up to `max` entries (none: only counts them), waiting until one is there or
    /// `deadline` passes (`None`: no deadline). A closed, drained log returns at once: nothing
    /// more will come. The condition variable is waited on without any other lock held.
    pub fn read(&self, max: Option<usize>, deadline: Option<Instant>) -> Read {
        let mut g = lock(&self.inner);
        while g.entries.is_empty() && !g.closed {
            let now = Instant::now();
            match deadline {
                Some(d) if d <= now => break,
                Some(d) => {
                    g = self
                        .cv
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
            }
        }
        let Some(max) = max else {
            return Read {
                entries: Vec::new(),
                left: g.entries.len(),
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agx_winsys::outcome::{FaultInfo, FaultUnit};
    use agx_winsys::JobOutcome;
    use std::sync::Arc;
    use std::time::Duration;

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
        let log = FaultLog::default();
        log.masked(3, 1);
        log.lost(&guilty_report());
        log.masked(9, 1); // after the loss: nothing more
        let r = log.read(None, Some(Instant::now()));
        assert_eq!(r.left, 3 + 4);
        let r = log.read(Some(2), None);
        assert_eq!(r.left, 5);
        assert!(r.entries.iter().all(|e| e.group == 1));
        assert!(r.entries.iter().all(|e| e.flags == flags::VENDOR));
        assert_eq!(r.entries[1].vendor.as_ref().unwrap().data, 3);
        let r = log.read(Some(10), None);
        assert_eq!(r.left, 0);
        assert_eq!(
            r.entries[0].vendor.as_ref().unwrap().code,
            VENDOR_CODE_REPLAYS
        );
        let lost: Vec<&Entry> = r.entries.iter().filter(|e| e.group == 2).collect();
        assert_eq!(lost.len(), 4);
        assert_eq!(lost[0].flags, flags::MEMORY_ADDRESS | flags::VENDOR);
        assert_eq!(lost[0].address.unwrap().address, 0x7fde_ad00_1000);
        assert!(lost[..3].iter().all(|e| e.flags & flags::DEVICE_LOST == 0));
        assert_ne!(lost[3].flags & flags::DEVICE_LOST, 0);
        // Drained and closed: a read with no deadline returns at once.
        let r = log.read(Some(1), None);
        assert!(r.entries.is_empty());
    }

    #[test]
    fn hang_is_a_watchdog_timeout() {
        let log = FaultLog::default();
        let r = FaultReport::from_outcome(&JobOutcome::TimedOut, 2).unwrap();
        log.lost(&r);
        let e = log.read(Some(100), None).entries;
        assert!(e.iter().all(|e| e.flags & flags::WATCHDOG_TIMEOUT != 0));
        assert!(e.iter().all(|e| e.flags & flags::MEMORY_ADDRESS == 0));
    }

    #[test]
    fn overflow_keeps_the_newest_and_says_so() {
        let log = FaultLog::default();
        for n in 1..=30 {
            log.masked(n, 1); // 3 entries each: 90 > CAPACITY
        }
        let r = log.read(Some(1), None);
        assert_eq!(r.left, CAPACITY - 1);
        assert_ne!(r.entries[0].flags & flags::OVERFLOW, 0);
        let r = log.read(Some(CAPACITY), None);
        assert!(r.entries.iter().all(|e| e.flags & flags::OVERFLOW == 0));
        let last = r.entries.last().unwrap();
        assert_eq!(last.group, 30);
    }

    #[test]
    fn a_reader_waits_for_a_fault_from_another_thread() {
        let log = Arc::new(FaultLog::default());
        let t0 = Instant::now();
        let r = log.read(Some(1), Some(t0 + Duration::from_millis(50)));
        assert!(r.entries.is_empty());
        assert!(t0.elapsed() >= Duration::from_millis(50));
        let l2 = log.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            l2.masked(5, 2);
        });
        let r = log.read(Some(8), Some(Instant::now() + Duration::from_secs(20)));
        writer.join().unwrap();
        assert_eq!(r.entries.len(), 3);
        assert!(t0.elapsed() < Duration::from_secs(20));
    }
}
