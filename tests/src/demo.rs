//! `demo`: a small but real workload through the winsys. Two contexts (each its own VM and
//! queue) render and compute, consuming each other's results through sync objects; every
//! result is checked byte for byte.

use std::time::{Duration, Instant};

use agx_winsys::cmd::CommandBuffer;
use agx_winsys::kit::Context;
use agx_winsys::vm::{Access, VaClass};
use agx_winsys::{Deadline, Device, Job, JobOutcome, SyncObj, SyncPoint};

use crate::DeviceArg;

const LEN: u64 = 256 * 1024;

struct Step {
    name: &'static str,
    ctx: &'static str,
    cb: CommandBuffer,
}

pub fn run(arg: &DeviceArg) -> u8 {
    match demo(arg) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("demo FAILED: {e}");
            1
        }
    }
}

fn check(what: &str, got: &[u8], want: u8) -> Result<(), String> {
    match got.iter().position(|&b| b != want) {
        None => Ok(()),
        Some(i) => Err(format!(
            "{what}: byte {i} is {:#04x}, expected {want:#04x}",
            got[i]
        )),
    }
}

fn demo(arg: &DeviceArg) -> Result<(), String> {
    let e = |e: agx_winsys::Error| e.to_string();
    let dev = Device::open(&arg.spec().map_err(e)?).map_err(e)?;
    println!(
        "device: {} ({})",
        dev.params().gpu_name(),
        if dev.is_simulated() {
            "simulated"
        } else {
            "render node"
        }
    );
    let t0 = dev.gpu_time_ns().map_err(e)?;
    let wall = Instant::now();
    let a = Context::new(&dev, 4 << 20).map_err(e)?;
    let b = Context::new(&dev, 4 << 20).map_err(e)?;
    // Each context also maps the other's memory (read-write) into its own VM.
    let a_in_b =
        b.vm.bind(&a.data.bo, Access::READ | Access::WRITE, VaClass::General)
            .map_err(e)?;
    let b_in_a =
        a.vm.bind(&b.data.bo, Access::READ | Access::WRITE, VaClass::General)
            .map_err(e)?;
    let in_b = |va: u64| a_in_b + (va - a.data.va);
    let in_a = |va: u64| b_in_a + (va - b.data.va);

    // Context A: a texture cleared to 0x11, then a draw that copies it into its render target.
    let (tex, rt_a) = (a.alloc(LEN).map_err(e)?, a.alloc(LEN).map_err(e)?);
    let mut cb1 = a.command_buffer();
    cb1.render(a.clear_pass(tex, LEN, 0x1111_1111).map_err(e)?)
        .map_err(|x| x.to_string())?;
    cb1.render(a.draw_pass(rt_a, tex, LEN).map_err(e)?)
        .map_err(|x| x.to_string())?;
    // Context B: a compute pass copies A's render target, then a blend pass blends the copy
    // onto B's render target (pre-filled with 0x33).
    let (copy_b, rt_b) = (b.alloc(LEN).map_err(e)?, b.alloc(LEN).map_err(e)?);
    b.write(rt_b, &vec![0x33; LEN as usize]).map_err(e)?;
    let mut cb2 = b.command_buffer();
    cb2.compute(b.compute_copy(copy_b, in_b(rt_a), LEN).map_err(e)?)
        .map_err(|x| x.to_string())?;
    cb2.render(b.blend_pass(rt_b, copy_b, LEN).map_err(e)?)
        .map_err(|x| x.to_string())?;
    // Context A again: accumulates B's result into a buffer of its own (pre-filled with 1).
    let acc = a.alloc(LEN).map_err(e)?;
    a.write(acc, &vec![1; LEN as usize]).map_err(e)?;
    let mut cb3 = a.command_buffer();
    cb3.compute(a.compute_accumulate(acc, in_a(rt_b), LEN).map_err(e)?)
        .map_err(|x| x.to_string())?;

    let steps = [
        Step {
            name: "clear texture + draw into render target",
            ctx: "A",
            cb: cb1,
        },
        Step {
            name: "compute copy of A's target + blend onto B's target",
            ctx: "B",
            cb: cb2,
        },
        Step {
            name: "compute accumulate of B's target",
            ctx: "A",
            cb: cb3,
        },
    ];
    let s1 = SyncObj::new(&dev, false).map_err(e)?;
    let s2 = SyncObj::new(&dev, false).map_err(e)?;
    let ja = a
        .queue
        .submit(&steps[0].cb, &[], &[SyncPoint::binary(&s1)])
        .map_err(e)?;
    let jb = b
        .queue
        .submit(
            &steps[1].cb,
            &[SyncPoint::binary(&s1)],
            &[SyncPoint::binary(&s2)],
        )
        .map_err(e)?;
    let jc = a
        .queue
        .submit(&steps[2].cb, &[SyncPoint::binary(&s2)], &[])
        .map_err(e)?;
    let jobs: [&Job; 3] = [&ja, &jb, &jc];
    let deadline = Deadline::After(Duration::from_secs(30));
    println!();
    println!(
        "{:<4} {:<55} {:<9} {:<28} outcome",
        "ctx", "job", "commands", "restartable"
    );
    for (step, job) in steps.iter().zip(jobs) {
        let outcome = job.wait(deadline).map_err(e)?;
        let verdicts: Vec<String> = step
            .cb
            .commands()
            .iter()
            .map(|c| {
                let v = c.verdict();
                if v.restartable() {
                    "yes".to_string()
                } else {
                    format!("no ({})", v.reasons)
                }
            })
            .collect();
        println!(
            "{:<4} {:<55} {:<9} {:<28} {outcome:?}",
            step.ctx,
            step.name,
            job.seqnos().count(),
            verdicts.join(", ")
        );
        if outcome != JobOutcome::Complete {
            return Err(format!("{}: {outcome:?}", step.name));
        }
    }
    check("A's texture", &a.read(tex, LEN as usize).map_err(e)?, 0x11)?;
    check(
        "A's render target",
        &a.read(rt_a, LEN as usize).map_err(e)?,
        0x11,
    )?;
    check("B's copy", &b.read(copy_b, LEN as usize).map_err(e)?, 0x11)?;
    // blend = average rounded up: (0x33 + 0x11 + 1) / 2 = 0x22
    check(
        "B's blended target",
        &b.read(rt_b, LEN as usize).map_err(e)?,
        0x22,
    )?;
    check(
        "A's accumulator",
        &a.read(acc, LEN as usize).map_err(e)?,
        0x23,
    )?;
    let gpu_ns = dev.gpu_time_ns().map_err(e)? - t0;
    println!();
    println!(
        "verified {} KiB in 5 buffers; GPU time {:.1} us (virtual), wall time {:.1} ms",
        5 * LEN / 1024,
        gpu_ns as f64 / 1000.0,
        wall.elapsed().as_secs_f64() * 1000.0
    );
    println!("demo: OK");
    Ok(())
}
