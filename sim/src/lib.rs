//! `agx-sim`: the embedded simulated asahi device (being assembled).
#![deny(unsafe_code)]

pub mod uaccess;
