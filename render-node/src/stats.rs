//! `AGX_RENDER_NODE_STATS=PATH`: what the node saw of the program's submits, for experiments on
//! the program (not for the program): `PATH.<pid>` holds, as one JSON object, how many
//! `DRM_IOCTL_ASAHI_SUBMIT`s the process made, how many the device accepted, how many hardware
//! commands (render, compute) those carried, and how many of the commands a job info right
//! before them marked restartable (`DRM_ASAHI_EXT_JOB_RESTARTABLE`): a driver's tagging, counted
//! where the kernel would see it. The file is rewritten after every submit, so it is there even
//! when the program aborts later; a process that never submits writes none.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use agx_sim::uaccess::{Caller, InProcess};
use agx_uapi::asahi::{
    drm_asahi_cmd_header, drm_asahi_submit, DRM_ASAHI_CMD_COMPUTE, DRM_ASAHI_CMD_RENDER,
};
use agx_uapi::fault_ext::{
    drm_asahi_ext_job_info, DRM_ASAHI_CMD_EXT_JOB_INFO, DRM_ASAHI_EXT_JOB_RESTARTABLE,
};

/// The counts, and the file they go to.
#[derive(Debug)]
pub struct SubmitStats {
    path: PathBuf,
    submits: AtomicU64,
    accepted: AtomicU64,
    commands: AtomicU64,
    restartable: AtomicU64,
}

impl SubmitStats {
    /// Counts for `PATH.<pid>`, `path` being `PATH`.
    pub fn new(path: PathBuf) -> SubmitStats {
        SubmitStats {
            path,
            submits: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            restartable: AtomicU64::new(0),
        }
    }

    /// A SUBMIT whose argument bytes are `arg` went to the device (`accepted`: it succeeded):
    /// counts it, and its commands when accepted, and rewrites the file.
    pub fn submitted(&self, arg: &[u8], accepted: bool) {
        self.submits.fetch_add(1, Ordering::Relaxed);
        if accepted {
            self.accepted.fetch_add(1, Ordering::Relaxed);
            if let Some(submit) = arg.get(..size_of::<drm_asahi_submit>()) {
                let submit: drm_asahi_submit = bytemuck::pod_read_unaligned(submit);
                // The cmdbuf is the program's memory, in this process.
                let mut buf = vec![0u8; submit.cmdbuf_size as usize];
                if InProcess.copy_from_user(&mut buf, submit.cmdbuf).is_ok() {
                    let (commands, restartable) = count(&buf);
                    self.commands.fetch_add(commands, Ordering::Relaxed);
                    self.restartable.fetch_add(restartable, Ordering::Relaxed);
                }
            }
        }
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{}", std::process::id()));
        if let Err(e) = std::fs::write(&name, format!("{}\n", self.json())) {
            eprintln!(
                "agx-render-node: AGX_RENDER_NODE_STATS: {}: {e}",
                self.path.display()
            );
        }
    }

    /// The counts as one JSON object.
    pub fn json(&self) -> String {
        format!(
            "{{\"submits\":{},\"accepted\":{},\"commands\":{},\"restartable\":{}}}",
            self.submits.load(Ordering::Relaxed),
            self.accepted.load(Ordering::Relaxed),
            self.commands.load(Ordering::Relaxed),
            self.restartable.load(Ordering::Relaxed),
        )
    }
}

/// The hardware commands of a cmdbuf, and how many of them a job info right before them marks
/// restartable.
fn count(buf: &[u8]) -> (u64, u64) {
    const HEADER: usize = size_of::<drm_asahi_cmd_header>();
    let (mut commands, mut restartable, mut tagged) = (0, 0, false);
    let mut off = 0;
    while off + HEADER <= buf.len() {
        let h: drm_asahi_cmd_header = bytemuck::pod_read_unaligned(&buf[off..off + HEADER]);
        let body = &buf[off + HEADER..(off + HEADER + h.size as usize).min(buf.len())];
        match h.cmd_type {
            DRM_ASAHI_CMD_EXT_JOB_INFO => {
                let mut info = drm_asahi_ext_job_info::default();
                let n = body.len().min(size_of_val(&info));
                bytemuck::bytes_of_mut(&mut info)[..n].copy_from_slice(&body[..n]);
                tagged = info.flags & DRM_ASAHI_EXT_JOB_RESTARTABLE != 0;
            }
            DRM_ASAHI_CMD_RENDER | DRM_ASAHI_CMD_COMPUTE => {
                commands += 1;
                restartable += u64::from(tagged);
                tagged = false;
            }
            _ => {}
        }
        off += HEADER + h.size as usize;
    }
    (commands, restartable)
}

#[cfg(test)]
mod tests {
    use agx_uapi::asahi::*;

    use super::*;

    fn push(buf: &mut Vec<u8>, cmd_type: u16, body: &[u8]) {
        let h = drm_asahi_cmd_header {
            cmd_type,
            size: body.len() as u16,
            vdm_barrier: DRM_ASAHI_BARRIER_NONE,
            cdm_barrier: DRM_ASAHI_BARRIER_NONE,
        };
        buf.extend_from_slice(bytemuck::bytes_of(&h));
        buf.extend_from_slice(body);
    }

    fn info(flags: u32) -> drm_asahi_ext_job_info {
        drm_asahi_ext_job_info {
            flags,
            ..Default::default()
        }
    }

    #[test]
    fn a_command_counts_as_restartable_only_behind_a_restartable_job_info() {
        let render = drm_asahi_cmd_render::default();
        let compute = drm_asahi_cmd_compute::default();
        let mut buf = Vec::new();
        // Tagged render, untagged compute (the tag is for the next command only), a job info
        // without the flag, a tagged compute.
        let tag = info(DRM_ASAHI_EXT_JOB_RESTARTABLE);
        push(
            &mut buf,
            DRM_ASAHI_CMD_EXT_JOB_INFO,
            bytemuck::bytes_of(&tag),
        );
        push(&mut buf, DRM_ASAHI_CMD_RENDER, bytemuck::bytes_of(&render));
        push(
            &mut buf,
            DRM_ASAHI_CMD_COMPUTE,
            bytemuck::bytes_of(&compute),
        );
        push(
            &mut buf,
            DRM_ASAHI_CMD_EXT_JOB_INFO,
            bytemuck::bytes_of(&info(0)),
        );
        push(&mut buf, DRM_ASAHI_CMD_RENDER, bytemuck::bytes_of(&render));
        push(
            &mut buf,
            DRM_ASAHI_CMD_EXT_JOB_INFO,
            bytemuck::bytes_of(&tag),
        );
        push(
            &mut buf,
            DRM_ASAHI_CMD_COMPUTE,
            bytemuck::bytes_of(&compute),
        );
        assert_eq!(count(&buf), (4, 2));
        // A truncated tail is not a command.
        assert_eq!(count(&buf[..buf.len() - size_of_val(&compute) - 4]), (3, 1));
        assert_eq!(count(&[]), (0, 0));
    }
}
