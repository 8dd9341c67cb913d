//! `info`: what device this is.

use agx_winsys::{Device, DeviceSpec};

use crate::DeviceArg;

pub fn run(arg: &DeviceArg) -> u8 {
    let spec = match arg.spec() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("agx-fault-suite: {e}");
            return 2;
        }
    };
    let dev = match Device::open(&spec) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("agx-fault-suite: {e}");
            return 2;
        }
    };
    let p = dev.params();
    let server = std::env::var(agx_winsys::sim::SERVER_ENV).unwrap_or_default();
    let backend = match &spec {
        DeviceSpec::Remote { path, new: None } => format!(
            "simulated (agx-sim), the shared device of the server {}",
            path.display()
        ),
        DeviceSpec::Remote { path, new: Some(_) } => format!(
            "simulated (agx-sim), a private device on the server {}",
            path.display()
        ),
        DeviceSpec::Sim(_) if !server.is_empty() => {
            format!("simulated (agx-sim), a private device on the server {server}")
        }
        _ if dev.is_simulated() => "simulated (agx-sim, asked for by name), embedded".into(),
        _ => "kernel render node".into(),
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
