//! A colour target, its readback, and passes drawing a triangle over it.

use ash::vk;

use super::{Gpu, CLEAR_RGBA, HEIGHT, TRIANGLE_RGBA, WIDTH};

pub(crate) fn spv(bytes: &[u8]) -> Vec<u32> {
    ash::util::read_spv(&mut std::io::Cursor::new(bytes)).expect("valid SPIR-V")
}

/// A colour target, its readback buffer, and render passes/pipelines drawing the triangle.
pub struct Scene {
    pub image: vk::Image,
    pub view: vk::ImageView,
    pub readback: vk::Buffer,
    pub readback_ptr: *const u8,
    pub vert: vk::ShaderModule,
    pub frag: vk::ShaderModule,
    pub layout: vk::PipelineLayout,
}

/// How a pass treats the target.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PassKind {
    pub load: bool,
    pub blend: Blend,
    pub dynamic: bool,
    /// Whether the triangle is drawn (a pass of its clear alone otherwise).
    pub draw: bool,
}

/// The triangle's blending.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Blend {
    Off,
    /// Alpha blending: a replay blends twice.
    Alpha,
    /// `min(dst, src)` per channel: a replay of the whole pass changes nothing, but a replay
    /// over garbled bytes does.
    Min,
}

impl Scene {
    pub fn new(gpu: &Gpu) -> Scene {
        let d = &gpu.device;
        // SAFETY: plain Vulkan object creation with valid structures.
        unsafe {
            let ici = vk::ImageCreateInfo::default()
                .image_type(vk::ImageType::TYPE_2D)
                .format(vk::Format::R8G8B8A8_UNORM)
                .extent(vk::Extent3D {
                    width: WIDTH,
                    height: HEIGHT,
                    depth: 1,
                })
                .mip_levels(1)
                .array_layers(1)
                .samples(vk::SampleCountFlags::TYPE_1)
                .tiling(vk::ImageTiling::OPTIMAL)
                .usage(vk::ImageUsageFlags::COLOR_ATTACHMENT | vk::ImageUsageFlags::TRANSFER_SRC);
            let image = d.create_image(&ici, None).unwrap();
            let req = d.get_image_memory_requirements(image);
            let mem = d
                .allocate_memory(
                    &vk::MemoryAllocateInfo::default()
                        .allocation_size(req.size)
                        .memory_type_index(
                            gpu.memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::empty()),
                        ),
                    None,
                )
                .unwrap();
            d.bind_image_memory(image, mem, 0).unwrap();
            let view = d
                .create_image_view(
                    &vk::ImageViewCreateInfo::default()
                        .image(image)
                        .view_type(vk::ImageViewType::TYPE_2D)
                        .format(vk::Format::R8G8B8A8_UNORM)
                        .subresource_range(color_range()),
                    None,
                )
                .unwrap();
            let size = u64::from(WIDTH * HEIGHT * 4);
            let readback = d
                .create_buffer(
                    &vk::BufferCreateInfo::default()
                        .size(size)
                        .usage(vk::BufferUsageFlags::TRANSFER_DST),
                    None,
                )
                .unwrap();
            let breq = d.get_buffer_memory_requirements(readback);
            let bmem = d
                .allocate_memory(
                    &vk::MemoryAllocateInfo::default()
                        .allocation_size(breq.size)
                        .memory_type_index(gpu.memory_type(
                            breq.memory_type_bits,
                            vk::MemoryPropertyFlags::HOST_VISIBLE
                                | vk::MemoryPropertyFlags::HOST_COHERENT,
                        )),
                    None,
                )
                .unwrap();
            d.bind_buffer_memory(readback, bmem, 0).unwrap();
            let readback_ptr = d
                .map_memory(bmem, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
                .unwrap() as *const u8;
            let vert = d
                .create_shader_module(
                    &vk::ShaderModuleCreateInfo::default()
                        .code(&spv(include_bytes!("../shaders/triangle.vert.spv"))),
                    None,
                )
                .unwrap();
            let frag = d
                .create_shader_module(
                    &vk::ShaderModuleCreateInfo::default()
                        .code(&spv(include_bytes!("../shaders/constant.frag.spv"))),
                    None,
                )
                .unwrap();
            let layout = d
                .create_pipeline_layout(&vk::PipelineLayoutCreateInfo::default(), None)
                .unwrap();
            Scene {
                image,
                view,
                readback,
                readback_ptr,
                vert,
                frag,
                layout,
            }
        }
    }

    /// A command buffer running one pass of `kind` over the target (left in
    /// COLOR_ATTACHMENT_OPTIMAL).
    pub fn pass(&self, gpu: &Gpu, kind: PassKind) -> vk::CommandBuffer {
        let d = &gpu.device;
        // SAFETY: plain Vulkan object creation and recording with valid structures.
        unsafe {
            let load_op = if kind.load {
                vk::AttachmentLoadOp::LOAD
            } else {
                vk::AttachmentLoadOp::CLEAR
            };
            let initial = if kind.load {
                vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL
            } else {
                vk::ImageLayout::UNDEFINED
            };
            let mut render_pass = vk::RenderPass::null();
            let mut framebuffer = vk::Framebuffer::null();
            if !kind.dynamic {
                let att = [vk::AttachmentDescription::default()
                    .format(vk::Format::R8G8B8A8_UNORM)
                    .samples(vk::SampleCountFlags::TYPE_1)
                    .load_op(load_op)
                    .store_op(vk::AttachmentStoreOp::STORE)
                    .stencil_load_op(vk::AttachmentLoadOp::DONT_CARE)
                    .stencil_store_op(vk::AttachmentStoreOp::DONT_CARE)
                    .initial_layout(initial)
                    .final_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)];
                let cref = [vk::AttachmentReference {
                    attachment: 0,
                    layout: vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL,
                }];
                let sub = [vk::SubpassDescription::default()
                    .pipeline_bind_point(vk::PipelineBindPoint::GRAPHICS)
                    .color_attachments(&cref)];
                render_pass = d
                    .create_render_pass(
                        &vk::RenderPassCreateInfo::default()
                            .attachments(&att)
                            .subpasses(&sub),
                        None,
                    )
                    .unwrap();
                let views = [self.view];
                framebuffer = d
                    .create_framebuffer(
                        &vk::FramebufferCreateInfo::default()
                            .render_pass(render_pass)
                            .attachments(&views)
                            .width(WIDTH)
                            .height(HEIGHT)
                            .layers(1),
                        None,
                    )
                    .unwrap();
            }
            let stages = [
                vk::PipelineShaderStageCreateInfo::default()
                    .stage(vk::ShaderStageFlags::VERTEX)
                    .module(self.vert)
                    .name(c"main"),
                vk::PipelineShaderStageCreateInfo::default()
                    .stage(vk::ShaderStageFlags::FRAGMENT)
                    .module(self.frag)
                    .name(c"main"),
            ];
            let vi = vk::PipelineVertexInputStateCreateInfo::default();
            let ia = vk::PipelineInputAssemblyStateCreateInfo::default()
                .topology(vk::PrimitiveTopology::TRIANGLE_LIST);
            let vp = [vk::Viewport {
                x: 0.0,
                y: 0.0,
                width: WIDTH as f32,
                height: HEIGHT as f32,
                min_depth: 0.0,
                max_depth: 1.0,
            }];
            let sc = [vk::Rect2D {
                offset: vk::Offset2D::default(),
                extent: vk::Extent2D {
                    width: WIDTH,
                    height: HEIGHT,
                },
            }];
            let vps = vk::PipelineViewportStateCreateInfo::default()
                .viewports(&vp)
                .scissors(&sc);
            let rs = vk::PipelineRasterizationStateCreateInfo::default()
                .polygon_mode(vk::PolygonMode::FILL)
                .cull_mode(vk::CullModeFlags::NONE)
                .line_width(1.0);
            let ms = vk::PipelineMultisampleStateCreateInfo::default()
                .rasterization_samples(vk::SampleCountFlags::TYPE_1);
            let op = if kind.blend == Blend::Min {
                vk::BlendOp::MIN
            } else {
                vk::BlendOp::ADD
            };
            let blend = [vk::PipelineColorBlendAttachmentState::default()
                .blend_enable(kind.blend != Blend::Off)
                .src_color_blend_factor(vk::BlendFactor::SRC_ALPHA)
                .dst_color_blend_factor(vk::BlendFactor::ONE_MINUS_SRC_ALPHA)
                .color_blend_op(op)
                .src_alpha_blend_factor(vk::BlendFactor::ONE)
                .dst_alpha_blend_factor(vk::BlendFactor::ZERO)
                .alpha_blend_op(op)
                .color_write_mask(vk::ColorComponentFlags::RGBA)];
            let cbs = vk::PipelineColorBlendStateCreateInfo::default().attachments(&blend);
            let formats = [vk::Format::R8G8B8A8_UNORM];
            let mut rendering =
                vk::PipelineRenderingCreateInfo::default().color_attachment_formats(&formats);
            let mut pci = vk::GraphicsPipelineCreateInfo::default()
                .stages(&stages)
                .vertex_input_state(&vi)
                .input_assembly_state(&ia)
                .viewport_state(&vps)
                .rasterization_state(&rs)
                .multisample_state(&ms)
                .color_blend_state(&cbs)
                .layout(self.layout)
                .render_pass(render_pass);
            if kind.dynamic {
                pci = pci.push_next(&mut rendering);
            }
            let pipeline = d
                .create_graphics_pipelines(vk::PipelineCache::null(), &[pci], None)
                .unwrap()[0];

            let cb = gpu.command_buffer();
            d.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default())
                .unwrap();
            let clear = [vk::ClearValue {
                color: vk::ClearColorValue {
                    float32: [0.0, 0.0, 1.0, 1.0],
                },
            }];
            if kind.dynamic {
                let barrier = [vk::ImageMemoryBarrier::default()
                    .old_layout(initial)
                    .new_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
                    .src_access_mask(vk::AccessFlags::COLOR_ATTACHMENT_WRITE)
                    .dst_access_mask(
                        vk::AccessFlags::COLOR_ATTACHMENT_WRITE
                            | vk::AccessFlags::COLOR_ATTACHMENT_READ,
                    )
                    .image(self.image)
                    .subresource_range(color_range())];
                d.cmd_pipeline_barrier(
                    cb,
                    vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT,
                    vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT,
                    vk::DependencyFlags::empty(),
                    &[],
                    &[],
                    &barrier,
                );
                let att = [vk::RenderingAttachmentInfo::default()
                    .image_view(self.view)
                    .image_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
                    .load_op(load_op)
                    .store_op(vk::AttachmentStoreOp::STORE)
                    .clear_value(clear[0])];
                let ri = vk::RenderingInfo::default()
                    .render_area(sc[0])
                    .layer_count(1)
                    .color_attachments(&att);
                d.cmd_begin_rendering(cb, &ri);
            } else {
                let rbi = vk::RenderPassBeginInfo::default()
                    .render_pass(render_pass)
                    .framebuffer(framebuffer)
                    .render_area(sc[0])
                    .clear_values(&clear);
                d.cmd_begin_render_pass(cb, &rbi, vk::SubpassContents::INLINE);
            }
            d.cmd_bind_pipeline(cb, vk::PipelineBindPoint::GRAPHICS, pipeline);
            if kind.draw {
                d.cmd_draw(cb, 3, 1, 0, 0);
            }
            if kind.dynamic {
                d.cmd_end_rendering(cb);
            } else {
                d.cmd_end_render_pass(cb);
            }
            d.end_command_buffer(cb).unwrap();
            cb
        }
    }

    /// A command buffer copying the target into the readback buffer.
    pub fn readback_cb(&self, gpu: &Gpu) -> vk::CommandBuffer {
        let d = &gpu.device;
        // SAFETY: recording with valid structures.
        unsafe {
            let cb = gpu.command_buffer();
            d.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default())
                .unwrap();
            let to_src = [vk::ImageMemoryBarrier::default()
                .old_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
                .new_layout(vk::ImageLayout::TRANSFER_SRC_OPTIMAL)
                .src_access_mask(vk::AccessFlags::COLOR_ATTACHMENT_WRITE)
                .dst_access_mask(vk::AccessFlags::TRANSFER_READ)
                .image(self.image)
                .subresource_range(color_range())];
            d.cmd_pipeline_barrier(
                cb,
                vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT,
                vk::PipelineStageFlags::TRANSFER,
                vk::DependencyFlags::empty(),
                &[],
                &[],
                &to_src,
            );
            let region = [vk::BufferImageCopy::default()
                .image_subresource(vk::ImageSubresourceLayers {
                    aspect_mask: vk::ImageAspectFlags::COLOR,
                    mip_level: 0,
                    base_array_layer: 0,
                    layer_count: 1,
                })
                .image_extent(vk::Extent3D {
                    width: WIDTH,
                    height: HEIGHT,
                    depth: 1,
                })];
            d.cmd_copy_image_to_buffer(
                cb,
                self.image,
                vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                self.readback,
                &region,
            );
            let back = [vk::ImageMemoryBarrier::default()
                .old_layout(vk::ImageLayout::TRANSFER_SRC_OPTIMAL)
                .new_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
                .src_access_mask(vk::AccessFlags::TRANSFER_READ)
                .dst_access_mask(vk::AccessFlags::COLOR_ATTACHMENT_WRITE)
                .image(self.image)
                .subresource_range(color_range())];
            d.cmd_pipeline_barrier(
                cb,
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT,
                vk::DependencyFlags::empty(),
                &[],
                &[],
                &back,
            );
            d.end_command_buffer(cb).unwrap();
            cb
        }
    }

    /// The readback buffer's pixels.
    pub fn pixels(&self) -> Vec<u8> {
        // SAFETY: the buffer is mapped, coherent, and idle (the caller waited for its copy).
        unsafe { std::slice::from_raw_parts(self.readback_ptr, (WIDTH * HEIGHT * 4) as usize) }
            .to_vec()
    }
}

pub fn color_range() -> vk::ImageSubresourceRange {
    vk::ImageSubresourceRange {
        aspect_mask: vk::ImageAspectFlags::COLOR,
        base_mip_level: 0,
        level_count: 1,
        base_array_layer: 0,
        layer_count: 1,
    }
}

/// The RGBA of pixel (x, y).
pub fn pixel(p: &[u8], x: u32, y: u32) -> [u8; 4] {
    let i = ((y * WIDTH + x) * 4) as usize;
    [p[i], p[i + 1], p[i + 2], p[i + 3]]
}

/// The pass kind of a cleared triangle (restartable).
pub const CLEARED: PassKind = PassKind {
    load: false,
    blend: Blend::Off,
    dynamic: false,
    draw: true,
};

/// Submits a pass of `kind` and its readback (two submissions); the pixels, or the error the
/// wait on the pass returned.
pub fn render_and_read(gpu: &Gpu, scene: &Scene, kind: PassKind) -> (vk::Result, Vec<u8>) {
    let pass = scene.pass(gpu, kind);
    let rb = scene.readback_cb(gpu);
    let f1 = gpu.fence();
    let r = gpu.submit(&[pass], f1);
    assert_eq!(r, vk::Result::SUCCESS, "submit of the pass");
    let (w, _) = gpu.wait(f1);
    if w != vk::Result::SUCCESS {
        return (w, Vec::new());
    }
    let f2 = gpu.fence();
    assert_eq!(gpu.submit(&[rb], f2), vk::Result::SUCCESS);
    assert_eq!(gpu.wait(f2).0, vk::Result::SUCCESS);
    (vk::Result::SUCCESS, scene.pixels())
}

/// The pixels of a cleared pass with the triangle.
pub fn check_triangle(p: &[u8]) {
    assert_eq!(pixel(p, 2, 2), TRIANGLE_RGBA, "inside the triangle");
    assert_eq!(
        pixel(p, WIDTH - 3, HEIGHT - 3),
        CLEAR_RGBA,
        "outside the triangle"
    );
    let red = p.chunks(4).filter(|c| *c == TRIANGLE_RGBA).count();
    let blue = p.chunks(4).filter(|c| *c == CLEAR_RGBA).count();
    assert_eq!(
        red + blue,
        (WIDTH * HEIGHT) as usize,
        "every pixel is triangle or clear"
    );
}
