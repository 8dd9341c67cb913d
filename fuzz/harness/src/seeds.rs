//! Seed inputs for each target: short, valid sessions the fuzzer mutates from (a device set up
//! and a job submitted, sync objects exported and imported, a faulting job and its recovery; a
//! cmdbuf the winsys encodes; the layer's own shaders; plans of the documented grammar; C ABI
//! sessions). `cargo run -p agx-fuzz --example seed-corpus` writes them to `fuzz/corpus/`.

use agx_sim::stream::StreamBuilder;
use agx_uapi::asahi::*;
use agx_uapi::drm::*;
use agx_uapi::fault_ext as ext;
use agx_winsys::cmd::{Attachment, CommandBuffer, ComputeDesc, JobInfoSlot, RenderDesc};

use crate::arena::ARENA_LEN;
use crate::input::Writer;
use crate::ioctl::{kind, FILE_IOCTLS};

fn index_of(cmd: u32) -> u8 {
    FILE_IOCTLS
        .iter()
        .position(|(c, _)| *c == cmd)
        .expect("listed") as u8
}

/// An ioctl record on file 0.
fn ioctl<T: bytemuck::Pod>(w: &mut Writer, cmd: u32, arg: &T) {
    w.u8(kind::IOCTL)
        .u8(0)
        .u8(index_of(cmd))
        .raw(bytemuck::bytes_of(arg));
}

/// Bytes into the arena at `off`, in records of at most 255 bytes.
fn arena(w: &mut Writer, off: u16, bytes: &[u8]) {
    for (i, c) in bytes.chunks(255).enumerate() {
        w.u8(kind::ARENA)
            .u16(off + 255 * i as u16)
            .u8(c.len() as u8)
            .raw(c);
    }
}

/// Bytes into BO `handle` at `off` (file 0).
fn bo_write(w: &mut Writer, handle: u32, off: u32, bytes: &[u8]) {
    for (i, c) in bytes.chunks(255).enumerate() {
        w.u8(kind::GPU)
            .u8(4)
            .u8(0)
            .u32(handle)
            .u32(off + 255 * i as u32)
            .u8(c.len() as u8)
            .raw(c);
    }
}

/// An arena pointer as the harness reads it back (offsets below 3 are special).
fn at(off: u64) -> u64 {
    off + ARENA_LEN as u64
}

const DATA_VA: u64 = 0x10_0000_0000;
const CODE_VA: u64 = 0x10_1000_0000;

/// A session: a VM (handle 1), a data BO (2) and a code BO (3) bound, a queue (4), then a
/// submit of `cmdbuf` built by `build` (stream at the code BO).
fn session(stream: &mut StreamBuilder, compute: bool, opts: u8) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(opts);
    ioctl(
        &mut w,
        DRM_IOCTL_ASAHI_VM_CREATE,
        &drm_asahi_vm_create {
            kernel_start: 0x7f_0000_0000,
            kernel_end: 0x7f_0000_0000 + (64 << 20),
            vm_id: 0,
            pad: 0,
        },
    );
    for _ in 0..2 {
        ioctl(
            &mut w,
            DRM_IOCTL_ASAHI_GEM_CREATE,
            &drm_asahi_gem_create {
                size: 64 << 10,
                flags: 0,
                vm_id: 0,
                handle: 0,
                pad: 0,
            },
        );
    }
    let ops = [
        drm_asahi_gem_bind_op {
            flags: DRM_ASAHI_BIND_READ | DRM_ASAHI_BIND_WRITE,
            handle: 2,
            offset: 0,
            range: 64 << 10,
            addr: DATA_VA,
        },
        drm_asahi_gem_bind_op {
            flags: DRM_ASAHI_BIND_READ,
            handle: 3,
            offset: 0,
            range: 64 << 10,
            addr: CODE_VA,
        },
    ];
    arena(&mut w, 0x100, bytemuck::cast_slice(&ops));
    ioctl(
        &mut w,
        DRM_IOCTL_ASAHI_VM_BIND,
        &drm_asahi_vm_bind {
            vm_id: 1,
            num_binds: 2,
            stride: std::mem::size_of::<drm_asahi_gem_bind_op>() as u32,
            pad: 0,
            userptr: at(0x100),
        },
    );
    ioctl(
        &mut w,
        DRM_IOCTL_ASAHI_QUEUE_CREATE,
        &drm_asahi_queue_create {
            flags: 0,
            vm_id: 1,
            priority: 1,
            queue_id: 0,
            usc_exec_base: 0x1_0000_0000,
        },
    );
    bo_write(&mut w, 3, 0, &stream.end());
    let mut cb = CommandBuffer::new(64);
    if compute {
        cb.compute(ComputeDesc {
            cdm_ctrl_stream_base: CODE_VA,
            cdm_ctrl_stream_end: CODE_VA + 4096,
            ..ComputeDesc::default()
        })
        .expect("compute");
    } else {
        cb.render(RenderDesc {
            width_px: 64,
            height_px: 64,
            vdm_ctrl_stream_base: CODE_VA,
            fragment_attachments: vec![Attachment::new(DATA_VA, 4096)],
            ..RenderDesc::default()
        })
        .expect("render");
    }
    let mut bytes = Vec::new();
    let slot = |_| {
        Some(JobInfoSlot {
            handle: 2,
            offset: 32 << 10,
        })
    };
    cb.encode(0..1, &slot, &mut bytes);
    arena(&mut w, 0x400, &bytes);
    ioctl(
        &mut w,
        DRM_IOCTL_ASAHI_SUBMIT,
        &drm_asahi_submit {
            syncs: 0,
            cmdbuf: at(0x400),
            flags: 0,
            queue_id: 4,
            in_sync_count: 0,
            out_sync_count: 0,
            cmdbuf_size: bytes.len() as u32,
            pad: 0,
        },
    );
    ioctl(
        &mut w,
        ext::DRM_IOCTL_ASAHI_EXT_QUEUE_GET_STATE,
        &ext::drm_asahi_ext_queue_get_state {
            queue_id: 4,
            ..Default::default()
        },
    );
    w.bytes
}

fn syncobjs() -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(0);
    for flags in [0, DRM_SYNCOBJ_CREATE_SIGNALED] {
        ioctl(
            &mut w,
            DRM_IOCTL_SYNCOBJ_CREATE,
            &drm_syncobj_create { handle: 0, flags },
        );
    }
    arena(&mut w, 0x200, bytemuck::cast_slice(&[1u32, 2]));
    arena(&mut w, 0x300, bytemuck::cast_slice(&[3u64, 5]));
    ioctl(
        &mut w,
        DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL,
        &drm_syncobj_timeline_array {
            handles: at(0x200),
            points: at(0x300),
            count_handles: 2,
            flags: 0,
        },
    );
    ioctl(
        &mut w,
        DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT,
        &drm_syncobj_timeline_wait {
            handles: at(0x200),
            points: at(0x300),
            timeout_nsec: 0,
            count_handles: 2,
            flags: DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL,
            ..Default::default()
        },
    );
    ioctl(
        &mut w,
        DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD,
        &drm_syncobj_handle {
            handle: 2,
            flags: DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE,
            ..Default::default()
        },
    );
    ioctl(
        &mut w,
        DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE,
        &drm_syncobj_handle {
            handle: 1,
            flags: DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
            fd: 5,
            ..Default::default()
        },
    );
    ioctl(
        &mut w,
        DRM_IOCTL_SYNCOBJ_TRANSFER,
        &drm_syncobj_transfer {
            src_handle: 2,
            dst_handle: 1,
            src_point: 5,
            dst_point: 7,
            flags: 0,
            pad: 0,
        },
    );
    ioctl(
        &mut w,
        DRM_IOCTL_SYNCOBJ_QUERY,
        &drm_syncobj_timeline_array {
            handles: at(0x200),
            points: at(0x300),
            count_handles: 2,
            flags: 0,
        },
    );
    // A sync_file's FILE_INFO with a fence array, on the exported fd (5).
    w.u8(kind::FD_IOCTL).u8(5).u8(1).raw(bytemuck::bytes_of(
        &agx_uapi::sync_file::sync_file_info {
            name: [0; 32],
            status: 0,
            flags: 0,
            num_fences: 2,
            pad: 0,
            sync_fence_info: at(0x800),
        },
    ));
    w.bytes
}

fn queries() -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(4);
    ioctl(
        &mut w,
        DRM_IOCTL_VERSION,
        &drm_version {
            name_len: 16,
            name: at(0x10),
            date_len: 16,
            date: at(0x20),
            desc_len: 64,
            desc: at(0x40),
            ..Default::default()
        },
    );
    ioctl(
        &mut w,
        DRM_IOCTL_GET_CAP,
        &drm_get_cap {
            capability: DRM_CAP_SYNCOBJ_TIMELINE,
            value: 0,
        },
    );
    for group in [0, ext::DRM_ASAHI_PARAM_GROUP_FAULT_EXT] {
        ioctl(
            &mut w,
            DRM_IOCTL_ASAHI_GET_PARAMS,
            &drm_asahi_get_params {
                param_group: group,
                pad: 0,
                pointer: at(0x1000),
                size: 512,
            },
        );
    }
    w.bytes
}

/// Seeds of target `name`.
pub fn seeds(name: &str) -> Vec<Vec<u8>> {
    match name {
        "ioctl" => {
            let mut fill = StreamBuilder::new();
            fill.fill(DATA_VA, 4096, 0x5a5a_5a5a).store(DATA_VA + 8, 7);
            let mut fault = StreamBuilder::new();
            fault.spin(1000).load(agx_sim::config::UNMAPPED_VA, 8);
            let mut hang = StreamBuilder::new();
            hang.copy(DATA_VA + 4096, DATA_VA, 256).hang();
            vec![
                session(&mut fill, false, 0),
                session(&mut fill.clone(), true, 1),
                session(&mut fault, false, 2),
                session(&mut hang, true, 8),
                syncobjs(),
                queries(),
            ]
        }
        "cmdbuf" => {
            let mut out = Vec::new();
            for compute in [false, true] {
                let mut cb = CommandBuffer::new(64);
                if compute {
                    cb.compute(ComputeDesc::default()).expect("compute");
                } else {
                    cb.render(RenderDesc {
                        width_px: 64,
                        height_px: 64,
                        vertex_attachments: vec![Attachment::new(0x1000, 64)],
                        fragment_attachments: vec![Attachment::new(0x4000, 4096)],
                        ..RenderDesc::default()
                    })
                    .expect("render");
                    cb.compute(ComputeDesc::default()).expect("compute");
                }
                for job_info in [false, true] {
                    let slot = |_| {
                        job_info.then_some(JobInfoSlot {
                            handle: 1,
                            offset: 64,
                        })
                    };
                    let mut bytes = vec![0u8];
                    let mut b = Vec::new();
                    cb.encode(0..cb.commands().len(), &slot, &mut b);
                    bytes.extend(b);
                    out.push(bytes);
                }
            }
            out
        }
        "spirv" => vec![
            include_bytes!("../../../vk-layer/tests/shaders/constant.frag.spv").to_vec(),
            include_bytes!("../../../vk-layer/tests/shaders/triangle.vert.spv").to_vec(),
        ],
        "plan" => [
            "guilty@3,neighbor@1,neighbor-every@4,hang@9",
            "",
            "neighbor@1",
            " hang@2 ",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
        "c_abi" => crate::c_abi::seeds(),
        "server_msg" => crate::server_msg::seeds(),
        _ => Vec::new(),
    }
}
