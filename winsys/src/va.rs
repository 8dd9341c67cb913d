//! GPU virtual address allocation: best fit over free ranges indexed by size and by start, so
//! allocation and free are O(log n) in the number of free ranges, and freed ranges coalesce and
//! are reused.

use std::collections::{BTreeMap, BTreeSet};

/// Allocator of one VA window.
#[derive(Debug, Clone)]
pub struct VaAllocator {
    by_start: BTreeMap<u64, u64>,
    by_size: BTreeSet<(u64, u64)>,
    free_bytes: u64,
}

impl VaAllocator {
    /// An allocator owning `[start, end)`.
    pub fn new(start: u64, end: u64) -> VaAllocator {
        let mut a = VaAllocator {
            by_start: BTreeMap::new(),
            by_size: BTreeSet::new(),
            free_bytes: 0,
        };
        if end > start {
            a.insert(start, end - start);
        }
        a
    }

    fn insert(&mut self, start: u64, len: u64) {
        self.by_start.insert(start, len);
        self.by_size.insert((len, start));
        self.free_bytes += len;
    }

    fn remove(&mut self, start: u64, len: u64) {
        self.by_start.remove(&start);
        self.by_size.remove(&(len, start));
        self.free_bytes -= len;
    }

    /// Allocates `size` bytes aligned to `align` (a power of two). Best fit: the smallest free
    /// range that holds the aligned request.
    pub fn alloc(&mut self, size: u64, align: u64) -> Option<u64> {
        if size == 0 || !align.is_power_of_two() {
            return None;
        }
        let found = self.by_size.range((size, 0)..).find_map(|&(len, start)| {
            let a = start.checked_next_multiple_of(align)?;
            (a.checked_add(size)? <= start + len).then_some((start, len, a))
        });
        let (start, len, a) = found?;
        self.remove(start, len);
        if a > start {
            self.insert(start, a - start);
        }
        let end = start + len;
        if a + size < end {
            self.insert(a + size, end - (a + size));
        }
        Some(a)
    }

    /// Returns `[start, start + size)`, merging with free neighbours. The caller guarantees the
    /// range was allocated (the VM's binding table checks this).
    pub fn free(&mut self, mut start: u64, mut size: u64) {
        if let Some((&s, &l)) = self.by_start.range(..start).next_back() {
            if s + l == start {
                self.remove(s, l);
                start = s;
                size += l;
            }
        }
        if let Some(&l) = self.by_start.get(&(start + size)) {
            self.remove(start + size, l);
            size += l;
        }
        self.insert(start, size);
    }

    /// Free bytes left.
    pub fn free_bytes(&self) -> u64 {
        self.free_bytes
    }

    /// Number of free ranges (fragmentation).
    pub fn fragments(&self) -> usize {
        self.by_start.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exhaustion_and_reuse() {
        let mut a = VaAllocator::new(0x10000, 0x20000);
        let x = a.alloc(0x8000, 0x4000).unwrap();
        let y = a.alloc(0x8000, 0x4000).unwrap();
        assert_ne!(x, y);
        assert_eq!(a.alloc(0x4000, 0x4000), None, "exhausted");
        a.free(x, 0x8000);
        assert_eq!(a.alloc(0x8000, 0x4000), Some(x), "freed range reused");
    }

    #[test]
    fn fragmentation_and_coalescing() {
        let mut a = VaAllocator::new(0, 0x100000);
        let blocks: Vec<u64> = (0..16).map(|_| a.alloc(0x10000, 0x1000).unwrap()).collect();
        for (i, b) in blocks.iter().enumerate() {
            if i % 2 == 0 {
                a.free(*b, 0x10000);
            }
        }
        assert_eq!(a.fragments(), 8);
        assert_eq!(a.alloc(0x20000, 0x1000), None, "no hole is large enough");
        for (i, b) in blocks.iter().enumerate() {
            if i % 2 == 1 {
                a.free(*b, 0x10000);
            }
        }
        assert_eq!(a.fragments(), 1, "everything coalesced");
        assert_eq!(a.alloc(0x100000, 0x1000), Some(0));
    }

    #[test]
    fn alignment() {
        let mut a = VaAllocator::new(0x1000, 1 << 40);
        let x = a.alloc(0x1000, 1 << 32).unwrap();
        assert_eq!(x % (1 << 32), 0);
        assert!(a.fragments() >= 2, "the skipped head stays free");
    }

    proptest! {
        #[test]
        fn never_overlaps(ops in proptest::collection::vec((1u64..64, any::<bool>()), 1..200)) {
            let mut a = VaAllocator::new(0, 1 << 20);
            let mut live: Vec<(u64, u64)> = Vec::new();
            for (pages, free) in ops {
                if free && !live.is_empty() {
                    let (s, l) = live.swap_remove(0);
                    a.free(s, l);
                } else if let Some(s) = a.alloc(pages * 0x1000, 0x1000) {
                    let l = pages * 0x1000;
                    for &(s2, l2) in &live {
                        prop_assert!(s + l <= s2 || s2 + l2 <= s, "overlap");
                    }
                    live.push((s, l));
                }
            }
            let used: u64 = live.iter().map(|&(_, l)| l).sum();
            prop_assert_eq!(a.free_bytes() + used, 1 << 20);
        }
    }
}
