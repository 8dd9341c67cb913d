//! What an ioctl argument points at: for each command the device implements, the ranges of
//! user memory its handler reads (`IN`) or writes (`OUT`), and the offsets of the fd numbers it
//! takes from or gives to the caller. The client uses this to send along exactly what the
//! handler may touch; the server needs none of it (its handlers only reach what was sent).
//!
//! Arguments are read as the kernel's struct of that number, zero-extended or truncated, as the
//! DRM core does for older and newer struct sizes.

use core::mem::offset_of;

use agx_uapi::asahi::{drm_asahi_get_params, drm_asahi_submit, drm_asahi_sync, drm_asahi_vm_bind};
use agx_uapi::dma_buf::{
    dma_buf_export_sync_file, dma_buf_import_sync_file, DMA_BUF_BASE,
    DMA_BUF_IOCTL_EXPORT_SYNC_FILE, DMA_BUF_IOCTL_IMPORT_SYNC_FILE,
};
use agx_uapi::drm::*;
use agx_uapi::ioctl::{ioc_nr, ioc_type};
use agx_uapi::sync_file::{
    sync_fence_info, sync_file_info, sync_merge_data, SYNC_IOC_FILE_INFO, SYNC_IOC_MAGIC,
    SYNC_IOC_MERGE,
};
use bytemuck::Pod;

/// A range of user memory: address and length.
pub type Range = (u64, u64);

/// What one ioctl argument names outside itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// Memory the handler reads.
    pub inputs: Vec<Range>,
    /// Memory the handler may write.
    pub outputs: Vec<Range>,
    /// Byte offsets in the argument of fd numbers the handler resolves in the caller.
    pub fds_in: Vec<usize>,
    /// Byte offsets in the argument where the handler puts fds it gives the caller.
    pub fds_out: Vec<usize>,
}

fn load<T: Pod>(arg: &[u8]) -> T {
    let mut v = T::zeroed();
    let b = bytemuck::bytes_of_mut(&mut v);
    let n = b.len().min(arg.len());
    b[..n].copy_from_slice(&arg[..n]);
    v
}

/// `count` elements of `size` bytes (a range too large to carry is sent as such, and reading
/// it is the handler's `ENOMEM`, as `kvmalloc` refusing it).
fn array(ptr: u64, count: u64, size: u64) -> Range {
    (ptr, count.saturating_mul(size))
}

/// The shape of `ioctl(fd, cmd, arg)` on a DRM file of the device.
pub fn drm(cmd: u32, arg: &[u8]) -> Shape {
    let mut s = Shape::default();
    if ioc_type(cmd) != DRM_IOCTL_BASE {
        return s;
    }
    const NR_VERSION: u8 = ioc_nr(DRM_IOCTL_VERSION);
    const NR_PRIME_TO_FD: u8 = ioc_nr(DRM_IOCTL_PRIME_HANDLE_TO_FD);
    const NR_PRIME_FROM_FD: u8 = ioc_nr(DRM_IOCTL_PRIME_FD_TO_HANDLE);
    const NR_TO_FD: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD);
    const NR_FROM_FD: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE);
    const NR_WAIT: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_WAIT);
    const NR_RESET: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_RESET);
    const NR_SIGNAL: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_SIGNAL);
    const NR_TL_WAIT: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT);
    const NR_QUERY: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_QUERY);
    const NR_TL_SIGNAL: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL);
    const NR_EVENTFD: u8 = ioc_nr(DRM_IOCTL_SYNCOBJ_EVENTFD);
    const NR_GET_PARAMS: u8 = ioc_nr(agx_uapi::asahi::DRM_IOCTL_ASAHI_GET_PARAMS);
    const NR_VM_BIND: u8 = ioc_nr(agx_uapi::asahi::DRM_IOCTL_ASAHI_VM_BIND);
    const NR_SUBMIT: u8 = ioc_nr(agx_uapi::asahi::DRM_IOCTL_ASAHI_SUBMIT);
    match ioc_nr(cmd) {
        NR_VERSION => {
            let a: drm_version = load(arg);
            for (ptr, len) in [
                (a.name, a.name_len),
                (a.date, a.date_len),
                (a.desc, a.desc_len),
            ] {
                if len > 0 {
                    s.outputs.push((ptr, len));
                }
            }
        }
        NR_PRIME_TO_FD => s.fds_out.push(offset_of!(drm_prime_handle, fd)),
        NR_PRIME_FROM_FD => s.fds_in.push(offset_of!(drm_prime_handle, fd)),
        NR_TO_FD => s.fds_out.push(offset_of!(drm_syncobj_handle, fd)),
        NR_FROM_FD => s.fds_in.push(offset_of!(drm_syncobj_handle, fd)),
        NR_EVENTFD => s.fds_in.push(offset_of!(drm_syncobj_eventfd, fd)),
        NR_WAIT => {
            let a: drm_syncobj_wait = load(arg);
            s.inputs.push(array(a.handles, a.count_handles.into(), 4));
        }
        NR_TL_WAIT => {
            let a: drm_syncobj_timeline_wait = load(arg);
            s.inputs.push(array(a.handles, a.count_handles.into(), 4));
            if a.points != 0 {
                s.inputs.push(array(a.points, a.count_handles.into(), 8));
            }
        }
        NR_RESET | NR_SIGNAL => {
            let a: drm_syncobj_array = load(arg);
            s.inputs.push(array(a.handles, a.count_handles.into(), 4));
        }
        NR_TL_SIGNAL | NR_QUERY => {
            let a: drm_syncobj_timeline_array = load(arg);
            s.inputs.push(array(a.handles, a.count_handles.into(), 4));
            let points = array(a.points, a.count_handles.into(), 8);
            if ioc_nr(cmd) == NR_QUERY {
                s.outputs.push(points);
            } else if a.points != 0 {
                s.inputs.push(points);
            }
        }
        NR_GET_PARAMS => {
            let a: drm_asahi_get_params = load(arg);
            s.outputs.push((a.pointer, a.size));
        }
        NR_VM_BIND => {
            let a: drm_asahi_vm_bind = load(arg);
            s.inputs
                .push(array(a.userptr, a.num_binds.into(), a.stride.into()));
        }
        NR_SUBMIT => {
            let a: drm_asahi_submit = load(arg);
            let n = u64::from(a.in_sync_count) + u64::from(a.out_sync_count);
            let size = core::mem::size_of::<drm_asahi_sync>() as u64;
            s.inputs.push(array(a.syncs, n, size));
            s.inputs.push((a.cmdbuf, a.cmdbuf_size.into()));
        }
        _ => {}
    }
    s.inputs.retain(|r| r.1 > 0);
    s
}

/// The shape of `ioctl(fd, cmd, arg)` on a sync_file or dma-buf the device exported.
pub fn fd(cmd: u32, arg: &[u8]) -> Shape {
    let mut s = Shape::default();
    match (ioc_type(cmd), cmd) {
        (SYNC_IOC_MAGIC, SYNC_IOC_FILE_INFO) => {
            let a: sync_file_info = load(arg);
            if a.num_fences > 0 {
                let size = core::mem::size_of::<sync_fence_info>() as u64;
                s.outputs
                    .push(array(a.sync_fence_info, a.num_fences.into(), size));
            }
        }
        (SYNC_IOC_MAGIC, SYNC_IOC_MERGE) => {
            s.fds_in.push(offset_of!(sync_merge_data, fd2));
            s.fds_out.push(offset_of!(sync_merge_data, fence));
        }
        (DMA_BUF_BASE, DMA_BUF_IOCTL_EXPORT_SYNC_FILE) => {
            s.fds_out.push(offset_of!(dma_buf_export_sync_file, fd))
        }
        (DMA_BUF_BASE, DMA_BUF_IOCTL_IMPORT_SYNC_FILE) => {
            s.fds_in.push(offset_of!(dma_buf_import_sync_file, fd))
        }
        _ => {}
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submit_names_syncs_and_cmdbuf() {
        let a = drm_asahi_submit {
            syncs: 0x1000,
            cmdbuf: 0x2000,
            in_sync_count: 2,
            out_sync_count: 1,
            cmdbuf_size: 100,
            ..Default::default()
        };
        let s = drm(
            agx_uapi::asahi::DRM_IOCTL_ASAHI_SUBMIT,
            bytemuck::bytes_of(&a),
        );
        assert_eq!(s.inputs, vec![(0x1000, 48), (0x2000, 100)]);
        assert!(s.outputs.is_empty() && s.fds_in.is_empty() && s.fds_out.is_empty());
    }

    #[test]
    fn query_reads_handles_and_writes_points() {
        let a = drm_syncobj_timeline_array {
            handles: 0x1000,
            points: 0x3000,
            count_handles: 3,
            flags: 0,
        };
        let s = drm(DRM_IOCTL_SYNCOBJ_QUERY, bytemuck::bytes_of(&a));
        assert_eq!(s.inputs, vec![(0x1000, 12)]);
        assert_eq!(s.outputs, vec![(0x3000, 24)]);
    }

    #[test]
    fn fd_fields() {
        let s = drm(DRM_IOCTL_PRIME_FD_TO_HANDLE, &[0; 12]);
        assert_eq!(s.fds_in, vec![8]);
        let s = fd(SYNC_IOC_MERGE, &[0; 48]);
        assert_eq!((s.fds_in[0], s.fds_out[0]), (32, 36));
        // A huge array is one range (too large to carry), not wrapped.
        let a = drm_asahi_vm_bind {
            num_binds: u32::MAX,
            stride: u32::MAX,
            userptr: 0x1000,
            ..Default::default()
        };
        let s = drm(
            agx_uapi::asahi::DRM_IOCTL_ASAHI_VM_BIND,
            bytemuck::bytes_of(&a),
        );
        assert_eq!(
            s.inputs,
            vec![(0x1000, u64::MAX as u32 as u64 * u32::MAX as u64)]
        );
    }
}
