//! Opening a device: `auto` (the first asahi render node, else the embedded simulated device),
//! `sim[:options]`, or a node path; `AGXWS_DEVICE` overrides, Mesa style.

use std::path::Path;
use std::sync::Arc;

use agx_sim::{RecoveryPolicy, SimConfig, SimDevice, StreamMode};
use agx_uapi::asahi::drm_asahi_params_global;
use agx_uapi::fault_ext as ext;

use crate::error::{Error, Result};
use crate::ioctl;
use crate::kernel::{Backend, KernelFile, RenderNode, SimBackend};
use crate::params::{DeviceParams, FaultExtInfo};

/// Which device to open.
#[derive(Clone, Debug, PartialEq)]
pub enum DeviceSpec {
    /// The first render node whose driver is `asahi`, else a simulated device.
    Auto,
    /// A new embedded simulated device.
    Sim(SimOptions),
    /// A render node by path.
    Node(std::path::PathBuf),
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
    /// `streams=opaque`: run real AGX control streams (Mesa's) as opaque jobs.
    pub streams: StreamMode,
}

impl Default for SimOptions {
    fn default() -> Self {
        let c = SimConfig::default();
        SimOptions {
            policy: c.policy,
            replay_limit: c.replay_limit,
            hang_timeout_ns: c.hang_timeout_ns,
            soft_faults: c.soft_faults,
            upstream: !c.fault_ext,
            streams: c.streams,
        }
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
            streams: self.streams,
            ..SimConfig::default()
        }
    }
}

impl DeviceSpec {
    /// Parses `auto`, `sim`, `sim:policy=kill-inflight,replay-limit=2,hang-timeout-ms=10,
    /// soft-faults,upstream,streams=opaque`, or a path.
    pub fn parse(spec: &str) -> Result<DeviceSpec> {
        let bad = |why: String| Error::BadSpec {
            spec: spec.to_owned(),
            why,
        };
        let spec_t = spec.trim();
        if spec_t.is_empty() || spec_t == "auto" {
            return Ok(DeviceSpec::Auto);
        }
        if spec_t.starts_with('/') {
            return Ok(DeviceSpec::Node(spec_t.into()));
        }
        let Some(rest) = spec_t.strip_prefix("sim") else {
            return Err(bad("expected auto, sim[:options] or a /dev/dri path".into()));
        };
        let mut o = SimOptions::default();
        let opts = match rest.strip_prefix(':') {
            Some(o) => o,
            None if rest.is_empty() => "",
            None => return Err(bad("expected ':' after sim".into())),
        };
        for item in opts.split(',').filter(|s| !s.is_empty()) {
            let (k, v) = item.split_once('=').unwrap_or((item, ""));
            let num = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| bad(format!("{k}: not a number: {v:?}")))
            };
            match k {
                "policy" => {
                    o.policy = RecoveryPolicy::from_name(v)
                        .ok_or_else(|| bad(format!("unknown policy {v:?}")))?
                }
                "replay-limit" => o.replay_limit = num(v)? as u32,
                "hang-timeout-ms" => o.hang_timeout_ns = num(v)? * 1_000_000,
                "soft-faults" => o.soft_faults = true,
                "upstream" => o.upstream = true,
                "streams" => {
                    o.streams = StreamMode::from_name(v)
                        .ok_or_else(|| bad(format!("unknown stream mode {v:?}")))?
                }
                _ => return Err(bad(format!("unknown option {k:?}"))),
            }
        }
        Ok(DeviceSpec::Sim(o))
    }

    /// The spec in force: `AGXWS_DEVICE` if set, else `default`.
    pub fn from_env_or(default: DeviceSpec) -> Result<DeviceSpec> {
        match std::env::var("AGXWS_DEVICE") {
            Ok(s) => DeviceSpec::parse(&s),
            Err(_) => Ok(default),
        }
    }
}

pub(crate) struct DeviceInner {
    pub(crate) kernel: Box<dyn KernelFile>,
    pub(crate) params: DeviceParams,
    pub(crate) fault_ext: Option<FaultExtInfo>,
    pub(crate) trace_path: Option<std::path::PathBuf>,
    /// Every live BO by GEM handle, so an import of an object we hold finds it.
    pub(crate) bo_handles:
        std::sync::Mutex<std::collections::HashMap<u32, std::sync::Weak<crate::bo::BoInner>>>,
}

impl std::fmt::Debug for DeviceInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("backend", &self.kernel.backend())
            .field("params", &self.params)
            .finish()
    }
}

impl Drop for DeviceInner {
    fn drop(&mut self) {
        if let (Some(path), Some(sim)) = (&self.trace_path, self.kernel.simulator()) {
            if let Err(e) = std::fs::write(path, sim.trace_json()) {
                eprintln!(
                    "agx-winsys: cannot write AGXWS_TRACE {}: {e}",
                    path.display()
                );
            }
        }
    }
}

/// An open device: one DRM file, its parameters and features. Cheap to clone; every object
/// made from it keeps it open.
#[derive(Clone, Debug)]
pub struct Device {
    pub(crate) inner: Arc<DeviceInner>,
}

impl Device {
    /// Opens the device `AGXWS_DEVICE` names, or `auto`.
    pub fn open_default() -> Result<Device> {
        Device::open(&DeviceSpec::from_env_or(DeviceSpec::Auto)?)
    }

    /// Opens a device by spec.
    pub fn open(spec: &DeviceSpec) -> Result<Device> {
        match spec {
            DeviceSpec::Auto => match find_asahi_node() {
                Some(node) => Device::from_kernel(Box::new(node)),
                None => Device::open(&DeviceSpec::Sim(SimOptions::default())),
            },
            DeviceSpec::Sim(o) => Device::open_sim(&SimDevice::new(o.config())),
            DeviceSpec::Node(p) => {
                let node = RenderNode::open(p)
                    .map_err(|e| Error::NoDevice(format!("{}: {e}", p.display())))?;
                Device::from_kernel(Box::new(node))
            }
        }
    }

    /// Opens a new file on an existing simulated device (another process's view of the GPU).
    pub fn open_sim(sim: &SimDevice) -> Result<Device> {
        Device::from_kernel(Box::new(SimBackend::open(sim)))
    }

    /// Wraps an open DRM file: reads parameters and probes the extension.
    pub fn from_kernel(kernel: Box<dyn KernelFile>) -> Result<Device> {
        let mut raw = drm_asahi_params_global::default();
        ioctl::get_params(kernel.as_ref(), 0, &mut raw)?;
        let params = DeviceParams::from_raw(&raw);
        let mut e = ext::drm_asahi_params_fault_ext::default();
        let fault_ext = match ioctl::get_params(
            kernel.as_ref(),
            ext::DRM_ASAHI_PARAM_GROUP_FAULT_EXT,
            &mut e,
        ) {
            Ok(()) => Some(FaultExtInfo::from_raw(&e)),
            Err(err) if ioctl::is_unsupported(&err) => None,
            Err(err) => return Err(err),
        };
        let trace_path = std::env::var_os("AGXWS_TRACE")
            .filter(|p| !p.is_empty())
            .map(Into::into);
        Ok(Device {
            inner: Arc::new(DeviceInner {
                kernel,
                params,
                fault_ext,
                trace_path,
                bo_handles: Default::default(),
            }),
        })
    }

    /// Parameters of the GPU.
    pub fn params(&self) -> &DeviceParams {
        &self.inner.params
    }

    /// The fault-report extension, if the kernel has it (`None`: upstream mode).
    pub fn fault_ext(&self) -> Option<&FaultExtInfo> {
        self.inner.fault_ext.as_ref()
    }

    /// Simulated or real.
    pub fn backend(&self) -> Backend {
        self.inner.kernel.backend()
    }

    /// The simulated device behind this one, for test control; `None` on hardware.
    pub fn simulator(&self) -> Option<&SimDevice> {
        self.inner.kernel.simulator()
    }

    /// GPU time, ns.
    pub fn gpu_time_ns(&self) -> Result<u64> {
        ioctl::get_time(self.kernel())
    }

    pub(crate) fn kernel(&self) -> &dyn KernelFile {
        self.inner.kernel.as_ref()
    }

    /// Whether two handles are the same open file.
    pub fn same(&self, other: &Device) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// The first `/dev/dri/renderD*` whose driver is `asahi`.
fn find_asahi_node() -> Option<RenderNode> {
    let mut nodes: Vec<_> = std::fs::read_dir("/dev/dri")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("renderD"))
        })
        .collect();
    nodes.sort();
    nodes.into_iter().find_map(|p: std::path::PathBuf| {
        let node = RenderNode::open(Path::new(&p)).ok()?;
        (node.driver_name().ok()? == "asahi").then_some(node)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(DeviceSpec::parse("auto").unwrap(), DeviceSpec::Auto);
        assert_eq!(
            DeviceSpec::parse("/dev/dri/renderD128").unwrap(),
            DeviceSpec::Node("/dev/dri/renderD128".into())
        );
        let DeviceSpec::Sim(o) =
            DeviceSpec::parse("sim:policy=kill-inflight,replay-limit=7,hang-timeout-ms=5,upstream")
                .unwrap()
        else {
            panic!()
        };
        assert_eq!(o.policy, RecoveryPolicy::KillInflight);
        assert_eq!(o.replay_limit, 7);
        assert_eq!(o.hang_timeout_ns, 5_000_000);
        assert!(o.upstream);
        assert!(DeviceSpec::parse("sim:policy=bogus").is_err());
        let DeviceSpec::Sim(o) = DeviceSpec::parse("sim:streams=opaque").unwrap() else {
            panic!("sim spec");
        };
        assert_eq!(o.config().streams, StreamMode::Opaque);
        assert!(DeviceSpec::parse("sim:streams=vdm").is_err());
        assert!(DeviceSpec::parse("sim:frobnicate").is_err());
        assert!(DeviceSpec::parse("nvidia").is_err());
    }
}
