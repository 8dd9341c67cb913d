//! The objects that turn API handles into memory: allocations, buffer and image bindings,
//! swapchain images, views, render passes, framebuffers, pipelines, descriptor sets and update
//! templates.

use agx_winsys::analysis::{LoadOp, Region, StoreOp};

use super::{Map, Reg, Space, WHOLE_SIZE};
use crate::spirv::ShaderEffects;

/// A `VkDeviceMemory`.
#[derive(Clone, Debug)]
pub struct Memory {
    pub size: u64,
    pub type_index: u32,
    pub host_visible: bool,
    pub coherent: bool,
    /// The application's current mapping: (pointer, offset, size).
    pub app_map: Option<(usize, u64, u64)>,
}

/// Where a buffer or image lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    pub memory: u64,
    pub offset: u64,
    pub size: u64,
}

/// A `VkBuffer`.
#[derive(Clone, Debug, Default)]
pub struct Buffer {
    pub size: u64,
    pub binding: Option<Binding>,
}

/// A swapchain image: memory of its own, scrambled by clearing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapImage {
    pub swapchain: u64,
    pub format: i32,
    pub width: u32,
    pub height: u32,
    pub layers: u32,
    /// The layer added (or the application asked for) `TRANSFER_DST`: it can be cleared.
    pub transfer_dst: bool,
    /// `TRANSFER_SRC`: it can be captured (`AGX_FAULT_FRAMES`).
    pub transfer_src: bool,
    /// `COLOR_ATTACHMENT` usage: it can be cleared by a render pass.
    pub color_attachment: bool,
}

impl SwapImage {
    /// Bytes of the image (texel size of the usual swapchain formats; 4 otherwise, a model
    /// figure for the statistics only).
    pub fn bytes(&self) -> u64 {
        let texel = match self.format {
            // R16G16B16A16_*.
            91..=97 => 8,
            // R5G6B5 / B5G6R5 / R5G5B5A1 / B5G5R5A1 / A1R5G5B5.
            4..=8 => 2,
            _ => 4,
        };
        u64::from(self.width) * u64::from(self.height) * u64::from(self.layers.max(1)) * texel
    }
}

/// One attachment description.
#[derive(Clone, Copy, Debug)]
pub struct AttDesc {
    pub load: LoadOp,
    pub store: StoreOp,
    pub stencil_load: LoadOp,
    pub stencil_store: StoreOp,
    /// Some aspect's store op is not `NONE`: the pass may write the attachment.
    pub writes: bool,
    pub depth_stencil: bool,
}

/// One subpass: attachment indices.
#[derive(Clone, Debug, Default)]
pub struct Subpass {
    pub colors: Vec<Option<u32>>,
    pub resolves: Vec<u32>,
    pub depth: Option<u32>,
    pub inputs: Vec<u32>,
}

/// A `VkRenderPass`.
#[derive(Clone, Debug, Default)]
pub struct RenderPassDesc {
    pub atts: Vec<AttDesc>,
    pub subpasses: Vec<Subpass>,
}

/// A pipeline (or a pipeline library).
#[derive(Clone, Debug, Default)]
pub struct Pipeline {
    pub fx: ShaderEffects,
    /// Per color location: blending, logic op or a partial write mask (reads the tile).
    pub blend: Vec<bool>,
    /// Blend state is dynamic or a logic op is on: every location may read the tile.
    pub blend_all: bool,
    pub depth_write: bool,
}

impl Pipeline {
    /// A pipeline linked from `self` and a library.
    pub fn link(&mut self, lib: &Pipeline) {
        self.fx = self.fx.union(lib.fx);
        if self.blend.len() < lib.blend.len() {
            self.blend.resize(lib.blend.len(), false);
        }
        for (b, l) in self.blend.iter_mut().zip(&lib.blend) {
            *b |= *l;
        }
        self.blend_all |= lib.blend_all;
        self.depth_write |= lib.depth_write;
    }
}

/// Descriptor type, as far as memory is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescKind {
    /// Read only (uniform buffers, sampled images, uniform texel buffers, input attachments).
    Read,
    /// Storage (buffers, images, texel buffers).
    Storage,
    /// No memory (samplers, inline uniform blocks).
    None,
    /// Cannot be bounded (acceleration structures, anything unknown).
    Unknown,
}

/// What a descriptor points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescRes {
    None,
    Buffer {
        buffer: u64,
        offset: u64,
        range: u64,
    },
    ImageView(u64),
    BufferView(u64),
}

/// A `VkDescriptorSet`, or the push descriptors of one set number of a command buffer.
#[derive(Clone, Debug, Default)]
pub struct DescSet {
    pub slots: Map<(u32, u32), (DescKind, DescRes)>,
    /// Updated in a way the tracker does not follow.
    pub unknown: bool,
}

impl DescSet {
    /// Writes `entries` from (`binding`, `element`) on (consecutive bindings: the tracker keys
    /// by (binding, element) and does not know binding sizes, so overflow into the next
    /// binding keeps the element index, which is conservative).
    pub fn write(&mut self, binding: u32, element: u32, kind: DescKind, entries: &[DescRes]) {
        for (k, e) in entries.iter().enumerate() {
            self.slots.insert((binding, element + k as u32), (kind, *e));
        }
    }
}

/// One entry of a `VkDescriptorUpdateTemplate`.
#[derive(Clone, Copy, Debug)]
pub struct TemplateEntry {
    pub binding: u32,
    pub element: u32,
    pub count: u32,
    pub ty: i32,
    pub offset: usize,
    pub stride: usize,
}

/// A `VkDescriptorUpdateTemplate`.
#[derive(Clone, Debug, Default)]
pub struct Template {
    pub entries: Vec<TemplateEntry>,
    /// Push descriptor templates: the bind point index (graphics or compute; None otherwise).
    pub bind_point: Option<usize>,
}

/// Every tracked object of a device.
#[derive(Debug, Default)]
pub struct Objects {
    pub memories: Map<u64, Memory>,
    pub buffers: Map<u64, Buffer>,
    pub images: Map<u64, Option<Binding>>,
    pub swap_images: Map<u64, SwapImage>,
    /// Swapchain -> its images.
    pub swapchains: Map<u64, Vec<u64>>,
    /// Swapchain -> what its images are like.
    pub swap_templates: Map<u64, SwapImage>,
    pub views: Map<u64, u64>,
    pub buffer_views: Map<u64, (u64, u64, u64)>,
    pub render_passes: Map<u64, RenderPassDesc>,
    pub framebuffers: Map<u64, Vec<u64>>,
    pub shaders: Map<u64, ShaderEffects>,
    pub pipelines: Map<u64, Pipeline>,
    pub sets: Map<u64, DescSet>,
    pub templates: Map<u64, Template>,
}

impl Objects {
    /// The bytes of buffer `b` from `offset`, `size` bytes (or [`WHOLE_SIZE`]).
    pub fn buffer_region(&self, b: u64, offset: u64, size: u64) -> Option<Reg> {
        let buf = self.buffers.get(&b)?;
        let bind = buf.binding?;
        let avail = buf.size.saturating_sub(offset);
        let len = if size == WHOLE_SIZE {
            avail
        } else {
            size.min(avail)
        };
        Some(Region::new(
            Space::Memory(bind.memory),
            bind.offset.checked_add(offset)?,
            len,
        ))
    }

    /// Every byte of buffer `b`'s binding.
    pub fn buffer_binding(&self, b: u64) -> Option<Reg> {
        let bind = self.buffers.get(&b)?.binding?;
        Some(Region::new(
            Space::Memory(bind.memory),
            bind.offset,
            bind.size,
        ))
    }

    /// Every byte of image `i` (its whole binding; a swapchain image is a space of its own).
    pub fn image_region(&self, i: u64) -> Option<Reg> {
        if let Some(s) = self.swap_images.get(&i) {
            return Some(Region::new(Space::Image(i), 0, s.bytes()));
        }
        let b = (*self.images.get(&i)?)?;
        Some(Region::new(Space::Memory(b.memory), b.offset, b.size))
    }

    /// Every byte of the image behind view `v`.
    pub fn view_region(&self, v: u64) -> Option<Reg> {
        self.image_region(*self.views.get(&v)?)
    }

    /// The bytes a descriptor points at.
    pub fn desc_region(&self, res: DescRes) -> Option<Reg> {
        match res {
            DescRes::None => None,
            DescRes::Buffer {
                buffer,
                offset,
                range,
            } => self.buffer_region(buffer, offset, range),
            DescRes::ImageView(v) => self.view_region(v),
            DescRes::BufferView(v) => {
                let &(b, off, range) = self.buffer_views.get(&v)?;
                self.buffer_region(b, off, range)
            }
        }
    }

    /// The whole binding behind a descriptor (what the scramble covers).
    pub fn desc_binding(&self, res: DescRes) -> Option<Reg> {
        match res {
            DescRes::None => None,
            DescRes::Buffer { buffer, .. } => self.buffer_binding(buffer),
            DescRes::ImageView(v) => self.view_region(v),
            DescRes::BufferView(v) => self.buffer_binding(self.buffer_views.get(&v)?.0),
        }
    }

    /// Forgets a swapchain and its images.
    pub fn remove_swapchain(&mut self, sc: u64) {
        self.swap_templates.remove(&sc);
        for i in self.swapchains.remove(&sc).unwrap_or_default() {
            self.swap_images.remove(&i);
        }
    }
}
