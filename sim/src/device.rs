//! The device and its open files: the ioctl boundary.
//!
//! [`SimFile::ioctl`] behaves like `drm_ioctl()`: it dispatches on the ioctl nr, copies in the
//! size the caller's number encodes (zero-extending to the kernel's struct, so older and newer
//! struct sizes both work), runs the handler, and copies the struct back out for ioctls that
//! return data, even on error, as the DRM core does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use agx_uapi::drm::*;
use agx_uapi::ioctl::{ioc_dir, ioc_nr, ioc_size, ioc_type, IOC_READ, IOC_WRITE};
use rustix::io::Errno;

use crate::bo::{self, Bo};
use crate::config::{Clock, SimConfig};
use crate::gpu::{Gpu, Injection};
use crate::mem::Mapping;
use crate::sync::syncobj::SyncobjTable;
use crate::uaccess::{Caller, InProcess};

/// A timestamp buffer bound with `GEM_BIND_OBJECT`.
#[derive(Clone, Debug)]
pub(crate) struct TsObject {
    pub bo: Arc<Bo>,
    pub offset: u64,
    pub range: u64,
}

/// Per-file handle tables. Handles of one file mean nothing in another.
#[derive(Debug, Default)]
pub(crate) struct FileState {
    pub bos: BTreeMap<u32, Arc<Bo>>,
    pub vms: BTreeMap<u32, u64>,
    pub queues: BTreeMap<u32, u64>,
    pub ts_objects: BTreeMap<u32, TsObject>,
    next_handle: u32,
}

impl FileState {
    /// Next handle: 1-based, never reused within a file (as an idr with cyclic allocation).
    pub fn alloc_handle(&mut self) -> u32 {
        self.next_handle += 1;
        self.next_handle
    }
}

/// Everything behind the device lock.
#[derive(Debug)]
pub(crate) struct State {
    pub gpu: Gpu,
    pub files: BTreeMap<u64, FileState>,
    next_file: u64,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub config: SimConfig,
    state: Mutex<State>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One simulated asahi device (kernel driver + firmware + GPU).
#[derive(Clone, Debug)]
pub struct SimDevice {
    shared: Arc<Shared>,
}

impl SimDevice {
    pub fn new(config: SimConfig) -> SimDevice {
        let state = State {
            gpu: Gpu::new(config.clone()),
            files: BTreeMap::new(),
            next_file: 1,
        };
        let clock = config.clock;
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(state),
        });
        if clock == Clock::Host {
            spawn_clock(Arc::downgrade(&shared));
        }
        SimDevice { shared }
    }

    /// Opens the device, like `open("/dev/dri/renderD128")`.
    pub fn open(&self) -> SimFile {
        let mut st = self.shared.lock();
        let id = st.next_file;
        st.next_file += 1;
        st.files.insert(id, FileState::default());
        SimFile {
            shared: self.shared.clone(),
            id,
            syncobjs: Mutex::new(SyncobjTable::default()),
        }
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// Stops the GPU clock: nothing starts or progresses until [`SimDevice::release`].
    pub fn hold(&self) {
        self.shared.lock().gpu.held = true;
    }

    /// Restarts the GPU clock and runs everything runnable.
    pub fn release(&self) {
        let mut st = self.shared.lock();
        st.gpu.held = false;
        st.gpu.run();
    }

    /// With the clock held ([`SimDevice::hold`]): runs the GPU for `ns` of GPU time and stops
    /// it again, leaving commands partially executed (for teardown and recovery tests that need
    /// work really running at a given instant). Does nothing when not held.
    pub fn advance(&self, ns: u64) {
        self.shared.lock().gpu.advance(ns);
    }

    /// Queues a fault injection on `queue_id` of `file`.
    pub fn inject(&self, file: &SimFile, queue_id: u32, inj: Injection) -> Result<(), Errno> {
        let mut st = self.shared.lock();
        let qid = *st
            .files
            .get(&file.id)
            .and_then(|f| f.queues.get(&queue_id))
            .ok_or(Errno::NOENT)?;
        st.gpu
            .queues
            .get_mut(&qid)
            .ok_or(Errno::NOENT)?
            .injections
            .push_back(inj);
        Ok(())
    }

    /// Crashes the firmware: the device is gone for good.
    pub fn crash_firmware(&self) {
        self.shared.lock().gpu.crash();
    }

    /// Current GPU time, ns.
    pub fn now_ns(&self) -> u64 {
        self.shared.lock().gpu.now_ns
    }

    /// Counters since creation.
    pub fn stats(&self) -> crate::gpu::Stats {
        self.shared.lock().gpu.stats
    }

    /// The trace as Chrome/Perfetto JSON.
    pub fn trace_json(&self) -> String {
        self.shared.lock().gpu.trace.to_chrome_json()
    }

    /// The trace events.
    pub fn trace_events(&self) -> Vec<crate::trace::Event> {
        self.shared.lock().gpu.trace.events().cloned().collect()
    }

    /// Commands accepted and not yet ended.
    pub fn pending_commands(&self) -> usize {
        self.shared.lock().gpu.jobs.len()
    }
}

/// Host clock period while work is queued: fences signal at most this late.
const CLOCK_TICK: std::time::Duration = std::time::Duration::from_micros(200);
/// Host clock period while the GPU has nothing queued (submits and signals run it themselves).
const CLOCK_IDLE: std::time::Duration = std::time::Duration::from_millis(5);

/// [`Clock::Host`]: a thread that runs the GPU up to the present, so commands end and fences
/// signal when their GPU time has passed on the host, with or without ioctls. It ends with
/// the device.
fn spawn_clock(shared: std::sync::Weak<Shared>) {
    let run = move || loop {
        let Some(sh) = shared.upgrade() else { return };
        let busy = {
            let mut st = sh.lock();
            st.gpu.run();
            !st.gpu.jobs.is_empty()
        };
        drop(sh);
        std::thread::sleep(if busy { CLOCK_TICK } else { CLOCK_IDLE });
    };
    if let Err(e) = std::thread::Builder::new()
        .name("agx-sim-clock".into())
        .spawn(run)
    {
        // Out of threads: the GPU then runs only when an ioctl kicks it, so a wait may last
        // until another call comes. Said, not hidden.
        eprintln!("agx-sim: no clock thread ({e}): GPU time advances only with ioctls");
    }
}

/// An open file of a [`SimDevice`]. Dropping it is `close()`: its queues, VMs and handles go,
/// and its pending work ends `KILLED` with `-ECANCELED`.
#[derive(Debug)]
pub struct SimFile {
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: u64,
    pub(crate) syncobjs: Mutex<SyncobjTable>,
}

/// Every DRM core and asahi ioctl the device implements, with the struct size it knows.
const IOCTLS: [u32; 29] = {
    use agx_uapi::asahi::*;
    use agx_uapi::fault_ext::DRM_IOCTL_ASAHI_EXT_QUEUE_GET_STATE;
    [
        DRM_IOCTL_VERSION,
        DRM_IOCTL_GEM_CLOSE,
        DRM_IOCTL_GET_CAP,
        DRM_IOCTL_PRIME_HANDLE_TO_FD,
        DRM_IOCTL_PRIME_FD_TO_HANDLE,
        DRM_IOCTL_SYNCOBJ_CREATE,
        DRM_IOCTL_SYNCOBJ_DESTROY,
        DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD,
        DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE,
        DRM_IOCTL_SYNCOBJ_WAIT,
        DRM_IOCTL_SYNCOBJ_RESET,
        DRM_IOCTL_SYNCOBJ_SIGNAL,
        DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT,
        DRM_IOCTL_SYNCOBJ_QUERY,
        DRM_IOCTL_SYNCOBJ_TRANSFER,
        DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL,
        DRM_IOCTL_SYNCOBJ_EVENTFD,
        DRM_IOCTL_ASAHI_GET_PARAMS,
        DRM_IOCTL_ASAHI_GET_TIME,
        DRM_IOCTL_ASAHI_VM_CREATE,
        DRM_IOCTL_ASAHI_VM_DESTROY,
        DRM_IOCTL_ASAHI_VM_BIND,
        DRM_IOCTL_ASAHI_GEM_CREATE,
        DRM_IOCTL_ASAHI_GEM_MMAP_OFFSET,
        DRM_IOCTL_ASAHI_GEM_BIND_OBJECT,
        DRM_IOCTL_ASAHI_QUEUE_CREATE,
        DRM_IOCTL_ASAHI_QUEUE_DESTROY,
        DRM_IOCTL_ASAHI_SUBMIT,
        DRM_IOCTL_ASAHI_EXT_QUEUE_GET_STATE,
    ]
};

/// Our own number for an ioctl nr (the DRM core dispatches on the nr alone).
fn canonical(nr: u8) -> Option<u32> {
    IOCTLS.into_iter().find(|&c| ioc_nr(c) == nr)
}

impl SimFile {
    /// `ioctl(fd, cmd, arg)` from this process: `arg` is the argument struct, `ioc_size(cmd)`
    /// bytes; user pointers and fd numbers in it are this process's.
    pub fn ioctl(&self, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
        self.ioctl_for(&InProcess, cmd, arg)
    }

    /// `ioctl(fd, cmd, arg)` made by `caller`, whose memory and fds the argument's user
    /// pointers and fd numbers name.
    pub fn ioctl_for(&self, caller: &dyn Caller, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
        if ioc_type(cmd) != DRM_IOCTL_BASE {
            return Err(Errno::NOTTY);
        }
        if arg.len() != ioc_size(cmd) {
            return Err(Errno::FAULT);
        }
        let kcmd = canonical(ioc_nr(cmd)).ok_or(Errno::INVAL)?;
        let ksize = ioc_size(kcmd);
        let mut kdata = vec![0u8; ksize.max(arg.len())];
        if ioc_dir(cmd) & IOC_WRITE != 0 && ioc_dir(kcmd) & IOC_WRITE != 0 {
            kdata[..arg.len()].copy_from_slice(arg);
        }
        let ret = self.dispatch(caller, kcmd, &mut kdata[..ksize]);
        if ioc_dir(cmd) & IOC_READ != 0 && ioc_dir(kcmd) & IOC_READ != 0 {
            arg.copy_from_slice(&kdata[..arg.len()]);
        }
        ret
    }

    fn dispatch(&self, caller: &dyn Caller, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
        use agx_uapi::asahi::*;
        let nr = ioc_nr(cmd);
        if (DRM_COMMAND_BASE..DRM_COMMAND_END).contains(&nr) {
            // Driver ioctls: a crashed GPU refuses everything but teardown.
            let teardown =
                cmd == DRM_IOCTL_ASAHI_VM_DESTROY || cmd == DRM_IOCTL_ASAHI_QUEUE_DESTROY;
            if !teardown && self.shared.lock().gpu.crashed {
                return Err(Errno::NODEV);
            }
            return crate::ioctl::driver_ioctl(self, caller, cmd, arg);
        }
        match cmd {
            DRM_IOCTL_VERSION => self.version(caller, arg),
            DRM_IOCTL_GET_CAP => {
                let a: &mut drm_get_cap = bytemuck::from_bytes_mut(arg);
                a.value = match a.capability {
                    DRM_CAP_SYNCOBJ | DRM_CAP_SYNCOBJ_TIMELINE => 1,
                    DRM_CAP_PRIME => DRM_PRIME_CAP_IMPORT | DRM_PRIME_CAP_EXPORT,
                    _ => return Err(Errno::INVAL),
                };
                Ok(())
            }
            DRM_IOCTL_GEM_CLOSE => {
                let a: drm_gem_close = bytemuck::pod_read_unaligned(arg);
                let mut st = self.shared.lock();
                let f = st.files.get_mut(&self.id).ok_or(Errno::NODEV)?;
                let bo = f.bos.remove(&a.handle).ok_or(Errno::INVAL)?;
                // A file holds one handle per object, so this was its last: as the asahi
                // driver's GEM close callback does, the object leaves every VM of the file
                // (Mesa frees a BO with GEM_CLOSE alone and relies on this). Work in flight
                // that still uses those addresses faults, as on the hardware.
                for vm in st.gpu.vms.values_mut().filter(|v| v.file == self.id) {
                    vm.pt.unmap_bo(&bo);
                }
                Ok(())
            }
            DRM_IOCTL_PRIME_HANDLE_TO_FD => {
                let a: &mut drm_prime_handle = bytemuck::from_bytes_mut(arg);
                if a.flags & !(DRM_CLOEXEC | DRM_RDWR) != 0 {
                    return Err(Errno::INVAL);
                }
                let bo = self.bo(a.handle)?;
                if bo.vm_private.is_some() {
                    return Err(Errno::INVAL);
                }
                a.fd = caller.fd_install(bo::export_dmabuf(&bo)?)?;
                Ok(())
            }
            DRM_IOCTL_PRIME_FD_TO_HANDLE => {
                let a: &mut drm_prime_handle = bytemuck::from_bytes_mut(arg);
                let bo = bo::import_dmabuf(caller.fdget(a.fd)?)?;
                let mut st = self.shared.lock();
                let f = st.files.get_mut(&self.id).ok_or(Errno::NODEV)?;
                // The same object gets the same handle in one file.
                if let Some((&h, _)) = f.bos.iter().find(|(_, b)| Arc::ptr_eq(b, &bo)) {
                    a.handle = h;
                } else {
                    let h = f.alloc_handle();
                    f.bos.insert(h, bo);
                    a.handle = h;
                }
                Ok(())
            }
            _ if (0xBF..=0xCF).contains(&nr) => {
                let kick = || self.kick();
                crate::sync::ioctl::syncobj_ioctl(caller, &self.syncobjs, cmd, arg, &kick)
            }
            _ => Err(Errno::INVAL),
        }
    }

    fn version(&self, caller: &dyn Caller, arg: &mut [u8]) -> Result<(), Errno> {
        let a: &mut drm_version = bytemuck::from_bytes_mut(arg);
        a.version_major = 1;
        a.version_minor = 0;
        a.version_patchlevel = 0;
        for (ptr, len, s) in [
            (a.name, &mut a.name_len, &b"asahi"[..]),
            (a.date, &mut a.date_len, &b"20250601"[..]),
            (a.desc, &mut a.desc_len, &b"Apple AGX GPU (agx-sim)"[..]),
        ] {
            let n = (*len as usize).min(s.len());
            if n > 0 {
                caller.copy_to_user(ptr, &s[..n])?;
            }
            *len = s.len() as u64;
        }
        Ok(())
    }

    /// Runs the GPU: called after anything that may have made work runnable.
    pub(crate) fn kick(&self) {
        self.shared.lock().gpu.run();
    }

    pub(crate) fn bo(&self, handle: u32) -> Result<Arc<Bo>, Errno> {
        let st = self.shared.lock();
        st.files
            .get(&self.id)
            .and_then(|f| f.bos.get(&handle))
            .cloned()
            .ok_or(Errno::NOENT)
    }

    /// Maps `len` bytes of the BO whose fake offset is `offset`, like `mmap(fd, offset)`.
    pub fn mmap(&self, offset: u64, len: usize) -> Result<Mapping, Errno> {
        self.mmap_at(offset, len, None)
    }

    /// [`SimFile::mmap`] anywhere, or with `MAP_FIXED` at `at`.
    pub fn mmap_at(
        &self,
        offset: u64,
        len: usize,
        at: Option<std::ptr::NonNull<u8>>,
    ) -> Result<Mapping, Errno> {
        self.mmap_bo(offset, len as u64)?.map_cpu(0, len, at)
    }

    /// The memory file behind `mmap(fd, offset)` of `len` bytes, checked as [`SimFile::mmap`]
    /// checks it, for a caller in another process to map itself (the device server).
    pub fn mmap_fd(&self, offset: u64, len: u64) -> Result<std::os::fd::OwnedFd, Errno> {
        let bo = self.mmap_bo(offset, len)?;
        rustix::io::fcntl_dupfd_cloexec(bo.memfd(), 3)
    }

    fn mmap_bo(&self, offset: u64, len: u64) -> Result<Arc<Bo>, Errno> {
        let st = self.shared.lock();
        let f = st.files.get(&self.id).ok_or(Errno::NODEV)?;
        let bo = f
            .bos
            .values()
            .find(|b| b.mmap_offset() == offset)
            .ok_or(Errno::INVAL)?;
        if len == 0 || len > bo.size {
            return Err(Errno::INVAL);
        }
        Ok(bo.clone())
    }

    /// The device this file is open on.
    pub fn device(&self) -> SimDevice {
        SimDevice {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        let Some(f) = st.files.remove(&self.id) else {
            return;
        };
        for qid in f.queues.values() {
            st.gpu.destroy_queue(*qid);
        }
        for vm in f.vms.values() {
            st.gpu.destroy_vm(*vm);
        }
        // Including VMs destroyed earlier but kept alive by the file's (now gone) queues.
        let id = self.id;
        st.gpu.vms.retain(|_, v| v.file != id);
        st.gpu.run();
    }
}
