//! Target `cmdbuf`: the simulated kernel's `SUBMIT` cmdbuf parser alone, with fuzzed limits.
//!
//! Invariants: no panic; a refusal is `EINVAL`; an accepted cmdbuf has between 1 and
//! `max_commands` commands, and the winsys's decoder (`agx_winsys::cmd::decode`), which checks
//! structure only, decodes it to the same hardware commands, in order, with the same attachment
//! lists in force and the same stream addresses.

use agx_sim::gpu::Sub;
use agx_sim::Errno;
use agx_winsys::cmd::decode::{decode_commands, Hardware};

use crate::input::Input;

pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let opts = inp.u8();
    let max_commands = [64, 1, 2, 3][(opts & 3) as usize];
    let max_attachments = [64, 0, 1, 8][((opts >> 2) & 3) as usize];
    let fault_ext = opts & 0x10 == 0;
    let buf = inp.bytes(usize::MAX);
    let cmds = match agx_sim::cmdbuf::parse(buf, max_commands, max_attachments, fault_ext) {
        Ok(c) => c,
        Err(e) => {
            assert_eq!(
                e,
                Errno::INVAL,
                "the kernel refuses a malformed cmdbuf with EINVAL"
            );
            return;
        }
    };
    assert!(!cmds.is_empty() && cmds.len() <= max_commands as usize);
    let decoded = decode_commands(buf)
        .unwrap_or_else(|e| panic!("accepted by the kernel, not decodable by the winsys: {e}"));
    assert_eq!(decoded.len(), cmds.len(), "hardware command count");
    for (k, d) in cmds.iter().zip(&decoded) {
        match (&d.hardware, k.sub) {
            (
                Hardware::Render {
                    cmd,
                    fragment_attachments,
                    ..
                },
                Sub::Render,
            ) => {
                assert_eq!(cmd.vdm_ctrl_stream_base, k.stream);
                let targets: Vec<(u64, u64)> = fragment_attachments
                    .iter()
                    .map(|a| (a.pointer, a.size))
                    .collect();
                assert_eq!(targets, k.render_targets, "fragment attachments in force");
            }
            (Hardware::Compute { cmd, .. }, Sub::Compute) => {
                assert_eq!(cmd.cdm_ctrl_stream_base, k.stream);
            }
            (h, s) => panic!("kernel says {s:?}, decoder says {h:?}"),
        }
        assert_eq!(
            d.job_info.map(|j| bytemuck::bytes_of(&j).to_vec()),
            k.job_info.map(|j| bytemuck::bytes_of(&j).to_vec()),
            "job info"
        );
    }
}
