//! Copies to and from memory shared with the GPU: BO mappings that the GPU (or, in the
//! simulator, the simulated GPU running on another thread) and the CPU access at the same time.
//!
//! A plain `copy_nonoverlapping` into memory another thread writes concurrently is a data race,
//! undefined behaviour under Rust's memory model, whatever the hardware does. Every access here
//! is instead an atomic load or store of an aligned 8-byte word (`Relaxed`: ordering between
//! the GPU's writes and the CPU's reads comes from the fences that say a job is done, never
//! from the copy itself). The bytes of a partially covered word at either end of a write are
//! merged in with a compare-exchange loop, so bytes outside the range are never rewritten with
//! stale values, and all accesses to a word have the same size (no mixed-size atomics).
//!
//! The simulator's BO mappings (`agx_sim::mem::Mapping`) and the winsys's render-node mappings
//! (`agx_winsys::kernel::RenderNode`) both copy through here; nothing else in Rust touches BO
//! memory, so every concurrent access to it is atomic. A C driver writing through its own
//! pointer is outside Rust's model, like the GPU itself.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

const W: usize = 8;

/// The word of shared memory at `addr` (a multiple of 8).
///
/// # Safety
/// `addr` is 8-aligned and the 8 bytes at it are inside a live read-write mapping that every
/// Rust access reaches only through this module.
unsafe fn word<'a>(addr: usize) -> &'a AtomicU64 {
    // SAFETY: aligned (the caller's contract), valid for reads and writes for as long as the
    // mapping lives, and never accessed non-atomically or with another size from Rust.
    unsafe { AtomicU64::from_ptr(addr as *mut u64) }
}

/// Copies `dst.len()` bytes of shared memory starting at `src` into `dst`.
///
/// # Safety
/// `[src, src + dst.len())` lies in a live read-write mapping of memory (page-granular, as
/// `mmap` gives, so the 8-byte words containing its first and last byte are mapped too), and
/// every Rust access to that memory goes through this module.
pub unsafe fn read(src: *const u8, dst: &mut [u8]) {
    let start = src as usize;
    let end = start + dst.len();
    let mut a = start & !(W - 1);
    while a < end {
        // SAFETY: `a` is 8-aligned and its word overlaps the range, so it is in the mapping.
        let v = unsafe { word(a) }.load(Relaxed).to_ne_bytes();
        let lo = start.max(a);
        let hi = end.min(a + W);
        dst[lo - start..hi - start].copy_from_slice(&v[lo - a..hi - a]);
        a += W;
    }
}

/// Copies `src` into shared memory starting at `dst`.
///
/// # Safety
/// As for [`read`], with `[dst, dst + src.len())`.
pub unsafe fn write(dst: *mut u8, src: &[u8]) {
    let start = dst as usize;
    let end = start + src.len();
    let mut a = start & !(W - 1);
    while a < end {
        // SAFETY: as in `read`.
        let w = unsafe { word(a) };
        let lo = start.max(a);
        let hi = end.min(a + W);
        let part = &src[lo - start..hi - start];
        if hi - lo == W {
            let mut b = [0u8; W];
            b.copy_from_slice(part);
            w.store(u64::from_ne_bytes(b), Relaxed);
        } else {
            // Only some bytes of this word are ours: merge them in, leaving the others as the
            // GPU (or another thread) has them at this instant.
            let _ = w.fetch_update(Relaxed, Relaxed, |old| {
                let mut b = old.to_ne_bytes();
                b[lo - a..hi - a].copy_from_slice(part);
                Some(u64::from_ne_bytes(b))
            });
        }
        a += W;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    /// A word-aligned buffer standing in for a mapping.
    fn buf(words: usize, seed: u8) -> Vec<AtomicU64> {
        (0..words)
            .map(|i| {
                let b = [seed.wrapping_add(i as u8); 8].map(|x| x ^ 0xa5);
                AtomicU64::new(u64::from_ne_bytes(b))
            })
            .collect()
    }

    fn bytes(m: &[AtomicU64]) -> Vec<u8> {
        m.iter()
            .flat_map(|w| w.load(Relaxed).to_ne_bytes())
            .collect()
    }

    proptest! {
        /// Every offset and length, against a plain byte-array model.
        #[test]
        fn copies_match_a_plain_model(off in 0usize..40, len in 0usize..90, seed: u8) {
            let m = buf(20, seed);
            let mut model = bytes(&m);
            let src: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect();
            let base = m.as_ptr() as *mut u8;
            // SAFETY: the range is inside `m` (20 words = 160 bytes >= 40 + 90 + 7).
            unsafe { write(base.add(off), &src) };
            model[off..off + len].copy_from_slice(&src);
            prop_assert_eq!(bytes(&m), model.clone());
            let mut out = vec![0u8; len];
            // SAFETY: as above.
            unsafe { read(base.add(off), &mut out) };
            prop_assert_eq!(&out[..], &model[off..off + len]);
        }
    }

    /// A writer replacing whole words while a reader copies them out: every word read is one
    /// the writer wrote, never a mix, and bytes next to a partial write keep their value.
    #[test]
    fn concurrent_reader_sees_whole_words() {
        let m = buf(64, 0);
        let base = m.as_ptr() as usize;
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..20_000u32 {
                    let v = [(i % 251) as u8; 8 * 63];
                    // SAFETY: words 1..64 of `m`.
                    unsafe { write((base + 8) as *mut u8, &v) };
                    // Byte 3 of word 0 only: bytes 0-2 and 4-7 of it stay as they are.
                    // SAFETY: inside word 0 of `m`.
                    unsafe { write((base + 3) as *mut u8, &[(i % 7) as u8]) };
                }
            });
            s.spawn(|| {
                let first = m[0].load(Relaxed).to_ne_bytes();
                let mut out = [0u8; 8 * 64];
                for _ in 0..20_000 {
                    // SAFETY: all of `m`.
                    unsafe { read(base as *const u8, &mut out) };
                    for w in out[8..].chunks(8) {
                        assert!(w.iter().all(|&b| b == w[0]), "torn word {w:?}");
                    }
                    assert_eq!(out[..3], first[..3]);
                    assert_eq!(out[4..8], first[4..8]);
                }
            });
        });
    }
}
