//! The simulated device as a backend (cargo feature `sim`): opening one, its options, and
//! [`SimControl`], the test controls only a simulated GPU has.
//!
//! Two backends: [`SimBackend`], a simulated GPU embedded in this process, and
//! [`RemoteBackend`], a file of a device on a device server (`agx-sim-server`) shared with
//! other processes: `unix:PATH` opens the server's shared device, and `AGXWS_SIM_SERVER=PATH`
//! makes every `sim[:options]` spec create its device on that server instead of in-process
//! (how the test suites run as clients).
//!
//! Nothing here is reachable in a build without the feature, which is how Mesa links the
//! library (meson `-Dsim=disabled`): a driver then only ever sees a real render node. With the
//! feature, a simulated device is still only opened when asked for by name (`sim`), never as a
//! fallback.
//!
//! The rest of the winsys does not know whether its device is simulated: it talks to a
//! [`KernelFile`](crate::kernel::KernelFile). Tests and the fault suite reach the simulator's
//! controls through [`Device::sim_control`](crate::Device::sim_control).

mod embedded;
mod remote;

use std::sync::Arc;

pub use agx_sim::gpu::Stats;
pub use agx_sim::trace::Event;
pub use agx_sim::{Clock, Injection, RecoveryPolicy, SimConfig, SimDevice, StreamMode};
pub use agx_sim_server::{Endpoint, Target};
pub use embedded::SimBackend;
pub use remote::RemoteBackend;

use crate::error::{Error, Result};
use crate::Device;

/// Test controls of a simulated GPU, implemented by each simulated backend (never by a render
/// node: real GPUs fault on their own and have no clock to stop). Every method acts on the
/// whole GPU except [`SimControl::inject`], which names a queue of this device's file.
pub trait SimControl: Send + Sync + std::fmt::Debug {
    /// Stops the GPU clock: submitted work queues up but nothing starts or progresses until
    /// [`SimControl::release`], so several contexts' work can be put in flight together.
    fn hold(&self);
    /// Restarts the clock and runs everything runnable.
    fn release(&self);
    /// With the clock held, runs the GPU for `ns` of GPU time and stops it again, leaving
    /// commands partially executed. Does nothing when not held.
    fn advance(&self, ns: u64);
    /// The next command to start on queue `queue_id` (of this device's file) faults or hangs.
    fn inject(&self, queue_id: u32, injection: Injection) -> Result<()>;
    /// Crashes the firmware: the device is gone for good.
    fn crash_firmware(&self);
    /// GPU time, ns.
    fn now_ns(&self) -> u64;
    /// Counters since the GPU was created.
    fn stats(&self) -> Stats;
    /// Commands accepted and not yet ended.
    fn pending_commands(&self) -> usize;
    /// The firmware trace as Chrome/Perfetto JSON.
    fn trace_json(&self) -> String;
    /// The firmware trace's events.
    fn trace_events(&self) -> Vec<Event>;
    /// The GPU's configuration.
    fn config(&self) -> SimConfig;
    /// Opens another file on the same GPU: what a second process (or a second GL context with
    /// a file of its own) sees.
    fn open_peer(&self) -> Result<Device>;
}

/// Options of a simulated device (`sim:policy=replay,replay-limit=3,...`).
#[derive(Clone, Debug, PartialEq)]
pub struct SimOptions {
    pub policy: RecoveryPolicy,
    pub replay_limit: u32,
    pub hang_timeout_ns: u64,
    pub soft_faults: bool,
    /// Pretend to be an upstream kernel: no fault-report extension.
    pub upstream: bool,
    /// What GPU time follows (`clock=host` for interactive programs).
    pub clock: Clock,
    /// `streams=opaque`: run real AGX control streams (Mesa's) as opaque jobs.
    pub streams: StreamMode,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions::from_config(&SimConfig::default())
    }
}

impl SimOptions {
    pub fn config(&self) -> SimConfig {
        SimConfig {
            policy: self.policy,
            replay_limit: self.replay_limit,
            hang_timeout_ns: self.hang_timeout_ns,
            soft_faults: self.soft_faults,
            fault_ext: !self.upstream,
            clock: self.clock,
            streams: self.streams,
            ..SimConfig::default()
        }
    }

    fn from_config(c: &SimConfig) -> SimOptions {
        SimOptions {
            policy: c.policy,
            replay_limit: c.replay_limit,
            hang_timeout_ns: c.hang_timeout_ns,
            soft_faults: c.soft_faults,
            upstream: !c.fault_ext,
            clock: c.clock,
            streams: c.streams,
        }
    }

    /// Parses the options after `sim:` ([`SimConfig::from_options`]: `policy=kill-inflight|
    /// replay|continue`, `replay-limit=N`, `hang-timeout-ms=N`, `soft-faults`, `upstream`,
    /// `streams=sim|opaque`, `clock=virtual|host`, comma-separated).
    pub(crate) fn parse(opts: &str, bad: impl Fn(String) -> Error) -> Result<SimOptions> {
        SimConfig::from_options(opts)
            .map(|c| SimOptions::from_config(&c))
            .map_err(bad)
    }
}

impl crate::Queue {
    /// Test hook: the next command to start on this queue faults or hangs after the given GPU
    /// time. `Error::Unsupported` unless the device was opened as a simulated one.
    pub fn inject(&self, injection: Injection) -> Result<()> {
        self.inner
            .dev
            .sim_control()
            .ok_or(Error::Unsupported(
                "fault injection needs the simulated device",
            ))?
            .inject(self.inner.id, injection)
    }
}

/// Opens a new file on an existing embedded simulated GPU.
pub fn open(sim: &SimDevice) -> Result<Device> {
    open_backend(SimBackend::open(sim))
}

/// A new simulated GPU with `options`, and a first file on it: embedded in this process, or,
/// when `AGXWS_SIM_SERVER` names a device server's socket, a private device on that server.
pub fn open_new(options: &SimOptions) -> Result<Device> {
    match std::env::var_os(SERVER_ENV).filter(|p| !p.is_empty()) {
        Some(path) => open_remote(
            &Endpoint::Path(path.into()),
            Target::New(options.config().to_options()),
        ),
        None => open(&SimDevice::new(options.config())),
    }
}

/// The environment variable that puts `sim` devices on a device server.
pub const SERVER_ENV: &str = "AGXWS_SIM_SERVER";

/// Opens a file on a device of a device server.
pub fn open_remote(endpoint: &Endpoint, target: Target) -> Result<Device> {
    open_backend(RemoteBackend::open(endpoint, target)?)
}

fn open_backend<B: crate::kernel::KernelFile + SimControl + 'static>(b: B) -> Result<Device> {
    let backend = Arc::new(b);
    Device::with_control(backend.clone(), backend)
}
