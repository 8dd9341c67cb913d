//! Submit-path cost: what the winsys adds on top of the SUBMIT system call (encoding the cmdbuf
//! and marshalling the ioctl arguments), against a bare ioctl round trip on this machine (an
//! invalid request on an open fd), measured side by side in one run. See BENCHMARKS.md.

use std::os::fd::AsRawFd;
use std::time::Duration;

use agx_uapi::asahi::{drm_asahi_submit, drm_asahi_sync, DRM_ASAHI_SYNC_TIMELINE_SYNCOBJ};
use agx_winsys::analysis::{ColorAttachment, LoadOp, Region, RenderPass, StoreOp};
use agx_winsys::cmd::{Attachment, CommandBuffer, JobInfoSlot, RenderDesc};
use agx_winsys::kit::Context;
use agx_winsys::sim::SimOptions;
use agx_winsys::{Deadline, Device, DeviceSpec};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

/// A typical render pass: 8 colour attachments, depth, its access description.
fn typical_pass() -> CommandBuffer {
    let mut access = RenderPass::new();
    let mut atts = Vec::new();
    for i in 0..8u64 {
        let base = 0x1_0000_0000 + i * 0x40_0000;
        access = access.color(ColorAttachment::new(
            Region::va(base, 0x40_0000),
            LoadOp::Clear,
            StoreOp::Store,
        ));
        atts.push(Attachment::new(base, 0x40_0000));
    }
    let desc = RenderDesc {
        width_px: 1920,
        height_px: 1080,
        utile_width_px: 32,
        utile_height_px: 32,
        sample_size_bytes: 8,
        vdm_ctrl_stream_base: 0x2_0000_0000,
        fragment_attachments: atts,
        access: Some(access),
        ..RenderDesc::default()
    };
    let mut cb = CommandBuffer::new(64);
    cb.render(desc).unwrap();
    cb
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("submit_path");
    g.measurement_time(Duration::from_secs(3));

    // 1. A bare ioctl round trip: DRM_IOCTL_VERSION on /dev/null fails with ENOTTY.
    let null = std::fs::File::open("/dev/null").unwrap();
    let mut v = agx_uapi::drm::drm_version::default();
    g.bench_function("bare_ioctl_enotty", |b| {
        b.iter(|| {
            // SAFETY: a valid fd and a live, correctly sized argument struct.
            let r = unsafe {
                libc::ioctl(
                    null.as_raw_fd(),
                    agx_uapi::drm::DRM_IOCTL_VERSION as libc::c_ulong,
                    &mut v as *mut _,
                )
            };
            black_box(r)
        })
    });

    // 2. What the winsys does per submit besides the system call: encode the command buffer
    //    (with job info) into the reused buffer, fill the sync array and the submit struct.
    let cb = typical_pass();
    let mut buf = Vec::with_capacity(4096);
    let mut syncs: Vec<drm_asahi_sync> = Vec::with_capacity(16);
    let mut point = 0u64;
    g.bench_function("encode_and_marshal", |b| {
        b.iter(|| {
            point += 1;
            let slot = |i: usize| {
                Some(JobInfoSlot {
                    handle: 7,
                    offset: (i as u64) * 64,
                })
            };
            cb.encode(0..1, &slot, &mut buf);
            syncs.clear();
            syncs.push(drm_asahi_sync {
                sync_type: DRM_ASAHI_SYNC_TIMELINE_SYNCOBJ,
                handle: 3,
                timeline_value: point,
            });
            let a = drm_asahi_submit {
                syncs: syncs.as_ptr() as u64,
                cmdbuf: buf.as_ptr() as u64,
                flags: 0,
                queue_id: 1,
                in_sync_count: 0,
                out_sync_count: syncs.len() as u32,
                cmdbuf_size: buf.len() as u32,
                pad: 0,
            };
            black_box(a)
        })
    });

    // 3. For scale: a whole submit + wait of a small pass on the embedded simulated device
    //    (winsys + simulated kernel + simulated GPU execution), and 4. the same on a device
    //    server (agx-sim-server, here in this process, over a Unix socket: every ioctl a round
    //    trip with its memory and fds), with one bare ioctl (GET_TIME) on each for the cost of a
    //    round trip alone.
    let sock = std::env::temp_dir().join(format!("agx-bench-submit-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let server = agx_sim_server::Server::new(SimOptions::default().config());
    let listener = server.listen(&sock).unwrap();
    let embedded = Device::open(&DeviceSpec::Sim(SimOptions::default())).unwrap();
    let remote = format!("unix:{}", listener.path().display());
    let remote = Device::open(&DeviceSpec::parse(&remote).unwrap()).unwrap();
    for (name, dev) in [("sim", &embedded), ("server", &remote)] {
        let ctx = Context::new(dev, 1 << 20).unwrap();
        let dst = ctx.alloc(256).unwrap();
        let mut small = ctx.command_buffer();
        small.render(ctx.clear_pass(dst, 256, 1).unwrap()).unwrap();
        let deadline = Deadline::After(Duration::from_secs(10));
        g.bench_function(format!("{name}_submit_and_wait"), |b| {
            b.iter(|| {
                ctx.queue
                    .submit(&small, &[], &[])
                    .unwrap()
                    .wait(deadline)
                    .unwrap()
            })
        });
        g.bench_function(format!("{name}_get_time"), |b| {
            b.iter(|| black_box(dev.gpu_time_ns().unwrap()))
        });
    }
    g.finish();
    drop(listener);
}

criterion_group!(benches, bench);
criterion_main!(benches);
