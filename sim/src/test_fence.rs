//! Test hook: userspace plays the GPU. It attaches unsignalled fences to sync objects and
//! signals them later, with or without an error, like the `agx_synctest` kernel module of
//! `tests/kernel-diff/` does on a real kernel (its `ATTACH_FENCE`, `SIGNAL_FENCE` and
//! `TIMEOUT_FENCE` ioctls). The real-kernel differential test drives both with the same
//! sequence, so these methods keep the module's semantics and errnos:
//!
//! - [`SimFile::test_attach_fence`]: a new unsignalled fence, with a context of its own,
//!   replaces the syncobj's fence (`point == 0`) or is added as timeline point `point`.
//!   Returns a fence id (> 0), per file, allocated cyclically from 1. `ENOENT` for an unknown
//!   handle.
//! - [`SimFile::test_signal_fence`]: signals the fence with `error` (0, or a negative errno
//!   not below -4095) and drops the id. `EINVAL` for an unknown id (including one the timeout
//!   already signalled, or one of another file) and for a bad `error`.
//! - [`SimFile::test_timeout_fence`]: after `delay_ms` the fence is signalled with
//!   `-ETIMEDOUT` unless someone signalled it first, and its id is dropped. `EINVAL` for an
//!   unknown id, `EBUSY` when a timer is already armed.
//! - [`SimFile::test_close_fences`]: what the module's `postclose` does. Every fence the file
//!   still owns is signalled with `-ECANCELED` and its timer is disarmed. The simulator can't
//!   run code when a [`SimFile`] is dropped without a hook in `device.rs`, so the owner of the
//!   file calls this just before dropping it. The fences of files that were dropped without
//!   it are cancelled the next time any test hook runs.
//!
//! Exactly one party claims a fence (removes it from the table) and signals it: the signal
//! call, the timer or the close.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rustix::io::Errno;

use crate::device::{Shared, SimFile};
use crate::sync::fence::{context_alloc, lock, Fence};

/// Driver and timeline names of the fences, as the kernel module reports them.
const DRIVER: &str = "agx_synctest";
const TIMELINE: &str = "synctest";

/// `MAX_ERRNO`: the most negative valid fence error is `-MAX_ERRNO`.
const MAX_ERRNO: i32 = 4095;

struct Owned {
    fence: Arc<Fence>,
    timer_armed: bool,
}

/// The fences one file owns (the module's per-file xarray).
struct FileFences {
    device: Weak<Shared>,
    file_id: u64,
    /// The next id to try (`xa_alloc_cyclic`'s `next`).
    next_id: u32,
    fences: BTreeMap<u32, Owned>,
}

impl FileFences {
    /// Whether the file is still open.
    fn alive(&self) -> bool {
        self.device
            .upgrade()
            .is_some_and(|d| d.lock().files.contains_key(&self.file_id))
    }

    /// `xa_alloc_cyclic(.., XA_LIMIT(1, U32_MAX), &next)`.
    fn alloc_id(&mut self) -> Result<u32, Errno> {
        let start = self.next_id.max(1);
        let mut id = start;
        loop {
            if !self.fences.contains_key(&id) {
                self.next_id = id.wrapping_add(1);
                return Ok(id);
            }
            id = id.checked_add(1).unwrap_or(1);
            if id == start {
                return Err(Errno::BUSY);
            }
        }
    }
}

/// Files by (device address, file id).
type Key = (usize, u64);

static FILES: Mutex<BTreeMap<Key, FileFences>> = Mutex::new(BTreeMap::new());

fn signal_all(fences: impl IntoIterator<Item = Owned>, error: i32) {
    for o in fences {
        o.fence.signal(error);
    }
}

/// Cancels the fences of files dropped without [`SimFile::test_close_fences`]. Called with
/// the registry locked; returns the fences to signal once it is unlocked.
fn take_dead(files: &mut BTreeMap<Key, FileFences>) -> Vec<Owned> {
    let dead: Vec<Key> = files
        .iter()
        .filter(|(_, f)| !f.alive())
        .map(|(k, _)| *k)
        .collect();
    dead.into_iter()
        .filter_map(|k| files.remove(&k))
        .flat_map(|f| f.fences.into_values())
        .collect()
}

fn canceled() -> i32 {
    -Errno::CANCELED.raw_os_error()
}

impl SimFile {
    fn test_key(&self) -> Key {
        (Arc::as_ptr(&self.shared) as usize, self.id)
    }

    /// Runs `f` on this file's fence table (created on first use).
    fn with_test_fences<R>(&self, f: impl FnOnce(&mut FileFences) -> R) -> R {
        let (r, dead) = {
            let mut files = lock(&FILES);
            let dead = take_dead(&mut files);
            let entry = files.entry(self.test_key()).or_insert_with(|| FileFences {
                device: Arc::downgrade(&self.shared),
                file_id: self.id,
                next_id: 1,
                fences: BTreeMap::new(),
            });
            (f(entry), dead)
        };
        signal_all(dead, canceled());
        r
    }

    /// Attaches a new unsignalled fence to syncobj `handle`: replaces its fence when `point`
    /// is 0, else adds timeline point `point`. Returns the fence id (> 0).
    pub fn test_attach_fence(&self, handle: u32, point: u64) -> Result<u64, Errno> {
        let obj = lock(&self.syncobjs).get(handle)?;
        let fence = Fence::with_context(context_alloc(), 1, DRIVER, TIMELINE);
        let id = self.with_test_fences(|t| {
            let id = t.alloc_id()?;
            t.fences.insert(
                id,
                Owned {
                    fence: fence.clone(),
                    timer_armed: false,
                },
            );
            Ok::<_, Errno>(id)
        })?;
        if point != 0 {
            obj.add_point(point, fence);
        } else {
            obj.replace_fence(Some(fence));
        }
        Ok(u64::from(id))
    }

    /// Signals fence `id` with `error` (0 or a negative errno) and drops the id.
    pub fn test_signal_fence(&self, id: u64, error: i32) -> Result<(), Errno> {
        if !(-MAX_ERRNO..=0).contains(&error) {
            return Err(Errno::INVAL);
        }
        let id = u32::try_from(id)
            .ok()
            .filter(|&i| i != 0)
            .ok_or(Errno::INVAL)?;
        let owned = self
            .with_test_fences(|t| t.fences.remove(&id))
            .ok_or(Errno::INVAL)?;
        owned.fence.signal(error);
        Ok(())
    }

    /// Arms a timer: after `delay_ms` the fence is signalled with `-ETIMEDOUT` unless it was
    /// signalled first.
    pub fn test_timeout_fence(&self, id: u64, delay_ms: u32) -> Result<(), Errno> {
        let id = u32::try_from(id)
            .ok()
            .filter(|&i| i != 0)
            .ok_or(Errno::INVAL)?;
        let fence = self.with_test_fences(|t| {
            let o = t.fences.get_mut(&id).ok_or(Errno::INVAL)?;
            if o.timer_armed {
                return Err(Errno::BUSY);
            }
            o.timer_armed = true;
            Ok(o.fence.clone())
        })?;
        let key = self.test_key();
        std::thread::Builder::new()
            .name("agx-sim-test-fence-timeout".into())
            .spawn(move || {
                std::thread::sleep(Duration::from_millis(u64::from(delay_ms)));
                // Claim the fence unless its signal call or the close did.
                let claimed = {
                    let mut files = lock(&FILES);
                    match files.get_mut(&key) {
                        Some(t)
                            if t.fences
                                .get(&id)
                                .is_some_and(|o| Arc::ptr_eq(&o.fence, &fence)) =>
                        {
                            t.fences.remove(&id)
                        }
                        _ => None,
                    }
                };
                if let Some(o) = claimed {
                    o.fence.signal(-Errno::TIMEDOUT.raw_os_error());
                }
            })
            .map_err(|_| Errno::NOMEM)?;
        Ok(())
    }

    /// The module's `postclose`: signals every fence this file still owns with `-ECANCELED`
    /// and disarms their timers. Call it just before dropping the file.
    pub fn test_close_fences(&self) {
        let (mine, dead) = {
            let mut files = lock(&FILES);
            let mine = files.remove(&self.test_key());
            (mine, take_dead(&mut files))
        };
        let mine = mine.into_iter().flat_map(|f| f.fences.into_values());
        signal_all(mine.chain(dead), canceled());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SimConfig, SimDevice};

    #[test]
    fn attach_signal_timeout_close() {
        let dev = SimDevice::new(SimConfig::default());
        let a = dev.open();
        let b = dev.open();
        let h = lock(&a.syncobjs).create(0).unwrap();
        let obj = lock(&a.syncobjs).get(h).unwrap();
        assert_eq!(a.test_attach_fence(99, 0), Err(Errno::NOENT));
        let id1 = a.test_attach_fence(h, 0).unwrap();
        assert_eq!(id1, 1);
        let f1 = obj.fence().unwrap();
        assert_eq!(f1.status(), 0);
        // Ids are per file.
        assert_eq!(b.test_signal_fence(id1, 0), Err(Errno::INVAL));
        assert_eq!(a.test_signal_fence(id1, 1), Err(Errno::INVAL));
        assert_eq!(a.test_signal_fence(id1, -4096), Err(Errno::INVAL));
        a.test_signal_fence(id1, -5).unwrap();
        assert_eq!(f1.status(), -5);
        assert_eq!(a.test_signal_fence(id1, 0), Err(Errno::INVAL));
        // Cyclic: the id is not reused at once.
        let id2 = a.test_attach_fence(h, 3).unwrap();
        assert_eq!(id2, 2);
        a.test_timeout_fence(id2, 10).unwrap();
        assert_eq!(a.test_timeout_fence(id2, 10), Err(Errno::BUSY));
        let link = obj.fence().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !link.is_signaled() {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(crate::sync::fence::unwrap(&link)[0].status(), -110);
        assert_eq!(a.test_signal_fence(id2, 0), Err(Errno::INVAL));
        // Close cancels, also with a timer armed.
        let id3 = a.test_attach_fence(h, 0).unwrap();
        a.test_timeout_fence(id3, 60_000).unwrap();
        let f3 = obj.fence().unwrap();
        a.test_close_fences();
        drop(a);
        assert_eq!(f3.status(), -125);
        // A file dropped without the close call is cancelled by the next hook call.
        let c = dev.open();
        let hc = lock(&c.syncobjs).create(0).unwrap();
        c.test_attach_fence(hc, 0).unwrap();
        let fc = lock(&c.syncobjs).get(hc).unwrap().fence().unwrap();
        drop(c);
        assert_eq!(b.test_signal_fence(1, 0), Err(Errno::INVAL));
        assert_eq!(fc.status(), -125);
    }
}
