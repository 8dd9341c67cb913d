//! The message decoder against bytes it was not made for: arbitrary bytes, every truncation of
//! a valid message, lengths and counts that lie, fd counts that do not match. It must reject
//! them all with a [`DecodeError`] (never panic, never allocate what a length promises before
//! the bytes are there), and decode exactly what was encoded.

use agx_sim_server::msg::{
    decode_header, fuzz_decode, ControlOp, DecodeError, IoctlRequest, Reply, Request, Segment,
    Target,
};
use agx_sim_server::wire::{self, seg};
use proptest::prelude::*;

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::Shared),
        "[a-z=,-]{0,40}".prop_map(Target::New),
        any::<u64>().prop_map(Target::Join),
    ]
}

fn segment() -> impl Strategy<Value = Segment> {
    (
        any::<u64>(),
        prop_oneof![
            Just(seg::IN),
            Just(seg::OUT),
            Just(seg::IN | seg::FAULT),
            Just(seg::IN | seg::TOO_BIG)
        ],
        prop::collection::vec(any::<u8>(), 0..64),
        any::<u64>(),
    )
        .prop_map(|(addr, flags, data, len)| {
            if flags == seg::IN {
                Segment {
                    addr,
                    len: data.len() as u64,
                    flags,
                    data,
                }
            } else {
                Segment {
                    addr,
                    len,
                    flags,
                    data: Vec::new(),
                }
            }
        })
}

fn ioctl() -> impl Strategy<Value = IoctlRequest> {
    (
        any::<u32>(),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(segment(), 0..4),
        prop::collection::vec(any::<i32>(), 0..3),
    )
        .prop_map(|(cmd, arg, segments, fd_numbers)| IoctlRequest {
            cmd,
            arg,
            segments,
            fd_numbers,
        })
}

fn control() -> impl Strategy<Value = ControlOp> {
    prop_oneof![
        Just(ControlOp::Hold),
        Just(ControlOp::Release),
        any::<u64>().prop_map(ControlOp::Advance),
        (any::<u32>(), any::<bool>(), any::<u64>()).prop_map(|(queue, hang, after_ns)| {
            ControlOp::Inject {
                queue,
                hang,
                after_ns,
            }
        }),
        Just(ControlOp::Stats),
        Just(ControlOp::TraceEvents),
        Just(ControlOp::Config),
    ]
}

/// A request and the number of fds its frame carries.
fn request() -> impl Strategy<Value = (Request, usize)> {
    prop_oneof![
        target().prop_map(|t| (Request::Hello(t), 0)),
        ioctl().prop_map(|r| {
            let n = r.fd_numbers.len();
            (Request::Ioctl(r), n)
        }),
        ioctl().prop_map(|r| {
            let n = r.fd_numbers.len() + 1;
            (Request::FdIoctl(r), n)
        }),
        (any::<u64>(), any::<u64>()).prop_map(|(offset, len)| (Request::Mmap { offset, len }, 0)),
        control().prop_map(|c| (Request::Control(c), 0)),
    ]
}

fn reply() -> impl Strategy<Value = (Reply, usize)> {
    prop_oneof![
        (any::<u64>(), "[a-z=,-]{0,40}")
            .prop_map(|(device, options)| (Reply::Welcome { device, options }, 0)),
        (
            0..200i32,
            prop::collection::vec(any::<u8>(), 0..64),
            prop::collection::vec(
                (any::<u64>(), prop::collection::vec(any::<u8>(), 0..16)),
                0..3
            ),
            0..=wire::MAX_FDS
        )
            .prop_map(|(errno, arg, writes, nfds)| (
                Reply::IoctlDone {
                    errno,
                    arg,
                    writes,
                    nfds
                },
                nfds
            )),
        (0..200i32).prop_map(|errno| (Reply::MmapDone { errno }, usize::from(errno == 0))),
        (0..200i32, prop::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(errno, value)| (Reply::ControlDone { errno, value }, 0)),
        (0..200i32, "[ -~]{0,60}")
            .prop_map(|(errno, message)| (Reply::Refused { errno, message }, 0)),
    ]
}

fn frame(kind: u16, payload: &[u8], nfds: usize) -> Vec<u8> {
    let h = wire::Header {
        magic: wire::MAGIC,
        kind,
        nfds: nfds as u16,
        tag: 7,
        len: payload.len() as u32,
        pad: 0,
    };
    let mut v = vec![nfds as u8];
    v.extend_from_slice(bytemuck::bytes_of(&h));
    v.extend_from_slice(payload);
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        fuzz_decode(&data);
    }

    #[test]
    fn requests_round_trip((req, nfds) in request()) {
        let (k, p) = req.encode();
        prop_assert_eq!(Request::decode(k, &p, nfds), Ok(req));
        fuzz_decode(&frame(k, &p, nfds));
    }

    #[test]
    fn replies_round_trip((rep, nfds) in reply()) {
        let (k, p) = rep.encode();
        prop_assert_eq!(Reply::decode(k, &p, nfds), Ok(rep));
        fuzz_decode(&frame(k, &p, nfds));
    }

    /// Every strict prefix of a message is an error (all variable parts are counted), and so
    /// is the message with a byte too many.
    #[test]
    fn truncated_and_padded_messages_are_errors((req, nfds) in request()) {
        let (k, p) = req.encode();
        for n in 0..p.len() {
            prop_assert!(Request::decode(k, &p[..n], nfds).is_err(), "prefix {} of {:?}", n, req);
        }
        let mut long = p.clone();
        long.push(0);
        prop_assert_eq!(Request::decode(k, &long, nfds), Err(DecodeError::Trailing(1)));
    }

    /// A frame that carries other fds than its message names is an error.
    #[test]
    fn fd_counts_must_match((req, nfds) in request(), other in 0..=wire::MAX_FDS) {
        prop_assume!(other != nfds);
        let (k, p) = req.encode();
        prop_assert!(Request::decode(k, &p, other).is_err());
    }

    /// Random corruption of a valid frame: decoded as something or rejected, never a panic.
    #[test]
    fn corrupted_frames_never_panic(
        (req, nfds) in request(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let (k, p) = req.encode();
        let mut f = frame(k, &p, nfds);
        for (i, b) in flips {
            let i = i.index(f.len());
            f[i] ^= b;
        }
        fuzz_decode(&f);
    }
}

/// Lengths and counts that lie: each is rejected before anything of that size is allocated.
#[test]
fn lying_lengths_and_counts() {
    use wire::Ioctl;
    let lie = |w: Ioctl, tail: &[u8]| {
        let mut p = bytemuck::bytes_of(&w).to_vec();
        p.extend_from_slice(tail);
        Request::decode(wire::kind::IOCTL, &p, w.nfds as usize)
    };
    let base = Ioctl {
        cmd: 0,
        arg_len: 4,
        nsegs: 0,
        nfds: 0,
    };
    assert!(lie(base, &[0; 4]).is_ok());
    assert!(matches!(
        lie(
            Ioctl {
                arg_len: 1 << 20,
                ..base
            },
            &[0; 4]
        ),
        Err(DecodeError::TooMany { .. })
    ));
    assert!(matches!(
        lie(
            Ioctl {
                arg_len: 100,
                ..base
            },
            &[0; 4]
        ),
        Err(DecodeError::Truncated { .. })
    ));
    assert!(matches!(
        lie(
            Ioctl {
                nsegs: u32::MAX,
                ..base
            },
            &[0; 4]
        ),
        Err(DecodeError::TooMany { .. })
    ));
    assert!(matches!(
        lie(Ioctl { nfds: 1000, ..base }, &[0; 4]),
        Err(DecodeError::TooMany { .. })
    ));
    // A segment promising 2^63 bytes of data.
    let mut tail = vec![0u8; 4];
    tail.extend_from_slice(bytemuck::bytes_of(&wire::Segment {
        addr: 0x1000,
        len: 1 << 63,
        flags: seg::IN,
        pad: 0,
    }));
    assert!(matches!(
        lie(Ioctl { nsegs: 1, ..base }, &tail),
        Err(DecodeError::Truncated { .. })
    ));
    // A segment with unknown flags, or neither readable nor writable.
    for flags in [0, 1 << 7, seg::FAULT] {
        let mut tail = vec![0u8; 4];
        tail.extend_from_slice(bytemuck::bytes_of(&wire::Segment {
            addr: 0x1000,
            len: 0,
            flags,
            pad: 0,
        }));
        assert_eq!(
            lie(Ioctl { nsegs: 1, ..base }, &tail),
            Err(DecodeError::Invalid("segment flags"))
        );
    }
    // Headers: bad magic, unknown kind, payload and fd limits.
    let h = |magic, kind, nfds, len| {
        let h = wire::Header {
            magic,
            kind,
            nfds,
            tag: 1,
            len,
            pad: 0,
        };
        decode_header(bytemuck::bytes_of(&h).try_into().unwrap())
    };
    assert!(h(wire::MAGIC, wire::kind::IOCTL, 0, 10).is_ok());
    assert!(matches!(
        h(0, wire::kind::IOCTL, 0, 10),
        Err(DecodeError::BadMagic(0))
    ));
    assert!(matches!(
        h(wire::MAGIC, 77, 0, 10),
        Err(DecodeError::UnknownKind(77))
    ));
    assert!(matches!(
        h(wire::MAGIC, 1, 0, u32::MAX),
        Err(DecodeError::TooMany { .. })
    ));
    assert!(matches!(
        h(wire::MAGIC, 1, 9, 0),
        Err(DecodeError::TooMany { .. })
    ));
}
