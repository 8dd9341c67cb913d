//! `agx-sim-server --socket PATH [--device OPTIONS]`: serves simulated asahi devices on a Unix
//! socket until killed. `OPTIONS` configure the shared device (what `AGXWS_DEVICE=unix:PATH`
//! opens), in the syntax of `sim:` device specs: `policy=kill-inflight|replay|continue`,
//! `replay-limit=N`, `hang-timeout-ms=N`, `soft-faults`, `upstream`, `clock=virtual|host`.
//! Clients may also create private devices with options of their own.

use std::path::PathBuf;
use std::process::ExitCode;

use agx_sim::SimConfig;
use agx_sim_server::Server;

const USAGE: &str = "usage: agx-sim-server --socket PATH [--device OPTIONS]";

fn main() -> ExitCode {
    let mut socket: Option<PathBuf> = None;
    let mut options = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--socket" => socket = args.next().map(Into::into),
            "--device" => options = args.next().unwrap_or_default(),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("agx-sim-server: unknown argument {a:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(socket) = socket else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let config = match SimConfig::from_options(options.strip_prefix("sim:").unwrap_or(&options)) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("agx-sim-server: --device {options:?}: {why}");
            return ExitCode::from(2);
        }
    };
    let server = Server::new(config.clone());
    let _listener = match server.listen(&socket) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("agx-sim-server: {}: {e}", socket.display());
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "agx-sim-server: serving {} (shared device: {})",
        socket.display(),
        config.to_options()
    );
    loop {
        std::thread::park();
    }
}
