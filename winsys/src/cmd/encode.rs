//! Encoding a range of a [`CommandBuffer`] into the flat cmdbuf of one `SUBMIT` ioctl.
//!
//! For each command, in order:
//!
//! 1. `DRM_ASAHI_SET_{VERTEX,FRAGMENT}_ATTACHMENTS` (render) or
//!    `DRM_ASAHI_SET_COMPUTE_ATTACHMENTS` (compute), only when the list differs from the one in
//!    force. Attachment state is per submit: at the start of every encoded range all three lists
//!    are empty, so a command with no attachments at the start of a range needs nothing.
//!    Payload size `n * 24`, barriers `NONE`.
//! 2. `DRM_ASAHI_CMD_EXT_JOB_INFO` (fault-report extension), when `job_info(i)` gives a slot:
//!    barriers `NONE`, flags `RESTARTABLE` or the verdict's reasons, plus the
//!    [`ResultRecord`] flag of the command buffer. It sits right before the hardware command
//!    it applies to.
//! 3. The hardware command: header (`size` = payload bytes, without the header) and the
//!    `drm_asahi_cmd_render` (240 bytes) or `drm_asahi_cmd_compute` (64 bytes) payload.
//!
//! Every item is a multiple of 8 bytes, so every header and payload stays 8-byte aligned
//! relative to the start of the buffer.
//!
//! # Barriers
//!
//! The upstream header says: "A barrier of 0 waits on commands submitted to the respective
//! subqueue in previous submit ioctls. A barrier of N waits on N previous commands on the
//! subqueue within the current submit ioctl", with the example "1: This waits on the first
//! render command in the submit", and `DRM_ASAHI_BARRIER_NONE` waits for nothing. So N counts
//! from the **start of the submit**: it names the N-th command of that subqueue in the submit,
//! and since a subqueue completes in order, waiting for it also waits for the N - 1 before it and
//! for everything submitted earlier. N can be at most the number of commands of that subqueue
//! placed before the command in the submit (the kernel rejects larger values).
//!
//! For command `i` of the encoded range `s..e` and subqueue `q`, [`Dep`] becomes:
//!
//! - [`Dep::None`] -> `DRM_ASAHI_BARRIER_NONE`;
//! - [`Dep::PreviousSubmits`] -> `0`;
//! - [`Dep::Through(j)`](Dep::Through) -> the number of `q`'s commands with index in `s..=j`,
//!   i.e. the 1-based position within this submit's `q` commands of the last `q` command at or
//!   before `j`. When that number is 0 (`j < s`: the command is in an earlier range, already
//!   submitted; or no `q` command between `s` and `j`) it is `0`, "previous submits", which
//!   covers the earlier ranges because they were submitted earlier on the same queue.
//!
//! Splitting therefore never weakens a dependency; it can only strengthen one (a `0` in a later
//! range also waits for the earlier ranges' commands after `j`, and `PreviousSubmits` also waits
//! for the earlier ranges of the same command buffer). The default ordering ("everything
//! before") is `Through(i - 1)` on both subqueues: the count of each subqueue's commands placed
//! before `i` in the range, or `0` when there is none.
//!
//! The barrier on a command's own subqueue is implicit in the kernel (subqueues are in order);
//! it is still encoded from the [`Deps`](super::Deps) as given.

use core::ops::Range;

use agx_uapi::asahi::{
    drm_asahi_attachment, drm_asahi_cmd_compute, drm_asahi_cmd_header, drm_asahi_cmd_render,
    DRM_ASAHI_BARRIER_NONE, DRM_ASAHI_CMD_COMPUTE, DRM_ASAHI_CMD_RENDER,
    DRM_ASAHI_SET_COMPUTE_ATTACHMENTS, DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS,
    DRM_ASAHI_SET_VERTEX_ATTACHMENTS,
};
use agx_uapi::fault_ext as ext;
use bytemuck::bytes_of;

use super::{Attachment, CommandBuffer, CommandKind, Dep, Subqueue, ATTACHMENT_SIZE};

const HEADER_SIZE: usize = core::mem::size_of::<drm_asahi_cmd_header>();
const RENDER_SIZE: usize = core::mem::size_of::<drm_asahi_cmd_render>();
const COMPUTE_SIZE: usize = core::mem::size_of::<drm_asahi_cmd_compute>();
const JOB_INFO_SIZE: usize = core::mem::size_of::<ext::drm_asahi_ext_job_info>();

/// The attachment command types, indexed like [`super::Command::attachments`].
const SET_ATTACHMENTS: [u16; 3] = [
    DRM_ASAHI_SET_VERTEX_ATTACHMENTS,
    DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS,
    DRM_ASAHI_SET_COMPUTE_ATTACHMENTS,
];

/// Where the kernel writes one command's result record (fault-report extension).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct JobInfoSlot {
    /// GEM handle of the result BO (0: job info without a record, e.g. only to pass
    /// `RESTARTABLE`).
    pub handle: u32,
    /// Byte offset of the slot in the BO (8-byte aligned, [`ResultRecord::size`] bytes).
    pub offset: u64,
}

/// How much of `drm_asahi_ext_result` the kernel writes (one choice per command buffer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ResultRecord {
    /// `DRM_ASAHI_EXT_JOB_STATUS_ONLY`: status, guilt, replay count (16 bytes).
    StatusOnly,
    /// No flag: also the sequence number and the fault (48 bytes).
    #[default]
    Fault,
    /// `DRM_ASAHI_EXT_JOB_TIMESTAMPS`: also GPU start and end times (64 bytes).
    Timestamps,
}

impl ResultRecord {
    /// The `drm_asahi_ext_job_info::flags` bit.
    pub fn flags(self) -> u32 {
        match self {
            Self::StatusOnly => ext::DRM_ASAHI_EXT_JOB_STATUS_ONLY,
            Self::Fault => 0,
            Self::Timestamps => ext::DRM_ASAHI_EXT_JOB_TIMESTAMPS,
        }
    }

    /// Bytes of the slot the kernel writes.
    pub fn size(self) -> usize {
        match self {
            Self::StatusOnly => ext::DRM_ASAHI_EXT_RESULT_STATUS_SIZE,
            Self::Fault => ext::DRM_ASAHI_EXT_RESULT_FAULT_SIZE,
            Self::Timestamps => core::mem::size_of::<ext::drm_asahi_ext_result>(),
        }
    }
}

/// The header barrier for `dep` on subqueue `q`, for a command encoded in a submit whose first
/// command is `start` (see the module documentation).
pub fn barrier(cb: &CommandBuffer, start: usize, q: Subqueue, dep: Dep) -> u16 {
    match dep {
        Dep::None => DRM_ASAHI_BARRIER_NONE,
        Dep::PreviousSubmits => 0,
        Dep::Through(j) if j < start => 0,
        Dep::Through(j) => {
            let n = cb.prefix(q, j + 1) - cb.prefix(q, start);
            // At most MAX_COMMANDS - 1 = 0xFFFD: never NONE.
            n as u16
        }
    }
}

fn header(cmd_type: u16, size: usize, vdm_barrier: u16, cdm_barrier: u16) -> drm_asahi_cmd_header {
    drm_asahi_cmd_header {
        cmd_type,
        size: size as u16,
        vdm_barrier,
        cdm_barrier,
    }
}

/// Writes commands `range` of `cb` as one flat cmdbuf into `out` (cleared first; no allocation
/// when its capacity suffices).
///
/// `job_info(i)` gives the result slot of command `i` (index in `cb`), or `None` for no job info
/// (upstream kernels, or no record wanted). Barriers are computed for a submit made of exactly
/// `range`: see the module documentation. Attachment commands are emitted only when a list
/// changes within the range.
///
/// # Panics
///
/// When `range` is not within `0..cb.len()`.
pub fn encode(
    cb: &CommandBuffer,
    range: Range<usize>,
    job_info: &dyn Fn(usize) -> Option<JobInfoSlot>,
    out: &mut Vec<u8>,
) {
    out.clear();
    let commands = &cb.commands[range.clone()];
    let start = range.start;
    let none: &[Attachment] = &[];
    let mut current = [none; 3];
    for (k, c) in commands.iter().enumerate() {
        let i = start + k;
        for (slot, want) in c.attachments().into_iter().enumerate() {
            let Some(want) = want else { continue };
            if want == current[slot] {
                continue;
            }
            current[slot] = want;
            let hdr = header(
                SET_ATTACHMENTS[slot],
                want.len() * ATTACHMENT_SIZE,
                DRM_ASAHI_BARRIER_NONE,
                DRM_ASAHI_BARRIER_NONE,
            );
            out.extend_from_slice(bytes_of(&hdr));
            for a in want {
                let raw = drm_asahi_attachment {
                    pointer: a.base,
                    size: a.size,
                    pad: 0,
                    flags: 0,
                };
                out.extend_from_slice(bytes_of(&raw));
            }
        }
        if let Some(slot) = job_info(i) {
            let hdr = header(
                ext::DRM_ASAHI_CMD_EXT_JOB_INFO,
                JOB_INFO_SIZE,
                DRM_ASAHI_BARRIER_NONE,
                DRM_ASAHI_BARRIER_NONE,
            );
            let info = ext::drm_asahi_ext_job_info {
                flags: c.verdict.job_info_flags() | cb.record.flags(),
                reasons: c.verdict.job_info_reasons(),
                result_handle: slot.handle,
                pad: 0,
                result_offset: slot.offset,
            };
            out.extend_from_slice(bytes_of(&hdr));
            out.extend_from_slice(bytes_of(&info));
        }
        let vdm = barrier(cb, start, Subqueue::Render, c.deps.render);
        let cdm = barrier(cb, start, Subqueue::Compute, c.deps.compute);
        match &c.kind {
            CommandKind::Render(r) => {
                let hdr = header(DRM_ASAHI_CMD_RENDER, RENDER_SIZE, vdm, cdm);
                out.extend_from_slice(bytes_of(&hdr));
                out.extend_from_slice(bytes_of(&r.to_raw()));
            }
            CommandKind::Compute(cd) => {
                let hdr = header(DRM_ASAHI_CMD_COMPUTE, COMPUTE_SIZE, vdm, cdm);
                out.extend_from_slice(bytes_of(&hdr));
                out.extend_from_slice(bytes_of(&cd.to_raw()));
            }
        }
    }
    debug_assert_eq!(out.len() % HEADER_SIZE, 0);
}
