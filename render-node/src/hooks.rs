//! The interposed C library functions. Each one decides whether the call concerns the node;
//! if not (or when called from inside another hook) it is the C library's own.

use std::ffi::{c_char, c_int, c_ulong, c_void, CStr};
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};

use agx_sim::uaccess::{Caller, InProcess};
use agx_uapi::ioctl::{ioc_dir, ioc_size, ioc_type, IOC_READ, IOC_WRITE};
use libc::{mode_t, off_t, size_t, ssize_t, DIR, FILE};

use crate::real::{self, Inside};
use crate::state::{lock, Listing, State};

fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns this thread's errno, always valid to write.
    unsafe { *libc::__errno_location() = e };
}

fn fail<R>(errno: c_int, r: R) -> R {
    set_errno(errno);
    r
}

/// `ours` decides (`Some`: handled) unless this thread is inside a hook already or the node is
/// not provided; otherwise, and when `ours` declines, the C library's `theirs` runs. A panic in
/// `ours` (a bug) is `EIO` and `failed`, never an unwind into C.
fn hook<R>(
    failed: R,
    theirs: impl FnOnce() -> R,
    ours: impl FnOnce(&'static State) -> Option<R>,
) -> R {
    if real::inside() {
        return theirs();
    }
    let decided = {
        let _g = Inside::enter();
        catch_unwind(AssertUnwindSafe(|| crate::state().and_then(ours)))
    };
    match decided {
        Ok(Some(r)) => r,
        Ok(None) => theirs(),
        Err(_) => fail(libc::EIO, failed),
    }
}

/// The bytes of a C path argument.
///
/// # Safety
/// `p` is null or a NUL-terminated string live for the call (what every caller of these
/// functions must pass).
unsafe fn cpath<'a>(p: *const c_char) -> Option<&'a [u8]> {
    if p.is_null() {
        return None;
    }
    // SAFETY: per this function's contract.
    Some(unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// A file of the given contents, positioned at its start (a sysfs file of the device).
fn memfile(contents: &[u8], cloexec: bool) -> c_int {
    let flags = if cloexec {
        rustix::fs::MemfdFlags::CLOEXEC
    } else {
        rustix::fs::MemfdFlags::empty()
    };
    let made = rustix::fs::memfd_create("agx-render-node-sysfs", flags).and_then(|fd| {
        rustix::io::write(&fd, contents)?;
        rustix::fs::seek(&fd, rustix::fs::SeekFrom::Start(0))?;
        Ok(fd)
    });
    match made {
        Ok(fd) => fd.into_raw_fd(),
        Err(e) => fail(e.raw_os_error(), -1),
    }
}

fn ret_fd(r: Result<RawFd, rustix::io::Errno>) -> c_int {
    r.unwrap_or_else(|e| fail(e.raw_os_error(), -1))
}

/// The node itself and its sysfs `uevent`, for `open` and `openat` of an absolute path.
///
/// # Safety
/// As [`cpath`].
unsafe fn open_ours(st: &State, path: *const c_char, flags: c_int) -> Option<c_int> {
    // SAFETY: `path` is the caller's path argument.
    let p = unsafe { cpath(path) }?;
    let cloexec = flags & libc::O_CLOEXEC != 0;
    if st.node.is_node(p) {
        return Some(ret_fd(st.open(cloexec)));
    }
    st.node.sys_file(p).map(|c| memfile(&c, cloexec))
}

macro_rules! open_hook {
    ($name:ident) => {
        /// # Safety
        /// As the C library's.
        #[no_mangle]
        pub unsafe extern "C" fn $name(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
            hook(
                -1,
                // SAFETY: the caller's arguments, forwarded.
                || unsafe { real::$name()(path, flags, mode) },
                // SAFETY: `path` is the caller's path argument.
                |st| unsafe { open_ours(st, path, flags) },
            )
        }
    };
}
open_hook!(open);
open_hook!(open64);

macro_rules! openat_hook {
    ($name:ident) => {
        /// # Safety
        /// As the C library's.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            dirfd: c_int,
            path: *const c_char,
            flags: c_int,
            mode: mode_t,
        ) -> c_int {
            hook(
                -1,
                // SAFETY: the caller's arguments, forwarded.
                || unsafe { real::$name()(dirfd, path, flags, mode) },
                // SAFETY: `path` is the caller's path argument (absolute ones only: the
                // directory does not matter then).
                |st| unsafe {
                    if !path.is_null() && *path == b'/' as c_char {
                        open_ours(st, path, flags)
                    } else {
                        None
                    }
                },
            )
        }
    };
}
openat_hook!(openat);
openat_hook!(openat64);

/// `_FORTIFY_SOURCE`'s `open` (no mode: `O_CREAT` is refused by the fortified callers).
///
/// # Safety
/// As the C library's.
#[no_mangle]
pub unsafe extern "C" fn __open_2(path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: the caller's arguments.
    unsafe { open(path, flags, 0) }
}

/// # Safety
/// As the C library's.
#[no_mangle]
pub unsafe extern "C" fn __open64_2(path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: the caller's arguments.
    unsafe { open64(path, flags, 0) }
}

/// # Safety
/// As the C library's.
#[no_mangle]
pub unsafe extern "C" fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: the caller's arguments.
    unsafe { openat(dirfd, path, flags, 0) }
}

/// # Safety
/// As the C library's.
#[no_mangle]
pub unsafe extern "C" fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: the caller's arguments.
    unsafe { openat64(dirfd, path, flags, 0) }
}

/// # Safety
/// As the C library's.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    hook(
        -1,
        // SAFETY: the caller's argument.
        || unsafe { real::close()(fd) },
        |st| {
            // Forget it before the number can be reused.
            st.closed(fd);
            None
        },
    )
}

/// Records that `new` names what `old` does, after a successful duplication.
fn duplicated(old: c_int, new: c_int) {
    hook(
        (),
        || (),
        |st| {
            st.duplicated(old, new);
            Some(())
        },
    )
}

/// # Safety
/// As the C library's.
#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    // SAFETY: the caller's argument.
    let r = unsafe { real::dup()(fd) };
    if r >= 0 {
        duplicated(fd, r);
    }
    r
}

/// # Safety
/// As the C library's.
#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    // SAFETY: the caller's arguments.
    let r = unsafe { real::dup2()(old, new) };
    if r >= 0 && old != new {
        duplicated(old, new);
    }
    r
}

/// # Safety
/// As the C library's.
#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    // SAFETY: the caller's arguments.
    let r = unsafe { real::dup3()(old, new, flags) };
    if r >= 0 {
        duplicated(old, new);
    }
    r
}

macro_rules! fcntl_hook {
    ($name:ident) => {
        /// # Safety
        /// As the C library's (the optional argument is passed on as it came).
        #[no_mangle]
        pub unsafe extern "C" fn $name(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
            // SAFETY: the caller's arguments.
            let r = unsafe { real::$name()(fd, cmd, arg) };
            if r >= 0 && (cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC) {
                duplicated(fd, r);
            }
            r
        }
    };
}
fcntl_hook!(fcntl);
fcntl_hook!(fcntl64);

/// # Safety
/// As the C library's: `arg` points at the argument struct `request` encodes.
#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    hook(
        -1,
        // SAFETY: the caller's arguments.
        || unsafe { real::ioctl()(fd, request, arg) },
        |st| {
            let cmd = request as u32;
            if let Some(file) = st.file(fd) {
                return Some(forward(cmd, arg, |a| st.ioctl(&file, cmd, a)));
            }
            // A sync_file or dma-buf the device exported: the host kernel sees a pipe or a
            // memfd and has no such ioctl (ENOTTY); its server knows it.
            let t = ioc_type(cmd);
            if t != agx_uapi::sync_file::SYNC_IOC_MAGIC && t != agx_uapi::dma_buf::DMA_BUF_BASE {
                return None;
            }
            let file = st.any_file()?;
            // SAFETY: the caller's arguments.
            let r = unsafe { real::ioctl()(fd, request, arg) };
            // SAFETY: reading errno right after the call.
            if r == 0 || unsafe { *libc::__errno_location() } != libc::ENOTTY {
                return Some(r);
            }
            let target = InProcess.fdget(fd).ok()?;
            Some(forward(cmd, arg, |a| file.fd_ioctl(target.as_fd(), cmd, a)))
        },
    )
}

/// Copies the argument in, runs the ioctl through the device, copies it out: `EFAULT` for an
/// argument pointer that is not readable (or writable), as the kernel's copy_from/to_user.
fn forward(
    cmd: u32,
    arg: *mut c_void,
    call: impl FnOnce(&mut [u8]) -> Result<(), rustix::io::Errno>,
) -> c_int {
    let mut buf = vec![0u8; ioc_size(cmd)];
    let addr = arg as u64;
    if ioc_dir(cmd) & IOC_WRITE != 0 && InProcess.copy_from_user(&mut buf, addr).is_err() {
        return fail(libc::EFAULT, -1);
    }
    let r = call(&mut buf);
    if ioc_dir(cmd) & IOC_READ != 0
        && !buf.is_empty()
        && InProcess.copy_to_user(addr, &buf).is_err()
        && r.is_ok()
    {
        return fail(libc::EFAULT, -1);
    }
    match r {
        Ok(()) => 0,
        Err(e) => fail(e.raw_os_error(), -1),
    }
}

macro_rules! mmap_hook {
    ($name:ident) => {
        /// # Safety
        /// As the C library's.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            addr: *mut c_void,
            len: size_t,
            prot: c_int,
            flags: c_int,
            fd: c_int,
            offset: off_t,
        ) -> *mut c_void {
            hook(
                libc::MAP_FAILED,
                // SAFETY: the caller's arguments.
                || unsafe { real::$name()(addr, len, prot, flags, fd, offset) },
                |st| {
                    let file = st.file(fd)?;
                    let mem = match file.mmap_fd(offset as u64, len as u64) {
                        Ok(m) => m,
                        Err(e) => return Some(fail(e.raw_os_error(), libc::MAP_FAILED)),
                    };
                    // SAFETY: the caller's mapping request, on the BO's memory file instead
                    // of the node (the BO starts at its offset 0); the caller owns the result
                    // as it would a mapping of the node.
                    Some(unsafe { real::$name()(addr, len, prot, flags, mem.as_raw_fd(), 0) })
                },
            )
        }
    };
}
mmap_hook!(mmap);
mmap_hook!(mmap64);

/// What `stat` says of a path of the node, if it is one.
fn faked(st: &State, p: &[u8]) -> Option<(mode_t, libc::dev_t)> {
    if st.node.is_node(p) {
        return Some((libc::S_IFCHR | 0o666, st.node.rdev()));
    }
    if st.node.sys_dir(p) {
        return Some((libc::S_IFDIR | 0o755, 0));
    }
    None
}

/// `/dev/dri` itself, where there is none (this machine's case): an empty directory but for
/// the node.
fn dri_dir(p: &[u8]) -> bool {
    p == b"/dev/dri" || p == b"/dev/dri/"
}

macro_rules! fill_stat {
    ($buf:expr, $mode:expr, $rdev:expr) => {{
        // SAFETY: the caller's stat buffer, valid for writes of the struct.
        unsafe {
            std::ptr::write_bytes($buf, 0, 1);
            (*$buf).st_mode = $mode;
            (*$buf).st_rdev = $rdev;
            (*$buf).st_nlink = 1;
            (*$buf).st_blksize = 4096;
        }
        0
    }};
}

macro_rules! stat_hook {
    ($name:ident, $ty:ty) => {
        /// # Safety
        /// As the C library's.
        #[no_mangle]
        pub unsafe extern "C" fn $name(path: *const c_char, buf: *mut $ty) -> c_int {
            hook(
                -1,
                // SAFETY: the caller's arguments.
                || unsafe { real::$name()(path, buf) },
                |st| {
                    // SAFETY: `path` is the caller's path argument.
                    let p = unsafe { cpath(path) }?;
                    if let Some((mode, rdev)) = faked(st, p) {
                        return Some(fill_stat!(buf, mode, rdev));
                    }
                    // SAFETY: the caller's arguments.
                    if dri_dir(p) && unsafe { real::$name()(path, buf) } != 0 {
                        return Some(fill_stat!(buf, libc::S_IFDIR | 0o755, 0));
                    }
                    None
                },
            )
        }
    };
}
stat_hook!(stat, libc::stat);
stat_hook!(stat64, libc::stat64);
stat_hook!(lstat, libc::stat);
stat_hook!(lstat64, libc::stat64);

macro_rules! fstat_hook {
    ($name:ident, $ty:ty) => {
        /// # Safety
        /// As the C library's.
        #[no_mangle]
        pub unsafe extern "C" fn $name(fd: c_int, buf: *mut $ty) -> c_int {
            hook(
                -1,
                // SAFETY: the caller's arguments.
                || unsafe { real::$name()(fd, buf) },
                |st| {
                    st.file(fd)?;
                    Some(fill_stat!(buf, libc::S_IFCHR | 0o666, st.node.rdev()))
                },
            )
        }
    };
}
fstat_hook!(fstat, libc::stat);
fstat_hook!(fstat64, libc::stat64);

macro_rules! fstatat_hook {
    ($name:ident, $ty:ty) => {
        /// # Safety
        /// As the C library's.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            dirfd: c_int,
            path: *const c_char,
            buf: *mut $ty,
            flags: c_int,
        ) -> c_int {
            hook(
                -1,
                // SAFETY: the caller's arguments.
                || unsafe { real::$name()(dirfd, path, buf, flags) },
                |st| {
                    // SAFETY: `path` is the caller's path argument.
                    let p = unsafe { cpath(path) }?;
                    if p.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
                        st.file(dirfd)?;
                        return Some(fill_stat!(buf, libc::S_IFCHR | 0o666, st.node.rdev()));
                    }
                    let (mode, rdev) = faked(st, p)?;
                    Some(fill_stat!(buf, mode, rdev))
                },
            )
        }
    };
}
fstatat_hook!(fstatat, libc::stat);
fstatat_hook!(fstatat64, libc::stat64);

/// # Safety
/// As the C library's.
#[no_mangle]
pub unsafe extern "C" fn access(path: *const c_char, mode: c_int) -> c_int {
    hook(
        -1,
        // SAFETY: the caller's arguments.
        || unsafe { real::access()(path, mode) },
        |st| {
            // SAFETY: `path` is the caller's path argument.
            let p = unsafe { cpath(path) }?;
            if faked(st, p).is_some() {
                return Some(0);
            }
            // SAFETY: the caller's arguments.
            (dri_dir(p) && unsafe { real::access()(path, mode) } != 0).then_some(0)
        },
    )
}

/// The `DIR*` of a `/dev/dri` listing when there is no real one: a unique address that no
/// `opendir` returns, never dereferenced (every call taking it is ours).
static NO_DRI_DIR: u8 = 0;

fn no_dri_dir() -> *mut DIR {
    std::ptr::addr_of!(NO_DRI_DIR) as *mut DIR
}

/// # Safety
/// As the C library's.
#[no_mangle]
pub unsafe extern "C" fn opendir(name: *const c_char) -> *mut DIR {
    hook(
        std::ptr::null_mut(),
        // SAFETY: the caller's argument.
        || unsafe { real::opendir()(name) },
        |st| {
            // SAFETY: `name` is the caller's path argument.
            let p = unsafe { cpath(name) }?;
            if !dri_dir(p) {
                return None;
            }
            // SAFETY: the caller's argument.
            let dir = unsafe { real::opendir()(name) };
            let fake = dir.is_null();
            let dir = if fake { no_dri_dir() } else { dir };
            // SAFETY: an all-zero dirent64 is a valid value of the plain C struct.
            let mut entry: Box<libc::dirent64> = Box::new(unsafe { std::mem::zeroed() });
            entry.d_ino = u64::from(st.node.minor) + 1;
            entry.d_reclen = std::mem::size_of::<libc::dirent64>() as u16;
            entry.d_type = libc::DT_CHR;
            for (d, s) in entry.d_name.iter_mut().zip(st.node.name.as_bytes()) {
                *d = *s as c_char;
            }
            lock(&st.listings).insert(
                dir as usize,
                Listing {
                    entry,
                    given: false,
                    fake,
                },
            );
            Some(dir)
        },
    )
}

/// Our entry first, once; then the real directory's (none for ours).
fn next_entry(st: &State, dir: *mut DIR) -> Option<Option<*mut libc::dirent64>> {
    let mut listings = lock(&st.listings);
    let l = listings.get_mut(&(dir as usize))?;
    if !l.given {
        l.given = true;
        return Some(Some(&mut *l.entry as *mut libc::dirent64));
    }
    l.fake.then_some(None)
}

/// # Safety
/// As the C library's.
#[no_mangle]
pub unsafe extern "C" fn readdir(dir: *mut DIR) -> *mut libc::dirent {
    hook(
        std::ptr::null_mut(),
        // SAFETY: the caller's argument.
        || unsafe { real::readdir()(dir) },
        // On 64-bit Linux `struct dirent` and `struct dirent64` are the same.
        |st| next_entry(st, dir).map(|e| e.map_or(std::ptr::null_mut(), |p| p.cast())),
    )
}

/// # Safety
/// As the C library's.
#[no_mangle]
pub unsafe extern "C" fn readdir64(dir: *mut DIR) -> *mut libc::dirent64 {
    hook(
        std::ptr::null_mut(),
        // SAFETY: the caller's argument.
        || unsafe { real::readdir64()(dir) },
        |st| next_entry(st, dir).map(|e| e.unwrap_or(std::ptr::null_mut())),
    )
}

/// # Safety
/// As the C library's.
#[no_mangle]
pub unsafe extern "C" fn closedir(dir: *mut DIR) -> c_int {
    hook(
        -1,
        // SAFETY: the caller's argument.
        || unsafe { real::closedir()(dir) },
        |st| {
            let l = lock(&st.listings).remove(&(dir as usize))?;
            l.fake.then_some(0)
        },
    )
}

/// # Safety
/// As the C library's.
#[no_mangle]
pub unsafe extern "C" fn dirfd(dir: *mut DIR) -> c_int {
    if dir == no_dri_dir() {
        return fail(libc::ENOTSUP, -1);
    }
    // SAFETY: the caller's argument, a `DIR*` of the C library's.
    unsafe { real::dirfd()(dir) }
}

/// # Safety
/// As the C library's.
#[no_mangle]
pub unsafe extern "C" fn readlink(path: *const c_char, buf: *mut c_char, size: size_t) -> ssize_t {
    hook(
        -1,
        // SAFETY: the caller's arguments.
        || unsafe { real::readlink()(path, buf, size) },
        |st| {
            // SAFETY: `path` is the caller's path argument.
            let target = st.node.sys_link(unsafe { cpath(path) }?)?;
            let n = target.len().min(size);
            // SAFETY: the caller's buffer of `size` bytes; readlink writes no NUL.
            unsafe { std::ptr::copy_nonoverlapping(target.as_ptr(), buf.cast(), n) };
            Some(n as ssize_t)
        },
    )
}

/// `_FORTIFY_SOURCE`'s `readlink`.
///
/// # Safety
/// As the C library's.
#[no_mangle]
pub unsafe extern "C" fn __readlink_chk(
    path: *const c_char,
    buf: *mut c_char,
    size: size_t,
    buflen: size_t,
) -> ssize_t {
    if size > buflen {
        // What glibc's __chk_fail does: the caller's buffer is smaller than it claims.
        std::process::abort();
    }
    // SAFETY: the caller's arguments.
    unsafe { readlink(path, buf, size) }
}

/// # Safety
/// As the C library's.
#[no_mangle]
pub unsafe extern "C" fn realpath(path: *const c_char, resolved: *mut c_char) -> *mut c_char {
    hook(
        std::ptr::null_mut(),
        // SAFETY: the caller's arguments.
        || unsafe { real::realpath()(path, resolved) },
        |st| {
            // SAFETY: `path` is the caller's path argument.
            let p = unsafe { cpath(path) }?;
            if !st.node.sys_dir(p) {
                return None;
            }
            // The device directory is its own real path (there is no /sys/devices tree).
            let out = if resolved.is_null() {
                // SAFETY: malloc for the caller to free(), as realpath does.
                unsafe { libc::malloc(p.len() + 1) as *mut c_char }
            } else {
                resolved
            };
            if out.is_null() {
                return Some(fail(libc::ENOMEM, std::ptr::null_mut()));
            }
            // SAFETY: `out` holds PATH_MAX bytes (the caller's) or p.len() + 1 (ours).
            unsafe {
                std::ptr::copy_nonoverlapping(p.as_ptr(), out.cast(), p.len());
                *out.add(p.len()) = 0;
            }
            Some(out)
        },
    )
}

/// `_FORTIFY_SOURCE`'s `realpath`.
///
/// # Safety
/// As the C library's.
#[no_mangle]
pub unsafe extern "C" fn __realpath_chk(
    path: *const c_char,
    resolved: *mut c_char,
    resolvedlen: size_t,
) -> *mut c_char {
    if resolvedlen < libc::PATH_MAX as size_t {
        std::process::abort();
    }
    // SAFETY: the caller's arguments.
    unsafe { realpath(path, resolved) }
}

macro_rules! fopen_hook {
    ($name:ident) => {
        /// # Safety
        /// As the C library's.
        #[no_mangle]
        pub unsafe extern "C" fn $name(path: *const c_char, mode: *const c_char) -> *mut FILE {
            hook(
                std::ptr::null_mut(),
                // SAFETY: the caller's arguments.
                || unsafe { real::$name()(path, mode) },
                |st| {
                    // SAFETY: `path` is the caller's path argument.
                    let contents = st.node.sys_file(unsafe { cpath(path) }?)?;
                    let fd = memfile(&contents, true);
                    if fd < 0 {
                        return Some(std::ptr::null_mut());
                    }
                    // SAFETY: `fd` is a new file of ours, handed to the FILE.
                    Some(unsafe { libc::fdopen(fd, c"r".as_ptr()) })
                },
            )
        }
    };
}
fopen_hook!(fopen);
fopen_hook!(fopen64);
