//! What a submission can write, independently of the range analysis: whole bindings named by
//! the recorded commands, resolved to memory (or swapchain images) when the submission is
//! analysed. The scramble covers all of it, so a write the analysis misses is scrambled all
//! the same and a wrong replay shows.

use super::{DescKind, DescRes, Objects, Reg, Space};

/// A binding a recorded command can write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    Buffer(u64),
    Image(u64),
    View(u64),
    BufferView(u64),
    /// The storage descriptors of a descriptor set (resolved with its content at submission).
    Set(u64),
    /// Push descriptors (their storage slots, as recorded).
    Slots(Vec<DescRes>),
    /// Something the layer cannot name (the reason).
    Unresolvable(&'static str),
}

/// Resolves `reach` to ranges (deduplicated), or names what could not be resolved.
pub fn resolve(o: &Objects, reach: &[Reach]) -> (Vec<Reg>, Option<&'static str>) {
    let mut out: Vec<Reg> = Vec::new();
    let mut unresolved = None;
    let mut add = |r: Option<Reg>, why: &'static str, out: &mut Vec<Reg>| match r {
        Some(r) if r.len > 0 => out.push(r),
        Some(_) => {}
        None => unresolved = unresolved.or(Some(why)),
    };
    for r in reach {
        match r {
            Reach::Buffer(b) => add(o.buffer_binding(*b), "unbound_buffer", &mut out),
            Reach::Image(i) => add(o.image_region(*i), "unbound_image", &mut out),
            Reach::View(v) => add(o.view_region(*v), "unknown_view", &mut out),
            Reach::BufferView(v) => add(
                o.buffer_views
                    .get(v)
                    .and_then(|&(b, _, _)| o.buffer_binding(b)),
                "unknown_buffer_view",
                &mut out,
            ),
            Reach::Set(s) => match o.sets.get(s) {
                Some(set) if !set.unknown => {
                    for &(kind, res) in set.slots.values() {
                        match kind {
                            DescKind::Storage if res != DescRes::None => {
                                add(o.desc_binding(res), "unbound_descriptor", &mut out)
                            }
                            DescKind::Unknown => add(None, "unknown_descriptor", &mut out),
                            _ => {}
                        }
                    }
                }
                _ => add(None, "unknown_descriptor_set", &mut out),
            },
            Reach::Slots(v) => {
                for &res in v {
                    add(o.desc_binding(res), "unbound_descriptor", &mut out);
                }
            }
            Reach::Unresolvable(why) => add(None, why, &mut out),
        }
    }
    out.retain(|r| matches!(r.space, Space::Memory(_) | Space::Image(_)));
    out.sort();
    out.dedup();
    (out, unresolved)
}
