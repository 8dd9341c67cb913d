//! The client side: one connection is one DRM file of a device on a server.
//!
//! [`RemoteFile::ioctl`] sends the argument with the memory its pointers name and the fds its
//! fields name ([`crate::shape`]), and applies the reply: the argument back, the bytes the
//! handler wrote into this process's memory, the fds it gave (their numbers put where the
//! handler put them). Several threads may call at once: requests are tagged, and whichever
//! thread is waiting reads the next reply and hands it to its owner, so a thread blocked in a
//! wait does not hold up another's submit.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use agx_sim::gpu::Stats;
use agx_sim::trace::Event;
use agx_sim::uaccess::{Caller, InProcess};
use agx_sim::{Errno, SimConfig};

use crate::msg::{value, ControlOp, IoctlRequest, Reply, Request, Segment, Target};
use crate::shape::{self, Shape};
use crate::transport::{self, Frame, RecvError};
use crate::wire::{seg, FD_PLACEHOLDER, MAX_PAYLOAD};
use crate::Server;

/// Where a server is.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// Listening on a Unix socket.
    Path(PathBuf),
    /// In this process.
    Local(Server),
}

impl Endpoint {
    fn connect(&self) -> std::io::Result<UnixStream> {
        match self {
            Endpoint::Path(p) => UnixStream::connect(p),
            Endpoint::Local(s) => s.connect(),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Path(p) => write!(f, "{}", p.display()),
            Endpoint::Local(_) => write!(f, "the in-process server"),
        }
    }
}

/// Parses what follows `unix:` in a device spec: `PATH` (the server's shared device) or
/// `PATH,new[,OPTIONS]` (a new private device with `sim` options, checked here).
pub fn parse_unix_spec(rest: &str) -> Result<(PathBuf, Target), String> {
    let (path, opts) = rest.split_once(',').unwrap_or((rest, ""));
    if path.is_empty() {
        return Err("expected unix:PATH".into());
    }
    let target = match opts.split_once(',').unwrap_or((opts, "")) {
        ("", "") => Target::Shared,
        ("new", o) => {
            SimConfig::from_options(o)?;
            Target::New(o.to_owned())
        }
        _ => {
            return Err(
                "unix:PATH opens the server's shared device; options need `new` \
                        (unix:PATH,new,policy=...)"
                    .into(),
            )
        }
    };
    Ok((path.into(), target))
}

/// Why a file could not be opened on a server.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{endpoint}: {message}")]
pub struct OpenError {
    pub errno: Errno,
    pub endpoint: String,
    pub message: String,
}

#[derive(Default)]
struct RecvState {
    /// Some thread is reading the socket.
    reading: bool,
    replies: HashMap<u64, Frame>,
    /// The connection is unusable, and why.
    dead: Option<Errno>,
}

/// A connection: tagged requests, replies routed to their callers.
struct Connection {
    sock: UnixStream,
    send: Mutex<()>,
    recv: Mutex<RecvState>,
    arrived: Condvar,
    next_tag: AtomicU64,
}

impl Connection {
    fn new(sock: UnixStream) -> Connection {
        Connection {
            sock,
            send: Mutex::new(()),
            recv: Mutex::new(RecvState::default()),
            arrived: Condvar::new(),
            next_tag: AtomicU64::new(1),
        }
    }

    /// Sends `req` with `fds` and waits for its reply. A connection that broke is `ENODEV`
    /// (the device is gone), one the server refused for a bad message `EPROTO`.
    fn call(&self, req: &Request, fds: &[BorrowedFd<'_>]) -> Result<(Reply, Vec<OwnedFd>), Errno> {
        let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
        let (kind, payload) = req.encode();
        {
            let _g = self.send.lock().unwrap_or_else(|e| e.into_inner());
            transport::send(&self.sock, kind, tag, &payload, fds).map_err(|e| match e {
                Errno::MSGSIZE => Errno::NOMEM,
                _ => Errno::NODEV,
            })?;
        }
        let frame = self.await_reply(tag)?;
        let reply = Reply::decode(frame.kind, &frame.payload, frame.fds.len()).map_err(|e| {
            self.kill(Errno::PROTO, &format!("bad reply from the server: {e}"));
            Errno::PROTO
        })?;
        Ok((reply, frame.fds))
    }

    fn await_reply(&self, tag: u64) -> Result<Frame, Errno> {
        let mut st = self.recv.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(f) = st.replies.remove(&tag) {
                return Ok(f);
            }
            if let Some(e) = st.dead {
                return Err(e);
            }
            if st.reading {
                st = self.arrived.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            st.reading = true;
            drop(st);
            let got = transport::recv(&self.sock);
            st = self.recv.lock().unwrap_or_else(|e| e.into_inner());
            st.reading = false;
            match got {
                // Tag 0: the server refusing the connection (it closes it next).
                Ok(f) if f.tag == 0 => {
                    let why = match Reply::decode(f.kind, &f.payload, f.fds.len()) {
                        Ok(Reply::Refused { message, .. }) => message,
                        _ => "refused".into(),
                    };
                    drop(st);
                    self.kill(Errno::PROTO, &why);
                    st = self.recv.lock().unwrap_or_else(|e| e.into_inner());
                }
                Ok(f) => {
                    st.replies.insert(f.tag, f);
                }
                Err(RecvError::Bad(_)) => st.dead = Some(Errno::PROTO),
                Err(_) => st.dead = Some(Errno::NODEV),
            }
            self.arrived.notify_all();
        }
    }

    fn kill(&self, errno: Errno, why: &str) {
        eprintln!("agx-sim-server client: {why}");
        let mut st = self.recv.lock().unwrap_or_else(|e| e.into_inner());
        st.dead.get_or_insert(errno);
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
        self.arrived.notify_all();
    }
}

/// A DRM file of a device on a server.
pub struct RemoteFile {
    conn: Connection,
    endpoint: Endpoint,
    device: u64,
    config: SimConfig,
}

impl std::fmt::Debug for RemoteFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteFile")
            .field("endpoint", &self.endpoint)
            .field("device", &self.device)
            .finish()
    }
}

impl RemoteFile {
    /// Connects to `endpoint` and opens a file on `target`.
    pub fn open(endpoint: &Endpoint, target: Target) -> Result<RemoteFile, OpenError> {
        let fail = |errno: Errno, message: String| OpenError {
            errno,
            endpoint: endpoint.to_string(),
            message,
        };
        let sock = endpoint.connect().map_err(|e| {
            let errno = Errno::from_io_error(&e).unwrap_or(Errno::NODEV);
            fail(errno, format!("cannot connect: {e}"))
        })?;
        let conn = Connection::new(sock);
        let (reply, _) = conn
            .call(&Request::Hello(target), &[])
            .map_err(|e| fail(e, format!("no answer to hello: {e}")))?;
        match reply {
            Reply::Welcome { device, options } => {
                let config = SimConfig::from_options(&options)
                    .map_err(|why| fail(Errno::PROTO, format!("device options: {why}")))?;
                Ok(RemoteFile {
                    conn,
                    endpoint: endpoint.clone(),
                    device,
                    config,
                })
            }
            Reply::Refused { errno, message } => {
                Err(fail(Errno::from_raw_os_error(errno), message))
            }
            other => Err(fail(Errno::PROTO, format!("unexpected answer {other:?}"))),
        }
    }

    /// Another file of the same device (a second process, or a second GL context).
    pub fn open_peer(&self) -> Result<RemoteFile, OpenError> {
        RemoteFile::open(&self.endpoint, Target::Join(self.device))
    }

    /// The server's id of this file's device.
    pub fn device_id(&self) -> u64 {
        self.device
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The device's configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The connection's socket (the render-node library hands out duplicates of it as the
    /// DRM file: it lives exactly as long as the file).
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.conn.sock.as_fd()
    }

    /// `ioctl(fd, cmd, arg)` on this DRM file; user pointers and fd numbers in `arg` are this
    /// process's.
    pub fn ioctl(&self, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
        let shape = shape::drm(cmd, arg);
        self.call_ioctl(cmd, arg, &shape, None)
    }

    /// An ioctl on `fd`, a sync_file or dma-buf of the device.
    pub fn fd_ioctl(&self, fd: BorrowedFd<'_>, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
        let shape = shape::fd(cmd, arg);
        self.call_ioctl(cmd, arg, &shape, Some(fd))
    }

    fn call_ioctl(
        &self,
        cmd: u32,
        arg: &mut [u8],
        shape: &Shape,
        target: Option<BorrowedFd<'_>>,
    ) -> Result<(), Errno> {
        let me = InProcess;
        let mut budget = MAX_PAYLOAD.saturating_sub(arg.len() + 4096);
        let mut segments = Vec::with_capacity(shape.inputs.len() + shape.outputs.len());
        for &(addr, len) in &shape.inputs {
            let mut s = Segment {
                addr,
                len,
                flags: seg::IN,
                data: Vec::new(),
            };
            match usize::try_from(len).ok().filter(|&n| n <= budget) {
                None => s.flags |= seg::TOO_BIG,
                Some(n) => {
                    let mut data = vec![0u8; n];
                    if me.copy_from_user(&mut data, addr).is_ok() {
                        budget -= n;
                        s.data = data;
                    } else {
                        s.flags |= seg::FAULT;
                    }
                }
            }
            segments.push(s);
        }
        for &(addr, len) in &shape.outputs {
            segments.push(Segment {
                addr,
                len,
                flags: seg::OUT,
                data: Vec::new(),
            });
        }
        // The fds the argument names, when they are open here (else the handler sees EBADF).
        let mut fds: Vec<BorrowedFd<'_>> = target.into_iter().collect();
        let mut numbers = Vec::new();
        for &off in &shape.fds_in {
            let Some(n) = read_i32(arg, off) else {
                continue;
            };
            if numbers.contains(&n) {
                continue;
            }
            if let Ok(fd) = me.fdget(n) {
                if rustix::io::fcntl_getfd(fd).is_ok() {
                    numbers.push(n);
                    fds.push(fd);
                }
            }
        }
        let req = IoctlRequest {
            cmd,
            arg: arg.to_vec(),
            segments,
            fd_numbers: numbers,
        };
        let req = if target.is_some() {
            Request::FdIoctl(req)
        } else {
            Request::Ioctl(req)
        };
        let (reply, received) = self.conn.call(&req, &fds)?;
        let Reply::IoctlDone {
            errno,
            arg: out,
            writes,
            ..
        } = reply
        else {
            return Err(Errno::PROTO);
        };
        if out.len() != arg.len() {
            return Err(Errno::PROTO);
        }
        arg.copy_from_slice(&out);
        let mut result = match errno {
            0 => Ok(()),
            e => Err(Errno::from_raw_os_error(e)),
        };
        for (addr, data) in writes {
            let end = addr.checked_add(data.len() as u64);
            let declared = shape
                .outputs
                .iter()
                .any(|&(a, l)| a <= addr && a.checked_add(l) >= end);
            if !declared {
                return Err(Errno::PROTO);
            }
            // The kernel's copy_to_user: a range that is not writable here is EFAULT.
            if me.copy_to_user(addr, &data).is_err() && result.is_ok() {
                result = Err(Errno::FAULT);
            }
        }
        if result.is_ok() {
            let mut received: Vec<Option<OwnedFd>> = received.into_iter().map(Some).collect();
            for &off in &shape.fds_out {
                let Some(v) = read_i32(arg, off) else {
                    continue;
                };
                let k = (FD_PLACEHOLDER as i64 - v as i64) as usize;
                if let Some(fd) = received.get_mut(k).and_then(Option::take) {
                    write_i32(arg, off, me.fd_install(fd)?);
                }
            }
        }
        result
    }

    /// The memory behind `mmap(fd, offset)` of `len` bytes: the BO's memory file, to map
    /// shared (CPU maps are shared memory with the GPU, not copies).
    pub fn mmap_fd(&self, offset: u64, len: u64) -> Result<OwnedFd, Errno> {
        let (reply, mut fds) = self.conn.call(&Request::Mmap { offset, len }, &[])?;
        match reply {
            Reply::MmapDone { errno: 0 } => fds.pop().ok_or(Errno::PROTO),
            Reply::MmapDone { errno } => Err(Errno::from_raw_os_error(errno)),
            _ => Err(Errno::PROTO),
        }
    }

    /// A test control of the device; its raw value.
    pub fn control(&self, op: ControlOp) -> Result<Vec<u8>, Errno> {
        match self.conn.call(&Request::Control(op), &[])?.0 {
            Reply::ControlDone { errno: 0, value } => Ok(value),
            Reply::ControlDone { errno, .. } => Err(Errno::from_raw_os_error(errno)),
            _ => Err(Errno::PROTO),
        }
    }

    pub fn now_ns(&self) -> Result<u64, Errno> {
        value::decode_u64(&self.control(ControlOp::NowNs)?).map_err(|_| Errno::PROTO)
    }

    pub fn pending_commands(&self) -> Result<u64, Errno> {
        value::decode_u64(&self.control(ControlOp::PendingCommands)?).map_err(|_| Errno::PROTO)
    }

    pub fn stats(&self) -> Result<Stats, Errno> {
        value::decode_stats(&self.control(ControlOp::Stats)?).map_err(|_| Errno::PROTO)
    }

    pub fn trace_json(&self) -> Result<String, Errno> {
        String::from_utf8(self.control(ControlOp::TraceJson)?).map_err(|_| Errno::PROTO)
    }

    pub fn trace_events(&self) -> Result<Vec<Event>, Errno> {
        value::decode_events(&self.control(ControlOp::TraceEvents)?).map_err(|_| Errno::PROTO)
    }
}

fn read_i32(arg: &[u8], off: usize) -> Option<RawFd> {
    let b = arg.get(off..off.checked_add(4)?)?;
    Some(i32::from_ne_bytes(b.try_into().ok()?))
}

fn write_i32(arg: &mut [u8], off: usize, v: RawFd) {
    if let Some(b) = arg.get_mut(off..off + 4) {
        b.copy_from_slice(&v.to_ne_bytes());
    }
}
