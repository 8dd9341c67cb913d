//! The loader's layer interface (`vk_layer.h`): the negotiation struct and the chain-info structs
//! the loader puts in the `pNext` chains of `VkInstanceCreateInfo` and `VkDeviceCreateInfo`.
//! They are not part of the Vulkan registry, so `ash` does not define them.
//!
//! Layouts follow `vk_layer.h` of loader 1.3.239 field for field (checked by the unit tests
//! below against the C sizes on 64-bit Linux).

use std::ffi::{c_char, c_void};

use ash::vk;

/// `VkNegotiateLayerStructType::LAYER_NEGOTIATE_INTERFACE_STRUCT`.
pub const LAYER_NEGOTIATE_INTERFACE_STRUCT: u32 = 1;

/// `VkLayerFunction::VK_LAYER_LINK_INFO`.
pub const VK_LAYER_LINK_INFO: u32 = 0;
/// `VkLayerFunction::VK_LOADER_DATA_CALLBACK`.
pub const VK_LOADER_DATA_CALLBACK: u32 = 1;

/// `PFN_GetPhysicalDeviceProcAddr`.
pub type PfnGetPhysicalDeviceProcAddr =
    Option<unsafe extern "system" fn(vk::Instance, *const c_char) -> vk::PFN_vkVoidFunction>;

/// `PFN_vkSetDeviceLoaderData`.
pub type PfnSetDeviceLoaderData =
    unsafe extern "system" fn(device: vk::Device, object: *mut c_void) -> vk::Result;

/// `VkNegotiateLayerInterface`.
#[repr(C)]
pub struct VkNegotiateLayerInterface {
    pub s_type: u32,
    pub p_next: *mut c_void,
    pub loader_layer_interface_version: u32,
    pub pfn_get_instance_proc_addr: Option<vk::PFN_vkGetInstanceProcAddr>,
    pub pfn_get_device_proc_addr: Option<vk::PFN_vkGetDeviceProcAddr>,
    pub pfn_get_physical_device_proc_addr: PfnGetPhysicalDeviceProcAddr,
}

/// `VkLayerInstanceLink`.
#[repr(C)]
pub struct VkLayerInstanceLink {
    pub p_next: *mut VkLayerInstanceLink,
    pub pfn_next_get_instance_proc_addr: vk::PFN_vkGetInstanceProcAddr,
    pub pfn_next_get_physical_device_proc_addr: PfnGetPhysicalDeviceProcAddr,
}

/// The union of `VkLayerInstanceCreateInfo` (its largest member is a struct of two function
/// pointers).
#[repr(C)]
#[derive(Clone, Copy)]
pub union VkLayerInstanceCreateInfoU {
    pub p_layer_info: *mut VkLayerInstanceLink,
    pub pfn_set_instance_loader_data: *const c_void,
    pub layer_device: [*const c_void; 2],
    pub loader_features: u32,
}

/// `VkLayerInstanceCreateInfo` (`sType` 47, `VK_STRUCTURE_TYPE_LOADER_INSTANCE_CREATE_INFO`).
#[repr(C)]
pub struct VkLayerInstanceCreateInfo {
    pub s_type: vk::StructureType,
    pub p_next: *const c_void,
    pub function: u32,
    pub u: VkLayerInstanceCreateInfoU,
}

/// `VkLayerDeviceLink`.
#[repr(C)]
pub struct VkLayerDeviceLink {
    pub p_next: *mut VkLayerDeviceLink,
    pub pfn_next_get_instance_proc_addr: vk::PFN_vkGetInstanceProcAddr,
    pub pfn_next_get_device_proc_addr: vk::PFN_vkGetDeviceProcAddr,
}

/// The union of `VkLayerDeviceCreateInfo`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union VkLayerDeviceCreateInfoU {
    pub p_layer_info: *mut VkLayerDeviceLink,
    pub pfn_set_device_loader_data: Option<PfnSetDeviceLoaderData>,
}

/// `VkLayerDeviceCreateInfo` (`sType` 48, `VK_STRUCTURE_TYPE_LOADER_DEVICE_CREATE_INFO`).
#[repr(C)]
pub struct VkLayerDeviceCreateInfo {
    pub s_type: vk::StructureType,
    pub p_next: *const c_void,
    pub function: u32,
    pub u: VkLayerDeviceCreateInfoU,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn layouts_match_vk_layer_h() {
        assert_eq!(vk::StructureType::LOADER_INSTANCE_CREATE_INFO.as_raw(), 47);
        assert_eq!(vk::StructureType::LOADER_DEVICE_CREATE_INFO.as_raw(), 48);
        assert_eq!(size_of::<VkNegotiateLayerInterface>(), 48);
        assert_eq!(
            offset_of!(VkNegotiateLayerInterface, pfn_get_instance_proc_addr),
            24
        );
        assert_eq!(size_of::<VkLayerInstanceLink>(), 24);
        assert_eq!(size_of::<VkLayerInstanceCreateInfo>(), 40);
        assert_eq!(offset_of!(VkLayerInstanceCreateInfo, u), 24);
        assert_eq!(size_of::<VkLayerDeviceLink>(), 24);
        assert_eq!(size_of::<VkLayerDeviceCreateInfo>(), 32);
        assert_eq!(offset_of!(VkLayerDeviceCreateInfo, u), 24);
    }
}
