//! A submission hit by a neighbour fault, on its queue's worker: it runs below with its
//! signals held; once it finished, the layer leaves memory as a job stopped half-way would
//! (garbage in every binding the submission can write) and replays its command buffers, or
//! loses the device with an innocent report, as the recovery model decides; then the held
//! signals and the fence go down.

use ash::vk;

use agx_winsys::outcome::{Guilt, JobOutcome};
use agx_winsys::vulkan::{FaultReport, FaultVendorInfo};

use super::batch::{submit_cbs, Keep, OwnedSubmit};
use super::queue::QueueInfo;
use super::scramble;
use crate::dispatch::{lock, DeviceState};
use crate::shadow::ShadowFault;
use crate::stats;
use crate::track::SubmissionVerdict;

/// Vendor info code of a not-restartable reason in innocent reports.
pub const VENDOR_CODE_NOT_RESTARTABLE: u64 = 5;

/// Submits `cbs`-or-parts and waits for them below with a layer fence (no lock held across the
/// wait). `Err` when the driver failed or the device is being torn down.
fn run_and_wait(
    dev: &DeviceState,
    q: &QueueInfo,
    submit: impl FnOnce(vk::Fence) -> vk::Result,
) -> Result<(), vk::Result> {
    let f = {
        let mut objs = lock(&q.objs);
        let f = dev
            .take_fence(&mut objs)
            .ok_or(vk::Result::ERROR_OUT_OF_HOST_MEMORY)?;
        let r = submit(f);
        if r != vk::Result::SUCCESS {
            objs.fences.push(f);
            return Err(r);
        }
        f
    };
    match dev.wait_layer_fence(f, None) {
        Ok(true) => {
            dev.give_fence(&mut lock(&q.objs), f);
            Ok(())
        }
        Ok(false) => Err(vk::Result::ERROR_DEVICE_LOST),
        Err(e) => Err(e),
    }
}

/// Loses the device with the innocent report of submission `n`.
fn lose(dev: &DeviceState, outcome: &JobOutcome, n: u64, names: &[&'static str]) {
    if let Some(mut report) = FaultReport::from_outcome(outcome, n) {
        report
            .description
            .push_str(&format!(" [{}]", names.join("|")));
        for r in names {
            report.vendor.push(FaultVendorInfo {
                description: format!("not restartable: {r}"),
                code: VENDOR_CODE_NOT_RESTARTABLE,
                data: 0,
            });
        }
        dev.set_lost(report);
    }
}

/// A scramble that could not be done: the fault kills batches `j..` (an innocent loss).
#[allow(clippy::too_many_arguments)]
fn scramble_failed(
    dev: &DeviceState,
    q: &QueueInfo,
    sub: &OwnedSubmit,
    j: usize,
    fence: vk::Fence,
    n: u64,
    names: &mut Vec<&'static str>,
    why: &'static str,
) {
    stats::scramble_failed();
    names.push(why);
    let killed = JobOutcome::Killed {
        guilt: Guilt::Innocent,
        fault: None,
    };
    lose(dev, &killed, n, names);
    release(dev, q, &sub.from(j), Keep::SIGNALS, fence);
}

/// Runs one held submission (on its queue's worker).
pub fn run(
    dev: &DeviceState,
    q: &QueueInfo,
    sub: &OwnedSubmit,
    fence: vk::Fence,
    n: u64,
    verdicts: &[SubmissionVerdict],
) {
    let mut names = super::reason_names(verdicts);
    // Replay or lose, as the recovery model decides for the shadow job.
    let outcome = dev
        .shadow_outcome(n, ShadowFault::Neighbor, names.is_empty())
        .unwrap_or(JobOutcome::Killed {
            guilt: Guilt::Innocent,
            fault: None,
        });
    // On a shared device (AGX_FAULT_DEVICE) no fault came while it was in flight: it runs
    // as is.
    if outcome == JobOutcome::Complete {
        release(dev, q, &sub.from(0), Keep::ALL, fence);
        return;
    }
    stats::fault_injected();
    if !outcome.succeeded() {
        // Killed (as the kernel kills an innocent job it cannot replay): lost before its
        // signals go down, which go down alone, as every submission's after a loss.
        lose(dev, &outcome, n, &names);
        release(dev, q, &sub.from(0), Keep::SIGNALS, fence);
        return;
    }
    if dev.fault.masked_is_lost() {
        // deviceFaultDeviceLostOnMasked: the fault the layer would mask loses the device.
        dev.set_lost(FaultReport::masked_made_fatal(n));
        release(dev, q, &sub.from(0), Keep::SIGNALS, fence);
        return;
    }
    let replays = match outcome {
        JobOutcome::Replayed(k) => k,
        _ => 0,
    };
    // Batch by batch (each batch is a job below; a later batch may wait, through the host or
    // another queue, for an earlier one's signal): the batch runs with its signals held (and
    // is stopped half-way: below it runs fully, then is scrambled), is replayed, and its
    // signals go down.
    for (j, verdict) in verdicts.iter().enumerate() {
        let mut one = sub.only(j);
        let fence_j = if j + 1 == verdicts.len() {
            fence
        } else {
            vk::Fence::null()
        };
        // The bytes a half-executed job leaves are the ones it wrote: snapshot what the batch
        // can reach, at its head. A scramble that cannot be done is a loss, never a silent
        // replay.
        let snapshot = match verdict.unresolved {
            Some(why) => Err(why),
            None if one.batches.iter().any(|b| b.protected) => Err("protected_submit"),
            None => scramble::Snapshot::prepare(dev, q, &verdict.scramble),
        };
        let mut snapshot = match snapshot {
            Ok(s) => s,
            Err(why) => {
                scramble_failed(dev, q, sub, j, fence, n, &mut names, why);
                return;
            }
        };
        if let Some(cb) = snapshot.head() {
            one.prepend(cb);
        }
        let ran = run_and_wait(dev, q, |f| one.submit(dev, q.handle, Keep::RUN, f));
        if ran.is_err() {
            let _ = dev.check(vk::Result::ERROR_DEVICE_LOST, "neighbor run");
            release(dev, q, &sub.from(j), Keep::SIGNALS, fence);
            return;
        }
        // What a half-executed job leaves, then the replay.
        match snapshot.scramble() {
            Ok(bytes) => stats::scrambled(bytes),
            Err(why) => {
                scramble_failed(dev, q, sub, j, fence, n, &mut names, why);
                return;
            }
        }
        let cbs: Vec<vk::CommandBuffer> = sub.only(j).command_buffers();
        if run_and_wait(dev, q, |f| submit_cbs(dev, q.handle, &cbs, f)).is_err() {
            let _ = dev.check(vk::Result::ERROR_DEVICE_LOST, "replay");
            release(dev, q, &sub.from(j), Keep::SIGNALS, fence);
            return;
        }
        if j + 1 == verdicts.len() {
            // Masked: reported (VK_KHR_device_fault) before the fence the application may be
            // waiting on goes down.
            dev.fault.masked(n, replays);
        }
        release(dev, q, &sub.only(j), Keep::SIGNALS, fence_j);
    }
    if verdicts.is_empty() {
        dev.fault.masked(n, replays);
        release(dev, q, &sub.from(0), Keep::SIGNALS, fence);
    }
    stats::replayed();
}

/// Submits the `keep` parts of `part` of a held submission with `fence` (may be null), and
/// tells the scheduler its signals (and the fence) went down.
fn release(dev: &DeviceState, q: &QueueInfo, part: &OwnedSubmit, keep: Keep, fence: vk::Fence) {
    let r = {
        let _objs = lock(&q.objs);
        part.submit(dev, q.handle, keep, fence)
    };
    dev.released(part, fence);
    let _ = dev.check(r, "vkQueueSubmit");
}
