//! Overhead of VK_LAYER_AGX_fault with no fault planned: submissions per second on lavapipe,
//! with and without the layer, in the same run.
//!
//! Each iteration is one `vkQueueSubmit` with a fence and the `vkWaitForFences` on it (an empty
//! batch, or a small render pass: clear, one triangle, store). Run with
//! `cargo bench -p agx-vk-layer --bench submit_overhead`. Before criterion's groups it prints
//! an interleaved comparison of amortised empty submits (alternating blocks, medians). With
//! `AGX_BENCH_A_A=1` the "with layer" device has no layer either: an A/A run that shows how
//! much of a difference the machine's noise alone makes.

#[path = "../tests/common/mod.rs"]
mod common;

use ash::vk;
use common::{Gpu, Scene};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn iteration(gpu: &Gpu, cbs: &[vk::CommandBuffer], fence: vk::Fence) {
    assert_eq!(gpu.submit(cbs, fence), vk::Result::SUCCESS);
    // SAFETY: a valid fence of this device.
    unsafe {
        gpu.device
            .wait_for_fences(&[fence], true, u64::MAX)
            .unwrap();
        gpu.device.reset_fences(&[fence]).unwrap();
    }
}

/// `n` empty submits without fence, then one queue wait: the submit path alone, amortised.
fn burst(gpu: &Gpu, n: u64) -> Duration {
    let t = Instant::now();
    for i in 0..n {
        assert_eq!(gpu.submit(&[], vk::Fence::null()), vk::Result::SUCCESS);
        if i % 256 == 255 {
            // SAFETY: a valid queue.
            unsafe { gpu.device.queue_wait_idle(gpu.queue).unwrap() };
        }
    }
    // SAFETY: a valid queue.
    unsafe { gpu.device.queue_wait_idle(gpu.queue).unwrap() };
    t.elapsed()
}

/// Alternating blocks with and without the layer (robust to the drift of a shared machine):
/// prints the median per-submit times and the overhead.
fn interleaved(without: &Gpu, with: &Gpu) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..61 {
        // Alternate which goes first, so neither profits from the other's warm-up.
        if round % 2 == 0 {
            a.push(burst(without, 2048).as_nanos() as f64 / 2048.0);
            b.push(burst(with, 2048).as_nanos() as f64 / 2048.0);
        } else {
            b.push(burst(with, 2048).as_nanos() as f64 / 2048.0);
            a.push(burst(without, 2048).as_nanos() as f64 / 2048.0);
        }
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (ma, mb) = (a[a.len() / 2], b[b.len() / 2]);
    println!(
        "interleaved empty vkQueueSubmit: without layer {ma:.0} ns, with layer {mb:.0} ns, \
         overhead {:+.1}% ({:+.0} ns per submit; {:.0} vs {:.0} submits/s)",
        (mb / ma - 1.0) * 100.0,
        mb - ma,
        1e9 / ma,
        1e9 / mb
    );
}

/// The cost the layer's clearing of `ONE_TIME_SUBMIT` (while a `neighbor` term is planned)
/// can have: on the driver alone (no layer), a command buffer re-recorded every iteration
/// (begin, two buffer fills, end), submitted and waited for, with and without the flag, in
/// alternating blocks; prints the medians.
fn one_time_submit(gpu: &Gpu) {
    let scene = Scene::new(gpu);
    let d = &gpu.device;
    let cb = gpu.command_buffer();
    let buf = scene.readback;
    let fence = gpu.fence();
    let block = |flags: vk::CommandBufferUsageFlags| {
        let t = Instant::now();
        for _ in 0..200 {
            // SAFETY: a command buffer of a resettable pool, idle (waited for below).
            unsafe {
                d.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default().flags(flags))
                    .unwrap();
                d.cmd_fill_buffer(cb, buf, 0, 4096, 7);
                d.cmd_fill_buffer(cb, buf, 4096, 4096, 9);
                d.end_command_buffer(cb).unwrap();
            }
            iteration(gpu, &[cb], fence);
        }
        t.elapsed().as_nanos() as f64 / 200.0
    };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for round in 0..21 {
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for one_time in order {
            if one_time {
                with.push(block(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT));
            } else {
                without.push(block(vk::CommandBufferUsageFlags::empty()));
            }
        }
    }
    with.sort_by(f64::total_cmp);
    without.sort_by(f64::total_cmp);
    let (a, b) = (with[with.len() / 2], without[without.len() / 2]);
    println!(
        "record + submit + wait, ONE_TIME_SUBMIT {a:.0} ns, flag cleared {b:.0} ns: {:+.1}%",
        (b / a - 1.0) * 100.0
    );
}

fn bench(c: &mut Criterion) {
    common::require_vulkan();
    // Single-threaded here: set the loader's environment before any instance exists.
    std::env::set_var("VK_LAYER_PATH", common::layer_manifest_dir());
    std::env::set_var("XDG_RUNTIME_DIR", common::private_dir("bench-xdg"));
    std::env::remove_var("AGX_FAULT_PLAN");
    let without = Gpu::with_layer(false);
    let with = Gpu::with_layer(std::env::var_os("AGX_BENCH_A_A").is_none());
    interleaved(&without, &with);
    one_time_submit(&without);
    let kind = common::CLEARED;
    for (name, cbs_of) in [("empty_submit", false), ("render_pass_submit", true)] {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(1));
        g.bench_function("burst_without_layer", |b| {
            b.iter_custom(|n| burst(&without, n))
        });
        g.bench_function("burst_with_layer", |b| b.iter_custom(|n| burst(&with, n)));
        for (label, gpu) in [("without_layer", &without), ("with_layer", &with)] {
            let scene = Scene::new(gpu);
            let cbs = if cbs_of {
                vec![scene.pass(gpu, kind)]
            } else {
                vec![]
            };
            let fence = gpu.fence();
            g.bench_function(label, |b| b.iter(|| iteration(gpu, &cbs, fence)));
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
