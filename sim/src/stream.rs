//! The simulated GPU's command language (`docs/sim-command-stream.md`): op encoding, decoding,
//! and a builder that tests, benchmarks and the demo use to generate streams.

use bytemuck::{Pod, Zeroable};

/// One 32-byte op as it sits in GPU memory.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct RawOp {
    pub op: u32,
    pub flags: u32,
    pub a: u64,
    pub b: u64,
    pub c: u64,
}

/// Size of one op in the stream.
pub const OP_SIZE: u64 = 32;

pub const OP_END: u32 = 0;
pub const OP_FILL: u32 = 1;
pub const OP_COPY: u32 = 2;
pub const OP_RMW: u32 = 3;
pub const OP_ATOMIC_ADD: u32 = 4;
pub const OP_LOAD: u32 = 5;
pub const OP_STORE: u32 = 6;
pub const OP_SPIN: u32 = 7;
pub const OP_HANG: u32 = 8;
pub const OP_JUMP: u32 = 9;

/// The combining function of an `RMW` op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RmwFn {
    Add = 0,
    Xor = 1,
    Average = 2,
    Max = 3,
}

impl RmwFn {
    pub fn apply(self, d: u8, s: u8) -> u8 {
        match self {
            RmwFn::Add => d.wrapping_add(s),
            RmwFn::Xor => d ^ s,
            RmwFn::Average => (d as u16 + s as u16).div_ceil(2) as u8,
            RmwFn::Max => d.max(s),
        }
    }

    fn from_modifier(m: u32) -> Option<RmwFn> {
        Some(match m {
            0 => RmwFn::Add,
            1 => RmwFn::Xor,
            2 => RmwFn::Average,
            3 => RmwFn::Max,
            _ => return None,
        })
    }
}

/// A decoded op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    End,
    Fill {
        dst: u64,
        len: u64,
        pattern: u32,
    },
    Copy {
        dst: u64,
        src: u64,
        len: u64,
    },
    Rmw {
        dst: u64,
        src: u64,
        len: u64,
        f: RmwFn,
    },
    AtomicAdd {
        addr: u64,
        value: u64,
    },
    Load {
        addr: u64,
        len: u64,
    },
    Store {
        addr: u64,
        value: u64,
    },
    Spin {
        ns: u64,
    },
    Hang,
    Jump {
        target: u64,
    },
}

impl Op {
    /// Decodes a raw op; `None` for an invalid one.
    pub fn decode(raw: &RawOp) -> Option<Op> {
        let m = raw.flags & 0xff;
        Some(match raw.op {
            OP_END => Op::End,
            OP_FILL => Op::Fill {
                dst: raw.a,
                len: raw.b,
                pattern: raw.c as u32,
            },
            OP_COPY => Op::Copy {
                dst: raw.a,
                src: raw.b,
                len: raw.c,
            },
            OP_RMW => Op::Rmw {
                dst: raw.a,
                src: raw.b,
                len: raw.c,
                f: RmwFn::from_modifier(m)?,
            },
            OP_ATOMIC_ADD if raw.a % 8 == 0 => Op::AtomicAdd {
                addr: raw.a,
                value: raw.b,
            },
            OP_LOAD => Op::Load {
                addr: raw.a,
                len: raw.b,
            },
            OP_STORE if raw.a % 8 == 0 => Op::Store {
                addr: raw.a,
                value: raw.b,
            },
            OP_SPIN => Op::Spin { ns: raw.a },
            OP_HANG => Op::Hang,
            OP_JUMP if raw.a % 8 == 0 => Op::Jump { target: raw.a },
            _ => return None,
        })
    }

    /// The fault-unit override in bits 8-15 of `flags` (0: the command's default).
    pub fn unit_override(raw: &RawOp) -> u32 {
        (raw.flags >> 8) & 0xff
    }
}

/// Builds a stream as bytes, to be copied into a BO at the stream's GPU address.
#[derive(Clone, Debug, Default)]
pub struct StreamBuilder {
    ops: Vec<RawOp>,
}

impl StreamBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn raw(&mut self, op: RawOp) -> &mut Self {
        self.ops.push(op);
        self
    }

    fn push(&mut self, op: u32, flags: u32, a: u64, b: u64, c: u64) -> &mut Self {
        self.raw(RawOp { op, flags, a, b, c })
    }

    pub fn fill(&mut self, dst: u64, len: u64, pattern: u32) -> &mut Self {
        self.push(OP_FILL, 0, dst, len, pattern as u64)
    }

    pub fn copy(&mut self, dst: u64, src: u64, len: u64) -> &mut Self {
        self.push(OP_COPY, 0, dst, src, len)
    }

    pub fn rmw(&mut self, dst: u64, src: u64, len: u64, f: RmwFn) -> &mut Self {
        self.push(OP_RMW, f as u32, dst, src, len)
    }

    pub fn atomic_add(&mut self, addr: u64, value: u64) -> &mut Self {
        self.push(OP_ATOMIC_ADD, 0, addr, value, 0)
    }

    pub fn load(&mut self, addr: u64, len: u64) -> &mut Self {
        self.push(OP_LOAD, 0, addr, len, 0)
    }

    pub fn store(&mut self, addr: u64, value: u64) -> &mut Self {
        self.push(OP_STORE, 0, addr, value, 0)
    }

    pub fn spin(&mut self, ns: u64) -> &mut Self {
        self.push(OP_SPIN, 0, ns, 0, 0)
    }

    pub fn hang(&mut self) -> &mut Self {
        self.push(OP_HANG, 0, 0, 0, 0)
    }

    pub fn jump(&mut self, target: u64) -> &mut Self {
        self.push(OP_JUMP, 0, target, 0, 0)
    }

    /// Terminates the stream and returns its bytes.
    pub fn end(&mut self) -> Vec<u8> {
        self.push(OP_END, 0, 0, 0, 0);
        bytemuck::cast_slice(&self.ops).to_vec()
    }

    /// Bytes the stream will take once ended.
    pub fn size_with_end(&self) -> u64 {
        (self.ops.len() as u64 + 1) * OP_SIZE
    }
}
