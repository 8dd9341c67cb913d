//! One connection: one DRM file of one hosted device.
//!
//! The connection's thread reads requests and answers most of them itself; requests that may
//! block (syncobj waits with a timeout, transfers that wait for a submit) go to the pool, so a
//! blocked wait holds up neither this client's other threads nor anyone else. The device lock
//! is never held while a request's bytes travel: everything a handler reads came with the
//! request, and the reply is sent after the handler returned.
//!
//! A connection that closes is a file close: waits it has in flight give up (`EINTR`), a hold
//! of the GPU clock it still has is released, and the file's queues and VMs go once the last
//! of its requests has returned (their pending work ends `-ECANCELED`, as on Linux).
//! Bytes that are not a message close the connection, and nothing else.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use agx_sim::{Errno, Injection, SimConfig, SimFile};
use agx_uapi::drm::*;
use agx_uapi::ioctl::{ioc_nr, ioc_size, ioc_type};

use super::caller::RemoteCaller;
use super::{Hosted, Server};
use crate::msg::{value, ControlOp, IoctlRequest, Reply, Request, Target};
use crate::transport::{self, RecvError};
use crate::wire::MAX_PAYLOAD;

/// How long a new connection has to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a reply may wait for a client that does not read before the connection is closed.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests of one connection that may be blocked at once; the connection reads no more
/// until one returns.
const MAX_BLOCKING: usize = 64;

struct Conn {
    file: SimFile,
    hosted: Arc<Hosted>,
    sock: UnixStream,
    send: Mutex<()>,
    /// The client is gone: its waits give up.
    killed: AtomicBool,
    /// Holds of the GPU clock not yet released.
    holds: AtomicU64,
    blocking: (Mutex<usize>, Condvar),
}

impl Conn {
    fn reply(&self, tag: u64, reply: &Reply, fds: &[OwnedFd]) {
        let (kind, payload) = reply.encode();
        let fds: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
        let _g = self.send.lock().unwrap_or_else(|e| e.into_inner());
        if transport::send(&self.sock, kind, tag, &payload, &fds).is_err() {
            // Gone or not reading: the connection's thread sees the shutdown and closes it.
            let _ = self.sock.shutdown(std::net::Shutdown::Both);
        }
    }
}

pub(super) fn run(server: &Server, sock: UnixStream) {
    let _ = sock.set_read_timeout(Some(HELLO_TIMEOUT));
    let _ = sock.set_write_timeout(Some(SEND_TIMEOUT));
    let Some(conn) = handshake(server, sock) else {
        return;
    };
    let _ = conn.sock.set_read_timeout(None);
    let counters = &server.inner.counters;
    counters.open.fetch_add(1, Ordering::Relaxed);
    let conn = Arc::new(conn);
    loop {
        let frame = match transport::recv(&conn.sock) {
            Ok(f) => f,
            Err(RecvError::Closed | RecvError::Io(_)) => break,
            Err(RecvError::Bad(e)) => {
                refuse(server, &conn.sock, &e.to_string());
                break;
            }
        };
        let req = match Request::decode(frame.kind, &frame.payload, frame.fds.len()) {
            Ok(r) => r,
            Err(e) => {
                refuse(server, &conn.sock, &e.to_string());
                break;
            }
        };
        if may_block(&req) {
            // Most waits find their fence signalled already: answered here, without a thread.
            if let Some((reply, out)) = poll_first(&conn, &req) {
                conn.reply(frame.tag, &reply, &out);
                continue;
            }
            let (m, cv) = &conn.blocking;
            let mut n = m.lock().unwrap_or_else(|e| e.into_inner());
            while *n >= MAX_BLOCKING {
                n = cv.wait(n).unwrap_or_else(|e| e.into_inner());
            }
            *n += 1;
            drop(n);
            let c = conn.clone();
            let s = server.clone();
            server.inner.pool.spawn(Box::new(move || {
                handle(&s, &c, frame.tag, req, frame.fds);
                let (m, cv) = &c.blocking;
                *m.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
                cv.notify_one();
            }));
        } else {
            handle(server, &conn, frame.tag, req, frame.fds);
        }
    }
    // The client is gone: a file close.
    conn.killed.store(true, Ordering::Relaxed);
    agx_sim::sync::fence::notify_all();
    if conn.holds.swap(0, Ordering::Relaxed) > 0 {
        conn.hosted.sim.release();
    }
    let _ = conn.sock.shutdown(std::net::Shutdown::Both);
    counters.open.fetch_sub(1, Ordering::Relaxed);
}

/// Bytes that are not a message: say why (tag 0), count it, and close.
fn refuse(server: &Server, sock: &UnixStream, why: &str) {
    server
        .inner
        .counters
        .refused
        .fetch_add(1, Ordering::Relaxed);
    let reply = Reply::Refused {
        errno: libc::EPROTO,
        message: format!("bad message: {why}"),
    };
    let (kind, payload) = reply.encode();
    let _ = transport::send(sock, kind, 0, &payload, &[]);
}

fn handshake(server: &Server, sock: UnixStream) -> Option<Conn> {
    let frame = match transport::recv(&sock) {
        Ok(f) => f,
        Err(RecvError::Bad(e)) => {
            refuse(server, &sock, &e.to_string());
            return None;
        }
        Err(_) => return None,
    };
    let target = match Request::decode(frame.kind, &frame.payload, frame.fds.len()) {
        Ok(Request::Hello(t)) => t,
        Ok(_) => {
            refuse(server, &sock, "the first request must be a hello");
            return None;
        }
        Err(e) => {
            refuse(server, &sock, &e.to_string());
            return None;
        }
    };
    let answer = |r: &Reply| {
        let (kind, payload) = r.encode();
        transport::send(&sock, kind, frame.tag, &payload, &[])
    };
    let hosted = match target {
        Target::Shared => server.inner.shared.clone(),
        Target::New(opts) => match SimConfig::from_options(&opts) {
            Ok(c) => server.create(c),
            Err(message) => {
                let _ = answer(&Reply::Refused {
                    errno: libc::EINVAL,
                    message,
                });
                return None;
            }
        },
        Target::Join(id) => match server.hosted(id) {
            Some(h) => h,
            None => {
                let _ = answer(&Reply::Refused {
                    errno: libc::ENODEV,
                    message: format!("no device {id} on this server"),
                });
                return None;
            }
        },
    };
    let welcome = Reply::Welcome {
        device: hosted.id,
        options: hosted.sim.config().to_options(),
    };
    answer(&welcome).ok()?;
    Some(Conn {
        file: hosted.sim.open(),
        hosted,
        sock,
        send: Mutex::new(()),
        killed: AtomicBool::new(false),
        holds: AtomicU64::new(0),
        blocking: (Mutex::new(0), Condvar::new()),
    })
}

/// Whether serving `req` may wait for something other clients do.
fn may_block(req: &Request) -> bool {
    let Request::Ioctl(r) = req else {
        return false;
    };
    if ioc_type(r.cmd) != DRM_IOCTL_BASE {
        return false;
    }
    const NR_WAIT: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_WAIT);
    const NR_TL_WAIT: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT);
    const NR_TRANSFER: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_TRANSFER);
    match ioc_nr(r.cmd) {
        NR_WAIT => load::<drm_syncobj_wait>(&r.arg).timeout_nsec != 0,
        NR_TL_WAIT => load::<drm_syncobj_timeline_wait>(&r.arg).timeout_nsec != 0,
        NR_TRANSFER => {
            load::<drm_syncobj_transfer>(&r.arg).flags & DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT != 0
        }
        _ => false,
    }
}

/// A wait tried once with a zero timeout (a poll), answered if that settles it (signalled, or
/// refused before any waiting): `None` when it would have to wait. The reply carries the
/// caller's own timeout back, as the kernel leaves it.
fn poll_first(conn: &Conn, req: &Request) -> Option<(Reply, Vec<OwnedFd>)> {
    let Request::Ioctl(r) = req else {
        return None;
    };
    const NR_WAIT: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_WAIT);
    const NR_TL_WAIT: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT);
    let at = match ioc_nr(r.cmd) {
        NR_WAIT => core::mem::offset_of!(drm_syncobj_wait, timeout_nsec),
        NR_TL_WAIT => core::mem::offset_of!(drm_syncobj_timeline_wait, timeout_nsec),
        _ => return None,
    };
    let timeout = r.arg.get(at..at + 8)?.to_vec();
    let mut poll = r.clone();
    poll.arg[at..at + 8].fill(0);
    let (mut reply, out) = serve(conn, Request::Ioctl(poll), Vec::new());
    let Reply::IoctlDone { errno, arg, .. } = &mut reply else {
        return None;
    };
    if *errno == libc::ETIME {
        return None;
    }
    if let Some(t) = arg.get_mut(at..at + 8) {
        t.copy_from_slice(&timeout);
    }
    Some((reply, out))
}

fn load<T: bytemuck::Pod>(arg: &[u8]) -> T {
    let mut v = T::zeroed();
    let b = bytemuck::bytes_of_mut(&mut v);
    let n = b.len().min(arg.len());
    b[..n].copy_from_slice(&arg[..n]);
    v
}

/// Serves one request and answers it. A handler that panics (a simulator bug) is answered
/// `EIO` and counted; the server and the connection go on.
fn handle(server: &Server, conn: &Conn, tag: u64, req: Request, fds: Vec<OwnedFd>) {
    let failed = failure_reply(&req);
    let served = catch_unwind(AssertUnwindSafe(|| serve(conn, req, fds)));
    let (reply, out) = served.unwrap_or_else(|_| {
        server.inner.counters.panics.fetch_add(1, Ordering::Relaxed);
        (failed, Vec::new())
    });
    conn.reply(tag, &reply, &out);
}

/// The `EIO` answer to `req`, should serving it panic.
fn failure_reply(req: &Request) -> Reply {
    let errno = libc::EIO;
    match req {
        Request::Ioctl(r) | Request::FdIoctl(r) => Reply::IoctlDone {
            errno,
            arg: r.arg.clone(),
            writes: Vec::new(),
            nfds: 0,
        },
        Request::Mmap { .. } => Reply::MmapDone { errno },
        Request::Control(_) => Reply::ControlDone {
            errno,
            value: Vec::new(),
        },
        Request::Hello(_) => Reply::Refused {
            errno,
            message: String::new(),
        },
    }
}

fn serve(conn: &Conn, req: Request, fds: Vec<OwnedFd>) -> (Reply, Vec<OwnedFd>) {
    match req {
        Request::Hello(_) => (
            Reply::Refused {
                errno: libc::EPROTO,
                message: "this connection's file is already open".into(),
            },
            Vec::new(),
        ),
        Request::Ioctl(r) => ioctl(conn, r, fds, false),
        Request::FdIoctl(r) => ioctl(conn, r, fds, true),
        Request::Mmap { offset, len } => match conn.file.mmap_fd(offset, len) {
            Ok(fd) => (Reply::MmapDone { errno: 0 }, vec![fd]),
            Err(e) => (
                Reply::MmapDone {
                    errno: e.raw_os_error(),
                },
                Vec::new(),
            ),
        },
        Request::Control(op) => (control(conn, op), Vec::new()),
    }
}

fn ioctl(
    conn: &Conn,
    r: IoctlRequest,
    mut fds: Vec<OwnedFd>,
    on_fd: bool,
) -> (Reply, Vec<OwnedFd>) {
    // The decoder checked that an fd ioctl came with its target.
    let target = if on_fd { Some(fds.remove(0)) } else { None };
    let attached = r.fd_numbers.iter().copied().zip(fds).collect();
    let caller = RemoteCaller::new(&r.segments, attached, &conn.killed);
    let mut arg = r.arg;
    let res = match &target {
        // As the host kernel copies `_IOC_SIZE` bytes, whatever the file.
        Some(_) if arg.len() != ioc_size(r.cmd) => Err(Errno::FAULT),
        Some(t) => agx_sim::fd_ioctl_for(&caller, t.as_fd(), r.cmd, &mut arg),
        None => conn.file.ioctl_for(&caller, r.cmd, &mut arg),
    };
    let (writes, installed) = caller.finish();
    // A failed ioctl gives the caller no fds.
    let installed = if res.is_ok() { installed } else { Vec::new() };
    let reply = Reply::IoctlDone {
        errno: res.err().map_or(0, |e| e.raw_os_error()),
        arg,
        writes,
        nfds: installed.len(),
    };
    (reply, installed)
}

fn control(conn: &Conn, op: ControlOp) -> Reply {
    let sim = &conn.hosted.sim;
    let value = match op {
        ControlOp::Hold => {
            sim.hold();
            conn.holds.fetch_add(1, Ordering::Relaxed);
            Vec::new()
        }
        ControlOp::Release => {
            sim.release();
            let _ = conn
                .holds
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| h.checked_sub(1));
            Vec::new()
        }
        ControlOp::Advance(ns) => {
            sim.advance(ns);
            Vec::new()
        }
        ControlOp::Inject {
            queue,
            hang,
            after_ns,
        } => {
            let inj = if hang {
                Injection::Hang { after_ns }
            } else {
                Injection::Fault { after_ns }
            };
            if let Err(e) = sim.inject(&conn.file, queue, inj) {
                return Reply::ControlDone {
                    errno: e.raw_os_error(),
                    value: Vec::new(),
                };
            }
            Vec::new()
        }
        ControlOp::CrashFirmware => {
            sim.crash_firmware();
            Vec::new()
        }
        ControlOp::NowNs => value::encode_u64(sim.now_ns()),
        ControlOp::Stats => value::encode_stats(&sim.stats()),
        ControlOp::PendingCommands => value::encode_u64(sim.pending_commands() as u64),
        ControlOp::TraceJson => sim.trace_json().into_bytes(),
        ControlOp::TraceEvents => value::encode_events(&sim.trace_events()),
        ControlOp::Config => sim.config().to_options().into_bytes(),
    };
    // Leave room for the reply's own header.
    if value.len() > MAX_PAYLOAD - 64 {
        return Reply::ControlDone {
            errno: libc::E2BIG,
            value: Vec::new(),
        };
    }
    Reply::ControlDone { errno: 0, value }
}
