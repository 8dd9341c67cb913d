//! Linux ioctl number encoding (`asm-generic/ioctl.h`), as `const fn`s so every number in this
//! crate is computed from its argument type and checked against the measured table in tests.

/// No data transfer.
pub const IOC_NONE: u32 = 0;
/// Userspace writes, the kernel reads (`_IOW`).
pub const IOC_WRITE: u32 = 1;
/// The kernel writes, userspace reads (`_IOR`).
pub const IOC_READ: u32 = 2;

const NRSHIFT: u32 = 0;
const TYPESHIFT: u32 = 8;
const SIZESHIFT: u32 = 16;
const DIRSHIFT: u32 = 30;
const SIZEMASK: u32 = (1 << 14) - 1;

/// `_IOC(dir, type, nr, size)`.
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    assert!(size as u32 <= SIZEMASK, "ioctl argument too large");
    (dir << DIRSHIFT)
        | ((ty as u32) << TYPESHIFT)
        | ((nr as u32) << NRSHIFT)
        | ((size as u32) << SIZESHIFT)
}

/// `_IOW(type, nr, T)`.
pub const fn iow<T>(ty: u8, nr: u8) -> u32 {
    ioc(IOC_WRITE, ty, nr, core::mem::size_of::<T>())
}

/// `_IOR(type, nr, T)`.
pub const fn ior<T>(ty: u8, nr: u8) -> u32 {
    ioc(IOC_READ, ty, nr, core::mem::size_of::<T>())
}

/// `_IOWR(type, nr, T)`.
pub const fn iowr<T>(ty: u8, nr: u8) -> u32 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, core::mem::size_of::<T>())
}

/// The `nr` field of an ioctl number.
pub const fn ioc_nr(cmd: u32) -> u8 {
    (cmd >> NRSHIFT) as u8
}

/// The `type` field of an ioctl number.
pub const fn ioc_type(cmd: u32) -> u8 {
    (cmd >> TYPESHIFT) as u8
}

/// The argument size encoded in an ioctl number.
pub const fn ioc_size(cmd: u32) -> usize {
    ((cmd >> SIZESHIFT) & SIZEMASK) as usize
}

/// The direction bits of an ioctl number.
pub const fn ioc_dir(cmd: u32) -> u32 {
    cmd >> DIRSHIFT
}
