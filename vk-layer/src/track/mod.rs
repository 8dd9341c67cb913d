//! What the application's command buffers do to memory, as ordered accesses over
//! `(VkDeviceMemory, offset)` ranges, for the restartability analysis of `agx_winsys::analysis`,
//! and, separately, every binding a submission can write, for the scramble.
//!
//! The tracker keeps the objects that turn API handles into memory ranges (`objects`:
//! allocations, buffer and image bindings, swapchain images, views, render passes,
//! framebuffers, pipelines with their shaders' effects, descriptor sets, update templates) and,
//! per command buffer, what was recorded so far (`record`; render passes in `pass`). Everything
//! here is safe code working on already-decoded Vulkan structures; the hooks in `crate::cmd`
//! decode them.
//!
//! Phases: each recorded command gets a phase of its own in submission order (a valid
//! application orders dependent commands with barriers, which order everything before them),
//! and a render pass takes three (load, draw, store; see `agx_winsys::analysis::RenderPass`).
//! Anything the tracker cannot bound (an unbound object, an untracked descriptor set, a shader
//! using buffer device addresses, a command it does not model) is an `Unknown` access, which
//! makes the submission not restartable.
//!
//! The scramble does not trust those ranges: `reach` lists, per command buffer, every binding
//! its commands can write (whole buffers and images: attachments that may be stored, storage
//! descriptors of the sets bound at each draw and dispatch, transfer and query destinations),
//! resolved when the submission is analysed.

mod objects;
mod pass;
mod reach;
mod record;
#[cfg(test)]
mod tests;

use agx_winsys::analysis::{analyse, Access, AccessKind, Cause, Reasons, Region};

pub use objects::*;
pub use pass::PassRec;
pub use reach::Reach;
pub use record::{CmdRecord, EventOp, COMPUTE, GRAPHICS};

/// The address space of the analysis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Space {
    /// No memory (diagnostic hint of unknown accesses).
    #[default]
    Unbound,
    /// A `VkDeviceMemory` (raw handle), in bytes.
    Memory(u64),
    /// A `VkQueryPool` (raw handle), in queries.
    Query(u64),
    /// An image whose memory the application does not own (a swapchain image, raw handle), in
    /// bytes: it aliases nothing else.
    Image(u64),
}

/// A hash map keyed by Vulkan handles (or small integers): a multiply-shift hash instead of
/// SipHash (keys are not attacker-chosen; every tracked command looks some up).
pub type Map<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

/// The hasher of [`Map`].
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // The high bits of a multiplicative hash are the well-mixed ones.
        self.0.rotate_left(26)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0 ^ i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

/// A range in a [`Space`].
pub type Reg = Region<Space>;

pub(crate) const UNKNOWN_REG: Reg = Region::new(Space::Unbound, 0, 0);

/// `VK_WHOLE_SIZE`.
pub const WHOLE_SIZE: u64 = u64::MAX;

/// Deliberate weakenings of the tracker, for the test that proves the scramble does not rely
/// on it (`AGX_FAULT_WEAKEN`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Weaken {
    /// The analysis misses the writes of colour attachments (stores and spills).
    pub attachment_writes: bool,
}

impl Weaken {
    /// Parses `AGX_FAULT_WEAKEN` (`attachment-writes`, or empty).
    pub fn parse(s: &str) -> Result<Weaken, String> {
        let mut w = Weaken::default();
        for t in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match t {
                "attachment-writes" => w.attachment_writes = true,
                other => return Err(format!("unknown weakening {other:?}")),
            }
        }
        Ok(w)
    }
}

/// Per-device tracked objects and command buffers (raw handles as keys).
#[derive(Debug, Default)]
pub struct Tracker {
    pub objects: Objects,
    pub cbs: Map<u64, CmdRecord>,
    pub weaken: Weaken,
}

/// The verdict on one submission.
#[derive(Clone, Debug, Default)]
pub struct SubmissionVerdict {
    pub reasons: Reasons,
    /// Reasons outside the memory model (commands not modelled, events, ...).
    pub extra: Vec<&'static str>,
    /// Every range the submission can write (whole bindings), from [`Reach`], not from the
    /// analysis: what a neighbour fault scrambles.
    pub scramble: Vec<Reg>,
    /// Why some binding of the submission could not be resolved for the scramble (then a
    /// replay would be unsafe).
    pub unresolved: Option<&'static str>,
}

impl SubmissionVerdict {
    pub fn restartable(&self) -> bool {
        self.reasons.is_empty() && self.extra.is_empty()
    }

    /// The reasons' short names (analysis reasons, then the layer's own).
    pub fn reason_names(&self) -> Vec<&'static str> {
        self.reasons
            .short_names()
            .chain(self.extra.iter().copied())
            .collect()
    }
}

fn push_unique(v: &mut Vec<&'static str>, r: &'static str) {
    if !v.contains(&r) {
        v.push(r);
    }
}

impl Tracker {
    /// The record of command buffer `cb` (created empty on first use).
    pub fn rec(&mut self, cb: u64) -> &mut CmdRecord {
        self.cbs.entry(cb).or_default()
    }

    /// Analyses a submission made of command buffers `cbs`, in submission order: the
    /// restartability verdict and the ranges to scramble.
    pub fn analyse_submission(&self, cbs: &[u64]) -> SubmissionVerdict {
        let mut all = Vec::new();
        let mut extra = Vec::new();
        let mut reach = Vec::new();
        let mut events = Vec::new();
        let mut base = 0u32;
        // A dynamic rendering pass suspended by an earlier command buffer of the submission.
        let mut carried: Option<PassRec> = None;
        for cb in cbs {
            let Some(r) = self.cbs.get(cb) else {
                all.push(Access::new(
                    base,
                    AccessKind::Unknown,
                    UNKNOWN_REG,
                    Cause::Transfer,
                ));
                push_unique(&mut extra, "untracked_command_buffer");
                base += 1;
                continue;
            };
            if let Some((head, at)) = &r.resumed_head {
                match carried.take() {
                    Some(mut p) => {
                        p.merge(head.clone());
                        let mut out = Vec::new();
                        p.lower_into(&mut out, self.weaken);
                        all.extend(out.into_iter().map(|mut a| {
                            a.phase += base + at;
                            a
                        }));
                    }
                    None => push_unique(&mut extra, "resume_without_suspend"),
                }
            } else if let Some(p) = &r.resumed_tail {
                // Resumes and suspends again: the chain goes on.
                match &mut carried {
                    Some(c) => c.merge(p.clone()),
                    None => push_unique(&mut extra, "resume_without_suspend"),
                }
            } else if carried.is_some() {
                push_unique(&mut extra, "suspended_pass_not_resumed");
                carried = None;
            }
            all.extend(r.accesses.iter().map(|a| {
                let mut a = *a;
                a.phase += base;
                a
            }));
            base += r.phase;
            for e in &r.extra {
                push_unique(&mut extra, e);
            }
            reach.extend(r.reach.iter().cloned());
            events.extend(r.events.iter().copied());
            if r.resumed_tail.is_none() {
                if let Some(p) = &r.suspended {
                    carried = Some(p.clone());
                }
            }
        }
        if carried.is_some() {
            push_unique(&mut extra, "suspended_pass_not_resumed");
        }
        if let Some(r) = record::events_replay_hazard(&events) {
            push_unique(&mut extra, r);
        }
        let verdict = analyse(&all);
        let (scramble, unresolved) = reach::resolve(&self.objects, &reach);
        SubmissionVerdict {
            reasons: verdict.reasons,
            extra,
            scramble,
            unresolved,
        }
    }
}
