//! Steady-state submission allocates nothing in the winsys: a counting allocator ignores what
//! happens inside the kernel boundary (the simulated kernel allocates, as a real one would in
//! its own address space) and counts everything else.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use agx_winsys::analysis::Verdict;
use agx_winsys::kernel::{CpuMapping, KernelFile};
use agx_winsys::kit::Context;
use agx_winsys::sim::SimBackend;
use agx_winsys::{Deadline, Device, JobOutcome};
use rustix::io::Errno;

struct Counting;

thread_local! {
    static IN_KERNEL: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
    static IOCTLS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the bookkeeping touches only thread-locals with
// const initialisers, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = IN_KERNEL.try_with(|k| {
            if !k.get() {
                let _ = COUNT.try_with(|c| c.set(c.get() + 1));
            }
        });
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// The simulated kernel, with its own allocations not counted.
#[derive(Debug)]
struct Kernel(SimBackend);

fn in_kernel<T>(f: impl FnOnce() -> T) -> T {
    IN_KERNEL.with(|k| k.set(true));
    let r = f();
    IN_KERNEL.with(|k| k.set(false));
    r
}

impl KernelFile for Kernel {
    fn ioctl(&self, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
        IOCTLS.with(|n| n.set(n.get() + 1));
        in_kernel(|| self.0.ioctl(cmd, arg))
    }
    fn map(
        &self,
        offset: u64,
        len: usize,
        at: Option<std::ptr::NonNull<u8>>,
    ) -> Result<CpuMapping, Errno> {
        in_kernel(|| self.0.map(offset, len, at))
    }
    fn fd_ioctl(&self, fd: BorrowedFd<'_>, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
        in_kernel(|| self.0.fd_ioctl(fd, cmd, arg))
    }
}

#[test]
fn steady_state_submit_does_not_allocate() {
    let sim = agx_sim::SimDevice::new(agx_sim::SimConfig::default());
    let dev = Device::from_kernel(Box::new(Kernel(SimBackend::open(&sim)))).unwrap();
    let ctx = Context::new(&dev, 1 << 20).unwrap();
    let dst = ctx.alloc(4096).unwrap();
    let mut cb = ctx.command_buffer();
    cb.render(ctx.clear_pass(dst, 4096, 0x0404_0404).unwrap())
        .unwrap();
    let deadline = Deadline::After(Duration::from_secs(10));
    // Warm up: buffers reach their steady-state capacity.
    for _ in 0..8 {
        assert_eq!(
            ctx.queue
                .submit(&cb, &[], &[])
                .unwrap()
                .wait(deadline)
                .unwrap(),
            JobOutcome::Complete
        );
    }
    let before = COUNT.with(|c| c.get());
    for _ in 0..100 {
        let job = ctx.queue.submit(&cb, &[], &[]).unwrap();
        assert_eq!(job.wait(deadline).unwrap(), JobOutcome::Complete);
    }
    let allocs = COUNT.with(|c| c.get()) - before;
    assert_eq!(
        allocs, 0,
        "winsys allocations in 100 steady-state submit+wait round trips"
    );
}

/// The driver path (Mesa's own cmdbuf, `Queue::submit_encoded`) allocates nothing either once
/// warm (with the verdicts given; the analysis of a description is the caller's cost), and
/// polling a job, pending or finished, reads its result records: no ioctl.
#[test]
fn driver_submit_does_not_allocate_and_polls_without_ioctls() {
    let sim = agx_sim::SimDevice::new(agx_sim::SimConfig::default());
    let dev = Device::from_kernel(Box::new(Kernel(SimBackend::open(&sim)))).unwrap();
    let ctx = Context::new(&dev, 1 << 20).unwrap();
    let dst = ctx.alloc(4096).unwrap();
    let mut cb = ctx.command_buffer();
    cb.render(ctx.clear_pass(dst, 4096, 0x0505_0505).unwrap())
        .unwrap();
    // The library's own encoding without job infos is exactly a driver-encoded cmdbuf.
    let mut driver = Vec::new();
    cb.encode(0..1, &|_| None, &mut driver);
    let deadline = Deadline::After(Duration::from_secs(10));
    let submit = || {
        ctx.queue
            .submit_encoded(
                &driver,
                None,
                &mut |_, _| Ok(Verdict::RESTARTABLE),
                &[],
                &[],
            )
            .unwrap()
    };
    for _ in 0..8 {
        assert_eq!(submit().wait(deadline).unwrap(), JobOutcome::Complete);
    }
    let before = COUNT.with(|c| c.get());
    for _ in 0..100 {
        assert_eq!(submit().wait(deadline).unwrap(), JobOutcome::Complete);
    }
    assert_eq!(COUNT.with(|c| c.get()) - before, 0, "allocations");

    // Pending (the GPU held): the records say so, no ioctl either.
    sim.hold();
    let job = submit();
    let ioctls = IOCTLS.with(|n| n.get());
    assert_eq!(job.poll().unwrap(), None);
    assert_eq!(IOCTLS.with(|n| n.get()), ioctls, "a poll of a pending job");
    sim.release();
    ctx.queue.wait_idle(deadline).unwrap();
    let ioctls = IOCTLS.with(|n| n.get());
    assert_eq!(job.poll().unwrap(), Some(JobOutcome::Complete));
    assert_eq!(IOCTLS.with(|n| n.get()), ioctls, "a poll of a finished job");
}

/// Once the result ring wraps, a slot whose previous command has a final record is reused
/// without waiting for that command's fence: a submit stays one ioctl.
#[test]
fn result_ring_reuse_costs_no_wait() {
    let sim = agx_sim::SimDevice::new(agx_sim::SimConfig::default());
    let dev = Device::from_kernel(Box::new(Kernel(SimBackend::open(&sim)))).unwrap();
    let ctx = Context::new(&dev, 1 << 20).unwrap();
    let dst = ctx.alloc(4096).unwrap();
    let mut cb = ctx.command_buffer();
    cb.render(ctx.clear_pass(dst, 4096, 0x0606_0606).unwrap())
        .unwrap();
    let deadline = Deadline::After(Duration::from_secs(10));
    let wrap = agx_winsys::queue::RING_SLOTS as usize;
    for _ in 0..wrap + 8 {
        let job = ctx.queue.submit(&cb, &[], &[]).unwrap();
        assert_eq!(job.wait(deadline).unwrap(), JobOutcome::Complete);
    }
    let before = IOCTLS.with(|n| n.get());
    for _ in 0..100 {
        let job = ctx.queue.submit(&cb, &[], &[]).unwrap();
        assert_eq!(job.wait(deadline).unwrap(), JobOutcome::Complete);
    }
    // SUBMIT and the job's wait, nothing else.
    assert_eq!(IOCTLS.with(|n| n.get()) - before, 200);
}
