//! junit.xml: one testsuite, each threshold a testcase named by its expression; a failing one
//! carries a `<failure>` with observed vs limit. A run that was aborted or interrupted adds a
//! failing testcase saying so, so a CI test report never shows green for a run cut short.

use super::{Exporter, RunReport};
use std::fmt::Write;
use std::path::{Path, PathBuf};

pub struct Junit;

/// Escapes text for XML content and attribute values.
pub fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

pub fn render(r: &RunReport) -> String {
    let r = &r.report;
    let mut cases = String::new();
    let mut failures = 0;
    let class = format!("flashcrowd.{}", r.scenario.name);
    for v in &r.thresholds {
        let _ = write!(
            cases,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"0\">",
            xml(&class),
            xml(&v.expr)
        );
        if v.passed {
            let _ = writeln!(
                cases,
                "\n      <system-out>{}</system-out>\n    </testcase>",
                xml(&v.observed_vs_limit())
            );
        } else {
            failures += 1;
            let msg = v.observed_vs_limit();
            let _ = writeln!(
                cases,
                "\n      <failure message=\"{}\" type=\"threshold\">{}: {}</failure>\n    </testcase>",
                xml(&msg),
                xml(&v.expr),
                xml(&msg)
            );
        }
    }
    let not_whole = matches!(
        r.run.status.as_str(),
        "aborted" | "interrupted" | "incomplete"
    );
    if not_whole {
        failures += 1;
        let why = r.run.reason.clone().unwrap_or_else(|| r.run.status.clone());
        let _ = writeln!(
            cases,
            "    <testcase classname=\"{}\" name=\"run completed\" time=\"{:.3}\">\n      <failure message=\"the run was {}: {}\" type=\"{}\">the run was {} after {:.1}s: {}</failure>\n    </testcase>",
            xml(&class),
            r.run.duration_s,
            xml(&r.run.status),
            xml(&why),
            xml(&r.run.status),
            xml(&r.run.status),
            r.run.duration_s,
            xml(&why)
        );
    }
    let tests = r.thresholds.len() + usize::from(not_whole);
    let mut o = String::new();
    let _ = writeln!(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(
        o,
        "<testsuites name=\"flashcrowd\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{:.3}\">",
        r.run.duration_s
    );
    let _ = writeln!(
        o,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{:.3}\" timestamp=\"{}\">",
        xml(&r.scenario.name),
        r.run.duration_s,
        xml(&r.run.started_at)
    );
    let _ = writeln!(o, "    <properties>");
    for (k, v) in [
        ("status", r.run.status.as_str()),
        ("target", r.scenario.target.as_str()),
        ("segment", r.run.segment.as_str()),
        ("scenario_sha256", r.scenario.sha256.as_str()),
    ] {
        let _ = writeln!(o, "      <property name=\"{k}\" value=\"{}\"/>", xml(v));
    }
    let _ = writeln!(o, "    </properties>");
    o.push_str(&cases);
    let _ = writeln!(o, "  </testsuite>");
    let _ = writeln!(o, "</testsuites>");
    o
}

impl Exporter for Junit {
    fn name(&self) -> &'static str {
        "junit.xml"
    }

    fn write(&self, r: &RunReport, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        Ok(vec![super::rundir::write_atomic(
            dir,
            "junit.xml",
            render(r).as_bytes(),
        )?])
    }
}
