//! Real applications through the real loader, lavapipe and VK_LAYER_AGX_fault, under Xvfb:
//! vkcube (a Vulkan program presenting to a swapchain every frame), glxgears and
//! `agx-gl-frames` (GL programs on Mesa's zink, GL on Vulkan). Under `neighbor-every@K` they
//! run to the end, exit 0, lose no device, replay every fault, and their frames (hashed by the
//! layer at present for vkcube, read back by the program for agx-gl-frames) equal a run without
//! faults; under `guilty@N` they lose the device promptly.
//!
//! Needs `xvfb`, `vulkan-tools`, `mesa-utils`, `libgl1-mesa-dri` and `xdotool` (installed by
//! `tools/test-all.sh`); without them these tests fail and say what to install.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{layer_manifest_dir, output_within, private_dir, require_vulkan, Xvfb, APPS_HINT};

/// What one application run left.
struct Run {
    ok: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    stats: serde_json::Value,
    frames: Vec<String>,
    secs: f64,
}

impl Run {
    fn stat(&self, k: &str) -> u64 {
        self.stats[k]
            .as_u64()
            .unwrap_or_else(|| panic!("stats key {k} in {} (stderr: {})", self.stats, self.stderr))
    }

    /// The checks of a run under a `neighbor` plan.
    fn assert_replayed_all(&self, what: &str) {
        assert!(
            self.ok,
            "{what}: exit {:?}\n--- stderr\n{}",
            self.code, self.stderr
        );
        assert_eq!(self.stat("devices_lost"), 0, "{what}: {}", self.stats);
        assert!(self.stat("faults_injected") > 0, "{what}: {}", self.stats);
        assert!(
            self.stat("replays") >= self.stat("faults_injected"),
            "{what}: {}",
            self.stats
        );
        println!("{what}: {} in {:.1} s", self.stats, self.secs);
    }

    /// The checks of a run under a `guilty` plan.
    fn assert_lost_promptly(&self, what: &str, bound: Duration) {
        assert_eq!(self.stat("devices_lost"), 1, "{what}: {}", self.stats);
        assert!(
            self.stderr.contains("device lost: GPU fault"),
            "{what}: {}",
            self.stderr
        );
        assert!(
            self.secs < bound.as_secs_f64(),
            "{what}: {:.1} s",
            self.secs
        );
        println!(
            "{what}: exit {:?} after {:.1} s, {}",
            self.code, self.secs, self.stats
        );
    }
}

/// Runs `cmd` on `x` with the layer and `plan`; `zink` runs GL on zink.
fn run(x: &Xvfb, mut cmd: Command, plan: &str, zink: bool, limit: Duration) -> Run {
    let dir = private_dir("app");
    let stats = dir.join("stats.json");
    let frames = dir.join("frames.txt");
    cmd.env("DISPLAY", &x.display)
        .env("XDG_RUNTIME_DIR", private_dir("xdg"))
        .env("VK_LAYER_PATH", layer_manifest_dir())
        .env("VK_INSTANCE_LAYERS", "VK_LAYER_AGX_fault")
        .env("AGX_FAULT_PLAN", plan)
        .env("AGX_FAULT_STATS", &stats)
        .env("AGX_FAULT_FRAMES", &frames)
        .env_remove("AGX_FAULT_WEAKEN");
    if zink {
        cmd.env("MESA_LOADER_DRIVER_OVERRIDE", "zink")
            .env("LIBGL_ALWAYS_SOFTWARE", "1");
    }
    let t0 = Instant::now();
    let (out, timed_out) = output_within(cmd, limit);
    let secs = t0.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !timed_out,
        "hung: killed after {limit:?}\n--- stderr\n{stderr}"
    );
    let stats = std::fs::read_to_string(&stats)
        .map(|s| serde_json::from_str(&s).expect("stats are JSON"))
        .unwrap_or(serde_json::Value::Null);
    let frames = std::fs::read_to_string(&frames)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect();
    Run {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
        stats,
        frames,
        secs,
    }
}

fn vkcube(frames: u32) -> Command {
    let mut c = Command::new("vkcube");
    c.args(["--c", &frames.to_string()]);
    c
}

fn gl_frames(frames: u32) -> Command {
    let mut c = Command::new(PathBuf::from(env!("CARGO_BIN_EXE_agx-gl-frames")));
    c.args(["--frames", &frames.to_string(), "--mode", "hash"]);
    c
}

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn vkcube_replays_every_fault_with_the_same_frames() {
    require_vulkan();
    let x = Xvfb::start();
    let base = run(&x, vkcube(60), "", false, LIMIT);
    assert!(
        base.ok,
        "vkcube without a plan: {}; {APPS_HINT}",
        base.stderr
    );
    assert_eq!(base.frames.len(), 60, "one hash per present");
    assert!(
        base.frames
            .iter()
            .all(|f| f.split(' ').nth(2).is_some_and(|h| h.len() == 16)),
        "every frame hashed: {:?}",
        &base.frames[..3]
    );
    for plan in ["neighbor-every@1", "neighbor-every@4"] {
        let r = run(&x, vkcube(60), plan, false, LIMIT);
        r.assert_replayed_all(&format!("vkcube {plan}"));
        assert!(r.stat("scrambled_bytes") > 0);
        assert_eq!(
            r.frames, base.frames,
            "vkcube {plan}: frames differ from the fault-free run"
        );
    }
}

#[test]
fn vkcube_guilty_loses_the_device_promptly() {
    require_vulkan();
    let x = Xvfb::start();
    let r = run(&x, vkcube(1000), "guilty@10", false, LIMIT);
    // vkcube aborts on VK_ERROR_DEVICE_LOST.
    assert!(!r.ok);
    r.assert_lost_promptly("vkcube guilty@10", Duration::from_secs(20));
}

#[test]
fn gl_frames_through_zink_replay_with_the_same_frames() {
    require_vulkan();
    let x = Xvfb::start();
    let base = run(&x, gl_frames(40), "", true, LIMIT);
    assert!(
        base.ok,
        "agx-gl-frames without a plan: {}; {APPS_HINT}",
        base.stderr
    );
    assert!(base.stderr.contains("zink"), "GL on zink: {}", base.stderr);
    assert_eq!(base.stdout.lines().count(), 40);
    for plan in ["neighbor-every@1", "neighbor-every@2", "neighbor-every@5"] {
        let r = run(&x, gl_frames(40), plan, true, LIMIT);
        r.assert_replayed_all(&format!("agx-gl-frames {plan}"));
        assert_eq!(
            r.stdout, base.stdout,
            "agx-gl-frames {plan}: frames read back differ"
        );
    }
    let r = run(&x, gl_frames(1000), "guilty@5", true, LIMIT);
    r.assert_lost_promptly("agx-gl-frames guilty@5", Duration::from_secs(30));
}

/// Runs glxgears for `secs` seconds, then presses Escape (it exits 0).
fn glxgears(x: &Xvfb, plan: &str, secs: u64) -> Run {
    let display = x.display.clone();
    let presser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        // Retries: the window may not exist yet on a slow machine.
        for _ in 0..20 {
            let ok = Command::new("xdotool")
                .args(["search", "--name", "glxgears", "key", "Escape"])
                .env("DISPLAY", &display)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap_or_else(|e| panic!("cannot run xdotool ({e}); {APPS_HINT}"))
                .success();
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let r = run(x, Command::new("glxgears"), plan, true, LIMIT);
    presser.join().unwrap();
    r
}

#[test]
fn glxgears_through_zink_replays_every_fault() {
    require_vulkan();
    let x = Xvfb::start();
    for plan in ["neighbor-every@1", "neighbor-every@3"] {
        let r = glxgears(&x, plan, 3);
        r.assert_replayed_all(&format!("glxgears {plan}"));
    }
    let r = glxgears(&x, "guilty@20", 3);
    r.assert_lost_promptly("glxgears guilty@20", Duration::from_secs(30));
}
