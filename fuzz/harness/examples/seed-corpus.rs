//! Writes every target's seed inputs to `fuzz/corpus/<target>/seed-<n>` (run once when the
//! seeds change; the fuzzer adds to the corpus from there).

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    for &(name, _) in agx_fuzz::TARGETS {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        for (i, s) in agx_fuzz::seeds::seeds(name).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), s).expect("write seed");
        }
    }
}
