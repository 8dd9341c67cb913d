//! Gallium/GL robustness: a context's reset status, latched at the first reset and reported
//! once, with the callback the state tracker installs (`pipe_context::get_device_reset_status`
//! and `set_device_reset_callback`).

use std::sync::Mutex;

use crate::outcome::{Guilt, JobOutcome};

/// `enum pipe_reset_status`, with its values.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResetStatus {
    NoReset = 0,
    Guilty = 1,
    Innocent = 2,
    Unknown = 3,
}

impl ResetStatus {
    /// The status a failed job implies for its context.
    pub fn from_outcome(o: &JobOutcome) -> ResetStatus {
        match o.guilt() {
            None => ResetStatus::NoReset,
            Some(Guilt::Guilty) => ResetStatus::Guilty,
            Some(Guilt::Innocent) => ResetStatus::Innocent,
            Some(Guilt::Unknown) => ResetStatus::Unknown,
        }
    }
}

type Callback = Box<dyn Fn(ResetStatus) + Send + Sync>;

#[derive(Default)]
struct State {
    latched: Option<ResetStatus>,
    reported: bool,
    callback: Option<Callback>,
}

/// Reset tracking of one GL context: feed it what the context learns (job outcomes, queue
/// state), ask it `status()` the way `get_device_reset_status` is asked.
#[derive(Default)]
pub struct ResetTracker {
    state: Mutex<State>,
}

impl std::fmt::Debug for ResetTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("ResetTracker")
            .field("latched", &st.latched)
            .field("reported", &st.reported)
            .finish()
    }
}

impl ResetTracker {
    pub fn new() -> ResetTracker {
        ResetTracker::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `set_device_reset_callback`: called once, when the first reset is latched.
    pub fn set_callback(&self, cb: Option<Callback>) {
        self.lock().callback = cb;
    }

    /// Records what a finished job says. The first reset wins; later ones change nothing
    /// (a guilty context stays guilty even if later work is merely cancelled).
    pub fn observe(&self, status: ResetStatus) {
        if status == ResetStatus::NoReset {
            return;
        }
        let mut st = self.lock();
        if st.latched.is_some() {
            return;
        }
        st.latched = Some(status);
        if let Some(cb) = st.callback.take() {
            // Run the callback without the lock: it may call back into the context.
            drop(st);
            cb(status);
            let mut st = self.lock();
            st.callback.get_or_insert(cb);
        }
    }

    /// `get_device_reset_status`: the latched reset the first time it is asked, `NoReset` ever
    /// after (the context is lost and the application makes a new one).
    pub fn status(&self) -> ResetStatus {
        let mut st = self.lock();
        match st.latched {
            Some(s) if !st.reported => {
                st.reported = true;
                s
            }
            _ => ResetStatus::NoReset,
        }
    }

    /// Whether a reset has been latched (the context is lost).
    pub fn is_lost(&self) -> bool {
        self.lock().latched.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[test]
    fn latched_and_reported_once() {
        let t = ResetTracker::new();
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        t.set_callback(Some(Box::new(move |s| {
            assert_eq!(s, ResetStatus::Innocent);
            c.fetch_add(1, Ordering::SeqCst);
        })));
        assert_eq!(t.status(), ResetStatus::NoReset);
        t.observe(ResetStatus::Innocent);
        t.observe(ResetStatus::Guilty);
        assert_eq!(t.status(), ResetStatus::Innocent);
        assert_eq!(t.status(), ResetStatus::NoReset);
        assert!(t.is_lost());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn outcome_mapping() {
        use crate::outcome::{FaultInfo, JobOutcome};
        assert_eq!(
            ResetStatus::from_outcome(&JobOutcome::Complete),
            ResetStatus::NoReset
        );
        assert_eq!(
            ResetStatus::from_outcome(&JobOutcome::Replayed(1)),
            ResetStatus::NoReset
        );
        assert_eq!(
            ResetStatus::from_outcome(&JobOutcome::TimedOut),
            ResetStatus::Guilty
        );
        let f = JobOutcome::Faulted {
            fault: FaultInfo::UNKNOWN,
            guilt: Guilt::Unknown,
        };
        assert_eq!(ResetStatus::from_outcome(&f), ResetStatus::Unknown);
        let k = JobOutcome::Killed {
            guilt: Guilt::Innocent,
            fault: None,
        };
        assert_eq!(ResetStatus::from_outcome(&k), ResetStatus::Innocent);
    }
}
