//! The shadow GPU: each submission a planned fault touches is replayed, as a job, on an
//! embedded simulated AGX device (one per `VkDevice`, with the `replay` recovery policy), so
//! what the application is told (guilt, replay or loss, the fault and its address) comes from
//! the same recovery model the fault suite tests, not from a second copy of the rules here.
//!
//! The shadow job carries the layer's restartability verdict (an empty access description is
//! restartable; none at all is not). A `neighbor` fault is another simulated context faulting
//! while the shadow job is in flight; `guilty@N` is the shadow job itself writing to an
//! unmapped address; `hang@N` is the shadow job hanging until the watchdog.
//!
//! With `AGX_FAULT_DEVICE=unix:PATH` the shadow jobs go to the shared GPU of a device server
//! instead (meant for one on the host clock): a `neighbor` submission's shadow job then runs
//! for [`SHARED_SHADOW_NS`] among the other processes' work, and its fault is whatever another
//! process (`agx-fault-suite evil`) really did while it was in flight: replayed, killed, or
//! nothing (then the submission runs as is).

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
/// same GPU where neighbours are made (a fresh context each time: a culprit's queue is banned);
/// none on a shared device, whose neighbours are other processes.
#[derive(Debug)]
pub struct Shadow {
    dev: Device,
    app: Context,
    peer: Option<Device>,
}

/// GPU time of a shadow job on a shared device: how long a submission is taken to be in flight
/// (a model constant: 1 ms, about a frame's GPU work of a small application).
pub const SHARED_SHADOW_NS: u64 = 1_000_000;

/// The variable naming the shared device (`unix:PATH`).
pub const SHARED_DEVICE_ENV: &str = "AGX_FAULT_DEVICE";

/// GPU time a shadow job runs for: several scheduling quanta, so a neighbour fault finds it
/// in flight.
const SHADOW_NS: u64 = 100_000;
/// When the neighbour faults, in GPU time.
const NEIGHBOR_FAULT_NS: u64 = 10_000;

impl Shadow {
    pub fn new() -> Result<Shadow> {
        if let Some(spec) = std::env::var(SHARED_DEVICE_ENV)
            .ok()
            .filter(|s| !s.is_empty())
        {
            return Shadow::shared(&spec);
        }
        let dev = Device::open(&DeviceSpec::parse("sim:policy=replay,hang-timeout-ms=1")?)?;
        let peer = Some(dev.sim_control().expect("a simulated device").open_peer()?);
        let app = Context::new(&dev, 64 * 1024)?;
        Ok(Shadow { dev, app, peer })
    }

    /// Shadow jobs on the shared device `spec` (`unix:PATH`).
    pub fn shared(spec: &str) -> Result<Shadow> {
        let dev = Device::open(&DeviceSpec::parse(spec)?)?;
        let app = Context::new(&dev, 64 * 1024)?;
        Ok(Shadow {
            dev,
            app,
            peer: None,
        })
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
        let Some(peer) = &self.peer else {
            return self.run_shared(n, fault, restartable);
        };
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
                let neighbor = Context::new(peer, 64 * 1024)?;
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

    /// On a shared device: the shadow job runs among the other processes' work, the clock
    /// not held (it is theirs too); a `neighbor` is whoever faults meanwhile.
    fn run_shared(&self, n: u64, fault: ShadowFault, restartable: bool) -> Result<JobOutcome> {
        let mut s = StreamBuilder::new();
        match fault {
            ShadowFault::Guilty => s
                .spin(SHARED_SHADOW_NS / 2)
                .store(injected_fault_address(n), 1),
            ShadowFault::Hang => s.spin(SHARED_SHADOW_NS / 2).hang(),
            ShadowFault::Neighbor => s.spin(SHARED_SHADOW_NS),
        };
        let mut desc = self.app.render(&mut s, RenderPass::new(), &[])?;
        desc.access = restartable.then(RenderPass::new);
        let mut cb = self.app.command_buffer();
        cb.render(desc)?;
        self.app
            .queue
            .submit(&cb, &[], &[])?
            .wait(Deadline::After(Duration::from_secs(30)))
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

    /// On a shared host-clock device, a shadow job is replayed or killed by what another file
    /// does while it runs, and left alone otherwise.
    #[test]
    fn shared_device_outcomes_come_from_other_files() {
        use agx_sim::SimConfig;
        for (policy, restartable, hit) in [
            ("replay", true, JobOutcome::Replayed(1)),
            (
                "kill-inflight",
                true,
                JobOutcome::Killed {
                    guilt: Guilt::Innocent,
                    fault: None,
                },
            ),
        ] {
            let sock = std::env::temp_dir().join(format!(
                "agx-vk-layer-shadow-{}-{policy}.sock",
                std::process::id()
            ));
            let _ = std::fs::remove_file(&sock);
            let server = agx_sim_server::Server::new(
                SimConfig::from_options(&format!("policy={policy},clock=host")).unwrap(),
            );
            let listener = server.listen(&sock).unwrap();
            let spec = format!("unix:{}", listener.path().display());
            let mut s = Shadow::shared(&spec).unwrap();
            assert_eq!(
                s.run(1, ShadowFault::Neighbor, restartable).unwrap(),
                JobOutcome::Complete
            );
            // Another file faults 200 µs into the shadow job's millisecond: both are lined up
            // with the clock held, then it goes.
            let other = Device::open(&DeviceSpec::parse(&spec).unwrap()).unwrap();
            let sim = other.sim_control().unwrap().clone();
            sim.hold();
            let cx = Context::new(&other, 64 * 1024).unwrap();
            let mut st = StreamBuilder::new();
            st.spin(200_000).store(injected_fault_address(0), 1);
            let d = cx.render(&mut st, RenderPass::new(), &[]).unwrap();
            let mut cb = cx.command_buffer();
            cb.render(d).unwrap();
            let culprit = cx.queue.submit(&cb, &[], &[]).unwrap();
            let shadow = std::thread::spawn(move || s.run(2, ShadowFault::Neighbor, restartable));
            let t0 = std::time::Instant::now();
            while sim.pending_commands() < 2 {
                assert!(t0.elapsed() < Duration::from_secs(10));
                std::thread::sleep(Duration::from_millis(1));
            }
            sim.release();
            let o = shadow.join().unwrap().unwrap();
            let theirs = culprit
                .wait(Deadline::After(Duration::from_secs(10)))
                .unwrap();
            assert!(matches!(
                theirs,
                JobOutcome::Faulted {
                    guilt: Guilt::Guilty,
                    ..
                }
            ));
            match hit {
                JobOutcome::Killed { .. } => assert!(
                    matches!(
                        o,
                        JobOutcome::Killed {
                            guilt: Guilt::Innocent,
                            ..
                        }
                    ),
                    "{policy}: {o:?}"
                ),
                _ => assert_eq!(o, hit, "{policy}"),
            }
        }
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
