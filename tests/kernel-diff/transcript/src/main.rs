//! `agx-kdiff`: the real-kernel differential test of the DRM sync paths.
//!
//! One scripted sequence of sync object operations goes through the winsys's ioctl functions
//! (`agx_winsys::ioctl`, the code that drives an asahi render node) on a [`KernelFile`]:
//!
//! - `agx-kdiff node /dev/dri/renderD128`: a real DRM render node with the `agx_synctest`
//!   test driver (run in the QEMU guest by `tests/kernel-diff/run.sh`);
//! - `agx-kdiff sim`: the embedded simulated device.
//!
//! Either prints the transcript on stdout. On a node, a line `check: open-fd: ...` comes first:
//! the C ABI's `agx_ws_device_open_fd` must refuse the test driver's node (a DRM device, but
//! not asahi) with `-ENODEV` and leave the caller's fd open and usable (`diff.sh` takes the
//! `check:` lines out of the transcript and requires them to say `ok`). `agx-kdiff compare KERNEL SIM EXPECTED` compares two
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

/// `agx_ws_device_open_fd` on a DRM node of another driver: refused, fd untouched.
fn open_fd_check(path: &Path) -> bool {
    use std::os::fd::{AsFd, AsRawFd};
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) => {
            println!("check: open-fd: FAIL cannot open {}: {e}", path.display());
            return false;
        }
    };
    let fd = file.as_raw_fd();
    let flags = rustix::fs::fcntl_getfl(&file).ok();
    let mut dev = std::ptr::null_mut();
    // SAFETY: `fd` is open for the call (owned by `file`); `dev` is a valid out-pointer.
    let rc = unsafe { agx_winsys::ffi::device::agx_ws_device_open_fd(fd, &mut dev) };
    // SAFETY: the library's message for this thread, valid until its next failing call.
    let msg = unsafe { std::ffi::CStr::from_ptr(agx_winsys::ffi::agx_ws_last_error()) }
        .to_string_lossy()
        .into_owned();
    // The fd is still open, with the same flags, and still a working DRM file.
    let intact = rustix::fs::fcntl_getfl(&file).ok() == flags
        && agx_winsys::kernel::RenderNode::dup(file.as_fd())
            .and_then(|n| n.driver_name())
            .is_ok();
    let enodev = rustix::io::Errno::NODEV.raw_os_error();
    let ok = rc == -enodev && dev.is_null() && msg.contains("not an asahi device") && intact;
    println!(
        "check: open-fd: {} rc={rc} fd-intact={intact} msg={msg}",
        if ok { "ok" } else { "FAIL" }
    );
    ok
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
        ["node", path] => {
            if !open_fd_check(Path::new(path)) {
                return ExitCode::from(1);
            }
            run(gpu::Target::node(Path::new(path)))
        }
        ["sim"] => run(gpu::Target::sim()),
        ["compare", k, s, e] => compare(k, s, e),
        _ => usage(),
    }
}
