//! The scripted sequence. Every step appends one line `step-name: rc=<0|ERRNO> fields...`;
//! nothing timing-dependent is printed (a blocking wait reports whether it returned before
//! its deadline, not how long it took).

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use agx_uapi::drm::*;
use agx_uapi::sync_file::*;
use agx_winsys::ioctl as wio;
use agx_winsys::kernel::KernelFile;
use bytemuck::Zeroable;
use rustix::io::Errno;

use crate::gpu::{Target, TestFile};

const ALL: u32 = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL;
const FOR_SUBMIT: u32 = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT;
const AVAILABLE: u32 = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE;
const DEADLINE: u32 = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE;
const LAST_SUBMITTED: u32 = DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED;
const EIO: i32 = -5;
const ECANCELED: i32 = -125;

/// How long a helper thread waits before it acts, and a "short" deadline.
const HELPER_DELAY: Duration = Duration::from_millis(100);
const SHORT_NS: i64 = 50_000_000;
/// A deadline no step should reach (the helpers act long before).
const LONG_NS: i64 = 10_000_000_000;

fn errname(e: Errno) -> String {
    let n = e.raw_os_error();
    let name = match n {
        1 => "EPERM",
        2 => "ENOENT",
        4 => "EINTR",
        5 => "EIO",
        9 => "EBADF",
        11 => "EAGAIN",
        12 => "ENOMEM",
        14 => "EFAULT",
        16 => "EBUSY",
        22 => "EINVAL",
        25 => "ENOTTY",
        62 => "ETIME",
        95 => "EOPNOTSUPP",
        110 => "ETIMEDOUT",
        125 => "ECANCELED",
        19 => "ENODEV",
        _ => return format!("E#{n}"),
    };
    name.to_owned()
}

/// `rc=0` or `rc=ERRNO`.
fn rc<T>(r: &Result<T, Errno>) -> String {
    match r {
        Ok(_) => "rc=0".to_owned(),
        Err(e) => format!("rc={}", errname(*e)),
    }
}

fn ws<T>(r: agx_winsys::Result<T>) -> Result<T, Errno> {
    r.map_err(|e| e.errno())
}

fn now_ns() -> i64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec * 1_000_000_000 + t.tv_nsec
}

/// A deadline that has passed (1 ms ago).
fn past() -> i64 {
    now_ns() - 1_000_000
}

fn soon() -> i64 {
    now_ns() + SHORT_NS
}

fn later() -> i64 {
    now_ns() + LONG_NS
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// What `SYNC_IOC_FILE_INFO` says about a sync_file, both ways.
struct Info {
    /// `num_fences = 0`: the file's own fence (6.1: 1 for a chain even if its point failed).
    fast_status: i32,
    num_fences: u32,
    /// `agx_winsys::ioctl::sync_file_status` (with the fence array).
    status: i32,
    /// Each fence's status.
    fences: Vec<i32>,
    /// Each fence's driver name.
    drivers: Vec<String>,
}

fn cstr(b: &[u8]) -> String {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n]).into_owned()
}

fn file_info(k: &dyn KernelFile, fd: BorrowedFd<'_>) -> Result<Info, Errno> {
    let mut fast = sync_file_info::zeroed();
    k.fd_ioctl(fd, SYNC_IOC_FILE_INFO, bytemuck::bytes_of_mut(&mut fast))?;
    let status = ws(wio::sync_file_status(k, fd))?;
    let mut infos = vec![sync_fence_info::zeroed(); fast.num_fences as usize];
    let mut full = sync_file_info::zeroed();
    full.num_fences = fast.num_fences;
    full.sync_fence_info = infos.as_mut_ptr() as u64;
    if fast.num_fences > 0 {
        k.fd_ioctl(fd, SYNC_IOC_FILE_INFO, bytemuck::bytes_of_mut(&mut full))?;
    }
    Ok(Info {
        fast_status: fast.status,
        num_fences: fast.num_fences,
        status,
        fences: infos.iter().map(|i| i.status).collect(),
        drivers: infos.iter().map(|i| cstr(&i.driver_name)).collect(),
    })
}

fn fmt_info(r: &Result<Info, Errno>) -> String {
    match r {
        Ok(i) => format!(
            "fast-status={} num-fences={} status={} fences={:?}",
            i.fast_status, i.num_fences, i.status, i.fences
        ),
        Err(e) => format!("file-info-rc={}", errname(*e)),
    }
}

/// `SYNC_IOC_MERGE` of two sync_files.
fn merge(k: &dyn KernelFile, a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    use std::os::fd::AsRawFd;
    let mut m = sync_merge_data::zeroed();
    m.name[..5].copy_from_slice(b"kdiff");
    m.fd2 = b.as_raw_fd();
    m.fence = -1;
    k.fd_ioctl(a, SYNC_IOC_MERGE, bytemuck::bytes_of_mut(&mut m))?;
    #[allow(unsafe_code)]
    // SAFETY: the ioctl succeeded, so `m.fence` is a new descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(m.fence) })
}

/// The transcript being written.
struct Out;

impl Out {
    fn line(&self, step: &str, rest: impl AsRef<str>) {
        let rest = rest.as_ref();
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{step}: {rest}");
        let _ = o.flush();
    }
}

/// The steps, on files opened from `target`.
pub struct Run<'t> {
    target: &'t Target,
    a: Box<dyn TestFile>,
    out: Out,
}

impl<'t> Run<'t> {
    pub fn new(target: &'t Target) -> Result<Run<'t>, Errno> {
        Ok(Run {
            target,
            a: target.open()?,
            out: Out,
        })
    }

    fn k(&self) -> &dyn KernelFile {
        self.a.kernel()
    }

    // ---- one-line step helpers ------------------------------------------------------------

    fn create(&self, step: &str, signaled: bool) -> u32 {
        let r = ws(wio::syncobj_create(self.k(), signaled));
        match r {
            Ok(h) => self.out.line(step, format!("rc=0 handle={h}")),
            Err(_) => self.out.line(step, rc(&r)),
        }
        r.unwrap_or(0)
    }

    fn attach(&self, step: &str, handle: u32, point: u64) -> u64 {
        let r = self.a.attach(handle, point);
        match r {
            Ok(id) => self.out.line(step, format!("rc=0 id={id}")),
            Err(_) => self.out.line(step, rc(&r)),
        }
        r.unwrap_or(0)
    }

    fn signal_fence(&self, step: &str, id: u64, error: i32) {
        let r = self.a.signal(id, error);
        self.out.line(step, rc(&r));
    }

    fn wait_on(
        &self,
        k: &dyn KernelFile,
        step: &str,
        handles: &[u32],
        points: Option<&[u64]>,
        deadline: i64,
        flags: u32,
    ) {
        let r = ws(wio::syncobj_wait(k, handles, points, deadline, flags));
        match r {
            Ok(first) => self.out.line(step, format!("rc=0 first={first}")),
            Err(_) => self.out.line(step, rc(&r)),
        }
    }

    fn wait(&self, step: &str, handles: &[u32], deadline: i64, flags: u32) {
        self.wait_on(self.k(), step, handles, None, deadline, flags);
    }

    fn twait(&self, step: &str, handles: &[u32], points: &[u64], deadline: i64, flags: u32) {
        self.wait_on(self.k(), step, handles, Some(points), deadline, flags);
    }

    /// A wait that a helper thread (`helper`, run after [`HELPER_DELAY`]) satisfies. The
    /// helper reports its own line after the wait's.
    fn wait_with_helper(
        &self,
        step: &str,
        handles: &[u32],
        points: Option<&[u64]>,
        flags: u32,
        helper: impl FnOnce() -> String + Send,
    ) {
        let deadline = later();
        let (r, helper_line) = std::thread::scope(|s| {
            let h = s.spawn(move || {
                std::thread::sleep(HELPER_DELAY);
                helper()
            });
            let r = ws(wio::syncobj_wait(
                self.k(),
                handles,
                points,
                deadline,
                flags,
            ));
            let before = now_ns() < deadline;
            (r.map(|f| (f, before)), h.join().expect("helper thread"))
        });
        match r {
            Ok((first, before)) => self.out.line(
                step,
                format!("rc=0 first={first} before-deadline={}", yes(before)),
            ),
            Err(e) => self.out.line(step, rc::<()>(&Err(e))),
        }
        self.out.line(&format!("{step}-helper"), helper_line);
    }

    fn query(&self, step: &str, handle: u32) {
        let mut cur = [u64::MAX];
        let mut last = [u64::MAX];
        let r1 = ws(wio::syncobj_query(self.k(), &[handle], &mut cur, 0));
        let r2 = ws(wio::syncobj_query(
            self.k(),
            &[handle],
            &mut last,
            LAST_SUBMITTED,
        ));
        match (&r1, &r2) {
            (Ok(()), Ok(())) => self.out.line(
                step,
                format!("rc=0 point={} last-submitted={}", cur[0], last[0]),
            ),
            _ => self
                .out
                .line(step, format!("{} last-submitted-{}", rc(&r1), rc(&r2))),
        }
    }

    fn reset(&self, step: &str, handles: &[u32]) {
        let r = ws(wio::syncobj_reset(self.k(), handles));
        self.out.line(step, rc(&r));
    }

    fn signal(&self, step: &str, handles: &[u32], points: Option<&[u64]>) {
        let r = ws(wio::syncobj_signal(self.k(), handles, points));
        self.out.line(step, rc(&r));
    }

    fn transfer(&self, step: &str, src: u32, src_point: u64, dst: u32, dst_point: u64, flags: u32) {
        let r = ws(wio::syncobj_transfer(
            self.k(),
            src,
            src_point,
            dst,
            dst_point,
            flags,
        ));
        self.out.line(step, rc(&r));
    }

    /// Exports `handle` (at `point`) as a sync_file and reports its `FILE_INFO` on one line.
    fn export_on(
        &self,
        k: &dyn KernelFile,
        step: &str,
        handle: u32,
        point: Option<u64>,
    ) -> Option<OwnedFd> {
        let r = ws(wio::syncobj_export_sync_file(k, handle, point));
        match r {
            Ok(fd) => {
                let info = file_info(k, fd.as_fd());
                self.out.line(step, format!("rc=0 {}", fmt_info(&info)));
                Some(fd)
            }
            Err(e) => {
                self.out.line(step, rc::<()>(&Err(e)));
                None
            }
        }
    }

    fn export(&self, step: &str, handle: u32, point: Option<u64>) -> Option<OwnedFd> {
        self.export_on(self.k(), step, handle, point)
    }

    fn info(&self, step: &str, fd: &Option<OwnedFd>) {
        match fd {
            Some(fd) => {
                let info = file_info(self.k(), fd.as_fd());
                self.out.line(step, fmt_info(&info));
            }
            None => self.out.line(step, "no-fd"),
        }
    }

    fn import(&self, step: &str, handle: u32, fd: Option<BorrowedFd<'_>>, point: Option<u64>) {
        let Some(fd) = fd else {
            self.out.line(step, "no-fd");
            return;
        };
        let r = ws(wio::syncobj_import_sync_file(self.k(), handle, fd, point));
        self.out.line(step, rc(&r));
    }

    // ---- the sequence ---------------------------------------------------------------------

    pub fn all(&self) {
        self.binary();
        self.reset_signal();
        self.for_submit();
        self.timeline();
        self.transfers();
        self.export_import();
        self.errors();
        self.hiding();
        self.handles();
        self.first_signaled();
        self.out.line("done", "rc=0");
    }

    fn binary(&self) {
        let u = self.create("create-unsignaled", false);
        let s = self.create("create-signaled", true);
        self.wait("wait-signaled-past", &[s], past(), 0);
        self.wait("wait-signaled-zero-timeout", &[s], 0, 0);
        self.wait("wait-empty-past", &[u], past(), 0);
        self.wait("wait-any-empty-signaled-past", &[u, s], past(), 0);
        self.wait("wait-empty-for-submit-past", &[u], past(), FOR_SUBMIT);
        self.wait("wait-any-for-submit-past", &[u, s], past(), FOR_SUBMIT);
        self.wait(
            "wait-all-for-submit-past",
            &[u, s],
            past(),
            FOR_SUBMIT | ALL,
        );
        let id = self.attach("attach-pending", u, 0);
        self.wait("wait-pending-past", &[u], past(), 0);
        self.wait("wait-pending-short", &[u], soon(), 0);
        self.wait("wait-any-pending-signaled-short", &[u, s], soon(), 0);
        self.wait("wait-all-pending-signaled-short", &[s, u], soon(), ALL);
        self.signal_fence("signal-pending", id, 0);
        self.wait("wait-all-after-signal-past", &[u, s], past(), ALL);
        self.signal_fence("signal-again", id, 0);
        self.signal_fence("signal-positive-error", id, 5);
        self.wait("wait-flag-deadline", &[s], past(), DEADLINE);
        self.wait("wait-unknown-flag", &[s], past(), 1 << 7);
        self.wait("wait-no-handles", &[], past(), 0);
        self.twait("twait-no-handles", &[], &[], past(), 0);
        self.twait("twait-no-handles-bad-flag", &[], &[], past(), 1 << 7);
        self.twait("twait-binary-point0", &[s], &[0], past(), 0);
        self.twait("twait-binary-point1", &[s], &[1], past(), 0);
        self.query("query-binary", s);
    }

    fn reset_signal(&self) {
        let s = self.create("rs-create-signaled", true);
        self.reset("rs-reset", &[s]);
        self.wait("rs-wait-after-reset", &[s], past(), 0);
        self.reset("rs-reset-empty", &[s]);
        self.signal("rs-signal", &[s], None);
        self.wait("rs-wait-after-signal", &[s], past(), 0);
        let id = self.attach("rs-attach", s, 0);
        self.wait("rs-wait-attached", &[s], past(), 0);
        self.signal("rs-signal-over-pending", &[s], None);
        self.wait("rs-wait-after-signal-over-pending", &[s], past(), 0);
        // The replaced fence still belongs to the test driver; signalling it is fine.
        self.signal_fence("rs-signal-replaced-fence", id, EIO);
        self.export("rs-export-after-replace", s, None);
        self.reset("rs-reset-no-handles", &[]);
        self.signal("rs-signal-no-handles", &[], None);
    }

    fn for_submit(&self) {
        let w = self.create("fs-create", false);
        let a = &*self.a;
        self.wait_with_helper("fs-wait-for-submit", &[w], None, FOR_SUBMIT, || {
            let r = a.attach(w, 0);
            let id = *r.as_ref().unwrap_or(&0);
            std::thread::sleep(Duration::from_millis(20));
            let r2 = a.signal(id, 0);
            format!("attach-{} signal-{}", rc(&r), rc(&r2))
        });

        let t = self.create("fs-timeline-create", false);
        let id5 = std::sync::Mutex::new(0);
        self.wait_with_helper(
            "fs-wait-available",
            &[t],
            Some(&[5]),
            FOR_SUBMIT | AVAILABLE,
            || {
                let r = a.attach(t, 5);
                *id5.lock().unwrap() = *r.as_ref().unwrap_or(&0);
                rc(&r)
            },
        );
        self.query("fs-query-after-available", t);
        self.twait("fs-twait-5-past", &[t], &[5], past(), 0);
        self.twait("fs-twait-5-available-past", &[t], &[5], past(), AVAILABLE);
        self.twait("fs-twait-9-available-short", &[t], &[9], soon(), AVAILABLE);
        self.twait(
            "fs-twait-9-for-submit-available-short",
            &[t],
            &[9],
            soon(),
            FOR_SUBMIT | AVAILABLE,
        );
        self.twait(
            "fs-twait-any-5-9-available-past",
            &[t, t],
            &[9, 5],
            past(),
            FOR_SUBMIT | AVAILABLE,
        );
        let id = *id5.lock().unwrap();
        self.signal_fence("fs-signal-5", id, 0);
        self.query("fs-query-after-signal", t);

        let src = self.create("fs-transfer-src", false);
        let dst = self.create("fs-transfer-dst", false);
        let xid = std::sync::Mutex::new(0);
        let deadline = later();
        let r = std::thread::scope(|sc| {
            let h = sc.spawn(|| {
                std::thread::sleep(HELPER_DELAY);
                let r = a.attach(src, 0);
                *xid.lock().unwrap() = *r.as_ref().unwrap_or(&0);
                rc(&r)
            });
            let r = ws(wio::syncobj_transfer(self.k(), src, 0, dst, 0, FOR_SUBMIT));
            let before = now_ns() < deadline;
            (r, before, h.join().expect("helper"))
        });
        match &r.0 {
            Ok(()) => self.out.line(
                "fs-transfer-for-submit",
                format!("rc=0 before-deadline={}", yes(r.1)),
            ),
            Err(_) => self.out.line("fs-transfer-for-submit", rc(&r.0)),
        }
        self.out.line("fs-transfer-for-submit-helper", r.2);
        self.wait("fs-wait-transferred-pending", &[dst], past(), 0);
        let id = *xid.lock().unwrap();
        self.signal_fence("fs-signal-transferred", id, 0);
        self.wait("fs-wait-transferred-signaled", &[dst], past(), 0);
        self.transfer("fs-transfer-unknown-src", w + 1000, 0, dst, 0, 0);
        let e = self.create("fs-empty-create", false);
        self.transfer("fs-transfer-empty", e, 0, dst, 0, 0);
    }

    fn timeline(&self) {
        let t = self.create("tl-create", false);
        self.query("tl-query-empty", t);
        let f1 = self.attach("tl-attach-1", t, 1);
        let f3 = self.attach("tl-attach-3", t, 3);
        self.query("tl-query-pending", t);
        self.twait("tl-wait-1-short", &[t], &[1], soon(), 0);
        self.twait("tl-wait-2-short", &[t], &[2], soon(), 0);
        self.twait("tl-wait-4-past", &[t], &[4], past(), 0);
        self.twait("tl-wait-4-for-submit-past", &[t], &[4], past(), FOR_SUBMIT);
        self.twait("tl-wait-any-1-3-past", &[t, t], &[3, 1], past(), 0);
        self.signal_fence("tl-signal-3-first", f3, 0);
        self.query("tl-query-3-signaled-1-pending", t);
        self.twait("tl-wait-3-after-only-3-past", &[t], &[3], past(), 0);
        self.signal_fence("tl-signal-1", f1, 0);
        self.query("tl-query-all-signaled", t);
        self.twait("tl-wait-1-past", &[t], &[1], past(), 0);
        self.twait("tl-wait-2-past", &[t], &[2], past(), 0);
        self.twait("tl-wait-3-past", &[t], &[3], past(), 0);
        self.twait("tl-wait-0-past", &[t], &[0], past(), 0);
        self.wait("tl-plain-wait", &[t], past(), 0);

        let f5 = self.attach("tl-attach-5", t, 5);
        self.signal_fence("tl-signal-5-eio", f5, EIO);
        self.query("tl-query-after-eio", t);
        self.twait("tl-wait-5-eio-past", &[t], &[5], past(), 0);
        self.export("tl-export-point-5", t, Some(5));
        self.export("tl-export-head-eio", t, None);
        // What `SyncObj::export_sync_file` falls back to where the TIMELINE flag is missing:
        // move the point to a temporary binary object and export that.
        let tmp = self.create("tl-export-fallback-create", false);
        self.transfer("tl-export-fallback-transfer", t, 5, tmp, 0, 0);
        self.export("tl-export-fallback-export", tmp, None);

        self.signal("tl-signal-lower-2", &[t], Some(&[2]));
        self.query("tl-query-after-lower", t);
        self.export("tl-export-head-after-lower", t, None);
        self.signal("tl-signal-higher-6", &[t], Some(&[6]));
        self.query("tl-query-after-6", t);

        let f8 = self.attach("tl-attach-8", t, 8);
        self.signal("tl-signal-lower-7-over-pending", &[t], Some(&[7]));
        self.query("tl-query-unordered", t);
        self.twait("tl-wait-7-unordered-past", &[t], &[7], past(), 0);
        self.twait("tl-wait-8-unordered-past", &[t], &[8], past(), 0);
        self.signal_fence("tl-signal-8", f8, 0);
        self.query("tl-query-unordered-signaled", t);

        self.reset("tl-reset", &[t]);
        self.query("tl-query-after-reset", t);
        self.twait("tl-wait-after-reset", &[t], &[1], past(), 0);
        self.signal("tl-signal-point-0", &[t], Some(&[0]));
        self.query("tl-query-after-point-0", t);
        self.twait("tl-wait-point-0", &[t], &[0], past(), 0);
        self.signal("tl-signal-10", &[t], Some(&[10]));
        self.query("tl-query-after-10", t);
        self.signal("tl-binary-signal-on-timeline", &[t], None);
        self.query("tl-query-after-binary-signal", t);
        let b = self.attach("tl-binary-attach-on-timeline", t, 0);
        self.query("tl-query-after-binary-attach", t);
        self.twait("tl-wait-10-after-binary-attach", &[t], &[10], past(), 0);
        self.signal_fence("tl-signal-binary-attached", b, 0);
        self.signal("tl-signal-no-handles", &[], Some(&[]));
    }

    fn transfers(&self) {
        // binary -> timeline
        let b = self.create("xf-binary-create", false);
        let t = self.create("xf-timeline-create", false);
        let fb = self.attach("xf-binary-attach", b, 0);
        self.transfer("xf-bin-to-tl-1", b, 0, t, 1, 0);
        self.query("xf-query-tl-pending", t);
        self.twait("xf-wait-tl-1-pending", &[t], &[1], past(), 0);
        self.signal_fence("xf-signal-binary-eio", fb, EIO);
        self.query("xf-query-tl-signaled", t);
        self.twait("xf-wait-tl-1", &[t], &[1], past(), 0);
        self.export("xf-export-tl-head", t, None);
        // An already signalled, failed fence transferred to a timeline point.
        self.transfer("xf-bin-eio-to-tl-2", b, 0, t, 2, 0);
        self.query("xf-query-tl-2", t);
        self.export("xf-export-tl-head-2", t, None);
        // timeline -> binary
        let b2 = self.create("xf-binary2-create", false);
        self.transfer("xf-tl-1-to-bin", t, 1, b2, 0, 0);
        self.wait("xf-wait-bin-from-tl", &[b2], past(), 0);
        self.export("xf-export-bin-from-tl", b2, None);
        self.query("xf-query-bin-from-tl", b2);
        // A pending point moved to a binary syncobj, then failed: a chain in a binary syncobj.
        let t3 = self.create("xf-timeline3-create", false);
        let f = self.attach("xf-timeline3-attach-1", t3, 1);
        let b3 = self.create("xf-binary3-create", false);
        self.transfer("xf-tl-pending-to-bin", t3, 1, b3, 0, 0);
        self.wait("xf-wait-bin3-pending", &[b3], past(), 0);
        self.query("xf-query-bin3", b3);
        self.signal_fence("xf-signal-tl3-eio", f, EIO);
        self.wait("xf-wait-bin3-after-eio", &[b3], past(), 0);
        self.export("xf-export-bin3", b3, None);
        // binary -> binary
        let b4 = self.create("xf-binary4-create", false);
        self.transfer("xf-bin-to-bin", b, 0, b4, 0, 0);
        self.export("xf-export-bin4", b4, None);
        // errors
        let e = self.create("xf-empty-create", false);
        self.transfer("xf-from-empty", e, 0, b4, 0, 0);
        self.transfer("xf-from-tl-missing-point", t3, 9, b4, 0, 0);
        self.transfer("xf-flag-wait-all", b, 0, b4, 0, ALL);
        self.transfer("xf-to-unknown", b, 0, 999, 0, 0);
        self.transfer("xf-from-unknown", 999, 0, b4, 0, 0);
    }

    fn export_import(&self) {
        let e = self.create("ei-empty-create", false);
        self.export("ei-export-empty", e, None);
        let s = self.create("ei-signaled-create", true);
        self.export("ei-export-signaled", s, None);
        let p = self.create("ei-pending-create", false);
        let id = self.attach("ei-pending-attach", p, 0);
        let fd = self.export("ei-export-pending", p, None);
        self.signal_fence("ei-signal-eio", id, EIO);
        self.info("ei-info-after-eio", &fd);
        self.wait("ei-wait-eio", &[p], past(), 0);
        let i = self.create("ei-import-target-create", false);
        self.import("ei-import", i, fd.as_ref().map(|f| f.as_fd()), None);
        self.wait("ei-wait-imported", &[i], past(), 0);
        self.export("ei-reexport-imported", i, None);
        let t = self.create("ei-timeline-create", false);
        self.import(
            "ei-import-timeline-point",
            t,
            fd.as_ref().map(|f| f.as_fd()),
            Some(4),
        );
        self.query("ei-query-after-import-point", t);
        self.import(
            "ei-import-unknown-handle",
            999,
            fd.as_ref().map(|f| f.as_fd()),
            None,
        );
        match rustix::pipe::pipe() {
            Ok((r, _w)) => self.import("ei-import-pipe", i, Some(r.as_fd()), None),
            Err(e) => self.out.line("ei-import-pipe", rc::<()>(&Err(e))),
        }
        // Driver names: the fence of an unsignalled and of a signalled sync_file.
        let n = self.create("ei-names-create", false);
        let nid = self.attach("ei-names-attach", n, 0);
        let nfd = ws(wio::syncobj_export_sync_file(self.k(), n, None)).ok();
        let names = |fd: &Option<OwnedFd>| match fd {
            Some(fd) => match file_info(self.k(), fd.as_fd()) {
                Ok(i) => i.drivers.join(","),
                Err(e) => errname(e),
            },
            None => "no-fd".to_owned(),
        };
        self.out.line("ei-driver-name-pending", names(&nfd));
        self.signal_fence("ei-names-signal", nid, 0);
        self.out.line("ei-driver-name-signaled", names(&nfd));
    }

    fn errors(&self) {
        // -ETIMEDOUT from the driver's timer.
        let h = self.create("er-timeout-create", false);
        let id = self.attach("er-timeout-attach", h, 0);
        let fd = self.export("er-timeout-export", h, None);
        let r = self.a.timeout(id, 50);
        self.out.line("er-timeout-arm", rc(&r));
        let r = self.a.timeout(id, 50);
        self.out.line("er-timeout-arm-again", rc(&r));
        let deadline = later();
        let r = ws(wio::syncobj_wait(self.k(), &[h], None, deadline, 0));
        let before = now_ns() < deadline;
        match r {
            Ok(f) => self.out.line(
                "er-timeout-wait",
                format!("rc=0 first={f} before-deadline={}", yes(before)),
            ),
            Err(_) => self.out.line("er-timeout-wait", rc(&r)),
        }
        self.info("er-timeout-info", &fd);
        self.signal_fence("er-timeout-signal-after", id, 0);
        let r = self.a.timeout(id, 50);
        self.out.line("er-timeout-arm-after", rc(&r));
        // Signalled before its timer fires: the timer does nothing.
        let id2 = self.attach("er-timeout2-attach", h, 0);
        let r = self.a.timeout(id2, 300);
        self.out.line("er-timeout2-arm", rc(&r));
        self.signal_fence("er-timeout2-signal-first", id2, ECANCELED);
        std::thread::sleep(Duration::from_millis(400));
        self.export("er-timeout2-export", h, None);

        // -ECANCELED: another file closes with fences pending (one with an armed timer).
        let imp = self.create("er-close-import-target", false);
        let (fd_b, fd_b2) = {
            let b = match self.target.open() {
                Ok(b) => b,
                Err(e) => {
                    self.out.line("er-close-open", rc::<()>(&Err(e)));
                    return;
                }
            };
            self.out.line("er-close-open", "rc=0");
            let kb = b.kernel();
            let hb = ws(wio::syncobj_create(kb, false));
            self.out.line("er-close-b-create", rc(&hb));
            let hb = hb.unwrap_or(0);
            let r = b.attach(hb, 0);
            self.out.line("er-close-b-attach", rc(&r));
            let fd_b = self.export_on(kb, "er-close-b-export", hb, None);
            self.import(
                "er-close-import-into-a",
                imp,
                fd_b.as_ref().map(|f| f.as_fd()),
                None,
            );
            let hb2 = ws(wio::syncobj_create(kb, false)).unwrap_or(0);
            let r2 = b.attach(hb2, 0);
            let idb2 = *r2.as_ref().unwrap_or(&0);
            let r3 = b.timeout(idb2, 60_000);
            self.out.line(
                "er-close-b-attach-timer",
                format!("attach-{} timer-{}", rc(&r2), rc(&r3)),
            );
            let fd_b2 = self.export_on(kb, "er-close-b-export-timer", hb2, None);
            // The ids are per file.
            let ra = self.a.signal(*r.as_ref().unwrap_or(&0) + 100, 0);
            self.out.line("er-close-signal-unknown-id", rc(&ra));
            self.wait("er-close-wait-before-close", &[imp], past(), 0);
            (fd_b, fd_b2)
        };
        self.out.line("er-close-closed", "rc=0");
        self.info("er-close-info", &fd_b);
        self.info("er-close-info-timer", &fd_b2);
        self.wait("er-close-wait-imported", &[imp], past(), 0);
        self.export("er-close-reexport", imp, None);
    }

    fn hiding(&self) {
        // A merged sync_file: the first status <= 0 wins, so a pending fence hides a later
        // error.
        let m1 = self.create("hd-create-1", false);
        let m2 = self.create("hd-create-2", false);
        let id1 = self.attach("hd-attach-1", m1, 0);
        let id2 = self.attach("hd-attach-2", m2, 0);
        let fd1 = ws(wio::syncobj_export_sync_file(self.k(), m1, None));
        let fd2 = ws(wio::syncobj_export_sync_file(self.k(), m2, None));
        self.out
            .line("hd-export", format!("1-{} 2-{}", rc(&fd1), rc(&fd2)));
        let merged = match (&fd1, &fd2) {
            (Ok(a), Ok(b)) => merge(self.k(), a.as_fd(), b.as_fd()),
            _ => Err(Errno::BADF),
        };
        self.out.line("hd-merge", rc(&merged));
        let merged = merged.ok();
        self.info("hd-info-both-pending", &merged);
        self.signal_fence("hd-signal-2-eio", id2, EIO);
        self.info("hd-info-pending-hides-error", &merged);
        self.signal_fence("hd-signal-1", id1, 0);
        self.info("hd-info-both-signaled", &merged);
        let (a, b) = (fd1.ok(), fd2.ok());
        if let (Some(a), Some(b)) = (&a, &b) {
            let m = merge(self.k(), a.as_fd(), b.as_fd());
            self.out.line("hd-merge-signaled", rc(&m));
            self.info("hd-info-merge-signaled", &m.ok());
        } else {
            self.out.line("hd-merge-signaled", "no-fd");
            self.out.line("hd-info-merge-signaled", "no-fd");
        }

        // The same, but a wait enabled signalling on the merged fence while it was pending:
        // now the merged fence itself carries the error too.
        let m3 = self.create("hd-enabled-create-1", false);
        let m4 = self.create("hd-enabled-create-2", false);
        let id3 = self.attach("hd-enabled-attach-1", m3, 0);
        let id4 = self.attach("hd-enabled-attach-2", m4, 0);
        let fd3 = ws(wio::syncobj_export_sync_file(self.k(), m3, None));
        let fd4 = ws(wio::syncobj_export_sync_file(self.k(), m4, None));
        let merged = match (&fd3, &fd4) {
            (Ok(a), Ok(b)) => merge(self.k(), a.as_fd(), b.as_fd()),
            _ => Err(Errno::BADF),
        };
        self.out.line("hd-enabled-merge", rc(&merged));
        let merged = merged.ok();
        let w = self.create("hd-enabled-import-target", false);
        self.import(
            "hd-enabled-import",
            w,
            merged.as_ref().map(|f| f.as_fd()),
            None,
        );
        self.wait("hd-enabled-wait-pending", &[w], past(), 0);
        self.signal_fence("hd-enabled-signal-2-eio", id4, EIO);
        self.signal_fence("hd-enabled-signal-1", id3, 0);
        self.info("hd-enabled-info", &merged);
        self.export("hd-enabled-reexport", w, None);

        // A timeline: unwrapping lists the newest point first.
        let t = self.create("hd-timeline-create", false);
        let c1 = self.attach("hd-timeline-attach-1", t, 1);
        let c2 = self.attach("hd-timeline-attach-2", t, 2);
        self.signal_fence("hd-timeline-signal-2-eio", c2, EIO);
        let fd = self.export("hd-timeline-export", t, None);
        self.signal_fence("hd-timeline-signal-1", c1, 0);
        self.info("hd-timeline-info-after-1", &fd);
        // Pending newest point over a failed older one.
        let c3 = self.attach("hd-timeline-attach-3", t, 3);
        let c4 = self.attach("hd-timeline-attach-4", t, 4);
        self.signal_fence("hd-timeline-signal-3-eio", c3, EIO);
        let fd = self.export("hd-timeline-export-4-pending", t, None);
        self.signal_fence("hd-timeline-signal-4", c4, 0);
        self.info("hd-timeline-info-4-signaled", &fd);
    }

    fn handles(&self) {
        let s = self.create("hn-signaled-create", true);
        let d = self.create("hn-create", false);
        let r = ws(wio::syncobj_destroy(self.k(), d));
        self.out.line("hn-destroy", rc(&r));
        let r = ws(wio::syncobj_destroy(self.k(), d));
        self.out.line("hn-destroy-again", rc(&r));
        let r = ws(wio::syncobj_destroy(self.k(), 0));
        self.out.line("hn-destroy-0", rc(&r));
        self.wait("hn-wait-destroyed", &[d], past(), 0);
        self.wait("hn-wait-0", &[0], past(), 0);
        self.reset("hn-reset-destroyed", &[d]);
        self.signal("hn-signal-destroyed", &[d], None);
        self.signal("hn-tsignal-destroyed", &[d], Some(&[1]));
        self.query("hn-query-destroyed", d);
        self.export("hn-export-destroyed", d, None);
        let r = self.a.attach(d, 0);
        self.out.line("hn-attach-destroyed", rc(&r));
        self.transfer("hn-transfer-to-destroyed", s, 0, d, 0, 0);
        self.transfer("hn-transfer-from-destroyed", d, 0, s, 0, 0);
        self.create("hn-create-reuses-lowest", false);

        // A handle of another open file means nothing here.
        let b = match self.target.open() {
            Ok(b) => b,
            Err(e) => {
                self.out.line("hn-foreign-open", rc::<()>(&Err(e)));
                return;
            }
        };
        let mut last = Ok(0);
        for _ in 0..150 {
            last = ws(wio::syncobj_create(b.kernel(), true));
        }
        let f = *last.as_ref().unwrap_or(&0);
        self.out
            .line("hn-foreign-create", format!("{} handle={}", rc(&last), f));
        self.wait_on(
            b.kernel(),
            "hn-foreign-wait-in-owner",
            &[f],
            None,
            past(),
            0,
        );
        self.wait("hn-foreign-wait", &[f], past(), 0);
        self.query("hn-foreign-query", f);
        self.export("hn-foreign-export", f, None);
        let r = self.a.attach(f, 0);
        self.out.line("hn-foreign-attach", rc(&r));
        self.transfer("hn-foreign-transfer", f, 0, s, 0, 0);
    }

    fn first_signaled(&self) {
        let p1 = self.create("fsg-pending-1-create", false);
        let p2 = self.create("fsg-pending-2-create", false);
        let s1 = self.create("fsg-signaled-1-create", true);
        let s2 = self.create("fsg-signaled-2-create", true);
        let i1 = self.attach("fsg-attach-1", p1, 0);
        let i2 = self.attach("fsg-attach-2", p2, 0);
        self.wait("fsg-any-p-p-s-s", &[p1, p2, s1, s2], past(), 0);
        self.wait("fsg-any-s-p", &[s2, p1], past(), 0);
        self.wait("fsg-all-s-s", &[s1, s2], past(), ALL);
        self.wait("fsg-all-p-s-past", &[p1, s1], past(), ALL);
        let a = &*self.a;
        // ALL: nothing signalled on the first pass, so first_signaled keeps its initial ~0.
        self.wait_with_helper("fsg-all-p-p-helper", &[p1, p2], None, ALL, || {
            let r1 = a.signal(i1, 0);
            let r2 = a.signal(i2, EIO);
            format!("signal-1-{} signal-2-{}", rc(&r1), rc(&r2))
        });
        let i3 = self.attach("fsg-attach-3", p1, 0);
        self.wait_with_helper("fsg-all-p-s-helper", &[p1, s1], None, ALL, || {
            rc(&a.signal(i3, 0))
        });
        let i4 = self.attach("fsg-attach-4", p1, 0);
        let i5 = self.attach("fsg-attach-5", p2, 0);
        self.wait_with_helper("fsg-any-p-p-helper", &[p1, p2], None, 0, || {
            rc(&a.signal(i5, 0))
        });
        self.signal_fence("fsg-signal-4", i4, 0);
        let t = self.create("fsg-timeline-create", false);
        let t1 = self.attach("fsg-timeline-attach-1", t, 1);
        self.attach("fsg-timeline-attach-2", t, 2);
        self.twait("fsg-twait-any-2-1-0", &[t, t, s1], &[2, 1, 0], past(), 0);
        self.signal_fence("fsg-timeline-signal-1", t1, 0);
        self.twait("fsg-twait-any-2-1", &[t, t], &[2, 1], past(), 0);
        self.twait("fsg-twait-all-2-1", &[t, t], &[2, 1], past(), ALL);
        self.twait(
            "fsg-twait-all-available-2-1",
            &[t, t],
            &[2, 1],
            past(),
            ALL | AVAILABLE,
        );
    }
}
