//! The checked-in C header (`include/agx_winsys.h`) must be exactly what cbindgen generates from
//! `src/ffi/` with `cbindgen.toml`. To regenerate it after changing the C ABI:
//!
//! ```sh
//! AGXWS_BLESS=1 cargo test -p agx-winsys --test header
//! ```
//!
//! (or, with the cbindgen CLI installed:
//! `cbindgen --config winsys/cbindgen.toml --output winsys/include/agx_winsys.h winsys/src/ffi/mod.rs`).

use std::path::Path;

fn generate() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen failed on src/ffi");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("UTF-8 header")
}

#[test]
fn checked_in_header_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/agx_winsys.h");
    let fresh = generate();
    if std::env::var_os("AGXWS_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("write include/agx_winsys.h");
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != fresh {
        let line = current
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| current.lines().count().min(fresh.lines().count()));
        panic!(
            "{} is stale (first difference at line {}): regenerate it with\n  \
             AGXWS_BLESS=1 cargo test -p agx-winsys --test header",
            path.display(),
            line + 1
        );
    }
}

#[test]
fn header_covers_every_exported_function() {
    let header = generate();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi");
    let mut count = 0;
    for e in std::fs::read_dir(&src).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for name in text
            .split("extern \"C\" fn ")
            .skip(1)
            .filter_map(|s| s.split('(').next())
        {
            assert!(name.starts_with("agx_ws_"), "{name}: not agx_ws_ prefixed");
            assert!(
                header.contains(&format!("{name}(")),
                "{name} missing from the header"
            );
            count += 1;
        }
    }
    assert!(count > 50, "only {count} functions found");
}

/// The names a C compiler sees in the header, with or without `AGX_WS_SIM` (the preprocessor
/// output's identifiers).
fn c_names(define_sim: bool) -> std::collections::HashSet<String> {
    let header = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/agx_winsys.h");
    let mut cmd = std::process::Command::new(std::env::var("CC").unwrap_or("cc".into()));
    cmd.args(["-E", "-P", "-x", "c"]).arg(&header);
    if define_sim {
        cmd.arg("-DAGX_WS_SIM");
    }
    let out = cmd.output().expect("run the C preprocessor (cc -E)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("agx_ws_") || w.starts_with("AGX_WS_"))
        .map(str::to_owned)
        .collect()
}

/// Everything of `src/ffi/sim.rs` (the simulator's C ABI) is in the header only under
/// `AGX_WS_SIM`, which meson defines for a `-Dsim=enabled` library; the rest is always there.
#[test]
fn simulator_entry_points_need_agx_ws_sim() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi/sim.rs"))
            .unwrap();
    let sim_fns: Vec<&str> = text
        .split("extern \"C\" fn ")
        .skip(1)
        .filter_map(|s| s.split('(').next())
        .collect();
    assert!(sim_fns.len() > 10, "{sim_fns:?}");
    let (with, without) = (c_names(true), c_names(false));
    for f in &sim_fns {
        assert!(
            f.starts_with("agx_ws_sim_"),
            "{f}: simulator entry points are agx_ws_sim_*"
        );
        assert!(with.contains(*f), "{f} missing with AGX_WS_SIM");
        assert!(!without.contains(*f), "{f} visible without AGX_WS_SIM");
    }
    for t in [
        "agx_ws_sim_stream",
        "agx_ws_injection",
        "AGX_WS_INJECT_FAULT",
    ] {
        assert!(with.contains(t) && !without.contains(t), "{t}");
    }
    // Nothing but the simulator's items depends on the define.
    let extra: Vec<_> = with
        .difference(&without)
        .filter(|n| {
            !(n.starts_with("agx_ws_sim")
                || n.starts_with("AGX_WS_SIM")
                || n.starts_with("AGX_WS_INJECT")
                || *n == "agx_ws_injection")
        })
        .collect();
    assert!(extra.is_empty(), "only in the simulator build: {extra:?}");
    for f in [
        "agx_ws_device_open_fd",
        "agx_ws_syncobj_wrap",
        "agx_ws_bo_map_fixed",
    ] {
        assert!(without.contains(f), "{f}");
    }
}
