//! Target `server_msg`: the device server's wire decoder (`agx_sim_server::msg`), the bytes a
//! client sends a server (requests) and a server sends a client (replies, and the values of
//! control replies: counters, stats, trace events).
//!
//! The input is a byte stream of frames, read as the transport reads a connection: a 24-byte
//! header (`decode_header`), then exactly the header's `len` payload bytes, with the header's
//! `nfds` fds attached (the transport refuses a frame whose fds differ from its header before
//! decoding); a stream that ends inside a frame ends there, as a closed connection does.
//!
//! Invariants:
//! - no panic;
//! - errors typed: every refusal is a `DecodeError` whose message says something;
//! - the decoder accepts exactly the encoder's language: what decodes encodes back to the same
//!   kind and the same bytes (so no field the server ignores can carry anything, and a decoded
//!   message holds no more bytes than its payload did: allocation follows the input, not the
//!   lengths it claims);
//! - fds are accounted for: a message that decodes with `n` fds attached is refused with any
//!   other count (an fd the message does not name would leak into the server).

use agx_sim_server::msg::{decode_header, value, DecodeError, Reply, Request};
use agx_sim_server::wire::{self, MAX_FDS};

/// Runs the decoder over every frame of `data`.
pub fn run(data: &[u8]) {
    let mut rest = data;
    while let Some((head, after)) = rest.split_first_chunk::<24>() {
        let h = match decode_header(head) {
            Ok(h) => h,
            Err(e) => return refused(&e),
        };
        assert_eq!(bytemuck::bytes_of(&h), head, "a header is its bytes");
        let Some((payload, next)) = after.split_at_checked(h.len as usize) else {
            return; // the stream ends inside the frame
        };
        frame(h.kind, payload, h.nfds as usize);
        rest = next;
    }
}

fn refused(e: &DecodeError) {
    assert!(!e.to_string().is_empty(), "{e:?} says nothing");
}

fn frame(kind: u16, payload: &[u8], nfds: usize) {
    crate::trace(|| format!("frame kind {kind}, {} bytes, {nfds} fds", payload.len()));
    let other_counts = (0..=MAX_FDS).filter(|&n| n != nfds);
    if kind < 100 {
        match Request::decode(kind, payload, nfds) {
            Ok(req) => {
                crate::trace(|| format!("  {req:?}"));
                assert_eq!(
                    req.encode(),
                    (kind, payload.to_vec()),
                    "{req:?}: not canonical"
                );
                for n in other_counts {
                    assert!(
                        Request::decode(kind, payload, n).is_err(),
                        "{req:?} decodes with {nfds} and {n} fds"
                    );
                }
            }
            Err(e) => refused(&e),
        }
    } else {
        match Reply::decode(kind, payload, nfds) {
            Ok(rep) => {
                crate::trace(|| format!("  {rep:?}"));
                assert_eq!(
                    rep.encode(),
                    (kind, payload.to_vec()),
                    "{rep:?}: not canonical"
                );
                for n in other_counts {
                    assert!(
                        Reply::decode(kind, payload, n).is_err(),
                        "{rep:?} decodes with {nfds} and {n} fds"
                    );
                }
                if let Reply::ControlDone { value, .. } = &rep {
                    control_value(value);
                }
            }
            Err(e) => refused(&e),
        }
    }
}

/// A control reply's value as each kind of value the client reads out of one.
fn control_value(v: &[u8]) {
    match value::decode_u64(v) {
        Ok(n) => assert_eq!(value::encode_u64(n), v),
        Err(e) => refused(&e),
    }
    match value::decode_stats(v) {
        Ok(s) => assert_eq!(value::encode_stats(&s), v, "{s:?}"),
        Err(e) => refused(&e),
    }
    match value::decode_events(v) {
        Ok(ev) => assert_eq!(value::encode_events(&ev), v, "{ev:?}"),
        Err(e) => refused(&e),
    }
}

/// Seeds: one stream of every request and one of every reply, as client and server send them.
pub fn seeds() -> Vec<Vec<u8>> {
    use agx_sim::gpu::Stats;
    use agx_sim::trace::{Event, EventKind};
    use agx_sim_server::msg::{ControlOp, IoctlRequest, Segment, Target};
    use wire::seg;

    fn stream(frames: &[((u16, Vec<u8>), usize)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, ((kind, payload), nfds)) in frames.iter().enumerate() {
            let h = wire::Header {
                magic: wire::MAGIC,
                kind: *kind,
                nfds: *nfds as u16,
                tag: i as u64 + 1,
                len: payload.len() as u32,
                pad: 0,
            };
            out.extend_from_slice(bytemuck::bytes_of(&h));
            out.extend_from_slice(payload);
        }
        out
    }
    let ioctl = IoctlRequest {
        cmd: 0xc018_6444,
        arg: vec![1, 0, 0, 0, 2, 0, 0, 0, 0x40, 0x10, 0, 0, 0, 0, 0, 0],
        segments: vec![
            Segment {
                addr: 0x1040,
                len: 8,
                flags: seg::IN | seg::OUT,
                data: vec![7; 8],
            },
            Segment {
                addr: 0x2000,
                len: 16,
                flags: seg::OUT,
                data: Vec::new(),
            },
            Segment {
                addr: 0x3000,
                len: 4,
                flags: seg::IN | seg::FAULT,
                data: Vec::new(),
            },
            Segment {
                addr: 0x4000,
                len: 1 << 40,
                flags: seg::IN | seg::TOO_BIG,
                data: Vec::new(),
            },
        ],
        fd_numbers: vec![5],
    };
    let controls = [
        ControlOp::Hold,
        ControlOp::Release,
        ControlOp::Advance(1_000_000),
        ControlOp::Inject {
            queue: 2,
            hang: true,
            after_ns: 500,
        },
        ControlOp::CrashFirmware,
        ControlOp::NowNs,
        ControlOp::Stats,
        ControlOp::PendingCommands,
        ControlOp::TraceJson,
        ControlOp::TraceEvents,
        ControlOp::Config,
    ];
    let mut requests = vec![
        (Request::Hello(Target::Shared).encode(), 0),
        (
            Request::Hello(Target::New("policy=replay,clock=host".into())).encode(),
            0,
        ),
        (Request::Hello(Target::Join(3)).encode(), 0),
        (Request::Ioctl(ioctl.clone()).encode(), 1),
        (Request::FdIoctl(ioctl).encode(), 2),
        (
            Request::Mmap {
                offset: 1 << 32,
                len: 4096,
            }
            .encode(),
            0,
        ),
    ];
    requests.extend(controls.map(|c| (Request::Control(c).encode(), 0)));
    let stats = Stats {
        submits: 3,
        faults: 1,
        innocent_redone_ns: 20_000,
        ..Stats::default()
    };
    let events = [
        Event {
            ts_ns: 10,
            kind: EventKind::Submit,
            queue: 1,
            job: 1,
            detail: String::new(),
        },
        Event {
            ts_ns: 900,
            kind: EventKind::RecoveryEnd,
            queue: 0,
            job: 0,
            detail: "recovery 1".into(),
        },
    ];
    let control_done = |value: Vec<u8>| (Reply::ControlDone { errno: 0, value }.encode(), 0);
    let replies = vec![
        (
            Reply::Welcome {
                device: 1,
                options: "policy=replay".into(),
            }
            .encode(),
            0,
        ),
        (
            Reply::IoctlDone {
                errno: 0,
                arg: vec![0; 16],
                writes: vec![(0x2000, vec![1, 2, 3]), (0x2008, vec![4])],
                nfds: 1,
            }
            .encode(),
            1,
        ),
        (Reply::MmapDone { errno: 0 }.encode(), 1),
        (Reply::MmapDone { errno: 2 }.encode(), 0),
        control_done(value::encode_u64(42)),
        control_done(value::encode_stats(&stats)),
        control_done(value::encode_events(&events)),
        (
            Reply::Refused {
                errno: 22,
                message: "unknown option".into(),
            }
            .encode(),
            0,
        ),
    ];
    vec![stream(&requests), stream(&replies)]
}
