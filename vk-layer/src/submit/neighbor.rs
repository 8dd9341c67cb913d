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

pub fn run(
    dev: &DeviceState,
    q: &QueueInfo,
    sub: &OwnedSubmit,
    fence: vk::Fence,
    n: u64,
    verdict: &SubmissionVerdict,
) {
    // 1. The job runs (and is stopped half-way: below it runs fully, then is scrambled),
    // batch by batch: a batch waiting on an earlier one's held signal runs after it.
    let ran = (0..sub.batches.len()).try_for_each(|j| {
        let b = sub.batch_run(j);
        run_and_wait(dev, q, |f| b.submit(dev, q.handle, Keep::ALL, f))
    });
    match ran {
        Err(e) => {
            let _ = dev.check(
                if e == vk::Result::ERROR_DEVICE_LOST {
                    e
                } else {
                    vk::Result::ERROR_DEVICE_LOST
                },
                "neighbor run",
            );
        }
        Ok(()) => {
            // 2. Replay or lose, as the recovery model decides for the shadow job.
            let mut names = verdict.reason_names();
            let outcome = dev
                .shadow_outcome(n, ShadowFault::Neighbor, verdict.restartable())
                .unwrap_or(JobOutcome::Killed {
                    guilt: Guilt::Innocent,
                    fault: None,
                });
            if outcome.succeeded() {
                // 3. What a half-executed job leaves, then the replay. A scramble that cannot
                // be done is a loss, never a silent replay.
                let scrambled = match verdict.unresolved {
                    Some(why) => Err(why),
                    None => scramble::scramble(dev, q, &verdict.scramble),
                };
                match scrambled {
                    Ok(bytes) => {
                        stats::scrambled(bytes);
                        // Batch by batch, as they ran.
                        let replay = sub.batches.iter().try_for_each(|b| {
                            let cbs: Vec<vk::CommandBuffer> = b.cbs.iter().map(|c| c.0).collect();
                            run_and_wait(dev, q, |f| submit_cbs(dev, q.handle, &cbs, f))
                        });
                        match replay {
                            Ok(()) => stats::replayed(),
                            Err(_) => {
                                let _ = dev.check(vk::Result::ERROR_DEVICE_LOST, "replay");
                            }
                        }
                    }
                    Err(why) => {
                        stats::scramble_failed();
                        names.push(why);
                        let killed = JobOutcome::Killed {
                            guilt: Guilt::Innocent,
                            fault: None,
                        };
                        lose(dev, &killed, n, &names);
                    }
                }
            } else {
                lose(dev, &outcome, n, &names);
            }
        }
    }
    // 4. Release the held signals and the fence.
    let release = sub.release(|s| !dev.is_timeline(s));
    let r = {
        let _objs = lock(&q.objs);
        release.submit(dev, q.handle, Keep::ALL, fence)
    };
    dev.released(sub, fence);
    let _ = dev.check(r, "vkQueueSubmit");
}
