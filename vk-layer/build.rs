//! Writes the layer manifest `VkLayer_agx_fault.json` next to the built library
//! (`target/<profile>/`), with a `library_path` relative to the manifest.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Never unloaded: the loader dlcloses layers with their last instance, which would reset
    // the process-wide statistics (and strand hooks a second instance still holds).
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is target/<profile>/build/<pkg>-<hash>/out (or with a target triple in between):
    // the library lands in the directory three levels up.
    let Some(profile_dir) = out.ancestors().nth(3).map(Path::to_path_buf) else {
        println!("cargo:warning=cannot locate the target directory from OUT_DIR; no manifest");
        return;
    };
    let manifest = manifest_json();
    // Next to the uplifted library (`cargo build`) and next to the one in deps/ (`cargo test`
    // links the cdylib there without uplifting it).
    for dir in [profile_dir.clone(), profile_dir.join("deps")] {
        let path = dir.join("VkLayer_agx_fault.json");
        if std::fs::read_to_string(&path).ok().as_deref() != Some(manifest.as_str()) {
            let _ = std::fs::create_dir_all(&dir);
            if let Err(e) = std::fs::write(&path, &manifest) {
                println!("cargo:warning=cannot write {}: {e}", path.display());
            }
        }
    }
}

fn manifest_json() -> String {
    format!(
        r#"{{
    "file_format_version": "1.2.0",
    "layer": {{
        "name": "VK_LAYER_AGX_fault",
        "type": "GLOBAL",
        "library_path": "./libagx_vk_layer.so",
        "api_version": "1.3.239",
        "implementation_version": "{}",
        "description": "AGX fault injection, device-lost contract, VK_EXT_device_fault, VK_KHR_device_fault and idempotent replay",
        "device_extensions": [
            {{
                "name": "VK_EXT_device_fault",
                "spec_version": "2",
                "entrypoints": ["vkGetDeviceFaultInfoEXT"]
            }},
            {{
                "name": "VK_KHR_device_fault",
                "spec_version": "1",
                "entrypoints": ["vkGetDeviceFaultReportsKHR", "vkGetDeviceFaultDebugInfoKHR"]
            }}
        ]
    }}
}}
"#,
        std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_else(|_| "1".into())
    )
}
