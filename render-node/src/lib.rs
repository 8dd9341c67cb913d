//! `libagx_render_node.so`: with `LD_PRELOAD`, a render node (default `/dev/dri/renderD128`)
//! that any program can open is the simulated asahi GPU: a device of a device server
//! (`AGX_RENDER_NODE_DEVICE=unix:PATH`) or one embedded in the process (`sim[:options]`, the
//! default). Devices it creates run real AGX streams as opaque jobs (`streams=opaque` unless the
//! options say otherwise). Mesa's `drm-shim` that can fail jobs.
//!
//! What is interposed, and why:
//! - `open`/`openat` (and their 64-bit and fortified forms) of the node: a new DRM file (a
//!   connection to the device); of its sysfs `uevent`: the platform device's facts;
//! - `close`, `dup`, `dup2`, `dup3`, `fcntl(F_DUPFD*)`: which fds are the node's files;
//! - `ioctl` on a node fd: the DRM and asahi ioctls, through the device; `SYNC_IOC_*` and
//!   `DMA_BUF_IOCTL_*` on the sync_files and dma-bufs it exported (real pipes and memfds,
//!   pollable and mappable, which the host kernel does not know as such);
//! - `mmap` of a GEM offset: the BO's memory, shared with the GPU;
//! - `stat`/`fstat`/`access` family, `opendir`/`readdir`/`closedir` of `/dev/dri`,
//!   `readlink`/`realpath` of the sysfs device, `fopen` of its `uevent`: what libdrm's
//!   `drmGetDevices2` and Mesa's loader read to find and name the device (a platform device
//!   with Apple's AGX compatible strings, driver `asahi`).
//!
//! `AGX_RENDER_NODE_FAULTS` makes the program's own submits fault or hang (`faults`).
//!
//! Every hook catches panics (none crosses into C), and a call made while already inside a
//! hook goes straight to the C library. Variadic C functions (`open`, `ioctl`, `fcntl`) are
//! defined with their optional argument spelled out: on x86-64 and AArch64 Linux a variadic
//! integer or pointer argument travels exactly as a named one would.
#![deny(unsafe_op_in_unsafe_fn)]
// The unit tests build without the hooks (they would interpose on the test harness).
#![cfg_attr(test, allow(dead_code))]

mod faults;
mod node;
mod real;
mod state;

#[cfg(not(test))]
mod hooks;

use std::sync::OnceLock;

use state::State;

/// The node, once the environment is read (`None`: misconfigured, said once on stderr; every
/// call then goes to the C library).
fn state() -> Option<&'static State> {
    static STATE: OnceLock<Option<State>> = OnceLock::new();
    STATE
        .get_or_init(|| match node::Node::from_env() {
            Ok(n) => Some(State::new(n)),
            Err(why) => {
                eprintln!("agx-render-node: {why}; the render node is not provided");
                None
            }
        })
        .as_ref()
}
