//! Test-only control of the simulated device (cargo feature `sim`, meson `-Dsim=enabled`;
//! absent from the library and the header otherwise): another file on the same GPU, holding its
//! clock, fault injection, a firmware crash, and a builder for the simulator's command streams
//! (`docs/sim-command-stream.md`), so C tests can make the simulated GPU do real work and real
//! faults. Every device function is `-ENOTSUP` on a device not opened as a simulated one
//! (streams are plain memory and work anywhere, but only the simulator executes them).

use std::os::raw::{c_int, c_void};
use std::sync::Mutex;

use agx_sim::stream::{RmwFn, StreamBuilder};

use super::device::agx_ws_device;
use super::guard::{call, einval, out, Fail};
use super::handle::{self, lookup};
use super::queue::agx_ws_queue;
use crate::sim::{Injection, SimControl};
use crate::Device;

/// A command stream of the simulated GPU being built.
pub struct agx_ws_sim_stream {
    _opaque: [u8; 0],
}

pub(crate) type StreamObj = Mutex<StreamBuilder>;

/// What `agx_ws_sim_inject` makes happen.
#[repr(u32)]
pub enum agx_ws_injection {
    /// The next command to start on the queue faults after `after_ns` of GPU time
    /// (`AGX_WS_FAULT_INJECTED`).
    AGX_WS_INJECT_FAULT = 0,
    /// The next command to start on the queue hangs after `after_ns` (the watchdog then ends
    /// it: `AGX_WS_JOB_TIMED_OUT`).
    AGX_WS_INJECT_HANG = 1,
}

/// The combining function of `agx_ws_sim_stream_rmw`.
#[repr(u32)]
pub enum agx_ws_sim_rmw {
    /// `dst = dst + src` (bytewise, wrapping).
    AGX_WS_SIM_RMW_ADD = 0,
    AGX_WS_SIM_RMW_XOR = 1,
    /// `dst = (dst + src + 1) / 2`: a blend.
    AGX_WS_SIM_RMW_AVERAGE = 2,
    AGX_WS_SIM_RMW_MAX = 3,
}

/// Opens another file on the same simulated GPU as `device`: what a second process (or a second
/// GL context with its own file) sees. Faults on one file's queues are visible as innocent
/// resets on the other's.
///
/// Errors: `-ENOTSUP` on a real render node; `-EBADF`/`-EINVAL` bad arguments.
///
/// # Safety
///
/// `out_device` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_sim_open_peer(
    device: *mut agx_ws_device,
    out_device: *mut *mut agx_ws_device,
) -> c_int {
    call("agx_ws_sim_open_peer", || {
        // SAFETY: the caller's contract, forwarded.
        let out_device = unsafe { out(out_device, "out_device") }?;
        let dev = lookup(device)?;
        let peer = sim_control(&dev)?.open_peer()?;
        out_device.write(handle::register(peer));
        Ok(0)
    })
}

/// Stops the simulated GPU's clock: submitted work queues up but does not run until
/// `agx_ws_sim_release`, so several contexts' work can be put in flight together.
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe (affects every file of the simulated GPU).
#[no_mangle]
pub unsafe extern "C" fn agx_ws_sim_hold(device: *mut agx_ws_device) -> c_int {
    call("agx_ws_sim_hold", || {
        let dev = lookup(device)?;
        sim_control(&dev)?.hold();
        Ok(0)
    })
}

/// Restarts the simulated GPU's clock and runs everything runnable.
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_sim_release(device: *mut agx_ws_device) -> c_int {
    call("agx_ws_sim_release", || {
        let dev = lookup(device)?;
        sim_control(&dev)?.release();
        Ok(0)
    })
}

/// Crashes the simulated firmware: every job in flight ends `AGX_WS_JOB_DEVICE_GONE` and
/// every later ioctl but teardown fails with `-ENODEV`.
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_sim_crash_firmware(device: *mut agx_ws_device) -> c_int {
    call("agx_ws_sim_crash_firmware", || {
        let dev = lookup(device)?;
        sim_control(&dev)?.crash_firmware();
        Ok(0)
    })
}

/// Makes the next command to start on `queue` fault or hang (`injection`, an
/// `agx_ws_injection`) after `after_ns` of GPU time.
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_sim_inject(
    queue: *mut agx_ws_queue,
    injection: u32,
    after_ns: u64,
) -> c_int {
    call("agx_ws_sim_inject", || {
        let q = lookup(queue)?;
        let inj = match injection {
            0 => Injection::Fault { after_ns },
            1 => Injection::Hang { after_ns },
            _ => return Err(einval("injection is not an agx_ws_injection")),
        };
        q.queue.inject(inj)?;
        Ok(0)
    })
}

/// Creates an empty stream.
///
/// # Safety
///
/// `out_stream` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_sim_stream_create(
    out_stream: *mut *mut agx_ws_sim_stream,
) -> c_int {
    call("agx_ws_sim_stream_create", || {
        // SAFETY: the caller's contract, forwarded.
        let out_stream = unsafe { out(out_stream, "out_stream") }?;
        out_stream.write(handle::register(Mutex::new(StreamBuilder::new())));
        Ok(0)
    })
}

/// Destroys the stream.
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_sim_stream_destroy(stream: *mut agx_ws_sim_stream) -> c_int {
    call("agx_ws_sim_stream_destroy", || handle::destroy(stream))
}

fn with(stream: *mut agx_ws_sim_stream, f: impl FnOnce(&mut StreamBuilder)) -> Result<c_int, Fail> {
    let s = lookup(stream)?;
    f(&mut s.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(0)
}

/// Appends: fill `len` bytes at GPU VA `dst` with the 32-bit `pattern`.
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe (internally locked); build one stream from one thread.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_sim_stream_fill(
    stream: *mut agx_ws_sim_stream,
    dst: u64,
    len: u64,
    pattern: u32,
) -> c_int {
    call("agx_ws_sim_stream_fill", || {
        with(stream, |s| {
            s.fill(dst, len, pattern);
        })
    })
}

/// Appends: copy `len` bytes from `src` to `dst`.
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: as `agx_ws_sim_stream_fill`.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_sim_stream_copy(
    stream: *mut agx_ws_sim_stream,
    dst: u64,
    src: u64,
    len: u64,
) -> c_int {
    call("agx_ws_sim_stream_copy", || {
        with(stream, |s| {
            s.copy(dst, src, len);
        })
    })
}

/// Appends: `dst[i] = op(dst[i], src[i])` for `len` bytes (`op` an `agx_ws_sim_rmw`).
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: as `agx_ws_sim_stream_fill`.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_sim_stream_rmw(
    stream: *mut agx_ws_sim_stream,
    dst: u64,
    src: u64,
    len: u64,
    op: u32,
) -> c_int {
    call("agx_ws_sim_stream_rmw", || {
        let f = match op {
            0 => RmwFn::Add,
            1 => RmwFn::Xor,
            2 => RmwFn::Average,
            3 => RmwFn::Max,
            _ => return Err(einval("op is not an agx_ws_sim_rmw")),
        };
        with(stream, |s| {
            s.rmw(dst, src, len, f);
        })
    })
}

/// Appends: 64-bit atomic add of `value` at `addr` (8-byte aligned).
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: as `agx_ws_sim_stream_fill`.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_sim_stream_atomic_add(
    stream: *mut agx_ws_sim_stream,
    addr: u64,
    value: u64,
) -> c_int {
    call("agx_ws_sim_stream_atomic_add", || {
        with(stream, |s| {
            s.atomic_add(addr, value);
        })
    })
}

/// Appends: read `len` bytes at `addr` (faults if unmapped).
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: as `agx_ws_sim_stream_fill`.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_sim_stream_load(
    stream: *mut agx_ws_sim_stream,
    addr: u64,
    len: u64,
) -> c_int {
    call("agx_ws_sim_stream_load", || {
        with(stream, |s| {
            s.load(addr, len);
        })
    })
}

/// Appends: store the 64-bit `value` at `addr` (8-byte aligned; faults if unmapped or
/// read-only).
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: as `agx_ws_sim_stream_fill`.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_sim_stream_store(
    stream: *mut agx_ws_sim_stream,
    addr: u64,
    value: u64,
) -> c_int {
    call("agx_ws_sim_stream_store", || {
        with(stream, |s| {
            s.store(addr, value);
        })
    })
}

/// Appends: busy for `ns` of GPU time.
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: as `agx_ws_sim_stream_fill`.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_sim_stream_spin(stream: *mut agx_ws_sim_stream, ns: u64) -> c_int {
    call("agx_ws_sim_stream_spin", || {
        with(stream, |s| {
            s.spin(ns);
        })
    })
}

/// Appends: hang (until the watchdog ends the command).
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: as `agx_ws_sim_stream_fill`.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_sim_stream_hang(stream: *mut agx_ws_sim_stream) -> c_int {
    call("agx_ws_sim_stream_hang", || {
        with(stream, |s| {
            s.hang();
        })
    })
}

/// The bytes the stream takes once written (its ops and the END op; 32 bytes each).
///
/// # Safety
///
/// `out_size` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_sim_stream_get_size(
    stream: *mut agx_ws_sim_stream,
    out_size: *mut u64,
) -> c_int {
    call("agx_ws_sim_stream_get_size", || {
        // SAFETY: the caller's contract, forwarded.
        let out_size = unsafe { out(out_size, "out_size") }?;
        let s = lookup(stream)?;
        out_size.write(s.lock().unwrap_or_else(|e| e.into_inner()).size_with_end());
        Ok(0)
    })
}

/// Writes the stream followed by an END op to `dst` (e.g. a mapped BO bound readable at the
/// address the command's control stream base names) and sets `*out_size` (may be NULL) to the
/// bytes written. The stream is unchanged and can be written again.
///
/// Errors: `-ENOSPC` when `capacity` is smaller than `agx_ws_sim_stream_get_size` (nothing
/// written); `-EINVAL` `dst` NULL.
///
/// # Safety
///
/// `dst` is NULL or valid for writes of `capacity` bytes (any alignment), not overlapping
/// library memory; `out_size` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_sim_stream_write(
    stream: *mut agx_ws_sim_stream,
    dst: *mut c_void,
    capacity: u64,
    out_size: *mut u64,
) -> c_int {
    call("agx_ws_sim_stream_write", || {
        // SAFETY: the caller's contract, forwarded.
        let out_size = unsafe { super::guard::out_opt(out_size, "out_size") }?;
        let s = lookup(stream)?;
        if dst.is_null() {
            return Err(einval("dst is NULL"));
        }
        let bytes = s.lock().unwrap_or_else(|e| e.into_inner()).clone().end();
        if (bytes.len() as u64) > capacity {
            return Err(Fail::new(
                libc::ENOSPC,
                format!(
                    "the stream needs {} bytes, capacity is {capacity}",
                    bytes.len()
                ),
            ));
        }
        // SAFETY: dst is non-null and valid for `capacity` >= bytes.len() bytes of writes (the
        // caller's contract); u8 has no alignment; bytes is our own Vec, so no overlap.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.cast::<u8>(), bytes.len()) };
        if let Some(o) = out_size {
            o.write(bytes.len() as u64);
        }
        Ok(0)
    })
}

/// The test controls of a device opened as a simulated one, or `-ENOTSUP`.
fn sim_control(dev: &Device) -> Result<&std::sync::Arc<dyn SimControl>, Fail> {
    dev.sim_control()
        .ok_or(Fail::new(libc::ENOTSUP, "needs the simulated device"))
}

/// Test hook for fuzzing the C ABI (Rust only, not in the header): every live handle with its
/// kind, and the simulated device state behind `device` ([`SimControl::debug_state`]), as text.
/// `None` when `device` is not a live simulated device in this process. A C call that fails
/// must leave it as it was.
pub fn debug_state(device: *mut agx_ws_device) -> Option<String> {
    let dev = lookup(device).ok()?;
    let state = dev.sim_control()?.debug_state()?;
    Some(format!("handles {}\n{state}", handle::summary()))
}
