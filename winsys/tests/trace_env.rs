//! `AGXWS_TRACE=file.json`: the simulated firmware's trace is written when the device closes.
//! Its own test binary (own process), since it sets an environment variable.

use std::time::Duration;

use agx_sim::stream::StreamBuilder;
use agx_winsys::kit::Context;
use agx_winsys::{Deadline, Device, DeviceSpec, JobOutcome};

#[test]
fn trace_written_on_close() {
    let path = std::env::temp_dir().join(format!("agxws-trace-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&path);
    std::env::set_var("AGXWS_TRACE", &path);
    {
        let dev = Device::open(&DeviceSpec::parse("sim").unwrap()).unwrap();
        let c = Context::new(&dev, 1 << 20).unwrap();
        let d = c
            .render(
                StreamBuilder::new().load(agx_sim::config::UNMAPPED_VA, 8),
                Default::default(),
                &[],
            )
            .unwrap();
        let mut cb = c.command_buffer();
        cb.render(d).unwrap();
        let o = c
            .queue
            .submit(&cb, &[], &[])
            .unwrap()
            .wait(Deadline::After(Duration::from_secs(10)))
            .unwrap();
        assert!(matches!(o, JobOutcome::Faulted { .. }));
    }
    std::env::remove_var("AGXWS_TRACE");
    let text = std::fs::read_to_string(&path).expect("trace written when the device closed");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let events = v["traceEvents"].as_array().unwrap();
    for name in [
        "submit",
        "start",
        "fault",
        "recovery_start",
        "recovery_end",
        "signal",
    ] {
        assert!(events.iter().any(|e| e["name"] == name), "missing {name}");
    }
    let _ = std::fs::remove_file(&path);
}
