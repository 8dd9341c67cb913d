//! `agx-kdiff`: the real-kernel differential test of the DRM sync paths.
//!
//! One scripted sequence of sync object operations goes through the winsys's ioctl functions
//! (`agx_winsys::ioctl`, the code that drives an asahi render node) on a [`KernelFile`]:
//!
//! - `agx-kdiff node /dev/dri/renderD128`: a real DRM render node with the `agx_synctest`
//!   test driver (run in the QEMU guest by `tests/kernel-diff/run.sh`);
//! - `agx-kdiff sim`: the embedded simulated device.
//!
//! Either prints the transcript on stdout. `agx-kdiff compare KERNEL SIM EXPECTED` compares two
//! transcripts line by line, modulo the documented differences (exit 0 when they match, 1 on
//! the first unexplained difference, 2 on bad input).
//!
//! [`KernelFile`]: agx_winsys::kernel::KernelFile

mod compare;
mod gpu;
mod sequence;

use std::path::Path;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: agx-kdiff node PATH | agx-kdiff sim | agx-kdiff compare KERNEL SIM EXPECTED");
    ExitCode::from(2)
}

fn run(target: gpu::Target) -> ExitCode {
    match sequence::Run::new(&target) {
        Ok(r) => {
            r.all();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("agx-kdiff: open failed: {e}");
            ExitCode::from(2)
        }
    }
}

fn read(path: &str) -> Result<String, ExitCode> {
    std::fs::read_to_string(path).map_err(|e| {
        eprintln!("agx-kdiff: {path}: {e}");
        ExitCode::from(2)
    })
}

fn compare(kernel: &str, sim: &str, expected: &str) -> ExitCode {
    let (k, s, e) = match (read(kernel), read(sim), read(expected)) {
        (Ok(k), Ok(s), Ok(e)) => (k, s, e),
        _ => return ExitCode::from(2),
    };
    let entries = match compare::parse_expected(&e) {
        Ok(x) => x,
        Err(msg) => {
            eprintln!("agx-kdiff: {expected}: {msg}");
            return ExitCode::from(2);
        }
    };
    let report = compare::compare(&k, &s, &entries);
    print!("{}", report.text);
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["node", path] => run(gpu::Target::node(Path::new(path))),
        ["sim"] => run(gpu::Target::sim()),
        ["compare", k, s, e] => compare(k, s, e),
        _ => usage(),
    }
}
