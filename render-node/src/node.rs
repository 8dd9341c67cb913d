//! What the fake render node is: its path and minor, the sysfs facts libdrm and Mesa's loader
//! read to find and name it (a platform device with Apple's AGX compatible strings, driver
//! `asahi`), and the device behind it (`AGX_RENDER_NODE_DEVICE`).

use std::ffi::CString;
use std::path::PathBuf;

use agx_sim::SimConfig;
use agx_sim_server::Target;

use crate::faults::FaultPlan;

/// `DRM_MAJOR` on Linux.
pub const DRM_MAJOR: u32 = 226;

/// The simulated device the node opens.
#[derive(Clone, Debug)]
pub enum Backing {
    /// A device server's device.
    Server { path: PathBuf, target: Target },
    /// A device in this process (a server of our own, no socket).
    Embedded(SimConfig),
}

/// The node, from the environment.
#[derive(Debug)]
pub struct Node {
    /// `/dev/dri/renderD128`.
    pub path: CString,
    /// `renderD128`.
    pub name: CString,
    pub minor: u32,
    /// `/sys/dev/char/226:128/device`.
    pub sys_device: String,
    pub backing: Backing,
    /// `AGX_RENDER_NODE_FAULTS`: faults of the program's own (none by default).
    pub faults: FaultPlan,
    /// `AGX_RENDER_NODE_DEBUG`: say on stderr what is set up.
    pub debug: bool,
}

/// The device when `AGX_RENDER_NODE_DEVICE` is unset: an embedded GPU.
pub const DEFAULT_DEVICE: &str = "sim";

/// Options every device the node creates starts from; a spec's own options come after them
/// and win. Programs that open a render node submit real AGX control streams (Mesa's), which
/// the simulator runs only as opaque jobs.
pub const DEVICE_DEFAULTS: &str = "streams=opaque";

impl Node {
    /// From `AGX_RENDER_NODE` (default `/dev/dri/renderD128`) and `AGX_RENDER_NODE_DEVICE`
    /// (`unix:PATH[,new[,options]]` or `sim[:options]`, default [`DEFAULT_DEVICE`]).
    pub fn from_env() -> Result<Node, String> {
        let path = std::env::var("AGX_RENDER_NODE")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "/dev/dri/renderD128".into());
        let device = std::env::var("AGX_RENDER_NODE_DEVICE")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_DEVICE.into());
        let debug = std::env::var_os("AGX_RENDER_NODE_DEBUG").is_some_and(|v| v != "0");
        let mut node = Node::new(&path, &device, debug)?;
        if let Ok(plan) = std::env::var("AGX_RENDER_NODE_FAULTS") {
            node.faults =
                FaultPlan::parse(&plan).map_err(|e| format!("AGX_RENDER_NODE_FAULTS: {e}"))?;
        }
        Ok(node)
    }

    pub fn new(path: &str, device: &str, debug: bool) -> Result<Node, String> {
        let name = path
            .strip_prefix("/dev/dri/")
            .filter(|n| n.starts_with("renderD") && !n.contains('/'))
            .ok_or_else(|| format!("AGX_RENDER_NODE={path:?}: expected /dev/dri/renderD<N>"))?;
        let minor: u32 = name["renderD".len()..]
            .parse()
            .ok()
            .filter(|m| (128..192).contains(m))
            .ok_or_else(|| format!("AGX_RENDER_NODE={path:?}: render minors are 128..191"))?;
        let backing = if let Some(rest) = device.strip_prefix("unix:") {
            let (path, target) = agx_sim_server::parse_unix_spec(rest)
                .map_err(|e| format!("AGX_RENDER_NODE_DEVICE={device:?}: {e}"))?;
            // (The shared device is the server's, configured when it started.)
            let target = match target {
                Target::New(o) => Target::New(format!("{DEVICE_DEFAULTS},{o}")),
                t => t,
            };
            Backing::Server { path, target }
        } else if device == "sim" || device.starts_with("sim:") {
            let opts = device.strip_prefix("sim").unwrap_or("");
            let opts = opts.strip_prefix(':').unwrap_or(opts);
            Backing::Embedded(
                SimConfig::from_options(&format!("{DEVICE_DEFAULTS},{opts}"))
                    .map_err(|e| format!("AGX_RENDER_NODE_DEVICE={device:?}: {e}"))?,
            )
        } else {
            return Err(format!(
                "AGX_RENDER_NODE_DEVICE={device:?}: expected unix:PATH[,new[,options]] or \
                 sim[:options]"
            ));
        };
        let cstr = |s: &str| CString::new(s).map_err(|_| format!("{s:?}: contains NUL"));
        Ok(Node {
            path: cstr(path)?,
            name: cstr(name)?,
            minor,
            sys_device: format!("/sys/dev/char/{DRM_MAJOR}:{minor}/device"),
            backing,
            faults: FaultPlan::default(),
            debug,
        })
    }

    /// `makedev(226, minor)`.
    pub fn rdev(&self) -> libc::dev_t {
        libc::makedev(DRM_MAJOR, self.minor)
    }

    /// The contents of a sysfs file of the device, for the paths libdrm reads.
    pub fn sys_file(&self, path: &[u8]) -> Option<Vec<u8>> {
        let rest = path.strip_prefix(self.sys_device.as_bytes())?;
        match rest {
            // `OF_*` as the asahi kernel driver's platform device has them (Apple M1, G13G).
            b"/uevent" => Some(
                b"DRIVER=asahi\nOF_NAME=gpu\nOF_FULLNAME=/soc/gpu@206400000\n\
                  OF_COMPATIBLE_0=apple,agx-t8103\nOF_COMPATIBLE_1=apple,agx-g13g\n\
                  OF_COMPATIBLE_N=2\nMODALIAS=of:NgpuT(null)Capple,agx-t8103\n"
                    .to_vec(),
            ),
            _ => None,
        }
    }

    /// The target of a sysfs symlink of the device.
    pub fn sys_link(&self, path: &[u8]) -> Option<&'static [u8]> {
        match path.strip_prefix(self.sys_device.as_bytes())? {
            b"/subsystem" => Some(b"../../../../bus/platform"),
            b"/driver" => Some(b"../../../../bus/platform/drivers/asahi"),
            _ => None,
        }
    }

    /// Whether `path` is a directory of the device in sysfs (`.../device`, `.../device/drm`).
    pub fn sys_dir(&self, path: &[u8]) -> bool {
        matches!(
            path.strip_prefix(self.sys_device.as_bytes()),
            Some(b"" | b"/" | b"/drm")
        )
    }

    pub fn is_node(&self, path: &[u8]) -> bool {
        path == self.path.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_syntax() {
        let n = Node::new("/dev/dri/renderD129", "unix:/tmp/s", false).unwrap();
        assert_eq!(n.minor, 129);
        assert_eq!(n.sys_device, "/sys/dev/char/226:129/device");
        assert!(matches!(
            n.backing,
            Backing::Server {
                target: Target::Shared,
                ..
            }
        ));
        let n = Node::new("/dev/dri/renderD128", "sim:policy=kill-inflight", false).unwrap();
        let Backing::Embedded(c) = &n.backing else {
            panic!()
        };
        assert_eq!(c.policy, agx_sim::RecoveryPolicy::KillInflight);
        // Devices the node creates run foreign (Mesa's) streams as opaque jobs unless told.
        assert_eq!(c.streams, agx_sim::StreamMode::Opaque);
        let embedded = |d: &str| match Node::new("/dev/dri/renderD128", d, false).unwrap().backing {
            Backing::Embedded(c) => c,
            b => panic!("{b:?}"),
        };
        assert_eq!(
            embedded(DEFAULT_DEVICE).streams,
            agx_sim::StreamMode::Opaque
        );
        assert_eq!(
            embedded("sim:streams=sim").streams,
            agx_sim::StreamMode::Sim
        );
        let s = Node::new(
            "/dev/dri/renderD128",
            "unix:/tmp/s,new,policy=replay",
            false,
        )
        .unwrap();
        let Backing::Server {
            target: Target::New(opts),
            ..
        } = &s.backing
        else {
            panic!("{:?}", s.backing)
        };
        let c = SimConfig::from_options(opts).unwrap();
        assert_eq!(c.streams, agx_sim::StreamMode::Opaque);
        assert_eq!(c.policy, agx_sim::RecoveryPolicy::Replay);
        for (p, d) in [
            ("/dev/dri/card0", "sim"),
            ("/dev/dri/renderD64", "sim"),
            ("/tmp/renderD128", "sim"),
            ("/dev/dri/renderD128", "simulator"),
            ("/dev/dri/renderD128", "sim:bogus"),
            ("/dev/dri/renderD128", "unix:/tmp/s,policy=replay"),
        ] {
            assert!(Node::new(p, d, false).is_err(), "{p} {d}");
        }
        assert!(n.sys_file(b"/sys/dev/char/226:128/device/uevent").is_some());
        assert!(n.sys_dir(b"/sys/dev/char/226:128/device/drm"));
        assert!(!n.sys_dir(b"/sys/dev/char/226:129/device/drm"));
    }
}
