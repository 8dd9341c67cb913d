//! Tracking hooks: object creation (memory, bindings, views, render passes, pipelines, shader
//! modules, descriptor sets) and command recording, feeding [`crate::track::Tracker`].
//!
//! They are handed out only for devices whose fault plan has neighbour faults; each forwards
//! the call unchanged, then records what it needs.

use ash::vk;
use ash::vk::Handle;

use agx_winsys::analysis::{LoadOp, StoreOp};

use crate::dispatch::{self, DeviceRef, DispatchKey};
use crate::track::{DescKind, COMPUTE, GRAPHICS};

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

fn load_op(op: vk::AttachmentLoadOp) -> LoadOp {
    match op {
        vk::AttachmentLoadOp::LOAD => LoadOp::Load,
        vk::AttachmentLoadOp::CLEAR => LoadOp::Clear,
        _ => LoadOp::DontCare,
    }
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

// After the macros above: `macro_rules!` scope is textual.
mod objects;
mod record;

pub use objects::*;
pub use record::*;
