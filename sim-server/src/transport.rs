//! Frames over a Unix stream socket, with fds as `SCM_RIGHTS`.
//!
//! The sender writes header and payload with one `sendmsg` carrying the fds (continuing with
//! plain writes if the socket takes less); the receiver reads exactly the header with
//! `recvmsg`, which is where the kernel delivers the fds, then exactly the payload, so it never
//! reads into the next frame (whose fds a plain read would drop).

use std::io::{IoSlice, IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

use crate::msg::{decode_header, DecodeError};
use crate::wire::{self, Header, MAX_FDS};

/// A received frame.
#[derive(Debug)]
pub struct Frame {
    pub kind: u16,
    pub tag: u64,
    pub payload: Vec<u8>,
    pub fds: Vec<OwnedFd>,
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// The peer closed the connection between frames.
    #[error("connection closed")]
    Closed,
    #[error("{0}")]
    Io(#[from] Errno),
    /// The bytes are not a frame (or the fds did not fit): the connection is out of sync.
    #[error("bad frame: {0}")]
    Bad(#[from] DecodeError),
}

/// Sends one frame.
pub fn send(
    sock: &UnixStream,
    kind: u16,
    tag: u64,
    payload: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Result<(), Errno> {
    if payload.len() > wire::MAX_PAYLOAD || fds.len() > MAX_FDS {
        return Err(Errno::MSGSIZE);
    }
    let header = Header {
        magic: wire::MAGIC,
        kind,
        nfds: fds.len() as u16,
        tag,
        len: payload.len() as u32,
        pad: 0,
    };
    let head = bytemuck::bytes_of(&header);
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(Errno::MSGSIZE);
    }
    let total = head.len() + payload.len();
    let mut sent = loop {
        match rustix::net::sendmsg(
            sock,
            &[IoSlice::new(head), IoSlice::new(payload)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Err(Errno::INTR) => continue,
            r => break r?,
        }
    };
    // The rest without fds (they went with the first byte).
    while sent < total {
        let (a, b) = if sent < head.len() {
            (&head[sent..], payload)
        } else {
            (&[][..], &payload[sent - head.len()..])
        };
        let mut empty = SendAncillaryBuffer::default();
        match rustix::net::sendmsg(
            sock,
            &[IoSlice::new(a), IoSlice::new(b)],
            &mut empty,
            SendFlags::NOSIGNAL,
        ) {
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
            Ok(0) => return Err(Errno::PIPE),
            Ok(n) => sent += n,
        }
    }
    Ok(())
}

/// Receives one frame (blocking).
pub fn recv(sock: &UnixStream) -> Result<Frame, RecvError> {
    let mut head = [0u8; 24];
    let mut got = 0;
    let mut fds = Vec::new();
    while got < head.len() {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let r = rustix::net::recvmsg(
            sock,
            &mut [IoSliceMut::new(&mut head[got..])],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        );
        let msg = match r {
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(m) => m,
        };
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(it) = m {
                fds.extend(it);
            }
        }
        if msg.flags.contains(ReturnFlags::CTRUNC) {
            return Err(DecodeError::TooMany {
                what: "fds in one frame",
                got: MAX_FDS as u64 + 1,
                max: MAX_FDS as u64,
            }
            .into());
        }
        if msg.bytes == 0 {
            return Err(if got == 0 {
                RecvError::Closed
            } else {
                DecodeError::Truncated {
                    need: head.len() - got,
                    have: 0,
                }
                .into()
            });
        }
        got += msg.bytes;
    }
    let h = decode_header(&head)?;
    if fds.len() != h.nfds as usize {
        return Err(DecodeError::FdCount {
            named: h.nfds as usize,
            carried: fds.len(),
        }
        .into());
    }
    // Grown as bytes arrive: a header alone does not make us allocate what it promises.
    let mut payload = Vec::new();
    (&mut &*sock)
        .take(h.len as u64)
        .read_to_end(&mut payload)
        .map_err(|e| RecvError::Io(Errno::from_io_error(&e).unwrap_or(Errno::IO)))?;
    if payload.len() != h.len as usize {
        return Err(DecodeError::Truncated {
            need: h.len as usize - payload.len(),
            have: 0,
        }
        .into());
    }
    Ok(Frame {
        kind: h.kind,
        tag: h.tag,
        payload,
        fds,
    })
}
