//! What a Mesa driver needs to share a DRM file with the winsys: sync objects it created wrapped
//! for jobs, BO maps at addresses it chose, and dma-buf implicit sync through sync_files.

use std::os::fd::AsFd;
use std::ptr::NonNull;
use std::time::Duration;

use agx_winsys::bo::{export_sync_file, import_sync_file, DmaBufAccess};
use agx_winsys::kit::Context;
use agx_winsys::sync::sync_file_status;
use agx_winsys::vm::PAGE_SIZE;
use agx_winsys::*;
use rustix::io::Errno;

fn dev() -> Device {
    Device::open(&DeviceSpec::parse("sim").unwrap()).unwrap()
}

const LONG: Deadline = Deadline::After(Duration::from_secs(10));

/// A caller's sync object, wrapped: jobs signal it, and the wrapper never destroys it.
#[test]
fn wrapped_syncobj_is_signalled_by_jobs_and_stays_the_callers() {
    let d = dev();
    let ctx = Context::new(&d, 1 << 20).unwrap();
    let mesa = SyncObj::new(&d, false).unwrap(); // stands for one Mesa created on its fd
    let w = SyncObj::wrap(&d, mesa.handle()).unwrap();
    assert!(!w.is_owned());
    assert_eq!(w.handle(), mesa.handle());

    let dst = ctx.alloc(4096).unwrap();
    let mut cb = ctx.command_buffer();
    cb.render(ctx.clear_pass(dst, 4096, 0x0505_0505).unwrap())
        .unwrap();
    let job = ctx
        .queue
        .submit(&cb, &[], &[SyncPoint::binary(&w)])
        .unwrap();
    assert_eq!(job.wait(LONG).unwrap(), JobOutcome::Complete);
    // The caller's handle saw the job's signal.
    mesa.wait(None, Deadline::NOW, WaitFlags::default())
        .unwrap();

    // A wrapped object also gates a job as an in-sync: a second job waits on the fence the
    // first put in the caller's object.
    let sim = d.sim_control().unwrap().clone();
    sim.hold();
    let first = ctx
        .queue
        .submit(&cb, &[], &[SyncPoint::binary(&w)])
        .unwrap();
    let ctx2 = Context::new(&d, 1 << 20).unwrap();
    let mut cb2 = ctx2.command_buffer();
    let dst2 = ctx2.alloc(4096).unwrap();
    cb2.render(ctx2.clear_pass(dst2, 4096, 0x0606_0606).unwrap())
        .unwrap();
    let gated = ctx2
        .queue
        .submit(&cb2, &[SyncPoint::binary(&w)], &[])
        .unwrap();
    assert_eq!(gated.poll().unwrap(), None);
    sim.release();
    assert_eq!(first.wait(LONG).unwrap(), JobOutcome::Complete);
    assert_eq!(gated.wait(LONG).unwrap(), JobOutcome::Complete);

    // Dropping the wrapper leaves the handle alive.
    drop(w);
    assert_eq!(mesa.query(false).unwrap(), 0);
    mesa.signal(None).unwrap();

    // Handles that do not exist are refused, and 0 is not a handle.
    assert_eq!(
        SyncObj::wrap(&d, mesa.handle() + 1000).unwrap_err().errno(),
        Errno::NOENT
    );
    assert!(matches!(
        SyncObj::wrap(&d, 0),
        Err(Error::InvalidArgument(_))
    ));
    // Once the caller destroys it, the handle is gone for wrapping too.
    let h = mesa.handle();
    drop(mesa);
    assert_eq!(SyncObj::wrap(&d, h).unwrap_err().errno(), Errno::NOENT);
}

/// A reservation the caller made, as Mesa reserves VA before placing maps.
struct Reserved {
    ptr: NonNull<u8>,
    len: usize,
}

impl Reserved {
    fn new(len: usize) -> Reserved {
        // SAFETY: a fresh anonymous PROT_NONE mapping at a kernel-chosen address aliases no
        // Rust object.
        let p = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::empty(),
                rustix::mm::MapFlags::PRIVATE,
            )
        }
        .unwrap();
        Reserved {
            ptr: NonNull::new(p.cast()).unwrap(),
            len,
        }
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        // SAFETY: the range is ours (reserved above); whatever is mapped there now (the BO's
        // fixed map, already unmapped when the BO went, or the reservation) goes.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[test]
fn bo_maps_at_a_chosen_address() {
    let d = dev();
    let len = 4 * PAGE_SIZE as usize;
    let r = Reserved::new(len + PAGE_SIZE as usize);
    let bo = Bo::new(&d, len as u64, BoFlags::WRITEBACK, None).unwrap();

    // Not page-aligned: refused, nothing mapped.
    // SAFETY: the range is our reservation.
    let e = unsafe { bo.map_fixed(NonNull::new(r.ptr.as_ptr().wrapping_add(1)).unwrap()) };
    assert!(matches!(e, Err(Error::InvalidArgument(_))), "{e:?}");

    // SAFETY: the range is our reservation, holding nothing.
    let m = unsafe { bo.map_fixed(r.ptr) }.unwrap();
    assert_eq!(m.as_ptr(), r.ptr.as_ptr());
    assert_eq!(m.len(), len);
    assert_eq!(
        bo.map().unwrap().as_ptr(),
        r.ptr.as_ptr(),
        "the BO's one map"
    );
    bo.write(100, b"placed").unwrap();
    // SAFETY: the BO is mapped read-write at r.ptr for `len` bytes; 100..106 is inside.
    let seen = unsafe { std::slice::from_raw_parts(r.ptr.as_ptr().add(100), 6) };
    assert_eq!(seen, b"placed");
    // GPU and CPU see the same pages: a clear through the GPU shows at the fixed address.
    let vm = Vm::new(&d).unwrap();
    let va = vm
        .bind(
            &bo,
            vm::Access::READ | vm::Access::WRITE,
            vm::VaClass::General,
        )
        .unwrap();
    let ctx = Context::new(&d, 1 << 20).unwrap();
    drop((vm, va, ctx)); // (binding works on the fixed-mapped BO; nothing more needed here)

    // A BO has one CPU mapping: a second placement is EBUSY, and so is placing after map().
    // SAFETY: our reservation.
    let again = unsafe { bo.map_fixed(r.ptr) };
    assert!(matches!(again, Err(Error::AlreadyMapped)), "{again:?}");
    assert_eq!(Error::AlreadyMapped.errno(), Errno::BUSY);
    let bo2 = Bo::new(&d, PAGE_SIZE, BoFlags::empty(), None).unwrap();
    bo2.map().unwrap();
    // SAFETY: our reservation (past the first BO's range).
    let late = unsafe { bo2.map_fixed(NonNull::new(r.ptr.as_ptr().add(len)).unwrap()) };
    assert!(matches!(late, Err(Error::AlreadyMapped)), "{late:?}");
}

fn status(d: &Device, fd: &std::os::fd::OwnedFd) -> FenceStatus {
    sync_file_status(d, fd.as_fd()).unwrap()
}

/// `DMA_BUF_IOCTL_{EXPORT,IMPORT}_SYNC_FILE`: readers wait for writers, writers for everyone.
#[test]
fn dmabuf_implicit_sync_follows_linux() {
    let d = dev();
    let sim = d.sim_control().unwrap().clone();
    let bo = Bo::new(&d, PAGE_SIZE, BoFlags::empty(), None).unwrap();
    let dmabuf = bo.export().unwrap();
    // Nothing reserved: both directions get a signalled sync_file.
    for a in [
        DmaBufAccess::Read,
        DmaBufAccess::Write,
        DmaBufAccess::ReadWrite,
    ] {
        let f = export_sync_file(&d, dmabuf.as_fd(), a).unwrap();
        assert_eq!(status(&d, &f), FenceStatus::Signaled, "{a:?}");
    }

    // A pending job's fence imported as a writer.
    let ctx = Context::new(&d, 1 << 20).unwrap();
    let dst = ctx.alloc(4096).unwrap();
    let mut cb = ctx.command_buffer();
    cb.render(ctx.clear_pass(dst, 4096, 0x0101_0101).unwrap())
        .unwrap();
    let out = SyncObj::new(&d, false).unwrap();
    sim.hold();
    let job = ctx
        .queue
        .submit(&cb, &[], &[SyncPoint::binary(&out)])
        .unwrap();
    let writer = out.export_sync_file(None).unwrap();
    import_sync_file(&d, dmabuf.as_fd(), writer.as_fd(), DmaBufAccess::Write).unwrap();
    let r = export_sync_file(&d, dmabuf.as_fd(), DmaBufAccess::Read).unwrap();
    let w = export_sync_file(&d, dmabuf.as_fd(), DmaBufAccess::Write).unwrap();
    assert_eq!(
        status(&d, &r),
        FenceStatus::Pending,
        "a reader waits for the writer"
    );
    assert_eq!(
        status(&d, &w),
        FenceStatus::Pending,
        "a writer waits for the writer"
    );
    // Another file of the GPU, importing the same buffer, sees the same reservation.
    let d2 = sim.open_peer().unwrap();
    let other = Bo::import(&d2, dmabuf.as_fd()).unwrap();
    let other_fd = other.export().unwrap();
    let r2 = export_sync_file(&d2, other_fd.as_fd(), DmaBufAccess::Read).unwrap();
    assert_eq!(status(&d2, &r2), FenceStatus::Pending);
    sim.release();
    assert_eq!(job.wait(LONG).unwrap(), JobOutcome::Complete);
    for f in [&r, &w, &r2] {
        assert_eq!(status(&d, f), FenceStatus::Signaled);
    }

    // A pending reader: other readers do not wait for it, writers do.
    let reader_obj = SyncObj::new(&d, false).unwrap();
    sim.hold();
    let job = ctx
        .queue
        .submit(&cb, &[], &[SyncPoint::binary(&reader_obj)])
        .unwrap();
    let reader = reader_obj.export_sync_file(None).unwrap();
    import_sync_file(&d, dmabuf.as_fd(), reader.as_fd(), DmaBufAccess::Read).unwrap();
    let r = export_sync_file(&d, dmabuf.as_fd(), DmaBufAccess::Read).unwrap();
    let w = export_sync_file(&d, dmabuf.as_fd(), DmaBufAccess::ReadWrite).unwrap();
    assert_eq!(status(&d, &r), FenceStatus::Signaled, "readers share");
    assert_eq!(
        status(&d, &w),
        FenceStatus::Pending,
        "a writer waits for readers"
    );
    sim.release();
    assert_eq!(job.wait(LONG).unwrap(), JobOutcome::Complete);
    assert_eq!(status(&d, &w), FenceStatus::Signaled);

    // Bad fds: a pipe is not a dma-buf (ENOTTY), a dma-buf is not a sync_file (EINVAL).
    let (pr, _pw) = rustix::pipe::pipe().unwrap();
    assert_eq!(
        export_sync_file(&d, pr.as_fd(), DmaBufAccess::Read)
            .unwrap_err()
            .errno(),
        Errno::NOTTY
    );
    assert_eq!(
        import_sync_file(&d, dmabuf.as_fd(), dmabuf.as_fd(), DmaBufAccess::Read)
            .unwrap_err()
            .errno(),
        Errno::INVAL
    );
}
