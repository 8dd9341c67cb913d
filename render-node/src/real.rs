//! The functions we interpose, as the C library implements them (`dlsym(RTLD_NEXT)`), and a
//! per-thread flag that sends calls made while we are already inside a hook (by our own code,
//! or by the standard library under it) straight to them.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_ulong, c_void, CStr};
use std::sync::OnceLock;

use libc::{mode_t, off_t, size_t, ssize_t, DIR, FILE};

thread_local! {
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is inside a hook already (or is being torn down: then too, nothing of
/// ours should run).
pub fn inside() -> bool {
    INSIDE.try_with(Cell::get).unwrap_or(true)
}

/// Marks this thread as inside a hook until dropped.
pub struct Inside(bool);

impl Inside {
    pub fn enter() -> Inside {
        Inside(INSIDE.try_with(|c| c.replace(true)).unwrap_or(true))
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        let _ = INSIDE.try_with(|c| c.set(self.0));
    }
}

fn lookup(name: &CStr) -> *mut c_void {
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name only looks the symbol up.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    if p.is_null() {
        // No C library below us: nothing sensible can happen. Not a panic (it must not unwind
        // into C).
        let msg = b"agx-render-node: a C library function is missing below the preload\n";
        // SAFETY: writing a static buffer to stderr.
        unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
        std::process::abort();
    }
    p
}

macro_rules! real {
    ($($name:ident: fn($($arg:ty),*) -> $ret:ty;)*) => {
        $(
            #[allow(non_snake_case)]
            pub fn $name() -> unsafe extern "C" fn($($arg),*) -> $ret {
                static F: OnceLock<usize> = OnceLock::new();
                let p = *F.get_or_init(|| {
                    let name = concat!(stringify!($name), "\0");
                    lookup(CStr::from_bytes_with_nul(name.as_bytes()).expect("NUL-terminated"))
                        as usize
                });
                // SAFETY: `p` is the C library's `$name`, whose C prototype is exactly this
                // function type.
                unsafe { std::mem::transmute::<usize, unsafe extern "C" fn($($arg),*) -> $ret>(p) }
            }
        )*
    };
}

real! {
    open: fn(*const c_char, c_int, mode_t) -> c_int;
    open64: fn(*const c_char, c_int, mode_t) -> c_int;
    openat: fn(c_int, *const c_char, c_int, mode_t) -> c_int;
    openat64: fn(c_int, *const c_char, c_int, mode_t) -> c_int;
    close: fn(c_int) -> c_int;
    dup: fn(c_int) -> c_int;
    dup2: fn(c_int, c_int) -> c_int;
    dup3: fn(c_int, c_int, c_int) -> c_int;
    fcntl: fn(c_int, c_int, c_ulong) -> c_int;
    fcntl64: fn(c_int, c_int, c_ulong) -> c_int;
    ioctl: fn(c_int, c_ulong, *mut c_void) -> c_int;
    mmap: fn(*mut c_void, size_t, c_int, c_int, c_int, off_t) -> *mut c_void;
    mmap64: fn(*mut c_void, size_t, c_int, c_int, c_int, off_t) -> *mut c_void;
    stat: fn(*const c_char, *mut libc::stat) -> c_int;
    stat64: fn(*const c_char, *mut libc::stat64) -> c_int;
    lstat: fn(*const c_char, *mut libc::stat) -> c_int;
    lstat64: fn(*const c_char, *mut libc::stat64) -> c_int;
    fstat: fn(c_int, *mut libc::stat) -> c_int;
    fstat64: fn(c_int, *mut libc::stat64) -> c_int;
    fstatat: fn(c_int, *const c_char, *mut libc::stat, c_int) -> c_int;
    fstatat64: fn(c_int, *const c_char, *mut libc::stat64, c_int) -> c_int;
    access: fn(*const c_char, c_int) -> c_int;
    opendir: fn(*const c_char) -> *mut DIR;
    readdir: fn(*mut DIR) -> *mut libc::dirent;
    readdir64: fn(*mut DIR) -> *mut libc::dirent64;
    closedir: fn(*mut DIR) -> c_int;
    dirfd: fn(*mut DIR) -> c_int;
    readlink: fn(*const c_char, *mut c_char, size_t) -> ssize_t;
    realpath: fn(*const c_char, *mut c_char) -> *mut c_char;
    fopen: fn(*const c_char, *const c_char) -> *mut FILE;
    fopen64: fn(*const c_char, *const c_char) -> *mut FILE;
}
