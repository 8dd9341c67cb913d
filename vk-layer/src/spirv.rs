//! Just enough SPIR-V to know what a shader module may do to memory through descriptors:
//! stores, loads and atomics on storage buffers and storage images, and accesses the layer
//! cannot bound (physical storage buffer pointers, i.e. buffer device address).
//!
//! The module is scanned once at `vkCreateShaderModule`. Every pointer's storage class is known
//! from its type (`OpTypePointer`), so a store through any access chain is attributed to the
//! class it writes. Anything the scanner does not understand makes the module unknown.

use std::collections::HashMap;

/// What a shader module may do to descriptor-backed memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShaderEffects {
    /// May store to storage buffers or storage images.
    pub stores: bool,
    /// May load from storage buffers or read storage images.
    pub loads_storage: bool,
    /// Uses atomics on memory.
    pub atomics: bool,
    /// Accesses memory that cannot be bounded, or the module could not be parsed.
    pub unknown: bool,
}

impl ShaderEffects {
    /// Effects that cannot be bounded.
    pub const UNKNOWN: ShaderEffects = ShaderEffects {
        stores: true,
        loads_storage: true,
        atomics: true,
        unknown: true,
    };

    /// The union of two modules' effects (the stages of one pipeline).
    pub fn union(self, o: ShaderEffects) -> ShaderEffects {
        ShaderEffects {
            stores: self.stores || o.stores,
            loads_storage: self.loads_storage || o.loads_storage,
            atomics: self.atomics || o.atomics,
            unknown: self.unknown || o.unknown,
        }
    }
}

const MAGIC: u32 = 0x0723_0203;

// Opcodes.
const OP_CAPABILITY: u32 = 17;
const OP_TYPE_POINTER: u32 = 32;
const OP_TYPE_FORWARD_POINTER: u32 = 39;
const OP_VARIABLE: u32 = 59;
const OP_IMAGE_TEXEL_POINTER: u32 = 60;
const OP_LOAD: u32 = 61;
const OP_STORE: u32 = 62;
const OP_COPY_MEMORY: u32 = 63;
const OP_COPY_MEMORY_SIZED: u32 = 64;
const OP_IMAGE_READ: u32 = 98;
const OP_IMAGE_WRITE: u32 = 99;
const OP_ATOMIC_FIRST: u32 = 227; // OpAtomicLoad
const OP_ATOMIC_LAST: u32 = 242; // OpAtomicXor
const OP_ATOMIC_FLAG_TEST_AND_SET: u32 = 318;
const OP_ATOMIC_FLAG_CLEAR: u32 = 319;
const OP_ATOMIC_FMIN_EXT: u32 = 5614;
const OP_ATOMIC_FMAX_EXT: u32 = 5615;
const OP_ATOMIC_FADD_EXT: u32 = 6035;

// Storage classes.
const SC_UNIFORM: u32 = 2;
const SC_IMAGE: u32 = 11;
const SC_STORAGE_BUFFER: u32 = 12;
const SC_PHYSICAL_STORAGE_BUFFER: u32 = 5349;

// Capabilities that imply unboundable accesses.
const CAP_PHYSICAL_STORAGE_BUFFER_ADDRESSES: u32 = 5347;

/// Opcodes whose first operand is a result type and second a result id.
fn has_type_and_result(op: u32) -> bool {
    // Conservative list of instructions producing pointers that the scanner follows.
    matches!(
        op,
        59 /* OpVariable */ | 65 /* OpAccessChain */ | 66 /* OpInBoundsAccessChain */
        | 67 /* OpPtrAccessChain */ | 70 /* OpInBoundsPtrAccessChain */
        | 60 /* OpImageTexelPointer */ | 124 /* OpBitcast */ | 61 /* OpLoad */
        | 57 /* OpFunctionCall */ | 55 /* OpFunctionParameter */ | 245 /* OpPhi */
        | 169 /* OpSelect */ | 117 /* OpConvertUToPtr */ | 401 /* OpCopyObject */
        | 4164 /* OpCopyLogical */
    )
}

/// Scans a module. Never panics; malformed input gives [`ShaderEffects::UNKNOWN`].
pub fn scan(words: &[u32]) -> ShaderEffects {
    scan_inner(words).unwrap_or(ShaderEffects::UNKNOWN)
}

fn scan_inner(words: &[u32]) -> Option<ShaderEffects> {
    if words.len() < 5 || words[0] != MAGIC {
        return None;
    }
    let bound = words[3] as usize;
    if bound > 1 << 22 {
        return None;
    }
    // id -> storage class of the pointer type with that id; id -> type id of the value with
    // that id. Maps, not tables of `bound` entries: the header's bound is the module's claim,
    // and a 20-byte module claiming 4M ids cost 32 MiB and 0.1 s (found by fuzzing).
    let mut ptr_class: HashMap<usize, u32> = HashMap::new();
    let mut type_of: HashMap<usize, u32> = HashMap::new();
    let mut fx = ShaderEffects::default();
    let mut insns = Vec::new();
    let mut i = 5;
    while i < words.len() {
        let n = (words[i] >> 16) as usize;
        let op = words[i] & 0xffff;
        if n == 0 || i + n > words.len() {
            return None;
        }
        let ops = &words[i + 1..i + n];
        let id = |k: usize| -> Option<usize> {
            let v = *ops.get(k)? as usize;
            (v < bound).then_some(v)
        };
        match op {
            OP_CAPABILITY if ops.first() == Some(&CAP_PHYSICAL_STORAGE_BUFFER_ADDRESSES) => {
                fx.unknown = true
            }
            OP_TYPE_POINTER => {
                let r = id(0)?;
                ptr_class.insert(r, *ops.get(1)?);
            }
            OP_TYPE_FORWARD_POINTER if ops.get(1) == Some(&SC_PHYSICAL_STORAGE_BUFFER) => {
                fx.unknown = true
            }
            _ => {}
        }
        if has_type_and_result(op) && ops.len() >= 2 {
            let r = id(1)?;
            type_of.insert(r, ops[0]);
        }
        if op == OP_VARIABLE && ops.get(2) == Some(&SC_PHYSICAL_STORAGE_BUFFER) {
            fx.unknown = true;
        }
        insns.push((op, i + 1, n - 1));
        i += n;
    }
    // Storage class of the pointer value `v`.
    let class_of = |v: u32| -> u32 {
        let t = *type_of.get(&(v as usize)).unwrap_or(&0) as usize;
        *ptr_class.get(&t).unwrap_or(&u32::MAX)
    };
    // Whether the pointer value `v` points at storage memory (buffer or image texel).
    let storage = |v: u32| -> Option<bool> {
        match class_of(v) {
            SC_STORAGE_BUFFER | SC_IMAGE => Some(true),
            SC_PHYSICAL_STORAGE_BUFFER => None,
            // A `Uniform` block decorated BufferBlock is an old-style storage buffer; a pointer
            // into one of its members has the member's type, so any Uniform-class store counts
            // as a storage write (stores to real uniform buffers are invalid anyway).
            SC_UNIFORM => Some(true),
            _ => Some(false),
        }
    };
    for &(op, at, len) in &insns {
        let ops = &words[at..at + len];
        match op {
            // Operands are checked: an `OpStore` of one word reached here (found by fuzzing).
            OP_STORE => match storage(*ops.first()?) {
                Some(true) => fx.stores = true,
                Some(false) => {}
                None => fx.unknown = true,
            },
            OP_LOAD if len >= 3 => match class_of(ops[2]) {
                SC_STORAGE_BUFFER | SC_IMAGE => fx.loads_storage = true,
                SC_UNIFORM => fx.loads_storage = true,
                SC_PHYSICAL_STORAGE_BUFFER => fx.unknown = true,
                _ => {}
            },
            OP_COPY_MEMORY | OP_COPY_MEMORY_SIZED if len >= 2 => {
                match storage(ops[0]) {
                    Some(true) => fx.stores = true,
                    Some(false) => {}
                    None => fx.unknown = true,
                }
                if storage(ops[1]) != Some(false) {
                    fx.loads_storage = true;
                }
            }
            OP_IMAGE_WRITE => fx.stores = true,
            OP_IMAGE_READ => fx.loads_storage = true,
            OP_IMAGE_TEXEL_POINTER => {}
            OP_ATOMIC_FIRST..=OP_ATOMIC_LAST
            | OP_ATOMIC_FLAG_TEST_AND_SET
            | OP_ATOMIC_FLAG_CLEAR
            | OP_ATOMIC_FMIN_EXT
            | OP_ATOMIC_FMAX_EXT
            | OP_ATOMIC_FADD_EXT => {
                // OpAtomicStore (228) has the pointer first; the others have type, result,
                // pointer.
                let ptr = if op == 228 { ops.first() } else { ops.get(2) };
                match ptr.map(|&p| class_of(p)) {
                    Some(4 /* Workgroup */) | Some(6 /* Private */) | Some(7 /* Function */) => {}
                    Some(SC_PHYSICAL_STORAGE_BUFFER) | None => fx.unknown = true,
                    Some(_) => fx.atomics = true,
                }
            }
            _ => {}
        }
    }
    Some(fx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(op: u32, ops: &[u32]) -> Vec<u32> {
        let mut v = vec![((ops.len() as u32 + 1) << 16) | op];
        v.extend_from_slice(ops);
        v
    }

    fn module(body: &[Vec<u32>]) -> Vec<u32> {
        let mut w = vec![MAGIC, 0x0001_0000, 0, 100, 0];
        for b in body {
            w.extend_from_slice(b);
        }
        w
    }

    #[test]
    fn finds_storage_stores_and_loads() {
        // %5 = OpTypePointer StorageBuffer %4 ; %6 = OpVariable %5 StorageBuffer
        // %8 = OpAccessChain %5 %6 ... ; OpStore %8 %9
        let m = module(&[
            insn(OP_TYPE_POINTER, &[5, SC_STORAGE_BUFFER, 4]),
            insn(OP_VARIABLE, &[5, 6, SC_STORAGE_BUFFER]),
            insn(65, &[5, 8, 6, 10]),
            insn(OP_STORE, &[8, 9]),
        ]);
        let fx = scan(&m);
        assert!(fx.stores && !fx.loads_storage && !fx.unknown);
        let m = module(&[
            insn(OP_TYPE_POINTER, &[5, SC_STORAGE_BUFFER, 4]),
            insn(OP_VARIABLE, &[5, 6, SC_STORAGE_BUFFER]),
            insn(OP_LOAD, &[4, 7, 6]),
        ]);
        let fx = scan(&m);
        assert!(!fx.stores && fx.loads_storage);
    }

    #[test]
    fn output_stores_are_not_memory() {
        // %5 = OpTypePointer Output %4 ; OpStore to an Output variable.
        let m = module(&[
            insn(OP_TYPE_POINTER, &[5, 3, 4]),
            insn(OP_VARIABLE, &[5, 6, 3]),
            insn(OP_STORE, &[6, 9]),
        ]);
        assert_eq!(scan(&m), ShaderEffects::default());
    }

    #[test]
    fn an_instruction_short_of_its_operands_is_unknown() {
        // `OpStore` with no operands (word count 1): a panic before (fuzz/regressions/spirv/).
        let m = module(&[insn(OP_STORE, &[])]);
        assert_eq!(scan(&m), ShaderEffects::UNKNOWN);
    }

    #[test]
    fn bda_and_garbage_are_unknown() {
        let m = module(&[insn(
            OP_CAPABILITY,
            &[CAP_PHYSICAL_STORAGE_BUFFER_ADDRESSES],
        )]);
        assert!(scan(&m).unknown);
        assert!(scan(&[1, 2, 3]).unknown);
        let mut m = module(&[]);
        m.push(0x0005_003e); // claims 5 words, only 1 left
        assert!(scan(&m).unknown);
    }

    #[test]
    fn atomics() {
        let m = module(&[
            insn(OP_TYPE_POINTER, &[5, SC_STORAGE_BUFFER, 4]),
            insn(OP_VARIABLE, &[5, 6, SC_STORAGE_BUFFER]),
            insn(234 /* OpAtomicIAdd */, &[4, 7, 6, 1, 0, 8]),
        ]);
        assert!(scan(&m).atomics);
    }
}
