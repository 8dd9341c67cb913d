//! `clock=host`: GPU time follows the host clock, so work of several files overlaps in time as
//! on real hardware, and fences signal without anyone calling into the device.

mod common;

use std::time::{Duration, Instant};

use agx_sim::stream::StreamBuilder;
use agx_sim::{Clock, RecoveryPolicy, SimConfig};
use agx_uapi::fault_ext as ext;
use common::*;

fn host(policy: RecoveryPolicy) -> SimConfig {
    SimConfig {
        policy,
        clock: Clock::Host,
        // Longer than the commands below (the watchdog counts host time too).
        hang_timeout_ns: 2_000_000_000,
        ..Default::default()
    }
}

/// A 40 ms command takes 40 ms of host time, and its fence signals while nobody calls into
/// the device; under the virtual clock the same command is done when the submit returns.
#[test]
fn commands_take_host_time() {
    let e = Env::with(host(RecoveryPolicy::Replay));
    let s = e.stream(StreamBuilder::new().spin(40_000_000));
    let t0 = Instant::now();
    let done = e.submit(e.q, &[Cmd::render(s)]).unwrap();
    assert_eq!(
        fence_status(&e.f, done),
        0,
        "pending right after the submit"
    );
    // Nobody touches the device while the clock thread runs it.
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(fence_status(&e.f, done), 1, "signalled by the clock alone");
    assert!(t0.elapsed() >= Duration::from_millis(40));
    assert!(e.dev.now_ns() >= 40_000_000, "{}", e.dev.now_ns());

    let v = Env::new();
    let s = v.stream(StreamBuilder::new().spin(40_000_000));
    let done = v.submit(v.q, &[Cmd::render(s)]).unwrap();
    assert_eq!(fence_status(&v.f, done), 1, "virtual time: done at once");
}

/// Two files: one submits a long restartable command, the other faults 20 ms later (host
/// time) while it is still running. The fault finds it in flight: replayed (and then complete)
/// under `replay`, killed innocent under `kill-inflight`.
#[test]
fn a_fault_of_another_file_finds_work_in_flight() {
    use ext::{DRM_ASAHI_EXT_GUILT_INNOCENT as INNOCENT, DRM_ASAHI_EXT_GUILT_NONE as NONE};
    for (policy, status, guilt, replays) in [
        (
            RecoveryPolicy::Replay,
            ext::DRM_ASAHI_EXT_STATUS_COMPLETE,
            NONE,
            1,
        ),
        (
            RecoveryPolicy::KillInflight,
            ext::DRM_ASAHI_EXT_STATUS_KILLED,
            INNOCENT,
            0,
        ),
    ] {
        let victim = Env::with(host(policy));
        let evil = Env::on(victim.dev.clone(), victim.dev.open());
        let s = victim.stream(StreamBuilder::new().spin(300_000_000));
        let (rb, ro) = victim.slot(0);
        let v = victim
            .submit(victim.q, &[Cmd::render(s).info(RESTART, rb, ro)])
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let bad = evil.stream(StreamBuilder::new().store(UNMAPPED, 1));
        let (eb, eo) = evil.slot(0);
        let f = evil
            .submit(evil.q, &[Cmd::render(bad).info(RESTART, eb, eo)])
            .unwrap();
        assert_eq!(wait_status(&evil.f, f), -libc::EIO);
        let r = evil.result(0);
        assert_eq!(r.guilt, ext::DRM_ASAHI_EXT_GUILT_GUILTY);
        wait(&victim.f, &[v], 5000).unwrap();
        let r = victim.result(0);
        assert_eq!(r.status, status, "{policy:?}");
        assert_eq!(r.guilt, guilt, "{policy:?}");
        assert_eq!(r.replay_count, replays, "{policy:?}");
    }
}
