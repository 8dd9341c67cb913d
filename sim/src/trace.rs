//! Event trace of the simulated firmware, in virtual GPU time, exportable as Chrome/Perfetto
//! trace JSON (`{"traceEvents": [...]}`; `ts` and `dur` in microseconds).

use serde_json::{json, Value};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    Submit,
    Start,
    Preempt,
    Fault,
    Timeout,
    RecoveryStart,
    RecoveryEnd,
    Replay,
    Kill,
    Cancel,
    Retire,
    Signal,
    FirmwareCrash,
}

impl EventKind {
    /// Every kind, in declaration order (an event's index here is its number on the wire).
    pub const ALL: [EventKind; 13] = [
        EventKind::Submit,
        EventKind::Start,
        EventKind::Preempt,
        EventKind::Fault,
        EventKind::Timeout,
        EventKind::RecoveryStart,
        EventKind::RecoveryEnd,
        EventKind::Replay,
        EventKind::Kill,
        EventKind::Cancel,
        EventKind::Retire,
        EventKind::Signal,
        EventKind::FirmwareCrash,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventKind::Submit => "submit",
            EventKind::Start => "start",
            EventKind::Preempt => "preempt",
            EventKind::Fault => "fault",
            EventKind::Timeout => "timeout",
            EventKind::RecoveryStart => "recovery_start",
            EventKind::RecoveryEnd => "recovery_end",
            EventKind::Replay => "replay",
            EventKind::Kill => "kill",
            EventKind::Cancel => "cancel",
            EventKind::Retire => "retire",
            EventKind::Signal => "signal",
            EventKind::FirmwareCrash => "firmware_crash",
        }
    }
}

/// One event. `queue` and `job` are the simulator's global ids (0: none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub ts_ns: u64,
    pub kind: EventKind,
    pub queue: u64,
    pub job: u64,
    pub detail: String,
}

/// The trace of one device. Bounded: the oldest events are dropped past `cap`.
#[derive(Debug)]
pub struct Trace {
    events: std::collections::VecDeque<Event>,
    cap: usize,
    dropped: u64,
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            events: Default::default(),
            cap: 1 << 20,
            dropped: 0,
        }
    }
}

impl Trace {
    pub fn push(
        &mut self,
        ts_ns: u64,
        kind: EventKind,
        queue: u64,
        job: u64,
        detail: impl Into<String>,
    ) {
        if self.events.len() == self.cap {
            self.events.pop_front();
            self.dropped += 1;
        }
        self.events.push_back(Event {
            ts_ns,
            kind,
            queue,
            job,
            detail: detail.into(),
        });
    }

    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter()
    }

    /// Chrome trace JSON: each run of a job (start to its end, preemption or replay) is a
    /// complete ("X") slice on its queue's track; every event is also an instant.
    pub fn to_chrome_json(&self) -> String {
        let mut out: Vec<Value> = Vec::new();
        let mut open: std::collections::HashMap<u64, (u64, u64)> = Default::default();
        for e in &self.events {
            let us = e.ts_ns as f64 / 1000.0;
            match e.kind {
                EventKind::Start | EventKind::Replay => {
                    open.insert(e.job, (e.ts_ns, e.queue));
                }
                EventKind::Retire
                | EventKind::Fault
                | EventKind::Timeout
                | EventKind::Kill
                | EventKind::Preempt => {
                    if let Some((start, queue)) = open.remove(&e.job) {
                        out.push(json!({
                            "name": format!("job {}", e.job), "ph": "X", "pid": 1, "tid": queue,
                            "ts": start as f64 / 1000.0, "dur": (e.ts_ns - start) as f64 / 1000.0,
                            "args": {"end": e.kind.name()},
                        }));
                    }
                }
                _ => {}
            }
            out.push(json!({
                "name": e.kind.name(), "ph": "i", "s": "t", "pid": 1, "tid": e.queue, "ts": us,
                "args": {"job": e.job, "detail": e.detail},
            }));
        }
        json!({"traceEvents": out, "otherData": {"dropped_events": self.dropped}}).to_string()
    }
}
