//! Threads for requests that may block (syncobj waits): every job gets a thread at once (an
//! idle one, or a new one), so one client's wait never delays another's; threads idle for a
//! while exit.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

/// How long an idle thread waits for work before it exits.
const IDLE: Duration = Duration::from_secs(10);

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    idle: usize,
}

#[derive(Clone, Default)]
pub(crate) struct Pool {
    inner: Arc<(Mutex<State>, Condvar)>,
}

impl Pool {
    pub(crate) fn spawn(&self, job: Job) {
        let (m, cv) = &*self.inner;
        let mut st = m.lock().unwrap_or_else(|e| e.into_inner());
        st.queue.push_back(job);
        if st.queue.len() <= st.idle {
            cv.notify_one();
            return;
        }
        drop(st);
        let inner = self.inner.clone();
        let spawned = std::thread::Builder::new()
            .name("agx-sim-server-wait".into())
            .spawn(move || worker(&inner));
        if spawned.is_err() {
            // No thread to be had: run it here rather than lose it.
            let job = m.lock().unwrap_or_else(|e| e.into_inner()).queue.pop_back();
            if let Some(job) = job {
                job();
            }
        }
    }
}

fn worker(inner: &(Mutex<State>, Condvar)) {
    let (m, cv) = inner;
    let mut st = m.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            job();
            st = m.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        st.idle += 1;
        let (g, timeout) = cv.wait_timeout(st, IDLE).unwrap_or_else(|e| e.into_inner());
        st = g;
        st.idle -= 1;
        if timeout.timed_out() && st.queue.is_empty() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Jobs that block do not hold up later ones.
    #[test]
    fn blocked_jobs_do_not_delay_others() {
        let pool = Pool::default();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate_rx));
        let (done_tx, done_rx) = mpsc::channel();
        for _ in 0..4 {
            let gate = gate.clone();
            pool.spawn(Box::new(move || {
                let _ = gate.lock().unwrap().recv();
            }));
        }
        pool.spawn(Box::new(move || done_tx.send(()).unwrap()));
        done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a fifth job runs while four are blocked");
        drop(gate_tx);
    }
}
