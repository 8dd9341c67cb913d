//! The device server with real clients: several processes on one simulated GPU, clients that
//! die with work in flight, waits that block, and bytes that are not messages.
//!
//! Tests that need a second process re-run this test binary with `SERVER_TEST_CHILD` set: the
//! same test function then plays the child's part and reports on stdout (`CHILD ...` lines).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use agx_sim::stream::StreamBuilder;
use agx_sim::SimConfig;
use agx_sim_server::{Listener, Server};
use agx_winsys::analysis::RenderPass;
use agx_winsys::kit::Context;
use agx_winsys::sim::{Endpoint, Target};
use agx_winsys::{Deadline, Device, DeviceSpec, Guilt, JobOutcome, SyncObj, WaitFlags};

const BOUND: Deadline = Deadline::After(Duration::from_secs(20));
/// A GPU address nothing maps.
const HOLE: u64 = 0x7f00_0000_0000;

/// A server listening on a fresh socket path, with a shared device of `options`.
fn serve(options: &str) -> (Server, Listener) {
    static N: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "agx-ws-server-test-{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    let server = Server::new(SimConfig::from_options(options).unwrap());
    let listener = server.listen(&path).unwrap();
    (server, listener)
}

fn shared(path: &Path) -> Device {
    Device::open(&DeviceSpec::parse(&format!("unix:{}", path.display())).unwrap()).unwrap()
}

/// A pass that runs `ns` of GPU time (restartable when `restartable`).
fn spin(cx: &Context, ns: u64, restartable: bool) -> agx_winsys::cmd::CommandBuffer {
    let mut s = StreamBuilder::new();
    s.spin(ns);
    let mut desc = cx.render(&mut s, RenderPass::new(), &[]).unwrap();
    if !restartable {
        desc.access = None;
    }
    let mut cb = cx.command_buffer();
    cb.render(desc).unwrap();
    cb
}

/// A pass that writes to an address nothing maps: a guilty fault.
fn culprit(cx: &Context) -> agx_winsys::cmd::CommandBuffer {
    let mut s = StreamBuilder::new();
    s.spin(1_000).store(HOLE, 1);
    let desc = cx.render(&mut s, RenderPass::new(), &[]).unwrap();
    let mut cb = cx.command_buffer();
    cb.render(desc).unwrap();
    cb
}

/// The role this process plays, when it is a child.
fn child_role() -> Option<(String, PathBuf)> {
    let role = std::env::var("SERVER_TEST_CHILD").ok()?;
    let path = std::env::var("SERVER_TEST_SOCKET").ok()?;
    Some((role, path.into()))
}

/// Starts this test binary as the child playing `role` of `test` against `socket`.
fn spawn_child(test: &str, role: &str, socket: &Path) -> (Child, BufReader<ChildStdout>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("SERVER_TEST_CHILD", role)
        .env("SERVER_TEST_SOCKET", socket)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

/// The child's next `CHILD ...` line (without the prefix).
fn child_says(out: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert_ne!(
            out.read_line(&mut line).unwrap(),
            0,
            "the child ended early"
        );
        // The test harness may have started the line ("test name ... ").
        if let Some(i) = line.find("CHILD ") {
            return line[i + 6..].trim().to_owned();
        }
    }
}

fn say(msg: &str) {
    let mut o = std::io::stdout().lock();
    writeln!(o, "CHILD {msg}").unwrap();
    o.flush().unwrap();
}

/// Two processes on one server's GPU: one's fault kills the other's work in flight, and each
/// is told its own guilt (guilty in the process that faulted, innocent in the other).
#[test]
fn two_processes_see_each_others_faults() {
    if let Some((role, path)) = child_role() {
        assert_eq!(role, "culprit");
        let dev = shared(&path);
        let cx = Context::new(&dev, 64 * 1024).unwrap();
        let job = cx.queue.submit(&culprit(&cx), &[], &[]).unwrap();
        say("submitted");
        say(&format!("{:?}", job.wait(BOUND).unwrap()));
        return;
    }
    let (_server, listener) = serve("policy=kill-inflight");
    let dev = shared(listener.path());
    let sim = dev.sim_control().unwrap().clone();
    let cx = Context::new(&dev, 64 * 1024).unwrap();
    sim.hold();
    let victim = cx
        .queue
        .submit(&spin(&cx, 2_000_000, true), &[], &[])
        .unwrap();
    let (mut child, mut out) = spawn_child(
        "two_processes_see_each_others_faults",
        "culprit",
        listener.path(),
    );
    assert_eq!(child_says(&mut out), "submitted");
    sim.release();
    let mine = victim.wait(BOUND).unwrap();
    let theirs = child_says(&mut out);
    assert!(child.wait().unwrap().success());
    let JobOutcome::Killed {
        guilt: Guilt::Innocent,
        fault: Some(f),
    } = mine
    else {
        panic!("victim: {mine:?}")
    };
    assert_eq!(
        f.address,
        Some(HOLE),
        "the culprit's fault, seen by the victim"
    );
    assert!(
        theirs.starts_with("Faulted") && theirs.contains("guilt: Guilty"),
        "culprit: {theirs}"
    );
    assert!(
        theirs.contains(&format!("address: Some({HOLE})")),
        "{theirs}"
    );
}

/// A client killed with work in flight: its work is killed with it (file close), the other
/// client's work completes, and the server goes on serving.
#[test]
fn a_killed_client_leaves_others_and_the_server_intact() {
    if let Some((_, path)) = child_role() {
        let dev = shared(&path);
        let cx = Context::new(&dev, 64 * 1024).unwrap();
        let _jobs: Vec<_> = (0..4)
            .map(|_| {
                cx.queue
                    .submit(&spin(&cx, 1_000_000, true), &[], &[])
                    .unwrap()
            })
            .collect();
        say("submitted");
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let (server, listener) = serve("policy=replay");
    let dev = shared(listener.path());
    let sim = dev.sim_control().unwrap().clone();
    let cx = Context::new(&dev, 64 * 1024).unwrap();
    sim.hold();
    let (mut child, mut out) = spawn_child(
        "a_killed_client_leaves_others_and_the_server_intact",
        "victim",
        listener.path(),
    );
    assert_eq!(child_says(&mut out), "submitted");
    let mine = cx
        .queue
        .submit(&spin(&cx, 1_000_000, true), &[], &[])
        .unwrap();
    assert_eq!(sim.pending_commands(), 5);
    child.kill().unwrap();
    child.wait().unwrap();
    // The server sees the connection close and closes the file: its 4 commands end.
    let t0 = Instant::now();
    while sim.pending_commands() != 1 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the child's work lingers"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(sim.stats().killed, 4);
    assert_eq!(server.stats().open, 1);
    sim.release();
    assert_eq!(mine.wait(BOUND).unwrap(), JobOutcome::Complete);
    // A new client gets served.
    let peer = shared(listener.path());
    let pcx = Context::new(&peer, 64 * 1024).unwrap();
    let j = pcx
        .queue
        .submit(&spin(&pcx, 1_000, true), &[], &[])
        .unwrap();
    assert_eq!(j.wait(BOUND).unwrap(), JobOutcome::Complete);
    assert_eq!(server.stats().panics, 0);
}

/// A wait that blocks (for ever, as far as it knows) stalls neither another client nor
/// another thread of the same file.
#[test]
fn a_blocked_wait_stalls_no_one() {
    let (_server, listener) = serve("");
    let a = shared(listener.path());
    let b = shared(listener.path());
    let gate = std::sync::Arc::new(SyncObj::new(&a, false).unwrap());
    let waiter = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            gate.wait(
                None,
                Deadline::After(Duration::from_secs(30)),
                WaitFlags {
                    for_submit: true,
                    ..Default::default()
                },
            )
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    for dev in [&b, &a] {
        let cx = Context::new(dev, 64 * 1024).unwrap();
        let j = cx.queue.submit(&spin(&cx, 10_000, true), &[], &[]).unwrap();
        assert_eq!(j.wait(BOUND).unwrap(), JobOutcome::Complete);
    }
    assert!(!waiter.is_finished(), "the wait is still blocked");
    gate.signal(None).unwrap();
    waiter.join().unwrap().unwrap();
}

/// One frame: header, payload, and `fds` attached.
fn frame(kind: u16, tag: u64, nfds: u16, len: u32, payload: &[u8]) -> Vec<u8> {
    let h = agx_sim_server::wire::Header {
        magic: agx_sim_server::wire::MAGIC,
        kind,
        nfds,
        tag,
        len,
        pad: 0,
    };
    let mut v = bytemuck::bytes_of(&h).to_vec();
    v.extend_from_slice(payload);
    v
}

fn hello() -> Vec<u8> {
    let (k, p) = agx_sim_server::msg::Request::Hello(agx_sim_server::Target::Shared).encode();
    frame(k, 1, 0, p.len() as u32, &p)
}

/// Garbage on the socket: random bytes, truncated frames, lying lengths and counts, missing
/// and surplus fds, a client that vanishes mid-frame or mid-wait. Each bad connection is
/// closed (and counted when it sent a bad message); a good client's work goes on between
/// them, and the server never panics.
#[test]
fn garbage_on_the_socket_harms_no_one() {
    use agx_sim_server::wire::{kind, Ioctl, Segment};
    let (server, listener) = serve("");
    let good = shared(listener.path());
    let cx = Context::new(&good, 64 * 1024).unwrap();
    let check_good = || {
        let j = cx.queue.submit(&spin(&cx, 10_000, true), &[], &[]).unwrap();
        assert_eq!(j.wait(BOUND).unwrap(), JobOutcome::Complete);
    };
    let connect = || UnixStream::connect(listener.path()).unwrap();
    let send = |s: &UnixStream, bytes: &[u8]| {
        let _ = (&*s).write_all(bytes);
    };
    let with_fds = |s: &UnixStream, bytes: &[u8], n: usize| {
        let (r, _w) = rustix::pipe::pipe().unwrap();
        let fds: Vec<_> = (0..n).map(|_| std::os::fd::AsFd::as_fd(&r)).collect();
        let _ = agx_sim_server_send_raw(s, bytes, &fds);
    };
    // The server has closed `s` (read gives EOF or an error, after any refusal).
    let closed = |s: &UnixStream| {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match std::io::Read::read(&mut &*s, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    let refused_before = server.stats().refused;
    let mut refusals = 0;

    // 1. Random bytes, then vanish (a deterministic xorshift stream).
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..32 {
        let bytes: Vec<u8> = (0..200)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let s = connect();
        send(&s, &bytes);
        closed(&s);
        refusals += 1;
    }
    check_good();
    // 2. A truncated header, then vanish (no refusal: nothing to answer).
    let s = connect();
    send(&s, &hello()[..10]);
    drop(s);
    // 3. A length that lies: 1 MiB promised, 10 bytes sent, then vanish.
    let s = connect();
    send(&s, &frame(kind::HELLO, 1, 0, 1 << 20, &[0; 10]));
    drop(s);
    // 4. A length past the limit.
    let s = connect();
    send(&s, &frame(kind::HELLO, 1, 0, u32::MAX, &[]));
    closed(&s);
    refusals += 1;
    // 5. Fds announced but missing; fds attached beyond the limit.
    let s = connect();
    send(&s, &frame(kind::HELLO, 1, 2, 0, &[]));
    closed(&s);
    refusals += 1;
    let s = connect();
    with_fds(&s, &hello(), 8);
    closed(&s);
    refusals += 1;
    check_good();
    // 6. After a good hello: an ioctl whose counts lie, and one with a surplus fd.
    let mut ioctl = bytemuck::bytes_of(&Ioctl {
        cmd: agx_uapi::drm::DRM_IOCTL_SYNCOBJ_WAIT,
        arg_len: 40,
        nsegs: 1,
        nfds: 0,
    })
    .to_vec();
    ioctl.extend_from_slice(&[0; 40]);
    ioctl.extend_from_slice(bytemuck::bytes_of(&Segment {
        addr: 0x1000,
        len: 1 << 40,
        flags: agx_sim_server::wire::seg::IN,
        pad: 0,
    }));
    let s = connect();
    send(&s, &hello());
    send(&s, &frame(kind::IOCTL, 2, 0, ioctl.len() as u32, &ioctl));
    closed(&s);
    refusals += 1;
    let s = connect();
    send(&s, &hello());
    let ok_ioctl = &ioctl[..16 + 40];
    let mut no_segs = ok_ioctl.to_vec();
    no_segs[8..12].copy_from_slice(&0u32.to_ne_bytes());
    with_fds(
        &s,
        &frame(kind::IOCTL, 2, 1, no_segs.len() as u32, &no_segs),
        1,
    );
    closed(&s);
    refusals += 1;
    // 7. A well-formed request the device refuses is answered, not a protocol error: an
    // argument of the wrong size (EFAULT), then the connection stays usable.
    let s = connect();
    send(&s, &hello());
    let mut short = no_segs.clone();
    short[4..8].copy_from_slice(&8u32.to_ne_bytes());
    short.truncate(16 + 8);
    send(&s, &frame(kind::IOCTL, 3, 0, short.len() as u32, &short));
    let mut r = BufReader::new(&s);
    let welcome = agx_sim_server::transport::recv(r.get_ref()).unwrap();
    assert_eq!(welcome.kind, kind::WELCOME);
    let done = agx_sim_server::transport::recv(r.get_mut()).unwrap();
    let reply = agx_sim_server::msg::Reply::decode(done.kind, &done.payload, 0).unwrap();
    assert!(
        matches!(reply, agx_sim_server::msg::Reply::IoctlDone { errno, .. } if errno == libc::EFAULT),
        "{reply:?}"
    );
    drop(s);
    // 8. A client that vanishes in the middle of a wait that would block for ever.
    let s = connect();
    send(&s, &hello());
    let h = good_handle_wait_frame();
    send(&s, &h);
    std::thread::sleep(Duration::from_millis(50));
    drop(s);
    check_good();

    let t0 = Instant::now();
    while server.stats().refused < refused_before + refusals || server.stats().open != 1 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{:?}, {refusals} refusals expected",
            server.stats()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.stats().panics, 0);
    check_good();
}

/// A `SYNCOBJ_WAIT` on handle 1 (which a fresh file does not have: it fails at once) would
/// not block; a `TIMELINE_WAIT` with `WAIT_FOR_SUBMIT` on a syncobj created in the same
/// connection would. Here: `SYNCOBJ_CREATE` then that wait, as two frames.
fn good_handle_wait_frame() -> Vec<u8> {
    use agx_sim_server::msg::{IoctlRequest, Request, Segment};
    use agx_uapi::drm::*;
    let create = Request::Ioctl(IoctlRequest {
        cmd: DRM_IOCTL_SYNCOBJ_CREATE,
        arg: bytemuck::bytes_of(&drm_syncobj_create::default()).to_vec(),
        segments: Vec::new(),
        fd_numbers: Vec::new(),
    });
    let handles = [1u32];
    let wait = drm_syncobj_wait {
        handles: 0x10_0000,
        timeout_nsec: i64::MAX,
        count_handles: 1,
        flags: DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT,
        ..Default::default()
    };
    let wait = Request::Ioctl(IoctlRequest {
        cmd: DRM_IOCTL_SYNCOBJ_WAIT,
        arg: bytemuck::bytes_of(&wait).to_vec(),
        segments: vec![Segment {
            addr: 0x10_0000,
            len: 4,
            flags: agx_sim_server::wire::seg::IN,
            data: bytemuck::bytes_of(&handles).to_vec(),
        }],
        fd_numbers: Vec::new(),
    });
    let mut out = Vec::new();
    for (tag, r) in [(2, create), (3, wait)] {
        let (k, p) = r.encode();
        out.extend(frame(k, tag, 0, p.len() as u32, &p));
    }
    out
}

/// Raw bytes with fds attached (for frames that lie about them).
fn agx_sim_server_send_raw(
    s: &UnixStream,
    bytes: &[u8],
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> rustix::io::Result<usize> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(16))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
    rustix::net::sendmsg(
        s,
        &[std::io::IoSlice::new(bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
}

/// `unix:PATH,new,...` makes a private device with those options; its peers join it.
#[test]
fn private_devices_and_their_peers() {
    let (_server, listener) = serve("policy=replay");
    let spec = format!(
        "unix:{},new,policy=kill-inflight,replay-limit=7",
        listener.path().display()
    );
    let dev = Device::open(&DeviceSpec::parse(&spec).unwrap()).unwrap();
    let sim = dev.sim_control().unwrap();
    let c = sim.config();
    assert_eq!(c.policy, agx_winsys::sim::RecoveryPolicy::KillInflight);
    assert_eq!(c.replay_limit, 7);
    let peer = sim.open_peer().unwrap();
    // The peer shares the GPU (the clock held by one holds the other's work), not the file.
    sim.hold();
    let pcx = Context::new(&peer, 64 * 1024).unwrap();
    let j = pcx
        .queue
        .submit(&spin(&pcx, 1_000, true), &[], &[])
        .unwrap();
    assert_eq!(j.poll().unwrap(), None);
    sim.release();
    assert_eq!(j.wait(BOUND).unwrap(), JobOutcome::Complete);
    // The shared device is another GPU.
    let other = shared(listener.path());
    assert_eq!(other.sim_control().unwrap().stats().submits, 0);
    assert_eq!(sim.stats().submits, 1);
    // Bad options are refused with the parser's reason.
    let bad = Endpoint::Path(listener.path().to_owned());
    let e = agx_winsys::sim::open_remote(&bad, Target::New("policy=sideways".into()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown policy"), "{e}");
    let e = agx_winsys::sim::open_remote(&bad, Target::Join(999))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no device 999"), "{e}");
}

/// Waits the server answers at once (their fences signalled) and waits it hands to a thread
/// (that time out) both leave the caller's argument as the kernel does: its own timeout, the
/// index written.
#[test]
fn waits_leave_their_arguments_as_the_kernel_does() {
    use agx_uapi::drm::*;
    let (_server, listener) = serve("");
    let dev = shared(listener.path());
    let done = SyncObj::new(&dev, true).unwrap();
    let pending = SyncObj::new(&dev, false).unwrap();
    let handles = [pending.handle(), done.handle()];
    let deadline = agx_sim::sync::fence::monotonic_ns() as i64 + 20_000_000;
    let mut a = drm_syncobj_wait {
        handles: handles.as_ptr() as u64,
        timeout_nsec: deadline,
        count_handles: 2,
        flags: DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT,
        first_signaled: 77,
        ..Default::default()
    };
    let k = dev.kernel();
    k.ioctl(DRM_IOCTL_SYNCOBJ_WAIT, bytemuck::bytes_of_mut(&mut a))
        .unwrap();
    assert_eq!((a.timeout_nsec, a.first_signaled), (deadline, 1));
    a.flags |= DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL;
    a.first_signaled = 77;
    let e = k
        .ioctl(DRM_IOCTL_SYNCOBJ_WAIT, bytemuck::bytes_of_mut(&mut a))
        .unwrap_err();
    assert_eq!(e, rustix::io::Errno::TIME);
    assert_eq!((a.timeout_nsec, a.first_signaled), (deadline, 77));
}

/// Fd numbers in ioctl arguments that are not open, or not what the ioctl wants, get the same
/// errnos through the server as from the embedded device (the server resolves only fds the
/// request carries, so it can never mistake one of its own for the caller's).
#[test]
fn bad_fds_get_the_same_errnos_as_embedded() {
    use agx_uapi::drm::*;
    use std::os::fd::AsRawFd;
    let (_server, listener) = serve("");
    let remote = shared(listener.path());
    let embedded = Device::open(&DeviceSpec::parse("sim").unwrap()).unwrap();
    let (pipe_r, _pipe_w) = rustix::pipe::pipe().unwrap();
    let pipe = pipe_r.as_raw_fd();
    // A number surely not open in this process.
    let closed = 1_000_000;
    let errnos = |dev: &Device| {
        let k = dev.kernel();
        let obj = SyncObj::new(dev, true).unwrap();
        let mut out = Vec::new();
        for fd in [-1, closed, pipe] {
            let mut a = drm_prime_handle {
                fd,
                ..Default::default()
            };
            out.push(k.ioctl(DRM_IOCTL_PRIME_FD_TO_HANDLE, bytemuck::bytes_of_mut(&mut a)));
            let mut a = drm_syncobj_handle {
                fd,
                ..Default::default()
            };
            out.push(k.ioctl(
                DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE,
                bytemuck::bytes_of_mut(&mut a),
            ));
            let mut a = drm_syncobj_handle {
                fd,
                handle: obj.handle(),
                flags: DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
                ..Default::default()
            };
            out.push(k.ioctl(
                DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE,
                bytemuck::bytes_of_mut(&mut a),
            ));
            let mut a = drm_syncobj_eventfd {
                fd,
                handle: obj.handle(),
                ..Default::default()
            };
            out.push(k.ioctl(DRM_IOCTL_SYNCOBJ_EVENTFD, bytemuck::bytes_of_mut(&mut a)));
        }
        out
    };
    let want = errnos(&embedded);
    assert!(want.iter().all(Result::is_err), "{want:?}");
    assert_eq!(errnos(&remote), want);
}
