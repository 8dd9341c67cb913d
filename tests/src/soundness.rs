//! Restartability soundness campaign (placeholder until it lands).

pub fn run(_commands: u64, _seed: u64) -> u8 {
    1
}
