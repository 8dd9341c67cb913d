//! The winsys error type: a kernel errno with the call that produced it, or a misuse the winsys
//! caught before reaching the kernel.

use rustix::io::Errno;

/// Errors of the winsys API.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// An ioctl failed; `errno` is what the kernel (or the simulator) returned.
    #[error("{call} failed: {errno}")]
    Kernel { call: &'static str, errno: Errno },
    /// A request the winsys refuses before calling the kernel.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The VM has no free virtual address range of that size.
    #[error("out of GPU virtual address space ({size:#x} bytes requested)")]
    OutOfVa { size: u64 },
    /// No range is bound at that address (e.g. a second unbind).
    #[error("nothing bound at {0:#x}")]
    NotBound(u64),
    /// A wait reached its deadline.
    #[error("timed out")]
    Timeout,
    /// The command buffer cannot be built as described.
    #[error(transparent)]
    Build(#[from] crate::cmd::BuildError),
    /// A cmdbuf the driver encoded itself is malformed.
    #[error("driver cmdbuf: {0}")]
    Cmdbuf(#[from] crate::cmd::decode::DecodeError),
    /// The device spec (`AGXWS_DEVICE`) cannot be understood.
    #[error("bad device spec {spec:?}: {why}")]
    BadSpec { spec: String, why: String },
    /// No device matches the spec.
    #[error("no device: {0}")]
    NoDevice(String),
    /// The BO already has its CPU mapping.
    #[error("the BO is already mapped")]
    AlreadyMapped,
    /// This backend or kernel does not support the operation.
    #[error("not supported: {0}")]
    Unsupported(&'static str),
}

impl Error {
    /// The errno this error stands for, for C callers (`-errno` at the C ABI).
    pub fn errno(&self) -> Errno {
        match self {
            Error::Kernel { errno, .. } => *errno,
            Error::InvalidArgument(_)
            | Error::Build(_)
            | Error::Cmdbuf(_)
            | Error::BadSpec { .. } => Errno::INVAL,
            Error::OutOfVa { .. } => Errno::NOSPC,
            Error::NotBound(_) => Errno::NOENT,
            Error::Timeout => Errno::TIME,
            Error::NoDevice(_) => Errno::NODEV,
            Error::Unsupported(_) => Errno::NOTSUP,
            Error::AlreadyMapped => Errno::BUSY,
        }
    }
}

/// Result of winsys calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Tags a kernel errno with the call it came from.
pub(crate) fn kernel(call: &'static str) -> impl FnOnce(Errno) -> Error {
    move |errno| Error::Kernel { call, errno }
}
