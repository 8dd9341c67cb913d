//! The result of the analysis: restartable, or the reasons why not.

use std::fmt;

use agx_uapi::fault_ext as ext;
use bitflags::bitflags;

bitflags! {
    /// Why a command is not restartable. The bit values are exactly the uAPI's
    /// `DRM_ASAHI_EXT_REASON_*`, so [`Reasons::bits`] goes straight into
    /// `drm_asahi_ext_job_info::reasons`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct Reasons: u32 {
        /// Memory read by an attachment load (or a generic/transfer read) before the command
        /// wrote it is also stored/written by the command (same attachment, an aliasing one, or
        /// a partial-render spill).
        const LOAD_STORE_SAME = ext::DRM_ASAHI_EXT_REASON_LOAD_STORE_SAME;
        /// Blending (or another read of the tile) onto loaded data that is then written back.
        const BLEND_ON_LOADED = ext::DRM_ASAHI_EXT_REASON_BLEND_ON_LOADED;
        /// A shader reads memory the command also writes, or writes memory the command reads.
        const SHADER_WRITE_READ = ext::DRM_ASAHI_EXT_REASON_SHADER_WRITE_READ;
        /// Atomics on memory not overwritten earlier by the same command.
        const ATOMICS = ext::DRM_ASAHI_EXT_REASON_ATOMICS;
        /// An occlusion query accumulates into memory the command did not reset first.
        const OCCLUSION_ACCUMULATE = ext::DRM_ASAHI_EXT_REASON_OCCLUSION_ACCUMULATE;
        /// Transform feedback appends at an offset read from memory (counter buffer).
        const XFB_APPEND = ext::DRM_ASAHI_EXT_REASON_XFB_APPEND;
        /// An access that cannot be bounded (bindless, buffer device address).
        const UNKNOWN_ACCESS = ext::DRM_ASAHI_EXT_REASON_UNKNOWN_ACCESS;
        /// A compute dispatch without declared accesses.
        const COMPUTE_UNDECLARED = ext::DRM_ASAHI_EXT_REASON_COMPUTE_UNDECLARED;
    }
}

const NAMES: [(Reasons, &str); 8] = [
    (Reasons::LOAD_STORE_SAME, "load_store_same"),
    (Reasons::BLEND_ON_LOADED, "blend_on_loaded"),
    (Reasons::SHADER_WRITE_READ, "shader_write_read"),
    (Reasons::ATOMICS, "atomics"),
    (Reasons::OCCLUSION_ACCUMULATE, "occlusion_accumulate"),
    (Reasons::XFB_APPEND, "xfb_append"),
    (Reasons::UNKNOWN_ACCESS, "unknown_access"),
    (Reasons::COMPUTE_UNDECLARED, "compute_undeclared"),
];

impl Reasons {
    /// Short lower-case name of a single reason ("load_store_same", ...), for traces and stats
    /// keys; `None` when `self` is not exactly one known reason.
    pub fn short_name(self) -> Option<&'static str> {
        NAMES.iter().find(|(r, _)| *r == self).map(|(_, n)| *n)
    }

    /// The short names of the reasons set, lowest bit first.
    pub fn short_names(self) -> impl Iterator<Item = &'static str> {
        NAMES
            .iter()
            .filter(move |(r, _)| self.contains(*r))
            .map(|(_, n)| *n)
    }

    /// The reason whose short name is `name`.
    pub fn from_short_name(name: &str) -> Option<Self> {
        NAMES.iter().find(|(_, n)| *n == name).map(|(r, _)| *r)
    }
}

/// Short names joined by `|`, or `none`.
impl fmt::Display for Reasons {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, n) in self.short_names().enumerate() {
            if i > 0 {
                f.write_str("|")?;
            }
            f.write_str(n)?;
        }
        Ok(())
    }
}

/// The outcome of the analysis of one command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Verdict {
    /// Why the command is not restartable; empty when it is.
    pub reasons: Reasons,
}

impl Verdict {
    /// A restartable verdict.
    pub const RESTARTABLE: Self = Self {
        reasons: Reasons::empty(),
    };

    /// Whether the command may be re-run from its start after an abort: doing so (any number of
    /// times, from any partial execution) leaves exactly the memory of one complete run.
    pub fn restartable(&self) -> bool {
        self.reasons.is_empty()
    }

    /// `drm_asahi_ext_job_info::flags` bit for this verdict: `DRM_ASAHI_EXT_JOB_RESTARTABLE` or 0.
    pub fn job_info_flags(&self) -> u32 {
        if self.restartable() {
            ext::DRM_ASAHI_EXT_JOB_RESTARTABLE
        } else {
            0
        }
    }

    /// `drm_asahi_ext_job_info::reasons` for this verdict.
    pub fn job_info_reasons(&self) -> u32 {
        self.reasons.bits()
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.restartable() {
            f.write_str("restartable")
        } else {
            write!(f, "not restartable ({})", self.reasons)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_the_uapi_values() {
        assert_eq!(Reasons::all().bits(), ext::DRM_ASAHI_EXT_REASONS_ALL);
        for (r, n) in NAMES {
            assert_eq!(r.bits().count_ones(), 1);
            assert_eq!(r.short_name(), Some(n));
            assert_eq!(Reasons::from_short_name(n), Some(r));
        }
        assert_eq!(
            Reasons::BLEND_ON_LOADED.bits(),
            ext::DRM_ASAHI_EXT_REASON_BLEND_ON_LOADED
        );
        assert_eq!(
            Reasons::COMPUTE_UNDECLARED.bits(),
            ext::DRM_ASAHI_EXT_REASON_COMPUTE_UNDECLARED
        );
    }

    #[test]
    fn display_and_flags() {
        let v = Verdict {
            reasons: Reasons::ATOMICS | Reasons::LOAD_STORE_SAME,
        };
        assert_eq!(v.to_string(), "not restartable (load_store_same|atomics)");
        assert_eq!(v.job_info_flags(), 0);
        assert_eq!(v.job_info_reasons(), 0b1001);
        assert_eq!(Verdict::RESTARTABLE.to_string(), "restartable");
        assert_eq!(
            Verdict::RESTARTABLE.job_info_flags(),
            ext::DRM_ASAHI_EXT_JOB_RESTARTABLE
        );
        assert_eq!(
            (Reasons::ATOMICS | Reasons::ATOMICS).short_name(),
            Some("atomics")
        );
        assert_eq!((Reasons::ATOMICS | Reasons::XFB_APPEND).short_name(), None);
    }
}
