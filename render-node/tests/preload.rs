//! The preload library under a C program that knows nothing of the simulator
//! (`tests/c/drm_node.c`): libdrm finds and names the node, raw ioctls, mappings, sync_files,
//! dma-bufs and fd duplicates work, on an embedded GPU and on a device server's. (The same
//! program also drives agx-winsys through the node: `meson test`, suite `render-node`.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use agx_sim::SimConfig;
use agx_sim_server::Server;

/// `target/<profile>` of this test binary.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_owned()
}

fn library() -> PathBuf {
    let dir = profile_dir();
    [
        dir.join("libagx_render_node.so"),
        dir.join("deps/libagx_render_node.so"),
    ]
    .into_iter()
    .filter(|p| p.exists())
    .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
    .expect("libagx_render_node.so is built with the tests (cargo build -p agx-render-node)")
}

/// Compiles the C program once per test binary run.
fn program() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let out = profile_dir().join(format!("render-node-drm-node-{}", std::process::id()));
            let flags = Command::new("pkg-config")
                .args(["--cflags", "--libs", "libdrm"])
                .output()
                .expect("pkg-config (apt-get install pkg-config libdrm-dev)");
            assert!(
                flags.status.success(),
                "libdrm not found: apt-get install libdrm-dev"
            );
            let flags = String::from_utf8(flags.stdout).unwrap();
            let st = Command::new("cc")
                .args(["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror"])
                .arg("-I")
                .arg(root.join("../uapi-bindings/include"))
                .arg(root.join("tests/c/drm_node.c"))
                .args(flags.split_whitespace())
                .arg("-o")
                .arg(&out)
                .status()
                .expect("a C compiler (apt-get install build-essential)");
            assert!(st.success(), "compiling tests/c/drm_node.c failed");
            out
        })
        .clone()
}

fn run(env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(program());
    c.env("LD_PRELOAD", library())
        .env_remove("AGX_RENDER_NODE")
        .env_remove("AGX_RENDER_NODE_DEVICE")
        .env_remove("AGX_RENDER_NODE_FAULTS");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{}\n{}",
        out,
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

#[test]
fn a_libdrm_program_finds_and_uses_the_embedded_node() {
    let out = ok(&run(&[]));
    assert!(out.contains("device: /dev/dri/renderD128, platform /soc/gpu@206400000"));
    assert!(out.contains("apple,agx-t8103, apple,agx-g13g"), "{out}");
    assert!(out.contains("driver: asahi"), "{out}");
    assert!(out.contains("gpu: generation 13 variant G"), "{out}");
    assert!(out.ends_with("ok\n"), "{out}");
}

#[test]
fn another_node_path() {
    let out = ok(&run(&[("AGX_RENDER_NODE", "/dev/dri/renderD130")]));
    assert!(out.contains("device: /dev/dri/renderD130"), "{out}");
}

#[test]
fn a_libdrm_program_on_a_device_server() {
    let dir = std::env::temp_dir();
    let sock = dir.join(format!("agx-render-node-test-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let server = Server::new(SimConfig::default());
    let listener = server.listen(&sock).unwrap();
    let spec = format!("unix:{}", listener.path().display());
    let out = ok(&run(&[("AGX_RENDER_NODE_DEVICE", &spec)]));
    assert!(out.ends_with("ok\n"), "{out}");
    // Its files were the server's: opened, used, and closed when the program ended.
    assert!(server.stats().connections >= 1);
    assert!(server.shared_device().stats().submits == 0);
    let t0 = Instant::now();
    while server.stats().open != 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{:?}",
            server.stats()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // No server there: the node cannot be opened, and says why.
    drop(listener);
    let o = run(&[("AGX_RENDER_NODE_DEVICE", &spec)]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot open /dev/dri/renderD128"), "{err}");
}

#[test]
fn a_bad_configuration_provides_no_node_and_says_why() {
    for (k, v) in [
        ("AGX_RENDER_NODE", "/dev/dri/card0"),
        ("AGX_RENDER_NODE_DEVICE", "sim:policy=sideways"),
        ("AGX_RENDER_NODE_FAULTS", "guilty@0"),
    ] {
        let o = run(&[(k, v)]);
        assert!(!o.status.success(), "{k}={v}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("the render node is not provided"), "{err}");
    }
}
