//! Fences (`dma_fence`), their containers (`dma_fence_chain`, `dma_fence_array`) and the
//! process-global wait queue every blocking wait of the simulator sleeps on.
//!
//! A fence signals once, optionally with a negative errno set first (`dma_fence_set_error`).
//! Containers are fences too: a chain link (one timeline point) signals when its own fence and
//! every earlier link have signalled, never with an error (Linux does not propagate errors
//! through chains); an array (a merged sync_file) signals when all its fences have, with the
//! first error seen. Containers signal eagerly from callbacks on their parts, so
//! [`Fence::is_signaled`] is always current when the last part's [`Fence::signal`] returns.
//!
//! Callbacks never recurse: a callback that signals another fence queues that fence's callbacks
//! on the same thread, so long chains cannot overflow the stack.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Instant;

use rustix::io::Errno;

/// Driver name reported for fences made by [`Fence::new`].
pub const DRIVER_NAME: &str = "agx-sim";

/// Locks a mutex, ignoring poisoning (a panicking test thread must not wedge the others).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `CLOCK_MONOTONIC` now, in nanoseconds (what `ktime_get()` returns).
pub fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

static NEXT_CONTEXT: AtomicU64 = AtomicU64::new(1);

/// A fresh fence context (`dma_fence_context_alloc(1)`).
pub fn context_alloc() -> u64 {
    NEXT_CONTEXT.fetch_add(1, Ordering::Relaxed)
}

// ---- the global wait queue ----------------------------------------------------------------

struct Epoch {
    value: Mutex<u64>,
    cv: Condvar,
}

static EPOCH: Epoch = Epoch {
    value: Mutex::new(0),
    cv: Condvar::new(),
};

/// The current global epoch. Read it, check your condition, then [`wait_for_change`].
pub fn wait_epoch() -> u64 {
    *lock(&EPOCH.value)
}

/// Bumps the global epoch and wakes every waiter.
pub fn notify_all() {
    let mut e = lock(&EPOCH.value);
    *e = e.wrapping_add(1);
    EPOCH.cv.notify_all();
}

/// Blocks until the global epoch differs from `epoch` (true) or `deadline` passes (false).
/// `None` waits for ever.
pub fn wait_for_change(epoch: u64, deadline: Option<Instant>) -> bool {
    let mut e = lock(&EPOCH.value);
    loop {
        if *e != epoch {
            return true;
        }
        match deadline {
            None => e = EPOCH.cv.wait(e).unwrap_or_else(|p| p.into_inner()),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return false;
                }
                e = EPOCH
                    .cv
                    .wait_timeout(e, d - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
    }
}

// ---- callbacks ----------------------------------------------------------------------------

type Callback = Box<dyn FnOnce() + Send>;

thread_local! {
    /// Callbacks waiting to run on this thread; `Some` while a dispatch loop is active.
    static DISPATCH: RefCell<Option<VecDeque<Callback>>> = const { RefCell::new(None) };
}

/// Resets the dispatch state even if a callback panics.
struct DispatchGuard;

impl Drop for DispatchGuard {
    fn drop(&mut self) {
        DISPATCH.with(|d| *d.borrow_mut() = None);
    }
}

/// Runs `cbs` now, or queues them behind the dispatch loop already running on this thread.
fn run_callbacks(cbs: Vec<Callback>) {
    if cbs.is_empty() {
        return;
    }
    let mut cbs = Some(cbs);
    let nested = DISPATCH.with(|d| {
        let mut d = d.borrow_mut();
        match d.as_mut() {
            Some(q) => {
                q.extend(cbs.take().into_iter().flatten());
                true
            }
            None => {
                *d = Some(cbs.take().into_iter().flatten().collect());
                false
            }
        }
    });
    if nested {
        return;
    }
    let _guard = DispatchGuard;
    while let Some(cb) = DISPATCH.with(|d| d.borrow_mut().as_mut().and_then(|q| q.pop_front())) {
        cb();
    }
}

// ---- fences -------------------------------------------------------------------------------

struct State {
    signaled: bool,
    error: i32,
    timestamp_ns: Option<u64>,
    callbacks: Vec<Callback>,
}

/// One link of a timeline (`struct dma_fence_chain`).
pub(crate) struct ChainLink {
    /// The previous link (or the binary fence the timeline started from); garbage-collected
    /// to skip links whose own fence has signalled, as `dma_fence_chain_walk` does.
    prev: Mutex<Option<Arc<Fence>>>,
    /// The fence of this point.
    fence: Arc<Fence>,
    /// The previous link's point when it was in the same context, else 0.
    prev_seqno: u64,
}

/// A `dma_fence_array` that signals when all its fences have.
pub(crate) struct ArrayData {
    fences: Vec<Arc<Fence>>,
    /// (fences not yet signalled, first error seen, signalling enabled).
    pending: Mutex<(usize, i32, bool)>,
}

enum Kind {
    Plain {
        driver: &'static str,
        timeline: String,
    },
    Stub,
    Array(ArrayData),
    Chain(ChainLink),
}

/// A `dma_fence`, shared as `Arc<Fence>`.
pub struct Fence {
    context: u64,
    seqno: u64,
    kind: Kind,
    state: Mutex<State>,
}

impl fmt::Debug for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Plain { .. } => "plain",
            Kind::Stub => "stub",
            Kind::Array(_) => "array",
            Kind::Chain(_) => "chain",
        };
        f.debug_struct("Fence")
            .field("kind", &kind)
            .field("context", &self.context)
            .field("seqno", &self.seqno)
            .field("status", &self.status())
            .finish()
    }
}

fn pending_state() -> Mutex<State> {
    Mutex::new(State {
        signaled: false,
        error: 0,
        timestamp_ns: None,
        callbacks: Vec::new(),
    })
}

fn signaled_state(timestamp_ns: u64) -> Mutex<State> {
    Mutex::new(State {
        signaled: true,
        error: 0,
        timestamp_ns: Some(timestamp_ns),
        callbacks: Vec::new(),
    })
}

impl Fence {
    /// A new unsignalled fence with its own context, driver and timeline name `agx-sim`.
    pub fn new() -> Arc<Fence> {
        Self::with_context(context_alloc(), 0, DRIVER_NAME, DRIVER_NAME)
    }

    /// A new unsignalled fence on an existing `context` (e.g. one per queue) with `seqno`.
    /// Merging keeps only the latest fence of each context, as Linux does.
    pub fn with_context(
        context: u64,
        seqno: u64,
        driver: &'static str,
        timeline: &str,
    ) -> Arc<Fence> {
        Arc::new(Fence {
            context,
            seqno,
            kind: Kind::Plain {
                driver,
                timeline: timeline.to_owned(),
            },
            state: pending_state(),
        })
    }

    /// A signalled stub fence with the current time (`dma_fence_allocate_private_stub`).
    pub fn signaled() -> Arc<Fence> {
        Self::stub_at(monotonic_ns())
    }

    /// A signalled stub fence with the given timestamp.
    pub(crate) fn stub_at(timestamp_ns: u64) -> Arc<Fence> {
        Arc::new(Fence {
            context: context_alloc(),
            seqno: 0,
            kind: Kind::Stub,
            state: signaled_state(timestamp_ns),
        })
    }

    /// The process-wide signalled stub (`dma_fence_get_stub`).
    pub(crate) fn global_stub() -> Arc<Fence> {
        static STUB: OnceLock<Arc<Fence>> = OnceLock::new();
        STUB.get_or_init(Fence::signaled).clone()
    }

    /// Signals the fence, with `error` (0 or a negative errno) set first. A second call is a
    /// no-op. Callbacks run after the fence's lock is released.
    pub fn signal(&self, error: i32) {
        debug_assert!(error <= 0, "fence errors are negative errnos");
        let cbs = {
            let mut st = lock(&self.state);
            if st.signaled {
                return;
            }
            st.signaled = true;
            st.error = error.min(0);
            st.timestamp_ns = Some(monotonic_ns());
            std::mem::take(&mut st.callbacks)
        };
        notify_all();
        run_callbacks(cbs);
    }

    /// `dma_fence_get_status`: 0 pending, 1 signalled, < 0 signalled with that error.
    pub fn status(&self) -> i32 {
        let st = lock(&self.state);
        match (st.signaled, st.error) {
            (false, _) => 0,
            (true, 0) => 1,
            (true, e) => e,
        }
    }

    /// Whether the fence has signalled (with or without an error).
    pub fn is_signaled(&self) -> bool {
        lock(&self.state).signaled
    }

    /// `CLOCK_MONOTONIC` nanoseconds at which the fence signalled.
    pub fn timestamp_ns(&self) -> Option<u64> {
        lock(&self.state).timestamp_ns
    }

    /// Runs `f` when the fence signals (at once if it already has).
    pub fn add_callback(&self, f: Box<dyn FnOnce() + Send>) {
        {
            let mut st = lock(&self.state);
            if !st.signaled {
                st.callbacks.push(f);
                return;
            }
        }
        run_callbacks(vec![f]);
    }

    /// The fence context.
    pub fn context(&self) -> u64 {
        self.context
    }

    /// The sequence number (the point, for a chain link).
    pub fn seqno(&self) -> u64 {
        self.seqno
    }

    /// Whether this is a timeline link (`to_dma_fence_chain() != NULL`).
    pub fn is_chain(&self) -> bool {
        matches!(self.kind, Kind::Chain(_))
    }

    fn chain(&self) -> Option<&ChainLink> {
        match &self.kind {
            Kind::Chain(c) => Some(c),
            _ => None,
        }
    }

    /// `prev_seqno` of a chain link (0 for other fences).
    pub(crate) fn chain_prev_seqno(&self) -> u64 {
        self.chain().map_or(0, |c| c.prev_seqno)
    }

    /// `dma_fence_driver_name`: upstream reports placeholders once the fence has signalled.
    pub fn driver_name(&self) -> &str {
        if self.is_signaled() {
            return "detached-driver";
        }
        match &self.kind {
            Kind::Plain { driver, .. } => driver,
            Kind::Stub => "stub",
            Kind::Array(_) => "dma_fence_array",
            Kind::Chain(_) => "dma_fence_chain",
        }
    }

    /// `dma_fence_timeline_name`, with the same placeholder rule.
    pub fn timeline_name(&self) -> &str {
        if self.is_signaled() {
            return "signaled-timeline";
        }
        match &self.kind {
            Kind::Plain { timeline, .. } => timeline,
            Kind::Stub => "stub",
            Kind::Array(_) | Kind::Chain(_) => "unbound",
        }
    }

    /// A new timeline link for `point` holding `fence` on top of `prev`
    /// (`dma_fence_chain_init`): it keeps the previous link's context only when `point` is
    /// later than the previous point; otherwise it starts a new context at
    /// `max(prev point, point)`. Call [`Fence::arm_chain`] once it is published.
    pub(crate) fn new_chain(prev: Option<Arc<Fence>>, fence: Arc<Fence>, point: u64) -> Arc<Fence> {
        let (context, prev_seqno, seqno) = match &prev {
            Some(p) if p.is_chain() && point > p.seqno => (p.context, p.seqno, point),
            Some(p) if p.is_chain() => (context_alloc(), 0, p.seqno.max(point)),
            _ => (context_alloc(), 0, point),
        };
        Arc::new(Fence {
            context,
            seqno,
            kind: Kind::Chain(ChainLink {
                prev: Mutex::new(prev),
                fence,
                prev_seqno,
            }),
            state: pending_state(),
        })
    }

    /// Makes a chain link signal when its fence and its predecessor have. Separate from
    /// construction so that it can run outside the syncobj lock.
    pub(crate) fn arm_chain(self: &Arc<Fence>) {
        let Some(c) = self.chain() else { return };
        let prev = lock(&c.prev).clone();
        let parts = std::iter::once(c.fence.clone()).chain(prev);
        for part in parts {
            let weak = Arc::downgrade(self);
            part.add_callback(Box::new(move || {
                if let Some(link) = weak.upgrade() {
                    link.chain_try_complete();
                }
            }));
        }
    }

    fn chain_try_complete(&self) {
        let Some(c) = self.chain() else { return };
        let prev_done = lock(&c.prev).as_ref().is_none_or(|p| p.is_signaled());
        if prev_done && c.fence.is_signaled() {
            // dma_fence_chain never carries an error of its own.
            self.signal(0);
        }
    }

    /// `dma_fence_enable_sw_signaling`, as a wait, a poll or an eventfd does it on a pending
    /// fence. It matters only for arrays: an array carries its fences' first error only if
    /// signalling was enabled before its last fence signalled. For a chain, the arrays it
    /// contains are enabled (a chain's `enable_signaling` enables its contained fences).
    pub(crate) fn enable_signaling(self: &Arc<Fence>) {
        let mut cur = Some(self.clone());
        while let Some(f) = cur {
            let contained = f.chain().map_or_else(|| f.clone(), |c| c.fence.clone());
            if let Kind::Array(a) = &contained.kind {
                if !contained.is_signaled() {
                    lock(&a.pending).2 = true;
                }
            }
            cur = chain_walk(&f);
        }
    }

    /// A `dma_fence_array` of `fences` that signals when all have, with the first error seen
    /// (if its signalling was enabled in time, see [`Fence::enable_signaling`]).
    pub(crate) fn new_array(fences: Vec<Arc<Fence>>, context: u64, seqno: u64) -> Arc<Fence> {
        let n = fences.len();
        let array = Arc::new(Fence {
            context,
            seqno,
            kind: Kind::Array(ArrayData {
                fences,
                pending: Mutex::new((n, 0, false)),
            }),
            state: pending_state(),
        });
        let Kind::Array(data) = &array.kind else {
            unreachable!()
        };
        if n == 0 {
            array.signal(0);
        }
        for part in &data.fences {
            let weak: Weak<Fence> = Arc::downgrade(&array);
            let part_weak = Arc::downgrade(part);
            part.add_callback(Box::new(move || {
                let (Some(array), Some(part)) = (weak.upgrade(), part_weak.upgrade()) else {
                    return;
                };
                let Kind::Array(data) = &array.kind else {
                    return;
                };
                let done = {
                    let mut p = lock(&data.pending);
                    let err = part.status().min(0);
                    if p.1 == 0 && err < 0 {
                        p.1 = err;
                    }
                    p.0 -= 1;
                    // Linux propagates the error only through the callbacks that
                    // `enable_signaling` installs. Without them, the first status check
                    // (`dma_fence_array_signaled`) clears the pending error: signalled, no error.
                    (p.0 == 0).then_some(if p.2 { p.1 } else { 0 })
                };
                if let Some(err) = done {
                    array.signal(err);
                }
            }));
        }
        array
    }
}

impl Drop for Fence {
    /// Unlinks long chains iteratively so dropping a deep timeline cannot overflow the stack.
    fn drop(&mut self) {
        let Kind::Chain(c) = &mut self.kind else {
            return;
        };
        let mut next = c.prev.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        while let Some(p) = next {
            match Arc::try_unwrap(p) {
                Ok(mut f) => {
                    next = match &mut f.kind {
                        Kind::Chain(pc) => {
                            pc.prev.get_mut().unwrap_or_else(|e| e.into_inner()).take()
                        }
                        _ => None,
                    };
                }
                Err(_) => break,
            }
        }
    }
}

// ---- chain walking (dma-fence-chain.c, dma-fence-unwrap.c) ---------------------------------

/// `dma_fence_chain_walk`: the next link after `f` whose own fence is still pending (or the
/// pending non-chain fence below the timeline), skipping and unlinking signalled ones.
/// `None` at the end of the chain or when `f` is not a chain link.
pub(crate) fn chain_walk(f: &Arc<Fence>) -> Option<Arc<Fence>> {
    let c = f.chain()?;
    let mut slot = lock(&c.prev);
    loop {
        let prev = slot.clone()?;
        let replacement = match prev.chain() {
            Some(pc) => {
                if !pc.fence.is_signaled() {
                    return Some(prev);
                }
                lock(&pc.prev).clone()
            }
            None => {
                if !prev.is_signaled() {
                    return Some(prev);
                }
                None
            }
        };
        *slot = replacement;
    }
}

/// `dma_fence_chain_find_seqno`: the link that signals `point`. `Ok(None)` means the point
/// has signalled and nothing is left to wait for (Linux substitutes the stub fence);
/// `EINVAL` means the point is not (yet) on the timeline. Point 0 is `head` itself.
pub(crate) fn chain_find_seqno(head: &Arc<Fence>, point: u64) -> Result<Option<Arc<Fence>>, Errno> {
    if point == 0 {
        return Ok(Some(head.clone()));
    }
    if !head.is_chain() || head.seqno < point {
        return Err(Errno::INVAL);
    }
    let mut cur = Some(head.clone());
    while let Some(f) = cur {
        let stop = f.context != head.context || f.chain().is_none_or(|c| c.prev_seqno < point);
        if stop {
            return Ok(Some(f));
        }
        cur = chain_walk(&f);
    }
    Ok(None)
}

/// `dma_fence_unwrap_for_each`: the leaf fences of chain links and arrays, walking the chain
/// from `f` (signalled links below the first are skipped, as in Linux).
pub fn unwrap(f: &Arc<Fence>) -> Vec<Arc<Fence>> {
    let mut out = Vec::new();
    let mut cur = Some(f.clone());
    while let Some(link) = cur {
        let contained = link
            .chain()
            .map_or_else(|| link.clone(), |c| c.fence.clone());
        match &contained.kind {
            Kind::Array(a) => {
                if a.fences.is_empty() {
                    break;
                }
                out.extend(a.fences.iter().cloned());
            }
            _ => out.push(contained),
        }
        cur = chain_walk(&link);
    }
    out
}

/// `dma_fence_unwrap_merge` (upstream): the still-pending leaves of all `fences`, sorted by
/// context with only the latest fence of each context kept; one fence is returned as is,
/// several as a new array, none as a signalled stub carrying the latest timestamp. Fences that
/// already signalled, with or without an error, are dropped.
pub fn unwrap_merge(fences: &[Arc<Fence>]) -> Arc<Fence> {
    let mut pending = Vec::new();
    let mut timestamp = 0;
    for f in fences {
        for leaf in unwrap(f) {
            if leaf.is_signaled() {
                timestamp = timestamp.max(leaf.timestamp_ns().unwrap_or(0));
            } else {
                pending.push(leaf);
            }
        }
    }
    match pending.len() {
        0 => return Fence::stub_at(timestamp),
        1 => return pending.pop().expect("one fence"),
        _ => {}
    }
    // fence_cmp: context ascending, later seqno first; then keep the first of each context.
    pending.sort_by(|a, b| a.context.cmp(&b.context).then(b.seqno.cmp(&a.seqno)));
    pending.dedup_by(|later, earlier| later.context == earlier.context);
    if pending.len() == 1 {
        return pending.pop().expect("one fence");
    }
    Fence::new_array(pending, context_alloc(), 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn signal_status_and_callbacks() {
        let f = Fence::new();
        assert_eq!(f.status(), 0);
        assert!(f.timestamp_ns().is_none());
        let hit = Arc::new(AtomicU64::new(0));
        let h = hit.clone();
        f.add_callback(Box::new(move || {
            h.fetch_add(1, Ordering::SeqCst);
        }));
        assert_eq!(hit.load(Ordering::SeqCst), 0);
        f.signal(-5);
        assert_eq!(hit.load(Ordering::SeqCst), 1);
        assert_eq!(f.status(), -5);
        assert!(f.timestamp_ns().is_some());
        // A second signal changes nothing.
        f.signal(0);
        assert_eq!(f.status(), -5);
        // A callback on a signalled fence runs at once.
        let h = hit.clone();
        f.add_callback(Box::new(move || {
            h.fetch_add(1, Ordering::SeqCst);
        }));
        assert_eq!(hit.load(Ordering::SeqCst), 2);
        assert_eq!(Fence::signaled().status(), 1);
        assert_eq!(f.driver_name(), "detached-driver");
        assert_eq!(Fence::new().driver_name(), DRIVER_NAME);
    }

    #[test]
    fn wait_queue_wakes_and_times_out() {
        // A deadline that has passed returns at once (true only if another test moved it).
        let start = Instant::now();
        wait_for_change(wait_epoch(), Some(start));
        assert!(start.elapsed() < Duration::from_secs(5));
        let f = Fence::new();
        let f2 = f.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            f2.signal(0);
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let e = wait_epoch();
            if f.is_signaled() {
                break;
            }
            assert!(wait_for_change(e, Some(deadline)), "timed out");
        }
        t.join().unwrap();
    }

    #[test]
    fn deep_chain_signals_without_recursion() {
        let bottom = Fence::new();
        let mut head = bottom.clone();
        let mut links = Vec::new();
        for p in 1..=200_000u64 {
            let link = Fence::new_chain(Some(head), Fence::signaled(), p);
            link.arm_chain();
            head = link.clone();
            if p % 50_000 == 0 {
                links.push(link);
            }
        }
        assert!(!head.is_signaled());
        bottom.signal(0);
        assert!(head.is_signaled());
        assert!(links.iter().all(|l| l.is_signaled()));
        drop(links);
        drop(head);
    }

    #[test]
    fn chain_context_rules() {
        let a = Fence::new();
        let l1 = Fence::new_chain(None, a.clone(), 1);
        let l3 = Fence::new_chain(Some(l1.clone()), Fence::new(), 3);
        assert_eq!(l3.context(), l1.context());
        assert_eq!(l3.chain_prev_seqno(), 1);
        // A lower point starts a new context at the higher seqno.
        let l2 = Fence::new_chain(Some(l3.clone()), Fence::new(), 2);
        assert_ne!(l2.context(), l3.context());
        assert_eq!(l2.seqno(), 3);
        assert_eq!(l2.chain_prev_seqno(), 0);
    }

    #[test]
    fn merge_drops_signalled_and_sorts() {
        let a = Fence::new();
        let b = Fence::new();
        let c = Fence::new();
        c.signal(-5);
        let m = unwrap_merge(&[b.clone(), c.clone(), a.clone()]);
        let leaves = unwrap(&m);
        assert_eq!(leaves.len(), 2);
        assert!(Arc::ptr_eq(&leaves[0], &a) && Arc::ptr_eq(&leaves[1], &b));
        // Signalling enabled (by a wait) while pending: the array carries the error.
        m.enable_signaling();
        a.signal(0);
        assert_eq!(m.status(), 0);
        b.signal(-62);
        assert_eq!(m.status(), -62);
        // Never enabled: signalled without the error (dma_fence_array_signaled).
        let (e, f) = (Fence::new(), Fence::new());
        let m2 = unwrap_merge(&[e.clone(), f.clone()]);
        e.signal(-5);
        f.signal(0);
        assert_eq!(m2.status(), 1);
        // All signalled: a stub.
        let s = unwrap_merge(&[a.clone(), c.clone()]);
        assert_eq!(s.status(), 1);
        // Same fence twice: deduplicated.
        let d = Fence::new();
        assert!(Arc::ptr_eq(&unwrap_merge(&[d.clone(), d.clone()]), &d));
    }
}
