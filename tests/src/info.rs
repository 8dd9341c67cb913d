//! `info`: what device this is.

use agx_winsys::Device;

use crate::DeviceArg;

pub fn run(arg: &DeviceArg) -> u8 {
    let dev = match arg.spec().and_then(|s| Device::open(&s)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("agx-fault-suite: {e}");
            return 2;
        }
    };
    let p = dev.params();
    let backend = if dev.is_simulated() {
        "simulated (agx-sim, asked for by name)"
    } else {
        "kernel render node"
    };
    println!("backend:              {backend}");
    println!(
        "gpu:                  {} (generation {}, variant {}, revision {:#x})",
        p.gpu_name(),
        p.gpu_generation,
        p.gpu_variant,
        p.gpu_revision
    );
    println!(
        "chip:                 T{:04x}, {} die(s), {} cluster(s) x {} cores ({} enabled)",
        p.chip_id,
        p.num_dies,
        p.num_clusters,
        p.cores_per_cluster,
        p.core_count()
    );
    println!("max frequency:        {} MHz", p.max_frequency_khz / 1000);
    println!(
        "vm range:             {:#x}..{:#x} (kernel carve-out >= {} MiB)",
        p.vm_range.start,
        p.vm_range.end,
        p.vm_kernel_min_size >> 20
    );
    println!(
        "limits:               {} commands/submit, {} attachments/command",
        p.max_commands_per_submission, p.max_attachments
    );
    println!("timestamp frequency:  {} Hz", p.timestamp_frequency_hz);
    println!("soft faults:          {}", p.soft_faults);
    match dev.fault_ext() {
        None => println!("fault-report ext:     absent (upstream uAPI: outcomes from fence errors, guilt unknown)"),
        Some(e) => {
            println!("fault-report ext:     version {}", e.version);
            println!("  result records:     {} ({} bytes)", e.results, e.result_size);
            println!("  QUEUE_GET_STATE:    {}", e.queue_state);
            println!("  recovery policy:    {:?} (replay {}, limit {})", e.policy, e.replay, e.replay_limit);
            println!("  hang timeout:       {} ms", e.hang_timeout_ns / 1_000_000);
        }
    }
    0
}
