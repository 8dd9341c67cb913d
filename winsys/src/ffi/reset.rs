//! Gallium/GL robustness: a context's reset status (`pipe_context::get_device_reset_status`),
//! latched at the first reset and reported once, with the reset callback
//! (`set_device_reset_callback`).

use std::os::raw::{c_int, c_void};

use super::guard::{call, einval, out};
use super::handle::{self, lookup};
use super::queue::agx_ws_queue;
use crate::outcome::Guilt;
use crate::reset::{ResetStatus, ResetTracker};

/// The reset state of one GL context. Feed it by attaching it to the context's queue
/// (`agx_ws_queue_set_reset_tracker`) or with `agx_ws_reset_tracker_observe*`.
pub struct agx_ws_reset_tracker {
    _opaque: [u8; 0],
}

/// `enum pipe_reset_status`, with Gallium's values.
#[repr(u32)]
pub enum agx_ws_reset_status {
    /// `PIPE_NO_RESET`.
    AGX_WS_NO_RESET = 0,
    /// `PIPE_GUILTY_CONTEXT_RESET`: this context caused it.
    AGX_WS_GUILTY_CONTEXT_RESET = 1,
    /// `PIPE_INNOCENT_CONTEXT_RESET`: another context caused it.
    AGX_WS_INNOCENT_CONTEXT_RESET = 2,
    /// `PIPE_UNKNOWN_CONTEXT_RESET`: the kernel cannot say (upstream uAPI).
    AGX_WS_UNKNOWN_CONTEXT_RESET = 3,
}

/// `pipe_device_reset_callback::reset`: called once, when the tracker latches its first reset,
/// with the callback's `user_data` and the `agx_ws_reset_status`. It runs on the thread that
/// observed the reset (the one in `agx_ws_job_wait`, `agx_ws_queue_submit`, ...), without any
/// library lock held, and must not unwind (no C++ exceptions, no longjmp).
pub type agx_ws_reset_callback = Option<unsafe extern "C" fn(user_data: *mut c_void, status: u32)>;

/// The callback's `user_data`, moved to whichever thread observes the reset.
struct UserData(*mut c_void);

// SAFETY: the caller of `agx_ws_reset_tracker_set_callback` guarantees the callback may be called
// with this pointer from any thread; the library never dereferences it.
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}

impl UserData {
    fn get(&self) -> *mut c_void {
        self.0
    }
}

fn status(v: u32) -> Result<ResetStatus, super::guard::Fail> {
    Ok(match v {
        0 => ResetStatus::NoReset,
        1 => ResetStatus::Guilty,
        2 => ResetStatus::Innocent,
        3 => ResetStatus::Unknown,
        _ => return Err(einval("not an agx_ws_reset_status")),
    })
}

/// Creates a tracker with no reset latched.
///
/// # Safety
///
/// `out_tracker` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_reset_tracker_create(
    out_tracker: *mut *mut agx_ws_reset_tracker,
) -> c_int {
    call("agx_ws_reset_tracker_create", || {
        // SAFETY: the caller's contract, forwarded.
        let out_tracker = unsafe { out(out_tracker, "out_tracker") }?;
        out_tracker.write(handle::register(ResetTracker::new()));
        Ok(0)
    })
}

/// Destroys the handle. Queues and jobs it is attached to keep feeding it (harmlessly) until
/// they go; its callback is not called after this returns unless such a job is still waited.
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_reset_tracker_destroy(tracker: *mut agx_ws_reset_tracker) -> c_int {
    call("agx_ws_reset_tracker_destroy", || {
        let t = handle::unregister(tracker)?;
        t.set_callback(None);
        Ok(0)
    })
}

/// Installs (or with a NULL `callback` removes) the reset callback.
///
/// # Safety
///
/// `callback`, if not NULL, is safe to call with `user_data` from any thread until it is
/// replaced or the tracker destroyed, and does not unwind.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_reset_tracker_set_callback(
    tracker: *mut agx_ws_reset_tracker,
    callback: agx_ws_reset_callback,
    user_data: *mut c_void,
) -> c_int {
    call("agx_ws_reset_tracker_set_callback", || {
        let t = lookup(tracker)?;
        match callback {
            None => t.set_callback(None),
            Some(f) => {
                let data = UserData(user_data);
                t.set_callback(Some(Box::new(move |s: ResetStatus| {
                    // SAFETY: the caller's contract: f may be called with user_data from any
                    // thread while installed.
                    unsafe { f(data.get(), s as u32) }
                })));
            }
        }
        Ok(0)
    })
}

/// Records a reset status the context learned some other way (e.g. `reset_status` of an
/// outcome). The first reset wins; `AGX_WS_NO_RESET` changes nothing.
///
/// # Safety
///
/// Always safe: the handle is looked up, never dereferenced.
///
/// Thread safety: thread-safe; may call the callback.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_reset_tracker_observe(
    tracker: *mut agx_ws_reset_tracker,
    status: u32,
) -> c_int {
    call("agx_ws_reset_tracker_observe", || {
        let s = self::status(status)?;
        lookup(tracker)?.observe(s);
        Ok(0)
    })
}

/// Asks the kernel about `queue` (`agx_ws_queue_get_state`) and records a ban as a reset with
/// the guilt the kernel gives: how a context with nothing in flight learns it was reset. A
/// no-op on upstream kernels (no queue state).
///
/// # Safety
///
/// Always safe: handles are looked up, never dereferenced.
///
/// Thread safety: thread-safe; may call the callback.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_reset_tracker_observe_queue(
    tracker: *mut agx_ws_reset_tracker,
    queue: *mut agx_ws_queue,
) -> c_int {
    call("agx_ws_reset_tracker_observe_queue", || {
        let t = lookup(tracker)?;
        let q = lookup(queue)?;
        match q.queue.state() {
            Ok(st) if st.banned => t.observe(match st.guilt {
                Some(Guilt::Guilty) => ResetStatus::Guilty,
                Some(Guilt::Innocent) => ResetStatus::Innocent,
                _ => ResetStatus::Unknown,
            }),
            Ok(_) | Err(crate::Error::Unsupported(_)) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(0)
    })
}

/// `get_device_reset_status`: the latched reset the first time it is asked after the reset,
/// `AGX_WS_NO_RESET` before and ever after (the context is lost: make a new one).
///
/// # Safety
///
/// `out_status` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_reset_tracker_get_status(
    tracker: *mut agx_ws_reset_tracker,
    out_status: *mut u32,
) -> c_int {
    call("agx_ws_reset_tracker_get_status", || {
        // SAFETY: the caller's contract, forwarded.
        let out_status = unsafe { out(out_status, "out_status") }?;
        out_status.write(lookup(tracker)?.status() as u32);
        Ok(0)
    })
}

/// Whether a reset has been latched (the context is lost), without consuming the report.
///
/// # Safety
///
/// `out_lost` is NULL or valid for a write.
///
/// Thread safety: thread-safe.
#[no_mangle]
pub unsafe extern "C" fn agx_ws_reset_tracker_is_lost(
    tracker: *mut agx_ws_reset_tracker,
    out_lost: *mut bool,
) -> c_int {
    call("agx_ws_reset_tracker_is_lost", || {
        // SAFETY: the caller's contract, forwarded.
        let out_lost = unsafe { out(out_lost, "out_lost") }?;
        out_lost.write(lookup(tracker)?.is_lost());
        Ok(0)
    })
}
