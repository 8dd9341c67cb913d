//! Fuzz targets for every boundary of agx-winsys that takes bytes from outside (issue "Tests
//! that can fail"). Each target is a function of the fuzzer's bytes that panics when an
//! invariant breaks; the libFuzzer binaries in `fuzz/libfuzzer/` call them, and
//! `tests/corpus.rs` replays the committed corpus (`fuzz/corpus/<target>/`) and every crash
//! ever found (`fuzz/regressions/<target>/`) through them in `cargo test`.
//!
//! | target | boundary |
//! | --- | --- |
//! | [`ioctl`] | the simulated kernel: every ioctl number, argument bytes, cmdbufs and streams, user pointers confined to an arena |
//! | [`cmdbuf`] | the simulator's cmdbuf parser alone, against the winsys's decoder |
//! | [`spirv`] | the Vulkan layer's SPIR-V scan |
//! | [`plan`] | the Vulkan layer's fault-plan grammar (`AGX_FAULT_PLAN`) |
//! | [`c_abi`] | the C ABI's entry points with arbitrary descriptors and handles |
//! | [`server_msg`] | the device server's wire decoder: request and reply frames, control values |

pub mod arena;
pub mod c_abi;
pub mod cmdbuf;
pub mod input;
pub mod ioctl;
pub mod seeds;
pub mod server_msg;
pub mod vk;

pub use vk::{plan, spirv};

/// With `AGX_FUZZ_TRACE` set, prints what a target does (for reading a finding).
pub fn trace(f: impl FnOnce() -> String) {
    if std::env::var_os("AGX_FUZZ_TRACE").is_some() {
        eprintln!("{}", f());
    }
}

/// A fuzz target: panics when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target by name.
pub const TARGETS: &[(&str, Target)] = &[
    ("ioctl", ioctl::run),
    ("cmdbuf", cmdbuf::run),
    ("spirv", vk::spirv),
    ("plan", vk::plan),
    ("c_abi", c_abi::run),
    ("server_msg", server_msg::run),
];
