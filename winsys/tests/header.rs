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
