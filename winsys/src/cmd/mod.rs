//! Command buffers: what a driver records (render passes and compute commands, with their
//! ordering and their memory-access descriptions), and their encoding into the flat `SUBMIT`
//! cmdbuf of the asahi uAPI (`drm_asahi_cmd_header` + payload, repeated).
//!
//! Pure data: nothing here talks to the kernel.
//!
//! - [`RenderDesc`] / [`ComputeDesc`]: the fields of `drm_asahi_cmd_render` /
//!   `drm_asahi_cmd_compute`, the command's attachment lists, and the access description the
//!   restartability analysis ([`crate::analysis`]) needs.
//! - [`CommandBuffer`]: an ordered list of [`Command`]s. Adding a command validates it, runs the
//!   analysis and stores the [`Verdict`] with it.
//! - [`encode()`] ([`CommandBuffer::encode`]): writes the commands of a range as one cmdbuf, with
//!   attachment commands, job infos (fault-report extension) and barriers remapped for the
//!   range, so a long command buffer can be split into several submits.
//! - [`decode`](mod@decode): the inverse, for tests and the fault suite.
//! - [`driver`]: cmdbufs a driver (Mesa) encoded itself, which get job infos inserted.
//!
//! # Ordering
//!
//! Each command has [`Deps`]: what it waits for on the render (VDM) and on the compute (CDM)
//! subqueue. By default a command waits for everything before it: every earlier command of the
//! command buffer on both subqueues, and everything submitted earlier on the queue. See
//! [`encode`](mod@encode) for how [`Dep`]s become header barriers.

mod compute;
pub mod decode;
pub mod driver;
pub mod encode;
mod render;

#[cfg(test)]
mod tests;

pub use compute::ComputeDesc;
pub use encode::{encode, JobInfoSlot, ResultRecord};
pub use render::{BgEot, RenderDesc, RenderFlags, ZlsBuffer};

use crate::analysis::{Reasons, Verdict};

/// Largest attachment count one attachment command can carry: its payload size (a `u16`) is
/// `count * sizeof(drm_asahi_attachment)` = `count * 24`.
pub const MAX_ENCODABLE_ATTACHMENTS: usize = u16::MAX as usize / ATTACHMENT_SIZE;

/// Largest number of commands in one [`CommandBuffer`]: barrier indices are `u16` and
/// `0xFFFF` means "none".
pub const MAX_COMMANDS: usize = 0xFFFE;

const ATTACHMENT_SIZE: usize = core::mem::size_of::<agx_uapi::asahi::drm_asahi_attachment>();

/// Why a command cannot be added to a [`CommandBuffer`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// An attachment list is longer than the device's `max_attachments` (never truncated).
    #[error("{count} attachments, the device allows at most {max}")]
    TooManyAttachments {
        /// Attachments in the list.
        count: usize,
        /// The limit in force.
        max: usize,
    },
    /// A command buffer with no command.
    #[error("empty command buffer")]
    EmptyCommandBuffer,
    /// A descriptor field has a value the uAPI rejects (the field is named).
    #[error("invalid descriptor: {0}")]
    InvalidDescriptor(&'static str),
    /// A dependency names the command itself or a later one.
    #[error("command {command} cannot depend on command {target} (not earlier)")]
    ForwardDependency {
        /// Index of the command being added.
        command: usize,
        /// The command it names.
        target: usize,
    },
    /// More than [`MAX_COMMANDS`] commands.
    #[error("more than {max} commands in one command buffer")]
    TooManyCommands {
        /// [`MAX_COMMANDS`].
        max: usize,
    },
}

/// One `drm_asahi_attachment`: a memory range the firmware must treat as an attachment
/// (it is what partial renders spill and reload, and what the compute attachments cover).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Attachment {
    /// GPU VA of the first byte (`pointer`).
    pub base: u64,
    /// Bytes (`size`).
    pub size: u64,
}

impl Attachment {
    /// `[base, base + size)`.
    pub const fn new(base: u64, size: u64) -> Self {
        Self { base, size }
    }
}

/// One timestamp write (`drm_asahi_timestamp`): `offset` bytes into the timestamp object
/// `handle` (from `GEM_BIND_OBJECT` with `USAGE_TIMESTAMPS`). Handle 0 writes nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Object handle, 0 for none.
    pub handle: u32,
    /// Byte offset in the object.
    pub offset: u32,
}

impl Timestamp {
    /// A write at `offset` of object `handle`.
    pub const fn new(handle: u32, offset: u32) -> Self {
        Self { handle, offset }
    }
}

/// Start and end timestamps of a command (or of one of its halves, `drm_asahi_timestamps`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Timestamps {
    /// Written when the work starts.
    pub start: Timestamp,
    /// Written when the work ends.
    pub end: Timestamp,
}

/// A helper program (`drm_asahi_helper_program`): runs for the vertex, fragment or compute
/// work, e.g. to set up scratch memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HelperProgram {
    /// USC address of the program binary (0: no helper).
    pub binary: u32,
    /// Configuration word.
    pub cfg: u32,
    /// Argument passed to the program.
    pub data: u64,
}

/// A subqueue of a queue: render commands run on the VDM/tiler-plus-fragment subqueue, compute
/// commands on the CDM subqueue. Each subqueue runs its commands in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subqueue {
    /// `vdm_barrier` side.
    Render = 0,
    /// `cdm_barrier` side.
    Compute = 1,
}

/// What a command waits for on one subqueue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dep {
    /// Nothing (`DRM_ASAHI_BARRIER_NONE`). On the command's own subqueue this changes nothing:
    /// a subqueue runs in order anyway.
    None,
    /// Everything submitted on this subqueue before this command buffer (and before the
    /// current submit, when the command buffer is split: see [`encode`](mod@encode)).
    PreviousSubmits,
    /// Every command of this subqueue with index `<= j` in this command buffer, and everything
    /// submitted before. `j` must be earlier than the command; it need not be a command of this
    /// subqueue (then it is the last one of this subqueue before `j`, if any).
    Through(usize),
}

/// What a command waits for, per subqueue. (No `Default`: the default ordering of
/// [`CommandBuffer::render`] / [`CommandBuffer::compute`] is [`Deps::all_before`] the command.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Deps {
    /// Render (VDM) subqueue.
    pub render: Dep,
    /// Compute (CDM) subqueue.
    pub compute: Dep,
}

impl Deps {
    /// Wait for nothing on either subqueue.
    pub const NONE: Self = Self {
        render: Dep::None,
        compute: Dep::None,
    };

    /// The same dependency on both subqueues.
    pub const fn both(dep: Dep) -> Self {
        Self {
            render: dep,
            compute: dep,
        }
    }

    /// The dependency on subqueue `q`.
    pub fn on(&self, q: Subqueue) -> Dep {
        match q {
            Subqueue::Render => self.render,
            Subqueue::Compute => self.compute,
        }
    }

    /// Everything before command `index`: `Through(index - 1)` on both subqueues, or
    /// `PreviousSubmits` for the first command. This is the default ordering.
    pub const fn all_before(index: usize) -> Self {
        if index == 0 {
            Self::both(Dep::PreviousSubmits)
        } else {
            Self::both(Dep::Through(index - 1))
        }
    }
}

/// The hardware payload of a command.
// Not boxed: commands live in one Vec, and a box would cost an allocation per render pass.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandKind {
    /// A render pass (`DRM_ASAHI_CMD_RENDER`).
    Render(RenderDesc),
    /// A compute command (`DRM_ASAHI_CMD_COMPUTE`).
    Compute(ComputeDesc),
}

/// One hardware command of a [`CommandBuffer`], with its ordering and its analysis verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    kind: CommandKind,
    deps: Deps,
    verdict: Verdict,
    reloads: bool,
    reloads_zs: bool,
    /// Commands of each subqueue before this one in the command buffer.
    before: [u32; 2],
}

impl Command {
    /// The descriptor.
    pub fn kind(&self) -> &CommandKind {
        &self.kind
    }

    /// The subqueue it runs on.
    pub fn subqueue(&self) -> Subqueue {
        match self.kind {
            CommandKind::Render(_) => Subqueue::Render,
            CommandKind::Compute(_) => Subqueue::Compute,
        }
    }

    /// Its dependencies, resolved: the default ordering appears as [`Deps::all_before`].
    pub fn deps(&self) -> Deps {
        self.deps
    }

    /// Restartability, from the access description (not restartable with
    /// [`Reasons::UNKNOWN_ACCESS`] / [`Reasons::COMPUTE_UNDECLARED`] without one).
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Whether the command loads an attachment from memory, so partial renders must reload it
    /// (the old `SET_WHEN_RELOADING_Z_OR_S` hint, extended to color). True for a render pass
    /// without an access description (unknown, so assumed), false for compute.
    pub fn reloads_attachment(&self) -> bool {
        self.reloads
    }

    /// Whether the depth or stencil aspect is loaded: exactly the old
    /// `SET_WHEN_RELOADING_Z_OR_S` hint. True for a render pass without an access description,
    /// false for compute.
    pub fn reloads_depth_stencil(&self) -> bool {
        self.reloads_zs
    }

    /// The vertex, fragment and compute attachment lists the command needs in force.
    fn attachments(&self) -> [Option<&[Attachment]>; 3] {
        match &self.kind {
            CommandKind::Render(r) => [
                Some(&r.vertex_attachments),
                Some(&r.fragment_attachments),
                None,
            ],
            CommandKind::Compute(c) => [None, None, Some(&c.attachments)],
        }
    }
}

/// An ordered list of render and compute commands, ready to encode.
///
/// Every command is validated when added (attachment counts against the device limit, uAPI
/// field constraints, dependencies only on earlier commands), so encoding cannot fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandBuffer {
    commands: Vec<Command>,
    max_attachments: usize,
    record: ResultRecord,
    counts: [u32; 2],
}

impl CommandBuffer {
    /// An empty command buffer for a device whose `max_attachments` (from
    /// `drm_asahi_params_global`) is given.
    pub fn new(max_attachments: u32) -> Self {
        Self {
            commands: Vec::new(),
            max_attachments: (max_attachments as usize).min(MAX_ENCODABLE_ATTACHMENTS),
            record: ResultRecord::default(),
            counts: [0; 2],
        }
    }

    /// The attachment limit in force (the device's, capped at [`MAX_ENCODABLE_ATTACHMENTS`]).
    pub fn max_attachments(&self) -> usize {
        self.max_attachments
    }

    /// Which result record job infos ask for (default [`ResultRecord::Fault`], 48 bytes): the
    /// slots handed to [`encode()`] must be that large.
    pub fn set_result_record(&mut self, record: ResultRecord) {
        self.record = record;
    }

    /// The result record kind in force.
    pub fn result_record(&self) -> ResultRecord {
        self.record
    }

    /// Adds a render pass that waits for everything before it. Returns its index.
    pub fn render(&mut self, desc: RenderDesc) -> Result<usize, BuildError> {
        self.push(CommandKind::Render(desc), None)
    }

    /// Adds a render pass with explicit dependencies. Returns its index.
    pub fn render_with_deps(&mut self, desc: RenderDesc, deps: Deps) -> Result<usize, BuildError> {
        self.push(CommandKind::Render(desc), Some(deps))
    }

    /// Adds a compute command that waits for everything before it. Returns its index.
    pub fn compute(&mut self, desc: ComputeDesc) -> Result<usize, BuildError> {
        self.push(CommandKind::Compute(desc), None)
    }

    /// Adds a compute command with explicit dependencies. Returns its index.
    pub fn compute_with_deps(
        &mut self,
        desc: ComputeDesc,
        deps: Deps,
    ) -> Result<usize, BuildError> {
        self.push(CommandKind::Compute(desc), Some(deps))
    }

    fn push(&mut self, kind: CommandKind, deps: Option<Deps>) -> Result<usize, BuildError> {
        let index = self.commands.len();
        if index >= MAX_COMMANDS {
            return Err(BuildError::TooManyCommands { max: MAX_COMMANDS });
        }
        let deps = match deps {
            None => Deps::all_before(index),
            Some(d) => {
                for dep in [d.render, d.compute] {
                    if let Dep::Through(target) = dep {
                        if target >= index {
                            return Err(BuildError::ForwardDependency {
                                command: index,
                                target,
                            });
                        }
                    }
                }
                d
            }
        };
        let check = |list: &[Attachment]| {
            if list.len() > self.max_attachments {
                Err(BuildError::TooManyAttachments {
                    count: list.len(),
                    max: self.max_attachments,
                })
            } else {
                Ok(())
            }
        };
        let (verdict, (reloads, reloads_zs), sub) = match &kind {
            CommandKind::Render(r) => {
                r.validate()?;
                check(&r.vertex_attachments)?;
                check(&r.fragment_attachments)?;
                match &r.access {
                    Some(pass) => (
                        pass.analyse(),
                        (pass.reloads_attachment(), pass.reloads_depth_stencil()),
                        Subqueue::Render,
                    ),
                    None => (
                        Verdict {
                            reasons: Reasons::UNKNOWN_ACCESS,
                        },
                        (true, true),
                        Subqueue::Render,
                    ),
                }
            }
            CommandKind::Compute(c) => {
                c.validate()?;
                check(&c.attachments)?;
                let verdict = match &c.access {
                    Some(cmd) => cmd.analyse(),
                    None => Verdict {
                        reasons: Reasons::COMPUTE_UNDECLARED,
                    },
                };
                (verdict, (false, false), Subqueue::Compute)
            }
        };
        let before = self.counts;
        self.counts[sub as usize] += 1;
        self.commands.push(Command {
            kind,
            deps,
            verdict,
            reloads,
            reloads_zs,
            before,
        });
        Ok(index)
    }

    /// The commands, in order.
    pub fn commands(&self) -> &[Command] {
        &self.commands
    }

    /// Command `index`.
    pub fn command(&self, index: usize) -> Option<&Command> {
        self.commands.get(index)
    }

    /// Number of commands.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// Whether there is no command.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Number of hardware commands (what counts towards `max_commands_per_submission`; job
    /// infos and attachment commands do not). Every command is one hardware command.
    pub fn hw_command_count(&self) -> usize {
        self.commands.len()
    }

    /// Hardware commands in `range` (clamped to the command buffer).
    pub fn hw_commands_in(&self, range: core::ops::Range<usize>) -> usize {
        range.end.min(self.len()).saturating_sub(range.start)
    }

    /// The ranges to submit separately when at most `max_per_submit` hardware commands fit in
    /// one submit (`max_commands_per_submission`; 0 is taken as 1).
    pub fn chunks(
        &self,
        max_per_submit: usize,
    ) -> impl Iterator<Item = core::ops::Range<usize>> + '_ {
        let step = max_per_submit.max(1);
        (0..self.len())
            .step_by(step)
            .map(move |s| s..(s + step).min(self.len()))
    }

    /// Fails with [`BuildError::EmptyCommandBuffer`] when there is nothing to submit.
    pub fn check_not_empty(&self) -> Result<(), BuildError> {
        if self.is_empty() {
            Err(BuildError::EmptyCommandBuffer)
        } else {
            Ok(())
        }
    }

    /// Removes every command, keeping the allocations and the settings.
    pub fn clear(&mut self) {
        self.commands.clear();
        self.counts = [0; 2];
    }

    /// Encodes commands `range` into `out`; see [`encode()`].
    pub fn encode(
        &self,
        range: core::ops::Range<usize>,
        job_info: &dyn Fn(usize) -> Option<JobInfoSlot>,
        out: &mut Vec<u8>,
    ) {
        encode(self, range, job_info, out)
    }

    /// Commands of subqueue `q` with index `< k` (`k <= len`).
    fn prefix(&self, q: Subqueue, k: usize) -> u32 {
        match self.commands.get(k) {
            Some(c) => c.before[q as usize],
            None => self.counts[q as usize],
        }
    }
}
