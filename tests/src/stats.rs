//! `stats`: the simulated GPU's counters as one JSON line, for scripts that run programs on a
//! device server's GPU (`--device unix:PATH`) and want to know what the GPU did with their
//! work: commands accepted, completed, faulted, killed, cancelled, run as opaque jobs, and the
//! commands still pending, and the trace's words for the last faults.

use agx_sim::trace::EventKind;
use agx_winsys::Device;

use crate::DeviceArg;

pub fn run(arg: &DeviceArg) -> u8 {
    let dev = match arg.spec().and_then(|s| Device::open(&s)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("agx-fault-suite stats: {e}");
            return 2;
        }
    };
    let Some(sim) = dev.sim_control() else {
        eprintln!("agx-fault-suite stats: not a simulated device (no counters to read)");
        return 2;
    };
    let s = sim.stats();
    // What the firmware saw of the last faults and timeouts (the trace's own words).
    let mut faults: Vec<String> = sim
        .trace_events()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::Fault | EventKind::Timeout))
        .map(|e| format!("queue {}: {}", e.queue, e.detail))
        .collect();
    faults.drain(..faults.len().saturating_sub(8));
    let summary = serde_json::json!({
        "submits": s.submits,
        "commands": s.commands,
        "completed": s.completed,
        "faults": s.faults,
        "timeouts": s.timeouts,
        "recoveries": s.recoveries,
        "replays": s.replays,
        "killed": s.killed,
        "cancelled": s.cancelled,
        "opaque": s.opaque,
        "pending": sim.pending_commands(),
        "gpu_time_ns": sim.now_ns(),
        "config": sim.config().to_options(),
        "last_faults": faults,
    });
    println!("{summary}");
    0
}
