//! `evil`: the evil neighbour. Another process on a shared simulated GPU (a device server's,
//! `--device unix:PATH`) that submits work which faults at a steady rate, so that faults come
//! from outside the victim, as on real hardware: an unmapped write, a write to read-only memory,
//! or a hang that the watchdog ends, in turn, each after some GPU time of its own. Each fault is
//! the culprit's only: every fault is submitted on a fresh context (a guilty queue is banned).
//!
//! It prints one JSON line when it stops (after `--count` faults, `--duration` seconds, or, with
//! `--until-eof`, when its standard input closes): faults by kind and the outcomes it was told.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agx_sim::stream::StreamBuilder;
use agx_winsys::analysis::RenderPass;
use agx_winsys::kit::Context;
use agx_winsys::{Deadline, Device, Guilt, JobOutcome};
use clap::Args;

use crate::cases::HOLE;
use crate::DeviceArg;

/// Options of `evil`.
#[derive(Args, Clone, Debug)]
pub struct EvilOpts {
    #[command(flatten)]
    pub device: DeviceArg,
    /// Milliseconds from one fault's submission to the next.
    #[arg(long, default_value_t = 5)]
    pub every: u64,
    /// Faults to make, in turn: unmapped, read-only, hang (comma-separated).
    #[arg(long, default_value = "unmapped,read-only,hang")]
    pub kinds: String,
    /// GPU time each faulting job runs before its fault, µs.
    #[arg(long, default_value_t = 200)]
    pub spin_us: u64,
    /// Stop after this many faults.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Stop when standard input reaches its end (for a driver that pipes it).
    #[arg(long)]
    pub until_eof: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Unmapped,
    ReadOnly,
    Hang,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        match s.trim() {
            "unmapped" => Some(Kind::Unmapped),
            "read-only" => Some(Kind::ReadOnly),
            "hang" => Some(Kind::Hang),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Unmapped => "unmapped",
            Kind::ReadOnly => "read-only",
            Kind::Hang => "hang",
        }
    }
}

/// One fault: a fresh context whose render pass spins `spin_ns`, then faults.
fn fault(dev: &Device, kind: Kind, spin_ns: u64) -> agx_winsys::Result<JobOutcome> {
    let cx = Context::new(dev, 64 * 1024)?;
    let mut s = StreamBuilder::new();
    s.spin(spin_ns);
    match kind {
        Kind::Unmapped => s.store(HOLE + 8, 1),
        Kind::ReadOnly => s.store(cx.code.va, 1),
        Kind::Hang => s.hang(),
    };
    let desc = cx.render(&mut s, RenderPass::new(), &[])?;
    let mut cb = cx.command_buffer();
    cb.render(desc)?;
    let job = cx.queue.submit(&cb, &[], &[])?;
    job.wait(Deadline::After(Duration::from_secs(30)))
}

pub fn run(o: &EvilOpts) -> u8 {
    let kinds: Option<Vec<Kind>> = o.kinds.split(',').map(Kind::parse).collect();
    let Some(kinds) = kinds.filter(|k| !k.is_empty()) else {
        eprintln!("agx-fault-suite evil: --kinds: expected unmapped, read-only, hang");
        return 2;
    };
    let dev = match o.device.spec().and_then(|s| Device::open(&s)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("agx-fault-suite evil: {e}");
            return 2;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    if o.until_eof {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            stop.store(true, Ordering::Relaxed);
        });
    }
    let t0 = Instant::now();
    let deadline = o.duration.map(|s| t0 + Duration::from_secs_f64(s));
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    let mut told: BTreeMap<String, u64> = BTreeMap::new();
    let mut n = 0u64;
    let mut errors = 0u64;
    while !stop.load(Ordering::Relaxed)
        && o.count.is_none_or(|c| n < c)
        && deadline.is_none_or(|d| Instant::now() < d)
    {
        let kind = kinds[(n % kinds.len() as u64) as usize];
        let next = t0 + Duration::from_millis(o.every.saturating_mul(n + 1));
        n += 1;
        *by_kind.entry(kind.name()).or_default() += 1;
        let what = match fault(&dev, kind, o.spin_us * 1000) {
            Ok(JobOutcome::Faulted {
                guilt: Guilt::Guilty,
                ..
            }) => "guilty fault".to_string(),
            Ok(JobOutcome::TimedOut) => "guilty hang".to_string(),
            Ok(other) => format!("{other:?}"),
            Err(e) => {
                errors += 1;
                format!("error: {e}")
            }
        };
        *told.entry(what).or_default() += 1;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let summary = serde_json::json!({
        "faults": n,
        "by_kind": by_kind,
        "told": told,
        "errors": errors,
        "seconds": t0.elapsed().as_secs_f64(),
    });
    println!("{summary}");
    u8::from(errors > 0)
}
