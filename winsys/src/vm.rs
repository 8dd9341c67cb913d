//! GPU VMs: the address-space layout userspace owns, VA allocation, and BO bindings.
//!
//! Layout of the window `GET_PARAMS` gives: the kernel carve-out (`vm_kernel_min_size`, rounded
//! up) at its top; a 4 GiB, 4 GiB-aligned USC window for shaders (its base goes into
//! `QUEUE_CREATE` as `usc_exec_base`); everything else for general allocations.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use agx_uapi::asahi::*;
use bitflags::bitflags;

use crate::bo::{Bo, BoInner};
use crate::error::{Error, Result};
use crate::ioctl;
use crate::va::VaAllocator;
use crate::Device;

/// GPU page size.
pub const PAGE_SIZE: u64 = 16 * 1024;
/// Size of the USC (shader) window.
pub const USC_WINDOW: u64 = 4 << 30;

bitflags! {
    /// GPU access permissions of a binding.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Access: u32 {
        const READ = DRM_ASAHI_BIND_READ;
        const WRITE = DRM_ASAHI_BIND_WRITE;
    }
}

/// Which window an allocation comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VaClass {
    General,
    /// The 4 GiB USC window (shader binaries, read-only).
    Shader,
}

/// Address-space layout of a VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmLayout {
    pub user: (u64, u64),
    pub kernel: (u64, u64),
    pub usc: (u64, u64),
}

impl VmLayout {
    /// Computes the layout for a device's VM window.
    pub fn for_device(dev: &Device) -> Result<VmLayout> {
        let p = dev.params();
        let (start, end) = (p.vm_range.start, p.vm_range.end);
        let ksize = p.vm_kernel_min_size.next_multiple_of(PAGE_SIZE);
        let kernel = (
            end.checked_sub(ksize)
                .ok_or(Error::Unsupported("VM window too small"))?,
            end,
        );
        let usc_base = start.max(1).next_multiple_of(USC_WINDOW);
        if usc_base + USC_WINDOW > kernel.0 {
            return Err(Error::Unsupported("VM window too small for the USC window"));
        }
        Ok(VmLayout {
            user: (start, kernel.0),
            kernel,
            usc: (usc_base, usc_base + USC_WINDOW),
        })
    }
}

#[derive(Debug)]
struct Binding {
    size: u64,
    class: Option<VaClass>,
    _bo: Arc<BoInner>,
}

#[derive(Debug)]
struct VmState {
    general: VaAllocator,
    shader: VaAllocator,
    bindings: BTreeMap<u64, Binding>,
}

#[derive(Debug)]
pub(crate) struct VmInner {
    pub(crate) dev: Device,
    pub(crate) id: u32,
    layout: VmLayout,
    /// Created here (destroyed with the last reference), or the caller's ([`Vm::wrap`]).
    owned: bool,
    state: Mutex<VmState>,
}

impl Drop for VmInner {
    fn drop(&mut self) {
        // Destroying the VM unbinds everything; nothing else can still use it (queues hold it).
        if self.owned {
            let _ = ioctl::vm_destroy(self.dev.kernel(), self.id);
        }
    }
}

/// A GPU address space.
#[derive(Clone, Debug)]
pub struct Vm {
    pub(crate) inner: Arc<VmInner>,
}

impl Vm {
    /// Creates a VM with the standard layout.
    pub fn new(dev: &Device) -> Result<Vm> {
        let layout = VmLayout::for_device(dev)?;
        let id = ioctl::vm_create(dev.kernel(), layout.kernel.0, layout.kernel.1)?;
        let mut general = VaAllocator::new(layout.user.0, layout.usc.0);
        general.free(layout.usc.1, layout.user.1 - layout.usc.1);
        let shader = VaAllocator::new(layout.usc.0, layout.usc.1);
        Ok(Vm::from_parts(dev, id, layout, true, general, shader))
    }

    fn from_parts(
        dev: &Device,
        id: u32,
        layout: VmLayout,
        owned: bool,
        general: VaAllocator,
        shader: VaAllocator,
    ) -> Vm {
        let state = VmState {
            general,
            shader,
            bindings: BTreeMap::new(),
        };
        Vm {
            inner: Arc::new(VmInner {
                dev: dev.clone(),
                id,
                layout,
                owned,
                state: Mutex::new(state),
            }),
        }
    }

    /// A VM the caller created on the same DRM file (a driver's own, e.g. Mesa's, which lays
    /// out and allocates its address space itself), with the base of its USC window: queues can
    /// be created on it. It stays the caller's: never destroyed here, and no address is
    /// allocated in it ([`Vm::bind`] fails; [`Vm::bind_at`] at the caller's addresses works).
    /// The id is not checked here: a wrong one fails at [`crate::Queue::new`] (`ENOENT`).
    pub fn wrap(dev: &Device, id: u32, usc_base: u64) -> Result<Vm> {
        if usc_base % PAGE_SIZE != 0 {
            return Err(Error::InvalidArgument("USC base not page aligned"));
        }
        let layout = VmLayout {
            user: (0, 0),
            kernel: (0, 0),
            usc: (usc_base, usc_base.saturating_add(USC_WINDOW)),
        };
        let none = || VaAllocator::new(0, 0);
        Ok(Vm::from_parts(dev, id, layout, false, none(), none()))
    }

    /// Whether the VM is the caller's ([`Vm::wrap`]).
    pub fn is_wrapped(&self) -> bool {
        !self.inner.owned
    }

    /// The kernel's VM id.
    pub fn id(&self) -> u32 {
        self.inner.id
    }

    pub fn layout(&self) -> VmLayout {
        self.inner.layout
    }

    /// Base of the USC window, for `QUEUE_CREATE`.
    pub fn usc_base(&self) -> u64 {
        self.inner.layout.usc.0
    }

    pub fn device(&self) -> &Device {
        &self.inner.dev
    }

    fn state(&self) -> std::sync::MutexGuard<'_, VmState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Binds all of `bo` at a newly allocated address. Shader binaries go in
    /// [`VaClass::Shader`] and must be read-only.
    pub fn bind(&self, bo: &Bo, access: Access, class: VaClass) -> Result<u64> {
        if class == VaClass::Shader && access.contains(Access::WRITE) {
            return Err(Error::InvalidArgument("shader memory is bound read-only"));
        }
        if !self.inner.owned {
            return Err(Error::InvalidArgument(
                "a wrapped VM's addresses are its owner's: bind at a chosen address",
            ));
        }
        let size = bo.size();
        let mut st = self.state();
        let alloc = match class {
            VaClass::General => &mut st.general,
            VaClass::Shader => &mut st.shader,
        };
        let va = alloc
            .alloc(size, PAGE_SIZE)
            .ok_or(Error::OutOfVa { size })?;
        if let Err(e) = self.bind_raw(bo, 0, size, va, access) {
            let alloc = match class {
                VaClass::General => &mut st.general,
                VaClass::Shader => &mut st.shader,
            };
            alloc.free(va, size);
            return Err(e);
        }
        st.bindings.insert(
            va,
            Binding {
                size,
                class: Some(class),
                _bo: bo.inner.clone(),
            },
        );
        Ok(va)
    }

    /// Binds `size` bytes of `bo` from `offset` at a caller-chosen `va` (which must not be in
    /// the allocators' windows' live allocations: the caller manages that range).
    pub fn bind_at(&self, bo: &Bo, offset: u64, size: u64, va: u64, access: Access) -> Result<()> {
        // Found by fuzzing the C ABI: `va + size` overflowed (a panic with overflow checks, a
        // wrapped range and a wrong overlap check without).
        let end = va.checked_add(size).ok_or(Error::InvalidArgument(
            "range past the end of the address space",
        ))?;
        let mut st = self.state();
        if st
            .bindings
            .range(..end)
            .next_back()
            .is_some_and(|(&s, b)| s + b.size > va)
        {
            return Err(Error::InvalidArgument("range already bound"));
        }
        self.bind_raw(bo, offset, size, va, access)?;
        st.bindings.insert(
            va,
            Binding {
                size,
                class: None,
                _bo: bo.inner.clone(),
            },
        );
        Ok(())
    }

    fn bind_raw(&self, bo: &Bo, offset: u64, size: u64, va: u64, access: Access) -> Result<()> {
        if !bo.inner.dev.same(&self.inner.dev) {
            return Err(Error::InvalidArgument("BO belongs to another device"));
        }
        if bo.inner.vm_private.is_some_and(|v| v != self.inner.id) {
            return Err(Error::InvalidArgument("VM-private BO of another VM"));
        }
        if access.is_empty() {
            return Err(Error::InvalidArgument("a binding needs READ or WRITE"));
        }
        let op = drm_asahi_gem_bind_op {
            flags: access.bits(),
            handle: bo.handle(),
            offset,
            range: size,
            addr: va,
        };
        ioctl::vm_bind(self.inner.dev.kernel(), self.inner.id, &[op])
    }

    /// Unbinds what [`Vm::bind`] or [`Vm::bind_at`] bound at `va`. A second unbind is
    /// [`Error::NotBound`].
    pub fn unbind(&self, va: u64) -> Result<()> {
        let mut st = self.state();
        let b = st.bindings.get(&va).ok_or(Error::NotBound(va))?;
        let size = b.size;
        let op = drm_asahi_gem_bind_op {
            flags: DRM_ASAHI_BIND_UNBIND,
            handle: 0,
            offset: 0,
            range: size,
            addr: va,
        };
        ioctl::vm_bind(self.inner.dev.kernel(), self.inner.id, &[op])?;
        let b = st.bindings.remove(&va).expect("checked above");
        match b.class {
            Some(VaClass::General) => st.general.free(va, size),
            Some(VaClass::Shader) => st.shader.free(va, size),
            None => {}
        }
        Ok(())
    }

    /// Number of live bindings.
    pub fn binding_count(&self) -> usize {
        self.state().bindings.len()
    }

    /// Free bytes in a window.
    pub fn free_va(&self, class: VaClass) -> u64 {
        let st = self.state();
        match class {
            VaClass::General => st.general.free_bytes(),
            VaClass::Shader => st.shader.free_bytes(),
        }
    }
}
