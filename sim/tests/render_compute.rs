//! End-to-end GPU execution on the simulated device: render and compute commands that fill and
//! copy memory, checked byte for byte through the CPU mapping.

mod common;

use agx_sim::stream::{RmwFn, StreamBuilder};
use common::*;

const STREAM: u64 = 0x10_0000;
const A: u64 = 0x20_0000;
const B: u64 = 0x40_0000;

#[test]
fn render_fill_then_compute_copy() {
    let (_d, f) = device();
    let vm = vm(&f);
    let q = queue(&f, vm);
    let (_s, sm) = buffer(&f, vm, STREAM, 0x4000, RW);
    let (_a, am) = buffer(&f, vm, A, 0x20000, RW);
    let (_b, bm) = buffer(&f, vm, B, 0x20000, RW);
    put_stream(
        &sm,
        0,
        StreamBuilder::new()
            .fill(A, 0x10000, 0xdead_beef)
            .fill(A + 0x10000, 3, 0x0000_0a0b),
    );
    put_stream(
        &sm,
        0x1000,
        StreamBuilder::new()
            .copy(B, A, 0x10003)
            .rmw(B, A, 16, RmwFn::Xor),
    );
    let mut c = Cmd::compute(STREAM + 0x1000);
    c.vdm_barrier = 1; // after the render command of this submit
    let done = submit(&f, q, &[Cmd::render(STREAM), c], &[]).unwrap();
    wait(&f, &[done], 1000).unwrap();
    assert_eq!(fence_status(&f, done), 1);
    let mut got = vec![0u8; 0x10003];
    bm.read(0, &mut got);
    let mut want: Vec<u8> = [0xef, 0xbe, 0xad, 0xde]
        .iter()
        .copied()
        .cycle()
        .take(0x10000)
        .collect();
    want.extend_from_slice(&[0x0b, 0x0a, 0x00]);
    for w in want.iter_mut().take(16) {
        *w ^= *w; // B[i] ^= A[i] with B == A
    }
    assert_eq!(got, want);
    let mut a0 = [0u8; 4];
    am.read(0, &mut a0);
    assert_eq!(a0, [0xef, 0xbe, 0xad, 0xde]);
}
