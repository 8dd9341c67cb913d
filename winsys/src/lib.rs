//! `agx-winsys` (being assembled).
#![deny(unsafe_code)]

pub mod analysis;
pub mod outcome;
pub mod vulkan;
