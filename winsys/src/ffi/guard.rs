//! The boundary itself: every `extern "C"` body runs in [`call`], which catches panics, turns
//! [`Fail`]ures into negative errnos and records the thread's last error message; and the
//! checked readers and writers of C memory (descriptors, arrays, strings, out-parameters).

use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::mem::MaybeUninit;
use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

use super::AGX_WS_ERR_PANIC;
use crate::error::Error;

/// Longest array the ABI accepts in one descriptor (a bound against garbage counts).
pub(crate) const MAX_ARRAY: u32 = 1 << 16;

/// A failed call: the negative errno to return and why.
#[derive(Debug)]
pub(crate) struct Fail {
    pub(crate) code: c_int,
    pub(crate) why: Cow<'static, str>,
}

impl Fail {
    pub(crate) fn new(errno: c_int, why: impl Into<Cow<'static, str>>) -> Fail {
        Fail {
            code: -errno,
            why: why.into(),
        }
    }
}

/// `-EINVAL` with a reason.
pub(crate) fn einval(why: &'static str) -> Fail {
    Fail::new(libc::EINVAL, why)
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail::new(errno_of(&e), e.to_string())
    }
}

/// The errno a winsys error stands for at the C ABI (positive; returned negated).
pub(crate) fn errno_of(e: &Error) -> c_int {
    e.errno().raw_os_error()
}

pub(crate) type FfiResult<T = c_int> = Result<T, Fail>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(func: &str, why: &str) {
    let msg = format!("{func}: {why}").replace('\0', " ");
    let msg = CString::new(msg).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|l| *l.borrow_mut() = msg);
}

pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR
        .try_with(|l| l.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// Runs the body of `func`: its `Ok` value is returned (0 or a documented non-negative value),
/// a [`Fail`] its negative errno, and a panic [`AGX_WS_ERR_PANIC`]. Nothing unwinds past this.
pub(crate) fn call(func: &'static str, body: impl FnOnce() -> FfiResult) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => v,
        Ok(Err(f)) => {
            set_last_error(func, &f.why);
            f.code
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            // Dropping the payload could itself panic (a payload with a panicking Drop):
            // leak it rather than unwind out of an extern "C" function.
            std::mem::forget(payload);
            set_last_error(func, &format!("internal error (panic): {what}"));
            AGX_WS_ERR_PANIC
        }
    }
}

/// A struct of the ABI whose first field is `uint32_t struct_size`.
///
/// # Safety
///
/// Implementers are `#[repr(C)]`, have `struct_size: u32` as their first field, and are plain
/// data for which every bit pattern is valid (integers, arrays of them, raw pointers), so reading
/// one that C filled in can never produce an invalid Rust value.
pub(crate) unsafe trait Sized32: Sized {}

fn check_ptr<T>(p: *const T, what: &'static str) -> FfiResult<()> {
    if p.is_null() {
        return Err(Fail::new(libc::EINVAL, format!("{what} is NULL")));
    }
    if !p.is_aligned() {
        return Err(Fail::new(libc::EINVAL, format!("{what} is misaligned")));
    }
    Ok(())
}

fn check_size<T>(size: u32, what: &'static str) -> FfiResult<()> {
    if size as usize != size_of::<T>() {
        return Err(Fail::new(
            libc::EINVAL,
            format!(
                "{what}: struct_size is {size}, expected {} (sizeof)",
                size_of::<T>()
            ),
        ));
    }
    Ok(())
}

/// A descriptor C passed in, after its `struct_size` was checked.
///
/// # Safety
///
/// `p` is NULL or points to memory readable for as long as `'a`, holding at least a `uint32_t`
/// and, when that `uint32_t` equals `sizeof(T)`, a whole `T`.
pub(crate) unsafe fn input<'a, T: Sized32>(p: *const T, what: &'static str) -> FfiResult<&'a T> {
    check_ptr(p, what)?;
    // SAFETY: p is non-null and aligned (checked), and the caller guarantees the first u32 is
    // readable; `Sized32` puts struct_size there.
    let size = unsafe { p.cast::<u32>().read() };
    check_size::<T>(size, what)?;
    // SAFETY: the size says C passed a whole T; the caller guarantees it is readable for 'a,
    // and every bit pattern is a valid T (`Sized32`).
    Ok(unsafe { &*p })
}

/// An out-struct whose `struct_size` C set (the rest may be uninitialised): checked now, written
/// whole at the end of the call.
///
/// # Safety
///
/// `p` is NULL or points to memory writable until the [`Out`] is written or dropped, holding at
/// least an initialised `uint32_t` and, when that equals `sizeof(T)`, room for a whole `T`.
pub(crate) unsafe fn output<T: Sized32 + Copy>(p: *mut T, what: &'static str) -> FfiResult<Out<T>> {
    check_ptr(p, what)?;
    // SAFETY: non-null, aligned, first u32 readable (caller); struct_size is first (Sized32).
    let size = unsafe { p.cast::<u32>().read() };
    check_size::<T>(size, what)?;
    Ok(Out(NonNull::new(p).expect("checked non-null")))
}

/// An in/out struct (C filled it in; the call updates it).
///
/// # Safety
///
/// `p` is NULL or points to memory readable and writable for `'a`, holding at least a
/// `uint32_t` and, when that equals `sizeof(T)`, a whole initialised `T`, not aliased by any
/// other reference during `'a`.
pub(crate) unsafe fn inout<'a, T: Sized32>(p: *mut T, what: &'static str) -> FfiResult<&'a mut T> {
    check_ptr(p, what)?;
    // SAFETY: non-null, aligned, first u32 readable (caller); struct_size is first (Sized32).
    let size = unsafe { p.cast::<u32>().read() };
    check_size::<T>(size, what)?;
    // SAFETY: a whole initialised T that C lends us exclusively for 'a (caller), valid for any
    // bit pattern (Sized32).
    Ok(unsafe { &mut *p })
}

/// A plain out-parameter, checked before the call does anything, written at its end.
pub(crate) struct Out<T>(NonNull<T>);

/// A checked out-parameter.
///
/// # Safety
///
/// `p` is NULL or valid for a write of `T` until the [`Out`] is written or dropped.
pub(crate) unsafe fn out<T>(p: *mut T, what: &'static str) -> FfiResult<Out<T>> {
    check_ptr(p, what)?;
    Ok(Out(NonNull::new(p).expect("checked non-null")))
}

impl<T: Copy> Out<T> {
    /// Stores `v` (a `Copy` value: nothing to drop in the old one).
    pub(crate) fn write(self, v: T) {
        // SAFETY: non-null and aligned (checked in `out`), writable (the `out` caller's
        // contract); T is Copy so overwriting without dropping is correct.
        unsafe { self.0.as_ptr().write(v) }
    }
}

/// An optional out-parameter: NULL means "not wanted".
///
/// # Safety
///
/// As [`out`].
pub(crate) unsafe fn out_opt<T>(p: *mut T, what: &'static str) -> FfiResult<Option<Out<T>>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { out(p, what) }.map(Some)
}

/// An array C passed as a count and a pointer (NULL allowed when the count is 0).
///
/// # Safety
///
/// When `n > 0`, `p` is NULL or points to `n` readable, initialised `T`s for `'a`, and every bit
/// pattern is a valid `T`.
/// Inlined: a driver's submit passes several (mostly empty) arrays; the failures are out of line.
#[inline]
pub(crate) unsafe fn slice<'a, T>(p: *const T, n: u32, what: &'static str) -> FfiResult<&'a [T]> {
    if n == 0 {
        return Ok(&[]);
    }
    if n > MAX_ARRAY || p.is_null() || !p.is_aligned() {
        return Err(bad_array(p, n, what));
    }
    // SAFETY: non-null, aligned, n elements readable for 'a (caller), n bounded above so the
    // byte size cannot overflow isize.
    Ok(unsafe { std::slice::from_raw_parts(p, n as usize) })
}

/// Why [`slice`] refused an array.
#[cold]
fn bad_array<T>(p: *const T, n: u32, what: &'static str) -> Fail {
    if n > MAX_ARRAY {
        return Fail::new(
            libc::EINVAL,
            format!("{what}: count {n} is larger than {MAX_ARRAY}"),
        );
    }
    match check_ptr(p, what) {
        Err(f) => f,
        Ok(()) => einval("bad array"),
    }
}

/// An output array of `n` elements C provides (possibly uninitialised; NULL allowed when `n` is
/// 0).
///
/// # Safety
///
/// When `n > 0`, `p` is NULL or points to room for `n` `T`s, writable and not aliased for `'a`.
pub(crate) unsafe fn slice_mut<'a, T>(
    p: *mut T,
    n: u32,
    what: &'static str,
) -> FfiResult<&'a mut [MaybeUninit<T>]> {
    if n == 0 {
        return Ok(&mut []);
    }
    if n > MAX_ARRAY {
        return Err(Fail::new(
            libc::EINVAL,
            format!("{what}: count {n} is larger than {MAX_ARRAY}"),
        ));
    }
    check_ptr(p, what)?;
    // SAFETY: non-null, aligned, room for n elements writable and unaliased for 'a (caller);
    // MaybeUninit makes no claim about the contents.
    Ok(unsafe { std::slice::from_raw_parts_mut(p.cast::<MaybeUninit<T>>(), n as usize) })
}

/// A NUL-terminated UTF-8 string, or `None` for NULL.
///
/// # Safety
///
/// `p` is NULL or points to a NUL-terminated string readable for `'a`.
pub(crate) unsafe fn c_str<'a>(p: *const c_char, what: &'static str) -> FfiResult<Option<&'a str>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-null and NUL-terminated (caller).
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map(Some)
        .map_err(|_| Fail::new(libc::EINVAL, format!("{what} is not UTF-8")))
}

/// Converts a `uint32_t` boolean (any non-zero is true).
pub(crate) fn flag(v: u32) -> bool {
    v != 0
}

/// Copies `s` into a fixed `char` array, NUL-terminated, truncated on a character boundary.
pub(crate) fn copy_c_string(dst: &mut [c_char], s: &str) {
    let Some(max) = dst.len().checked_sub(1) else {
        return;
    };
    let mut n = s.len().min(max);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    for (d, &b) in dst.iter_mut().zip(&s.as_bytes()[..n]) {
        *d = b as c_char;
    }
    for d in &mut dst[n..] {
        *d = 0;
    }
}

/// A C fd, borrowed: negative is `-EBADF`.
///
/// # Safety
///
/// A non-negative `fd` is open for `'a`.
pub(crate) unsafe fn borrow_fd<'a>(
    fd: std::os::raw::c_int,
) -> FfiResult<std::os::fd::BorrowedFd<'a>> {
    if fd < 0 {
        return Err(Fail::new(libc::EBADF, "negative fd"));
    }
    // SAFETY: open for 'a (the caller's contract); only borrowed.
    Ok(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_an_error_code_and_a_message() {
        let r = call("agx_ws_test", || panic!("boom"));
        assert_eq!(r, AGX_WS_ERR_PANIC);
        // SAFETY: the library's own NUL-terminated string, read on the thread that owns it.
        let msg = unsafe { CStr::from_ptr(last_error_ptr()) };
        assert!(msg.to_str().unwrap().contains("boom"), "{msg:?}");
        assert_eq!(call("agx_ws_test", || Ok(0)), 0);
        assert_eq!(call("agx_ws_test", || Err(einval("bad"))), -libc::EINVAL);
    }

    #[test]
    fn c_strings_truncate_on_char_boundaries() {
        let mut buf = [1 as c_char; 4];
        copy_c_string(&mut buf, "aé€");
        assert_eq!(buf, [b'a' as c_char, 0xc3u8 as c_char, 0xa9u8 as c_char, 0]);
        copy_c_string(&mut buf, "€€");
        assert_eq!(buf[3], 0);
        assert_eq!(
            &buf[..3],
            &[0xe2u8 as c_char, 0x82u8 as c_char, 0xacu8 as c_char]
        );
    }
}
