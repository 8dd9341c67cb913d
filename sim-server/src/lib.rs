//! `agx-sim-server`: one simulated asahi device shared by many processes, the way
//! virglrenderer's vtest serves one GPU to many clients.
//!
//! - [`Server`] hosts simulated devices (`agx_sim::SimDevice`) and serves them on a Unix
//!   socket; each connection is one DRM file ([`server`]).
//! - [`RemoteFile`] is a client's open file: ioctls with the memory and fds they name, BO
//!   memory as shared memfds, the simulator's test controls ([`client`]).
//! - [`wire`] is the byte format, [`msg`] the typed messages decoded from it (every length and
//!   count checked; [`msg::fuzz_decode`] is the fuzz target), [`transport`] frames with fds
//!   over the socket, [`shape`] what each ioctl argument points at.
//!
//! `agx-sim-server --socket PATH [--device OPTIONS]` is the server as a program.
#![deny(unsafe_code)]

pub mod client;
pub mod msg;
pub mod server;
pub mod shape;
pub mod transport;
pub mod wire;

pub use client::{parse_unix_spec, Endpoint, OpenError, RemoteFile};
pub use msg::Target;
pub use server::{Listener, Server, ServerStats};
