//! `agx-winsys`: the userspace runtime between Mesa's AGX drivers and the Linux `asahi` kernel
//! driver (or the embedded simulated device).
#![deny(unsafe_code)]

pub mod outcome;
