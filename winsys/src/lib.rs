//! `agx-winsys`: the userspace runtime between Mesa's AGX drivers and the Linux `asahi` kernel
//! driver (or the embedded simulated device, `agx-sim`).
//!
//! Data flows one way: a driver describes a render pass or dispatch ([`cmd`]), the winsys
//! computes its accesses and restartability ([`analysis`]), encodes the flat cmdbuf, submits it
//! through the kernel boundary ([`kernel`], [`ioctl`]) on a [`Queue`], and turns the job's fence
//! and result record into a [`JobOutcome`], which maps to GL reset status ([`reset`]) and
//! Vulkan semantics ([`vulkan`]). [`ffi`] is the C ABI (`include/agx_winsys.h`).
//!
//! With the cargo feature `sim` (off in the library Mesa links), [`sim`] adds the simulated
//! device as a backend, opened only when asked for by name, with its test controls, and `kit`
//! builds workloads for it (tests, benchmarks, the fault suite).
#![deny(unsafe_code)]

pub mod analysis;
pub mod bo;
pub mod cmd;
pub mod device;
pub mod error;
pub mod ffi;
pub mod ioctl;
pub mod job;
pub mod kernel;
#[cfg(feature = "sim")]
pub mod kit;
pub mod outcome;
pub mod params;
pub mod queue;
pub mod reset;
#[cfg(feature = "sim")]
pub mod sim;
pub mod sync;
pub mod va;
pub mod vm;
pub mod vulkan;

pub use bo::{Bo, BoFlags};
pub use device::{Device, DeviceSpec};
pub use error::{Error, Result};
pub use job::{Job, QueueState};
pub use outcome::{FaultInfo, FaultKind, FaultUnit, Guilt, JobOutcome};
pub use queue::{Priority, Queue, SyncPoint};
pub use reset::{ResetStatus, ResetTracker};
pub use sync::{Deadline, FenceStatus, SyncObj, WaitFlags};
pub use vm::{Access, VaClass, Vm};
