//! Decoding a flat cmdbuf back into typed items: the inverse of [`super::encode()`], for tests,
//! traces and the fault suite.
//!
//! Two levels:
//!
//! - [`decode`] / [`Decoder`]: every header with its payload ([`Item`]), as the kernel walks
//!   them. Hardware payloads shorter than the struct are zero-extended (the uAPI allows it);
//!   longer ones must have zero extra bytes.
//! - [`decode_commands`]: hardware commands only ([`DecodedCommand`]), each with the attachment
//!   lists in force for it and the job info that applies to it.
//!
//! Decoding checks structure (truncation, unknown types, attachment sizes, job info placement),
//! not values: barriers and field values are returned as found.

use agx_uapi::asahi::{
    drm_asahi_attachment, drm_asahi_cmd_compute, drm_asahi_cmd_header, drm_asahi_cmd_render,
    DRM_ASAHI_CMD_COMPUTE, DRM_ASAHI_CMD_RENDER, DRM_ASAHI_SET_COMPUTE_ATTACHMENTS,
    DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS, DRM_ASAHI_SET_VERTEX_ATTACHMENTS,
};
use agx_uapi::fault_ext::{drm_asahi_ext_job_info, DRM_ASAHI_CMD_EXT_JOB_INFO};
use bytemuck::{bytes_of, Pod};

use super::{Attachment, CommandKind, ComputeDesc, RenderDesc, ATTACHMENT_SIZE};

const HEADER_SIZE: usize = core::mem::size_of::<drm_asahi_cmd_header>();

/// Why a cmdbuf cannot be decoded. Offsets are those of the offending header.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than a header left.
    #[error("truncated header at offset {offset}: {available} bytes left")]
    TruncatedHeader {
        /// Offset of the partial header.
        offset: usize,
        /// Bytes left.
        available: usize,
    },
    /// The header's `size` runs past the end of the buffer.
    #[error("command at offset {offset}: payload of {size} bytes, only {available} left")]
    TruncatedPayload {
        /// Offset of the header.
        offset: usize,
        /// `size` from the header.
        size: usize,
        /// Bytes after the header.
        available: usize,
    },
    /// A `cmd_type` neither upstream nor the extension defines.
    #[error("command at offset {offset}: unknown type {cmd_type:#x}")]
    UnknownCommandType {
        /// Offset of the header.
        offset: usize,
        /// The type.
        cmd_type: u16,
    },
    /// An attachment command whose size is not a multiple of 24.
    #[error("attachment command at offset {offset}: size {size} is not a multiple of 24")]
    BadAttachmentSize {
        /// Offset of the header.
        offset: usize,
        /// `size` from the header.
        size: usize,
    },
    /// A payload longer than its struct with non-zero bytes past it.
    #[error("command at offset {offset}: non-zero bytes past the payload struct")]
    NonZeroTail {
        /// Offset of the header.
        offset: usize,
    },
    /// A job info in a cmdbuf the driver encoded: job infos carry the winsys' result slots, so
    /// only the winsys writes them.
    #[error("command at offset {offset}: a job info in a driver-encoded cmdbuf")]
    DriverJobInfo {
        /// Offset of the job info's header.
        offset: usize,
    },
    /// A job info not followed by a hardware command (another job info comes first, or the
    /// buffer ends).
    #[error("job info at offset {offset} applies to no hardware command")]
    DanglingJobInfo {
        /// Offset of the job info's header.
        offset: usize,
    },
}

/// Which attachment list an attachment command sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttachmentTarget {
    /// `DRM_ASAHI_SET_VERTEX_ATTACHMENTS`.
    Vertex,
    /// `DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS`.
    Fragment,
    /// `DRM_ASAHI_SET_COMPUTE_ATTACHMENTS`.
    Compute,
}

/// A decoded payload.
#[derive(Clone, Debug)]
pub enum Payload {
    /// `DRM_ASAHI_CMD_RENDER`.
    Render(drm_asahi_cmd_render),
    /// `DRM_ASAHI_CMD_COMPUTE`.
    Compute(drm_asahi_cmd_compute),
    /// `DRM_ASAHI_SET_*_ATTACHMENTS`.
    Attachments(AttachmentTarget, Vec<drm_asahi_attachment>),
    /// `DRM_ASAHI_CMD_EXT_JOB_INFO`.
    JobInfo(drm_asahi_ext_job_info),
}

fn same_bytes<T: Pod>(a: &T, b: &T) -> bool {
    bytes_of(a) == bytes_of(b)
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Render(a), Self::Render(b)) => same_bytes(a, b),
            (Self::Compute(a), Self::Compute(b)) => same_bytes(a, b),
            (Self::Attachments(ta, a), Self::Attachments(tb, b)) => ta == tb && same_list(a, b),
            (Self::JobInfo(a), Self::JobInfo(b)) => same_bytes(a, b),
            _ => false,
        }
    }
}

impl Eq for Payload {}

/// One header and its payload.
#[derive(Clone, Debug)]
pub struct Item {
    /// Offset of the header in the buffer.
    pub offset: usize,
    /// The header as found.
    pub header: drm_asahi_cmd_header,
    /// The payload.
    pub payload: Payload,
}

impl PartialEq for Item {
    fn eq(&self, other: &Self) -> bool {
        self.offset == other.offset
            && same_bytes(&self.header, &other.header)
            && self.payload == other.payload
    }
}

impl Eq for Item {}

impl Item {
    /// Whether this is a hardware command (render or compute).
    pub fn is_hardware(&self) -> bool {
        matches!(self.payload, Payload::Render(_) | Payload::Compute(_))
    }
}

/// Reads `T` from `bytes`, zero-extending a short payload; `None` when bytes past `T` are not 0.
fn payload<T: Pod>(bytes: &[u8]) -> Option<T> {
    let n = core::mem::size_of::<T>();
    if bytes.len() > n && bytes[n..].iter().any(|&b| b != 0) {
        return None;
    }
    let mut v = T::zeroed();
    let m = n.min(bytes.len());
    bytemuck::bytes_of_mut(&mut v)[..m].copy_from_slice(&bytes[..m]);
    Some(v)
}

/// Iterator over the items of a cmdbuf; stops after the first error.
#[derive(Clone, Debug)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> Decoder<'a> {
    /// Decodes `buf` from its start.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            offset: 0,
            failed: false,
        }
    }

    fn next_item(&mut self) -> Result<Item, DecodeError> {
        let offset = self.offset;
        let rest = &self.buf[offset..];
        let Some(hdr_bytes) = rest.get(..HEADER_SIZE) else {
            return Err(DecodeError::TruncatedHeader {
                offset,
                available: rest.len(),
            });
        };
        let header: drm_asahi_cmd_header = bytemuck::pod_read_unaligned(hdr_bytes);
        let size = usize::from(header.size);
        let Some(body) = rest[HEADER_SIZE..].get(..size) else {
            return Err(DecodeError::TruncatedPayload {
                offset,
                size,
                available: rest.len() - HEADER_SIZE,
            });
        };
        let tail = DecodeError::NonZeroTail { offset };
        let target = match header.cmd_type {
            DRM_ASAHI_SET_VERTEX_ATTACHMENTS => Some(AttachmentTarget::Vertex),
            DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS => Some(AttachmentTarget::Fragment),
            DRM_ASAHI_SET_COMPUTE_ATTACHMENTS => Some(AttachmentTarget::Compute),
            _ => None,
        };
        let payload = match header.cmd_type {
            DRM_ASAHI_CMD_RENDER => Payload::Render(payload(body).ok_or(tail)?),
            DRM_ASAHI_CMD_COMPUTE => Payload::Compute(payload(body).ok_or(tail)?),
            DRM_ASAHI_CMD_EXT_JOB_INFO => Payload::JobInfo(payload(body).ok_or(tail)?),
            _ if target.is_some() => {
                if size % ATTACHMENT_SIZE != 0 {
                    return Err(DecodeError::BadAttachmentSize { offset, size });
                }
                let list = body
                    .chunks_exact(ATTACHMENT_SIZE)
                    .map(bytemuck::pod_read_unaligned)
                    .collect();
                Payload::Attachments(target.unwrap_or(AttachmentTarget::Vertex), list)
            }
            cmd_type => return Err(DecodeError::UnknownCommandType { offset, cmd_type }),
        };
        self.offset = offset + HEADER_SIZE + size;
        Ok(Item {
            offset,
            header,
            payload,
        })
    }
}

impl Iterator for Decoder<'_> {
    type Item = Result<Item, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.buf.len() {
            return None;
        }
        let r = self.next_item();
        self.failed = r.is_err();
        Some(r)
    }
}

/// Every item of `buf`, in order.
pub fn decode(buf: &[u8]) -> Result<Vec<Item>, DecodeError> {
    Decoder::new(buf).collect()
}

/// The hardware payload of a [`DecodedCommand`].
#[derive(Clone, Debug)]
pub enum Hardware {
    /// A render command and the vertex and fragment attachment lists in force for it.
    Render {
        /// The payload.
        cmd: drm_asahi_cmd_render,
        /// Vertex attachments in force.
        vertex_attachments: Vec<drm_asahi_attachment>,
        /// Fragment attachments in force.
        fragment_attachments: Vec<drm_asahi_attachment>,
    },
    /// A compute command and the compute attachment list in force for it.
    Compute {
        /// The payload.
        cmd: drm_asahi_cmd_compute,
        /// Compute attachments in force.
        attachments: Vec<drm_asahi_attachment>,
    },
}

fn same_list(a: &[drm_asahi_attachment], b: &[drm_asahi_attachment]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_bytes(x, y))
}

impl PartialEq for Hardware {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Self::Render {
                    cmd: a,
                    vertex_attachments: va,
                    fragment_attachments: fa,
                },
                Self::Render {
                    cmd: b,
                    vertex_attachments: vb,
                    fragment_attachments: fb,
                },
            ) => same_bytes(a, b) && same_list(va, vb) && same_list(fa, fb),
            (
                Self::Compute {
                    cmd: a,
                    attachments: la,
                },
                Self::Compute {
                    cmd: b,
                    attachments: lb,
                },
            ) => same_bytes(a, b) && same_list(la, lb),
            _ => false,
        }
    }
}

impl Eq for Hardware {}

/// One hardware command of a cmdbuf with its context.
#[derive(Clone, Debug)]
pub struct DecodedCommand {
    /// Offset of its header.
    pub offset: usize,
    /// Its header (barriers as encoded).
    pub header: drm_asahi_cmd_header,
    /// Payload and attachments in force.
    pub hardware: Hardware,
    /// The job info right before it (possibly with attachment commands in between), if any.
    pub job_info: Option<drm_asahi_ext_job_info>,
}

impl PartialEq for DecodedCommand {
    fn eq(&self, other: &Self) -> bool {
        self.offset == other.offset
            && same_bytes(&self.header, &other.header)
            && self.hardware == other.hardware
            && match (&self.job_info, &other.job_info) {
                (Some(a), Some(b)) => same_bytes(a, b),
                (None, None) => true,
                _ => false,
            }
    }
}

impl Eq for DecodedCommand {}

fn lift(list: &[drm_asahi_attachment]) -> Vec<Attachment> {
    list.iter()
        .map(|a| Attachment::new(a.pointer, a.size))
        .collect()
}

impl DecodedCommand {
    /// The render payload, if it is a render command.
    pub fn render(&self) -> Option<&drm_asahi_cmd_render> {
        match &self.hardware {
            Hardware::Render { cmd, .. } => Some(cmd),
            Hardware::Compute { .. } => None,
        }
    }

    /// The compute payload, if it is a compute command.
    pub fn compute(&self) -> Option<&drm_asahi_cmd_compute> {
        match &self.hardware {
            Hardware::Compute { cmd, .. } => Some(cmd),
            Hardware::Render { .. } => None,
        }
    }

    /// The descriptor this command encodes, attachments included (their `pad`/`flags` dropped),
    /// without an access description.
    pub fn to_kind(&self) -> CommandKind {
        match &self.hardware {
            Hardware::Render {
                cmd,
                vertex_attachments,
                fragment_attachments,
            } => {
                let mut d = RenderDesc::from_raw(cmd);
                d.vertex_attachments = lift(vertex_attachments);
                d.fragment_attachments = lift(fragment_attachments);
                CommandKind::Render(d)
            }
            Hardware::Compute { cmd, attachments } => {
                let mut d = ComputeDesc::from_raw(cmd);
                d.attachments = lift(attachments);
                CommandKind::Compute(d)
            }
        }
    }
}

/// The hardware commands of `buf`, each with the attachment lists in force (all empty at the
/// start of the buffer, as at the start of a submit) and its job info.
pub fn decode_commands(buf: &[u8]) -> Result<Vec<DecodedCommand>, DecodeError> {
    let mut out = Vec::new();
    let mut lists: [Vec<drm_asahi_attachment>; 3] = Default::default();
    let mut pending: Option<(usize, drm_asahi_ext_job_info)> = None;
    for item in Decoder::new(buf) {
        let item = item?;
        let hardware = match item.payload {
            Payload::Attachments(target, list) => {
                lists[target as usize] = list;
                continue;
            }
            Payload::JobInfo(info) => {
                if let Some((offset, _)) = pending {
                    return Err(DecodeError::DanglingJobInfo { offset });
                }
                pending = Some((item.offset, info));
                continue;
            }
            Payload::Render(cmd) => Hardware::Render {
                cmd,
                vertex_attachments: lists[AttachmentTarget::Vertex as usize].clone(),
                fragment_attachments: lists[AttachmentTarget::Fragment as usize].clone(),
            },
            Payload::Compute(cmd) => Hardware::Compute {
                cmd,
                attachments: lists[AttachmentTarget::Compute as usize].clone(),
            },
        };
        out.push(DecodedCommand {
            offset: item.offset,
            header: item.header,
            hardware,
            job_info: pending.take().map(|(_, info)| info),
        });
    }
    if let Some((offset, _)) = pending {
        return Err(DecodeError::DanglingJobInfo { offset });
    }
    Ok(out)
}
