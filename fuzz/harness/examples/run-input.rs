//! Runs one input file through one target: `cargo run -p agx-fuzz --example run-input -- TARGET
//! FILE` (with `AGX_FUZZ_TRACE=1` to see every call), to read a finding.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, target, file] = args.as_slice() else {
        eprintln!("usage: run-input TARGET FILE");
        std::process::exit(2);
    };
    let Some((_, f)) = agx_fuzz::TARGETS.iter().find(|(n, _)| n == target) else {
        eprintln!("unknown target {target}");
        std::process::exit(2);
    };
    f(&std::fs::read(file).expect("readable input"));
    println!("ok");
}
