//! Targets `spirv` and `plan`: the Vulkan layer's two parsers of outside bytes, through their
//! public API (`agx_vk_layer::spirv::scan`, `agx_vk_layer::plan::Plan::parse`).

use agx_vk_layer::plan::{Decision, FaultModel, Plan, Term};
use agx_vk_layer::spirv::{scan, ShaderEffects};

/// `spirv`: the bytes as a module's words (any length; a trailing partial word is dropped).
///
/// Invariants: no panic; the scan is a function of the words; a module that does not start
/// with the SPIR-V magic is unknown (never trusted to be free of memory effects).
pub fn spirv(data: &[u8]) {
    let words: Vec<u32> = data
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    let e = scan(&words);
    assert_eq!(e, scan(&words), "deterministic");
    if words.first() != Some(&0x0723_0203) {
        assert_eq!(e, ShaderEffects::UNKNOWN, "not a module: unknown");
    }
}

/// `plan`: the bytes as an `AGX_FAULT_PLAN` value (invalid UTF-8 is not a plan).
///
/// Invariants: no panic; a rejection says which term and why; an accepted plan parses back to
/// itself from its canonical form, and decides every submission without panicking (guilty and
/// hang terms win over neighbor terms).
pub fn plan(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let p = match Plan::parse(s) {
        Ok(p) => p,
        Err(e) => {
            assert!(e.to_string().contains("bad term"), "{e}");
            return;
        }
    };
    let canon: Vec<String> = p
        .terms
        .iter()
        .map(|t| match *t {
            Term::Guilty(n) => format!("guilty@{n}"),
            Term::Hang(n) => format!("hang@{n}"),
            Term::Neighbor(n) => format!("neighbor@{n}"),
            Term::NeighborEvery(n) => format!("neighbor-every@{n}"),
        })
        .collect();
    assert_eq!(Plan::parse(&canon.join(",")), Ok(p.clone()), "round trip");
    let m = FaultModel::new(p.clone());
    for n in 1..=64 {
        let d = m.on_submit(n);
        let guilty = p
            .terms
            .iter()
            .any(|t| matches!(*t, Term::Guilty(k) | Term::Hang(k) if k == n));
        assert_eq!(
            guilty,
            matches!(d, Decision::Guilty(_) | Decision::Hang),
            "submit {n}"
        );
    }
}
