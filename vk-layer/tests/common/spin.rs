//! GPU work the host lets finish.

use ash::vk;

use super::{spv, Gpu};

/// GPU work that lasts until the host lets it finish: a command buffer that waits for an event
/// the host sets, then a dispatch that writes a marker. (llvmpipe ends any shader loop after
/// 65535 turns, so a spinning shader cannot hold the GPU.)
pub struct Spin {
    pub cb: vk::CommandBuffer,
    event: vk::Event,
    device: ash::Device,
    ptr: *mut u32,
}

impl Spin {
    pub fn new(gpu: &Gpu) -> Spin {
        let d = &gpu.device;
        // SAFETY: plain Vulkan object creation and recording with valid structures.
        unsafe {
            let buf = d
                .create_buffer(
                    &vk::BufferCreateInfo::default()
                        .size(4)
                        .usage(vk::BufferUsageFlags::STORAGE_BUFFER),
                    None,
                )
                .unwrap();
            let req = d.get_buffer_memory_requirements(buf);
            let mem = d
                .allocate_memory(
                    &vk::MemoryAllocateInfo::default()
                        .allocation_size(req.size)
                        .memory_type_index(gpu.memory_type(
                            req.memory_type_bits,
                            vk::MemoryPropertyFlags::HOST_VISIBLE
                                | vk::MemoryPropertyFlags::HOST_COHERENT,
                        )),
                    None,
                )
                .unwrap();
            d.bind_buffer_memory(buf, mem, 0).unwrap();
            let ptr = d
                .map_memory(mem, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
                .unwrap() as *mut u32;
            std::ptr::write_bytes(ptr, 0, 1);
            let binding = [vk::DescriptorSetLayoutBinding::default()
                .binding(0)
                .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                .descriptor_count(1)
                .stage_flags(vk::ShaderStageFlags::COMPUTE)];
            let dsl = d
                .create_descriptor_set_layout(
                    &vk::DescriptorSetLayoutCreateInfo::default().bindings(&binding),
                    None,
                )
                .unwrap();
            let sizes = [vk::DescriptorPoolSize {
                ty: vk::DescriptorType::STORAGE_BUFFER,
                descriptor_count: 1,
            }];
            let pool = d
                .create_descriptor_pool(
                    &vk::DescriptorPoolCreateInfo::default()
                        .max_sets(1)
                        .pool_sizes(&sizes),
                    None,
                )
                .unwrap();
            let layouts = [dsl];
            let set = d
                .allocate_descriptor_sets(
                    &vk::DescriptorSetAllocateInfo::default()
                        .descriptor_pool(pool)
                        .set_layouts(&layouts),
                )
                .unwrap()[0];
            let bi = [vk::DescriptorBufferInfo {
                buffer: buf,
                offset: 0,
                range: vk::WHOLE_SIZE,
            }];
            let w = [vk::WriteDescriptorSet::default()
                .dst_set(set)
                .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                .buffer_info(&bi)];
            d.update_descriptor_sets(&w, &[]);
            let pl = d
                .create_pipeline_layout(
                    &vk::PipelineLayoutCreateInfo::default().set_layouts(&layouts),
                    None,
                )
                .unwrap();
            let module = d
                .create_shader_module(
                    &vk::ShaderModuleCreateInfo::default()
                        .code(&spv(include_bytes!("../shaders/marker.comp.spv"))),
                    None,
                )
                .unwrap();
            let stage = vk::PipelineShaderStageCreateInfo::default()
                .stage(vk::ShaderStageFlags::COMPUTE)
                .module(module)
                .name(c"main");
            let pipe = d
                .create_compute_pipelines(
                    vk::PipelineCache::null(),
                    &[vk::ComputePipelineCreateInfo::default()
                        .stage(stage)
                        .layout(pl)],
                    None,
                )
                .unwrap()[0];
            let event = d
                .create_event(&vk::EventCreateInfo::default(), None)
                .unwrap();
            let cb = gpu.command_buffer();
            d.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default())
                .unwrap();
            d.cmd_wait_events(
                cb,
                &[event],
                vk::PipelineStageFlags::HOST,
                vk::PipelineStageFlags::COMPUTE_SHADER,
                &[],
                &[],
                &[],
            );
            d.cmd_bind_pipeline(cb, vk::PipelineBindPoint::COMPUTE, pipe);
            d.cmd_bind_descriptor_sets(cb, vk::PipelineBindPoint::COMPUTE, pl, 0, &[set], &[]);
            d.cmd_dispatch(cb, 1, 1, 1);
            d.end_command_buffer(cb).unwrap();
            Spin {
                cb,
                event,
                device: d.clone(),
                ptr,
            }
        }
    }

    /// Lets the job finish.
    pub fn release(&self) {
        // SAFETY: a valid event of this device.
        unsafe { self.device.set_event(self.event) }.unwrap();
    }

    /// Whether the job wrote its marker.
    pub fn finished(&self) -> bool {
        // SAFETY: a coherent host mapping of the job's buffer.
        unsafe { std::ptr::read_volatile(self.ptr) == 1 }
    }
}

// SAFETY: the mapping pointer is only read, with volatile reads of one u32.
unsafe impl Send for Spin {}
// SAFETY: as above.
unsafe impl Sync for Spin {}
