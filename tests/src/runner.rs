//! Named cases and the deqp-runner style runner (placeholder until the suite lands).

use std::path::Path;

use crate::{DeviceArg, RunOpts};

pub fn list() -> u8 {
    0
}

pub fn run(_o: &RunOpts) -> u8 {
    eprintln!("no cases yet");
    1
}

pub fn run_one(_name: &str, _d: &DeviceArg) -> u8 {
    1
}

pub fn trace(_name: &str, _out: &Path) -> u8 {
    1
}
