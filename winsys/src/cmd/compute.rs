//! Compute command descriptor: `drm_asahi_cmd_compute` plus attachments and declared ranges.

use agx_uapi::asahi::drm_asahi_cmd_compute;

use super::render::{helper_from_raw, helper_raw, timestamps_from_raw, timestamps_raw};
use super::{Attachment, BuildError, HelperProgram, Timestamps};
use crate::analysis::{ComputeCommand, Va};

/// A compute command as the driver describes it: every field of `drm_asahi_cmd_compute`, the
/// compute attachment list, and the declared memory ranges for the restartability analysis.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ComputeDesc {
    /// GPU VA of the CDM control stream (`cdm_ctrl_stream_base`).
    pub cdm_ctrl_stream_base: u64,
    /// GPU VA one past its end (`cdm_ctrl_stream_end`), at or after the base.
    pub cdm_ctrl_stream_end: u64,
    /// GPU VA of the sampler heap.
    pub sampler_heap: u64,
    /// Samplers in the heap.
    pub sampler_count: u32,
    /// Helper program (e.g. scratch setup).
    pub helper: HelperProgram,
    /// Start and end timestamps (`ts`).
    pub timestamps: Timestamps,
    /// Attachments (`DRM_ASAHI_SET_COMPUTE_ATTACHMENTS`).
    pub attachments: Vec<Attachment>,
    /// The dispatches' declared memory ranges. `None`: undeclared, so the command is not
    /// restartable ([`crate::analysis::Reasons::COMPUTE_UNDECLARED`]).
    pub access: Option<ComputeCommand<Va>>,
}

impl ComputeDesc {
    /// Checks what the kernel would reject in the payload.
    pub fn validate(&self) -> Result<(), BuildError> {
        if self.cdm_ctrl_stream_end < self.cdm_ctrl_stream_base {
            return Err(BuildError::InvalidDescriptor(
                "cdm_ctrl_stream_end before cdm_ctrl_stream_base",
            ));
        }
        Ok(())
    }

    /// The `drm_asahi_cmd_compute` payload (`flags` 0: the uAPI defines none).
    pub fn to_raw(&self) -> drm_asahi_cmd_compute {
        drm_asahi_cmd_compute {
            flags: 0,
            sampler_count: self.sampler_count,
            cdm_ctrl_stream_base: self.cdm_ctrl_stream_base,
            cdm_ctrl_stream_end: self.cdm_ctrl_stream_end,
            sampler_heap: self.sampler_heap,
            helper: helper_raw(&self.helper),
            ts: timestamps_raw(&self.timestamps),
        }
    }

    /// The descriptor of a decoded payload, with no attachments and no access description
    /// (`flags` is dropped: the uAPI defines none).
    pub fn from_raw(raw: &drm_asahi_cmd_compute) -> Self {
        Self {
            cdm_ctrl_stream_base: raw.cdm_ctrl_stream_base,
            cdm_ctrl_stream_end: raw.cdm_ctrl_stream_end,
            sampler_heap: raw.sampler_heap,
            sampler_count: raw.sampler_count,
            helper: helper_from_raw(&raw.helper),
            timestamps: timestamps_from_raw(&raw.ts),
            attachments: Vec::new(),
            access: None,
        }
    }
}
