//! `DRM_IOCTL_ASAHI_SUBMIT`: validate everything, then queue the commands, attach the out-fence
//! to the out-syncs, and let the GPU run.

use std::sync::Arc;

use agx_uapi::asahi::*;
use rustix::io::Errno;

use crate::cmdbuf::{self, HwCmd};
use crate::config::{StreamMode, MAX_ATTACHMENTS, MAX_COMMANDS_PER_SUBMISSION};
use crate::device::SimFile;
use crate::gpu::exec::Units;
use crate::gpu::{Job, ResultSlot, Sub, Submit, TimestampSlot};
use crate::sync::fence::Fence;
use crate::sync::syncobj::Syncobj;
use crate::trace::EventKind;
use crate::uaccess::{self, Caller};
use agx_uapi::fault_ext as ext;

/// An out-sync resolved to its object.
struct OutSync {
    obj: Arc<Syncobj>,
    point: Option<u64>,
}

pub(crate) fn submit(
    file: &SimFile,
    caller: &dyn Caller,
    a: drm_asahi_submit,
) -> Result<(), Errno> {
    if a.flags != 0 || a.pad != 0 {
        return Err(Errno::INVAL);
    }
    // Copy everything in from user memory first, as the kernel does.
    let n_syncs = (a.in_sync_count as usize)
        .checked_add(a.out_sync_count as usize)
        .ok_or(Errno::INVAL)?;
    let syncs: Vec<drm_asahi_sync> = uaccess::read_user_array(
        caller,
        a.syncs,
        n_syncs,
        core::mem::size_of::<drm_asahi_sync>(),
    )?;
    let mut cmdbuf = vec![0u8; a.cmdbuf_size as usize];
    caller.copy_from_user(&mut cmdbuf, a.cmdbuf)?;
    let cfg = &file.shared.config;
    let opaque_streams = cfg.streams == StreamMode::Opaque;
    let cmds = cmdbuf::parse(
        &cmdbuf,
        MAX_COMMANDS_PER_SUBMISSION,
        MAX_ATTACHMENTS,
        cfg.fault_ext,
    )?;

    // Resolve sync objects (their own lock, never under the device lock).
    let mut in_fences = Vec::with_capacity(a.in_sync_count as usize);
    let mut outs = Vec::with_capacity(a.out_sync_count as usize);
    {
        let table = file.syncobjs.lock().unwrap_or_else(|e| e.into_inner());
        for (i, s) in syncs.iter().enumerate() {
            let point = match s.sync_type {
                DRM_ASAHI_SYNC_SYNCOBJ if s.timeline_value == 0 => None,
                DRM_ASAHI_SYNC_TIMELINE_SYNCOBJ => Some(s.timeline_value),
                _ => return Err(Errno::INVAL),
            };
            let obj = table.get(s.handle)?;
            if i < a.in_sync_count as usize {
                let fence = obj.find_fence(point.unwrap_or(0), 0)?;
                // The scheduler waits on its dependencies with a callback, which enables
                // signalling (and so error propagation through fence arrays) as on Linux.
                fence.enable_signaling();
                in_fences.push(fence);
            } else {
                outs.push(OutSync { obj, point });
            }
        }
    }

    let mut st = file.shared.lock();
    let st = &mut *st;
    let f = st.files.get(&file.id).ok_or(Errno::NODEV)?;
    let qid = *f.queues.get(&a.queue_id).ok_or(Errno::NOENT)?;
    let q = st.gpu.queues.get(&qid).ok_or(Errno::NOENT)?;
    if q.ban.is_some() {
        return Err(Errno::CANCELED);
    }
    // Handles inside commands: result slots and timestamp buffers.
    let mut extras = Vec::with_capacity(cmds.len());
    for c in &cmds {
        let result = match &c.job_info {
            Some(info) if info.result_handle != 0 => {
                let bo = f.bos.get(&info.result_handle).ok_or(Errno::NOENT)?;
                let bytes = cmdbuf::slot_bytes(info);
                let end = info
                    .result_offset
                    .checked_add(bytes as u64)
                    .ok_or(Errno::INVAL)?;
                if end > bo.size {
                    return Err(Errno::INVAL);
                }
                Some(ResultSlot {
                    bo: bo.clone(),
                    offset: info.result_offset,
                    bytes,
                })
            }
            _ => None,
        };
        let ts = |t: drm_asahi_timestamp| -> Result<Option<TimestampSlot>, Errno> {
            if t.handle == 0 {
                return Ok(None);
            }
            let o = f.ts_objects.get(&t.handle).ok_or(Errno::NOENT)?;
            if t.offset as u64 + 8 > o.range {
                return Err(Errno::INVAL);
            }
            Ok(Some(TimestampSlot {
                bo: o.bo.clone(),
                offset: o.offset + t.offset as u64,
            }))
        };
        extras.push((result, ts(c.timestamps.start)?, ts(c.timestamps.end)?));
    }

    // Accepted: nothing below fails.
    let now = st.gpu.now_ns;
    let submit_id = st.gpu.alloc_id();
    let fence = Fence::new();
    st.gpu.submits.insert(
        submit_id,
        Submit {
            remaining: cmds.len(),
            fence: fence.clone(),
            error: 0,
        },
    );
    let in_fences: Arc<[Arc<Fence>]> = in_fences.into();
    let base = st.gpu.queues[&qid].submitted;
    for (c, (result, ts_start, ts_end)) in cmds.into_iter().zip(extras) {
        let jid = st.gpu.alloc_id();
        let q = st.gpu.queues.get_mut(&qid).expect("queue checked");
        let s = c.sub as usize;
        q.submitted[s] += 1;
        let seqno = q.next_seqno;
        q.next_seqno += 1;
        let other = c.sub.other();
        let other_barrier = match other {
            Sub::Render => c.vdm_barrier,
            Sub::Compute => c.cdm_barrier,
        };
        let wait_other = other_barrier.map_or(0, |n| base[other as usize] + n as u64);
        q.pending[s].push_back(jid);
        let units = units_for(&c);
        let info = c.job_info.unwrap_or_default();
        if let Some(slot) = &result {
            let rec = ext::drm_asahi_ext_result {
                seqno,
                ..Default::default()
            };
            slot.bo.gpu().write(
                slot.offset as usize,
                &bytemuck::bytes_of(&rec)[..slot.bytes],
            );
        }
        let job = Job {
            id: jid,
            queue: qid,
            sub: c.sub,
            stream: c.stream,
            units,
            opaque: opaque_streams.then(|| Box::new(c.opaque)),
            stamp: q.submitted[s],
            wait_other,
            in_fences: in_fences.clone(),
            submit: submit_id,
            seqno,
            restartable: info.flags & ext::DRM_ASAHI_EXT_JOB_RESTARTABLE != 0,
            reasons: info.reasons,
            result,
            ts_start,
            ts_end,
            replay_count: 0,
            exec: None,
            run_start_ns: 0,
            first_start_ns: 0,
            inject: None,
            recovering: None,
        };
        let detail = format!(
            "{:?} seqno={seqno} restartable={} reasons={:#x} attachments={}",
            c.sub, job.restartable, job.reasons, c.attachments
        );
        st.gpu.trace.push(now, EventKind::Submit, qid, jid, detail);
        st.gpu.jobs.insert(jid, job);
        st.gpu.stats.commands += 1;
    }
    st.gpu.stats.submits += 1;
    for o in outs {
        match o.point {
            None => o.obj.replace_fence(Some(fence.clone())),
            Some(p) => o.obj.add_point(p, fence.clone()),
        }
    }
    st.gpu.run();
    Ok(())
}

fn units_for(c: &HwCmd) -> Units {
    match c.sub {
        Sub::Render => Units {
            fetch: ext::DRM_ASAHI_EXT_UNIT_VDM,
            access: ext::DRM_ASAHI_EXT_UNIT_FRAGMENT,
        },
        Sub::Compute => Units {
            fetch: ext::DRM_ASAHI_EXT_UNIT_CDM,
            access: ext::DRM_ASAHI_EXT_UNIT_COMPUTE,
        },
    }
}
