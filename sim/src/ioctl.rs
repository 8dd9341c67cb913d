//! Handlers of the asahi driver ioctls (and the extension's `QUEUE_GET_STATE`), each validating
//! first, exactly like the kernel's: unknown flags or non-zero padding `EINVAL`, unknown handles
//! `ENOENT`, out-of-range addresses `EINVAL`, bad user pointers `EFAULT`. Nothing changes unless
//! the whole request is valid.

use std::sync::Arc;

use agx_uapi::asahi::*;
use agx_uapi::fault_ext as ext;
use bytemuck::{from_bytes_mut, pod_read_unaligned};
use rustix::io::Errno;

use crate::bo::Bo;
use crate::config::{PAGE_SIZE, VM_END, VM_KERNEL_MIN_SIZE, VM_START};
use crate::device::{SimFile, TsObject};
use crate::gpu::{Queue, Vm};
use crate::uaccess::{self, Caller};
use crate::vm::{Extent, PageTable};

pub(crate) fn driver_ioctl(
    file: &SimFile,
    caller: &dyn Caller,
    cmd: u32,
    arg: &mut [u8],
) -> Result<(), Errno> {
    let fault_ext = file.shared.config.fault_ext;
    match cmd {
        DRM_IOCTL_ASAHI_GET_PARAMS => get_params(file, caller, pod_read_unaligned(arg)),
        DRM_IOCTL_ASAHI_GET_TIME => {
            let a: &mut drm_asahi_get_time = from_bytes_mut(arg);
            if a.flags != 0 {
                return Err(Errno::INVAL);
            }
            a.gpu_timestamp = file.shared.lock().gpu.now_ns;
            Ok(())
        }
        DRM_IOCTL_ASAHI_VM_CREATE => vm_create(file, from_bytes_mut(arg)),
        DRM_IOCTL_ASAHI_VM_DESTROY => vm_destroy(file, pod_read_unaligned(arg)),
        DRM_IOCTL_ASAHI_VM_BIND => vm_bind(file, caller, pod_read_unaligned(arg)),
        DRM_IOCTL_ASAHI_GEM_CREATE => gem_create(file, from_bytes_mut(arg)),
        DRM_IOCTL_ASAHI_GEM_MMAP_OFFSET => {
            let a: &mut drm_asahi_gem_mmap_offset = from_bytes_mut(arg);
            if a.flags != 0 {
                return Err(Errno::INVAL);
            }
            a.offset = file.bo(a.handle)?.mmap_offset();
            Ok(())
        }
        DRM_IOCTL_ASAHI_GEM_BIND_OBJECT => gem_bind_object(file, from_bytes_mut(arg)),
        DRM_IOCTL_ASAHI_QUEUE_CREATE => queue_create(file, from_bytes_mut(arg)),
        DRM_IOCTL_ASAHI_QUEUE_DESTROY => {
            let a: drm_asahi_queue_destroy = pod_read_unaligned(arg);
            if a.pad != 0 {
                return Err(Errno::INVAL);
            }
            let mut st = file.shared.lock();
            let qid = st
                .files
                .get_mut(&file.id)
                .and_then(|f| f.queues.remove(&a.queue_id))
                .ok_or(Errno::NOENT)?;
            st.gpu.destroy_queue(qid);
            st.gpu.run();
            Ok(())
        }
        DRM_IOCTL_ASAHI_SUBMIT => crate::submit::submit(file, caller, pod_read_unaligned(arg)),
        ext::DRM_IOCTL_ASAHI_EXT_QUEUE_GET_STATE if fault_ext => {
            queue_get_state(file, from_bytes_mut(arg))
        }
        _ => Err(Errno::INVAL),
    }
}

fn get_params(file: &SimFile, caller: &dyn Caller, a: drm_asahi_get_params) -> Result<(), Errno> {
    if a.pad != 0 {
        return Err(Errno::INVAL);
    }
    let cfg = &file.shared.config;
    let global = cfg.params_global();
    let extp = cfg.params_fault_ext();
    let bytes: &[u8] = match a.param_group {
        0 => bytemuck::bytes_of(&global),
        ext::DRM_ASAHI_PARAM_GROUP_FAULT_EXT if cfg.fault_ext => bytemuck::bytes_of(&extp),
        _ => return Err(Errno::INVAL),
    };
    // Never write past `size`: older userspace knows a shorter struct.
    let n = bytes
        .len()
        .min(usize::try_from(a.size).unwrap_or(usize::MAX));
    caller.copy_to_user(a.pointer, &bytes[..n])
}

fn vm_create(file: &SimFile, a: &mut drm_asahi_vm_create) -> Result<(), Errno> {
    if a.pad != 0
        || a.kernel_start < VM_START
        || a.kernel_end > VM_END
        || a.kernel_end <= a.kernel_start
        || a.kernel_end - a.kernel_start < VM_KERNEL_MIN_SIZE
        || a.kernel_start % PAGE_SIZE != 0
        || a.kernel_end % PAGE_SIZE != 0
    {
        return Err(Errno::INVAL);
    }
    let mut st = file.shared.lock();
    let gid = st.gpu.alloc_id();
    let f = st.files.get_mut(&file.id).ok_or(Errno::NODEV)?;
    let h = f.alloc_handle();
    f.vms.insert(h, gid);
    let vm = Vm {
        file: file.id,
        pt: PageTable::default(),
        kernel_start: a.kernel_start,
        kernel_end: a.kernel_end,
    };
    st.gpu.vms.insert(gid, vm);
    a.vm_id = h;
    Ok(())
}

fn vm_destroy(file: &SimFile, a: drm_asahi_vm_destroy) -> Result<(), Errno> {
    if a.pad != 0 {
        return Err(Errno::INVAL);
    }
    let mut st = file.shared.lock();
    let gid = st
        .files
        .get_mut(&file.id)
        .and_then(|f| f.vms.remove(&a.vm_id))
        .ok_or(Errno::NOENT)?;
    st.gpu.destroy_vm(gid);
    if !st.gpu.queues.values().any(|q| q.vm == gid) {
        st.gpu.vms.remove(&gid);
    }
    st.gpu.run();
    Ok(())
}

const BIND_FLAGS: u32 =
    DRM_ASAHI_BIND_UNBIND | DRM_ASAHI_BIND_READ | DRM_ASAHI_BIND_WRITE | DRM_ASAHI_BIND_SINGLE_PAGE;

fn vm_bind(file: &SimFile, caller: &dyn Caller, a: drm_asahi_vm_bind) -> Result<(), Errno> {
    if a.pad != 0 || a.stride == 0 || a.stride % 8 != 0 {
        return Err(Errno::INVAL);
    }
    let ops: Vec<drm_asahi_gem_bind_op> =
        uaccess::read_user_array(caller, a.userptr, a.num_binds as usize, a.stride as usize)?;
    let mut st = file.shared.lock();
    let f = st.files.get(&file.id).ok_or(Errno::NODEV)?;
    let gid = *f.vms.get(&a.vm_id).ok_or(Errno::NOENT)?;
    let vm = st.gpu.vms.get(&gid).ok_or(Errno::NOENT)?;
    // Validate every op before applying any: a bind is all or nothing.
    let mut plan: Vec<(u64, Option<Extent>, u64)> = Vec::with_capacity(ops.len());
    for op in &ops {
        let aligned = |v: u64| v % PAGE_SIZE == 0;
        let end = op.addr.checked_add(op.range).ok_or(Errno::INVAL)?;
        if op.flags & !BIND_FLAGS != 0
            || !aligned(op.addr)
            || !aligned(op.range)
            || !aligned(op.offset)
            || op.range == 0
            || op.addr < VM_START
            || end > VM_END
            || (op.addr < vm.kernel_end && end > vm.kernel_start)
        {
            return Err(Errno::INVAL);
        }
        if op.flags & DRM_ASAHI_BIND_UNBIND != 0 {
            if op.flags != DRM_ASAHI_BIND_UNBIND || op.handle != 0 || op.offset != 0 {
                return Err(Errno::INVAL);
            }
            plan.push((op.addr, None, op.range));
            continue;
        }
        let read = op.flags & DRM_ASAHI_BIND_READ != 0;
        let write = op.flags & DRM_ASAHI_BIND_WRITE != 0;
        if !read && !write {
            return Err(Errno::INVAL);
        }
        let bo = f.bos.get(&op.handle).ok_or(Errno::NOENT)?;
        if bo.vm_private.is_some_and(|v| v != gid) {
            return Err(Errno::INVAL);
        }
        let single = op.flags & DRM_ASAHI_BIND_SINGLE_PAGE != 0;
        let need = if single { PAGE_SIZE } else { op.range };
        if op.offset.checked_add(need).is_none_or(|e| e > bo.size) {
            return Err(Errno::INVAL);
        }
        let ext = Extent {
            len: op.range,
            bo: bo.clone(),
            bo_offset: op.offset,
            read,
            write,
            single_page: single,
        };
        plan.push((op.addr, Some(ext), op.range));
    }
    let vm = st.gpu.vms.get_mut(&gid).ok_or(Errno::NOENT)?;
    for (addr, ext, range) in plan {
        match ext {
            Some(ext) => vm.pt.map(addr, ext),
            None => vm.pt.unmap(addr, range),
        }
    }
    Ok(())
}

fn gem_create(file: &SimFile, a: &mut drm_asahi_gem_create) -> Result<(), Errno> {
    let known = DRM_ASAHI_GEM_WRITEBACK | DRM_ASAHI_GEM_VM_PRIVATE;
    if a.pad != 0 || a.flags & !known != 0 || a.size == 0 {
        return Err(Errno::INVAL);
    }
    let private = a.flags & DRM_ASAHI_GEM_VM_PRIVATE != 0;
    if !private && a.vm_id != 0 {
        return Err(Errno::INVAL);
    }
    let size = a
        .size
        .checked_next_multiple_of(PAGE_SIZE)
        .ok_or(Errno::INVAL)?;
    if size > 1 << 40 {
        return Err(Errno::NOMEM);
    }
    let vm_private = if private {
        let st = file.shared.lock();
        Some(
            *st.files
                .get(&file.id)
                .and_then(|f| f.vms.get(&a.vm_id))
                .ok_or(Errno::NOENT)?,
        )
    } else {
        None
    };
    let bo = Arc::new(Bo::new(size, a.flags, vm_private).map_err(|_| Errno::NOMEM)?);
    let mut st = file.shared.lock();
    let f = st.files.get_mut(&file.id).ok_or(Errno::NODEV)?;
    let h = f.alloc_handle();
    f.bos.insert(h, bo);
    a.handle = h;
    Ok(())
}

fn gem_bind_object(file: &SimFile, a: &mut drm_asahi_gem_bind_object) -> Result<(), Errno> {
    if a.pad != 0 || a.vm_id != 0 {
        return Err(Errno::INVAL);
    }
    let mut st = file.shared.lock();
    let f = st.files.get_mut(&file.id).ok_or(Errno::NODEV)?;
    match a.op {
        DRM_ASAHI_BIND_OBJECT_OP_BIND => {
            if a.flags != DRM_ASAHI_BIND_OBJECT_USAGE_TIMESTAMPS || a.object_handle != 0 {
                return Err(Errno::INVAL);
            }
            let bo = f.bos.get(&a.handle).ok_or(Errno::NOENT)?.clone();
            let end = a.offset.checked_add(a.range).ok_or(Errno::INVAL)?;
            if a.range == 0 || end > bo.size || a.offset % 8 != 0 {
                return Err(Errno::INVAL);
            }
            let h = f.alloc_handle();
            f.ts_objects.insert(
                h,
                TsObject {
                    bo,
                    offset: a.offset,
                    range: a.range,
                },
            );
            a.object_handle = h;
            Ok(())
        }
        DRM_ASAHI_BIND_OBJECT_OP_UNBIND => {
            if a.flags != 0 || a.handle != 0 || a.offset != 0 || a.range != 0 {
                return Err(Errno::INVAL);
            }
            f.ts_objects
                .remove(&a.object_handle)
                .map(drop)
                .ok_or(Errno::NOENT)
        }
        _ => Err(Errno::INVAL),
    }
}

fn queue_create(file: &SimFile, a: &mut drm_asahi_queue_create) -> Result<(), Errno> {
    if a.flags != 0 || a.priority > DRM_ASAHI_PRIORITY_REALTIME {
        return Err(Errno::INVAL);
    }
    let mut st = file.shared.lock();
    let vm = *st
        .files
        .get(&file.id)
        .and_then(|f| f.vms.get(&a.vm_id))
        .ok_or(Errno::NOENT)?;
    let gid = st.gpu.alloc_id();
    st.gpu
        .queues
        .insert(gid, Queue::new(file.id, vm, a.priority, a.usc_exec_base));
    let f = st.files.get_mut(&file.id).ok_or(Errno::NODEV)?;
    let h = f.alloc_handle();
    f.queues.insert(h, gid);
    a.queue_id = h;
    Ok(())
}

fn queue_get_state(
    file: &SimFile,
    a: &mut ext::drm_asahi_ext_queue_get_state,
) -> Result<(), Errno> {
    if a.pad != 0 {
        return Err(Errno::INVAL);
    }
    let st = file.shared.lock();
    let qid = *st
        .files
        .get(&file.id)
        .and_then(|f| f.queues.get(&a.queue_id))
        .ok_or(Errno::NOENT)?;
    let q = st.gpu.queues.get(&qid).ok_or(Errno::NOENT)?;
    a.flags = 0;
    a.reset_count = q.reset_count;
    a.ban_seqno = 0;
    a.fault = Default::default();
    if let Some(ban) = q.ban {
        a.flags |= ext::DRM_ASAHI_EXT_QUEUE_BANNED;
        a.flags |= match ban.guilt {
            crate::gpu::Guilt::Guilty => ext::DRM_ASAHI_EXT_QUEUE_GUILTY,
            crate::gpu::Guilt::Innocent => ext::DRM_ASAHI_EXT_QUEUE_INNOCENT,
            crate::gpu::Guilt::None => 0,
        };
        a.ban_seqno = ban.seqno;
        a.fault = ban.fault.map(|f| f.to_raw()).unwrap_or_default();
    }
    Ok(())
}
