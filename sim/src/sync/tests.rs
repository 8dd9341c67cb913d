//! Ioctl-level tests: argument bytes built from the uAPI structs, errnos as Linux gives them.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agx_uapi::drm::*;
use agx_uapi::sync_file::*;
use bytemuck::{Pod, Zeroable};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use super::fence::{monotonic_ns, Fence};
use super::ioctl::syncobj_ioctl;
use super::sync_file::{self, sync_file_ioctl};
use super::syncobj::{Syncobj, SyncobjTable};
use crate::fdutil::take_returned_fd;
use crate::uaccess::InProcess;

const EIO: i32 = -5;

struct Dev {
    table: Mutex<SyncobjTable>,
    kicks: AtomicUsize,
}

impl Dev {
    fn new() -> Dev {
        Dev {
            table: Mutex::new(SyncobjTable::default()),
            kicks: AtomicUsize::new(0),
        }
    }

    fn io<T: Pod>(&self, cmd: u32, a: &mut T) -> Result<(), Errno> {
        let kick = || {
            self.kicks.fetch_add(1, Ordering::Relaxed);
        };
        syncobj_ioctl(
            &InProcess,
            &self.table,
            cmd,
            bytemuck::bytes_of_mut(a),
            &kick,
        )
    }

    fn create(&self, flags: u32) -> u32 {
        let mut a = drm_syncobj_create { handle: 0, flags };
        self.io(DRM_IOCTL_SYNCOBJ_CREATE, &mut a).unwrap();
        a.handle
    }

    fn obj(&self, h: u32) -> Arc<Syncobj> {
        self.table.lock().unwrap().get(h).unwrap()
    }

    fn wait(&self, handles: &[u32], flags: u32, timeout_nsec: i64) -> Result<u32, Errno> {
        let mut a = drm_syncobj_wait {
            handles: handles.as_ptr() as u64,
            timeout_nsec,
            count_handles: handles.len() as u32,
            flags,
            ..Default::default()
        };
        self.io(DRM_IOCTL_SYNCOBJ_WAIT, &mut a)
            .map(|()| a.first_signaled)
    }

    fn twait(
        &self,
        handles: &[u32],
        points: &[u64],
        flags: u32,
        timeout_nsec: i64,
    ) -> Result<u32, Errno> {
        let mut a = drm_syncobj_timeline_wait {
            handles: handles.as_ptr() as u64,
            points: points.as_ptr() as u64,
            timeout_nsec,
            count_handles: handles.len() as u32,
            flags,
            ..Default::default()
        };
        self.io(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &mut a)
            .map(|()| a.first_signaled)
    }

    fn array(&self, cmd: u32, handles: &[u32]) -> Result<(), Errno> {
        let mut a = drm_syncobj_array {
            handles: handles.as_ptr() as u64,
            count_handles: handles.len() as u32,
            pad: 0,
        };
        self.io(cmd, &mut a)
    }

    fn tsignal(&self, handles: &[u32], points: &[u64]) -> Result<(), Errno> {
        let mut a = drm_syncobj_timeline_array {
            handles: handles.as_ptr() as u64,
            points: points.as_ptr() as u64,
            count_handles: handles.len() as u32,
            flags: 0,
        };
        self.io(DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, &mut a)
    }

    fn query(&self, handles: &[u32], flags: u32) -> Result<Vec<u64>, Errno> {
        let mut points = vec![u64::MAX; handles.len()];
        let mut a = drm_syncobj_timeline_array {
            handles: handles.as_ptr() as u64,
            points: points.as_mut_ptr() as u64,
            count_handles: handles.len() as u32,
            flags,
        };
        self.io(DRM_IOCTL_SYNCOBJ_QUERY, &mut a).map(|()| points)
    }

    fn q(&self, h: u32) -> u64 {
        self.query(&[h], 0).unwrap()[0]
    }

    fn handle_to_fd(&self, handle: u32, flags: u32, point: u64) -> Result<OwnedFd, Errno> {
        let mut a = drm_syncobj_handle {
            handle,
            flags,
            fd: -1,
            pad: 0,
            point,
        };
        self.io(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &mut a)
            .map(|()| take_returned_fd(a.fd))
    }

    fn export(&self, handle: u32) -> Result<OwnedFd, Errno> {
        self.handle_to_fd(handle, DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE, 0)
    }

    fn fd_to_handle(&self, fd: i32, handle: u32, flags: u32, point: u64) -> Result<u32, Errno> {
        let mut a = drm_syncobj_handle {
            handle,
            flags,
            fd,
            pad: 0,
            point,
        };
        self.io(DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &mut a)
            .map(|()| a.handle)
    }

    fn transfer(&self, src: (u32, u64), dst: (u32, u64), flags: u32) -> Result<(), Errno> {
        let mut a = drm_syncobj_transfer {
            src_handle: src.0,
            dst_handle: dst.0,
            src_point: src.1,
            dst_point: dst.1,
            flags,
            pad: 0,
        };
        self.io(DRM_IOCTL_SYNCOBJ_TRANSFER, &mut a)
    }
}

/// An absolute `CLOCK_MONOTONIC` time `ms` from now.
fn in_ms(ms: u64) -> i64 {
    (monotonic_ns() + ms * 1_000_000) as i64
}

fn past() -> i64 {
    monotonic_ns() as i64 - 1_000
}

fn readable(fd: impl AsFd) -> bool {
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    rustix::event::poll(
        &mut fds,
        Some(&Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }),
    )
    .unwrap();
    fds[0].revents().contains(PollFlags::IN)
}

/// `SYNC_IOC_FILE_INFO` with room for `n` fences: (file status, per-fence info, count).
fn file_info(fd: &OwnedFd, n: u32) -> Result<(i32, Vec<sync_fence_info>, u32, String), Errno> {
    let mut fences = vec![sync_fence_info::zeroed(); n as usize];
    let mut info = sync_file_info::zeroed();
    info.num_fences = n;
    info.sync_fence_info = fences.as_mut_ptr() as u64;
    sync_file_ioctl(
        fd.as_fd(),
        SYNC_IOC_FILE_INFO,
        bytemuck::bytes_of_mut(&mut info),
    )?;
    fences.truncate(info.num_fences.min(n) as usize);
    let name = String::from_utf8_lossy(info.name.split(|&b| b == 0).next().unwrap()).into_owned();
    Ok((info.status, fences, info.num_fences, name))
}

fn cstr(b: &[u8]) -> &str {
    std::str::from_utf8(b.split(|&c| c == 0).next().unwrap()).unwrap()
}

#[test]
fn create_destroy_and_unknown_commands() {
    let d = Dev::new();
    assert_eq!(d.create(0), 1);
    assert_eq!(d.create(DRM_SYNCOBJ_CREATE_SIGNALED), 2);
    let mut c = drm_syncobj_create {
        handle: 0,
        flags: 2,
    };
    assert_eq!(d.io(DRM_IOCTL_SYNCOBJ_CREATE, &mut c), Err(Errno::INVAL));
    let mut x = drm_syncobj_destroy { handle: 1, pad: 1 };
    assert_eq!(d.io(DRM_IOCTL_SYNCOBJ_DESTROY, &mut x), Err(Errno::INVAL));
    x.pad = 0;
    assert_eq!(d.io(DRM_IOCTL_SYNCOBJ_DESTROY, &mut x), Ok(()));
    assert_eq!(d.io(DRM_IOCTL_SYNCOBJ_DESTROY, &mut x), Err(Errno::INVAL));
    x.handle = 0;
    assert_eq!(d.io(DRM_IOCTL_SYNCOBJ_DESTROY, &mut x), Err(Errno::INVAL));
    // The freed handle is reused.
    assert_eq!(d.create(0), 1);
    let mut g = drm_gem_close::default();
    assert_eq!(d.io(DRM_IOCTL_GEM_CLOSE, &mut g), Err(Errno::NOTTY));
    let mut i = sync_file_info::zeroed();
    assert_eq!(d.io(SYNC_IOC_FILE_INFO, &mut i), Err(Errno::NOTTY));
}

#[test]
fn signal_reset_and_array_validation() {
    let d = Dev::new();
    let a = d.create(0);
    let b = d.create(0);
    assert_eq!(d.wait(&[a], 0, past()), Err(Errno::INVAL));
    d.array(DRM_IOCTL_SYNCOBJ_SIGNAL, &[a, b]).unwrap();
    assert_eq!(
        d.wait(&[a, b], DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL, past()),
        Ok(0)
    );
    d.array(DRM_IOCTL_SYNCOBJ_RESET, &[a]).unwrap();
    assert_eq!(d.wait(&[a], 0, past()), Err(Errno::INVAL));
    assert_eq!(d.wait(&[b, a], 0, past()), Err(Errno::INVAL));
    for cmd in [DRM_IOCTL_SYNCOBJ_SIGNAL, DRM_IOCTL_SYNCOBJ_RESET] {
        assert_eq!(d.array(cmd, &[]), Err(Errno::INVAL));
        assert_eq!(d.array(cmd, &[a, 99]), Err(Errno::NOENT));
        assert_eq!(d.array(cmd, &[0]), Err(Errno::NOENT));
        let mut bad = drm_syncobj_array {
            handles: 8,
            count_handles: 1,
            pad: 0,
        };
        assert_eq!(d.io(cmd, &mut bad), Err(Errno::FAULT));
        bad.pad = 1;
        assert_eq!(d.io(cmd, &mut bad), Err(Errno::INVAL));
    }
    // A huge count fails allocation before anything else.
    let mut big = drm_syncobj_array {
        handles: 8,
        count_handles: u32::MAX,
        pad: 0,
    };
    assert_eq!(d.io(DRM_IOCTL_SYNCOBJ_SIGNAL, &mut big), Err(Errno::NOMEM));
}

#[test]
fn wait_validation() {
    let d = Dev::new();
    let s = d.create(DRM_SYNCOBJ_CREATE_SIGNALED);
    assert_eq!(d.wait(&[s], 0, 0), Ok(0));
    assert_eq!(d.wait(&[s], DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE, 0), Ok(0));
    // WAIT_AVAILABLE is a timeline-wait flag only.
    assert_eq!(
        d.wait(&[s], DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE, 0),
        Err(Errno::INVAL)
    );
    assert_eq!(d.wait(&[s], 1 << 4, 0), Err(Errno::INVAL));
    assert_eq!(d.wait(&[], 0, 0), Err(Errno::INVAL));
    assert_eq!(d.wait(&[s, 7], 0, 0), Err(Errno::NOENT));
    let mut a = drm_syncobj_wait {
        handles: 16,
        count_handles: 1,
        ..Default::default()
    };
    assert_eq!(d.io(DRM_IOCTL_SYNCOBJ_WAIT, &mut a), Err(Errno::FAULT));
    // The 6.1-sized struct (no deadline_nsec) works too.
    let handles = [s];
    let mut w = drm_syncobj_wait {
        handles: handles.as_ptr() as u64,
        count_handles: 1,
        ..Default::default()
    };
    let bytes = &mut bytemuck::bytes_of_mut(&mut w)[..32];
    syncobj_ioctl(&InProcess, &d.table, DRM_IOCTL_SYNCOBJ_WAIT, bytes, &|| {}).unwrap();

    let mut t = drm_syncobj_timeline_wait {
        handles: handles.as_ptr() as u64,
        points: 8,
        count_handles: 1,
        ..Default::default()
    };
    assert_eq!(
        d.io(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &mut t),
        Err(Errno::FAULT)
    );
    // A NULL points array means point 0.
    t.points = 0;
    assert_eq!(d.io(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &mut t), Ok(()));
    t.flags = 1 << 4;
    assert_eq!(
        d.io(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &mut t),
        Err(Errno::INVAL)
    );
    t.flags = 0;
    t.count_handles = 0;
    assert_eq!(
        d.io(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &mut t),
        Err(Errno::INVAL)
    );
}

#[test]
fn wait_any_all_and_timeouts() {
    let d = Dev::new();
    let (a, b) = (d.create(0), d.create(0));
    let (fa, fb) = (Fence::new(), Fence::new());
    d.obj(a).replace_fence(Some(fa.clone()));
    d.obj(b).replace_fence(Some(fb.clone()));

    let start = Instant::now();
    assert_eq!(d.wait(&[a, b], 0, past()), Err(Errno::TIME));
    assert_eq!(d.wait(&[a, b], 0, 0), Err(Errno::TIME));
    assert!(start.elapsed() < Duration::from_secs(1));
    let start = Instant::now();
    assert_eq!(d.wait(&[a], 0, in_ms(80)), Err(Errno::TIME));
    assert!(start.elapsed() >= Duration::from_millis(70));

    fb.signal(0);
    assert_eq!(d.wait(&[a, b], 0, past()), Ok(1));
    assert_eq!(
        d.wait(&[a, b], DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL, past()),
        Err(Errno::TIME)
    );

    // A waiter woken by a signal from another thread; WAIT_ALL reports the first index
    // that had signalled when the wait began.
    let fa2 = fa.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        fa2.signal(0);
    });
    let start = Instant::now();
    assert_eq!(
        d.wait(&[a, b], DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL, in_ms(10_000)),
        Ok(1)
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    t.join().unwrap();
    assert!(d.kicks.load(Ordering::Relaxed) > 0);

    // Nothing signalled at the start of a WAIT_ALL: first_signaled stays ~0.
    let (c, e) = (d.create(0), d.create(0));
    let (fc, fe) = (Fence::new(), Fence::new());
    d.obj(c).replace_fence(Some(fc.clone()));
    d.obj(e).replace_fence(Some(fe.clone()));
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        fe.signal(0);
        fc.signal(0);
    });
    assert_eq!(
        d.wait(&[c, e], DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL, in_ms(10_000)),
        Ok(u32::MAX)
    );
    t.join().unwrap();
}

#[test]
fn wait_for_submit_from_another_thread() {
    let d = Dev::new();
    let h = d.create(0);
    assert_eq!(
        d.wait(&[h], DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT, past()),
        Err(Errno::TIME)
    );
    let obj = d.obj(h);
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        let f = Fence::new();
        obj.replace_fence(Some(f.clone()));
        std::thread::sleep(Duration::from_millis(20));
        f.signal(EIO);
    });
    let start = Instant::now();
    assert_eq!(
        d.wait(&[h], DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT, in_ms(10_000)),
        Ok(0)
    );
    assert!(start.elapsed() >= Duration::from_millis(30));
    t.join().unwrap();
}

#[test]
fn fence_error_is_hidden_by_wait_but_shown_by_file_info() {
    let d = Dev::new();
    let h = d.create(0);
    let f = Fence::new();
    d.obj(h).replace_fence(Some(f.clone()));
    let fd = d.export(h).unwrap();
    assert!(!readable(&fd));
    let (status, infos, n, _) = file_info(&fd, 1).unwrap();
    assert_eq!((status, n, infos[0].status), (0, 1, 0));
    assert_eq!(cstr(&infos[0].driver_name), "agx-sim");
    assert_eq!(infos[0].timestamp_ns, 0);
    f.signal(EIO);
    assert_eq!(d.wait(&[h], 0, past()), Ok(0));
    assert!(readable(&fd), "poll hides the error too");
    let (status, _, n, name) = file_info(&fd, 0).unwrap();
    assert_eq!((status, n), (EIO, 1));
    assert_eq!(
        name, "detached-driver-signaled-timeli",
        "snprintf into 32 bytes"
    );
    let (status, infos, _, _) = file_info(&fd, 4).unwrap();
    assert_eq!((status, infos[0].status), (EIO, EIO));
    assert_eq!(cstr(&infos[0].driver_name), "detached-driver");
    assert_eq!(cstr(&infos[0].obj_name), "signaled-timeline");
    assert_eq!(Some(infos[0].timestamp_ns), f.timestamp_ns());
    assert_eq!(sync_file::lookup(fd.as_fd()).unwrap().len(), 1);
}

#[test]
fn file_info_validation() {
    let d = Dev::new();
    let h = d.create(DRM_SYNCOBJ_CREATE_SIGNALED);
    let fd = d.export(h).unwrap();
    let mut info = sync_file_info {
        num_fences: 1,
        sync_fence_info: 8,
        ..sync_file_info::zeroed()
    };
    assert_eq!(
        sync_file_ioctl(
            fd.as_fd(),
            SYNC_IOC_FILE_INFO,
            bytemuck::bytes_of_mut(&mut info)
        ),
        Err(Errno::FAULT)
    );
    info.flags = 1;
    assert_eq!(
        sync_file_ioctl(
            fd.as_fd(),
            SYNC_IOC_FILE_INFO,
            bytemuck::bytes_of_mut(&mut info)
        ),
        Err(Errno::INVAL)
    );
    info.flags = 0;
    info.pad = 1;
    assert_eq!(
        sync_file_ioctl(
            fd.as_fd(),
            SYNC_IOC_FILE_INFO,
            bytemuck::bytes_of_mut(&mut info)
        ),
        Err(Errno::INVAL)
    );
    assert_eq!(
        sync_file_ioctl(fd.as_fd(), DRM_IOCTL_SYNCOBJ_WAIT, &mut [0; 40]),
        Err(Errno::NOTTY)
    );
    let mut dl = sync_file::sync_set_deadline {
        deadline_ns: 1,
        pad: 1,
    };
    let r = sync_file_ioctl(
        fd.as_fd(),
        sync_file::SYNC_IOC_SET_DEADLINE,
        bytemuck::bytes_of_mut(&mut dl),
    );
    assert_eq!(r, Err(Errno::INVAL));
    dl.pad = 0;
    sync_file_ioctl(
        fd.as_fd(),
        sync_file::SYNC_IOC_SET_DEADLINE,
        bytemuck::bytes_of_mut(&mut dl),
    )
    .unwrap();
    // Not ours: a plain pipe.
    let (r, _w) = rustix::pipe::pipe().unwrap();
    assert_eq!(
        sync_file_ioctl(
            r.as_fd(),
            SYNC_IOC_FILE_INFO,
            bytemuck::bytes_of_mut(&mut info)
        ),
        Err(Errno::NOTTY)
    );
    assert_eq!(sync_file::lookup(r.as_fd()).unwrap_err(), Errno::INVAL);
}

#[test]
fn merged_sync_file_pending_fence_hides_later_error() {
    let (fa, fb) = (Fence::new(), Fence::new());
    let a = sync_file::export(vec![fa.clone()]).unwrap();
    let b = sync_file::export(vec![fb.clone()]).unwrap();
    let mut m = sync_merge_data {
        name: [0; 32],
        fd2: b.as_raw_fd(),
        fence: -1,
        flags: 0,
        pad: 0,
    };
    m.name[..6].copy_from_slice(b"merged");
    sync_file_ioctl(a.as_fd(), SYNC_IOC_MERGE, bytemuck::bytes_of_mut(&mut m)).unwrap();
    let merged = take_returned_fd(m.fence);
    fb.signal(EIO);
    let (status, infos, n, name) = file_info(&merged, 2).unwrap();
    assert_eq!(name, "merged");
    assert_eq!(n, 2);
    assert_eq!((infos[0].status, infos[1].status), (0, EIO));
    assert_eq!(
        status, 0,
        "the pending fence comes first and hides the error"
    );
    assert_eq!(file_info(&merged, 0).unwrap().0, 0);
    assert_eq!(file_info(&merged, 1).unwrap_err(), Errno::INVAL);
    assert!(!readable(&merged));
    fa.signal(0);
    assert!(readable(&merged));
    let (status, infos, _, _) = file_info(&merged, 2).unwrap();
    assert_eq!((status, infos[0].status, infos[1].status), (EIO, 1, EIO));
    // The merged array's own status drops the error: nothing enabled its signalling (Linux's
    // poll() would, but the simulator cannot see a poll() of the host pipe).
    assert_eq!(file_info(&merged, 0).unwrap().0, 1);

    // Merge errors: flags/pad, and an fd2 that is no sync_file.
    let mut bad = sync_merge_data {
        name: [0; 32],
        fd2: b.as_raw_fd(),
        fence: -1,
        flags: 1,
        pad: 0,
    };
    assert_eq!(
        sync_file_ioctl(a.as_fd(), SYNC_IOC_MERGE, bytemuck::bytes_of_mut(&mut bad)),
        Err(Errno::INVAL)
    );
    bad.flags = 0;
    bad.fd2 = -1;
    assert_eq!(
        sync_file_ioctl(a.as_fd(), SYNC_IOC_MERGE, bytemuck::bytes_of_mut(&mut bad)),
        Err(Errno::NOENT)
    );
    // Already signalled fences drop out of a merge: their error is gone.
    let c = sync_file::export(vec![Fence::signaled()]).unwrap();
    let mut m2 = sync_merge_data {
        name: [0; 32],
        fd2: c.as_raw_fd(),
        fence: -1,
        flags: 0,
        pad: 0,
    };
    sync_file_ioctl(b.as_fd(), SYNC_IOC_MERGE, bytemuck::bytes_of_mut(&mut m2)).unwrap();
    let m2 = take_returned_fd(m2.fence);
    let (status, infos, n, _) = file_info(&m2, 2).unwrap();
    assert_eq!((status, n, infos[0].status), (1, 1, 1));
}

#[test]
fn export_several_fences_as_one_file() {
    let (f1, f2) = (Fence::new(), Fence::new());
    let fd = sync_file::export(vec![f1.clone(), f2.clone()]).unwrap();
    assert_eq!(sync_file::lookup(fd.as_fd()).unwrap().len(), 2);
    // As a wait would: the array then carries its first error.
    sync_file::lookup_fence(fd.as_fd())
        .unwrap()
        .enable_signaling();
    f2.signal(-125);
    assert_eq!(file_info(&fd, 2).unwrap().0, 0);
    assert!(!readable(&fd));
    f1.signal(0);
    assert!(readable(&fd));
    assert_eq!(file_info(&fd, 0).unwrap().0, -125);
    assert_eq!(sync_file::export(vec![]).unwrap_err(), Errno::INVAL);
}

#[test]
fn export_and_import_sync_files() {
    let d = Dev::new();
    let (src, dst) = (d.create(0), d.create(0));
    assert_eq!(d.export(src).unwrap_err(), Errno::INVAL, "no fence");
    assert_eq!(d.export(42).unwrap_err(), Errno::NOENT);
    let f = Fence::new();
    d.obj(src).replace_fence(Some(f.clone()));
    let fd = d.export(src).unwrap();
    let import = DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE;
    assert_eq!(d.fd_to_handle(fd.as_raw_fd(), dst, import, 0), Ok(dst));
    assert!(Arc::ptr_eq(&d.obj(dst).fence().unwrap(), &f));
    // Into a timeline point.
    let tl = d.create(0);
    let timeline = DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_TIMELINE;
    d.fd_to_handle(fd.as_raw_fd(), tl, import | timeline, 3)
        .unwrap();
    assert_eq!(
        d.query(&[tl], DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED)
            .unwrap(),
        vec![3]
    );
    assert_eq!(d.q(tl), 0);
    f.signal(0);
    assert_eq!(d.q(tl), 3);
    assert_eq!(d.wait(&[dst], 0, past()), Ok(0));
    assert!(d.kicks.load(Ordering::Relaxed) >= 2);

    // Errors.
    assert_eq!(d.fd_to_handle(-1, dst, import, 0), Err(Errno::INVAL));
    assert_eq!(
        d.fd_to_handle(fd.as_raw_fd(), 77, import, 0),
        Err(Errno::NOENT)
    );
    assert_eq!(
        d.fd_to_handle(fd.as_raw_fd(), dst, 1 << 2, 0),
        Err(Errno::INVAL)
    );
    assert_eq!(
        d.fd_to_handle(fd.as_raw_fd(), dst, timeline, 3),
        Err(Errno::INVAL)
    );
    let mut p = drm_syncobj_handle {
        handle: dst,
        flags: import,
        fd: fd.as_raw_fd(),
        pad: 1,
        point: 0,
    };
    assert_eq!(
        d.io(DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &mut p),
        Err(Errno::INVAL)
    );
    let (pipe_r, _pipe_w) = rustix::pipe::pipe().unwrap();
    assert_eq!(
        d.fd_to_handle(pipe_r.as_raw_fd(), dst, import, 0),
        Err(Errno::INVAL)
    );

    // Exporting a timeline point; a point without the TIMELINE flag is ignored.
    let export = DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE;
    let ht = DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE;
    assert_eq!(
        d.handle_to_fd(tl, export | ht, 4).unwrap_err(),
        Errno::INVAL
    );
    let p3 = d.handle_to_fd(tl, export | ht, 3).unwrap();
    assert!(readable(&p3));
    assert_eq!(file_info(&p3, 0).unwrap().0, 1);
    d.handle_to_fd(tl, export, 99).unwrap();
    let mut h = drm_syncobj_handle {
        handle: tl,
        flags: 1 << 2,
        fd: -1,
        pad: 0,
        point: 0,
    };
    assert_eq!(
        d.io(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &mut h),
        Err(Errno::INVAL)
    );
    h.flags = export;
    h.pad = 1;
    assert_eq!(
        d.io(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &mut h),
        Err(Errno::INVAL)
    );
    assert_eq!(h.fd, -1);
}

#[test]
fn timeline_point_export_hides_error_in_file_status_only() {
    // A chain link never carries an error: the file status says 1, the fence list says -EIO.
    let d = Dev::new();
    let tl = d.create(0);
    let f = Fence::new();
    d.obj(tl).add_point(1, f.clone());
    let fd = d
        .handle_to_fd(
            tl,
            DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE
                | DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE,
            1,
        )
        .unwrap();
    f.signal(EIO);
    assert_eq!(file_info(&fd, 0).unwrap().0, 1);
    let (status, infos, _, _) = file_info(&fd, 1).unwrap();
    assert_eq!((status, infos[0].status), (EIO, EIO));
}

#[test]
fn syncobj_fd_round_trip() {
    let d = Dev::new();
    let h = d.create(0);
    let fd = d.handle_to_fd(h, 0, 0).unwrap();
    // Linux's syncobj files have no poll method: always readable.
    assert!(readable(&fd));
    let d2 = Dev::new();
    let h2 = d2.fd_to_handle(fd.as_raw_fd(), 0, 0, 0).unwrap();
    assert_eq!(h2, 1);
    assert!(Arc::ptr_eq(&d.obj(h), &d2.obj(h2)));
    d2.array(DRM_IOCTL_SYNCOBJ_SIGNAL, &[h2]).unwrap();
    assert_eq!(d.wait(&[h], 0, past()), Ok(0));
    // Every import makes a new handle.
    assert_eq!(d2.fd_to_handle(fd.as_raw_fd(), 0, 0, 0).unwrap(), 2);
    // A syncobj fd is no sync_file and vice versa.
    let import = DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE;
    assert_eq!(
        d.fd_to_handle(fd.as_raw_fd(), h, import, 0),
        Err(Errno::INVAL)
    );
    let mut info = sync_file_info::zeroed();
    assert_eq!(
        sync_file_ioctl(
            fd.as_fd(),
            SYNC_IOC_FILE_INFO,
            bytemuck::bytes_of_mut(&mut info)
        ),
        Err(Errno::NOTTY)
    );
    let sf = d.export(h).unwrap();
    assert_eq!(d.fd_to_handle(sf.as_raw_fd(), 0, 0, 0), Err(Errno::INVAL));
    assert_eq!(d.fd_to_handle(-1, 0, 0, 0), Err(Errno::INVAL));
    assert_eq!(
        d.fd_to_handle(
            fd.as_raw_fd(),
            0,
            DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_TIMELINE,
            1
        ),
        Err(Errno::INVAL)
    );
    // A point is ignored without the TIMELINE flag.
    assert!(d.fd_to_handle(fd.as_raw_fd(), 0, 0, 5).is_ok());
    // Unknown handle: EINVAL here (ENOENT only for the sync_file export).
    assert_eq!(d.handle_to_fd(9, 0, 0).unwrap_err(), Errno::INVAL);
    assert_eq!(
        d.handle_to_fd(h, DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE, 1)
            .unwrap_err(),
        Errno::INVAL
    );
    assert!(d.handle_to_fd(h, 0, 1).is_ok());
    // The 6.1-sized struct (16 bytes, no point).
    let mut old = drm_syncobj_handle {
        handle: h,
        flags: 0,
        fd: -1,
        pad: 0,
        point: 0,
    };
    syncobj_ioctl(
        &InProcess,
        &d.table,
        DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD,
        &mut bytemuck::bytes_of_mut(&mut old)[..16],
        &|| {},
    )
    .unwrap();
    drop(take_returned_fd(old.fd));
}

#[test]
fn timeline_signal_query_reset() {
    let d = Dev::new();
    let (a, b) = (d.create(0), d.create(0));
    d.tsignal(&[a, b], &[1, 3]).unwrap();
    assert_eq!(d.query(&[a, b], 0).unwrap(), vec![1, 3]);
    // A lower point succeeds and changes nothing.
    d.tsignal(&[b], &[2]).unwrap();
    assert_eq!(d.q(b), 3);
    assert_eq!(
        d.query(&[b], DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED)
            .unwrap(),
        vec![3]
    );
    assert_eq!(d.twait(&[b], &[2], 0, past()), Ok(0));
    assert_eq!(d.twait(&[b], &[3], 0, past()), Ok(0));
    assert_eq!(d.twait(&[b], &[4], 0, past()), Err(Errno::INVAL));
    assert_eq!(
        d.twait(&[b], &[4], DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT, past()),
        Err(Errno::TIME)
    );
    assert_eq!(
        d.twait(&[b], &[4], DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE, past()),
        Err(Errno::TIME)
    );
    d.array(DRM_IOCTL_SYNCOBJ_RESET, &[b]).unwrap();
    assert_eq!(d.q(b), 0);
    // A binary syncobj queries 0.
    let bin = d.create(DRM_SYNCOBJ_CREATE_SIGNALED);
    assert_eq!(d.q(bin), 0);

    // A pending point: WAIT_AVAILABLE is satisfied, a plain wait is not.
    let f = Fence::new();
    d.obj(a).add_point(5, f.clone());
    assert_eq!(d.q(a), 1);
    assert_eq!(
        d.twait(&[a], &[5], DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE, past()),
        Ok(0)
    );
    assert_eq!(d.twait(&[a], &[5], 0, past()), Err(Errno::TIME));
    assert_eq!(d.twait(&[a], &[1], 0, past()), Ok(0));
    f.signal(EIO);
    assert_eq!(d.twait(&[a], &[5], 0, past()), Ok(0));
    assert_eq!(d.q(a), 5);

    // Validation.
    let mut t = drm_syncobj_timeline_array {
        handles: 0,
        points: 0,
        count_handles: 1,
        flags: 1,
    };
    assert_eq!(
        d.io(DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, &mut t),
        Err(Errno::INVAL)
    );
    assert_eq!(d.query(&[a], 2).unwrap_err(), Errno::INVAL);
    assert_eq!(d.query(&[], 0).unwrap_err(), Errno::INVAL);
    assert_eq!(d.tsignal(&[], &[]), Err(Errno::INVAL));
    assert_eq!(d.query(&[a, 9], 0).unwrap_err(), Errno::NOENT);
    assert_eq!(d.tsignal(&[9], &[1]), Err(Errno::NOENT));
    let handles = [a];
    let mut q = drm_syncobj_timeline_array {
        handles: handles.as_ptr() as u64,
        points: 0,
        count_handles: 1,
        flags: 0,
    };
    assert_eq!(d.io(DRM_IOCTL_SYNCOBJ_QUERY, &mut q), Err(Errno::FAULT));
    q.points = 8;
    assert_eq!(
        d.io(DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, &mut q),
        Err(Errno::FAULT)
    );
    q.handles = 8;
    assert_eq!(d.io(DRM_IOCTL_SYNCOBJ_QUERY, &mut q), Err(Errno::FAULT));
}

#[test]
fn timeline_signal_point_zero_chains_on_the_binary_fence() {
    // TIMELINE_SIGNAL with point 0 adds a link, which waits for the fence below it.
    let d = Dev::new();
    let h = d.create(0);
    let f = Fence::new();
    d.obj(h).replace_fence(Some(f.clone()));
    let handles = [h];
    let mut t = drm_syncobj_timeline_array {
        handles: handles.as_ptr() as u64,
        points: 0,
        count_handles: 1,
        flags: 0,
    };
    d.io(DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, &mut t).unwrap();
    assert_eq!(d.wait(&[h], 0, past()), Err(Errno::TIME));
    f.signal(0);
    assert_eq!(d.wait(&[h], 0, past()), Ok(0));
}

#[test]
fn wait_available_from_another_thread() {
    let d = Dev::new();
    let h = d.create(0);
    let obj = d.obj(h);
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        obj.add_point(2, Fence::new());
    });
    assert_eq!(
        d.twait(
            &[h],
            &[2],
            DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE,
            in_ms(10_000)
        ),
        Ok(0)
    );
    t.join().unwrap();
}

#[test]
fn transfer_both_ways() {
    let d = Dev::new();
    let (bin, tl, bin2) = (d.create(0), d.create(0), d.create(0));
    let f = Fence::new();
    d.obj(bin).replace_fence(Some(f.clone()));
    // binary -> timeline point 5
    d.transfer((bin, 0), (tl, 5), 0).unwrap();
    assert_eq!(
        d.query(&[tl], DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED)
            .unwrap(),
        vec![5]
    );
    assert_eq!(d.q(tl), 0);
    // timeline point 5 -> binary
    d.transfer((tl, 5), (bin2, 0), 0).unwrap();
    assert_eq!(d.wait(&[bin2], 0, past()), Err(Errno::TIME));
    f.signal(0);
    assert_eq!(d.q(tl), 5);
    assert_eq!(d.wait(&[bin2], 0, past()), Ok(0));
    // timeline -> timeline, point 2 (already signalled) -> 7
    d.transfer((tl, 2), (tl, 7), 0).unwrap();
    assert_eq!(d.q(tl), 7);

    // Errors.
    let empty = d.create(0);
    assert_eq!(d.transfer((empty, 0), (bin2, 0), 0), Err(Errno::INVAL));
    assert_eq!(d.transfer((tl, 8), (bin2, 0), 0), Err(Errno::INVAL));
    assert_eq!(
        d.transfer((tl, 8), (bin2, 0), DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE),
        Err(Errno::INVAL)
    );
    assert_eq!(d.transfer((99, 0), (bin2, 0), 0), Err(Errno::NOENT));
    assert_eq!(d.transfer((bin, 0), (99, 0), 0), Err(Errno::NOENT));
    let mut a = drm_syncobj_transfer {
        src_handle: bin,
        dst_handle: bin2,
        pad: 1,
        ..Default::default()
    };
    assert_eq!(d.io(DRM_IOCTL_SYNCOBJ_TRANSFER, &mut a), Err(Errno::INVAL));

    // WAIT_FOR_SUBMIT: the source point is submitted later by another thread.
    let obj = d.obj(empty);
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        obj.add_point(1, Fence::signaled());
    });
    d.transfer(
        (empty, 1),
        (bin2, 0),
        DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT,
    )
    .unwrap();
    t.join().unwrap();
}

#[test]
fn transfer_of_an_errored_fence() {
    // To a binary syncobj the fence moves as is; to a timeline it is flattened first, and a
    // signalled fence drops out (its error with it).
    let d = Dev::new();
    let (src, bin, tl) = (d.create(0), d.create(0), d.create(0));
    let f = Fence::new();
    f.signal(EIO);
    d.obj(src).replace_fence(Some(f));
    d.transfer((src, 0), (bin, 0), 0).unwrap();
    d.transfer((src, 0), (tl, 1), 0).unwrap();
    assert_eq!(file_info(&d.export(bin).unwrap(), 1).unwrap().0, EIO);
    let tl_fd = d
        .handle_to_fd(
            tl,
            DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE
                | DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE,
            1,
        )
        .unwrap();
    assert_eq!(file_info(&tl_fd, 1).unwrap().0, 1);
}

#[test]
fn eventfd_notification() {
    let d = Dev::new();
    let h = d.create(0);
    let ev = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
    let reg = |point: u64, flags: u32, fd: i32, handle: u32| {
        let mut a = drm_syncobj_eventfd {
            handle,
            flags,
            point,
            fd,
            pad: 0,
        };
        d.io(DRM_IOCTL_SYNCOBJ_EVENTFD, &mut a)
    };
    // Signal of point 2, registered before the point exists.
    reg(2, 0, ev.as_raw_fd(), h).unwrap();
    let f = Fence::new();
    d.obj(h).add_point(2, f.clone());
    assert!(!readable(&ev));
    f.signal(EIO);
    assert!(readable(&ev));
    let mut buf = [0u8; 8];
    rustix::io::read(&ev, &mut buf).unwrap();
    assert_eq!(u64::from_ne_bytes(buf), 1);
    // WAIT_AVAILABLE fires when the point materializes.
    reg(3, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE, ev.as_raw_fd(), h).unwrap();
    assert!(!readable(&ev));
    d.obj(h).add_point(3, Fence::new());
    assert!(readable(&ev));
    rustix::io::read(&ev, &mut buf).unwrap();
    // Already signalled point: at once.
    reg(1, 0, ev.as_raw_fd(), h).unwrap();
    assert!(readable(&ev));

    // Errors.
    assert_eq!(reg(1, 1, ev.as_raw_fd(), h), Err(Errno::INVAL));
    assert_eq!(reg(1, 0, ev.as_raw_fd(), 42), Err(Errno::NOENT));
    assert_eq!(reg(1, 0, -1, h), Err(Errno::BADF));
    let (pr, _pw) = rustix::pipe::pipe().unwrap();
    assert_eq!(reg(1, 0, pr.as_raw_fd(), h), Err(Errno::INVAL));
    let mut a = drm_syncobj_eventfd {
        handle: h,
        flags: 0,
        point: 1,
        fd: ev.as_raw_fd(),
        pad: 1,
    };
    assert_eq!(d.io(DRM_IOCTL_SYNCOBJ_EVENTFD, &mut a), Err(Errno::INVAL));
}

#[test]
fn registry_collects_closed_files() {
    let f = Fence::new();
    let fd = sync_file::export(vec![f.clone()]).unwrap();
    let with_file = Arc::strong_count(&f);
    assert!(sync_file::lookup_fence(fd.as_fd()).is_ok());
    drop(fd);
    sync_file::gc();
    assert!(
        Arc::strong_count(&f) < with_file,
        "the registry let go of the fence"
    );
    // Signalling after the reader is gone must not raise SIGPIPE or fail.
    f.signal(0);

    let obj = Syncobj::new(false);
    let sfd = sync_file::export_syncobj(obj.clone()).unwrap();
    assert_eq!(Arc::strong_count(&obj), 2);
    assert!(Arc::ptr_eq(
        &sync_file::lookup_syncobj(sfd.as_fd()).unwrap(),
        &obj
    ));
    drop(sfd);
    sync_file::gc();
    assert_eq!(Arc::strong_count(&obj), 1);
    let _ = sync_file::live_exports();
}

#[test]
fn many_exports_do_not_leak() {
    let before = Fence::new();
    for _ in 0..300 {
        drop(sync_file::export(vec![before.clone()]).unwrap());
    }
    // The amortized collection ran along the way; a final one leaves none of these.
    sync_file::gc();
    assert_eq!(Arc::strong_count(&before), 1);
}
