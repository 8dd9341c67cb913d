//! The wire format: fixed little-endian structs as they travel, apart from the typed messages
//! of [`crate::msg`] that are decoded from them.
//!
//! A frame is a [`Header`] followed by `len` payload bytes; the fds it carries travel as one
//! `SCM_RIGHTS` message with the header's first byte. Every payload starts with the fixed
//! struct of its kind and may be followed by variable parts whose lengths and counts that
//! struct gives (and the decoder checks against what is there).

use bytemuck::{Pod, Zeroable};

/// The number an ioctl reply gives the `k`-th fd the handler installed (`FD_PLACEHOLDER - k`);
/// the client replaces it with the number the received fd gets in the calling process.
pub const FD_PLACEHOLDER: i32 = -1000;

/// `b"AGXS"`.
pub const MAGIC: u32 = u32::from_le_bytes(*b"AGXS");
/// Protocol version, sent in [`Hello`]; a server refuses any other.
pub const VERSION: u32 = 1;

/// Largest payload of one frame: a generous cmdbuf plus its sync arrays, or a trace.
pub const MAX_PAYLOAD: usize = 64 << 20;
/// Most fds one frame carries (an fd ioctl's target plus its argument's fd).
pub const MAX_FDS: usize = 4;
/// Most user memory ranges one ioctl names (`TIMELINE_WAIT`: handles and points).
pub const MAX_SEGMENTS: usize = 8;
/// Largest ioctl argument struct (`_IOC_SIZE` is 14 bits).
pub const MAX_ARG: usize = (1 << 14) - 1;
/// Longest option string (`policy=...,clock=...`).
pub const MAX_OPTIONS: usize = 4096;

/// Frame kinds. Requests go from client to server, replies back with the request's tag.
pub mod kind {
    pub const HELLO: u16 = 1;
    pub const IOCTL: u16 = 2;
    pub const FD_IOCTL: u16 = 3;
    pub const MMAP: u16 = 4;
    pub const CONTROL: u16 = 5;

    pub const WELCOME: u16 = 101;
    pub const IOCTL_DONE: u16 = 102;
    pub const MMAP_DONE: u16 = 103;
    pub const CONTROL_DONE: u16 = 104;
    pub const REFUSED: u16 = 105;
}

/// Every frame's first 24 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable, PartialEq, Eq)]
pub struct Header {
    pub magic: u32,
    pub kind: u16,
    /// fds that came with this frame.
    pub nfds: u16,
    /// Chosen by the client per request; a reply carries its request's.
    pub tag: u64,
    /// Payload bytes after the header.
    pub len: u32,
    pub pad: u32,
}

/// [`kind::HELLO`]: the first request of a connection, naming the device this file opens.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Hello {
    pub version: u32,
    /// [`target`]
    pub target: u32,
    /// The device to join ([`target::JOIN`]).
    pub device: u64,
    /// Option bytes after this struct ([`target::NEW`]).
    pub options_len: u32,
    pub pad: u32,
}

/// What a [`Hello`] opens.
pub mod target {
    /// The server's shared device (the one named on its command line).
    pub const SHARED: u32 = 0;
    /// A new private device with the given options.
    pub const NEW: u32 = 1;
    /// Another file of an existing device, by id (a second process, `open_peer`).
    pub const JOIN: u32 = 2;
}

/// [`kind::IOCTL`] and [`kind::FD_IOCTL`]. Followed by `arg_len` argument bytes, `nsegs`
/// [`Segment`]s (each followed by its data when it carries some), and `nfds` fd numbers
/// (`i32`): the caller's numbers of the fds attached to the frame, in order. For an fd ioctl
/// the first attached fd is the file the ioctl is on and has no number.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Ioctl {
    pub cmd: u32,
    pub arg_len: u32,
    pub nsegs: u32,
    pub nfds: u32,
}

/// One range of the caller's memory an ioctl argument points at.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable, PartialEq, Eq)]
pub struct Segment {
    pub addr: u64,
    pub len: u64,
    /// [`seg`] flags.
    pub flags: u32,
    pub pad: u32,
}

/// [`Segment::flags`].
pub mod seg {
    /// The handler may read it; `len` data bytes follow (unless `FAULT` or `TOO_BIG`).
    pub const IN: u32 = 1 << 0;
    /// The handler may write it; the reply carries what it wrote.
    pub const OUT: u32 = 1 << 1;
    /// The caller could not read it: reading is `EFAULT`.
    pub const FAULT: u32 = 1 << 2;
    /// Larger than a frame carries: reading is `ENOMEM` (as `kvmalloc` refusing it).
    pub const TOO_BIG: u32 = 1 << 3;
    pub const ALL: u32 = IN | OUT | FAULT | TOO_BIG;
}

/// [`kind::MMAP`]: the memory behind a BO's fake mmap offset.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Mmap {
    pub offset: u64,
    pub len: u64,
}

/// [`kind::CONTROL`]: a test control of the simulated GPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Control {
    /// [`op`]
    pub op: u32,
    /// The queue handle ([`op::INJECT`]).
    pub queue: u32,
    /// Nanoseconds ([`op::ADVANCE`], [`op::INJECT`]).
    pub ns: u64,
    /// [`op::INJECT`]: 0 fault, 1 hang.
    pub arg: u32,
    pub pad: u32,
}

/// [`Control::op`].
pub mod op {
    pub const HOLD: u32 = 1;
    pub const RELEASE: u32 = 2;
    pub const ADVANCE: u32 = 3;
    pub const INJECT: u32 = 4;
    pub const CRASH_FIRMWARE: u32 = 5;
    pub const NOW_NS: u32 = 6;
    pub const STATS: u32 = 7;
    pub const PENDING_COMMANDS: u32 = 8;
    pub const TRACE_JSON: u32 = 9;
    pub const TRACE_EVENTS: u32 = 10;
    pub const CONFIG: u32 = 11;
    pub const LAST: u32 = CONFIG;
}

/// [`kind::WELCOME`]: followed by `options_len` bytes, the device's options.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Welcome {
    pub version: u32,
    pub options_len: u32,
    pub device: u64,
}

/// [`kind::IOCTL_DONE`]: followed by `arg_len` argument bytes and `nwrites` [`Write`]s, each
/// followed by its data. The `nfds` attached fds are the ones the ioctl installed, in order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct IoctlDone {
    /// 0, or the positive errno.
    pub errno: i32,
    pub arg_len: u32,
    pub nwrites: u32,
    pub nfds: u32,
}

/// Bytes the handler wrote to the caller's memory.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Write {
    pub addr: u64,
    pub len: u64,
}

/// [`kind::MMAP_DONE`] (the BO's memory fd attached on success), [`kind::REFUSED`] (followed by
/// `len` bytes of message) and the head of [`kind::CONTROL_DONE`] (followed by `len` bytes of
/// value: a `u64` for `NOW_NS`/`PENDING_COMMANDS`, [`Stats`], trace JSON, [`Event`]s, options).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Status {
    pub errno: i32,
    pub len: u32,
}

/// `agx_sim::gpu::Stats`, field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Stats {
    pub submits: u64,
    pub commands: u64,
    pub completed: u64,
    pub faults: u64,
    pub timeouts: u64,
    pub recoveries: u64,
    pub replays: u64,
    pub killed: u64,
    pub cancelled: u64,
    pub recovery_ns: u64,
    pub recovery_span_ns: u64,
    pub recoveries_closed: u64,
    pub opaque: u64,
}

/// One trace event, followed by `detail_len` bytes of detail.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Event {
    pub ts_ns: u64,
    pub queue: u64,
    pub job: u64,
    /// Index in `agx_sim::trace::EventKind::ALL`.
    pub kind: u32,
    pub detail_len: u32,
}
