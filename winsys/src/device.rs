//! Opening a device: `auto` (the asahi render node), a node path, a DRM fd the caller opened,
//! or, only when asked for by name and built with the `sim` feature, a simulated device.
//! `AGXWS_DEVICE` overrides, Mesa style. There is no fallback: a machine without an asahi
//! render node gets an error that says what was looked for.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use agx_uapi::asahi::drm_asahi_params_global;
use agx_uapi::fault_ext as ext;

use crate::error::{Error, Result};
use crate::ioctl;
use crate::kernel::{KernelFile, RenderNode};
use crate::params::{DeviceParams, FaultExtInfo};
#[cfg(feature = "sim")]
use crate::sim::{SimControl, SimOptions};

/// Where render nodes live.
const DRI_DIR: &str = "/dev/dri";

/// Which device to open.
#[derive(Clone, Debug, PartialEq)]
pub enum DeviceSpec {
    /// The first render node whose DRM driver is `asahi`; an error if there is none.
    Auto,
    /// A new embedded simulated device.
    #[cfg(feature = "sim")]
    Sim(SimOptions),
    /// A render node by path.
    Node(PathBuf),
    /// A file on a device server (`unix:PATH`: its shared device; `unix:PATH,new,OPTIONS`: a
    /// new private device with `sim` options).
    #[cfg(feature = "sim")]
    Remote {
        path: PathBuf,
        new: Option<SimOptions>,
    },
}

impl DeviceSpec {
    /// Parses `auto`, a path, or (with the `sim` feature) `sim[:policy=kill-inflight,
    /// replay-limit=2,hang-timeout-ms=10,soft-faults,upstream,clock=host]` or
    /// `unix:PATH[,new[,sim options]]`.
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
        if let Some(rest) = spec_t.strip_prefix("unix:") {
            #[cfg(feature = "sim")]
            return parse_unix(rest, bad);
            #[cfg(not(feature = "sim"))]
            {
                let _ = rest;
                return Err(bad(NO_SIM.into()));
            }
        }
        let Some(rest) = spec_t.strip_prefix("sim") else {
            return Err(bad(format!(
                "expected auto or a {DRI_DIR} path{}",
                sim_hint_short()
            )));
        };
        let opts = match rest.strip_prefix(':') {
            Some(o) => o,
            None if rest.is_empty() => "",
            None => return Err(bad("expected ':' after sim".into())),
        };
        #[cfg(feature = "sim")]
        return Ok(DeviceSpec::Sim(SimOptions::parse(opts, bad)?));
        #[cfg(not(feature = "sim"))]
        {
            let _ = opts;
            Err(bad(NO_SIM.into()))
        }
    }

    /// The spec in force: `AGXWS_DEVICE` if set, else `default`.
    pub fn from_env_or(default: DeviceSpec) -> Result<DeviceSpec> {
        match std::env::var("AGXWS_DEVICE") {
            Ok(s) => DeviceSpec::parse(&s),
            Err(_) => Ok(default),
        }
    }
}

/// `PATH[,new[,options]]` after `unix:`.
#[cfg(feature = "sim")]
fn parse_unix(rest: &str, bad: impl Fn(String) -> Error) -> Result<DeviceSpec> {
    let (path, target) = agx_sim_server::parse_unix_spec(rest).map_err(&bad)?;
    let new = match target {
        crate::sim::Target::New(o) => Some(SimOptions::parse(&o, bad)?),
        _ => None,
    };
    Ok(DeviceSpec::Remote { path, new })
}

#[cfg(not(feature = "sim"))]
const NO_SIM: &str = "this build of agx-winsys has no simulated device (cargo feature `sim`, \
                      meson -Dsim=enabled)";

fn sim_hint_short() -> &'static str {
    if cfg!(feature = "sim") {
        ", or sim[:options], or unix:PATH (a device server)"
    } else {
        ""
    }
}

pub(crate) struct DeviceInner {
    pub(crate) kernel: Arc<dyn KernelFile>,
    #[cfg(feature = "sim")]
    control: Option<Arc<dyn SimControl>>,
    pub(crate) params: DeviceParams,
    pub(crate) fault_ext: Option<FaultExtInfo>,
    #[cfg(feature = "sim")]
    trace_path: Option<PathBuf>,
    /// Every live BO by GEM handle, so an import of an object we hold finds it.
    pub(crate) bo_handles:
        std::sync::Mutex<std::collections::HashMap<u32, std::sync::Weak<crate::bo::BoInner>>>,
}

impl std::fmt::Debug for DeviceInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("kernel", &self.kernel)
            .field("params", &self.params)
            .finish()
    }
}

#[cfg(feature = "sim")]
impl Drop for DeviceInner {
    fn drop(&mut self) {
        if let (Some(path), Some(sim)) = (&self.trace_path, &self.control) {
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
            DeviceSpec::Auto => Device::from_node(find_asahi_node()?),
            #[cfg(feature = "sim")]
            DeviceSpec::Sim(o) => crate::sim::open_new(o),
            #[cfg(feature = "sim")]
            DeviceSpec::Remote { path, new } => {
                use crate::sim::{Endpoint, Target};
                let target = match new {
                    Some(o) => Target::New(o.config().to_options()),
                    None => Target::Shared,
                };
                crate::sim::open_remote(&Endpoint::Path(path.clone()), target)
            }
            DeviceSpec::Node(p) => {
                let node = RenderNode::open(p)
                    .map_err(|e| Error::NoDevice(format!("{}: {e}", p.display())))?;
                let driver = driver_of(&node)
                    .map_err(|why| Error::NoDevice(format!("{}: {why}", p.display())))?;
                check_asahi(&driver, &p.display().to_string())?;
                Device::from_node(node)
            }
        }
    }

    /// Opens a device on a DRM file the caller already opened (Mesa's screen or physical
    /// device fd). The device works on a duplicate: the caller's `fd` stays open and untouched,
    /// whether this succeeds or not, and may be closed at any time after. An fd that is not an
    /// asahi DRM file is [`Error::NoDevice`] ("not an asahi device").
    pub fn open_fd(fd: BorrowedFd<'_>) -> Result<Device> {
        let what = format!("fd {}", fd.as_raw_fd());
        let node = RenderNode::dup(fd).map_err(crate::error::kernel("F_DUPFD_CLOEXEC"))?;
        let driver = driver_of(&node)
            .map_err(|why| Error::NoDevice(format!("{what}: not an asahi device ({why})")))?;
        check_asahi(&driver, &what)?;
        Device::from_node(node)
    }

    fn from_node(node: RenderNode) -> Result<Device> {
        Device::from_kernel(Box::new(node))
    }

    /// Wraps an open DRM file: reads parameters and probes the extension.
    pub fn from_kernel(kernel: Box<dyn KernelFile>) -> Result<Device> {
        Device::build(Arc::from(kernel), |inner| inner)
    }

    /// Wraps a simulated device's file and its controls.
    #[cfg(feature = "sim")]
    pub fn with_control(
        kernel: Arc<dyn KernelFile>,
        control: Arc<dyn SimControl>,
    ) -> Result<Device> {
        Device::build(kernel, |mut inner| {
            inner.control = Some(control);
            inner.trace_path = std::env::var_os("AGXWS_TRACE")
                .filter(|p| !p.is_empty())
                .map(Into::into);
            inner
        })
    }

    fn build(
        kernel: Arc<dyn KernelFile>,
        finish: impl FnOnce(DeviceInner) -> DeviceInner,
    ) -> Result<Device> {
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
        Ok(Device {
            inner: Arc::new(finish(DeviceInner {
                kernel,
                #[cfg(feature = "sim")]
                control: None,
                params,
                fault_ext,
                #[cfg(feature = "sim")]
                trace_path: None,
                bo_handles: Default::default(),
            })),
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

    /// The test controls of a simulated device opened as one (`sim`); `None` for a render
    /// node, whatever is behind it.
    #[cfg(feature = "sim")]
    pub fn sim_control(&self) -> Option<&Arc<dyn SimControl>> {
        self.inner.control.as_ref()
    }

    /// Whether this device was opened as a simulated device (for reports; nothing in the
    /// winsys behaves differently).
    pub fn is_simulated(&self) -> bool {
        #[cfg(feature = "sim")]
        return self.inner.control.is_some();
        #[cfg(not(feature = "sim"))]
        false
    }

    /// GPU time, ns.
    pub fn gpu_time_ns(&self) -> Result<u64> {
        ioctl::get_time(self.kernel())
    }

    /// The DRM file itself, for ioctls the winsys does not wrap (on the same file, so handles
    /// are shared with the winsys's own objects).
    pub fn kernel(&self) -> &dyn KernelFile {
        self.inner.kernel.as_ref()
    }

    /// Whether two handles are the same open file.
    pub fn same(&self, other: &Device) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// The DRM driver name of an open file, or why it has none.
fn driver_of(node: &RenderNode) -> std::result::Result<String, String> {
    node.driver_name()
        .map_err(|e| format!("DRM_IOCTL_VERSION failed: {e}: not a DRM device"))
}

fn check_asahi(driver: &str, what: &str) -> Result<()> {
    if driver == "asahi" {
        Ok(())
    } else {
        Err(Error::NoDevice(format!(
            "{what}: not an asahi device (DRM driver {driver:?})"
        )))
    }
}

/// The first `/dev/dri/renderD*` whose driver is `asahi`, or an error listing what was seen.
fn find_asahi_node() -> Result<RenderNode> {
    let mut seen = Vec::new();
    let mut nodes: Vec<PathBuf> = match std::fs::read_dir(DRI_DIR) {
        Ok(dir) => dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("renderD"))
            })
            .collect(),
        Err(e) => {
            seen.push(format!("{DRI_DIR}: {e}"));
            Vec::new()
        }
    };
    nodes.sort();
    for p in nodes {
        match RenderNode::open(Path::new(&p)) {
            Ok(node) => match driver_of(&node) {
                Ok(d) if d == "asahi" => return Ok(node),
                Ok(d) => seen.push(format!("{}: driver {d:?}", p.display())),
                Err(why) => seen.push(format!("{}: {why}", p.display())),
            },
            Err(e) => seen.push(format!("{}: {e}", p.display())),
        }
    }
    if seen.is_empty() {
        seen.push(format!("{DRI_DIR} has no render nodes"));
    }
    Err(Error::NoDevice(format!(
        "no asahi render node (looked for {DRI_DIR}/renderD* with DRM driver \"asahi\"; {}); {}",
        seen.join(", "),
        if cfg!(feature = "sim") {
            "to use the simulated GPU, ask for it: AGXWS_DEVICE=sim"
        } else {
            "this build of agx-winsys has no simulated device"
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(DeviceSpec::parse("auto").unwrap(), DeviceSpec::Auto);
        assert_eq!(DeviceSpec::parse("").unwrap(), DeviceSpec::Auto);
        assert_eq!(
            DeviceSpec::parse("/dev/dri/renderD128").unwrap(),
            DeviceSpec::Node("/dev/dri/renderD128".into())
        );
        assert!(DeviceSpec::parse("nvidia").is_err());
    }

    #[cfg(feature = "sim")]
    #[test]
    fn sim_specs_parse() {
        use crate::sim::RecoveryPolicy;
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
        assert_eq!(
            DeviceSpec::parse("unix:/tmp/s").unwrap(),
            DeviceSpec::Remote {
                path: "/tmp/s".into(),
                new: None
            }
        );
        let DeviceSpec::Remote { path, new: Some(o) } =
            DeviceSpec::parse("unix:/tmp/s,new,policy=continue,clock=host").unwrap()
        else {
            panic!()
        };
        assert_eq!(path, std::path::Path::new("/tmp/s"));
        assert_eq!(o.policy, RecoveryPolicy::Continue);
        assert_eq!(o.clock, crate::sim::Clock::Host);
        for bad in [
            "unix:",
            "unix:/tmp/s,policy=replay",
            "unix:/tmp/s,new,bogus",
        ] {
            assert!(DeviceSpec::parse(bad).is_err(), "{bad}");
        }
        let DeviceSpec::Sim(o) = DeviceSpec::parse("sim:streams=opaque").unwrap() else {
            panic!("sim spec");
        };
        assert_eq!(o.config().streams, crate::sim::StreamMode::Opaque);
        assert!(DeviceSpec::parse("sim:streams=vdm").is_err());
        assert!(DeviceSpec::parse("sim:frobnicate").is_err());
        assert!(DeviceSpec::parse("simulator").is_err());
    }

    /// `auto` never falls back to a simulated device: on a machine without an asahi node (CI,
    /// this machine) it fails and says what it looked for and how to ask for the simulator.
    #[test]
    fn auto_without_an_asahi_node_is_an_error() {
        if find_asahi_node().is_ok() {
            return; // real asahi hardware: nothing to check
        }
        let e = Device::open(&DeviceSpec::Auto).unwrap_err();
        assert_eq!(e.errno(), rustix::io::Errno::NODEV);
        let msg = e.to_string();
        assert!(msg.contains("no asahi render node"), "{msg}");
        assert!(msg.contains("/dev/dri/renderD*"), "{msg}");
        if cfg!(feature = "sim") {
            assert!(msg.contains("AGXWS_DEVICE=sim"), "{msg}");
        }
    }

    /// A caller's fd that is not an asahi device: a clear error, and the fd is still open with
    /// the same flags.
    #[test]
    fn open_fd_refuses_non_asahi_files_and_leaves_them_alone() {
        use std::os::fd::AsFd;
        let null = std::fs::File::open("/dev/null").unwrap();
        let (r, w) = rustix::pipe::pipe().unwrap();
        for fd in [null.as_fd(), r.as_fd(), w.as_fd()] {
            let flags = rustix::fs::fcntl_getfl(fd).unwrap();
            let fdflags = rustix::io::fcntl_getfd(fd).unwrap();
            let e = Device::open_fd(fd).unwrap_err();
            assert_eq!(e.errno(), rustix::io::Errno::NODEV);
            assert!(e.to_string().contains("not an asahi device"), "{e}");
            assert_eq!(rustix::fs::fcntl_getfl(fd).unwrap(), flags);
            assert_eq!(rustix::io::fcntl_getfd(fd).unwrap(), fdflags);
        }
        // The pipe still works both ways.
        assert_eq!(rustix::io::write(&w, b"x").unwrap(), 1);
        let mut b = [0u8; 1];
        assert_eq!(rustix::io::read(&r, &mut b).unwrap(), 1);
    }
}
