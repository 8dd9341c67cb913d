//! DRM sync objects (`drm_syncobj.c`): a container for one fence, which is a timeline chain
//! once points are added, and the per-file handle table.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use agx_uapi::drm::{
    DRM_SYNCOBJ_CREATE_SIGNALED, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE,
    DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT,
};
use rustix::io::Errno;

use super::fence::{
    chain_find_seqno, chain_walk, lock, notify_all, wait_epoch, wait_for_change, Fence,
};

/// How long `find_fence` with `WAIT_FOR_SUBMIT` waits for a fence to appear
/// (`DRM_SYNCOBJ_WAIT_FOR_SUBMIT_TIMEOUT`).
pub const WAIT_FOR_SUBMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// A waiter for a point to materialize (`struct syncobj_wait_entry` on the syncobj's
/// `cb_list`): filled once, under the syncobj lock, by the first change that makes the point
/// available; later changes do not touch it.
pub(crate) struct WaitSlot {
    point: u64,
    fence: Mutex<Option<Arc<Fence>>>,
}

impl WaitSlot {
    pub(crate) fn fence(&self) -> Option<Arc<Fence>> {
        lock(&self.fence).clone()
    }
}

/// A registered eventfd (`struct syncobj_eventfd_entry`).
struct EventfdEntry {
    point: u64,
    flags: u32,
    fd: OwnedFd,
}

struct Inner {
    fence: Option<Arc<Fence>>,
    waiters: Vec<Weak<WaitSlot>>,
    eventfds: Vec<EventfdEntry>,
}

/// A sync object, binary or timeline (`struct drm_syncobj`).
pub struct Syncobj {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Syncobj {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncobj")
            .field("fence", &self.fence())
            .finish()
    }
}

/// The fence standing for `point` of the syncobj content `cur`, as `drm_syncobj_find_fence`
/// resolves it: `None` if there is no fence or the point is not on the timeline yet; the stub
/// fence if the point has signalled and its link was collected.
fn resolve(cur: Option<&Arc<Fence>>, point: u64) -> Option<Arc<Fence>> {
    match chain_find_seqno(cur?, point) {
        Ok(Some(f)) => Some(f),
        Ok(None) => Some(Fence::global_stub()),
        Err(_) => None,
    }
}

fn signal_eventfd(fd: &OwnedFd) {
    // eventfd_signal(): add 1 to the counter. Errors (a full counter) are ignored.
    let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
}

/// Eventfd entries whose point became available, with the fence to watch; fired once the
/// syncobj lock is dropped.
type ReadyEventfds = Vec<(EventfdEntry, Arc<Fence>)>;

fn fire_eventfds(ready: ReadyEventfds) {
    for (entry, fence) in ready {
        if entry.flags & DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE != 0 {
            signal_eventfd(&entry.fd);
        } else {
            fence.enable_signaling();
            fence.add_callback(Box::new(move || signal_eventfd(&entry.fd)));
        }
    }
}

impl Inner {
    /// `syncobj_wait_syncobj_func` and `syncobj_eventfd_entry_func` for every registered
    /// waiter, after the content changed.
    fn process(&mut self) -> ReadyEventfds {
        let cur = self.fence.clone();
        self.waiters.retain(|w| {
            let Some(slot) = w.upgrade() else {
                return false;
            };
            match resolve(cur.as_ref(), slot.point) {
                Some(f) => {
                    *lock(&slot.fence) = Some(f);
                    false
                }
                None => true,
            }
        });
        let mut ready = Vec::new();
        let mut keep = Vec::new();
        for e in self.eventfds.drain(..) {
            match resolve(cur.as_ref(), e.point) {
                Some(f) => ready.push((e, f)),
                None => keep.push(e),
            }
        }
        self.eventfds = keep;
        ready
    }
}

impl Syncobj {
    /// A new syncobj, empty or holding a signalled stub (`DRM_SYNCOBJ_CREATE_SIGNALED`).
    pub fn new(signaled: bool) -> Arc<Syncobj> {
        let fence = signaled.then(Fence::signaled);
        Arc::new(Syncobj {
            inner: Mutex::new(Inner {
                fence,
                waiters: Vec::new(),
                eventfds: Vec::new(),
            }),
        })
    }

    /// The current fence (`drm_syncobj_fence_get`): for a timeline, the newest chain link.
    pub fn fence(&self) -> Option<Arc<Fence>> {
        lock(&self.inner).fence.clone()
    }

    /// Replaces the fence (`drm_syncobj_replace_fence`); `None` resets the syncobj.
    pub fn replace_fence(&self, fence: Option<Arc<Fence>>) {
        let (old, ready) = {
            let mut g = lock(&self.inner);
            let old = std::mem::replace(&mut g.fence, fence);
            let changed = match (&old, &g.fence) {
                (Some(a), Some(b)) => !Arc::ptr_eq(a, b),
                (None, None) => false,
                _ => true,
            };
            let ready = if changed { g.process() } else { Vec::new() };
            (old, ready)
        };
        notify_all();
        fire_eventfds(ready);
        drop(old);
    }

    /// Adds timeline point `point` signalled by `fence` (`drm_syncobj_add_point`). A point not
    /// later than the current one is accepted; the new link then starts a new context at the
    /// current point, as in Linux.
    pub fn add_point(&self, point: u64, fence: Arc<Fence>) {
        let (link, prev, ready) = {
            let mut g = lock(&self.inner);
            let prev = g.fence.clone();
            let link = Fence::new_chain(prev.clone(), fence, point);
            g.fence = Some(link.clone());
            let ready = g.process();
            (link, prev, ready)
        };
        link.arm_chain();
        notify_all();
        fire_eventfds(ready);
        // Walk the chain once to collect signalled links.
        let mut cur = prev;
        while let Some(f) = cur {
            cur = chain_walk(&f);
        }
    }

    /// The fence for `point` without waiting: `EINVAL` if there is none.
    pub fn lookup(&self, point: u64) -> Result<Arc<Fence>, Errno> {
        resolve(self.fence().as_ref(), point).ok_or(Errno::INVAL)
    }

    /// `drm_syncobj_find_fence` on this syncobj: the fence for `point` (0 = the current fence).
    /// `EINVAL` if there is none, unless `flags` has `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT`:
    /// then it blocks up to 5 s for one to appear (`ETIME` after). Other flag bits: `EINVAL`.
    pub fn find_fence(&self, point: u64, flags: u32) -> Result<Arc<Fence>, Errno> {
        self.find_fence_with_kick(point, flags, &|| {})
    }

    /// [`Syncobj::find_fence`], calling `kick` before every check while it waits.
    pub fn find_fence_with_kick(
        &self,
        point: u64,
        flags: u32,
        kick: &dyn Fn(),
    ) -> Result<Arc<Fence>, Errno> {
        if flags & !DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT != 0 {
            return Err(Errno::INVAL);
        }
        if let Ok(f) = self.lookup(point) {
            return Ok(f);
        }
        if flags & DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT == 0 {
            return Err(Errno::INVAL);
        }
        let slot = self.add_wait(point);
        let deadline = Instant::now() + WAIT_FOR_SUBMIT_TIMEOUT;
        loop {
            kick();
            let epoch = wait_epoch();
            if let Some(f) = slot.fence() {
                return Ok(f);
            }
            if Instant::now() >= deadline {
                return Err(Errno::TIME);
            }
            wait_for_change(epoch, Some(deadline));
        }
    }

    /// Registers a waiter for `point` to materialize (`drm_syncobj_fence_add_wait`).
    pub(crate) fn add_wait(&self, point: u64) -> Arc<WaitSlot> {
        let mut g = lock(&self.inner);
        let found = resolve(g.fence.as_ref(), point);
        let waiting = found.is_none();
        let slot = Arc::new(WaitSlot {
            point,
            fence: Mutex::new(found),
        });
        if waiting {
            g.waiters.retain(|w| w.strong_count() > 0);
            g.waiters.push(Arc::downgrade(&slot));
        }
        slot
    }

    /// Registers an eventfd to be signalled when `point` signals (or, with
    /// `WAIT_AVAILABLE`, materializes). Takes ownership of `fd` (a duplicate of the caller's).
    pub fn add_eventfd(&self, point: u64, flags: u32, fd: OwnedFd) {
        let ready = {
            let mut g = lock(&self.inner);
            g.eventfds.push(EventfdEntry { point, flags, fd });
            g.process()
        };
        fire_eventfds(ready);
    }

    /// `DRM_IOCTL_SYNCOBJ_QUERY` for one syncobj: the last signalled point of the timeline
    /// (or, with `last_submitted`, the newest point); 0 for a binary syncobj or an empty one.
    pub fn query(&self, last_submitted: bool) -> u64 {
        let Some(head) = self.fence() else { return 0 };
        if !head.is_chain() {
            return 0;
        }
        if last_submitted {
            return head.seqno();
        }
        // The deepest link of the head's context whose own fence is pending (signalled
        // links are skipped by the walk); a different context means unordered points.
        let mut last = head.clone();
        let mut cur = chain_walk(&head);
        while let Some(f) = cur {
            if f.context() != head.context() {
                break;
            }
            cur = chain_walk(&f);
            last = f;
        }
        if last.is_signaled() {
            last.seqno()
        } else {
            last.chain_prev_seqno()
        }
    }
}

/// The syncobjs of one open file, by handle (`drm_file.syncobj_idr`).
#[derive(Debug, Default)]
pub struct SyncobjTable {
    objs: BTreeMap<u32, Arc<Syncobj>>,
}

impl SyncobjTable {
    /// `DRM_IOCTL_SYNCOBJ_CREATE`: a new syncobj and its handle. `EINVAL` for unknown flags.
    pub fn create(&mut self, flags: u32) -> Result<u32, Errno> {
        if flags & !DRM_SYNCOBJ_CREATE_SIGNALED != 0 {
            return Err(Errno::INVAL);
        }
        Ok(self.insert(Syncobj::new(flags & DRM_SYNCOBJ_CREATE_SIGNALED != 0)))
    }

    /// The syncobj behind `handle`; `ENOENT` for an unknown handle (and for 0).
    pub fn get(&self, handle: u32) -> Result<Arc<Syncobj>, Errno> {
        self.objs.get(&handle).cloned().ok_or(Errno::NOENT)
    }

    /// `DRM_IOCTL_SYNCOBJ_DESTROY`: drops the handle. Linux answers `EINVAL` (not `ENOENT`)
    /// for an unknown handle here.
    pub fn destroy(&mut self, handle: u32) -> Result<(), Errno> {
        self.objs.remove(&handle).map(|_| ()).ok_or(Errno::INVAL)
    }

    /// A new handle for `obj`: the lowest free one, from 1 (`idr_alloc(.., 1, 0, ..)`).
    pub fn insert(&mut self, obj: Arc<Syncobj>) -> u32 {
        let mut handle = 1u32;
        for &k in self.objs.keys() {
            if k != handle {
                break;
            }
            handle += 1;
        }
        self.objs.insert(handle, obj);
        handle
    }

    /// Number of live handles.
    pub fn len(&self) -> usize {
        self.objs.len()
    }

    /// Whether the table holds no handle.
    pub fn is_empty(&self) -> bool {
        self.objs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_start_at_one_and_reuse_lowest() {
        let mut t = SyncobjTable::default();
        assert_eq!(t.create(0), Ok(1));
        assert_eq!(t.create(DRM_SYNCOBJ_CREATE_SIGNALED), Ok(2));
        assert_eq!(t.create(2), Err(Errno::INVAL));
        assert_eq!(t.get(0).unwrap_err(), Errno::NOENT);
        assert_eq!(t.get(3).unwrap_err(), Errno::NOENT);
        assert!(t.get(2).unwrap().fence().unwrap().is_signaled());
        assert!(t.get(1).unwrap().fence().is_none());
        t.destroy(1).unwrap();
        assert_eq!(t.destroy(1), Err(Errno::INVAL));
        assert_eq!(t.create(0), Ok(1));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn timeline_find_and_query() {
        let s = Syncobj::new(false);
        assert_eq!(s.lookup(0).unwrap_err(), Errno::INVAL);
        assert_eq!(s.query(false), 0);
        let f1 = Fence::new();
        let f2 = Fence::new();
        s.add_point(1, f1.clone());
        s.add_point(2, f2.clone());
        assert_eq!(s.query(false), 0);
        assert_eq!(s.query(true), 2);
        assert_eq!(s.lookup(3).unwrap_err(), Errno::INVAL);
        let p1 = s.lookup(1).unwrap();
        let p2 = s.lookup(2).unwrap();
        f2.signal(0);
        // Point 2 waits for point 1 too.
        assert!(!p2.is_signaled());
        assert_eq!(s.query(false), 0);
        f1.signal(0);
        assert!(p1.is_signaled() && p2.is_signaled());
        assert_eq!(s.query(false), 2);
        // Signalled points resolve to the stub once their links are collected.
        assert!(s.lookup(1).unwrap().is_signaled());
        // A lower point changes nothing visible.
        s.add_point(1, Fence::signaled());
        assert_eq!(s.query(false), 2);
        assert_eq!(s.query(true), 2);
        // Reset.
        s.replace_fence(None);
        assert_eq!(s.query(false), 0);
    }

    #[test]
    fn unordered_point_hides_query_while_pending() {
        // The Linux quirk behind drm_syncobj_add_point's "unorder point" warning.
        let s = Syncobj::new(false);
        s.add_point(4, Fence::signaled());
        let f5 = Fence::new();
        s.add_point(5, f5.clone());
        assert_eq!(s.query(false), 4);
        s.add_point(3, Fence::signaled());
        assert_eq!(s.query(false), 0);
        f5.signal(0);
        assert_eq!(s.query(false), 5);
    }

    #[test]
    fn find_fence_wait_for_submit() {
        let s = Syncobj::new(false);
        assert_eq!(s.find_fence(0, 0).unwrap_err(), Errno::INVAL);
        assert_eq!(
            s.find_fence(0, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE)
                .unwrap_err(),
            Errno::INVAL
        );
        let s2 = s.clone();
        let f = Fence::new();
        let f2 = f.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            s2.add_point(7, f2);
        });
        let got = s
            .find_fence(7, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT)
            .unwrap();
        t.join().unwrap();
        assert!(got.is_chain());
        assert_eq!(got.seqno(), 7);
    }
}
