//! `agx-fault-suite mutants` (cargo feature `mutants`): the mutation check of both campaigns.
//!
//! "0 mismatches" and "0 silent corruptions" only mean something if the campaigns would have
//! seen a wrong verdict. So each deliberate bug of `agx_winsys::analysis::mutants` is switched
//! into the real analysis in turn, and both campaigns run until they report a violation:
//!
//! - the soundness campaign: a command called restartable whose replay left memory different
//!   from a fault-free run (a mismatch), by command seed;
//! - the fault campaign (policy `replay`): any invariant violation, by scenario, typically a
//!   context told nothing whose memory differs from its fault-free twin.
//!
//! A mutant that survives its budget in either campaign fails the check. Afterwards the real
//! analysis runs over the same commands and scenarios: with no mutant both must be clean, so
//! every kill is the mutant's doing.

use agx_sim::RecoveryPolicy;
use agx_winsys::analysis::mutants::{self, Mutant};

use crate::{campaign, soundness};

/// The fault campaign's seed for the check.
const CAMPAIGN_SEED: u64 = 1;

struct Kill {
    mutant: Mutant,
    /// (seed, what) of the first soundness mismatch, and commands checked.
    soundness: (Option<(u64, String)>, u64),
    /// (scenario index, violation) of the first failing scenario, and scenarios checked.
    campaign: (Option<(u64, campaign::Violation)>, u64),
}

pub fn run(commands: u64, scenarios: u64) -> u8 {
    match run_inner(commands, scenarios) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mutants: error: {e}");
            2
        }
    }
}

/// The first of commands `1..=limit` for which the soundness campaign's `found` holds, with
/// its first failure line, and how many commands were checked.
fn soundness_first(
    limit: u64,
    found: fn(&soundness::Summary) -> bool,
) -> Result<(Option<(u64, String)>, u64), String> {
    let mut rig = soundness::Rig::new()?;
    let mut s = soundness::Summary::default();
    for seed in 1..=limit {
        let before = s.failures.len();
        soundness::check_command(&mut rig, seed, &mut s)?;
        if found(&s) {
            let what = s.failures[before..]
                .iter()
                .find(|f| f.starts_with("MISMATCH"))
                .or(s.failures.get(before))
                .map_or("", |f| f.lines().next().unwrap_or(""))
                .to_string();
            return Ok((Some((seed, what)), seed));
        }
    }
    Ok((None, limit))
}

/// A kill: a mismatch on a command whose description the mutated analysis called restartable
/// (the verdict the winsys submits and the simulator acts on; a mismatch only of the stream's
/// exact access list does not count).
fn killed(s: &soundness::Summary) -> bool {
    s.declared_mismatches > 0
}

/// The real analysis must give no failure at all.
fn any_failure(s: &soundness::Summary) -> bool {
    !s.failures.is_empty()
}

fn run_inner(commands: u64, scenarios: u64) -> Result<u8, String> {
    println!(
        "mutation check: each mutant of the analysis against the soundness campaign (up to \
         {commands} commands) and the fault campaign (seed {CAMPAIGN_SEED}, policy replay, up to \
         {scenarios} scenarios)"
    );
    let mut kills = Vec::new();
    for m in Mutant::ALL {
        mutants::set(Some(m));
        let soundness = soundness_first(commands, killed)?;
        let campaign = campaign::first_violation(CAMPAIGN_SEED, scenarios, RecoveryPolicy::Replay);
        kills.push(Kill {
            mutant: m,
            soundness,
            campaign,
        });
    }
    mutants::set(None);

    // The real analysis over everything the mutants needed: no violation.
    let sound_n = kills.iter().map(|k| k.soundness.1).max().unwrap_or(0);
    let camp_n = kills.iter().map(|k| k.campaign.1).max().unwrap_or(0);
    let base_sound = soundness_first(sound_n, any_failure)?;
    let base_camp = campaign::first_violation(CAMPAIGN_SEED, camp_n, RecoveryPolicy::Replay);

    println!();
    println!("| mutant | soundness campaign | fault campaign |");
    println!("| --- | --- | --- |");
    let mut survivors = 0;
    for k in &kills {
        let s = match &k.soundness.0 {
            Some((seed, _)) => format!("killed: command seed {seed}"),
            None => {
                survivors += 1;
                format!("SURVIVED {} commands", k.soundness.1)
            }
        };
        let c = match &k.campaign.0 {
            Some((i, v)) => format!(
                "killed: scenario {i} ({} checked), invariant {}",
                k.campaign.1, v.invariant
            ),
            None => {
                survivors += 1;
                format!("SURVIVED {} scenarios", k.campaign.1)
            }
        };
        println!("| {} | {s} | {c} |", k.mutant.name());
    }
    println!();
    for k in &kills {
        let m = k.mutant.name();
        if let Some((seed, what)) = &k.soundness.0 {
            println!("{m}, soundness: {what}");
            println!(
                "  reproduce: agx-fault-suite --mutant {m} soundness --commands 1 --seed {seed}"
            );
        }
        if let Some((i, v)) = &k.campaign.0 {
            println!("{m}, fault campaign: invariant {}: {}", v.invariant, v.what);
            println!(
                "  reproduce: agx-fault-suite --mutant {m} campaign --seed {CAMPAIGN_SEED} \
                 --iterations 1 --scenario {i} --policy replay"
            );
        }
    }
    let base_ok = base_sound.0.is_none() && base_camp.0.is_none();
    println!(
        "real analysis over the same work: soundness {} ({} commands), fault campaign {} ({} \
         scenarios)",
        base_sound
            .0
            .as_ref()
            .map_or("clean".to_string(), |(s, w)| format!("FAILED at {s}: {w}")),
        sound_n,
        base_camp
            .0
            .as_ref()
            .map_or("clean".to_string(), |(i, v)| format!(
                "FAILED at scenario {i}: {}",
                v.what
            )),
        camp_n
    );
    println!(
        "mutants killed: {}/{} in both campaigns",
        kills.len()
            - kills
                .iter()
                .filter(|k| k.soundness.0.is_none() || k.campaign.0.is_none())
                .count(),
        kills.len()
    );
    Ok(if survivors == 0 && base_ok { 0 } else { 1 })
}
