//! The shadow GPU: each submission a planned fault touches is replayed, as a job, on an
//! embedded simulated AGX device (one per `VkDevice`, with the `replay` recovery policy), so
//! what the application is told (guilt, replay or loss, the fault and its address) comes from
//! the same recovery model the fault suite tests, not from a second copy of the rules here.
//!
//! The shadow job carries the layer's restartability verdict (an empty access description is
//! restartable; none at all is not). A `neighbor` fault is another simulated context faulting
//! while the shadow job is in flight; `guilty@N` is the shadow job itself writing to an
//! unmapped address; `hang@N` is the shadow job hanging until the watchdog.

use std::time::Duration;

use agx_sim::stream::StreamBuilder;
use agx_winsys::analysis::RenderPass;
use agx_winsys::kit::Context;
use agx_winsys::{Deadline, Device, DeviceSpec, JobOutcome, Result};

use crate::plan::injected_fault_address;

/// What the plan does to the submission being shadowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShadowFault {
    Guilty,
    Hang,
    Neighbor,
}

/// The simulated GPU of one `VkDevice`: the application's context, and another file of the
/// same GPU where neighbours are made (a fresh context each time: a culprit's queue is banned).
#[derive(Debug)]
pub struct Shadow {
    dev: Device,
    app: Context,
    peer: Device,
}

/// GPU time a shadow job runs for: several scheduling quanta, so a neighbour fault finds it
/// in flight.
const SHADOW_NS: u64 = 100_000;
/// When the neighbour faults, in GPU time.
const NEIGHBOR_FAULT_NS: u64 = 10_000;

impl Shadow {
    pub fn new() -> Result<Shadow> {
        let dev = Device::open(&DeviceSpec::parse("sim:policy=replay,hang-timeout-ms=1")?)?;
        let peer = dev.sim_control().expect("a simulated device").open_peer()?;
        let app = Context::new(&dev, 64 * 1024)?;
        Ok(Shadow { dev, app, peer })
    }

    /// Runs the shadow of submission `n` and returns its outcome.
    pub fn run(&mut self, n: u64, fault: ShadowFault, restartable: bool) -> Result<JobOutcome> {
        match self.run_once(n, fault, restartable) {
            // The application context's stream memory is full (one stream per job, never
            // freed): a fresh context, as the application's own work is done.
            Err(agx_winsys::Error::OutOfVa { .. }) => {
                self.app = Context::new(&self.dev, 64 * 1024)?;
                self.run_once(n, fault, restartable)
            }
            r => r,
        }
    }

    fn run_once(&self, n: u64, fault: ShadowFault, restartable: bool) -> Result<JobOutcome> {
        let mut s = StreamBuilder::new();
        match fault {
            ShadowFault::Guilty => s.spin(SHADOW_NS / 2).store(injected_fault_address(n), 1),
            ShadowFault::Hang => s.spin(SHADOW_NS / 2).hang(),
            ShadowFault::Neighbor => s.spin(SHADOW_NS),
        };
        let access = restartable.then(RenderPass::new);
        let mut desc = self.app.render(&mut s, RenderPass::new(), &[])?;
        desc.access = access;
        let mut cb = self.app.command_buffer();
        cb.render(desc)?;
        let deadline = Deadline::After(Duration::from_secs(10));
        let sim = self.dev.sim_control().expect("a simulated device");
        sim.hold();
        let job = self.app.queue.submit(&cb, &[], &[]);
        let culprit = match (&job, fault) {
            (Ok(_), ShadowFault::Neighbor) => {
                let neighbor = Context::new(&self.peer, 64 * 1024)?;
                let mut c = StreamBuilder::new();
                c.spin(NEIGHBOR_FAULT_NS).load(injected_fault_address(0), 8);
                let d = neighbor.render(&mut c, RenderPass::new(), &[])?;
                let mut cb = neighbor.command_buffer();
                cb.render(d)?;
                let job = neighbor.queue.submit(&cb, &[], &[]);
                Some((job, neighbor))
            }
            _ => None,
        };
        sim.release();
        let outcome = job?.wait(deadline)?;
        // The culprit's context lives until here: dropping its queue earlier would kill its job.
        if let Some((job, _neighbor)) = culprit {
            job?.wait(deadline)?;
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agx_winsys::{FaultKind, Guilt};

    #[test]
    fn outcomes_come_from_the_recovery_model() {
        let mut s = Shadow::new().unwrap();
        assert_eq!(
            s.run(1, ShadowFault::Neighbor, true).unwrap(),
            JobOutcome::Replayed(1)
        );
        let o = s.run(2, ShadowFault::Guilty, true).unwrap();
        let JobOutcome::Faulted { fault, guilt } = o else {
            panic!("{o:?}")
        };
        assert_eq!(guilt, Guilt::Guilty);
        assert_eq!(fault.kind, FaultKind::Unmapped);
        assert!(fault.write);
        assert_eq!(fault.address, Some(injected_fault_address(2)));
        let mut s = Shadow::new().unwrap();
        assert!(matches!(
            s.run(3, ShadowFault::Neighbor, false).unwrap(),
            JobOutcome::Killed {
                guilt: Guilt::Innocent,
                fault: Some(_)
            }
        ));
        let mut s = Shadow::new().unwrap();
        assert_eq!(
            s.run(4, ShadowFault::Hang, true).unwrap(),
            JobOutcome::TimedOut
        );
    }

    #[test]
    fn many_jobs_do_not_run_out_of_stream_memory() {
        // One stream per job in a 1 MiB arena: about 16,000 jobs fill it.
        let mut s = Shadow::new().unwrap();
        for n in 1..=16_500 {
            assert_eq!(
                s.run(n, ShadowFault::Neighbor, true).unwrap(),
                JobOutcome::Replayed(1),
                "job {n}"
            );
        }
    }
}
