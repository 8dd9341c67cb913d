//! Cmdbufs a driver encoded itself (Mesa builds its `drm_asahi_cmd_*` payloads, attachment
//! commands and barriers as the uAPI defines them): checked, and copied with a job info
//! (fault-report extension) inserted right before each hardware command, so the driver's
//! encoding stays exactly as it made it.
//!
//! The walk checks structure only, like [`super::decode`]: every header and payload inside the
//! buffer, known command types, attachment sizes a multiple of 24. Job infos belong to the
//! winsys (they carry its result slots), so a driver cmdbuf holding one is refused. Payload
//! values and barriers are the kernel's to check.

use agx_uapi::asahi::{
    drm_asahi_cmd_header, DRM_ASAHI_CMD_COMPUTE, DRM_ASAHI_CMD_RENDER,
    DRM_ASAHI_SET_COMPUTE_ATTACHMENTS, DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS,
    DRM_ASAHI_SET_VERTEX_ATTACHMENTS,
};
use agx_uapi::fault_ext as ext;
use bytemuck::bytes_of;

use super::decode::DecodeError;
use super::{Subqueue, ATTACHMENT_SIZE};

const HEADER_SIZE: usize = core::mem::size_of::<drm_asahi_cmd_header>();

/// One item of a driver cmdbuf, as the walk sees it.
enum Kind {
    Hardware(Subqueue),
    Attachments,
}

/// Walks `buf`, calling `item(offset, end, kind)` for each header; stops at the first error
/// (its own or `item`'s).
fn walk<E: From<DecodeError>>(
    buf: &[u8],
    mut item: impl FnMut(usize, usize, Kind) -> Result<(), E>,
) -> Result<(), E> {
    let mut offset = 0;
    while offset < buf.len() {
        let rest = &buf[offset..];
        let Some(hdr) = rest.get(..HEADER_SIZE) else {
            return Err(DecodeError::TruncatedHeader {
                offset,
                available: rest.len(),
            }
            .into());
        };
        let header: drm_asahi_cmd_header = bytemuck::pod_read_unaligned(hdr);
        let size = usize::from(header.size);
        if rest.len() - HEADER_SIZE < size {
            return Err(DecodeError::TruncatedPayload {
                offset,
                size,
                available: rest.len() - HEADER_SIZE,
            }
            .into());
        }
        let kind = match header.cmd_type {
            DRM_ASAHI_CMD_RENDER => Kind::Hardware(Subqueue::Render),
            DRM_ASAHI_CMD_COMPUTE => Kind::Hardware(Subqueue::Compute),
            DRM_ASAHI_SET_VERTEX_ATTACHMENTS
            | DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS
            | DRM_ASAHI_SET_COMPUTE_ATTACHMENTS => {
                if size % ATTACHMENT_SIZE != 0 {
                    return Err(DecodeError::BadAttachmentSize { offset, size }.into());
                }
                Kind::Attachments
            }
            ext::DRM_ASAHI_CMD_EXT_JOB_INFO => {
                return Err(DecodeError::DriverJobInfo { offset }.into())
            }
            cmd_type => return Err(DecodeError::UnknownCommandType { offset, cmd_type }.into()),
        };
        let end = offset + HEADER_SIZE + size;
        item(offset, end, kind)?;
        offset = end;
    }
    Ok(())
}

/// The subqueue of each hardware command of a driver cmdbuf, in order.
pub fn hardware_commands(buf: &[u8]) -> Result<Vec<Subqueue>, DecodeError> {
    let mut v = Vec::new();
    walk(buf, |_, _, k| {
        if let Kind::Hardware(q) = k {
            v.push(q)
        }
        Ok::<_, DecodeError>(())
    })?;
    Ok(v)
}

/// The job info to put before a hardware command, given its index and subqueue.
pub type JobInfoFn<'a, E> =
    dyn FnMut(usize, Subqueue) -> Result<Option<ext::drm_asahi_ext_job_info>, E> + 'a;

/// Copies the driver cmdbuf `buf` into `out` (cleared first; no allocation when its capacity
/// suffices), with the job info `job_info(i, subqueue)` (if any) inserted right before the
/// `i`-th hardware command. Returns the number of hardware commands. On error (the walk's or
/// `job_info`'s) `out` holds a partial copy that must not be submitted.
pub fn tag<E: From<DecodeError>>(
    buf: &[u8],
    job_info: &mut JobInfoFn<'_, E>,
    out: &mut Vec<u8>,
) -> Result<usize, E> {
    out.clear();
    let mut n = 0;
    walk(buf, |offset, end, kind| -> Result<(), E> {
        if let Kind::Hardware(q) = kind {
            if let Some(info) = job_info(n, q)? {
                let hdr = drm_asahi_cmd_header {
                    cmd_type: ext::DRM_ASAHI_CMD_EXT_JOB_INFO,
                    size: core::mem::size_of::<ext::drm_asahi_ext_job_info>() as u16,
                    vdm_barrier: agx_uapi::asahi::DRM_ASAHI_BARRIER_NONE,
                    cdm_barrier: agx_uapi::asahi::DRM_ASAHI_BARRIER_NONE,
                };
                out.extend_from_slice(bytes_of(&hdr));
                out.extend_from_slice(bytes_of(&info));
            }
            n += 1;
        }
        out.extend_from_slice(&buf[offset..end]);
        Ok(())
    })?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::decode::{decode_commands, Hardware};
    use agx_uapi::asahi::{drm_asahi_attachment, drm_asahi_cmd_compute, drm_asahi_cmd_render};

    fn push<T: bytemuck::Pod>(buf: &mut Vec<u8>, cmd_type: u16, vdm: u16, cdm: u16, body: &[T]) {
        let bytes: &[u8] = bytemuck::cast_slice(body);
        let hdr = drm_asahi_cmd_header {
            cmd_type,
            size: bytes.len() as u16,
            vdm_barrier: vdm,
            cdm_barrier: cdm,
        };
        buf.extend_from_slice(bytes_of(&hdr));
        buf.extend_from_slice(bytes);
    }

    /// What Gallium asahi submits for a batch with compute and render work.
    fn gallium_batch() -> Vec<u8> {
        let mut b = Vec::new();
        let compute = drm_asahi_cmd_compute {
            cdm_ctrl_stream_base: 0x1_0000_4000,
            cdm_ctrl_stream_end: 0x1_0000_4100,
            ..Default::default()
        };
        push(&mut b, DRM_ASAHI_CMD_COMPUTE, 0, 0, &[compute]);
        let att = drm_asahi_attachment {
            pointer: 0x2_0000_0000,
            size: 0x4000,
            ..Default::default()
        };
        push(
            &mut b,
            DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS,
            0xffff,
            0xffff,
            &[att, att],
        );
        let render = drm_asahi_cmd_render {
            width_px: 64,
            height_px: 64,
            layers: 1,
            samples: 1,
            ..Default::default()
        };
        push(&mut b, DRM_ASAHI_CMD_RENDER, 0xffff, 1, &[render]);
        b
    }

    fn info(flags: u32) -> ext::drm_asahi_ext_job_info {
        ext::drm_asahi_ext_job_info {
            flags,
            result_handle: 7,
            ..Default::default()
        }
    }

    #[test]
    fn job_infos_go_right_before_each_hardware_command() {
        let buf = gallium_batch();
        assert_eq!(
            hardware_commands(&buf).unwrap(),
            [Subqueue::Compute, Subqueue::Render]
        );
        let mut out = Vec::new();
        let mut seen = Vec::new();
        let n = tag::<DecodeError>(
            &buf,
            &mut |i, q| {
                seen.push((i, q));
                Ok(Some(info(i as u32)))
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(seen, [(0, Subqueue::Compute), (1, Subqueue::Render)]);
        assert_eq!(out.len(), buf.len() + 2 * 32);
        let cmds = decode_commands(&out).unwrap();
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[0].job_info.unwrap().flags, 0);
        assert_eq!(cmds[1].job_info.unwrap().flags, 1);
        // The driver's encoding is untouched: barriers, payloads, the attachment list.
        assert_eq!(cmds[1].header.cdm_barrier, 1);
        assert_eq!(cmds[1].header.vdm_barrier, 0xffff);
        match &cmds[1].hardware {
            Hardware::Render {
                cmd,
                fragment_attachments,
                ..
            } => {
                assert_eq!(cmd.width_px, 64);
                assert_eq!(fragment_attachments.len(), 2);
            }
            h => panic!("{h:?}"),
        }
        // No job info wanted: a byte-for-byte copy.
        tag::<DecodeError>(&buf, &mut |_, _| Ok(None), &mut out).unwrap();
        assert_eq!(out, buf);
    }

    #[test]
    fn malformed_driver_cmdbufs_are_refused() {
        let buf = gallium_batch();
        let mut out = Vec::new();
        let cut = &buf[..buf.len() - 8];
        assert!(matches!(
            tag::<DecodeError>(cut, &mut |_, _| Ok(None), &mut out),
            Err(DecodeError::TruncatedPayload { .. })
        ));
        assert!(matches!(
            hardware_commands(&buf[..4]),
            Err(DecodeError::TruncatedHeader { .. })
        ));
        let mut own = Vec::new();
        push(
            &mut own,
            ext::DRM_ASAHI_CMD_EXT_JOB_INFO,
            0xffff,
            0xffff,
            &[info(1)],
        );
        own.extend_from_slice(&buf);
        assert_eq!(
            hardware_commands(&own),
            Err(DecodeError::DriverJobInfo { offset: 0 })
        );
        let mut bad = Vec::new();
        push(
            &mut bad,
            DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS,
            0xffff,
            0xffff,
            &[0u64; 2],
        );
        assert_eq!(
            hardware_commands(&bad),
            Err(DecodeError::BadAttachmentSize {
                offset: 0,
                size: 16
            })
        );
        let mut unknown = Vec::new();
        push(&mut unknown, 0x42, 0, 0, &[0u64]);
        assert!(matches!(
            hardware_commands(&unknown),
            Err(DecodeError::UnknownCommandType { cmd_type: 0x42, .. })
        ));
    }
}
