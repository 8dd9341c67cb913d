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

/// `agx_ws_vk_device_observe_submit_error` with an `error` that is not a negative errno (below
/// -4095, or positive): it went into `Errno::from_raw_os_error`, whose range assertion panicked
/// (`AGX_WS_ERR_PANIC` through the ABI), and a positive value counted as an accepted submit.
/// Now `-EINVAL`, and the device is not marked lost.
#[test]
fn observe_submit_error_refuses_what_is_not_an_errno() {
    use agx_winsys::ffi::vulkan::*;
    let mut vk = std::ptr::null_mut();
    let mut r = 0;
    // SAFETY: valid out-pointers; handles from the library.
    unsafe {
        assert_eq!(agx_ws_vk_device_create(&mut vk), 0);
        for bad in [-100_000, -4096, 1, i32::MAX, i32::MIN] {
            assert_eq!(
                agx_ws_vk_device_observe_submit_error(vk, bad, 1, &mut r),
                -libc::EINVAL,
                "{bad}"
            );
        }
        assert_eq!(agx_ws_vk_device_check_status(vk, &mut r), 0);
        assert_eq!(r, 0, "not lost");
        assert_eq!(
            agx_ws_vk_device_observe_submit_error(vk, -libc::ENOMEM, 1, &mut r),
            0
        );
        assert_eq!(agx_ws_vk_device_destroy(vk), 0);
    }
}
