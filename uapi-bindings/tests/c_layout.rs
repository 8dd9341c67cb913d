//! The layout claim, checked from the repository alone: a C program compiled against the
//! upstream `asahi_drm.h` in `include/` and the installed kernel headers' `drm.h`,
//! `linux/sync_file.h` and `linux/dma-buf.h` prints every size, alignment, field offset,
//! constant and ioctl number that `agx-uapi` defines, and each is compared with the Rust value.
//!
//! `drm.h` comes from the newest `/usr/src/linux-headers-*-common/include/uapi/drm` (Debian's
//! `linux-headers-amd64`; `AGX_UAPI_HEADERS` may name another `.../include/uapi`), the rest from
//! the userspace kernel headers in `/usr/include` (`linux-libc-dev`). `agx-uapi` follows current upstream: where the installed headers are older (a
//! struct grown since, an ioctl added since), the test says so and checks what the older header
//! has: the common prefix of a grown struct, the ioctl number with the older size.

use std::collections::HashMap;
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use agx_uapi::{asahi, dma_buf, drm, sync_file};

/// One struct: its C name, Rust size/align, fields present in every header version, and
/// fields only newer upstream headers have (appended at the end).
struct Layout {
    name: &'static str,
    size: usize,
    align: usize,
    fields: Vec<(&'static str, usize)>,
    upstream: Vec<(&'static str, usize)>,
}

macro_rules! layout {
    ($t:ty { $($f:ident),* $(,)? } $(upstream { $($u:ident),* })?) => {
        Layout {
            name: stringify!($t),
            size: size_of::<$t>(),
            align: align_of::<$t>(),
            fields: vec![$((stringify!($f), offset_of!($t, $f))),*],
            upstream: vec![$($((stringify!($u), offset_of!($t, $u))),*)?],
        }
    };
}

fn layouts() -> Vec<Layout> {
    use asahi::*;
    use dma_buf::*;
    use drm::*;
    use sync_file::*;
    vec![
        layout!(drm_asahi_params_global {
            features,
            gpu_generation,
            gpu_variant,
            gpu_revision,
            chip_id,
            num_dies,
            num_clusters_total,
            num_cores_per_cluster,
            max_frequency_khz,
            core_masks,
            vm_start,
            vm_end,
            vm_kernel_min_size,
            max_commands_per_submission,
            max_attachments,
            command_timestamp_frequency_hz
        }),
        layout!(drm_asahi_get_params {
            param_group,
            pad,
            pointer,
            size
        }),
        layout!(drm_asahi_vm_create {
            kernel_start,
            kernel_end,
            vm_id,
            pad
        }),
        layout!(drm_asahi_vm_destroy { vm_id, pad }),
        layout!(drm_asahi_gem_create {
            size,
            flags,
            vm_id,
            handle,
            pad
        }),
        layout!(drm_asahi_gem_mmap_offset {
            handle,
            flags,
            offset
        }),
        layout!(drm_asahi_gem_bind_op {
            flags,
            handle,
            offset,
            range,
            addr
        }),
        layout!(drm_asahi_vm_bind {
            vm_id,
            num_binds,
            stride,
            pad,
            userptr
        }),
        layout!(drm_asahi_gem_bind_object {
            op,
            flags,
            handle,
            vm_id,
            offset,
            range,
            object_handle,
            pad
        }),
        layout!(drm_asahi_queue_create {
            flags,
            vm_id,
            priority,
            queue_id,
            usc_exec_base
        }),
        layout!(drm_asahi_queue_destroy { queue_id, pad }),
        layout!(drm_asahi_sync {
            sync_type,
            handle,
            timeline_value
        }),
        layout!(drm_asahi_cmd_header {
            cmd_type,
            size,
            vdm_barrier,
            cdm_barrier
        }),
        layout!(drm_asahi_submit {
            syncs,
            cmdbuf,
            flags,
            queue_id,
            in_sync_count,
            out_sync_count,
            cmdbuf_size,
            pad
        }),
        layout!(drm_asahi_attachment {
            pointer,
            size,
            pad,
            flags
        }),
        layout!(drm_asahi_zls_buffer {
            base,
            comp_base,
            stride,
            comp_stride
        }),
        layout!(drm_asahi_timestamp { handle, offset }),
        layout!(drm_asahi_timestamps { start, end }),
        layout!(drm_asahi_helper_program { binary, cfg, data }),
        layout!(drm_asahi_bg_eot { usc, rsrc_spec }),
        layout!(drm_asahi_cmd_render {
            flags,
            isp_zls_pixels,
            vdm_ctrl_stream_base,
            vertex_helper,
            fragment_helper,
            isp_scissor_base,
            isp_dbias_base,
            isp_oclqry_base,
            depth,
            stencil,
            zls_ctrl,
            ppp_multisamplectl,
            sampler_heap,
            ppp_ctrl,
            width_px,
            height_px,
            layers,
            sampler_count,
            utile_width_px,
            utile_height_px,
            samples,
            sample_size_B,
            isp_merge_upper_x,
            isp_merge_upper_y,
            bg,
            eot,
            partial_bg,
            partial_eot,
            isp_bgobjdepth,
            isp_bgobjvals,
            ts_vtx,
            ts_frag
        }),
        layout!(drm_asahi_cmd_compute {
            flags,
            sampler_count,
            cdm_ctrl_stream_base,
            cdm_ctrl_stream_end,
            sampler_heap,
            helper,
            ts
        }),
        layout!(drm_asahi_get_time {
            flags,
            gpu_timestamp
        }),
        // drm_version's 4-byte hole after version_patchlevel is `pad0` in Rust, implicit in C.
        layout!(drm_version {
            version_major,
            version_minor,
            version_patchlevel,
            name_len,
            name,
            date_len,
            date,
            desc_len,
            desc
        }),
        layout!(drm_gem_close { handle, pad }),
        layout!(drm_prime_handle { handle, flags, fd }),
        layout!(drm_syncobj_create { handle, flags }),
        layout!(drm_syncobj_destroy { handle, pad }),
        layout!(drm_syncobj_transfer {
            src_handle,
            dst_handle,
            src_point,
            dst_point,
            flags,
            pad
        }),
        layout!(drm_syncobj_array {
            handles,
            count_handles,
            pad
        }),
        layout!(drm_syncobj_timeline_array {
            handles,
            points,
            count_handles,
            flags
        }),
        layout!(drm_get_cap { capability, value }),
        layout!(drm_syncobj_handle { handle, flags, fd, pad } upstream { point }),
        layout!(drm_syncobj_wait { handles, timeout_nsec, count_handles, flags, first_signaled,
            pad } upstream { deadline_nsec }),
        layout!(drm_syncobj_timeline_wait { handles, points, timeout_nsec, count_handles, flags,
            first_signaled, pad } upstream { deadline_nsec }),
        layout!(drm_syncobj_eventfd {
            handle,
            flags,
            point,
            fd,
            pad
        }),
        layout!(sync_merge_data {
            name,
            fd2,
            fence,
            flags,
            pad
        }),
        layout!(sync_fence_info {
            obj_name,
            driver_name,
            status,
            flags,
            timestamp_ns
        }),
        layout!(sync_file_info {
            name,
            status,
            flags,
            num_fences,
            pad,
            sync_fence_info
        }),
        layout!(dma_buf_sync { flags }),
        layout!(dma_buf_export_sync_file { flags, fd }),
        layout!(dma_buf_import_sync_file { flags, fd }),
    ]
}

/// Constants and ioctl numbers: (C name, Rust value, argument struct for ioctls).
fn values() -> Vec<(&'static str, i128, Option<&'static str>)> {
    macro_rules! v {
        ($($m:ident::$n:ident),* $(,)?) => { vec![$((stringify!($n), $m::$n as i128, None)),*] };
    }
    macro_rules! io {
        ($($m:ident::$n:ident($t:ident)),* $(,)?) => {
            vec![$((stringify!($n), $m::$n as i128, Some(stringify!($t)))),*]
        };
    }
    let mut v = v![
        asahi::DRM_ASAHI_GET_PARAMS,
        asahi::DRM_ASAHI_GET_TIME,
        asahi::DRM_ASAHI_VM_CREATE,
        asahi::DRM_ASAHI_VM_DESTROY,
        asahi::DRM_ASAHI_VM_BIND,
        asahi::DRM_ASAHI_GEM_CREATE,
        asahi::DRM_ASAHI_GEM_MMAP_OFFSET,
        asahi::DRM_ASAHI_GEM_BIND_OBJECT,
        asahi::DRM_ASAHI_QUEUE_CREATE,
        asahi::DRM_ASAHI_QUEUE_DESTROY,
        asahi::DRM_ASAHI_SUBMIT,
        asahi::DRM_ASAHI_MAX_CLUSTERS,
        asahi::DRM_ASAHI_BARRIER_NONE,
        asahi::DRM_ASAHI_FEATURE_SOFT_FAULTS,
        asahi::DRM_ASAHI_GEM_WRITEBACK,
        asahi::DRM_ASAHI_GEM_VM_PRIVATE,
        asahi::DRM_ASAHI_BIND_UNBIND,
        asahi::DRM_ASAHI_BIND_READ,
        asahi::DRM_ASAHI_BIND_WRITE,
        asahi::DRM_ASAHI_BIND_SINGLE_PAGE,
        asahi::DRM_ASAHI_BIND_OBJECT_OP_BIND,
        asahi::DRM_ASAHI_BIND_OBJECT_OP_UNBIND,
        asahi::DRM_ASAHI_BIND_OBJECT_USAGE_TIMESTAMPS,
        asahi::DRM_ASAHI_CMD_RENDER,
        asahi::DRM_ASAHI_CMD_COMPUTE,
        asahi::DRM_ASAHI_SET_VERTEX_ATTACHMENTS,
        asahi::DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS,
        asahi::DRM_ASAHI_SET_COMPUTE_ATTACHMENTS,
        asahi::DRM_ASAHI_PRIORITY_LOW,
        asahi::DRM_ASAHI_PRIORITY_MEDIUM,
        asahi::DRM_ASAHI_PRIORITY_HIGH,
        asahi::DRM_ASAHI_PRIORITY_REALTIME,
        asahi::DRM_ASAHI_SYNC_SYNCOBJ,
        asahi::DRM_ASAHI_SYNC_TIMELINE_SYNCOBJ,
        asahi::DRM_ASAHI_RENDER_VERTEX_SCRATCH,
        asahi::DRM_ASAHI_RENDER_PROCESS_EMPTY_TILES,
        asahi::DRM_ASAHI_RENDER_NO_VERTEX_CLUSTERING,
        asahi::DRM_ASAHI_RENDER_DBIAS_IS_INT,
        drm::DRM_IOCTL_BASE,
        drm::DRM_COMMAND_BASE,
        drm::DRM_COMMAND_END,
        drm::DRM_CAP_SYNCOBJ,
        drm::DRM_CAP_SYNCOBJ_TIMELINE,
        drm::DRM_CAP_PRIME,
        drm::DRM_PRIME_CAP_IMPORT,
        drm::DRM_PRIME_CAP_EXPORT,
        drm::DRM_CAP_DUMB_BUFFER,
        drm::DRM_CLOEXEC,
        drm::DRM_RDWR,
        drm::DRM_SYNCOBJ_CREATE_SIGNALED,
        drm::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL,
        drm::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT,
        drm::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE,
        drm::DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE,
        drm::DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
        drm::DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED,
        drm::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE,
        drm::DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_TIMELINE,
        drm::DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE,
        sync_file::SYNC_IOC_MAGIC,
        dma_buf::DMA_BUF_BASE,
        dma_buf::DMA_BUF_SYNC_READ,
        dma_buf::DMA_BUF_SYNC_WRITE,
        dma_buf::DMA_BUF_SYNC_RW,
        dma_buf::DMA_BUF_SYNC_START,
        dma_buf::DMA_BUF_SYNC_END,
        dma_buf::DMA_BUF_SYNC_VALID_FLAGS_MASK,
    ];
    v.extend(io![
        asahi::DRM_IOCTL_ASAHI_GET_PARAMS(drm_asahi_get_params),
        asahi::DRM_IOCTL_ASAHI_GET_TIME(drm_asahi_get_time),
        asahi::DRM_IOCTL_ASAHI_VM_CREATE(drm_asahi_vm_create),
        asahi::DRM_IOCTL_ASAHI_VM_DESTROY(drm_asahi_vm_destroy),
        asahi::DRM_IOCTL_ASAHI_VM_BIND(drm_asahi_vm_bind),
        asahi::DRM_IOCTL_ASAHI_GEM_CREATE(drm_asahi_gem_create),
        asahi::DRM_IOCTL_ASAHI_GEM_MMAP_OFFSET(drm_asahi_gem_mmap_offset),
        asahi::DRM_IOCTL_ASAHI_GEM_BIND_OBJECT(drm_asahi_gem_bind_object),
        asahi::DRM_IOCTL_ASAHI_QUEUE_CREATE(drm_asahi_queue_create),
        asahi::DRM_IOCTL_ASAHI_QUEUE_DESTROY(drm_asahi_queue_destroy),
        asahi::DRM_IOCTL_ASAHI_SUBMIT(drm_asahi_submit),
        drm::DRM_IOCTL_VERSION(drm_version),
        drm::DRM_IOCTL_GEM_CLOSE(drm_gem_close),
        drm::DRM_IOCTL_GET_CAP(drm_get_cap),
        drm::DRM_IOCTL_PRIME_HANDLE_TO_FD(drm_prime_handle),
        drm::DRM_IOCTL_PRIME_FD_TO_HANDLE(drm_prime_handle),
        drm::DRM_IOCTL_SYNCOBJ_CREATE(drm_syncobj_create),
        drm::DRM_IOCTL_SYNCOBJ_DESTROY(drm_syncobj_destroy),
        drm::DRM_IOCTL_SYNCOBJ_RESET(drm_syncobj_array),
        drm::DRM_IOCTL_SYNCOBJ_SIGNAL(drm_syncobj_array),
        drm::DRM_IOCTL_SYNCOBJ_QUERY(drm_syncobj_timeline_array),
        drm::DRM_IOCTL_SYNCOBJ_TRANSFER(drm_syncobj_transfer),
        drm::DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL(drm_syncobj_timeline_array),
        drm::DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD(drm_syncobj_handle),
        drm::DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE(drm_syncobj_handle),
        drm::DRM_IOCTL_SYNCOBJ_WAIT(drm_syncobj_wait),
        drm::DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT(drm_syncobj_timeline_wait),
        drm::DRM_IOCTL_SYNCOBJ_EVENTFD(drm_syncobj_eventfd),
        sync_file::SYNC_IOC_MERGE(sync_merge_data),
        sync_file::SYNC_IOC_FILE_INFO(sync_file_info),
        dma_buf::DMA_BUF_IOCTL_SYNC(dma_buf_sync),
        dma_buf::DMA_BUF_IOCTL_EXPORT_SYNC_FILE(dma_buf_export_sync_file),
        dma_buf::DMA_BUF_IOCTL_IMPORT_SYNC_FILE(dma_buf_import_sync_file),
    ]);
    v
}

/// The installed kernel's uAPI headers: `AGX_UAPI_HEADERS`, else the newest Debian
/// `linux-headers-*-common` tree.
fn kernel_uapi() -> PathBuf {
    if let Some(p) = std::env::var_os("AGX_UAPI_HEADERS") {
        return p.into();
    }
    let mut trees: Vec<(Vec<u64>, PathBuf)> = std::fs::read_dir("/usr/src")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let ver = name
                .strip_prefix("linux-headers-")?
                .strip_suffix("-common")?;
            let uapi = e.path().join("include/uapi");
            uapi.join("drm/drm.h").exists().then(|| {
                let key = ver
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse().ok())
                    .collect();
                (key, uapi)
            })
        })
        .collect();
    trees.sort();
    trees.pop().map(|(_, p)| p).unwrap_or_else(|| {
        panic!(
            "no kernel uAPI headers: install linux-headers-amd64 (tools/test-all.sh does) or \
             set AGX_UAPI_HEADERS=<linux>/include/uapi"
        )
    })
}

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

fn compile_and_run(uapi: &Path, body: &str, tag: &str) -> Result<String, String> {
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("c_layout_{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("probe.c");
    let exe = dir.join("probe");
    std::fs::write(
        &src,
        format!(
            "#include <fcntl.h>\n#include <stddef.h>\n#include <stdio.h>\n#include <drm.h>\n#include \"asahi_drm.h\"\n\
             #include <linux/sync_file.h>\n#include <linux/dma-buf.h>\n\
             int main(void) {{\n{body}\nreturn 0;\n}}\n"
        ),
    )
    .unwrap();
    let out = Command::new(cc())
        .args(["-std=gnu11", "-Wall", "-Werror", "-o"])
        .arg(&exe)
        .arg(&src)
        .arg(format!("-I{}", include.display()))
        // Only drm.h from the kernel tree, with `__user` removed as `make headers_install`
        // does; <linux/...> come from the installed userspace headers (linux-libc-dev).
        .arg(format!("-I{}", uapi.join("drm").display()))
        .arg("-D__user=")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cc()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success());
    Ok(String::from_utf8(run.stdout).unwrap())
}

/// Whether the installed headers have `struct s` (with field `f`).
fn c_has(uapi: &Path, s: &str, f: Option<&str>) -> bool {
    let expr = match f {
        Some(f) => format!("(void)offsetof(struct {s}, {f});"),
        None => format!("(void)sizeof(struct {s});"),
    };
    compile_and_run(
        uapi,
        &expr,
        &format!("has_{s}_{}", f.unwrap_or("")).replace('.', "_"),
    )
    .is_ok()
}

#[test]
fn rust_layouts_match_the_c_headers() {
    let uapi = kernel_uapi();
    let layouts = layouts();
    let values = values();
    let mut body = String::new();
    let mut older = Vec::new();
    let mut fields_probed = HashMap::new();
    for l in &layouts {
        if !c_has(&uapi, l.name, None) {
            older.push(format!("struct {} is not in the installed headers", l.name));
            continue;
        }
        body += &format!(
            "printf(\"size {0} %zu\\nalign {0} %zu\\n\", sizeof(struct {0}), _Alignof(struct {0}));\n",
            l.name
        );
        let mut probe = l.fields.clone();
        for &(f, off) in &l.upstream {
            if c_has(&uapi, l.name, Some(f)) {
                probe.push((f, off));
            } else {
                older.push(format!("{}.{} is not in the installed headers", l.name, f));
            }
        }
        for (f, _) in &probe {
            body += &format!(
                "printf(\"offset {0}.{1} %zu\\n\", offsetof(struct {0}, {1}));\n",
                l.name, f
            );
        }
        fields_probed.insert(l.name, probe);
    }
    for (name, _, _) in &values {
        // drm.h, sync_file.h and dma-buf.h define macros; asahi_drm.h's enums are always there.
        if name.starts_with("DRM_ASAHI") || name.starts_with("DRM_IOCTL_ASAHI") {
            body += &format!("printf(\"value {name} %lld\\n\", (long long)({name}));\n");
        } else {
            body += &format!(
                "#ifdef {name}\nprintf(\"value {name} %lld\\n\", (long long)({name}));\n#endif\n"
            );
        }
    }
    let out = compile_and_run(&uapi, &body, "all").unwrap_or_else(|e| panic!("{e}"));
    // "kind name value" lines.
    let c: HashMap<(&str, &str), i128> = out
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (kind, k, v) = (it.next()?, it.next()?, it.next()?);
            Some(((kind, k), v.parse().ok()?))
        })
        .collect();

    let mut bad = Vec::new();
    let mut checked = 0;
    let mut sizes_c = HashMap::new();
    for l in &layouts {
        let Some(probe) = fields_probed.get(l.name) else {
            continue;
        };
        let csize = c[&("size", l.name)] as usize;
        let calign = c[&("align", l.name)] as usize;
        sizes_c.insert(l.name, csize);
        // A struct the installed header has in an older form: its size is where the first
        // field it lacks starts (rounded to its alignment).
        // (Its alignment may be smaller too: the fields it lacks may be the only 64-bit ones.)
        let (expect_size, expect_align) = match l
            .upstream
            .iter()
            .find(|(f, _)| !probe.iter().any(|p| p.0 == *f))
        {
            Some(&(_, off)) => (off.next_multiple_of(calign), calign),
            None => (l.size, l.align),
        };
        checked += 2;
        if csize != expect_size {
            bad.push(format!(
                "sizeof(struct {}): C {csize}, Rust {expect_size}",
                l.name
            ));
        }
        if calign != expect_align {
            bad.push(format!(
                "_Alignof(struct {}): C {calign}, Rust {}",
                l.name, l.align
            ));
        }
        for &(f, off) in probe {
            checked += 1;
            let k = format!("{}.{f}", l.name);
            let cv = c.get(&("offset", k.as_str())).copied();
            if cv != Some(off as i128) {
                bad.push(format!("offsetof({}, {f}): C {cv:?}, Rust {off}", l.name));
            }
        }
    }
    for (name, rust, arg) in &values {
        checked += 1;
        let Some(&cv) = c.get(&("value", *name)) else {
            older.push(format!("{name} is not in the installed headers"));
            continue;
        };
        if cv == *rust {
            continue;
        }
        // An ioctl whose struct grew since the installed header: the same number with the
        // older struct's size.
        if let Some(arg) = arg {
            if let Some(&old) = sizes_c.get(arg) {
                let with_old_size = (*rust as u32 & !(0x3fff << 16)) | ((old as u32) << 16);
                if cv == with_old_size as i128 {
                    older.push(format!(
                        "{name}: {cv:#x} with the older {old}-byte struct {arg}"
                    ));
                    continue;
                }
            }
        }
        bad.push(format!("{name}: C {cv:#x}, Rust {rust:#x}"));
    }
    println!("kernel uAPI headers: {}", uapi.display());
    println!("{checked} values compared; the installed headers are older than upstream in:");
    for o in &older {
        println!("  {o}");
    }
    assert!(
        bad.is_empty(),
        "C and Rust disagree:\n  {}",
        bad.join("\n  ")
    );
    assert!(checked > 350, "only {checked} values compared");
}
