//! Throughput of the simulated device: the round trip of a small command (submit, execute,
//! signal, wait) and the host speed of a large fill. Run with `cargo bench -p agx-sim --bench sim`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use agx_sim::stream::StreamBuilder;
use agx_sim::{SimConfig, PAGE_SIZE};
use common::*;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

/// Submit + execute + signal + wait of one small compute command, one syncobj reused.
fn small_command(c: &mut Criterion) {
    let e = Env::new();
    let s = e.stream(StreamBuilder::new().atomic_add(DATA, 1));
    let out = syncobj(&e.f, false);
    let buf = cmdbuf(&[Cmd::compute(s)]);
    let syncs = [binary(out)];
    let mut g = c.benchmark_group("roundtrip");
    g.throughput(Throughput::Elements(1));
    g.bench_function("small_command", |b| {
        b.iter(|| {
            submit_raw(&e.f, e.q, &buf, &syncs, 0).unwrap();
            wait(&e.f, &[out], 1000).unwrap();
        })
    });
    // The same with a result record (job info) in a BO.
    let (h, off) = e.slot(0);
    let buf = cmdbuf(&[Cmd::compute(s).info(RESTART, h, off)]);
    g.bench_function("small_command_with_record", |b| {
        b.iter(|| {
            submit_raw(&e.f, e.q, &buf, &syncs, 0).unwrap();
            wait(&e.f, &[out], 1000).unwrap();
        })
    });
    g.finish();
    black_box(read_u64(&e.data, 0));
}

/// A 64 MiB fill through 16 KiB pages: host bytes per second of the executor.
fn large_fill(c: &mut Criterion) {
    let (_d, f) = device();
    let v = vm(&f);
    let q = queue(&f, v);
    let size: u64 = 64 << 20;
    let at = 0x1_0000_0000;
    let (_bo, m) = buffer(&f, v, at, size, RW);
    let (_sbo, sm) = buffer(&f, v, STREAM, PAGE_SIZE, RW);
    put_stream(&sm, 0, StreamBuilder::new().fill(at, size, 0xa1b2_c3d4));
    let out = syncobj(&f, false);
    let buf = cmdbuf(&[Cmd::compute(STREAM)]);
    let syncs = [binary(out)];
    let mut g = c.benchmark_group("fill");
    g.throughput(Throughput::Bytes(size));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("64MiB", |b| {
        b.iter(|| {
            submit_raw(&f, q, &buf, &syncs, 0).unwrap();
            wait(&f, &[out], 10_000).unwrap();
        })
    });
    g.finish();
    black_box(read_bytes(&m, size as usize - 4, 4));
}

/// One fault with a restartable innocent in flight: recovery and one replay.
fn recovery(c: &mut Criterion) {
    let mut g = c.benchmark_group("recovery");
    g.sample_size(30);
    g.bench_function("fault_and_replay", |b| {
        b.iter(|| {
            let e = Env::with(SimConfig::default());
            let qi = e.queue();
            let innocent = e.stream(StreamBuilder::new().spin(2000).fill(DATA, 1 << 20, 7));
            let guilty = e.stream(StreamBuilder::new().spin(1000).load(UNMAPPED, 8));
            let (h, off) = e.slot(0);
            e.dev.hold();
            let g = e.submit(e.q, &[Cmd::compute(guilty)]).unwrap();
            let i = e
                .submit(qi, &[Cmd::render(innocent).info(RESTART, h, off)])
                .unwrap();
            e.dev.release();
            wait(&e.f, &[g, i], 1000).unwrap();
            assert_eq!(e.result(0).replay_count, 1);
        })
    });
    g.finish();
}

criterion_group!(benches, small_command, large_fill, recovery);
criterion_main!(benches);
