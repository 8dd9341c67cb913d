//! `agx-fault-suite`: how GPU fault recovery behaves, on the embedded simulated device (or a
//! real asahi node), in the forms Mesa CI consumes.

mod campaign;
mod cases;
mod demo;
mod evil;
mod info;
mod results;
mod rng;
mod runner;
mod soundness;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use agx_winsys::DeviceSpec;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "agx-fault-suite",
    version,
    about = "GPU fault scenarios and campaigns for agx-winsys"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone, Debug)]
pub struct DeviceArg {
    /// Device spec: sim[:options], unix:PATH (a device server's shared GPU), auto (the asahi
    /// render node), or a /dev/dri node (default: $AGXWS_DEVICE, else sim: this tool asks for
    /// the simulated GPU by name).
    #[arg(long)]
    pub device: Option<String>,
}

impl DeviceArg {
    pub fn spec(&self) -> Result<DeviceSpec, agx_winsys::Error> {
        match &self.device {
            Some(s) => DeviceSpec::parse(s),
            None => DeviceSpec::from_env_or(DeviceSpec::Sim(Default::default())),
        }
    }
}

/// Options of `run` (deqp-runner conventions).
#[derive(Args, Clone, Debug)]
pub struct RunOpts {
    #[command(flatten)]
    pub device: DeviceArg,
    /// File with one case name per line (default: every case).
    #[arg(long)]
    pub caselist: Option<PathBuf>,
    /// Only cases whose name contains this (repeatable; `*` wildcards allowed).
    #[arg(long = "include-tests")]
    pub include: Vec<String>,
    /// Run every N-th case...
    #[arg(long, default_value_t = 1)]
    pub fraction: usize,
    /// ...starting at the K-th (1-based).
    #[arg(long = "fraction-start", default_value_t = 1)]
    pub fraction_start: usize,
    /// Parallel jobs (default: the number of CPUs).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Per-case timeout in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    /// Output directory for results.csv, failures.csv and junit.xml.
    #[arg(long, default_value = "results")]
    pub output: PathBuf,
    /// Also run a short campaign after the cases (iterations; 0 for none).
    #[arg(long, default_value_t = 200)]
    pub campaign: u64,
}

/// Options of `campaign`.
#[derive(Args, Clone, Debug)]
pub struct CampaignOpts {
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 1000)]
    pub iterations: u64,
    /// kill-inflight, replay or continue.
    #[arg(long, default_value = "replay")]
    pub policy: String,
    /// Run exactly this one scenario (as printed in a failure's reproduction line).
    #[arg(long)]
    pub scenario: Option<u64>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Backend, device identity and parameters, extension version and features.
    Info(DeviceArg),
    /// A small real workload through the winsys, verified byte for byte.
    Demo(DeviceArg),
    /// Print every case name.
    List,
    /// Run cases in parallel and write results.csv, failures.csv and junit.xml.
    Run(RunOpts),
    /// Run one case in this process (what `run` spawns per case).
    #[command(hide = true)]
    RunOne {
        name: String,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Write the Perfetto/Chrome trace of one case.
    Trace {
        name: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Random workloads with random faults, checked against the invariants.
    Campaign(CampaignOpts),
    /// The same campaign under each recovery policy, side by side.
    ComparePolicies {
        #[arg(long, default_value_t = 300)]
        iterations: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The evil neighbour: another process on a shared GPU (--device unix:PATH) that makes
    /// faults at a steady rate.
    Evil(evil::EvilOpts),
    /// The simulated GPU's counters (e.g. a device server's, --device unix:PATH) as one JSON
    /// line: commands submitted, completed, faulted, killed, cancelled, opaque, pending.
    Stats(DeviceArg),
    /// Restartability soundness and precision against the simulator.
    Soundness {
        #[arg(long, default_value_t = 2000)]
        commands: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Info(d) => info::run(&d),
        Cmd::Demo(d) => demo::run(&d),
        Cmd::List => runner::list(),
        Cmd::Run(o) => runner::run(&o),
        Cmd::RunOne { name, device } => runner::run_one(&name, &device),
        Cmd::Trace { name, out } => runner::trace(&name, &out),
        Cmd::Campaign(o) => campaign::campaign(&o),
        Cmd::ComparePolicies { iterations, seed } => campaign::compare_policies(iterations, seed),
        Cmd::Evil(o) => evil::run(&o),
        Cmd::Stats(d) => stats::run(&d),
        Cmd::Soundness { commands, seed } => soundness::run(commands, seed),
    };
    ExitCode::from(code)
}
