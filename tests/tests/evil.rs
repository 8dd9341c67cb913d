//! `agx-fault-suite evil`: another process's faults on a shared GPU (a device server's, host
//! clock) stop this process's work in flight; it is replayed or killed as the policy says, and
//! each process is told its own guilt.

use std::process::Command;
use std::time::Duration;

use agx_sim::stream::StreamBuilder;
use agx_sim::SimConfig;
use agx_sim_server::Server;
use agx_winsys::analysis::RenderPass;
use agx_winsys::kit::Context;
use agx_winsys::{Deadline, Device, DeviceSpec, Guilt, JobOutcome};

#[test]
fn evil_faults_reach_work_in_flight_in_another_process() {
    for (policy, restartable) in [("kill-inflight", true), ("replay", true), ("replay", false)] {
        let sock = std::env::temp_dir().join(format!(
            "agx-fault-suite-evil-{}-{policy}-{restartable}.sock",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&sock);
        let config =
            SimConfig::from_options(&format!("policy={policy},clock=host,hang-timeout-ms=5000"))
                .unwrap();
        let server = Server::new(config);
        let listener = server.listen(&sock).unwrap();
        let spec = format!("unix:{}", listener.path().display());
        let dev = Device::open(&DeviceSpec::parse(&spec).unwrap()).unwrap();
        // The victim: 1.5 s of GPU time (host time here), in flight when the faults come (the
        // evil process starts well within that).
        let cx = Context::new(&dev, 64 * 1024).unwrap();
        let mut s = StreamBuilder::new();
        s.spin(1_500_000_000);
        let mut desc = cx.render(&mut s, RenderPass::new(), &[]).unwrap();
        if !restartable {
            desc.access = None;
        }
        let mut cb = cx.command_buffer();
        cb.render(desc).unwrap();
        let job = cx.queue.submit(&cb, &[], &[]).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_agx-fault-suite"))
            .args([
                "evil",
                "--device",
                &spec,
                "--every",
                "5",
                "--count",
                "2",
                "--kinds",
                "unmapped,read-only",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["faults"], 2, "{summary}");
        assert_eq!(summary["told"]["guilty fault"], 2, "{summary}");
        assert_eq!(summary["by_kind"]["read-only"], 1, "{summary}");
        let outcome = job.wait(Deadline::After(Duration::from_secs(30))).unwrap();
        match (policy, restartable) {
            // Each fault restarts it (two, within the replay limit of 3).
            ("replay", true) => assert!(
                matches!(outcome, JobOutcome::Replayed(2)),
                "{policy}: {outcome:?}"
            ),
            _ => assert!(
                matches!(
                    outcome,
                    JobOutcome::Killed {
                        guilt: Guilt::Innocent,
                        fault: Some(_)
                    }
                ),
                "{policy} restartable={restartable}: {outcome:?}"
            ),
        }
        let stats = dev.sim_control().unwrap().stats();
        assert!(stats.faults == 2 && stats.recoveries == 2, "{stats:?}");
    }
}
