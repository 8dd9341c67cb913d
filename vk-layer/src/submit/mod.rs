//! Submissions: what happens to each `vkQueueSubmit`/`vkQueueSubmit2` the fault model touches.
//!
//! - No fault: it goes down as it is (behind the queue's held work, if any).
//! - Guilty fault or hang: it goes down with zero command buffers (its semaphores and fence
//!   still signal, so WSI does not hang), the device is marked lost with the fault report, and
//!   the submit call itself returns `VK_SUCCESS`: the loss shows from the next call that may
//!   return `VK_ERROR_DEVICE_LOST` (as a fault detected at completion would).
//! - Neighbour fault: analysed now, then handed to the queue's worker (`neighbor`), which runs
//!   it, scrambles, replays or loses, and releases its signals; the submit call returns at once.

pub mod batch;
mod neighbor;
pub mod queue;
pub(crate) mod scramble;

use std::sync::Arc;

use ash::vk;
use ash::vk::Handle;

use agx_winsys::outcome::{Guilt, JobOutcome};
use agx_winsys::vulkan::FaultReport;

pub use batch::{Batches, Keep, OwnedSubmit};
pub use neighbor::VENDOR_CODE_NOT_RESTARTABLE;
use queue::{Job, QueueInfo};

use crate::dispatch::{lock, DeviceState};
use crate::plan::Decision;
use crate::shadow::ShadowFault;
use crate::stats;
use crate::track::SubmissionVerdict;

/// The outcome of a guilty fault or hang of submission `n`, from the shadow job (or as
/// planned when the shadow cannot run).
fn guilty_report(dev: &DeviceState, n: u64, decision: Decision) -> Option<FaultReport> {
    let outcome = match decision {
        Decision::Guilty(fault) => {
            dev.shadow_outcome(n, ShadowFault::Guilty, true)
                .unwrap_or(JobOutcome::Faulted {
                    fault,
                    guilt: Guilt::Guilty,
                })
        }
        _ => dev
            .shadow_outcome(n, ShadowFault::Hang, true)
            .unwrap_or(JobOutcome::TimedOut),
    };
    FaultReport::from_outcome(&outcome, n)
}

/// Analyses a submission for a neighbour fault, batch by batch (each batch is a job below),
/// and counts it once in the census (restartable when every batch is).
fn analyse(dev: &DeviceState, sub: Option<&OwnedSubmit>) -> Vec<SubmissionVerdict> {
    let mut v: Vec<SubmissionVerdict> = match sub {
        Some(sub) => {
            let t = lock(&dev.tracker);
            sub.batches
                .iter()
                .map(|b| {
                    let raw: Vec<u64> = b.cbs.iter().map(|c| c.0.as_raw()).collect();
                    t.analyse_submission(&raw)
                })
                .collect()
        }
        None => vec![SubmissionVerdict {
            extra: vec!["unknown_submit_chain"],
            ..SubmissionVerdict::default()
        }],
    };
    let unseen = lock(&dev.unseen);
    for b in &mut v {
        for name in unseen.iter() {
            if !b.extra.contains(name) {
                b.extra.push(name);
            }
        }
    }
    stats::analysed(&reason_names(&v));
    v
}

/// The reasons of all batches, each once.
fn reason_names(v: &[SubmissionVerdict]) -> Vec<&'static str> {
    let mut names = Vec::new();
    for r in v.iter().flat_map(SubmissionVerdict::reason_names) {
        if !names.contains(&r) {
            names.push(r);
        }
    }
    names
}

/// Maps what the driver said about a submission the application sees as accepted.
fn accepted(r: vk::Result) -> vk::Result {
    if r == vk::Result::ERROR_DEVICE_LOST {
        vk::Result::SUCCESS
    } else {
        r
    }
}

/// The common path of `vkQueueSubmit` and `vkQueueSubmit2`.
pub fn submit(
    dev: &DeviceState,
    queue: vk::Queue,
    batches: Batches<'_>,
    fence: vk::Fence,
) -> vk::Result {
    let lost = dev.lost.is_lost();
    if dev.model.is_idle() && !lost {
        // The fast path: no plan, nothing held, nothing else of the layer's on the queue (its
        // own submissions there come only after a loss).
        dev.submits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return dev.check(batches.submit_as_is(dev, queue, fence), batches.call_name());
    }
    let Some(q) = dev.queue(queue) else {
        // A queue the layer never saw (not from vkGetDeviceQueue*): pass it on.
        return batches.submit_as_is(dev, queue, fence);
    };
    let (n, decision) = if lost {
        (0, Decision::Run)
    } else {
        let n = dev
            .submits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let d = if dev.model.is_idle() {
            Decision::Run
        } else {
            dev.model.on_submit(n)
        };
        (n, d)
    };
    // A neighbour fault is counted where it is known to have hit: on a shared device
    // (AGX_FAULT_DEVICE) a watched submission may come through untouched.
    if decision != Decision::Run && decision != Decision::Neighbor {
        stats::fault_injected();
    }
    if !dev.track {
        // No neighbour fault is planned: nothing is ever held, submit at once.
        let _objs = lock(&q.objs);
        return match decision {
            _ if lost => {
                let _ = empty_now(dev, &q, batches, fence, Keep::SIGNALS);
                vk::Result::ERROR_DEVICE_LOST
            }
            Decision::Run => {
                dev.check(batches.submit_as_is(dev, queue, fence), batches.call_name())
            }
            _ => {
                let r = empty_now(dev, &q, batches, fence, Keep::EMPTY);
                if let Some(report) = guilty_report(dev, n, decision) {
                    dev.set_lost(report);
                }
                accepted(r)
            }
        };
    }
    held_submit(dev, &q, batches, fence, n, decision, lost)
}

/// Submits the batches without their command buffers (and, after the loss, without their
/// waits: nothing may wait below for a signal a lost application will never make), now (the
/// caller holds the queue).
fn empty_now(
    dev: &DeviceState,
    q: &QueueInfo,
    batches: Batches<'_>,
    fence: vk::Fence,
    keep: Keep,
) -> vk::Result {
    // SAFETY: the application's batches, valid during its call.
    match unsafe { OwnedSubmit::copy(batches) } {
        Some(sub) => sub.submit(dev, q.handle, keep, fence),
        // A chain the layer cannot edit: the work goes down (the device is lost anyway).
        None => batches.submit_as_is(dev, q.handle, fence),
    }
}

/// The path of devices with a neighbour term: submissions may be held by the queue's worker.
fn held_submit(
    dev: &DeviceState,
    q: &Arc<QueueInfo>,
    batches: Batches<'_>,
    fence: vk::Fence,
    n: u64,
    decision: Decision,
    lost: bool,
) -> vk::Result {
    // SAFETY: the application's batches, valid during its call.
    let copy = || unsafe { OwnedSubmit::copy(batches) };
    let mut s = dev.sched();
    let busy = !s
        .queues
        .get(&q.handle.as_raw())
        .is_none_or(queue::QueueSched::idle);
    // The batches are copied only when they may be held (the common case goes down as it is).
    let mut owned = None;
    let blocked = !s.binary.is_empty() && {
        owned = Some(copy());
        owned.as_ref().is_some_and(|o| {
            o.as_ref()
                .is_some_and(|o| dev.waits_on_held(&s, o.external_waits().map(|w| w.sem)))
        })
    };
    if decision == Decision::Run && !busy && !blocked {
        drop(s);
        let _objs = lock(&q.objs);
        if lost {
            let _ = empty_now(dev, q, batches, fence, Keep::SIGNALS);
            return vk::Result::ERROR_DEVICE_LOST;
        }
        return dev.check(
            batches.submit_as_is(dev, q.handle, fence),
            batches.call_name(),
        );
    }
    let Some(sub) = owned.unwrap_or_else(copy) else {
        // Cannot be held: wait for the queue's earlier work to go down, then decide now.
        drop(s);
        dev.sched_wait(None, |s| {
            s.queues
                .get(&q.handle.as_raw())
                .is_none_or(queue::QueueSched::idle)
        });
        let _objs = lock(&q.objs);
        return match decision {
            _ if lost => {
                let _ = batches.submit_as_is(dev, q.handle, fence);
                vk::Result::ERROR_DEVICE_LOST
            }
            Decision::Run => dev.check(
                batches.submit_as_is(dev, q.handle, fence),
                batches.call_name(),
            ),
            Decision::Neighbor => {
                stats::fault_injected();
                let v = analyse(dev, None);
                let r = batches.submit_as_is(dev, q.handle, fence);
                let killed = JobOutcome::Killed {
                    guilt: Guilt::Innocent,
                    fault: None,
                };
                if let Some(mut report) = FaultReport::from_outcome(&killed, n) {
                    report
                        .description
                        .push_str(&format!(" [{}]", reason_names(&v).join("|")));
                    dev.set_lost(report);
                }
                accepted(r)
            }
            _ => {
                let r = batches.submit_as_is(dev, q.handle, fence);
                if let Some(report) = guilty_report(dev, n, decision) {
                    dev.set_lost(report);
                }
                accepted(r)
            }
        };
    };
    let job = match decision {
        _ if lost => Job::Empty {
            sub,
            fence,
            keep: Keep::SIGNALS,
        },
        Decision::Run => Job::Plain { sub, fence },
        Decision::Neighbor => {
            drop(s);
            let verdicts = analyse(dev, Some(&sub));
            s = dev.sched();
            Job::Neighbor {
                sub,
                fence,
                n,
                verdicts,
            }
        }
        _ => {
            drop(s);
            if let Some(report) = guilty_report(dev, n, decision) {
                dev.set_lost(report);
            }
            s = dev.sched();
            Job::Empty {
                sub,
                fence,
                keep: Keep::EMPTY,
            }
        }
    };
    dev.enqueue(q, &mut s, job);
    if lost {
        vk::Result::ERROR_DEVICE_LOST
    } else {
        vk::Result::SUCCESS
    }
}
