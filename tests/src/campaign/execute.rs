//! Running a scenario on a fresh simulated GPU (with or without its faults).

use super::*;

/// What one run of a scenario produced.
#[derive(Debug, Default)]
pub(super) struct Run {
    /// Per context, per job: the outcome (refused submits included).
    pub(super) outcomes: Vec<Vec<Option<JobOutcome>>>,
    /// Per context, per job: every command restartable.
    pub(super) restartable: Vec<Vec<bool>>,
    pub(super) snapshots: Vec<Vec<u8>>,
    pub(super) queue_guilt: Vec<Option<Option<Guilt>>>,
    /// Invariant 1 violations found while running.
    pub(super) bound_violations: Vec<String>,
    pub(super) accepted: u64,
    pub(super) signalled: u64,
    pub(super) recoveries: u64,
    pub(super) recovery_span_ns: u64,
    pub(super) recoveries_closed: u64,
    pub(super) replays: u64,
    pub(super) stw_ns: u64,
    pub(super) innocent_redone_ns: u64,
    pub(super) innocent_lost_ns: u64,
}

pub(super) fn spec(policy: RecoveryPolicy) -> String {
    let mut s = format!(
        "sim:policy={},replay-limit={REPLAY_LIMIT},hang-timeout-ms={HANG_TIMEOUT_MS}",
        policy.name()
    );
    if let Some((reset, per)) = STW_MODEL_US.get() {
        s += &format!(",stw-reset-us={reset},stw-per-command-us={per}");
    }
    s
}

/// Stop-the-world model constants (reset, per command; µs) of every campaign device of this
/// process, when not the simulator's defaults (compare-policies' sensitivity options).
pub(super) static STW_MODEL_US: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();

pub(super) fn build_cmd(
    ctx: &Context,
    bufs: &[u64],
    len: u64,
    cmd: &Cmd,
    fault: Option<FaultOp>,
    cb: &mut CommandBuffer,
) -> agx_winsys::Result<()> {
    let (dst, src) = (bufs[cmd.dst], bufs[cmd.src]);
    // The third buffer, a temporary of `Transform`.
    let tmp = bufs[(0..BUFFERS)
        .find(|&b| b != cmd.dst && b != cmd.src)
        .expect("four buffers")];
    // `Shift` moves the buffer by a few cache lines, less than a chunk: the ranges overlap.
    let shift = 64 * (1 + u64::from(cmd.pattern) % 32);
    let mut s = StreamBuilder::new();
    let spin_first = matches!(
        cmd.op,
        Op::Clear | Op::Draw | Op::Copy | Op::Blend | Op::Accumulate
    );
    if cmd.spin_ns > 0 && spin_first {
        s.spin(cmd.spin_ns);
    }
    match cmd.op {
        Op::Clear => s.fill(dst, len, cmd.pattern),
        Op::Draw => s.fill(dst, len, 0).copy(dst, src, len),
        Op::Copy => s.copy(dst, src, len),
        Op::Blend => s.rmw(dst, src, len, RmwFn::Average),
        Op::Accumulate | Op::Bindless => s.rmw(dst, src, len, RmwFn::Add),
        Op::Count => (0..4).fold(&mut s, |s, i| s.atomic_add(dst + 8 * i, 1 + i)),
        Op::Shift => s.copy(dst + shift, dst, len - shift),
        Op::Transform => s
            .copy(tmp, dst, len)
            .rmw(tmp, src, len, RmwFn::Add)
            .copy(dst, tmp, len),
    };
    if cmd.spin_ns > 0 && !spin_first {
        s.spin(cmd.spin_ns);
    }
    match fault {
        Some(FaultOp::UnmappedRead) => {
            s.load(HOLE, 64);
        }
        Some(FaultOp::UnmappedWrite) => {
            s.store(HOLE + 8, 1);
        }
        Some(FaultOp::ReadonlyWrite) => {
            s.store(ctx.code.va, 1);
        }
        Some(FaultOp::Hang) => {
            s.hang();
        }
        None => {}
    }
    let dreg = Region::va(dst, len);
    let sreg = Region::va(src, len);
    match cmd.op {
        Op::Clear | Op::Draw | Op::Blend => {
            let mut pass = match cmd.op {
                Op::Blend => RenderPass::new()
                    .color(ColorAttachment::new(dreg, LoadOp::Load, StoreOp::Store).blended()),
                _ => RenderPass::new().color(ColorAttachment::new(
                    dreg,
                    LoadOp::Clear,
                    StoreOp::Store,
                )),
            };
            if cmd.op != Op::Clear {
                pass = pass.shader_access(ShaderAccessKind::Read, sreg);
            }
            cb.render(ctx.render(&mut s, pass, &[(dst, len)])?)?;
        }
        Op::Copy => {
            let access = ComputeCommand::new().dispatch(Dispatch::new().read(sreg).overwrite(dreg));
            cb.compute(ctx.compute(&mut s, Some(access))?)?;
        }
        Op::Accumulate => {
            let access =
                ComputeCommand::new().dispatch(Dispatch::new().read(sreg).read_write(dreg));
            cb.compute(ctx.compute(&mut s, Some(access))?)?;
        }
        Op::Count => {
            let counters = Region::va(dst, 32);
            let access = ComputeCommand::new().dispatch(Dispatch::new().atomic(counters));
            cb.compute(ctx.compute(&mut s, Some(access))?)?;
        }
        Op::Shift => {
            let access = ComputeCommand::new().dispatch(
                Dispatch::new()
                    .read(Region::va(dst, len - shift))
                    .overwrite(Region::va(dst + shift, len - shift)),
            );
            cb.compute(ctx.compute(&mut s, Some(access))?)?;
        }
        Op::Transform => {
            let treg = Region::va(tmp, len);
            let access = ComputeCommand::new()
                .dispatch(Dispatch::new().read(dreg).overwrite(treg))
                .dispatch(Dispatch::new().read(sreg).read_write(treg))
                .dispatch(Dispatch::new().read(treg).overwrite(dreg));
            cb.compute(ctx.compute(&mut s, Some(access))?)?;
        }
        Op::Bindless => {
            let pass = RenderPass::new().shader_unknown();
            cb.render(ctx.render(&mut s, pass, &[])?)?;
        }
    }
    Ok(())
}

pub(super) fn execute(sc: &Scenario, policy: RecoveryPolicy) -> Result<Run, String> {
    let e = |e: agx_winsys::Error| e.to_string();
    let dev0 = Device::open(&DeviceSpec::parse(&spec(policy)).map_err(e)?).map_err(e)?;
    let sim = dev0.sim_control().ok_or("no simulator")?.clone();
    let mut devs = Vec::new();
    let mut ctxs = Vec::new();
    let mut bufs = Vec::new();
    let len = sc.buf_len;
    for (ci, c) in sc.ctxs.iter().enumerate() {
        let d = if ci == 0 {
            dev0.clone()
        } else {
            sim.open_peer().map_err(e)?
        };
        let ctx = Context::new(&d, len * BUFFERS as u64).map_err(e)?;
        // Mapped now: after a firmware crash GEM_MMAP_OFFSET (a driver ioctl) fails, and
        // building a command writes its stream into the code arena.
        ctx.code.bo.map().map_err(e)?;
        let mut b = Vec::new();
        for i in 0..BUFFERS {
            let va = ctx.alloc(len).map_err(e)?;
            ctx.write(va, &vec![c.fill.wrapping_add(i as u8 * 29); len as usize])
                .map_err(e)?;
            b.push(va);
        }
        devs.push(d);
        ctxs.push(ctx);
        bufs.push(b);
    }
    let mut run = Run {
        outcomes: sc.ctxs.iter().map(|c| vec![None; c.jobs.len()]).collect(),
        restartable: sc.ctxs.iter().map(|c| vec![true; c.jobs.len()]).collect(),
        ..Run::default()
    };
    let mut jobs: BTreeMap<(usize, usize), agx_winsys::Job> = BTreeMap::new();
    // Out-fences of jobs others wait for.
    let mut outs: BTreeMap<(usize, usize), SyncObj> = BTreeMap::new();
    let waited: Vec<(usize, usize)> = sc
        .ctxs
        .iter()
        .flat_map(|c| c.jobs.iter().filter_map(|j| j.wait_on))
        .collect();
    for w in 0..sc.waves {
        sim.hold();
        for (ci, c) in sc.ctxs.iter().enumerate() {
            if let Some((iw, inj)) = c.inject {
                if iw == w {
                    let i = match inj {
                        Inject::Fault(after_ns) => Injection::Fault { after_ns },
                        Inject::Hang(after_ns) => Injection::Hang { after_ns },
                    };
                    // A crashed device refuses; the injection is moot then.
                    let _ = ctxs[ci].queue.inject(i);
                }
            }
        }
        for &(ci, ji) in sc
            .order
            .iter()
            .filter(|&&(c, j)| sc.ctxs[c].jobs[j].wave == w)
        {
            let spec = &sc.ctxs[ci].jobs[ji];
            let ctx = &ctxs[ci];
            let mut cb = ctx.command_buffer();
            for (k, cmd) in spec.cmds.iter().enumerate() {
                let last = k + 1 == spec.cmds.len();
                build_cmd(
                    ctx,
                    &bufs[ci],
                    len,
                    cmd,
                    spec.fault.filter(|_| last),
                    &mut cb,
                )
                .map_err(e)?;
            }
            run.restartable[ci][ji] = cb.commands().iter().all(|c| c.verdict().restartable());
            // The in-fence: the other context's out-fence, through a sync_file.
            let gate = match spec.wait_on.and_then(|k| outs.get(&k)) {
                Some(src) => match src.export_sync_file(None) {
                    Ok(fd) => {
                        let g = SyncObj::new(&devs[ci], false).map_err(e)?;
                        g.import_sync_file(fd.as_fd(), None).map_err(e)?;
                        Some(g)
                    }
                    Err(_) => None,
                },
                None => None,
            };
            let out = if waited.contains(&(ci, ji)) {
                Some(SyncObj::new(&devs[ci], false).map_err(e)?)
            } else {
                None
            };
            let waits: Vec<SyncPoint<'_>> = gate.iter().map(SyncPoint::binary).collect();
            let signals: Vec<SyncPoint<'_>> = out.iter().map(SyncPoint::binary).collect();
            match ctx.queue.submit(&cb, &waits, &signals) {
                Ok(j) => {
                    run.accepted += 1;
                    jobs.insert((ci, ji), j);
                    if let Some(o) = out {
                        outs.insert((ci, ji), o);
                    }
                }
                Err(err) => match JobOutcome::from_submit_error(&err) {
                    Some(o) => run.outcomes[ci][ji] = Some(o),
                    None => return Err(format!("ctx{ci} job{ji}: submit failed: {err}")),
                },
            }
        }
        if sc.crash == Some((w, true)) {
            sim.crash_firmware();
        }
        sim.release();
        if sc.crash == Some((w, false)) {
            sim.crash_firmware();
        }
    }
    for (&(ci, ji), j) in &jobs {
        let t = Instant::now();
        match j.wait(Deadline::After(BOUND)) {
            Ok(o) => {
                run.outcomes[ci][ji] = Some(o);
                let (tl, p) = j.fence();
                match tl.status(Some(p)) {
                    Ok(FenceStatus::Pending) | Err(_) => run.bound_violations.push(format!(
                        "ctx{ci} job{ji}: outcome {o:?} but fence not signalled"
                    )),
                    Ok(_) => run.signalled += 1,
                }
            }
            Err(err) => run.bound_violations.push(format!(
                "ctx{ci} job{ji}: wait failed after {:?}: {err}",
                t.elapsed()
            )),
        }
    }
    let pending = sim.pending_commands();
    if pending != 0 {
        run.bound_violations
            .push(format!("{pending} command(s) still pending on the device"));
    }
    for ctx in &ctxs {
        run.snapshots.push(ctx.snapshot().map_err(e)?);
        run.queue_guilt
            .push(ctx.queue.state().ok().map(|s| s.guilt));
    }
    let st = sim.stats();
    run.recoveries = st.recoveries;
    run.recovery_span_ns = st.recovery_span_ns;
    run.recoveries_closed = st.recoveries_closed;
    run.replays = st.replays;
    run.stw_ns = st.recovery_ns;
    run.innocent_redone_ns = st.innocent_redone_ns;
    run.innocent_lost_ns = st.innocent_lost_ns;
    Ok(run)
}
