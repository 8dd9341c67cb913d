//! Test harness: locating the built layer, running a scenario in a child process (fault plans
//! are per-process environment variables), and a tiny Vulkan renderer on the real loader and
//! lavapipe.
#![allow(dead_code)]

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ash::vk;

pub const INSTALL_HINT: &str = "these tests need the Vulkan loader and a Vulkan driver: \
    apt-get install -y mesa-vulkan-drivers libvulkan1 vulkan-tools (lavapipe is enough)";

pub const WIDTH: u32 = 64;
pub const HEIGHT: u32 = 64;
/// The clear colour (blue) and the triangle's colour (red, alpha 0.5), as RGBA8.
pub const CLEAR_RGBA: [u8; 4] = [0, 0, 255, 255];
pub const TRIANGLE_RGBA: [u8; 4] = [255, 0, 0, 128];

/// `target/<profile>` of this test binary (`target/<profile>/deps/<test>-<hash>`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// The built layer library: the newest of `target/<profile>/deps/` (where `cargo test` links
/// it) and `target/<profile>/` (where `cargo build` uplifts it).
pub fn layer_library() -> PathBuf {
    let dir = profile_dir();
    [
        dir.join("deps/libagx_vk_layer.so"),
        dir.join("libagx_vk_layer.so"),
    ]
    .into_iter()
    .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
    .max()
    .map(|(_, p)| p)
    .unwrap_or_else(|| {
        panic!(
            "libagx_vk_layer.so not found in {} (build it with `cargo build -p agx-vk-layer`)",
            dir.display()
        )
    })
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh private directory (0700) under the target directory's tmp.
pub fn private_dir(tag: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vk-layer-tests");
    let d = base.join(format!(
        "{tag}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create private dir");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).expect("chmod 0700");
    d
}

/// A manifest for the built library in a private directory (absolute `library_path`), so the
/// tests do not depend on where the build script put its copy.
pub fn layer_manifest_dir() -> PathBuf {
    let d = private_dir("manifest");
    let lib = layer_library();
    let text = format!(
        r#"{{"file_format_version":"1.2.0","layer":{{"name":"VK_LAYER_AGX_fault","type":"GLOBAL",
"library_path":"{}","api_version":"1.3.239","implementation_version":"1",
"description":"test copy"}}}}"#,
        lib.display()
    );
    std::fs::write(d.join("VkLayer_agx_fault.json"), text).expect("write manifest");
    d
}

/// Fails (never skips) when no Vulkan driver is usable.
pub fn require_vulkan() {
    // SAFETY: loading the system Vulkan loader.
    let entry = unsafe { ash::Entry::load() }
        .unwrap_or_else(|e| panic!("cannot load libvulkan.so.1 ({e}); {INSTALL_HINT}"));
    let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_3);
    let ci = vk::InstanceCreateInfo::default().application_info(&app);
    // SAFETY: valid create info.
    let inst = unsafe { entry.create_instance(&ci, None) }
        .unwrap_or_else(|e| panic!("vkCreateInstance failed ({e}); {INSTALL_HINT}"));
    // SAFETY: valid instance.
    let n = unsafe { inst.enumerate_physical_devices() }
        .map(|v| v.len())
        .unwrap_or(0);
    // SAFETY: destroyed once.
    unsafe { inst.destroy_instance(None) };
    assert!(n > 0, "no Vulkan physical device; {INSTALL_HINT}");
}

/// The outcome of a child scenario.
pub struct Child {
    pub stdout: String,
    pub stderr: String,
    pub stats: Option<serde_json::Value>,
}

/// How long a child scenario or application may run before it counts as hung.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `cmd` to completion, killing it after `limit` (then `timed_out` is set).
pub fn output_within(mut cmd: Command, limit: Duration) -> (std::process::Output, bool) {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Drain the pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let t0 = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if t0.elapsed() > limit {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let o = std::process::Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    };
    (o, timed_out)
}

/// Runs scenario `name` of the `layer` test binary in a child process with `plan` (and more
/// environment), within [`CHILD_TIMEOUT`].
pub fn run_scenario_env(name: &str, plan: &str, env: &[(&str, &str)]) -> Child {
    require_vulkan();
    let manifest = layer_manifest_dir();
    let xdg = private_dir("xdg");
    let stats = private_dir("stats").join("stats.json");
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env("AGX_TEST_SCENARIO", name)
        .env("AGX_FAULT_PLAN", plan)
        .env("AGX_FAULT_STATS", &stats)
        .env("VK_LAYER_PATH", &manifest)
        .env("XDG_RUNTIME_DIR", &xdg)
        .env_remove("VK_INSTANCE_LAYERS")
        .env_remove("AGX_FAULT_WEAKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (out, timed_out) = output_within(cmd, CHILD_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !timed_out,
        "scenario {name} (plan {plan:?}) hung: killed after {CHILD_TIMEOUT:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        out.status.success() && stdout.contains(&format!("SCENARIO {name} OK")),
        "scenario {name} (plan {plan:?}) failed: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    let stats = std::fs::read_to_string(&stats)
        .ok()
        .map(|s| serde_json::from_str(&s).expect("stats file is JSON"));
    Child {
        stdout,
        stderr,
        stats,
    }
}

/// Runs scenario `name` with `plan` (see [`run_scenario_env`]).
pub fn run_scenario(name: &str, plan: &str) -> Child {
    run_scenario_env(name, plan, &[])
}

/// A device with the layer enabled (by `ppEnabledLayerNames`) and VK_EXT_device_fault.
pub struct Gpu {
    pub entry: ash::Entry,
    pub instance: ash::Instance,
    pub phys: vk::PhysicalDevice,
    pub device: ash::Device,
    pub queue: vk::Queue,
    pub family: u32,
    pub fault: ash::ext::device_fault::Device,
    pub mem_props: vk::PhysicalDeviceMemoryProperties,
    pub pool: vk::CommandPool,
}

impl Gpu {
    pub fn new() -> Gpu {
        Gpu::with_layer(true)
    }

    /// A device with or without the layer (without it, no VK_EXT_device_fault on lavapipe).
    pub fn with_layer(layer: bool) -> Gpu {
        // SAFETY: plain Vulkan setup with valid structures throughout.
        unsafe {
            let entry = ash::Entry::load().expect(INSTALL_HINT);
            let layers = [c"VK_LAYER_AGX_fault".as_ptr()];
            let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_3);
            let ci = vk::InstanceCreateInfo::default()
                .application_info(&app)
                .enabled_layer_names(if layer { &layers[..] } else { &[] });
            let instance = entry
                .create_instance(&ci, None)
                .expect("create instance with VK_LAYER_AGX_fault (is VK_LAYER_PATH right?)");
            let phys = instance.enumerate_physical_devices().unwrap()[0];
            let exts = instance
                .enumerate_device_extension_properties(phys)
                .unwrap();
            let has_fault = exts
                .iter()
                .any(|e| e.extension_name_as_c_str().unwrap() == c"VK_EXT_device_fault");
            if layer {
                assert!(has_fault, "the layer advertises VK_EXT_device_fault");
                let mut ff = vk::PhysicalDeviceFaultFeaturesEXT::default();
                let mut f2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut ff);
                instance.get_physical_device_features2(phys, &mut f2);
                assert_eq!(ff.device_fault, vk::TRUE, "deviceFault feature");
            }
            let family = instance
                .get_physical_device_queue_family_properties(phys)
                .iter()
                .position(|q| q.queue_flags.contains(vk::QueueFlags::GRAPHICS))
                .expect("a graphics queue") as u32;
            let prio = [1.0];
            let qci = [vk::DeviceQueueCreateInfo::default()
                .queue_family_index(family)
                .queue_priorities(&prio)];
            let dext = [c"VK_EXT_device_fault".as_ptr()];
            let mut fault_feat = vk::PhysicalDeviceFaultFeaturesEXT::default().device_fault(true);
            let mut v12 = vk::PhysicalDeviceVulkan12Features::default().timeline_semaphore(true);
            let mut v13 = vk::PhysicalDeviceVulkan13Features::default()
                .dynamic_rendering(true)
                .synchronization2(true);
            let mut dci = vk::DeviceCreateInfo::default()
                .queue_create_infos(&qci)
                .push_next(&mut v12)
                .push_next(&mut v13);
            if has_fault {
                dci = dci
                    .enabled_extension_names(&dext)
                    .push_next(&mut fault_feat);
            }
            let device = instance
                .create_device(phys, &dci, None)
                .expect("create device with VK_EXT_device_fault");
            let queue = device.get_device_queue(family, 0);
            let fault = ash::ext::device_fault::Device::new(&instance, &device);
            let mem_props = instance.get_physical_device_memory_properties(phys);
            let pool = device
                .create_command_pool(
                    &vk::CommandPoolCreateInfo::default()
                        .queue_family_index(family)
                        .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER),
                    None,
                )
                .unwrap();
            Gpu {
                entry,
                instance,
                phys,
                device,
                queue,
                family,
                fault,
                mem_props,
                pool,
            }
        }
    }

    pub fn memory_type(&self, bits: u32, want: vk::MemoryPropertyFlags) -> u32 {
        (0..self.mem_props.memory_type_count)
            .find(|&i| {
                bits & (1 << i) != 0
                    && self.mem_props.memory_types[i as usize]
                        .property_flags
                        .contains(want)
            })
            .expect("a memory type")
    }

    pub fn fence(&self) -> vk::Fence {
        // SAFETY: valid device.
        unsafe {
            self.device
                .create_fence(&vk::FenceCreateInfo::default(), None)
        }
        .unwrap()
    }

    pub fn command_buffer(&self) -> vk::CommandBuffer {
        let ai = vk::CommandBufferAllocateInfo::default()
            .command_pool(self.pool)
            .level(vk::CommandBufferLevel::PRIMARY)
            .command_buffer_count(1);
        // SAFETY: valid pool.
        unsafe { self.device.allocate_command_buffers(&ai) }.unwrap()[0]
    }

    /// `vkQueueSubmit` of `cbs` with `fence`.
    pub fn submit(&self, cbs: &[vk::CommandBuffer], fence: vk::Fence) -> vk::Result {
        let si = [vk::SubmitInfo::default().command_buffers(cbs)];
        // SAFETY: valid command buffers and fence.
        match unsafe { self.device.queue_submit(self.queue, &si, fence) } {
            Ok(()) => vk::Result::SUCCESS,
            Err(e) => e,
        }
    }

    /// `vkWaitForFences` with a 5 s timeout, and how long it took.
    pub fn wait(&self, fence: vk::Fence) -> (vk::Result, Duration) {
        let t = Instant::now();
        // SAFETY: valid fence.
        let r = unsafe { self.device.wait_for_fences(&[fence], true, 5_000_000_000) };
        (r.err().unwrap_or(vk::Result::SUCCESS), t.elapsed())
    }

    /// `vkGetDeviceFaultInfoEXT`, two-call: (description, address infos, vendor infos).
    pub fn fault_info(
        &self,
    ) -> (
        String,
        Vec<vk::DeviceFaultAddressInfoEXT>,
        Vec<vk::DeviceFaultVendorInfoEXT>,
    ) {
        let f = self.fault.fp().get_device_fault_info_ext;
        let mut counts = vk::DeviceFaultCountsEXT::default();
        // SAFETY: valid device and out structures.
        unsafe {
            assert_eq!(
                f(self.device.handle(), &mut counts, std::ptr::null_mut()),
                vk::Result::SUCCESS
            );
            let mut addrs =
                vec![vk::DeviceFaultAddressInfoEXT::default(); counts.address_info_count as usize];
            let mut vendors =
                vec![vk::DeviceFaultVendorInfoEXT::default(); counts.vendor_info_count as usize];
            let mut info = vk::DeviceFaultInfoEXT {
                p_address_infos: addrs.as_mut_ptr(),
                p_vendor_infos: vendors.as_mut_ptr(),
                ..Default::default()
            };
            assert_eq!(
                f(self.device.handle(), &mut counts, &mut info),
                vk::Result::SUCCESS
            );
            let desc = CStr::from_ptr(info.description.as_ptr())
                .to_string_lossy()
                .into_owned();
            (desc, addrs, vendors)
        }
    }

    pub fn destroy(self) {
        // SAFETY: destroying what `new` created (objects made by tests are leaked to the
        // device's destruction, which the layer must cope with).
        unsafe {
            let _ = self.device.device_wait_idle();
            self.device.destroy_command_pool(self.pool, None);
            self.device.destroy_device(None);
            self.instance.destroy_instance(None);
        }
    }
}

/// The vendor info with `code`, as (description, data).
pub fn vendor(v: &[vk::DeviceFaultVendorInfoEXT], code: u64) -> Option<(String, u64)> {
    v.iter().find(|i| i.vendor_fault_code == code).map(|i| {
        (
            i.description_as_c_str()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
            i.vendor_fault_data,
        )
    })
}

fn spv(bytes: &[u8]) -> Vec<u32> {
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
    pub blend: bool,
    pub dynamic: bool,
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
            let blend = [vk::PipelineColorBlendAttachmentState::default()
                .blend_enable(kind.blend)
                .src_color_blend_factor(vk::BlendFactor::SRC_ALPHA)
                .dst_color_blend_factor(vk::BlendFactor::ONE_MINUS_SRC_ALPHA)
                .color_blend_op(vk::BlendOp::ADD)
                .src_alpha_blend_factor(vk::BlendFactor::ONE)
                .dst_alpha_blend_factor(vk::BlendFactor::ZERO)
                .alpha_blend_op(vk::BlendOp::ADD)
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
            d.cmd_draw(cb, 3, 1, 0, 0);
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
    blend: false,
    dynamic: false,
};

/// A semaphore wait or signal of [`Gpu::submit_sync`]: (semaphore, value; 0 for binary).
pub type Sem = (vk::Semaphore, u64);

impl Gpu {
    /// A timeline semaphore starting at `initial`.
    pub fn timeline(&self, initial: u64) -> vk::Semaphore {
        let mut tl = vk::SemaphoreTypeCreateInfo::default()
            .semaphore_type(vk::SemaphoreType::TIMELINE)
            .initial_value(initial);
        // SAFETY: a valid create info.
        unsafe {
            self.device
                .create_semaphore(&vk::SemaphoreCreateInfo::default().push_next(&mut tl), None)
        }
        .unwrap()
    }

    /// A binary semaphore.
    pub fn binary(&self) -> vk::Semaphore {
        // SAFETY: a valid create info.
        unsafe {
            self.device
                .create_semaphore(&vk::SemaphoreCreateInfo::default(), None)
        }
        .unwrap()
    }

    /// One `vkQueueSubmit` of `batches`: (command buffers, waits, signals) each.
    pub fn submit_sync(
        &self,
        batches: &[(&[vk::CommandBuffer], &[Sem], &[Sem])],
        fence: vk::Fence,
    ) -> vk::Result {
        let waits: Vec<Vec<vk::Semaphore>> = batches
            .iter()
            .map(|b| b.1.iter().map(|s| s.0).collect())
            .collect();
        let wvals: Vec<Vec<u64>> = batches
            .iter()
            .map(|b| b.1.iter().map(|s| s.1).collect())
            .collect();
        let stages: Vec<Vec<vk::PipelineStageFlags>> = batches
            .iter()
            .map(|b| vec![vk::PipelineStageFlags::ALL_COMMANDS; b.1.len()])
            .collect();
        let sigs: Vec<Vec<vk::Semaphore>> = batches
            .iter()
            .map(|b| b.2.iter().map(|s| s.0).collect())
            .collect();
        let svals: Vec<Vec<u64>> = batches
            .iter()
            .map(|b| b.2.iter().map(|s| s.1).collect())
            .collect();
        let mut tl: Vec<vk::TimelineSemaphoreSubmitInfo<'_>> = (0..batches.len())
            .map(|i| {
                vk::TimelineSemaphoreSubmitInfo::default()
                    .wait_semaphore_values(&wvals[i])
                    .signal_semaphore_values(&svals[i])
            })
            .collect();
        let infos: Vec<vk::SubmitInfo<'_>> = tl
            .iter_mut()
            .enumerate()
            .map(|(i, t)| {
                vk::SubmitInfo::default()
                    .command_buffers(batches[i].0)
                    .wait_semaphores(&waits[i])
                    .wait_dst_stage_mask(&stages[i])
                    .signal_semaphores(&sigs[i])
                    .push_next(t)
            })
            .collect();
        // SAFETY: valid submit infos.
        match unsafe { self.device.queue_submit(self.queue, &infos, fence) } {
            Ok(()) => vk::Result::SUCCESS,
            Err(e) => e,
        }
    }

    /// `vkGetFenceStatus` as a result code.
    pub fn fence_status(&self, f: vk::Fence) -> vk::Result {
        // SAFETY: a valid fence.
        match unsafe { self.device.get_fence_status(f) } {
            Ok(true) => vk::Result::SUCCESS,
            Ok(false) => vk::Result::NOT_READY,
            Err(e) => e,
        }
    }
}

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

/// What the real-application tests and the zink benchmark need installed.
pub const APPS_HINT: &str =
    "apt-get install -y xvfb xauth vulkan-tools mesa-utils libgl1-mesa-dri xdotool";

/// An Xvfb server on a display of its own, killed on drop.
pub struct Xvfb {
    child: std::process::Child,
    pub display: String,
}

impl Xvfb {
    pub fn start() -> Xvfb {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "640x480x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run Xvfb ({e}); {APPS_HINT}"));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("Xvfb prints its display");
        let n: u32 = line.trim().parse().expect("a display number");
        Xvfb {
            child,
            display: format!(":{n}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
