//! Independent readers for the run directory's files, in Python: `jsonschema` for report.json,
//! `hdrh` (HdrHistogram's Python port) for latency.hlog, `junitparser` for junit.xml.
//! Install with `python3 -m pip install jsonschema hdrhistogram junitparser`.

use std::path::Path;
use std::process::Command;

pub const PIP: &str = "python3 -m pip install jsonschema hdrhistogram junitparser";

/// Runs a Python script with arguments; returns its stdout. Fails loudly, naming the pip
/// command, when Python or a module is missing.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed to check reports ({e}); then: {PIP}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("ModuleNotFoundError") {
        panic!("a Python module the report checks need is missing: {stderr}\ninstall them: {PIP}");
    }
    assert!(
        out.status.success(),
        "python3 failed: {stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

const VALIDATE: &str = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1], encoding="utf-8"))
report = json.load(open(sys.argv[2], encoding="utf-8"))
v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
errors = sorted(v.iter_errors(report), key=lambda e: list(e.path))
for e in errors:
    print("/".join(str(p) for p in e.path) + ": " + e.message)
sys.exit(1 if errors else 0)
"#;

/// Fails unless `report.json` in `dir` validates against docs/report.schema.json.
pub fn assert_valid_report(dir: &Path) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report.schema.json");
    let report = dir.join("report.json");
    let out = Command::new("python3")
        .arg("-c")
        .arg(VALIDATE)
        .arg(&schema)
        .arg(&report)
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed to validate report.json ({e}); then: {PIP}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("ModuleNotFoundError") {
        panic!("validating report.json needs jsonschema: {stderr}\ninstall: {PIP}");
    }
    assert!(
        out.status.success(),
        "{} does not match docs/report.schema.json:\n{}{stderr}",
        report.display(),
        String::from_utf8_lossy(&out.stdout)
    );
}
