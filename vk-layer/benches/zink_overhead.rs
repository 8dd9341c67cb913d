//! Overhead of VK_LAYER_AGX_fault with tracking on, on real GL programs through zink: frame
//! rates of `agx-gl-frames` and `glxgears` (Mesa's zink on lavapipe, under Xvfb) without the
//! layer and with the layer and a `neighbor` plan whose first fault never comes
//! (`neighbor@1000000000`: every command buffer is tracked, no fault is injected), in
//! alternating runs of one process each, medians compared.
//!
//! Run with `cargo bench -p agx-vk-layer --bench zink_overhead` (about two minutes). Needs the
//! packages of the layer's application tests (`tools/test-all.sh` installs them).

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{layer_manifest_dir, output_within, private_dir, require_vulkan, Xvfb};

/// The plan that turns tracking on without ever faulting.
const TRACKING_PLAN: &str = "neighbor@1000000000";

/// A GL program's command on `x` through zink, with or without the tracking layer.
fn gl(x: &Xvfb, program: &str, args: &[&str], layer: bool) -> Command {
    let mut c = Command::new(program);
    c.args(args)
        .env("DISPLAY", &x.display)
        .env("XDG_RUNTIME_DIR", private_dir("bench-xdg"))
        .env("MESA_LOADER_DRIVER_OVERRIDE", "zink")
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .env_remove("VK_INSTANCE_LAYERS")
        .env_remove("AGX_FAULT_PLAN");
    if layer {
        c.env("VK_LAYER_PATH", layer_manifest_dir())
            .env("VK_INSTANCE_LAYERS", "VK_LAYER_AGX_fault")
            .env("AGX_FAULT_PLAN", TRACKING_PLAN);
    }
    c
}

/// Frames per second and CPU microseconds per frame of one `agx-gl-frames` run of `secs`
/// seconds.
fn gl_frames(x: &Xvfb, layer: bool, secs: f64) -> (f64, f64) {
    let c = gl(
        x,
        env!("CARGO_BIN_EXE_agx-gl-frames"),
        &[
            "--mode",
            "fps",
            "--frames",
            "0",
            "--seconds",
            &secs.to_string(),
            "--size",
            "256",
        ],
        layer,
    );
    let (out, timed_out) = output_within(c, Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !timed_out && out.status.success(),
        "agx-gl-frames failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let words: Vec<&str> = text.split_whitespace().collect();
    let num = |i: usize| -> f64 {
        words
            .get(i)
            .and_then(|v| v.trim_start_matches('(').parse().ok())
            .unwrap_or_else(|| panic!("no number {i} in {text:?}"))
    };
    // "fps F (N frames in S s, C us of CPU per frame)"
    (num(1), num(7))
}

/// Frames per second glxgears reports for its first five seconds.
fn glxgears(x: &Xvfb, layer: bool) -> f64 {
    let display = x.display.clone();
    let presser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5600));
        for _ in 0..20 {
            let ok = Command::new("xdotool")
                .args(["search", "--name", "glxgears", "key", "Escape"])
                .env("DISPLAY", &display)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let (out, _) = output_within(gl(x, "glxgears", &[], layer), Duration::from_secs(60));
    presser.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // "N frames in 5.0 seconds = X FPS"
    text.lines()
        .find_map(|l| l.split('=').nth(1)?.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no FPS line in {text:?}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `rounds` alternating runs (the order flips each round); prints the medians and the median
/// of the rounds' own ratios (a round's two runs are adjacent in time, so the machine's drift
/// cancels out of it), and returns the latter (with layer / without).
fn compare(name: &str, rounds: usize, mut run: impl FnMut(bool) -> f64) -> f64 {
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..rounds {
        let (mut without, mut with) = (0.0, 0.0);
        for layer in if i % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        } {
            let fps = run(layer);
            if layer {
                with = fps;
            } else {
                without = fps;
            }
        }
        a.push(without);
        b.push(with);
        ratios.push(with / without);
    }
    let (ma, mb, mr) = (median(a.clone()), median(b.clone()), median(ratios.clone()));
    println!(
        "{name}: without layer {ma:.0} fps, with layer tracking ({TRACKING_PLAN}) {mb:.0} fps \
         (medians); median of the rounds' ratios {mr:.3} (runs without {a:.0?}, with {b:.0?})"
    );
    mr
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing special: only run
    // when asked to benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    require_vulkan();
    let x = Xvfb::start();
    let mut cpu = (Vec::new(), Vec::new());
    compare("agx-gl-frames 256x256", 15, |layer| {
        let (fps, us) = gl_frames(&x, layer, 2.0);
        if layer { &mut cpu.1 } else { &mut cpu.0 }.push(us);
        fps
    });
    let ratios: Vec<f64> = cpu.0.iter().zip(&cpu.1).map(|(a, b)| a / b).collect();
    println!(
        "agx-gl-frames 256x256: CPU per frame without layer {:.0} us, with {:.0} us (medians); \
         median of the rounds' ratios (without / with, as a frame rate) {:.3}",
        median(cpu.0.clone()),
        median(cpu.1.clone()),
        median(ratios)
    );
    compare("glxgears 300x300", 5, |layer| glxgears(&x, layer));
}
