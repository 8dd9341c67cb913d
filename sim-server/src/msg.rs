//! Typed messages, decoded from [`crate::wire`] with every length and count checked before
//! anything is allocated or trusted, and encoded back.
//!
//! Decoding is a pure function of the payload bytes and the number of fds that came with the
//! frame ([`Request::decode`], [`Reply::decode`], [`decode_header`]); [`fuzz_decode`] runs all
//! of it on arbitrary bytes, for fuzzers and the robustness tests.

use bytemuck::Pod;

use crate::wire::{self, kind, op, seg, target, Header, MAX_ARG, MAX_FDS, MAX_OPTIONS};
use crate::wire::{MAX_PAYLOAD, MAX_SEGMENTS};

/// Why bytes are not a message. A connection that sends one is closed: after a lying length
/// nothing that follows can be trusted to be where the frame says.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated: {need} more bytes needed, {have} there")]
    Truncated { need: usize, have: usize },
    #[error("bad magic {0:#010x}")]
    BadMagic(u32),
    #[error("unknown frame kind {0}")]
    UnknownKind(u16),
    #[error("{what} is {got}, more than the limit of {max}")]
    TooMany {
        what: &'static str,
        got: u64,
        max: u64,
    },
    #[error("{0} bytes after the message")]
    Trailing(usize),
    #[error("the message names {named} fds, the frame carries {carried}")]
    FdCount { named: usize, carried: usize },
    #[error("bad field: {0}")]
    Invalid(&'static str),
}

/// Checked reads from a payload.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], DecodeError> {
        let have = self.buf.len();
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= have)
            .ok_or(DecodeError::Truncated {
                need: usize::try_from(n).unwrap_or(usize::MAX),
                have,
            })?;
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn pod<T: Pod>(&mut self) -> Result<T, DecodeError> {
        Ok(bytemuck::pod_read_unaligned(
            self.take(core::mem::size_of::<T>() as u64)?,
        ))
    }

    fn string(&mut self, len: u32, max: usize) -> Result<String, DecodeError> {
        limit("string length", len as u64, max)?;
        let b = self.take(len as u64)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError::Invalid("string is not UTF-8"))
    }

    fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

fn limit(what: &'static str, got: u64, max: usize) -> Result<(), DecodeError> {
    if got > max as u64 {
        return Err(DecodeError::TooMany {
            what,
            got,
            max: max as u64,
        });
    }
    Ok(())
}

fn fds(named: usize, carried: usize) -> Result<(), DecodeError> {
    if named != carried {
        return Err(DecodeError::FdCount { named, carried });
    }
    Ok(())
}

/// Checks a frame header: magic, a known kind, the payload and fd limits.
pub fn decode_header(bytes: &[u8; 24]) -> Result<Header, DecodeError> {
    let h: Header = bytemuck::pod_read_unaligned(bytes);
    if h.magic != wire::MAGIC {
        return Err(DecodeError::BadMagic(h.magic));
    }
    if !matches!(h.kind, 1..=5 | 101..=105) {
        return Err(DecodeError::UnknownKind(h.kind));
    }
    if h.pad != 0 {
        return Err(DecodeError::Invalid("header padding"));
    }
    limit("payload length", h.len as u64, MAX_PAYLOAD)?;
    limit("fd count", h.nfds as u64, MAX_FDS)?;
    Ok(h)
}

/// Which device a connection's file is opened on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The server's shared device.
    Shared,
    /// A new private device with these options (`SimConfig::from_options`).
    New(String),
    /// Another file of device `id`.
    Join(u64),
}

/// One range of the caller's memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub addr: u64,
    pub len: u64,
    /// [`wire::seg`] flags.
    pub flags: u32,
    /// The bytes, for a readable (`IN`) segment the caller could read.
    pub data: Vec<u8>,
}

impl Segment {
    fn carries_data(flags: u32) -> bool {
        flags & seg::IN != 0 && flags & (seg::FAULT | seg::TOO_BIG) == 0
    }
}

/// An ioctl with the memory and fds it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoctlRequest {
    pub cmd: u32,
    pub arg: Vec<u8>,
    pub segments: Vec<Segment>,
    /// The caller's numbers of the attached fds (after the fd ioctl's target, if any).
    pub fd_numbers: Vec<i32>,
}

/// A test control of the simulated GPU ([`wire::op`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlOp {
    Hold,
    Release,
    Advance(u64),
    Inject {
        queue: u32,
        hang: bool,
        after_ns: u64,
    },
    CrashFirmware,
    NowNs,
    Stats,
    PendingCommands,
    TraceJson,
    TraceEvents,
    Config,
}

/// Client to server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Hello(Target),
    /// An ioctl on the connection's DRM file.
    Ioctl(IoctlRequest),
    /// An ioctl on the first attached fd (a sync_file or dma-buf the device exported).
    FdIoctl(IoctlRequest),
    Mmap {
        offset: u64,
        len: u64,
    },
    Control(ControlOp),
}

impl Request {
    /// Decodes the payload of a request frame of `kind` that came with `nfds` fds.
    pub fn decode(kind: u16, payload: &[u8], nfds: usize) -> Result<Request, DecodeError> {
        let mut r = Reader { buf: payload };
        let req = match kind {
            kind::HELLO => {
                fds(0, nfds)?;
                let h: wire::Hello = r.pod()?;
                if h.version != wire::VERSION {
                    return Err(DecodeError::Invalid("protocol version"));
                }
                if h.pad != 0 {
                    return Err(DecodeError::Invalid("hello padding"));
                }
                let options = r.string(h.options_len, MAX_OPTIONS)?;
                let t = match h.target {
                    target::SHARED => Target::Shared,
                    target::NEW => Target::New(options.clone()),
                    target::JOIN => Target::Join(h.device),
                    _ => return Err(DecodeError::Invalid("hello target")),
                };
                if !matches!(t, Target::New(_)) && !options.is_empty() {
                    return Err(DecodeError::Invalid("options without a new device"));
                }
                Request::Hello(t)
            }
            kind::IOCTL | kind::FD_IOCTL => {
                let target = usize::from(kind == kind::FD_IOCTL);
                let req = decode_ioctl(
                    &mut r,
                    nfds.checked_sub(target).ok_or(DecodeError::FdCount {
                        named: target,
                        carried: nfds,
                    })?,
                )?;
                if kind == kind::IOCTL {
                    Request::Ioctl(req)
                } else {
                    Request::FdIoctl(req)
                }
            }
            kind::MMAP => {
                fds(0, nfds)?;
                let m: wire::Mmap = r.pod()?;
                Request::Mmap {
                    offset: m.offset,
                    len: m.len,
                }
            }
            kind::CONTROL => {
                fds(0, nfds)?;
                let c: wire::Control = r.pod()?;
                if c.pad != 0 {
                    return Err(DecodeError::Invalid("control padding"));
                }
                Request::Control(match c.op {
                    op::HOLD => ControlOp::Hold,
                    op::RELEASE => ControlOp::Release,
                    op::ADVANCE => ControlOp::Advance(c.ns),
                    op::INJECT => ControlOp::Inject {
                        queue: c.queue,
                        hang: match c.arg {
                            0 => false,
                            1 => true,
                            _ => return Err(DecodeError::Invalid("injection kind")),
                        },
                        after_ns: c.ns,
                    },
                    op::CRASH_FIRMWARE => ControlOp::CrashFirmware,
                    op::NOW_NS => ControlOp::NowNs,
                    op::STATS => ControlOp::Stats,
                    op::PENDING_COMMANDS => ControlOp::PendingCommands,
                    op::TRACE_JSON => ControlOp::TraceJson,
                    op::TRACE_EVENTS => ControlOp::TraceEvents,
                    op::CONFIG => ControlOp::Config,
                    _ => return Err(DecodeError::Invalid("control op")),
                })
            }
            other => return Err(DecodeError::UnknownKind(other)),
        };
        r.finish()?;
        Ok(req)
    }

    /// The frame kind and payload (the fds travel apart).
    pub fn encode(&self) -> (u16, Vec<u8>) {
        let mut out = Vec::new();
        let k = match self {
            Request::Hello(t) => {
                let (target, device, options) = match t {
                    Target::Shared => (target::SHARED, 0, ""),
                    Target::New(o) => (target::NEW, 0, o.as_str()),
                    Target::Join(d) => (target::JOIN, *d, ""),
                };
                push(
                    &mut out,
                    &wire::Hello {
                        version: wire::VERSION,
                        target,
                        device,
                        options_len: options.len() as u32,
                        pad: 0,
                    },
                );
                out.extend_from_slice(options.as_bytes());
                kind::HELLO
            }
            Request::Ioctl(r) => {
                encode_ioctl(&mut out, r);
                kind::IOCTL
            }
            Request::FdIoctl(r) => {
                encode_ioctl(&mut out, r);
                kind::FD_IOCTL
            }
            Request::Mmap { offset, len } => {
                push(
                    &mut out,
                    &wire::Mmap {
                        offset: *offset,
                        len: *len,
                    },
                );
                kind::MMAP
            }
            Request::Control(c) => {
                let mut w = wire::Control::default();
                w.op = match *c {
                    ControlOp::Hold => op::HOLD,
                    ControlOp::Release => op::RELEASE,
                    ControlOp::Advance(ns) => {
                        w.ns = ns;
                        op::ADVANCE
                    }
                    ControlOp::Inject {
                        queue,
                        hang,
                        after_ns,
                    } => {
                        w.queue = queue;
                        w.arg = u32::from(hang);
                        w.ns = after_ns;
                        op::INJECT
                    }
                    ControlOp::CrashFirmware => op::CRASH_FIRMWARE,
                    ControlOp::NowNs => op::NOW_NS,
                    ControlOp::Stats => op::STATS,
                    ControlOp::PendingCommands => op::PENDING_COMMANDS,
                    ControlOp::TraceJson => op::TRACE_JSON,
                    ControlOp::TraceEvents => op::TRACE_EVENTS,
                    ControlOp::Config => op::CONFIG,
                };
                push(&mut out, &w);
                kind::CONTROL
            }
        };
        (k, out)
    }
}

fn decode_ioctl(r: &mut Reader<'_>, nfds: usize) -> Result<IoctlRequest, DecodeError> {
    let w: wire::Ioctl = r.pod()?;
    limit("argument size", w.arg_len as u64, MAX_ARG)?;
    limit("segment count", w.nsegs as u64, MAX_SEGMENTS)?;
    limit("fd count", w.nfds as u64, MAX_FDS)?;
    fds(w.nfds as usize, nfds)?;
    let arg = r.take(w.arg_len as u64)?.to_vec();
    let mut segments = Vec::with_capacity(w.nsegs as usize);
    for _ in 0..w.nsegs {
        let s: wire::Segment = r.pod()?;
        if s.flags & !seg::ALL != 0 || s.flags & (seg::IN | seg::OUT) == 0 || s.pad != 0 {
            return Err(DecodeError::Invalid("segment flags"));
        }
        let data = if Segment::carries_data(s.flags) {
            r.take(s.len)?.to_vec()
        } else {
            Vec::new()
        };
        segments.push(Segment {
            addr: s.addr,
            len: s.len,
            flags: s.flags,
            data,
        });
    }
    let mut fd_numbers = Vec::with_capacity(w.nfds as usize);
    for _ in 0..w.nfds {
        fd_numbers.push(r.pod::<i32>()?);
    }
    Ok(IoctlRequest {
        cmd: w.cmd,
        arg,
        segments,
        fd_numbers,
    })
}

fn encode_ioctl(out: &mut Vec<u8>, r: &IoctlRequest) {
    push(
        out,
        &wire::Ioctl {
            cmd: r.cmd,
            arg_len: r.arg.len() as u32,
            nsegs: r.segments.len() as u32,
            nfds: r.fd_numbers.len() as u32,
        },
    );
    out.extend_from_slice(&r.arg);
    for s in &r.segments {
        push(
            out,
            &wire::Segment {
                addr: s.addr,
                len: s.len,
                flags: s.flags,
                pad: 0,
            },
        );
        if Segment::carries_data(s.flags) {
            out.extend_from_slice(&s.data);
        }
    }
    for n in &r.fd_numbers {
        push(out, n);
    }
}

fn push<T: Pod>(out: &mut Vec<u8>, v: &T) {
    out.extend_from_slice(bytemuck::bytes_of(v));
}

/// Server to client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Welcome {
        device: u64,
        options: String,
    },
    /// `errno` 0 or positive; the installed fds are attached (`nfds` of them).
    IoctlDone {
        errno: i32,
        arg: Vec<u8>,
        writes: Vec<(u64, Vec<u8>)>,
        nfds: usize,
    },
    /// On success the BO's memory fd is attached.
    MmapDone {
        errno: i32,
    },
    ControlDone {
        errno: i32,
        value: Vec<u8>,
    },
    Refused {
        errno: i32,
        message: String,
    },
}

/// Most writes one ioctl reply carries (each to a declared `OUT` segment).
const MAX_WRITES: usize = 64;

impl Reply {
    /// Decodes the payload of a reply frame of `kind` that came with `nfds` fds.
    pub fn decode(kind: u16, payload: &[u8], nfds: usize) -> Result<Reply, DecodeError> {
        let mut r = Reader { buf: payload };
        let reply = match kind {
            kind::WELCOME => {
                fds(0, nfds)?;
                let w: wire::Welcome = r.pod()?;
                if w.version != wire::VERSION {
                    return Err(DecodeError::Invalid("protocol version"));
                }
                Reply::Welcome {
                    device: w.device,
                    options: r.string(w.options_len, MAX_OPTIONS)?,
                }
            }
            kind::IOCTL_DONE => {
                let w: wire::IoctlDone = r.pod()?;
                limit("argument size", w.arg_len as u64, MAX_ARG)?;
                limit("write count", w.nwrites as u64, MAX_WRITES)?;
                limit("fd count", w.nfds as u64, MAX_FDS)?;
                fds(w.nfds as usize, nfds)?;
                if w.errno < 0 {
                    return Err(DecodeError::Invalid("negative errno"));
                }
                let arg = r.take(w.arg_len as u64)?.to_vec();
                let mut writes = Vec::with_capacity(w.nwrites as usize);
                for _ in 0..w.nwrites {
                    let h: wire::Write = r.pod()?;
                    writes.push((h.addr, r.take(h.len)?.to_vec()));
                }
                Reply::IoctlDone {
                    errno: w.errno,
                    arg,
                    writes,
                    nfds,
                }
            }
            kind::MMAP_DONE => {
                let s: wire::Status = r.pod()?;
                if s.errno < 0 || s.len != 0 {
                    return Err(DecodeError::Invalid("mmap status"));
                }
                fds(usize::from(s.errno == 0), nfds)?;
                Reply::MmapDone { errno: s.errno }
            }
            kind::CONTROL_DONE | kind::REFUSED => {
                fds(0, nfds)?;
                let s: wire::Status = r.pod()?;
                if s.errno < 0 {
                    return Err(DecodeError::Invalid("negative errno"));
                }
                if kind == kind::REFUSED {
                    Reply::Refused {
                        errno: s.errno,
                        message: r.string(s.len, MAX_OPTIONS)?,
                    }
                } else {
                    Reply::ControlDone {
                        errno: s.errno,
                        value: r.take(s.len as u64)?.to_vec(),
                    }
                }
            }
            other => return Err(DecodeError::UnknownKind(other)),
        };
        r.finish()?;
        Ok(reply)
    }

    /// The frame kind and payload (the fds travel apart).
    pub fn encode(&self) -> (u16, Vec<u8>) {
        let mut out = Vec::new();
        let k = match self {
            Reply::Welcome { device, options } => {
                push(
                    &mut out,
                    &wire::Welcome {
                        version: wire::VERSION,
                        options_len: options.len() as u32,
                        device: *device,
                    },
                );
                out.extend_from_slice(options.as_bytes());
                kind::WELCOME
            }
            Reply::IoctlDone {
                errno,
                arg,
                writes,
                nfds,
            } => {
                push(
                    &mut out,
                    &wire::IoctlDone {
                        errno: *errno,
                        arg_len: arg.len() as u32,
                        nwrites: writes.len() as u32,
                        nfds: *nfds as u32,
                    },
                );
                out.extend_from_slice(arg);
                for (addr, data) in writes {
                    push(
                        &mut out,
                        &wire::Write {
                            addr: *addr,
                            len: data.len() as u64,
                        },
                    );
                    out.extend_from_slice(data);
                }
                kind::IOCTL_DONE
            }
            Reply::MmapDone { errno } => {
                push(
                    &mut out,
                    &wire::Status {
                        errno: *errno,
                        len: 0,
                    },
                );
                kind::MMAP_DONE
            }
            Reply::ControlDone { errno, value } => {
                push(
                    &mut out,
                    &wire::Status {
                        errno: *errno,
                        len: value.len() as u32,
                    },
                );
                out.extend_from_slice(value);
                kind::CONTROL_DONE
            }
            Reply::Refused { errno, message } => {
                let message = &message.as_bytes()[..message.len().min(MAX_OPTIONS)];
                push(
                    &mut out,
                    &wire::Status {
                        errno: *errno,
                        len: message.len() as u32,
                    },
                );
                out.extend_from_slice(message);
                kind::REFUSED
            }
        };
        (k, out)
    }
}

/// The fuzz target: `data[0] % (MAX_FDS + 1)` fds "came with" a frame made of the rest
/// (header, then payload). Decodes it as the server and the client would, and checks that
/// whatever decodes encodes back to the same message. Never panics on any input (a panic is
/// the finding).
pub fn fuzz_decode(data: &[u8]) {
    let Some((&n, frame)) = data.split_first() else {
        return;
    };
    let nfds = n as usize % (MAX_FDS + 1);
    let Some((head, payload)) = frame.split_first_chunk::<24>() else {
        return;
    };
    let Ok(h) = decode_header(head) else { return };
    if h.kind < 100 {
        if let Ok(req) = Request::decode(h.kind, payload, nfds) {
            let (k, bytes) = req.encode();
            assert_eq!(Request::decode(k, &bytes, nfds).as_ref(), Ok(&req));
        }
    } else if let Ok(rep) = Reply::decode(h.kind, payload, nfds) {
        let (k, bytes) = rep.encode();
        assert_eq!(Reply::decode(k, &bytes, nfds).as_ref(), Ok(&rep));
    }
}

/// Values of [`Reply::ControlDone`] that are not plain bytes.
pub mod value {
    use agx_sim::gpu::Stats;
    use agx_sim::trace::{Event, EventKind};

    use super::{push, DecodeError, Reader};
    use crate::wire;

    pub fn encode_u64(v: u64) -> Vec<u8> {
        v.to_le_bytes().to_vec()
    }

    pub fn decode_u64(b: &[u8]) -> Result<u64, DecodeError> {
        let mut r = Reader { buf: b };
        let v = r.pod::<u64>()?;
        r.finish()?;
        Ok(v)
    }

    pub fn encode_stats(s: &Stats) -> Vec<u8> {
        bytemuck::bytes_of(&wire::Stats {
            submits: s.submits,
            commands: s.commands,
            completed: s.completed,
            faults: s.faults,
            timeouts: s.timeouts,
            recoveries: s.recoveries,
            replays: s.replays,
            killed: s.killed,
            cancelled: s.cancelled,
            recovery_ns: s.recovery_ns,
            recovery_span_ns: s.recovery_span_ns,
            recoveries_closed: s.recoveries_closed,
            opaque: s.opaque,
        })
        .to_vec()
    }

    pub fn decode_stats(b: &[u8]) -> Result<Stats, DecodeError> {
        let mut r = Reader { buf: b };
        let w: wire::Stats = r.pod()?;
        r.finish()?;
        Ok(Stats {
            submits: w.submits,
            commands: w.commands,
            completed: w.completed,
            faults: w.faults,
            timeouts: w.timeouts,
            recoveries: w.recoveries,
            replays: w.replays,
            killed: w.killed,
            cancelled: w.cancelled,
            recovery_ns: w.recovery_ns,
            recovery_span_ns: w.recovery_span_ns,
            recoveries_closed: w.recoveries_closed,
            opaque: w.opaque,
        })
    }

    pub fn encode_events(events: &[Event]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in events {
            let kind = EventKind::ALL
                .iter()
                .position(|&k| k == e.kind)
                .unwrap_or(0);
            push(
                &mut out,
                &wire::Event {
                    ts_ns: e.ts_ns,
                    queue: e.queue,
                    job: e.job,
                    kind: kind as u32,
                    detail_len: e.detail.len() as u32,
                },
            );
            out.extend_from_slice(e.detail.as_bytes());
        }
        out
    }

    pub fn decode_events(b: &[u8]) -> Result<Vec<Event>, DecodeError> {
        let mut r = Reader { buf: b };
        let mut out = Vec::new();
        while !r.buf.is_empty() {
            let w: wire::Event = r.pod()?;
            let kind = *EventKind::ALL
                .get(w.kind as usize)
                .ok_or(DecodeError::Invalid("event kind"))?;
            let detail = r.string(w.detail_len, wire::MAX_PAYLOAD)?;
            out.push(Event {
                ts_ns: w.ts_ns,
                kind,
                queue: w.queue,
                job: w.job,
                detail,
            });
        }
        Ok(out)
    }
}
