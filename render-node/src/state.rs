//! The process's view of the node: which fds are DRM files of it, the device behind them, and
//! the `/dev/dri` listings being read.
//!
//! An fd of the node is a duplicate of its connection's socket: the DRM file lives exactly as
//! long as some fd of it does (the server closes the file when the socket's last reference
//! goes), whatever the program does with its fds. We track the numbers we see being made
//! (open, dup, fcntl) and, for numbers made behind our back (raw system calls), find the file
//! by the socket's inode.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use agx_sim_server::msg::ControlOp;
use agx_sim_server::{Endpoint, RemoteFile, Server, Target};
use agx_uapi::asahi::{drm_asahi_submit, DRM_IOCTL_ASAHI_SUBMIT};

use crate::faults::Fault;
use crate::node::{Backing, Node};

/// The device the node's files are opened on.
struct Backend {
    endpoint: Endpoint,
    /// What the next open asks for: after a first `new` device, its peers join it.
    target: Mutex<Target>,
}

/// A `/dev/dri` listing being read: our entry comes first, once.
pub struct Listing {
    pub entry: Box<libc::dirent64>,
    pub given: bool,
    /// There is no real `/dev/dri`: the `DIR*` is ours and lists only the node.
    pub fake: bool,
}

/// A socket's `(st_dev, st_ino)` and the file it is the connection of.
type SocketOf = ((u64, u64), Weak<RemoteFile>);

pub struct State {
    pub node: Node,
    backend: OnceLock<Result<Backend, String>>,
    files: Mutex<HashMap<RawFd, Arc<RemoteFile>>>,
    /// Every file still open, by its socket's (device, inode).
    sockets: Mutex<Vec<SocketOf>>,
    pub listings: Mutex<HashMap<usize, Listing>>,
    /// SUBMIT ioctls seen, for the fault plan.
    submits: AtomicU64,
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn key(fd: std::os::fd::BorrowedFd<'_>) -> Option<(u64, u64)> {
    let st = rustix::fs::fstat(fd).ok()?;
    Some((st.st_dev, st.st_ino))
}

impl State {
    pub fn new(node: Node) -> State {
        State {
            node,
            backend: OnceLock::new(),
            files: Mutex::new(HashMap::new()),
            sockets: Mutex::new(Vec::new()),
            listings: Mutex::new(HashMap::new()),
            submits: AtomicU64::new(0),
        }
    }

    /// An ioctl on a DRM file of the node (argument bytes copied in; copied out after). A
    /// SUBMIT the fault plan names first has its queue's next command faulted or hung.
    pub fn ioctl(&self, file: &RemoteFile, cmd: u32, arg: &mut [u8]) -> rustix::io::Result<()> {
        if cmd == DRM_IOCTL_ASAHI_SUBMIT && !self.node.faults.is_empty() {
            let n = self.submits.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(fault) = self.node.faults.at(n) {
                self.inject(file, n, fault, arg);
            }
        }
        file.ioctl(cmd, arg)
    }

    fn inject(&self, file: &RemoteFile, n: u64, fault: Fault, arg: &[u8]) {
        let at = std::mem::offset_of!(drm_asahi_submit, queue_id);
        let Some(queue) = arg.get(at..at + 4) else {
            return;
        };
        let queue = u32::from_ne_bytes(queue.try_into().expect("4 bytes"));
        let op = ControlOp::Inject {
            queue,
            hang: fault == Fault::Hang,
            after_ns: 0,
        };
        // Said on stderr either way: the plan was asked for, and a run's log should show it.
        match file.control(op) {
            Ok(_) => eprintln!("agx-render-node: submit {n}: queue {queue}: {fault:?} injected"),
            // (An unknown queue: the submit itself fails with the same ENOENT.)
            Err(e) => eprintln!("agx-render-node: submit {n}: queue {queue}: cannot inject: {e}"),
        }
    }

    fn backend(&self) -> Result<&Backend, String> {
        self.backend
            .get_or_init(|| {
                let (endpoint, target) = match &self.node.backing {
                    Backing::Server { path, target } => {
                        (Endpoint::Path(path.clone()), target.clone())
                    }
                    Backing::Embedded(config) => {
                        (Endpoint::Local(Server::new(config.clone())), Target::Shared)
                    }
                };
                if self.node.debug {
                    eprintln!(
                        "agx-render-node: {} is {}",
                        self.node.path.to_string_lossy(),
                        match &endpoint {
                            Endpoint::Path(p) => format!("a device of the server {}", p.display()),
                            Endpoint::Local(s) => format!(
                                "an embedded simulated GPU ({})",
                                s.shared_device().config().to_options()
                            ),
                        }
                    );
                }
                Ok(Backend {
                    endpoint,
                    target: Mutex::new(target),
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Opens a new DRM file of the node; returns the fd to give the program.
    pub fn open(&self, cloexec: bool) -> Result<RawFd, rustix::io::Errno> {
        let backend = self.backend().map_err(|why| {
            eprintln!("agx-render-node: {why}");
            rustix::io::Errno::NODEV
        })?;
        let target = lock(&backend.target).clone();
        let file = RemoteFile::open(&backend.endpoint, target.clone()).map_err(|e| {
            eprintln!(
                "agx-render-node: cannot open {}: {e}",
                self.node.path.to_string_lossy()
            );
            rustix::io::Errno::NODEV
        })?;
        if matches!(target, Target::New(_)) {
            *lock(&backend.target) = Target::Join(file.device_id());
        }
        if file.config().streams != agx_sim::StreamMode::Opaque {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                eprintln!(
                    "agx-render-node: the device runs streams={}: real AGX control streams \
                     (Mesa's) will fault; give it streams=opaque",
                    file.config().streams.name()
                )
            });
        }
        let fd: OwnedFd = if cloexec {
            rustix::io::fcntl_dupfd_cloexec(file.socket(), 0)?
        } else {
            rustix::io::dup(file.socket())?
        };
        let file = Arc::new(file);
        if let Some(k) = key(file.socket()) {
            let mut socks = lock(&self.sockets);
            socks.retain(|(_, w)| w.strong_count() > 0);
            socks.push((k, Arc::downgrade(&file)));
        }
        let raw = fd.as_raw_fd();
        // The program owns the number from here; the file lives while we map it.
        std::mem::forget(fd);
        lock(&self.files).insert(raw, file);
        Ok(raw)
    }

    /// The DRM file behind `fd`, if it is one of the node's.
    pub fn file(&self, fd: RawFd) -> Option<Arc<RemoteFile>> {
        if fd < 0 {
            return None;
        }
        if let Some(f) = lock(&self.files).get(&fd) {
            return Some(f.clone());
        }
        // A number made without us (a raw dup): the same socket as a file we hold?
        if lock(&self.sockets).is_empty() {
            return None;
        }
        // (fstat of a number that is not open just fails.)
        let k = key(agx_sim::uaccess::Caller::fdget(&agx_sim::uaccess::InProcess, fd).ok()?)?;
        let found = lock(&self.sockets)
            .iter()
            .find(|(kk, _)| *kk == k)
            .and_then(|(_, w)| w.upgrade())?;
        lock(&self.files).insert(fd, found.clone());
        Some(found)
    }

    /// Any open file (fd ioctls on exported sync_files and dma-bufs go to its server).
    pub fn any_file(&self) -> Option<Arc<RemoteFile>> {
        lock(&self.files).values().next().cloned()
    }

    /// `newfd` now names the same file as `oldfd` (dup, dup2, fcntl(F_DUPFD)).
    pub fn duplicated(&self, oldfd: RawFd, newfd: RawFd) {
        let mut files = lock(&self.files);
        let old = files.get(&oldfd).cloned();
        let replaced = match old {
            Some(f) => files.insert(newfd, f),
            None => files.remove(&newfd),
        };
        drop(files);
        drop(replaced);
    }

    /// `fd` was closed.
    pub fn closed(&self, fd: RawFd) {
        let gone = lock(&self.files).remove(&fd);
        drop(gone);
    }
}

#[cfg(test)]
mod tests {
    use agx_uapi::asahi::*;
    use agx_uapi::drm::*;
    use bytemuck::{bytes_of_mut, Pod};

    use super::*;
    use crate::faults::FaultPlan;

    fn io<A: Pod>(st: &State, f: &RemoteFile, cmd: u32, a: &mut A) -> rustix::io::Result<()> {
        st.ioctl(f, cmd, bytes_of_mut(a))
    }

    /// The program's side: one queue on one VM, a stream in a BO, submits with an out-syncobj
    /// each, waited on.
    struct Program<'a> {
        st: &'a State,
        f: Arc<RemoteFile>,
        queue: u32,
        stream: u64,
    }

    impl Program<'_> {
        fn new(st: &State) -> Program<'_> {
            let fd = st.open(true).unwrap();
            let f = st.file(fd).unwrap();
            let mut vm = drm_asahi_vm_create {
                kernel_start: 0x70_0000_0000,
                kernel_end: 0x70_0000_0000 + (64 << 20),
                ..Default::default()
            };
            io(st, &f, DRM_IOCTL_ASAHI_VM_CREATE, &mut vm).unwrap();
            let mut gem = drm_asahi_gem_create {
                size: agx_sim::PAGE_SIZE,
                ..Default::default()
            };
            io(st, &f, DRM_IOCTL_ASAHI_GEM_CREATE, &mut gem).unwrap();
            let mut mo = drm_asahi_gem_mmap_offset {
                handle: gem.handle,
                ..Default::default()
            };
            io(st, &f, DRM_IOCTL_ASAHI_GEM_MMAP_OFFSET, &mut mo).unwrap();
            let mem = f.mmap_fd(mo.offset, agx_sim::PAGE_SIZE).unwrap();
            let mut s = agx_sim::stream::StreamBuilder::new();
            s.spin(1000);
            rustix::io::pwrite(&mem, &s.end(), 0).unwrap();
            let stream = 0x40_0000;
            let op = drm_asahi_gem_bind_op {
                flags: DRM_ASAHI_BIND_READ,
                handle: gem.handle,
                offset: 0,
                range: agx_sim::PAGE_SIZE,
                addr: stream,
            };
            let mut bind = drm_asahi_vm_bind {
                vm_id: vm.vm_id,
                num_binds: 1,
                stride: std::mem::size_of::<drm_asahi_gem_bind_op>() as u32,
                pad: 0,
                userptr: &op as *const _ as u64,
            };
            io(st, &f, DRM_IOCTL_ASAHI_VM_BIND, &mut bind).unwrap();
            let mut q = drm_asahi_queue_create {
                vm_id: vm.vm_id,
                priority: DRM_ASAHI_PRIORITY_MEDIUM,
                usc_exec_base: 0x1_0000_0000,
                ..Default::default()
            };
            io(st, &f, DRM_IOCTL_ASAHI_QUEUE_CREATE, &mut q).unwrap();
            Program {
                st,
                f,
                queue: q.queue_id,
                stream,
            }
        }

        /// One render command, waited on (a fault or a timeout is still an end).
        fn submit(&self) -> rustix::io::Result<()> {
            let mut so = drm_syncobj_create::default();
            io(self.st, &self.f, DRM_IOCTL_SYNCOBJ_CREATE, &mut so).unwrap();
            let render = drm_asahi_cmd_render {
                vdm_ctrl_stream_base: self.stream,
                width_px: 64,
                height_px: 64,
                layers: 1,
                samples: 1,
                utile_width_px: 16,
                utile_height_px: 16,
                ..Default::default()
            };
            let hdr = drm_asahi_cmd_header {
                cmd_type: DRM_ASAHI_CMD_RENDER,
                size: std::mem::size_of_val(&render) as u16,
                vdm_barrier: DRM_ASAHI_BARRIER_NONE,
                cdm_barrier: DRM_ASAHI_BARRIER_NONE,
            };
            let mut cmdbuf = bytemuck::bytes_of(&hdr).to_vec();
            cmdbuf.extend_from_slice(bytemuck::bytes_of(&render));
            let sync = drm_asahi_sync {
                sync_type: DRM_ASAHI_SYNC_SYNCOBJ,
                handle: so.handle,
                timeline_value: 0,
            };
            let mut sub = drm_asahi_submit {
                syncs: &sync as *const _ as u64,
                cmdbuf: cmdbuf.as_ptr() as u64,
                queue_id: self.queue,
                out_sync_count: 1,
                cmdbuf_size: cmdbuf.len() as u32,
                ..Default::default()
            };
            io(self.st, &self.f, DRM_IOCTL_ASAHI_SUBMIT, &mut sub)?;
            let mut w = drm_syncobj_wait {
                handles: &so.handle as *const u32 as u64,
                timeout_nsec: i64::MAX,
                count_handles: 1,
                flags: DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL,
                ..Default::default()
            };
            io(self.st, &self.f, DRM_IOCTL_SYNCOBJ_WAIT, &mut w).unwrap();
            Ok(())
        }
    }

    fn node(plan: &str) -> State {
        let mut n = Node::new("/dev/dri/renderD128", "sim:policy=kill-inflight", false).unwrap();
        n.faults = FaultPlan::parse(plan).unwrap();
        State::new(n)
    }

    #[test]
    fn the_plan_faults_the_named_submit_on_its_own_queue() {
        let st = node("guilty@2");
        let p = Program::new(&st);
        p.submit().unwrap();
        let s = p.f.stats().unwrap();
        assert_eq!((s.completed, s.faults), (1, 0), "{s:?}");
        p.submit().unwrap();
        let s = p.f.stats().unwrap();
        assert_eq!((s.completed, s.faults), (1, 1), "{s:?}");
        // Its queue is banned now, as after any guilty fault.
        assert_eq!(p.submit(), Err(rustix::io::Errno::CANCELED));
    }

    #[test]
    fn a_planned_hang_is_a_timeout_and_no_plan_no_fault() {
        let st = node("hang@1");
        let p = Program::new(&st);
        p.submit().unwrap();
        let s = p.f.stats().unwrap();
        assert_eq!((s.completed, s.timeouts), (0, 1), "{s:?}");

        let st = node("");
        let p = Program::new(&st);
        for _ in 0..3 {
            p.submit().unwrap();
        }
        let s = p.f.stats().unwrap();
        assert_eq!((s.completed, s.faults, s.timeouts), (3, 0, 0), "{s:?}");
    }
}
