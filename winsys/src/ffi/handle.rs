//! The registry of live handles.
//!
//! A C handle (`agx_ws_device *`, ...) is a token, not an address: its value is a registry key
//! made with `ptr::without_provenance_mut` and never dereferenced. Keys come from a counter and
//! are never reused, so a destroyed handle stays invalid for ever (`-EBADF`) instead of reaching
//! whatever object was allocated at the same address later. Each entry holds an `Arc` of the
//! object: a call clones it out and works on it without holding the registry lock, so a
//! concurrent destroy of the same handle only drops the registry's reference.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

use super::guard::{Fail, FfiResult};

/// Implemented by each opaque C handle type: which registry variant holds its object.
pub(crate) trait Handle: Sized {
    /// The Rust object behind the handle.
    type Target: Send + Sync + 'static;
    /// For error messages.
    const NAME: &'static str;
    fn wrap(obj: Arc<Self::Target>) -> Object;
    fn get(obj: &Object) -> Option<&Arc<Self::Target>>;
}

macro_rules! handles {
    ($($(#[$m:meta])* $c:ty => $variant:ident($target:ty), $name:literal;)*) => {
        /// One live object of any kind.
        pub(crate) enum Object {
            $($(#[$m])* $variant(Arc<$target>),)*
        }

        $($(#[$m])* impl Handle for $c {
            type Target = $target;
            const NAME: &'static str = $name;
            fn wrap(obj: Arc<$target>) -> Object {
                Object::$variant(obj)
            }
            fn get(obj: &Object) -> Option<&Arc<$target>> {
                match obj {
                    Object::$variant(o) => Some(o),
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        })*
    };
}

handles! {
    super::device::agx_ws_device => Device(crate::Device), "device";
    super::memory::agx_ws_vm => Vm(crate::Vm), "VM";
    super::memory::agx_ws_bo => Bo(crate::Bo), "BO";
    super::sync::agx_ws_syncobj => SyncObj(crate::SyncObj), "sync object";
    super::queue::agx_ws_queue => Queue(super::queue::QueueObj), "queue";
    super::queue::agx_ws_job => Job(super::queue::JobObj), "job";
    super::cmd::agx_ws_cmdbuf => CmdBuf(super::cmd::CmdBufObj), "command buffer";
    super::reset::agx_ws_reset_tracker => ResetTracker(crate::ResetTracker), "reset tracker";
    super::vulkan::agx_ws_vk_device => VkDevice(super::vulkan::VkDeviceObj), "Vulkan device state";
    #[cfg(feature = "sim")]
    super::sim::agx_ws_sim_stream => SimStream(super::sim::StreamObj), "simulator stream";
}

/// Hashes registry keys (counter values, 16 apart) with one multiplication instead of SipHash:
/// every C call looks a handle up, several per submit in a driver's hot path, and the keys are
/// ours, not an attacker's.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, key: usize) {
        // Fibonacci hashing: spreads consecutive keys over the high bits the table uses.
        self.0 = ((key as u64) >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Registry = HashMap<usize, Object, std::hash::BuildHasherDefault<KeyHasher>>;

static REGISTRY: LazyLock<RwLock<Registry>> = LazyLock::new(Default::default);
/// Next key. Starts high and steps by 16 so keys look like (and are as aligned as) heap pointers
/// in a debugger, while never being one.
static NEXT: AtomicUsize = AtomicUsize::new(0x1000);

/// Every live handle with its kind, in key order (for the fuzz harness's state checks).
#[cfg(feature = "sim")]
pub(crate) fn summary() -> String {
    let reg = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    let mut v: Vec<(usize, &'static str)> = reg
        .iter()
        .map(|(&k, o)| {
            let kind = match o {
                Object::Device(_) => "device",
                Object::Vm(_) => "vm",
                Object::Bo(_) => "bo",
                Object::SyncObj(_) => "syncobj",
                Object::Queue(_) => "queue",
                Object::Job(_) => "job",
                Object::CmdBuf(_) => "cmdbuf",
                Object::ResetTracker(_) => "tracker",
                Object::VkDevice(_) => "vk",
                Object::SimStream(_) => "stream",
            };
            (k, kind)
        })
        .collect();
    v.sort_unstable();
    format!("{v:x?}")
}

/// Registers `obj` and returns its new handle.
pub(crate) fn register<H: Handle>(obj: H::Target) -> *mut H {
    let key = NEXT.fetch_add(16, Ordering::Relaxed);
    REGISTRY
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, H::wrap(Arc::new(obj)));
    std::ptr::without_provenance_mut(key)
}

fn bad_handle<H: Handle>(h: *const H) -> Fail {
    Fail::new(
        libc::EBADF,
        format!(
            "{:#x} is not a live {} handle (destroyed, never created, or another kind)",
            h.addr(),
            H::NAME
        ),
    )
}

fn null_handle<H: Handle>() -> Fail {
    Fail::new(libc::EINVAL, format!("{} handle is NULL", H::NAME))
}

/// The object behind a live handle: NULL is `-EINVAL`, anything else unknown `-EBADF`.
pub(crate) fn lookup<H: Handle>(h: *const H) -> FfiResult<Arc<H::Target>> {
    if h.is_null() {
        return Err(null_handle::<H>());
    }
    let reg = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    reg.get(&h.addr())
        .and_then(H::get)
        .cloned()
        .ok_or_else(|| bad_handle(h))
}

/// Like [`lookup`], but NULL is `None`.
pub(crate) fn lookup_opt<H: Handle>(h: *const H) -> FfiResult<Option<Arc<H::Target>>> {
    if h.is_null() {
        Ok(None)
    } else {
        lookup(h).map(Some)
    }
}

/// Removes a handle from the registry and returns its object (for the caller to drop outside
/// the registry lock). A handle of another kind is not removed.
pub(crate) fn unregister<H: Handle>(h: *mut H) -> FfiResult<Arc<H::Target>> {
    if h.is_null() {
        return Err(null_handle::<H>());
    }
    let mut reg = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    match reg.get(&h.addr()).and_then(H::get) {
        Some(_) => match reg.remove(&h.addr()) {
            Some(obj) => {
                if reg.is_empty() {
                    // Give the table back when the last handle goes, so a program that
                    // destroyed everything ends with no library memory (clean leak checks).
                    *reg = Registry::default();
                }
                Ok(H::get(&obj).expect("checked kind").clone())
            }
            None => Err(bad_handle(h)),
        },
        None => Err(bad_handle(h)),
    }
}

/// Destroys a handle: unregisters it and drops the registry's reference after the lock is
/// released (dropping may call into the kernel). Returns 0.
pub(crate) fn destroy<H: Handle>(h: *mut H) -> FfiResult {
    let obj = unregister(h)?;
    drop(obj);
    Ok(0)
}
