//! Ordering on the simulated device: barriers inside a submit, in-syncs across queues and files,
//! timeline points, commands overlapping in virtual time, and a large fill.

mod common;

use agx_sim::stream::StreamBuilder;
use agx_sim::sync::fence::Fence;
use agx_sim::trace::EventKind;
use agx_sim::PAGE_SIZE;
use agx_uapi::drm::*;
use common::*;

const LEN: u64 = 64 * 1024;
const SRC: u64 = DATA;
const DST: u64 = DATA + 0x10_0000;

/// A producer that spins first (so anything not ordered after it runs before its write) and
/// then fills `SRC`; a consumer that copies `SRC` to `DST`.
fn producer_consumer(e: &Env) -> (u64, u64) {
    let p = e.stream(
        StreamBuilder::new()
            .spin(1_000_000)
            .fill(SRC, LEN, 0x1234_5678),
    );
    let c = e.stream(StreamBuilder::new().copy(DST, SRC, LEN));
    (p, c)
}

fn consumer_saw_producer(e: &Env) -> bool {
    let got = e.data_bytes(DST - DATA, LEN as usize);
    if got == pattern_bytes(0x1234_5678, LEN as usize) {
        return true;
    }
    assert!(
        got.iter().all(|&b| b == 0),
        "either all or nothing of the producer's output"
    );
    false
}

#[test]
fn compute_then_render_with_cdm_barrier() {
    let e = Env::new();
    let (p, c) = producer_consumer(&e);
    let done = e
        .submit(e.q, &[Cmd::compute(p), Cmd::render(c).barriers(NONE, 1)])
        .unwrap();
    wait_ok(&e.f, done);
    assert!(consumer_saw_producer(&e));
}

#[test]
fn render_then_compute_with_vdm_barrier() {
    let e = Env::new();
    let (p, c) = producer_consumer(&e);
    let done = e
        .submit(e.q, &[Cmd::render(p), Cmd::compute(c).barriers(1, NONE)])
        .unwrap();
    wait_ok(&e.f, done);
    assert!(consumer_saw_producer(&e));
}

#[test]
fn without_a_barrier_the_subqueues_run_concurrently() {
    for (first, second) in [(true, false), (false, true)] {
        let e = Env::new();
        let (p, c) = producer_consumer(&e);
        let mk = |render: bool, s| {
            if render {
                Cmd::render(s)
            } else {
                Cmd::compute(s)
            }
        };
        let done = e.submit(e.q, &[mk(first, p), mk(second, c)]).unwrap();
        wait_ok(&e.f, done);
        assert!(
            !consumer_saw_producer(&e),
            "barrier NONE: the consumer ran before the write"
        );
    }
}

#[test]
fn barrier_zero_waits_for_earlier_submits_only() {
    let e = Env::new();
    let (p, c) = producer_consumer(&e);
    // Barrier 0 in the same submit: nothing of this submit is waited for.
    let done = e
        .submit(e.q, &[Cmd::compute(p), Cmd::render(c).barriers(NONE, 0)])
        .unwrap();
    wait_ok(&e.f, done);
    assert!(!consumer_saw_producer(&e));

    // Across submits: barrier 0 waits for the compute of the previous submit.
    let e = Env::new();
    let (p, c) = producer_consumer(&e);
    e.dev.hold();
    let a = e.submit(e.q, &[Cmd::compute(p)]).unwrap();
    let b = e.submit(e.q, &[Cmd::render(c).barriers(NONE, 0)]).unwrap();
    e.dev.release();
    wait_ok(&e.f, a);
    wait_ok(&e.f, b);
    assert!(consumer_saw_producer(&e));

    // and NONE across submits does not.
    let e = Env::new();
    let (p, c) = producer_consumer(&e);
    e.dev.hold();
    let a = e.submit(e.q, &[Cmd::compute(p)]).unwrap();
    let b = e.submit(e.q, &[Cmd::render(c)]).unwrap();
    e.dev.release();
    wait_ok(&e.f, a);
    wait_ok(&e.f, b);
    assert!(!consumer_saw_producer(&e));
}

#[test]
fn same_subqueue_is_in_order() {
    let e = Env::new();
    let (p, c) = producer_consumer(&e);
    let done = e.submit(e.q, &[Cmd::compute(p), Cmd::compute(c)]).unwrap();
    wait_ok(&e.f, done);
    assert!(consumer_saw_producer(&e));
}

#[test]
fn in_sync_gates_another_queue() {
    let e = Env::new();
    let (p, c) = producer_consumer(&e);
    let qb = e.queue();
    e.dev.hold();
    let a = e.submit(e.q, &[Cmd::compute(p)]).unwrap();
    let b = submit(&e.f, qb, &[Cmd::compute(c)], &[binary(a)]).unwrap();
    e.dev.release();
    wait_ok(&e.f, b);
    wait_ok(&e.f, a);
    assert!(consumer_saw_producer(&e));
    // Without the in-sync, queue B runs first.
    let e = Env::new();
    let (p, c) = producer_consumer(&e);
    let qb = e.queue();
    e.dev.hold();
    let a = e.submit(e.q, &[Cmd::compute(p)]).unwrap();
    let b = submit(&e.f, qb, &[Cmd::compute(c)], &[]).unwrap();
    e.dev.release();
    wait_ok(&e.f, a);
    wait_ok(&e.f, b);
    assert!(!consumer_saw_producer(&e));
}

#[test]
fn in_sync_gates_another_file() {
    let e = Env::new();
    let (p, _) = producer_consumer(&e);
    // A second file imports the data BO (PRIME) and the out-syncobj (syncobj fd).
    let f2 = e.dev.open();
    let vm2 = vm(&f2);
    let q2 = queue(&f2, vm2);
    let data2 = prime_import(&f2, &prime_export(&e.f, e.data_bo).unwrap());
    bind(&f2, vm2, data2, DATA, DATA_SIZE, RW).unwrap();
    let (_s2, sm2) = buffer(&f2, vm2, STREAM, STREAM_SIZE, RW);
    put_stream(&sm2, 0, StreamBuilder::new().copy(DST, SRC, LEN));

    e.dev.hold();
    let a = e.submit(e.q, &[Cmd::compute(p)]).unwrap();
    let a2 = syncobj_from_fd(&f2, &syncobj_to_fd(&e.f, a));
    let b = submit(&f2, q2, &[Cmd::render(STREAM)], &[binary(a2)]).unwrap();
    assert_eq!(fence_status(&f2, b), 0, "pending while held");
    e.dev.release();
    wait_ok(&f2, b);
    wait_ok(&e.f, a);
    assert!(consumer_saw_producer(&e));
}

#[test]
fn user_fence_gates_a_submit() {
    let e = Env::new();
    let (_, c) = producer_consumer(&e);
    e.data.write(0, &pattern_bytes(0x1234_5678, LEN as usize));
    // A syncobj whose fence userspace controls (as with sw_sync): a sync_file imported into it.
    let gate = Fence::new();
    let user = syncobj(&e.f, false);
    import_sync_file(
        &e.f,
        user,
        &agx_sim::sync::sync_file::export(vec![gate.clone()]).unwrap(),
    );
    let done = submit(&e.f, e.q, &[Cmd::compute(c)], &[binary(user)]).unwrap();
    assert_eq!(wait(&e.f, &[done], 20), Err(agx_sim::Errno::TIME));
    assert_eq!(e.dev.pending_commands(), 1);
    assert!(!consumer_saw_producer(&e), "did not run");
    // SYNCOBJ_SIGNAL replaces the syncobj's fence; the submit already holds the old one, as in
    // the kernel (in-fences are resolved at submit time).
    syncobj_signal(&e.f, &[user]).unwrap();
    assert_eq!(wait(&e.f, &[done], 20), Err(agx_sim::Errno::TIME));
    assert!(!consumer_saw_producer(&e));
    // A submit made after the SYNCOBJ_SIGNAL sees the signalled fence and runs at once.
    let q2 = e.queue();
    let s2 = e.stream(StreamBuilder::new().store(DATA + 0x20_0000, 42));
    let later = submit(&e.f, q2, &[Cmd::compute(s2)], &[binary(user)]).unwrap();
    wait_ok(&e.f, later);
    assert_eq!(read_u64(&e.data, 0x20_0000), 42);
    // Signalling the gate runs the first one.
    gate.signal(0);
    wait_ok(&e.f, done);
    assert!(consumer_saw_producer(&e));
    assert_eq!(e.dev.pending_commands(), 0);
}

#[test]
fn held_gate_submit_then_signal() {
    // The usual way to gate on "something userspace does later": an earlier submit's out-sync.
    let e = Env::new();
    let (p, c) = producer_consumer(&e);
    e.dev.hold();
    let gate = e.submit(e.q, &[Cmd::compute(p)]).unwrap();
    let qb = e.queue();
    let b = submit(&e.f, qb, &[Cmd::compute(c)], &[binary(gate)]).unwrap();
    assert_eq!(e.dev.pending_commands(), 2);
    assert_eq!(
        wait(&e.f, &[b], 10),
        Err(agx_sim::Errno::TIME),
        "held: nothing runs"
    );
    e.dev.release();
    wait_ok(&e.f, b);
    assert!(consumer_saw_producer(&e));
}

#[test]
fn timeline_points_across_queues() {
    let e = Env::new();
    let (p, c) = producer_consumer(&e);
    let tl = syncobj(&e.f, false);
    let qb = e.queue();
    e.dev.hold();
    let buf = cmdbuf(&[Cmd::compute(p)]);
    submit_raw(&e.f, e.q, &buf, &[timeline(tl, 5)], 0).unwrap();
    assert_eq!(query(&e.f, tl, 0), 0, "point 5 not signalled yet");
    assert_eq!(query(&e.f, tl, DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED), 5);
    assert_eq!(
        timeline_wait(&e.f, &[tl], &[5], 0, 10),
        Err(agx_sim::Errno::TIME)
    );
    // WAIT_AVAILABLE: the point exists.
    timeline_wait(&e.f, &[tl], &[5], DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE, 10).unwrap();
    // Queue B waits on point 5 and signals point 7.
    let buf = cmdbuf(&[Cmd::compute(c)]);
    submit_raw(&e.f, qb, &buf, &[timeline(tl, 5), timeline(tl, 7)], 1).unwrap();
    assert_eq!(query(&e.f, tl, DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED), 7);
    e.dev.release();
    timeline_wait(&e.f, &[tl], &[7], 0, 5000).unwrap();
    assert_eq!(query(&e.f, tl, 0), 7);
    timeline_wait(&e.f, &[tl], &[5], 0, 0).unwrap();
    assert!(consumer_saw_producer(&e));
    // Waiting for a point not submitted yet: EINVAL without WAIT_FOR_SUBMIT, ETIME with it.
    assert_eq!(
        timeline_wait(&e.f, &[tl], &[9], 0, 10),
        Err(agx_sim::Errno::INVAL)
    );
    assert_eq!(
        timeline_wait(
            &e.f,
            &[tl],
            &[9],
            DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT,
            10
        ),
        Err(agx_sim::Errno::TIME)
    );
    // An in-sync on a point not submitted is EINVAL at submit.
    let buf = cmdbuf(&[Cmd::compute(c)]);
    assert_eq!(
        submit_raw(&e.f, qb, &buf, &[timeline(tl, 9)], 1),
        Err(agx_sim::Errno::INVAL)
    );
}

#[test]
fn hold_release_overlaps_commands() {
    let e = Env::new();
    let n = 3;
    let mut outs = Vec::new();
    e.dev.hold();
    let t0 = e.dev.now_ns();
    for i in 0..n {
        let q = e.queue();
        let s = e.stream(StreamBuilder::new().spin(100_000).fill(
            DATA + i * 0x1000,
            0x1000,
            i as u32 + 1,
        ));
        outs.push(e.submit(q, &[Cmd::compute(s), Cmd::render(s)]).unwrap());
    }
    assert_eq!(e.dev.now_ns(), t0, "held: the clock stands still");
    assert_eq!(e.dev.pending_commands(), 2 * n as usize);
    e.dev.release();
    for o in &outs {
        wait_ok(&e.f, *o);
    }
    let ev = e.dev.trace_events();
    let starts: Vec<u64> = ev
        .iter()
        .filter(|x| x.kind == EventKind::Start)
        .map(|x| x.ts_ns)
        .collect();
    let ends: Vec<u64> = ev
        .iter()
        .filter(|x| x.kind == EventKind::Retire)
        .map(|x| x.ts_ns)
        .collect();
    assert_eq!(starts.len(), 2 * n as usize);
    assert_eq!(ends.len(), 2 * n as usize);
    let last_start = *starts.iter().max().unwrap();
    let first_end = *ends.iter().min().unwrap();
    assert!(
        last_start < first_end,
        "every command started before any ended: {starts:?} {ends:?}"
    );
    // Overlapping: the whole batch took about one command's time, not six.
    let elapsed = e.dev.now_ns() - t0;
    assert!(elapsed < 2 * 100_000, "ran concurrently: {elapsed} ns");
    for i in 0..n {
        assert_eq!(e.data_bytes(i * 0x1000, 8), pattern_bytes(i as u32 + 1, 8));
    }
}

#[test]
fn serial_commands_take_serial_time() {
    let e = Env::new();
    let s = e.stream(StreamBuilder::new().spin(100_000));
    let t0 = e.dev.now_ns();
    let done = e
        .submit(e.q, &[Cmd::compute(s), Cmd::compute(s), Cmd::compute(s)])
        .unwrap();
    wait_ok(&e.f, done);
    assert!(
        e.dev.now_ns() - t0 >= 300_000,
        "one subqueue runs one command at a time"
    );
}

#[test]
fn large_fill() {
    let (dev, f) = device();
    let v = vm(&f);
    let q = queue(&f, v);
    let size: u64 = 256 << 20;
    let at = 0x1_0000_0000;
    let (_bo, m) = buffer(&f, v, at, size, RW);
    let (_sbo, sm) = buffer(&f, v, STREAM, PAGE_SIZE, RW);
    put_stream(
        &sm,
        0,
        StreamBuilder::new().fill(at + 3, size - 6, 0xa1b2_c3d4),
    );
    let t0 = dev.now_ns();
    let done = submit(&f, q, &[Cmd::compute(STREAM)], &[]).unwrap();
    wait_ok(&f, done);
    let gpu_ns = dev.now_ns() - t0;
    // 1 ns per 64 bytes.
    assert!(gpu_ns >= (size - 6) / 64, "cost model: {gpu_ns} ns");
    let p = [0xd4, 0xc3, 0xb2, 0xa1];
    for off in [
        0u64,
        3,
        4,
        128 << 20,
        (128 << 20) + 1,
        size - 4,
        size - 3,
        size - 1,
    ] {
        let got = read_bytes(&m, off as usize, 1)[0];
        let want = if off < 3 || off >= size - 3 {
            0
        } else {
            p[((off - 3) % 4) as usize]
        };
        assert_eq!(got, want, "offset {off:#x}");
    }
}

#[test]
fn concurrent_submitters() {
    // Several threads, each with its own queue (two of them in a second file), submitting and
    // waiting at once: every command runs exactly once and every fence signals.
    let e = Env::new();
    let f2 = e.dev.open();
    let vm2 = vm(&f2);
    let data2 = prime_import(&f2, &prime_export(&e.f, e.data_bo).unwrap());
    bind(&f2, vm2, data2, DATA, DATA_SIZE, RW).unwrap();
    let (_s2, sm2) = buffer(&f2, vm2, STREAM, STREAM_SIZE, RW);
    let threads = 4u64;
    let rounds = 200u64;
    let mut streams = Vec::new();
    for t in 0..threads {
        let mut b = StreamBuilder::new();
        b.spin(500).atomic_add(DATA + 8 * t, 1);
        if t % 2 == 0 {
            streams.push(e.stream(&mut b));
        } else {
            put_stream(&sm2, (t * STREAM_SLOT) as usize, &mut b);
            streams.push(STREAM + t * STREAM_SLOT);
        }
    }
    std::thread::scope(|sc| {
        for t in 0..threads {
            let (f, v) = if t % 2 == 0 { (&e.f, e.vm) } else { (&f2, vm2) };
            let s = streams[t as usize];
            sc.spawn(move || {
                let q = queue(f, v);
                let out = syncobj(f, false);
                for i in 0..rounds {
                    let c = if i % 2 == 0 {
                        Cmd::compute(s)
                    } else {
                        Cmd::render(s)
                    };
                    submit_raw(f, q, &cmdbuf(&[c]), &[binary(out)], 0).unwrap();
                    if i % 10 == 9 {
                        wait_ok(f, out);
                    }
                }
                wait_ok(f, out);
            });
        }
    });
    assert_eq!(e.dev.pending_commands(), 0);
    for t in 0..threads {
        assert_eq!(read_u64(&e.data, 8 * t as usize), rounds, "thread {t}");
    }
}

#[test]
fn a_blocked_waiter_wakes_on_release() {
    let e = Env::new();
    let s = e.stream(StreamBuilder::new().store(DATA, 5));
    e.dev.hold();
    let done = e.submit(e.q, &[Cmd::compute(s)]).unwrap();
    std::thread::scope(|sc| {
        let waiter = sc.spawn(|| {
            let t0 = std::time::Instant::now();
            wait(&e.f, &[done], 10_000).unwrap();
            t0.elapsed()
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(read_u64(&e.data, 0), 0);
        e.dev.release();
        let waited = waiter.join().unwrap();
        assert!(
            waited < std::time::Duration::from_secs(5),
            "woken by the release, not the timeout"
        );
    });
    assert_eq!(fence_status(&e.f, done), 1);
    assert_eq!(read_u64(&e.data, 0), 5);
}
