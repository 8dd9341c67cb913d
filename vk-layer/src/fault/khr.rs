//! `VK_KHR_device_fault` (extension 574, revision 1) as the registry defines it: ash 0.38
//! (registry 1.3.281) and Debian's loader 1.3.239 predate it, so the layer defines what it
//! uses. Layouts follow `vk.xml`; the address and vendor info structures are aliases of the
//! `VK_EXT_device_fault` ones.

use std::ffi::{c_char, c_void};

use ash::vk;

/// `VK_KHR_DEVICE_FAULT_EXTENSION_NAME`.
pub const NAME: &std::ffi::CStr = c"VK_KHR_device_fault";
/// `VK_KHR_DEVICE_FAULT_SPEC_VERSION`.
pub const SPEC_VERSION: u32 = 1;

/// Structure types (extension 574: `1000000000 + 573 * 1000 + offset`).
pub const STRUCTURE_TYPE_PHYSICAL_DEVICE_FAULT_FEATURES_KHR: vk::StructureType =
    vk::StructureType::from_raw(1_000_573_000);
pub const STRUCTURE_TYPE_PHYSICAL_DEVICE_FAULT_PROPERTIES_KHR: vk::StructureType =
    vk::StructureType::from_raw(1_000_573_001);
pub const STRUCTURE_TYPE_DEVICE_FAULT_INFO_KHR: vk::StructureType =
    vk::StructureType::from_raw(1_000_573_002);
pub const STRUCTURE_TYPE_DEVICE_FAULT_DEBUG_INFO_KHR: vk::StructureType =
    vk::StructureType::from_raw(1_000_573_003);

/// `VK_ERROR_NOT_ENOUGH_SPACE_KHR` (`VK_KHR_pipeline_binary`, extension 484).
pub const ERROR_NOT_ENOUGH_SPACE_KHR: vk::Result = vk::Result::from_raw(-1_000_483_000);

/// `VkDeviceFaultFlagBitsKHR`: the library's, which logs the reports.
pub use agx_winsys::vulkan::fault_log::flags;

/// `VkPhysicalDeviceFaultFeaturesKHR`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PhysicalDeviceFaultFeaturesKHR {
    pub s_type: vk::StructureType,
    pub p_next: *mut c_void,
    pub device_fault: vk::Bool32,
    pub device_fault_vendor_binary: vk::Bool32,
    pub device_fault_report_masked: vk::Bool32,
    pub device_fault_device_lost_on_masked: vk::Bool32,
}

/// `VkPhysicalDeviceFaultPropertiesKHR`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PhysicalDeviceFaultPropertiesKHR {
    pub s_type: vk::StructureType,
    pub p_next: *mut c_void,
    pub max_device_fault_count: u32,
}

/// `VkDeviceFaultInfoKHR`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DeviceFaultInfoKHR {
    pub s_type: vk::StructureType,
    pub p_next: *mut c_void,
    pub flags: u32,
    pub group_id: u64,
    pub description: [c_char; vk::MAX_DESCRIPTION_SIZE],
    pub fault_address_info: vk::DeviceFaultAddressInfoEXT,
    pub instruction_address_info: vk::DeviceFaultAddressInfoEXT,
    pub vendor_info: vk::DeviceFaultVendorInfoEXT,
}

/// `VkDeviceFaultDebugInfoKHR`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DeviceFaultDebugInfoKHR {
    pub s_type: vk::StructureType,
    pub p_next: *mut c_void,
    pub vendor_binary_size: u32,
    pub p_vendor_binary_data: *mut c_void,
}

/// `PFN_vkGetDeviceFaultReportsKHR`.
pub type PfnGetDeviceFaultReportsKHR = unsafe extern "system" fn(
    device: vk::Device,
    timeout: u64,
    p_fault_counts: *mut u32,
    p_fault_info: *mut DeviceFaultInfoKHR,
) -> vk::Result;

/// `PFN_vkGetDeviceFaultDebugInfoKHR`.
pub type PfnGetDeviceFaultDebugInfoKHR = unsafe extern "system" fn(
    device: vk::Device,
    p_debug_info: *mut DeviceFaultDebugInfoKHR,
) -> vk::Result;

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn layouts_match_the_registry_on_64_bit() {
        // Offsets from the C declarations (natural alignment, LP64).
        assert_eq!(size_of::<PhysicalDeviceFaultFeaturesKHR>(), 32);
        assert_eq!(
            offset_of!(
                PhysicalDeviceFaultFeaturesKHR,
                device_fault_device_lost_on_masked
            ),
            28
        );
        assert_eq!(size_of::<PhysicalDeviceFaultPropertiesKHR>(), 24);
        assert_eq!(offset_of!(DeviceFaultInfoKHR, flags), 16);
        assert_eq!(offset_of!(DeviceFaultInfoKHR, group_id), 24);
        assert_eq!(offset_of!(DeviceFaultInfoKHR, description), 32);
        assert_eq!(offset_of!(DeviceFaultInfoKHR, fault_address_info), 288);
        assert_eq!(
            offset_of!(DeviceFaultInfoKHR, instruction_address_info),
            312
        );
        assert_eq!(offset_of!(DeviceFaultInfoKHR, vendor_info), 336);
        assert_eq!(size_of::<DeviceFaultInfoKHR>(), 336 + 256 + 16);
        assert_eq!(offset_of!(DeviceFaultDebugInfoKHR, vendor_binary_size), 16);
        assert_eq!(
            offset_of!(DeviceFaultDebugInfoKHR, p_vendor_binary_data),
            24
        );
        assert_eq!(size_of::<DeviceFaultDebugInfoKHR>(), 32);
    }
}
