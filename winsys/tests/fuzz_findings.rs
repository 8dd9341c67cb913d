//! Regression tests for what fuzzing the C ABI found (tools/fuzz.sh, target `c_abi`; the inputs
//! themselves are in fuzz/regressions/c_abi/ and replay in `cargo test -p agx-fuzz`). Each test
//! names the finding and fails on the code before its fix.

use agx_winsys::*;

fn sim() -> Device {
    Device::open(&DeviceSpec::parse("sim").unwrap()).unwrap()
}

/// `agx_ws_vm_bind_at` with `va + size` past 2^64: `Vm::bind_at` computed the end unchecked (an
/// overflow panic with overflow checks, which the C ABI turned into `AGX_WS_ERR_PANIC`; a
/// wrapped range and a wrong overlap check without). Now `EINVAL`, nothing bound.
#[test]
fn bind_at_with_a_range_past_the_address_space_is_einval() {
    let dev = sim();
    let vm = Vm::new(&dev).unwrap();
    let bo = Bo::new(&dev, 16 << 10, BoFlags::WRITEBACK, None).unwrap();
    let e = vm
        .bind_at(&bo, 0, 16 << 10, u64::MAX - 4096, Access::READ)
        .unwrap_err();
    assert_eq!(e.errno(), rustix::io::Errno::INVAL, "{e}");
    let e = vm
        .bind_at(&bo, 0, u64::MAX, 1 << 20, Access::READ)
        .unwrap_err();
    assert_eq!(e.errno(), rustix::io::Errno::INVAL, "{e}");
}
