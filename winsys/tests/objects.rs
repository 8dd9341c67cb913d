//! Life cycles of the winsys objects on the embedded simulated device, and bad use of the API
//! returning errors rather than panicking.

use std::os::fd::AsFd;
use std::time::Duration;

use agx_winsys::sync::{sync_file_status, wait_many};
use agx_winsys::vm::{VmLayout, PAGE_SIZE, USC_WINDOW};
use agx_winsys::*;

fn dev() -> Device {
    Device::open(&DeviceSpec::Sim(sim::SimOptions::default())).unwrap()
}

#[test]
fn device_parameters_and_features() {
    let d = dev();
    let p = d.params();
    assert_eq!(p.gpu_generation, 13);
    assert_eq!(p.gpu_variant, 'G');
    assert_eq!(p.gpu_name(), "G13G B1");
    assert!(p.core_count() > 0);
    assert!(p.vm_range.start < p.vm_range.end);
    assert!(p.max_commands_per_submission > 0);
    let e = d
        .fault_ext()
        .expect("the simulator has the extension by default");
    assert_eq!(e.version, 1);
    assert!(e.results && e.queue_state);
    assert!(d.is_simulated());
    assert!(d.sim_control().is_some());

    let up = Device::open(&DeviceSpec::parse("sim:upstream").unwrap()).unwrap();
    assert!(up.fault_ext().is_none(), "upstream mode: group 1 refused");
}

#[test]
fn vm_layout_has_kernel_carveout_and_usc_window() {
    let d = dev();
    let l = VmLayout::for_device(&d).unwrap();
    let p = d.params();
    assert_eq!(l.kernel.1, p.vm_range.end);
    assert!(l.kernel.1 - l.kernel.0 >= p.vm_kernel_min_size);
    assert_eq!(l.usc.0 % USC_WINDOW, 0);
    assert_eq!(l.usc.1 - l.usc.0, USC_WINDOW);
    assert!(l.usc.1 <= l.kernel.0 && l.usc.0 >= p.vm_range.start);
    let vm = Vm::new(&d).unwrap();
    assert_eq!(vm.usc_base(), l.usc.0);
}

#[test]
fn bo_map_bind_unbind_close() {
    let d = dev();
    let vm = Vm::new(&d).unwrap();
    let bo = Bo::new(&d, 1000, BoFlags::WRITEBACK, None).unwrap();
    assert_eq!(bo.size(), PAGE_SIZE, "rounded up to the page");
    bo.write(10, b"hello").unwrap();
    let mut back = [0u8; 5];
    bo.read(10, &mut back).unwrap();
    assert_eq!(&back, b"hello");
    let p1 = bo.map().unwrap().as_ptr();
    assert_eq!(bo.map().unwrap().as_ptr(), p1, "mapped once");
    assert!(
        bo.write(PAGE_SIZE - 2, b"xyz").is_err(),
        "write past the end refused"
    );

    let va = vm
        .bind(&bo, Access::READ | Access::WRITE, VaClass::General)
        .unwrap();
    assert_eq!(va % PAGE_SIZE, 0);
    assert_eq!(vm.binding_count(), 1);
    let shader = vm.bind(&bo, Access::READ, VaClass::Shader).unwrap();
    let l = vm.layout();
    assert!(shader >= l.usc.0 && shader < l.usc.1);
    assert!(matches!(
        vm.bind(&bo, Access::READ | Access::WRITE, VaClass::Shader),
        Err(Error::InvalidArgument(_))
    ));
    vm.unbind(va).unwrap();
    assert_eq!(vm.unbind(va), Err(Error::NotBound(va)), "double unbind");
    assert_eq!(vm.unbind(0x1234_0000), Err(Error::NotBound(0x1234_0000)));
    let free = vm.free_va(VaClass::General);
    let va2 = vm.bind(&bo, Access::READ, VaClass::General).unwrap();
    assert_eq!(va2, va, "freed range reused");
    assert_eq!(vm.free_va(VaClass::General), free - PAGE_SIZE);
    drop(bo); // still bound: the binding keeps the object alive
    assert_eq!(vm.binding_count(), 2);
}

#[test]
fn wrong_vm_and_private_bos() {
    let d = dev();
    let vm1 = Vm::new(&d).unwrap();
    let vm2 = Vm::new(&d).unwrap();
    let private = Bo::new(&d, PAGE_SIZE, BoFlags::empty(), Some(&vm1)).unwrap();
    vm1.bind(&private, Access::READ, VaClass::General).unwrap();
    assert!(matches!(
        vm2.bind(&private, Access::READ, VaClass::General),
        Err(Error::InvalidArgument(_))
    ));
    assert!(
        private.export().is_err(),
        "VM-private BOs are not exportable"
    );
    let other = dev();
    let foreign = Bo::new(&other, PAGE_SIZE, BoFlags::empty(), None).unwrap();
    assert!(
        vm1.bind(&foreign, Access::READ, VaClass::General).is_err(),
        "BO of another device"
    );
    assert!(vm1
        .bind(&foreign, Access::empty(), VaClass::General)
        .is_err());
    assert!(Bo::new(&d, 0, BoFlags::empty(), None).is_err());
}

#[test]
fn va_exhaustion_is_an_error() {
    let d = dev();
    let vm = Vm::new(&d).unwrap();
    // The USC window is 4 GiB: 4 binds of a 1 GiB BO fill it, the fifth fails.
    let bo = Bo::new(&d, 1 << 30, BoFlags::empty(), None).unwrap();
    for _ in 0..4 {
        vm.bind(&bo, Access::READ, VaClass::Shader).unwrap();
    }
    assert_eq!(
        vm.bind(&bo, Access::READ, VaClass::Shader),
        Err(Error::OutOfVa { size: 1 << 30 })
    );
}

#[test]
fn dmabuf_export_import() {
    let d = dev();
    let bo = Bo::new(&d, PAGE_SIZE, BoFlags::empty(), None).unwrap();
    bo.write(0, b"shared").unwrap();
    let fd = bo.export().unwrap();
    // Import into the same device: the same object (one handle, closed once).
    let same = Bo::import(&d, fd.as_fd()).unwrap();
    assert_eq!(same.handle(), bo.handle());
    // Import into another file of the same simulated GPU.
    let d2 = d.sim_control().unwrap().open_peer().unwrap();
    let other = Bo::import(&d2, fd.as_fd()).unwrap();
    let mut b = [0u8; 6];
    other.read(0, &mut b).unwrap();
    assert_eq!(&b, b"shared");
    assert_eq!(other.size(), PAGE_SIZE);
}

#[test]
fn sync_objects() {
    let d = dev();
    let a = SyncObj::new(&d, false).unwrap();
    let b = SyncObj::new(&d, true).unwrap();
    assert_eq!(
        a.wait(None, Deadline::NOW, WaitFlags::default())
            .unwrap_err()
            .errno(),
        rustix::io::Errno::INVAL,
        "no fence, no WAIT_FOR_SUBMIT"
    );
    assert_eq!(
        a.wait(
            None,
            Deadline::After(Duration::from_millis(5)),
            WaitFlags {
                for_submit: true,
                available: false
            }
        ),
        Err(Error::Timeout)
    );
    b.wait(None, Deadline::NOW, WaitFlags::default()).unwrap();
    assert_eq!(
        wait_many(
            &d,
            &[(&a, None), (&b, None)],
            false,
            Deadline::NOW,
            WaitFlags {
                for_submit: true,
                available: false
            }
        )
        .unwrap(),
        1
    );
    a.signal(None).unwrap();
    assert_eq!(a.status(None).unwrap(), FenceStatus::Signaled);
    a.reset().unwrap();
    assert_eq!(a.status(None).unwrap(), FenceStatus::Pending);

    // Timelines.
    let t = SyncObj::new(&d, false).unwrap();
    t.signal(Some(5)).unwrap();
    assert_eq!(t.query(false).unwrap(), 5);
    t.signal(Some(3)).unwrap();
    assert_eq!(t.query(false).unwrap(), 5, "a lower point changes nothing");
    t.wait(Some(4), Deadline::NOW, WaitFlags::default())
        .unwrap();
    assert_eq!(
        t.wait(
            Some(6),
            Deadline::After(Duration::from_millis(2)),
            WaitFlags {
                for_submit: true,
                available: false
            }
        ),
        Err(Error::Timeout)
    );
    // Transfer timeline point -> binary and back.
    let bin = SyncObj::new(&d, false).unwrap();
    bin.transfer_from(&t, Some(5), None).unwrap();
    bin.wait(None, Deadline::NOW, WaitFlags::default()).unwrap();
    t.transfer_from(&bin, None, Some(9)).unwrap();
    assert_eq!(t.query(false).unwrap(), 9);
    // sync_file round trip.
    let fd = t.export_sync_file(Some(9)).unwrap();
    assert_eq!(
        sync_file_status(&d, fd.as_fd()).unwrap(),
        FenceStatus::Signaled
    );
    let imp = SyncObj::new(&d, false).unwrap();
    imp.import_sync_file(fd.as_fd(), None).unwrap();
    imp.wait(None, Deadline::NOW, WaitFlags::default()).unwrap();
    t.reset().unwrap();
    assert_eq!(t.query(false).unwrap(), 0, "reset timeline queries 0");
    // Objects of another device are refused before the kernel sees them.
    let other = dev();
    let o = SyncObj::new(&other, true).unwrap();
    assert!(matches!(
        wait_many(&d, &[(&o, None)], true, Deadline::NOW, WaitFlags::default()),
        Err(Error::InvalidArgument(_))
    ));
}
