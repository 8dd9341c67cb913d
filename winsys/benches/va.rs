//! VA allocation cost against the number of live allocations: an alloc + free pair with 100
//! and with 100,000 other allocations live (and fragmented), side by side in one run.

use agx_winsys::va::VaAllocator;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};

const PAGE: u64 = 16 * 1024;

/// An allocator over 1 TiB with `live` page-sized allocations, every other one freed again so
/// the free space is fragmented.
fn populated(live: u64) -> VaAllocator {
    let mut a = VaAllocator::new(1 << 20, 1 << 40);
    let blocks: Vec<u64> = (0..2 * live)
        .map(|_| a.alloc(PAGE, PAGE).unwrap())
        .collect();
    for b in blocks.iter().step_by(2) {
        a.free(*b, PAGE);
    }
    a
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("va_alloc_free");
    for live in [100u64, 100_000] {
        let mut a = populated(live);
        g.bench_with_input(BenchmarkId::from_parameter(live), &live, |b, _| {
            b.iter(|| {
                let va = a.alloc(black_box(4 * PAGE), PAGE).unwrap();
                a.free(va, 4 * PAGE);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
