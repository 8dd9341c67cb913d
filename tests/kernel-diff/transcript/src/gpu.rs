//! "Userspace plays the GPU": the three test operations of the `agx_synctest` kernel module
//! (`module/agx_synctest_uapi.h`) and their simulator counterparts (`agx_sim::test_fence`),
//! behind one trait, with the DRM file they act on.

use std::path::Path;

use agx_sim::{SimConfig, SimDevice};
use agx_uapi::ioctl::{iow, iowr};
use agx_winsys::kernel::{KernelFile, RenderNode};
use agx_winsys::sim::SimBackend;
use bytemuck::{Pod, Zeroable};
use rustix::io::Errno;

/// `struct drm_agx_synctest_attach_fence`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct AttachFence {
    handle: u32,
    flags: u32,
    point: u64,
    fence_id: u64,
}

/// `struct drm_agx_synctest_signal_fence`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct SignalFence {
    fence_id: u64,
    error: i32,
    pad: u32,
}

/// `struct drm_agx_synctest_timeout_fence`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct TimeoutFence {
    fence_id: u64,
    delay_ms: u32,
    pad: u32,
}

const DRM_BASE: u8 = agx_uapi::drm::DRM_IOCTL_BASE;
const CMD: u8 = agx_uapi::drm::DRM_COMMAND_BASE;
const ATTACH_FENCE: u32 = iowr::<AttachFence>(DRM_BASE, CMD);
const SIGNAL_FENCE: u32 = iow::<SignalFence>(DRM_BASE, CMD + 1);
const TIMEOUT_FENCE: u32 = iow::<TimeoutFence>(DRM_BASE, CMD + 2);
const _: () = assert!(ATTACH_FENCE == 0xC018_6440);
const _: () = assert!(SIGNAL_FENCE == 0x4010_6441);
const _: () = assert!(TIMEOUT_FENCE == 0x4010_6442);

/// One open DRM file plus the test driver's "play the GPU" operations on it.
pub trait TestFile: Send + Sync {
    /// The file, for the winsys's ioctl functions.
    fn kernel(&self) -> &dyn KernelFile;
    /// Attaches a new unsignalled fence to `handle` (`point` 0: replace, else timeline point).
    fn attach(&self, handle: u32, point: u64) -> Result<u64, Errno>;
    /// Signals fence `id` with `error` (0 or a negative errno).
    fn signal(&self, id: u64, error: i32) -> Result<(), Errno>;
    /// Signals fence `id` with `-ETIMEDOUT` after `delay_ms`.
    fn timeout(&self, id: u64, delay_ms: u32) -> Result<(), Errno>;
}

/// A render node with the `agx_synctest` driver.
pub struct NodeFile(RenderNode);

impl TestFile for NodeFile {
    fn kernel(&self) -> &dyn KernelFile {
        &self.0
    }

    fn attach(&self, handle: u32, point: u64) -> Result<u64, Errno> {
        let mut a = AttachFence {
            handle,
            point,
            ..Default::default()
        };
        self.0.ioctl(ATTACH_FENCE, bytemuck::bytes_of_mut(&mut a))?;
        Ok(a.fence_id)
    }

    fn signal(&self, id: u64, error: i32) -> Result<(), Errno> {
        let mut a = SignalFence {
            fence_id: id,
            error,
            pad: 0,
        };
        self.0.ioctl(SIGNAL_FENCE, bytemuck::bytes_of_mut(&mut a))
    }

    fn timeout(&self, id: u64, delay_ms: u32) -> Result<(), Errno> {
        let mut a = TimeoutFence {
            fence_id: id,
            delay_ms,
            pad: 0,
        };
        self.0.ioctl(TIMEOUT_FENCE, bytemuck::bytes_of_mut(&mut a))
    }
}

/// A file of the embedded simulated device, with the `agx_sim::test_fence` hooks.
pub struct SimTestFile(SimBackend);

impl TestFile for SimTestFile {
    fn kernel(&self) -> &dyn KernelFile {
        &self.0
    }

    fn attach(&self, handle: u32, point: u64) -> Result<u64, Errno> {
        self.0.file().test_attach_fence(handle, point)
    }

    fn signal(&self, id: u64, error: i32) -> Result<(), Errno> {
        self.0.file().test_signal_fence(id, error)
    }

    fn timeout(&self, id: u64, delay_ms: u32) -> Result<(), Errno> {
        self.0.file().test_timeout_fence(id, delay_ms)
    }
}

impl Drop for SimTestFile {
    /// Closing the file: the module's `postclose` cancels the fences the file owns.
    fn drop(&mut self) {
        self.0.file().test_close_fences();
    }
}

/// Where files are opened: a render node path, or one simulated device.
pub enum Target {
    Node(std::path::PathBuf),
    Sim(SimDevice),
}

impl Target {
    pub fn node(path: &Path) -> Target {
        Target::Node(path.to_owned())
    }

    pub fn sim() -> Target {
        Target::Sim(SimDevice::new(SimConfig::default()))
    }

    /// Opens one more file.
    pub fn open(&self) -> Result<Box<dyn TestFile>, Errno> {
        Ok(match self {
            Target::Node(p) => Box::new(NodeFile(RenderNode::open(p)?)),
            Target::Sim(d) => Box::new(SimTestFile(SimBackend::open(d))),
        })
    }
}
