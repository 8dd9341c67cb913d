//! Where things are: the checkout, the vendored dEQP-VK build (unpacked once into a cache
//! directory keyed by the tarball's digest), deqp-runner, the layer, lavapipe.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The lavapipe ICD manifest (Debian's `mesa-vulkan-drivers`).
pub const LAVAPIPE_ICD: &str = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json";

/// The deqp-runner version the README's test command installs (`tools/test-all.sh`); the tool
/// looks for it in the cache under this version first.
pub const DEQP_RUNNER_VERSION: &str = "0.24.0";

/// The checkout this tool was built from (`tools/deqp/../..`).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| here.to_path_buf())
}

/// `${XDG_CACHE_HOME:-$HOME/.cache}/agx-winsys`.
pub fn cache_root() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("agx-winsys")
}

/// The vendored dEQP-VK tarball: `$AGX_DEQP_TARBALL`, else the one
/// `../shared/vendor/deqp-vk-*.tar.xz` next to the checkout.
pub fn tarball() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("AGX_DEQP_TARBALL") {
        return Ok(PathBuf::from(p));
    }
    let vendor = repo_root().join("../shared/vendor");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&vendor)
        .map_err(|e| format!("{}: {e} (set AGX_DEQP_TARBALL)", vendor.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("deqp-vk-") && n.ends_with(".tar.xz"))
        })
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(format!(
            "no deqp-vk-*.tar.xz in {} (set AGX_DEQP_TARBALL)",
            vendor.display()
        )),
        _ => Err(format!(
            "several deqp-vk-*.tar.xz in {}: set AGX_DEQP_TARBALL",
            vendor.display()
        )),
    }
}

fn sha256(path: &Path) -> Result<String, String> {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .map_err(|e| format!("sha256sum: {e}"))?;
    if !out.status.success() {
        return Err(format!("sha256sum {}: {}", path.display(), out.status));
    }
    let s = String::from_utf8_lossy(&out.stdout);
    s.split_whitespace()
        .next()
        .map(str::to_string)
        .ok_or_else(|| "sha256sum printed nothing".to_string())
}

/// The `deqp-vk` binary, unpacked from the tarball into
/// `<cache>/deqp/<tarball name>-<sha256 prefix>/` the first time (into a temporary directory
/// renamed into place, so an interrupted unpack is never used). Returns the binary's path.
pub fn deqp_binary() -> Result<PathBuf, String> {
    let tar = tarball()?;
    let digest = sha256(&tar)?;
    let stem = tar
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".tar.xz"))
        .unwrap_or("deqp-vk");
    let dir = cache_root()
        .join("deqp")
        .join(format!("{stem}-{}", &digest[..16]));
    let bin = dir.join("deqp-vk/deqp-vk");
    if bin.is_file() {
        return Ok(bin);
    }
    let parent = dir.parent().expect("a parent");
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let tmp = parent.join(format!(".unpack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    eprintln!(
        "agx-deqp: unpacking {} into {}",
        tar.display(),
        dir.display()
    );
    let st = Command::new("tar")
        .arg("-xJf")
        .arg(&tar)
        .arg("-C")
        .arg(&tmp)
        .status()
        .map_err(|e| format!("tar: {e}"))?;
    if !st.success() || !tmp.join("deqp-vk/deqp-vk").is_file() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(format!("unpacking {} failed ({st})", tar.display()));
    }
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another process may have unpacked it meanwhile.
        if !bin.is_file() {
            return Err(format!("{}: {e}", dir.display()));
        }
    }
    Ok(bin)
}

/// deqp-runner: `$DEQP_RUNNER`, else the cache's pinned install, else `deqp-runner` on `PATH`.
pub fn deqp_runner() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("DEQP_RUNNER") {
        return Ok(PathBuf::from(p));
    }
    let cached = cache_root()
        .join(format!("deqp-runner-{DEQP_RUNNER_VERSION}"))
        .join("bin/deqp-runner");
    if cached.is_file() {
        return Ok(cached);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join("deqp-runner");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(format!(
        "deqp-runner not found: install it with `cargo install deqp-runner --version \
         {DEQP_RUNNER_VERSION} --locked --root {}` (tools/test-all.sh does), or set DEQP_RUNNER",
        cached
            .parent()
            .and_then(Path::parent)
            .unwrap_or(&cached)
            .display()
    ))
}

/// The directory holding the built layer and its manifest (`target/release` by default), as
/// an absolute path.
pub fn layer_dir(given: Option<PathBuf>) -> Result<PathBuf, String> {
    let dir = given.unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target"))
            .join("release")
    });
    if !dir.join("VkLayer_agx_fault.json").is_file() {
        return Err(format!(
            "no VkLayer_agx_fault.json in {}: build the layer first (cargo build --release -p \
             agx-vk-layer) or pass --layer-dir",
            dir.display()
        ));
    }
    // Absolute: deqp-runner runs dEQP in the binary's directory, where a relative
    // VK_LAYER_PATH would name nothing (and the loader would run without the layer).
    dir.canonicalize()
        .map_err(|e| format!("{}: {e}", dir.display()))
}
