//! Process-wide statistics, written as one JSON object to the file named by `AGX_FAULT_STATS`
//! each time a device is destroyed or lost (running totals over all devices of the process).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

static SUBMITS: AtomicU64 = AtomicU64::new(0);
static FAULTS: AtomicU64 = AtomicU64::new(0);
static REPLAYS: AtomicU64 = AtomicU64::new(0);
static LOST: AtomicU64 = AtomicU64::new(0);
static ANALYSED: AtomicU64 = AtomicU64::new(0);
static RESTARTABLE: AtomicU64 = AtomicU64::new(0);
static SCRAMBLED: AtomicU64 = AtomicU64::new(0);
static SCRAMBLE_FAILED: AtomicU64 = AtomicU64::new(0);
static REASONS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

/// A device made `n` queue submissions (`vkQueueSubmit`/`vkQueueSubmit2` calls); added when
/// it is destroyed, so the submit path touches no global counter.
pub fn submitted(n: u64) {
    SUBMITS.fetch_add(n, Ordering::Relaxed);
}

/// A fault was injected.
pub fn fault_injected() {
    FAULTS.fetch_add(1, Ordering::Relaxed);
}

/// An innocent submission was replayed.
pub fn replayed() {
    REPLAYS.fetch_add(1, Ordering::Relaxed);
}

/// A device became lost.
pub fn device_lost() {
    LOST.fetch_add(1, Ordering::Relaxed);
}

/// The census: a submission hit by a neighbour fault was analysed; `reasons` is empty when it
/// is restartable, otherwise each reason is counted once.
pub fn analysed(reasons: &[&str]) {
    ANALYSED.fetch_add(1, Ordering::Relaxed);
    if reasons.is_empty() {
        RESTARTABLE.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let mut m = REASONS.lock().unwrap_or_else(|e| e.into_inner());
    for r in reasons {
        *m.entry(r.to_string()).or_insert(0) += 1;
    }
}

/// A scramble before a replay wrote `bytes` bytes of garbage.
pub fn scrambled(bytes: u64) {
    SCRAMBLED.fetch_add(bytes, Ordering::Relaxed);
}

/// A scramble could not be done (the fault became a device loss).
pub fn scramble_failed() {
    SCRAMBLE_FAILED.fetch_add(1, Ordering::Relaxed);
}

/// The running totals as a JSON object, counting `live` submissions of devices not destroyed
/// yet.
pub fn to_json(live: u64) -> serde_json::Value {
    let reasons = REASONS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    serde_json::json!({
        "submits": SUBMITS.load(Ordering::Relaxed) + live,
        "faults_injected": FAULTS.load(Ordering::Relaxed),
        "replays": REPLAYS.load(Ordering::Relaxed),
        "devices_lost": LOST.load(Ordering::Relaxed),
        "analysed": ANALYSED.load(Ordering::Relaxed),
        "restartable": RESTARTABLE.load(Ordering::Relaxed),
        "not_restartable_reasons": reasons,
        "scrambled_bytes": SCRAMBLED.load(Ordering::Relaxed),
        "scramble_failures": SCRAMBLE_FAILED.load(Ordering::Relaxed),
    })
}

/// `AGX_FAULT_STATS`, with `%p` replaced by a name unique to this process (its pid and the time
/// it first wrote statistics), so that processes run in parallel (deqp-runner's) each keep
/// their own file.
fn stats_path() -> Option<std::ffi::OsString> {
    static PATH: std::sync::OnceLock<Option<std::ffi::OsString>> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let p = std::env::var_os("AGX_FAULT_STATS")?;
        let Some(s) = p.to_str().filter(|s| s.contains("%p")) else {
            return Some(p);
        };
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Some(
            s.replace("%p", &format!("{}-{t}", std::process::id()))
                .into(),
        )
    })
    .clone()
}

/// Rewrites the file named by `AGX_FAULT_STATS` (if set) with the running totals. Errors go to
/// stderr; they never fail the Vulkan call.
pub fn write_file() {
    write_file_with(0);
}

/// Rewrites the statistics file, counting `live` submissions of a device still alive (when a
/// device is lost: an application may abort before destroying it).
pub fn write_file_with(live: u64) {
    let Some(path) = stats_path() else {
        return;
    };
    let text = to_json(live).to_string();
    // Write then rename, so a reader never sees a half-written file.
    let mut tmp = path.clone();
    tmp.push(".tmp");
    let r = std::fs::write(&tmp, text + "\n").and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = r {
        eprintln!("VK_LAYER_AGX_fault: cannot write AGX_FAULT_STATS {path:?}: {e}");
    }
}
