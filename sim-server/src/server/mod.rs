//! The device server: simulated devices served to many processes over a Unix socket.
//!
//! Each connection is one DRM file of one device ([`conn`]). The server hosts a shared device,
//! made with the options it was started with (what `unix:PATH` opens), and any number of
//! private devices, each created by a connection that asks for one with its own options
//! (`unix:PATH,new,...`; what the test suites use to run as clients) and joined by further
//! connections (`open_peer`, a second process). A private device lives while a file is open on
//! it.

mod caller;
mod conn;
mod pool;

use std::collections::BTreeMap;
use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use agx_sim::{SimConfig, SimDevice};

/// A device the server hosts.
#[derive(Debug)]
pub(crate) struct Hosted {
    pub id: u64,
    pub sim: SimDevice,
}

/// Counters, for tests and the server's log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections accepted so far.
    pub connections: u64,
    /// Connections open now (each a DRM file once its hello is accepted).
    pub open: u64,
    /// Connections closed for sending bytes that are not a message.
    pub refused: u64,
    /// Requests whose handler panicked (answered `EIO`; a bug, never expected).
    pub panics: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    open: AtomicU64,
    refused: AtomicU64,
    panics: AtomicU64,
}

struct Inner {
    shared: Arc<Hosted>,
    devices: Mutex<BTreeMap<u64, Weak<Hosted>>>,
    next_id: AtomicU64,
    pool: pool::Pool,
    counters: Counters,
}

/// A device server. Cheap to clone; every clone serves the same devices.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("shared", &self.inner.shared.id)
            .finish()
    }
}

impl Server {
    /// A server whose shared device has `config`.
    pub fn new(config: SimConfig) -> Server {
        let shared = Arc::new(Hosted {
            id: 1,
            sim: SimDevice::new(config),
        });
        let mut devices = BTreeMap::new();
        devices.insert(1, Arc::downgrade(&shared));
        Server {
            inner: Arc::new(Inner {
                shared,
                devices: Mutex::new(devices),
                next_id: AtomicU64::new(2),
                pool: pool::Pool::default(),
                counters: Counters::default(),
            }),
        }
    }

    /// The shared device (what `unix:PATH` opens).
    pub fn shared_device(&self) -> &SimDevice {
        &self.inner.shared.sim
    }

    /// A hosted device by id, while it lives.
    pub fn device(&self, id: u64) -> Option<SimDevice> {
        self.hosted(id).map(|h| h.sim.clone())
    }

    pub fn stats(&self) -> ServerStats {
        let c = &self.inner.counters;
        ServerStats {
            connections: c.connections.load(Ordering::Relaxed),
            open: c.open.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            panics: c.panics.load(Ordering::Relaxed),
        }
    }

    /// Listens on `path` (which must not exist) until the returned [`Listener`] is dropped.
    pub fn listen(&self, path: &Path) -> io::Result<Listener> {
        let listener = UnixListener::bind(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let server = self.clone();
        let stop2 = stop.clone();
        let accept = std::thread::Builder::new()
            .name("agx-sim-server-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stop2.load(Ordering::Relaxed) {
                        return;
                    }
                    match stream {
                        Ok(s) => server.serve(s),
                        Err(e) => eprintln!("agx-sim-server: accept: {e}"),
                    }
                }
            })?;
        Ok(Listener {
            path: path.to_owned(),
            stop,
            accept: Some(accept),
        })
    }

    /// A connection to this server from this process (what the render-node library uses when
    /// no server is named): one end of a socket pair, the other served.
    pub fn connect(&self) -> io::Result<UnixStream> {
        let (a, b) = UnixStream::pair()?;
        self.serve(b);
        Ok(a)
    }

    /// Serves one connection on a thread of its own.
    pub fn serve(&self, stream: UnixStream) {
        self.inner
            .counters
            .connections
            .fetch_add(1, Ordering::Relaxed);
        let server = self.clone();
        let spawned = std::thread::Builder::new()
            .name("agx-sim-server-conn".into())
            .spawn(move || conn::run(&server, stream));
        if let Err(e) = spawned {
            eprintln!("agx-sim-server: no thread for a connection: {e}");
        }
    }

    fn hosted(&self, id: u64) -> Option<Arc<Hosted>> {
        let devices = self.inner.devices.lock().unwrap_or_else(|e| e.into_inner());
        devices.get(&id).and_then(Weak::upgrade)
    }

    /// A new private device.
    fn create(&self, config: SimConfig) -> Arc<Hosted> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let hosted = Arc::new(Hosted {
            id,
            sim: SimDevice::new(config),
        });
        let mut devices = self.inner.devices.lock().unwrap_or_else(|e| e.into_inner());
        devices.retain(|_, d| d.strong_count() > 0);
        devices.insert(id, Arc::downgrade(&hosted));
        hosted
    }
}

/// A listening socket; dropping it stops accepting and removes the socket file (open
/// connections go on).
#[derive(Debug)]
pub struct Listener {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Listener {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}
