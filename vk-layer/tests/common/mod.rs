//! Test harness: locating the built layer, running a scenario in a child process (fault plans
//! are per-process environment variables), and a tiny Vulkan renderer on the real loader and
//! lavapipe.
#![allow(dead_code, unused_imports)]

mod gpu;
mod scene;
mod spin;

pub use gpu::*;
pub use scene::*;
pub use spin::*;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ash::vk;

pub const INSTALL_HINT: &str = "these tests need the Vulkan loader and a Vulkan driver: \
    apt-get install -y mesa-vulkan-drivers libvulkan1 vulkan-tools (lavapipe is enough)";

pub const WIDTH: u32 = 64;
pub const HEIGHT: u32 = 64;
/// The clear colour (blue) and the triangle's colour (red, alpha 0.5), as RGBA8.
pub const CLEAR_RGBA: [u8; 4] = [0, 0, 255, 255];
pub const TRIANGLE_RGBA: [u8; 4] = [255, 0, 0, 128];

/// `target/<profile>` of this test binary (`target/<profile>/deps/<test>-<hash>`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// The built layer library: the newest of `target/<profile>/deps/` (where `cargo test` links
/// it) and `target/<profile>/` (where `cargo build` uplifts it).
pub fn layer_library() -> PathBuf {
    let dir = profile_dir();
    [
        dir.join("deps/libagx_vk_layer.so"),
        dir.join("libagx_vk_layer.so"),
    ]
    .into_iter()
    .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
    .max()
    .map(|(_, p)| p)
    .unwrap_or_else(|| {
        panic!(
            "libagx_vk_layer.so not found in {} (build it with `cargo build -p agx-vk-layer`)",
            dir.display()
        )
    })
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh private directory (0700) under the target directory's tmp.
pub fn private_dir(tag: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vk-layer-tests");
    let d = base.join(format!(
        "{tag}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create private dir");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).expect("chmod 0700");
    d
}

/// The build's manifest for the built library in a private directory (absolute
/// `library_path`), so the tests do not depend on where the build script put its copy; the
/// rest (the device extensions and their entry points, which the loader reads) as built.
pub fn layer_manifest_dir() -> PathBuf {
    let d = private_dir("manifest");
    let lib = layer_library();
    let built = lib.with_file_name("VkLayer_agx_fault.json");
    let text = std::fs::read_to_string(&built)
        .unwrap_or_else(|e| panic!("{}: {e} (build.rs writes it)", built.display()))
        .replace(
            "\"./libagx_vk_layer.so\"",
            &format!("{:?}", lib.display().to_string()),
        );
    assert!(text.contains(&lib.display().to_string()), "{text}");
    std::fs::write(d.join("VkLayer_agx_fault.json"), text).expect("write manifest");
    d
}

/// Fails (never skips) when no Vulkan driver is usable.
pub fn require_vulkan() {
    // SAFETY: loading the system Vulkan loader.
    let entry = unsafe { ash::Entry::load() }
        .unwrap_or_else(|e| panic!("cannot load libvulkan.so.1 ({e}); {INSTALL_HINT}"));
    let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_3);
    let ci = vk::InstanceCreateInfo::default().application_info(&app);
    // SAFETY: valid create info.
    let inst = unsafe { entry.create_instance(&ci, None) }
        .unwrap_or_else(|e| panic!("vkCreateInstance failed ({e}); {INSTALL_HINT}"));
    // SAFETY: valid instance.
    let n = unsafe { inst.enumerate_physical_devices() }
        .map(|v| v.len())
        .unwrap_or(0);
    // SAFETY: destroyed once.
    unsafe { inst.destroy_instance(None) };
    assert!(n > 0, "no Vulkan physical device; {INSTALL_HINT}");
}

/// The outcome of a child scenario.
pub struct Child {
    pub stdout: String,
    pub stderr: String,
    pub stats: Option<serde_json::Value>,
}

/// How long a child scenario or application may run before it counts as hung.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `cmd` to completion, killing it after `limit` (then `timed_out` is set).
pub fn output_within(mut cmd: Command, limit: Duration) -> (std::process::Output, bool) {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Drain the pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let t0 = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if t0.elapsed() > limit {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let o = std::process::Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    };
    (o, timed_out)
}

/// Runs scenario `name` of this test binary (its `child_entry` test) in a child process with `plan` (and more
/// environment), within [`CHILD_TIMEOUT`].
pub fn run_scenario_env(name: &str, plan: &str, env: &[(&str, &str)]) -> Child {
    require_vulkan();
    let manifest = layer_manifest_dir();
    let xdg = private_dir("xdg");
    let stats = private_dir("stats").join("stats.json");
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env("AGX_TEST_SCENARIO", name)
        .env("AGX_FAULT_PLAN", plan)
        .env("AGX_FAULT_STATS", &stats)
        .env("VK_LAYER_PATH", &manifest)
        .env("XDG_RUNTIME_DIR", &xdg)
        .env_remove("VK_INSTANCE_LAYERS")
        .env_remove("AGX_FAULT_WEAKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (out, timed_out) = output_within(cmd, CHILD_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !timed_out,
        "scenario {name} (plan {plan:?}) hung: killed after {CHILD_TIMEOUT:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        out.status.success() && stdout.contains(&format!("SCENARIO {name} OK")),
        "scenario {name} (plan {plan:?}) failed: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    let stats = std::fs::read_to_string(&stats)
        .ok()
        .map(|s| serde_json::from_str(&s).expect("stats file is JSON"));
    Child {
        stdout,
        stderr,
        stats,
    }
}

impl Child {
    /// A statistics counter.
    pub fn stat(&self, key: &str) -> u64 {
        let s = self.stats.as_ref().expect("the stats file was written");
        s[key]
            .as_u64()
            .unwrap_or_else(|| panic!("stats key {key} in {s}"))
    }

    /// The census' reasons.
    pub fn reasons(&self) -> serde_json::Value {
        self.stats.as_ref().expect("stats")["not_restartable_reasons"].clone()
    }
}

/// Runs scenario `name` with `plan` (see [`run_scenario_env`]).
pub fn run_scenario(name: &str, plan: &str) -> Child {
    run_scenario_env(name, plan, &[])
}

/// What the real-application tests and the zink benchmark need installed.
pub const APPS_HINT: &str =
    "apt-get install -y xvfb xauth vulkan-tools mesa-utils libgl1-mesa-dri xdotool";

/// An Xvfb server on a display of its own, killed on drop.
pub struct Xvfb {
    child: std::process::Child,
    pub display: String,
}

impl Xvfb {
    pub fn start() -> Xvfb {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "640x480x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run Xvfb ({e}); {APPS_HINT}"));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("Xvfb prints its display");
        let n: u32 = line.trim().parse().expect("a display number");
        Xvfb {
            child,
            display: format!(":{n}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
