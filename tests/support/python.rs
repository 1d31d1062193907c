//! Independent readers for the run directory's files, in Python: `jsonschema` for report.json,
//! `hdrh` (HdrHistogram's Python port) for latency.hlog, `junitparser` for junit.xml,
//! `prometheus_client`'s text parser for the metrics endpoint, `selenium` to drive Debian's
//! chromium and chromedriver against the live page, and OpenTelemetry's own protobuf definitions
//! (`opentelemetry-proto`) to read OTLP exports.
//! When the system's python3 lacks them, the first test that needs them installs them into a
//! virtual environment under the target directory (once; later runs reuse it), so `cargo test`
//! works on a fresh machine with only Python and network access to PyPI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const MODULES: &str = "import jsonschema, hdrh, junitparser, prometheus_client, selenium; \
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2";
const PACKAGES: [&str; 6] = [
    "jsonschema",
    "hdrhistogram",
    "junitparser",
    "prometheus-client",
    "selenium",
    "opentelemetry-proto",
];

fn has_modules(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", MODULES])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The Python interpreter to check reports with: the system's when it has the modules, else a
/// virtual environment made (under a lock shared by concurrent test binaries) and reused.
pub fn interpreter() -> &'static Path {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let system = PathBuf::from("python3");
        // FLASHCROWD_TEST_VENV=1 exercises the fresh-machine path on a machine that has them.
        if std::env::var_os("FLASHCROWD_TEST_VENV").is_none() && has_modules(&system) {
            return system;
        }
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let venv = base.join("pytools");
        let py = venv.join("bin").join("python3");
        let lock = base.join("pytools.lock");
        let began = Instant::now();
        while std::fs::create_dir(&lock).is_err() {
            assert!(
                began.elapsed() < Duration::from_secs(600),
                "waited 10 min for {} (remove it if no test is running)",
                lock.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let made = (|| {
            if has_modules(&py) {
                return Ok(());
            }
            let ok = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .map_err(|e| format!("python3 -m venv: {e}"))?;
            if !ok.success() {
                return Err("python3 -m venv failed".to_string());
            }
            let ok = Command::new(&py)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(PACKAGES)
                .status()
                .map_err(|e| format!("pip: {e}"))?;
            if !ok.success() || !has_modules(&py) {
                return Err(format!("pip could not install {PACKAGES:?}"));
            }
            Ok(())
        })();
        let _ = std::fs::remove_dir(&lock);
        if let Err(e) = made {
            panic!("the report checks need {PACKAGES:?}: {e}; or install them yourself: {PIP}");
        }
        py
    })
}

pub const PIP: &str =
    "python3 -m pip install jsonschema hdrhistogram junitparser prometheus-client selenium opentelemetry-proto";

/// Runs a Python script with arguments; returns its stdout. Fails loudly, naming the pip
/// command, when Python or a module is missing.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new(interpreter())
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
    let out = Command::new(interpreter())
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
