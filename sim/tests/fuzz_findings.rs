//! Regression tests for what fuzzing the ioctl boundary found (tools/fuzz.sh, target `ioctl`;
//! the inputs themselves are in fuzz/regressions/ioctl/ and replay in `cargo test -p agx-fuzz`).
//! Each test names the finding and fails on the code before its fix.

mod common;

use agx_sim::Errno;
use agx_uapi::asahi::*;
use common::*;

/// `SUBMIT` with a 4 GiB `cmdbuf_size` made the simulator allocate 4 GiB before reading a byte
/// (libFuzzer: out-of-memory). The kernel copies the cmdbuf into kmalloc'ed memory: past
/// `KMALLOC_MAX_SIZE` it is `ENOMEM`, and nothing is allocated.
#[test]
fn huge_cmdbuf_size_is_enomem_without_allocating_it() {
    let (_d, f) = device();
    let vm = vm(&f);
    let q = queue(&f, vm);
    let buf = [0u8; 64];
    for size in [u32::MAX, (4 << 20) + 1] {
        let mut a = drm_asahi_submit {
            cmdbuf: buf.as_ptr() as u64,
            queue_id: q,
            cmdbuf_size: size,
            ..Default::default()
        };
        assert_eq!(
            io(&f, DRM_IOCTL_ASAHI_SUBMIT, &mut a),
            Err(Errno::NOMEM),
            "{size}"
        );
    }
}
