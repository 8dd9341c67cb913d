//! Replays, through every target, its seeds, the committed corpus (`fuzz/corpus/<target>/`) and
//! every input that ever made it fail (`fuzz/regressions/<target>/`, one file per finding,
//! named for it). This is how `cargo test` keeps each finding fixed, and how the corpus also
//! runs under AddressSanitizer (`tools/fuzz.sh`).

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn seeds_corpus_and_regressions_pass_every_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut failures = Vec::new();
    let mut count = 0;
    for &(name, target) in agx_fuzz::TARGETS {
        let mut inputs: Vec<(String, Vec<u8>)> = agx_fuzz::seeds::seeds(name)
            .into_iter()
            .enumerate()
            .map(|(i, s)| (format!("seed {i}"), s))
            .collect();
        for dir in ["corpus", "regressions"] {
            for f in files(&root.join(dir).join(name)) {
                let bytes = std::fs::read(&f).expect("readable");
                inputs.push((f.display().to_string(), bytes));
            }
        }
        assert!(!inputs.is_empty(), "{name}: no inputs");
        for (what, bytes) in inputs {
            count += 1;
            if let Err(e) = std::panic::catch_unwind(|| target(&bytes)) {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{name}: {what}: {msg}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} inputs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
