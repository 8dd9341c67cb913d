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
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use agx_sim_server::{Endpoint, RemoteFile, Server, Target};

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
