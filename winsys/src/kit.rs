//! Workload kit for the simulated GPU: a context (VM, queue, a data arena and a code arena),
//! and render/compute recipes that emit the simulator's command stream *and* the access
//! description the restartability analysis reads, from one description, so the two always
//! agree. Used by the demo, the fault suite, benchmarks and tests; a real driver does not need
//! it (its streams come from its compiler).

use std::sync::Mutex;

use agx_sim::stream::{RmwFn, StreamBuilder};

use crate::analysis::{
    ColorAttachment, ComputeCommand, Dispatch, LoadOp, Region, RenderPass, ShaderAccessKind,
    StoreOp, Va,
};
use crate::cmd::{Attachment, CommandBuffer, ComputeDesc, RenderDesc};
use crate::error::{Error, Result};
use crate::vm::{Access, VaClass};
use crate::{Bo, BoFlags, Device, Priority, Queue, Vm};

/// A bump allocator over one bound BO.
#[derive(Debug)]
pub struct Arena {
    pub bo: Bo,
    pub va: u64,
    next: Mutex<u64>,
}

impl Arena {
    fn new(vm: &Vm, size: u64, access: Access) -> Result<Arena> {
        let bo = Bo::new(vm.device(), size, BoFlags::WRITEBACK, None)?;
        let va = vm.bind(&bo, access, VaClass::General)?;
        Ok(Arena {
            bo,
            va,
            next: Mutex::new(0),
        })
    }

    /// `len` bytes, 64-byte aligned.
    pub fn alloc(&self, len: u64) -> Result<u64> {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let off = next.next_multiple_of(64);
        if off + len > self.bo.size() {
            return Err(Error::OutOfVa { size: len });
        }
        *next = off + len;
        Ok(self.va + off)
    }

    /// Forgets every allocation (the memory is reused from the start).
    pub fn reset(&self) {
        *self.next.lock().unwrap_or_else(|e| e.into_inner()) = 0;
    }

    fn offset(&self, va: u64, len: usize) -> Result<u64> {
        let off = va
            .checked_sub(self.va)
            .ok_or(Error::InvalidArgument("address outside the arena"))?;
        if off + len as u64 > self.bo.size() {
            return Err(Error::InvalidArgument("range outside the arena"));
        }
        Ok(off)
    }
}

/// One GL-context-like unit of work submission: a VM, a queue, and memory.
#[derive(Debug)]
pub struct Context {
    pub dev: Device,
    pub vm: Vm,
    pub queue: Queue,
    pub data: Arena,
    pub code: Arena,
}

impl Context {
    /// A context with `data_size` bytes of read-write memory and 1 MiB of read-only stream
    /// memory.
    pub fn new(dev: &Device, data_size: u64) -> Result<Context> {
        let vm = Vm::new(dev)?;
        let queue = Queue::new(&vm, Priority::Medium)?;
        let data = Arena::new(&vm, data_size, Access::READ | Access::WRITE)?;
        let code = Arena::new(&vm, 1 << 20, Access::READ)?;
        Ok(Context {
            dev: dev.clone(),
            vm,
            queue,
            data,
            code,
        })
    }

    /// Allocates data memory.
    pub fn alloc(&self, len: u64) -> Result<u64> {
        self.data.alloc(len)
    }

    /// CPU write into data memory.
    pub fn write(&self, va: u64, bytes: &[u8]) -> Result<()> {
        self.data
            .bo
            .write(self.data.offset(va, bytes.len())?, bytes)
    }

    /// CPU read of data memory.
    pub fn read(&self, va: u64, len: usize) -> Result<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.data.bo.read(self.data.offset(va, len)?, &mut v)?;
        Ok(v)
    }

    /// The whole data arena (for memory comparisons).
    pub fn snapshot(&self) -> Result<Vec<u8>> {
        let mut v = vec![0u8; self.data.bo.size() as usize];
        self.data.bo.read(0, &mut v)?;
        Ok(v)
    }

    /// Places a stream in code memory; returns its address and length.
    pub fn stream(&self, s: &mut StreamBuilder) -> Result<(u64, u64)> {
        let bytes = s.end();
        let va = self.code.alloc(bytes.len() as u64)?;
        let off = self.code.offset(va, bytes.len())?;
        self.code.bo.write(off, &bytes)?;
        Ok((va, bytes.len() as u64))
    }

    /// An empty command buffer with this device's attachment limit.
    pub fn command_buffer(&self) -> CommandBuffer {
        CommandBuffer::new(self.dev.params().max_attachments)
    }

    /// A render pass running `stream`, described by `access`.
    pub fn render(
        &self,
        s: &mut StreamBuilder,
        access: RenderPass<Va>,
        attachments: &[(u64, u64)],
    ) -> Result<RenderDesc> {
        let (va, _) = self.stream(s)?;
        Ok(RenderDesc {
            width_px: 64,
            height_px: 64,
            utile_width_px: 16,
            utile_height_px: 16,
            sample_size_bytes: 4,
            vdm_ctrl_stream_base: va,
            fragment_attachments: attachments
                .iter()
                .map(|&(b, l)| Attachment::new(b, l))
                .collect(),
            access: Some(access),
            ..RenderDesc::default()
        })
    }

    /// A compute command running `stream`, with its declared accesses (`None`: undeclared).
    pub fn compute(
        &self,
        s: &mut StreamBuilder,
        access: Option<ComputeCommand<Va>>,
    ) -> Result<ComputeDesc> {
        let (va, len) = self.stream(s)?;
        Ok(ComputeDesc {
            cdm_ctrl_stream_base: va,
            cdm_ctrl_stream_end: va + len,
            access,
            ..ComputeDesc::default()
        })
    }

    /// Clear pass: fills `dst` with `pattern` (load CLEAR, store STORE). Restartable.
    pub fn clear_pass(&self, dst: u64, len: u64, pattern: u32) -> Result<RenderDesc> {
        let access = RenderPass::new().color(ColorAttachment::new(
            Region::va(dst, len),
            LoadOp::Clear,
            StoreOp::Store,
        ));
        self.render(
            StreamBuilder::new().fill(dst, len, pattern),
            access,
            &[(dst, len)],
        )
    }

    /// Draw-like pass: clears `dst`, then "draws" `src` into it. Restartable.
    pub fn draw_pass(&self, dst: u64, src: u64, len: u64) -> Result<RenderDesc> {
        let access = RenderPass::new()
            .color(ColorAttachment::new(
                Region::va(dst, len),
                LoadOp::Clear,
                StoreOp::Store,
            ))
            .shader_access(ShaderAccessKind::Read, Region::va(src, len));
        self.render(
            StreamBuilder::new().fill(dst, len, 0).copy(dst, src, len),
            access,
            &[(dst, len)],
        )
    }

    /// Blend-like pass: loads `dst` and blends `src` onto it. Not restartable.
    pub fn blend_pass(&self, dst: u64, src: u64, len: u64) -> Result<RenderDesc> {
        let access = RenderPass::new()
            .color(
                ColorAttachment::new(Region::va(dst, len), LoadOp::Load, StoreOp::Store).blended(),
            )
            .shader_access(ShaderAccessKind::Read, Region::va(src, len));
        self.render(
            StreamBuilder::new().rmw(dst, src, len, RmwFn::Average),
            access,
            &[(dst, len)],
        )
    }

    /// Compute copy: reads `src`, overwrites `dst`. Restartable.
    pub fn compute_copy(&self, dst: u64, src: u64, len: u64) -> Result<ComputeDesc> {
        let access = ComputeCommand::new().dispatch(
            Dispatch::new()
                .read(Region::va(src, len))
                .overwrite(Region::va(dst, len)),
        );
        self.compute(StreamBuilder::new().copy(dst, src, len), Some(access))
    }

    /// Compute accumulation: `dst += src` bytewise (read-modify-write). Not restartable.
    pub fn compute_accumulate(&self, dst: u64, src: u64, len: u64) -> Result<ComputeDesc> {
        let access = ComputeCommand::new().dispatch(
            Dispatch::new()
                .read(Region::va(src, len))
                .read_write(Region::va(dst, len)),
        );
        self.compute(
            StreamBuilder::new().rmw(dst, src, len, RmwFn::Add),
            Some(access),
        )
    }
}
