//! Regression test for a finding of the `spirv` target: the scan sized two tables by the id
//! bound the module's header claims, so a 20-byte module claiming 4M ids allocated 32 MiB (and
//! took 0.1 s) at `vkCreateShaderModule`. Memory must follow the module, not its claim.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the bytes allocated (never freed back: a high-water mark of what was asked).
struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: forwarded.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn scanning_a_tiny_module_allocates_little_whatever_bound_it_claims() {
    let input = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../regressions/spirv/slow-module-claiming-4m-ids"
    ))
    .expect("the regression input");
    let words: Vec<u32> = input
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert!(words[3] >= 1 << 20, "the module claims a huge id bound");
    let before = ALLOCATED.load(Ordering::Relaxed);
    let e = agx_vk_layer::spirv::scan(&words);
    let used = ALLOCATED.load(Ordering::Relaxed) - before;
    assert!(
        used < 64 << 10,
        "{used} bytes allocated to scan {} bytes ({e:?})",
        input.len()
    );
}
