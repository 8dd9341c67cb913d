//! Restartability soundness and precision campaign (issue "Restartability").
//!
//! Random render passes and compute commands are generated from a seed. From ONE description
//! (a [`RenderSpec`] or [`ComputeSpec`]) two things are derived:
//!
//! - (a) the access description the analysis reads ([`RenderPass`] / [`ComputeCommand`], handed
//!   to [`Context::render`] / [`Context::compute`], so the winsys computes the verdict and the
//!   job-info restartable flag exactly as for any other submission);
//! - (b) the simulated command stream, which really performs those accesses, phase by phase.
//!
//! Each command is run fault-free from a random memory image (result `R1`), then as an innocent
//! victim stopped at random points by a culprit on another file of the same GPU, under the
//! `replay` policy. Every command the analysis calls restartable must leave `R1` byte for byte
//! (a difference is a *mismatch*: the analysis is unsound). Commands it does not call
//! restartable must be killed (`Killed { Innocent }`). Precision: a command is *in fact
//! idempotent* when it leaves `R1` after a complete run followed by a second one, and after each
//! of [`POINTS`] replays from a random partial execution (forced with a trivially restartable
//! description, so the simulator replays it); precision is the share of those the analysis
//! calls restartable.
//!
//! # From description to stream (the heart of the soundness argument)
//!
//! Every stream access is generated from a declared access, inside its declared bytes and in
//! its declared phase, so a stream doing something its description does not allow is impossible
//! by construction. All offsets are inside the victim's data arena; `[0, decl)` holds every
//! declared range (ranges overlap and alias freely, at odd offsets), `[decl, ..)` holds
//! *private* memory (tiles), which the command always writes completely before reading it (the
//! analysis's "memory the command privately initialises before use").
//!
//! Render pass, phase by phase (ops of a phase are emitted in a random order, since the analysis
//! lets the accesses of a phase interleave in any order; a phase's ops all come before the next
//! phase's):
//!
//! | description | stream |
//! | --- | --- |
//! | attachment, `LoadOp::Load` | load phase: `COPY tile <- A` (or a bare `LOAD A` when the tile is never used) |
//! | `LoadOp::Clear` | load phase: `FILL tile, clear` (no tile: the store is a `FILL A`) |
//! | `LoadOp::DontCare` | load phase: `FILL tile, garbage` (deterministic "undefined" content) |
//! | draws (not read-only) | draw phase: `COPY tile[w] <- src`, `FILL tile[w]`; `src` is a declared shader `Read`/`ReadWrite` range or another attachment's tile (framebuffer fetch) |
//! | blend | draw phase: `RMW(Average) tile[w] <- src` |
//! | partial-render spills (declared on) | sometimes, at a random point of the draw phase: `COPY A <- tile; COPY tile <- A` for every tiled attachment (also read-only ones: the "preserved" claim is tested) |
//! | `StoreOp::Store` | end phase: `COPY A <- tile` over all of `A`, in 1-3 pieces in random order (`FILL A` without a tile) |
//! | shader `Read` | draw phase: `LOAD` windows; sources of draws and shader writes |
//! | shader `Write` (may write) | draw phase: 0-2 of `FILL`/`STORE`/`COPY <- readable` into windows |
//! | shader `ReadWrite` | draw phase: `RMW(Add/Xor/Average/Max) w <- readable` (may be itself), `COPY` within |
//! | shader `Atomic` | draw phase: `ATOMIC_ADD` (1..1000) on aligned u64s inside |
//! | occlusion query | load phase `STORE 0` when reset in the command; draw phase 1-3 `ATOMIC_ADD` |
//! | transform feedback | draw phase writes to the buffer; counter: `ATOMIC_ADD` (append) or end-phase `STORE` |
//! | timestamp | end phase `STORE` (a fixed value, so runs compare) |
//! | `SideEffects::Unknown` | draw phase: 1-2 writes (`FILL`/`RMW`/`COPY`) anywhere in `[0, decl)`, undeclared |
//!
//! Compute: dispatch `i` is phase `i` unless concurrent with the previous one (then their ops are
//! shuffled together). `reads` -> `LOAD`s and copy sources; `writes` (may write) -> 0-2 partial
//! writes; `read_writes` -> `RMW`/`COPY` within; `atomics` -> `ATOMIC_ADD`; `overwrites` -> every
//! byte written (`FILL` or `COPY <- readable`, 1-3 pieces); undeclared dispatches (or a command
//! without a description) also write anywhere in `[0, decl)`.
//!
//! `SPIN`s between ops stretch commands over several 10 µs quanta without memory traffic, so a
//! culprit's fault lands at many different points. Of the interruption points of a command,
//! some take a random culprit time on the stream as generated (mostly between ops), some are
//! *aimed* inside a random multi-chunk memory op (the stream's spins are replaced by one leading
//! spin that puts a quantum boundary there, see [`targeted`]: partial writes left behind), and
//! some use two culprits, so the victim is stopped in its first run and again in its replay.
//!
//! Beside the declared verdict, the campaign also analyses the stream's *exact* access list
//! (each op its own phase: `COPY` = read src + write dst, `RMW` = read src + read-modify-write
//! dst, ...), the tightest description a range-based analysis can get: it must be sound too,
//! and it splits the precision gap into description conservatism and value-level facts (loaded
//! bytes written back unchanged, dead reads and writes, idempotent functions such as `max`) no
//! range-based analysis sees. [`analyse`] on the exact list is also checked against a byte-level
//! reference of its documented semantics ([`reference_restartable`]).
//!
//! Every command is reproducible alone: command `i` of `--seed S` is `--commands 1 --seed S+i`
//! (`SOUNDNESS_DUMP=value-gap,declared-only` prints the commands of those categories).

mod aliasing;
mod campaign;
mod generate;
mod ops;
mod rig;
mod spec;

pub use crate::rng::Rng;
pub use aliasing::*;
pub use campaign::*;
pub use generate::*;
pub use ops::*;
pub use rig::*;
pub use spec::*;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use agx_sim::stream::{RmwFn, StreamBuilder};
use agx_winsys::analysis::{
    analyse, Access, AccessKind, Cause, ColorAttachment, ComputeCommand, DepthStencilAttachment,
    Dispatch, LoadOp, Reasons, Region, RenderPass, ShaderAccessKind, StoreOp, TransformFeedback,
    Va, Verdict,
};
use agx_winsys::cmd::{ComputeDesc, RenderDesc};
use agx_winsys::kit::Context;
use agx_winsys::{Deadline, Device, DeviceSpec, Guilt, JobOutcome, Priority, Queue};

/// Interruption points per command for the idempotency / soundness replays.
pub const POINTS: usize = 3;
/// More points for commands that look idempotent after [`POINTS`] (restartable ones included),
/// to measure how much sampling misses.
pub const EXTRA_POINTS: usize = 5;
/// The victim's data arena.
const ARENA: u64 = 8 << 20;
/// Random offsets into the pool initial images are cut from.
const POOL_SLACK: u64 = 1 << 20;
/// Never mapped: the culprit's fault address.
use agx_sim::config::UNMAPPED_VA as HOLE;
/// The executor's cost model, for classifying interruption points.
use agx_sim::gpu::exec::{BYTES_PER_NS, CHUNK, OP_COST_NS};
use agx_sim::gpu::QUANTUM_NS;
const WAIT: Deadline = Deadline::After(Duration::from_secs(30));

type Res<T> = Result<T, String>;

fn e(err: agx_winsys::Error) -> String {
    err.to_string()
}

// ---------------------------------------------------------------------------------------------
// The command.

pub fn run(commands: u64, seed: u64) -> u8 {
    match run_inner(commands, seed) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("soundness: error: {err}");
            2
        }
    }
}

fn run_inner(commands: u64, seed: u64) -> Res<u8> {
    let wall = Instant::now();
    let mut ok = true;
    {
        let mut rig = Rig::new()?;
        for r in aliasing_check(&mut rig)? {
            let good = aliasing_ok(&r);
            ok &= good;
            println!(
                "check {}: verdict {}, forced replays corrupting {}/{} points (up to {} attachment \
                 bytes), real run killed innocent: {}: {}",
                r.name,
                Verdict { reasons: r.reasons },
                r.corrupting_points,
                r.points,
                r.worst_bytes,
                if r.reasons.is_empty() {
                    "n/a (restartable, replayed)".to_string()
                } else {
                    r.killed_innocent.to_string()
                },
                if good { "ok" } else { "FAILED" }
            );
        }
    }
    let s = campaign(commands, seed, commands >= 2000)?;
    for f in &s.failures {
        println!("{f}");
    }
    let secs = wall.elapsed().as_secs_f64();
    println!(
        "commands: {} (render {}, compute {}; all accesses declared {})",
        s.commands, s.render, s.compute, s.declared
    );
    println!(
        "restartable: {} (exact access list: {}; description-only: {})",
        s.restartable, s.exact_restartable, s.declared_only
    );
    println!(
        "idempotent: {} (run twice + {} interruption points; {} on the first {} points alone)",
        s.idempotent,
        POINTS + EXTRA_POINTS,
        s.idempotent_base,
        POINTS
    );
    println!("restartable&idempotent: {}", s.restartable_idempotent);
    println!(
        "runs: {} ({} interrupted: {} replayed ({} of them stopped twice), {} killed innocent; \
         replays from inside a memory op: {}, aimed but missed: {}; cost model misses: {})",
        s.runs,
        s.interrupted,
        s.replayed,
        s.replayed_twice,
        s.killed_innocent,
        s.mid_op,
        s.aim_missed,
        s.cost_model_misses
    );
    println!(
        "not restartable, by reason: {}",
        s.reasons
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "precision gap (idempotent, not restartable): {} = unknown/undeclared {} + spills default {} \
         + other description conservatism {} + value-level only {}",
        s.idempotent - s.restartable_idempotent,
        s.gap_unknown,
        s.gap_spills,
        s.gap_description,
        s.gap_value
    );
    println!(
        "value-level gap by likely cause: {}",
        s.value_gap_kinds
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "precision (all declared): {:.1}% ({}/{})",
        s.precision_declared(),
        s.declared_restartable_idempotent,
        s.declared_idempotent
    );
    println!("precision (exact access list): {:.1}%", s.precision_exact());
    println!(
        "precision ({} points only): {:.1}%",
        POINTS,
        Summary::pct(s.restartable_idempotent_base, s.idempotent_base)
    );
    println!("outcome errors: {}", s.outcome_errors);
    println!(
        "exact access lists judged unlike the byte-level reference: {}",
        s.reference_disagreements
    );
    println!(
        "time: {secs:.1} s wall ({:.2} ms per command), {:.1} MiB simulated traffic",
        1000.0 * secs / s.commands.max(1) as f64,
        (s.traffic as f64) / f64::from(1 << 20)
    );
    println!("mismatches: {}", s.mismatches);
    println!(
        "precision: {:.1}% ({}/{})",
        s.precision(),
        s.restartable_idempotent,
        s.idempotent
    );
    ok &= s.mismatches == 0 && s.outcome_errors == 0 && s.reference_disagreements == 0;
    Ok(if ok { 0 } else { 1 })
}
