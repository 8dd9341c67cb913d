//! Result files in deqp-runner's formats: `results.csv` (`test,status,duration`, duration in
//! seconds, no header line, as deqp-runner writes and reads back as a baseline),
//! `failures.csv` (`test,status` of every case that did not pass or skip) and `junit.xml`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// deqp-runner's statuses that this runner produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Pass,
    Fail,
    Skip,
    Crash,
    Timeout,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "Pass",
            Status::Fail => "Fail",
            Status::Skip => "Skip",
            Status::Crash => "Crash",
            Status::Timeout => "Timeout",
        }
    }

    /// Counts as a failure of the run.
    pub fn failed(self) -> bool {
        matches!(self, Status::Fail | Status::Crash | Status::Timeout)
    }
}

/// One case's result.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub name: String,
    pub status: Status,
    pub duration: Duration,
    /// What the case printed (its failure message, a panic, ...).
    pub output: String,
}

pub fn results_csv(results: &[CaseResult]) -> String {
    let mut s = String::new();
    for r in results {
        let _ = writeln!(
            s,
            "{},{},{:.3}",
            r.name,
            r.status.name(),
            r.duration.as_secs_f64()
        );
    }
    s
}

pub fn failures_csv(results: &[CaseResult]) -> String {
    let mut s = String::new();
    for r in results.iter().filter(|r| r.status.failed()) {
        let _ = writeln!(s, "{},{}", r.name, r.status.name());
    }
    s
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => o.push('?'),
            c => o.push(c),
        }
    }
    o
}

/// JUnit XML (the dialect GitLab and Jenkins read): one `testsuite`, a `testcase` per case
/// (`classname` = the group, `name` = the full case name), `failure` for Fail/Crash/Timeout
/// with the case's output, `skipped` for Skip.
pub fn junit_xml(results: &[CaseResult], total: Duration) -> String {
    let failures = results.iter().filter(|r| r.status.failed()).count();
    let skipped = results.iter().filter(|r| r.status == Status::Skip).count();
    let mut s = String::new();
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"agx-fault-suite\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{:.3}\">",
        results.len(),
        total.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "  <testsuite name=\"agx-fault-suite\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{:.3}\">",
        results.len(),
        total.as_secs_f64()
    );
    for r in results {
        let class = r.name.rsplit_once('.').map_or("agx", |(g, _)| g);
        let _ = write!(
            s,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            xml_escape(class),
            xml_escape(&r.name),
            r.duration.as_secs_f64()
        );
        match r.status {
            Status::Pass => s.push_str("/>\n"),
            Status::Skip => {
                let _ = writeln!(
                    s,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    xml_escape(first_line(&r.output))
                );
            }
            st => {
                let _ = writeln!(
                    s,
                    ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>",
                    st.name(),
                    xml_escape(first_line(&r.output)),
                    xml_escape(&r.output)
                );
            }
        }
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

/// Writes the three files into `dir` (created if needed).
pub fn write_all(dir: &Path, results: &[CaseResult], total: Duration) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("results.csv"), results_csv(results))?;
    std::fs::write(dir.join("failures.csv"), failures_csv(results))?;
    std::fs::write(dir.join("junit.xml"), junit_xml(results, total))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, status: Status) -> CaseResult {
        CaseResult {
            name: name.into(),
            status,
            duration: Duration::from_millis(1500),
            output: "line <1> & \"2\"\nmore".into(),
        }
    }

    #[test]
    fn formats() {
        let v = vec![
            r("agx.a.x", Status::Pass),
            r("agx.a.y", Status::Fail),
            r("agx.b.z", Status::Skip),
            r("agx.b.w", Status::Timeout),
        ];
        assert_eq!(
            results_csv(&v),
            "agx.a.x,Pass,1.500\nagx.a.y,Fail,1.500\nagx.b.z,Skip,1.500\nagx.b.w,Timeout,1.500\n"
        );
        assert_eq!(failures_csv(&v), "agx.a.y,Fail\nagx.b.w,Timeout\n");
        let x = junit_xml(&v, Duration::from_secs(2));
        assert!(x.contains("tests=\"4\" failures=\"2\" errors=\"0\" skipped=\"1\""));
        assert!(x.contains("message=\"line &lt;1&gt; &amp; &quot;2&quot;\""));
        assert_eq!(x.matches("<testcase ").count(), 4);
        assert_eq!(x.matches("</testcase>").count(), 3);
    }
}
