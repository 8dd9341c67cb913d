//! GPU virtual address spaces: the page tables the GPU's accesses go through.
//!
//! A VM maps 16 KiB pages to (BO, offset) with read/write permissions. Mappings are kept as an
//! extent map (start -> run of pages) so lookups are O(log n) in the number of bindings.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::bo::Bo;
use crate::config::PAGE_SIZE;

/// One contiguous binding.
#[derive(Clone, Debug)]
pub struct Extent {
    pub len: u64,
    pub bo: Arc<Bo>,
    pub bo_offset: u64,
    pub read: bool,
    pub write: bool,
    /// `DRM_ASAHI_BIND_SINGLE_PAGE`: every page maps the same BO page.
    pub single_page: bool,
}

/// Why a translation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessError {
    Unmapped,
    Permission,
}

/// The page tables of one VM.
#[derive(Debug, Default)]
pub struct PageTable {
    extents: BTreeMap<u64, Extent>,
}

impl PageTable {
    /// Maps `[addr, addr + ext.len)`, replacing whatever was there (drm_gpuvm semantics).
    pub fn map(&mut self, addr: u64, ext: Extent) {
        self.unmap(addr, ext.len);
        self.extents.insert(addr, ext);
    }

    /// Unmaps `[addr, addr + len)`, splitting extents that straddle its ends.
    pub fn unmap(&mut self, addr: u64, len: u64) {
        let end = addr + len;
        let first = self
            .extents
            .range(..addr)
            .next_back()
            .map(|(&s, _)| s)
            .unwrap_or(addr);
        let keys: Vec<u64> = self.extents.range(first..end).map(|(&s, _)| s).collect();
        for start in keys {
            let ext = self.extents.remove(&start).expect("key just listed");
            let ext_end = start + ext.len;
            if ext_end <= addr || start >= end {
                self.extents.insert(start, ext);
                continue;
            }
            if start < addr {
                let mut head = ext.clone();
                head.len = addr - start;
                self.extents.insert(start, head);
            }
            if ext_end > end {
                let mut tail = ext;
                let skip = end - start;
                if !tail.single_page {
                    tail.bo_offset += skip;
                }
                tail.len = ext_end - end;
                self.extents.insert(end, tail);
            }
        }
    }

    /// Translates `addr` for an access of up to `len` bytes that does not cross a page.
    /// Returns the BO and the byte offset in it.
    pub fn translate(&self, addr: u64, write: bool) -> Result<(&Arc<Bo>, u64), AccessError> {
        let (&start, ext) = self
            .extents
            .range(..=addr)
            .next_back()
            .ok_or(AccessError::Unmapped)?;
        if addr >= start + ext.len {
            return Err(AccessError::Unmapped);
        }
        if write && !ext.write {
            return Err(if ext.read {
                AccessError::Permission
            } else {
                AccessError::Unmapped
            });
        }
        if !write && !ext.read {
            return Err(AccessError::Unmapped);
        }
        let off = addr - start;
        let bo_off = if ext.single_page {
            ext.bo_offset + off % PAGE_SIZE
        } else {
            ext.bo_offset + off
        };
        Ok((&ext.bo, bo_off))
    }

    /// Number of extents (for tests and stats).
    pub fn extent_count(&self) -> usize {
        self.extents.len()
    }

    /// Drops every mapping of `bo` (its last handle in the VM's file was closed).
    pub fn unmap_bo(&mut self, bo: &Arc<Bo>) {
        self.extents.retain(|_, e| !Arc::ptr_eq(&e.bo, bo));
    }

    /// Drops every mapping (VM destroy).
    pub fn clear(&mut self) {
        self.extents.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bo(size: u64) -> Arc<Bo> {
        Arc::new(Bo::new(size, 0, None).unwrap())
    }

    #[test]
    fn split_and_translate() {
        let b = bo(4 * PAGE_SIZE);
        let mut pt = PageTable::default();
        pt.map(
            0x10000,
            Extent {
                len: 4 * PAGE_SIZE,
                bo: b.clone(),
                bo_offset: 0,
                read: true,
                write: true,
                single_page: false,
            },
        );
        pt.unmap(0x10000 + PAGE_SIZE, PAGE_SIZE);
        assert_eq!(pt.extent_count(), 2);
        assert_eq!(pt.translate(0x10000 + 5, false).unwrap().1, 5);
        assert_eq!(
            pt.translate(0x10000 + PAGE_SIZE, false).unwrap_err(),
            AccessError::Unmapped
        );
        assert_eq!(
            pt.translate(0x10000 + 2 * PAGE_SIZE + 7, true).unwrap().1,
            2 * PAGE_SIZE + 7
        );
        pt.map(
            0x10000,
            Extent {
                len: PAGE_SIZE,
                bo: b.clone(),
                bo_offset: 3 * PAGE_SIZE,
                read: true,
                write: false,
                single_page: false,
            },
        );
        assert_eq!(
            pt.translate(0x10000, true).unwrap_err(),
            AccessError::Permission
        );
        assert_eq!(
            pt.translate(0x10000 + 1, false).unwrap().1,
            3 * PAGE_SIZE + 1
        );
        pt.map(
            0x100000,
            Extent {
                len: 8 * PAGE_SIZE,
                bo: b,
                bo_offset: PAGE_SIZE,
                read: true,
                write: true,
                single_page: true,
            },
        );
        assert_eq!(
            pt.translate(0x100000 + 5 * PAGE_SIZE + 9, false).unwrap().1,
            PAGE_SIZE + 9
        );
    }
}
