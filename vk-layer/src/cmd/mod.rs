//! Tracking hooks: object creation (memory, bindings, views, render passes, pipelines, shader
//! modules, descriptor sets) and command recording, feeding [`crate::track::Tracker`].
//!
//! They are handed out only for devices whose fault plan has neighbour faults; each forwards
//! the call unchanged (but for `vkBeginCommandBuffer`, which clears `ONE_TIME_SUBMIT`), then
//! records what it needs. Every other `vkCmd*` command that may touch memory has a generated
//! hook (`generated.rs`) that makes its command buffer unknown, named by the command.

use ash::vk;
use ash::vk::Handle;

use agx_winsys::analysis::{LoadOp, StoreOp};

use crate::dispatch::{self, DeviceRef, DispatchKey};
use crate::track::{DescKind, DescRes, COMPUTE, GRAPHICS};

/// # Safety
/// `h` must be a valid dispatchable handle of a device.
unsafe fn dev_of<H: Handle>(h: H) -> Option<DeviceRef> {
    // SAFETY: forwarded from the caller.
    dispatch::device(unsafe { DispatchKey::of(h) })
}

/// A command-recording hook: forwards, then records with the tracker when tracking.
macro_rules! cmd_hook {
    ($(#[$m:meta])* fn $name:ident($cb:ident $(, $arg:ident : $ty:ty)*) => $field:ident;
     |$t:ident| $body:expr) => {
        $(#[$m])*
        pub unsafe extern "system" fn $name($cb: vk::CommandBuffer $(, $arg: $ty)*) {
            guard((), || {
                // SAFETY: `$cb` is a valid command buffer (valid usage of the command).
                let Some(dev) = (unsafe { dev_of($cb) }) else { return };
                // SAFETY: the application's arguments, forwarded unchanged.
                unsafe { next!(dev, $field)($cb $(, $arg)*) };
                if dev.track {
                    #[allow(unused_variables)]
                    let $t: &mut Tracker = &mut lock(&dev.tracker);
                    #[allow(unused_unsafe, clippy::macro_metavars_in_unsafe)]
                    // SAFETY: the pointers among the arguments are valid during the call
                    // (valid usage of the command).
                    unsafe {
                        $body
                    }
                }
            })
        }
    };
}

/// A device-level hook returning `VkResult`: forwards, then on success records.
macro_rules! obj_hook {
    ($(#[$m:meta])* fn $name:ident($dv:ident $(, $arg:ident : $ty:ty)*) => $field:ident;
     |$dev:ident, $t:ident| $body:expr) => {
        $(#[$m])*
        pub unsafe extern "system" fn $name($dv: vk::Device $(, $arg: $ty)*) -> vk::Result {
            guard(vk::Result::ERROR_UNKNOWN, || {
                // SAFETY: `$dv` is a valid device (valid usage of the command).
                let Some($dev) = (unsafe { dev_of($dv) }) else {
                    return vk::Result::ERROR_UNKNOWN;
                };
                // SAFETY: the application's arguments, forwarded unchanged.
                let r = unsafe { next!($dev, $field)($dv $(, $arg)*) };
                if r == vk::Result::SUCCESS && $dev.track {
                    #[allow(unused_variables)]
                    let $t: &mut Tracker = &mut lock(&$dev.tracker);
                    #[allow(unused_unsafe, clippy::macro_metavars_in_unsafe)]
                    // SAFETY: the create infos are valid and the outputs were written by the
                    // successful call (valid usage of the command).
                    unsafe {
                        $body
                    }
                }
                r
            })
        }
    };
}

/// A device-level hook without result: records (before the object goes), then forwards.
macro_rules! void_hook {
    ($(#[$m:meta])* fn $name:ident($dv:ident $(, $arg:ident : $ty:ty)*) => $field:ident;
     |$t:ident| $body:expr) => {
        $(#[$m])*
        pub unsafe extern "system" fn $name($dv: vk::Device $(, $arg: $ty)*) {
            guard((), || {
                // SAFETY: `$dv` is a valid device (valid usage of the command).
                let Some(dev) = (unsafe { dev_of($dv) }) else { return };
                if dev.track {
                    #[allow(unused_variables)]
                    let $t: &mut Tracker = &mut lock(&dev.tracker);
                    #[allow(unused_unsafe, clippy::macro_metavars_in_unsafe)]
                    // SAFETY: the arguments are valid (valid usage of the command).
                    unsafe {
                        $body
                    }
                }
                // SAFETY: the application's arguments, forwarded unchanged.
                unsafe { next!(dev, $field)($dv $(, $arg)*) };
            })
        }
    };
}

/// The generated hooks of `vkCmd*` commands the tracker does not model: forward, then make
/// the command buffer unknown with the command's name as the reason. Also defines
/// `generated_names` (in index order, for the next layer's functions in
/// `DeviceState::generic`) and `generated_table` (name, hook).
macro_rules! unmodelled {
    ($($name:ident => $f:ident($($a:ident: $t:ty),*) $(-> $r:ty)?;)*) => {
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        enum Index { $($name,)* }

        /// The names of the generated hooks, by index.
        pub fn generated_names() -> &'static [&'static std::ffi::CStr] {
            const NAMES: &[&std::ffi::CStr] = &[$(unmodelled!(@cstr $name),)*];
            NAMES
        }

        /// (name, hook) of every generated hook.
        pub fn generated_table() -> Vec<(&'static str, unsafe extern "system" fn())> {
            vec![$(
                (
                    stringify!($name),
                    // SAFETY: a function pointer cast to the loader's generic function pointer
                    // type; the loader casts it back to the command's type before calling it.
                    unsafe {
                        std::mem::transmute::<
                            unsafe extern "system" fn(vk::CommandBuffer $(, $t)*) $(-> $r)?,
                            unsafe extern "system" fn(),
                        >($f)
                    },
                ),
            )*]
        }

        $(
            unsafe extern "system" fn $f(cb: vk::CommandBuffer $(, $a: $t)*) $(-> $r)? {
                crate::dispatch::guard(Default::default(), || {
                    // SAFETY: `cb` is a valid command buffer (valid usage of the command).
                    let Some(dev) = (unsafe { dev_of(cb) }) else {
                        return Default::default();
                    };
                    let Some(Some(next)) = dev.generic.get(Index::$name as usize).copied() else {
                        return Default::default();
                    };
                    // SAFETY: the next layer's function for this very command (loaded by its
                    // name at device creation), called with the application's arguments.
                    let r = unsafe {
                        let next = std::mem::transmute::<
                            unsafe extern "system" fn(),
                            unsafe extern "system" fn(vk::CommandBuffer $(, $t)*) $(-> $r)?,
                        >(next);
                        next(cb $(, $a)*)
                    };
                    if dev.track {
                        crate::dispatch::lock(&dev.tracker).unknown(cb.as_raw(), stringify!($name));
                    }
                    r
                })
            }
        )*
    };
    (@cstr $name:ident) => {
        // SAFETY: a NUL-terminated literal without interior NUL.
        unsafe { std::ffi::CStr::from_bytes_with_nul_unchecked(concat!(stringify!($name), "\0").as_bytes()) }
    };
}

fn load_op(op: vk::AttachmentLoadOp) -> LoadOp {
    match op {
        vk::AttachmentLoadOp::LOAD => LoadOp::Load,
        vk::AttachmentLoadOp::CLEAR => LoadOp::Clear,
        _ => LoadOp::DontCare,
    }
}

/// Whether a store op may write the attachment (all but `NONE`).
fn store_writes(op: vk::AttachmentStoreOp) -> bool {
    op != vk::AttachmentStoreOp::NONE
}

fn store_op(op: vk::AttachmentStoreOp) -> StoreOp {
    match op {
        vk::AttachmentStoreOp::STORE => StoreOp::Store,
        // NONE: not written at the end, but spills may still write (the analysis models it).
        _ => StoreOp::DontCare,
    }
}

fn is_depth_stencil(f: vk::Format) -> bool {
    matches!(
        f,
        vk::Format::D16_UNORM
            | vk::Format::X8_D24_UNORM_PACK32
            | vk::Format::D32_SFLOAT
            | vk::Format::S8_UINT
            | vk::Format::D16_UNORM_S8_UINT
            | vk::Format::D24_UNORM_S8_UINT
            | vk::Format::D32_SFLOAT_S8_UINT
    )
}

fn bp_index(bp: vk::PipelineBindPoint) -> Option<usize> {
    match bp {
        vk::PipelineBindPoint::GRAPHICS => Some(GRAPHICS),
        vk::PipelineBindPoint::COMPUTE => Some(COMPUTE),
        _ => None,
    }
}

fn desc_kind(t: vk::DescriptorType) -> DescKind {
    match t {
        vk::DescriptorType::SAMPLER | vk::DescriptorType::INLINE_UNIFORM_BLOCK => DescKind::None,
        vk::DescriptorType::UNIFORM_BUFFER
        | vk::DescriptorType::UNIFORM_BUFFER_DYNAMIC
        | vk::DescriptorType::SAMPLED_IMAGE
        | vk::DescriptorType::COMBINED_IMAGE_SAMPLER
        | vk::DescriptorType::UNIFORM_TEXEL_BUFFER
        | vk::DescriptorType::INPUT_ATTACHMENT => DescKind::Read,
        vk::DescriptorType::STORAGE_BUFFER
        | vk::DescriptorType::STORAGE_BUFFER_DYNAMIC
        | vk::DescriptorType::STORAGE_IMAGE
        | vk::DescriptorType::STORAGE_TEXEL_BUFFER => DescKind::Storage,
        _ => DescKind::Unknown,
    }
}

/// What a descriptor write of type `ty` with `n` entries stores, reading each entry with the
/// given accessors (the layouts of `VkWriteDescriptorSet` and of template data differ).
///
/// # Safety
/// The accessors must read valid entries `0..n` of the type's info structure.
unsafe fn decode_descriptors(
    ty: vk::DescriptorType,
    n: u32,
    buffer: impl Fn(u32) -> vk::DescriptorBufferInfo,
    image: impl Fn(u32) -> vk::DescriptorImageInfo,
    texel: impl Fn(u32) -> vk::BufferView,
) -> (DescKind, Vec<DescRes>) {
    let kind = desc_kind(ty);
    let dynamic = matches!(
        ty,
        vk::DescriptorType::UNIFORM_BUFFER_DYNAMIC | vk::DescriptorType::STORAGE_BUFFER_DYNAMIC
    );
    let entries = match ty {
        vk::DescriptorType::UNIFORM_BUFFER
        | vk::DescriptorType::UNIFORM_BUFFER_DYNAMIC
        | vk::DescriptorType::STORAGE_BUFFER
        | vk::DescriptorType::STORAGE_BUFFER_DYNAMIC => (0..n)
            .map(|i| {
                let b = buffer(i);
                if b.buffer == vk::Buffer::null() {
                    DescRes::None
                } else if dynamic {
                    // Dynamic offsets move the range: the whole buffer.
                    DescRes::Buffer {
                        buffer: b.buffer.as_raw(),
                        offset: 0,
                        range: crate::track::WHOLE_SIZE,
                    }
                } else {
                    DescRes::Buffer {
                        buffer: b.buffer.as_raw(),
                        offset: b.offset,
                        range: b.range,
                    }
                }
            })
            .collect(),
        vk::DescriptorType::SAMPLED_IMAGE
        | vk::DescriptorType::COMBINED_IMAGE_SAMPLER
        | vk::DescriptorType::STORAGE_IMAGE
        | vk::DescriptorType::INPUT_ATTACHMENT => (0..n)
            .map(|i| {
                let v = image(i).image_view;
                if v == vk::ImageView::null() {
                    DescRes::None
                } else {
                    DescRes::ImageView(v.as_raw())
                }
            })
            .collect(),
        vk::DescriptorType::UNIFORM_TEXEL_BUFFER | vk::DescriptorType::STORAGE_TEXEL_BUFFER => (0
            ..n)
            .map(|i| {
                let v = texel(i);
                if v == vk::BufferView::null() {
                    DescRes::None
                } else {
                    DescRes::BufferView(v.as_raw())
                }
            })
            .collect(),
        // Inline uniform blocks: `n` is a byte count and the data lives in the set.
        vk::DescriptorType::INLINE_UNIFORM_BLOCK => Vec::new(),
        _ => vec![DescRes::None; n as usize],
    };
    (kind, entries)
}

/// Applies `writes` (of `vkUpdateDescriptorSets` or `vkCmdPushDescriptorSetKHR`) to `set`.
///
/// # Safety
/// `writes` must be valid descriptor writes.
unsafe fn apply_writes(set: &mut crate::track::DescSet, writes: &[vk::WriteDescriptorSet<'_>]) {
    for w in writes {
        let n = w.descriptor_count;
        // SAFETY: the info arrays of a valid write hold `descriptor_count` entries of the
        // write's type (only the one matching the type is read).
        let (kind, entries) = unsafe {
            decode_descriptors(
                w.descriptor_type,
                n,
                |i| *w.p_buffer_info.add(i as usize),
                |i| *w.p_image_info.add(i as usize),
                |i| *w.p_texel_buffer_view.add(i as usize),
            )
        };
        if kind == DescKind::Unknown {
            set.unknown = true;
        }
        set.write(w.dst_binding, w.dst_array_element, kind, &entries);
    }
}

/// Applies template `tmpl`'s entries, reading `data`, to `set`.
///
/// # Safety
/// `data` must hold what the template's entries describe (valid usage).
unsafe fn apply_template(
    set: &mut crate::track::DescSet,
    tmpl: &crate::track::Template,
    data: *const std::ffi::c_void,
) {
    let base = data as *const u8;
    for e in &tmpl.entries {
        let at = |i: u32| {
            // SAFETY: inside the application's data (caller).
            unsafe { base.add(e.offset + e.stride * i as usize) }
        };
        // SAFETY: each entry's data has the entry type's info structure (caller); they may be
        // unaligned in the application's packing.
        let (kind, entries) = unsafe {
            decode_descriptors(
                vk::DescriptorType::from_raw(e.ty),
                e.count,
                |i| std::ptr::read_unaligned(at(i) as *const vk::DescriptorBufferInfo),
                |i| std::ptr::read_unaligned(at(i) as *const vk::DescriptorImageInfo),
                |i| std::ptr::read_unaligned(at(i) as *const vk::BufferView),
            )
        };
        if kind == DescKind::Unknown {
            set.unknown = true;
        }
        set.write(e.binding, e.element, kind, &entries);
    }
}

// After the macros above: `macro_rules!` scope is textual.
#[rustfmt::skip]
mod generated;
mod objects;
mod record;
mod wsi;

pub use generated::{generated_names, generated_table, NO_MEMORY};
pub use objects::*;
pub use record::*;
pub use wsi::*;
