//! `flashcrowd new` writes, for every template, a scenario that validates and runs against the
//! embedded shop; it refuses to overwrite a file and refuses a name that is not one.

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use std::process::Command;
use std::time::Duration;
use support::{read_report, Spawned};

const LIMIT: Duration = Duration::from_secs(120);

fn new(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flashcrowd"))
        .arg("new")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run flashcrowd new")
}

/// Writes the template, validates it, runs it (compressed in time) against `shop` and returns
/// the report.
fn scaffold_and_run(template: &str, shop: &str, extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = new(dir.path(), &["my-test", "--template", template]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("wrote my-test.yaml"), "{said}");
    assert!(said.contains("flashcrowd run my-test.yaml"), "{said}");
    let file = dir.path().join("my-test.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("name: my-test"), "{text}");
    assert!(
        text.starts_with("# my-test:"),
        "commented from its first line: {text}"
    );

    let v = Command::new(env!("CARGO_BIN_EXE_flashcrowd"))
        .args(["validate", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&v.stderr)
    );

    let run_dir = dir.path().join("run");
    let mut args = vec![
        "run",
        file.to_str().unwrap(),
        "--target",
        shop,
        "--out",
        run_dir.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let done = Spawned::start(&args).wait(LIMIT);
    // 0 or 1: the thresholds judge latency on a busy machine; 2 or 3 would mean the scenario
    // or the run is broken.
    assert!(
        matches!(done.code, Some(0) | Some(1)),
        "the {template} scenario should run to its end\n{}",
        done.output()
    );
    read_report(&run_dir, &done)
}

/// The report's phase names, in order.
fn phase_names(r: &serde_json::Value) -> Vec<&str> {
    r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect()
}

/// Requests named `name`, over every client.
fn requests_named(r: &serde_json::Value, name: &str) -> u64 {
    r["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["name"] == name)
        .map(|q| q["count"].as_u64().unwrap())
        .sum()
}

#[test]
fn the_smoke_template_runs_its_exact_plan_against_the_shop() {
    let shop = start_background(ShopConfig::default()).expect("start the shop");
    // Halved in time: a ramp to 20/s over 1 s (10 sessions) and 20/s for 4 s (80), uniform.
    let r = scaffold_and_run("smoke", &shop.url(), &["--time-scale", "1/2"]);
    assert_eq!(r["totals"]["sessions_started"], 90, "{}", r["totals"]);
    assert_eq!(r["totals"]["requests"], 180, "{}", r["totals"]);
    assert_eq!(r["totals"]["errors"], 0, "{}", r["totals"]);
}

#[test]
fn the_countdown_template_runs_against_the_shop() {
    let shop = start_background(ShopConfig::default()).expect("start the shop");
    let r = scaffold_and_run("countdown", &shop.url(), &["--time-scale", "1/4"]);
    let phases = phase_names(&r);
    assert_eq!(phases, ["before", "rise", "peak", "decay", "after"]);
    assert!(
        r["totals"]["requests"].as_u64().unwrap() > 100,
        "{}",
        r["totals"]
    );
    assert_eq!(r["totals"]["errors"], 0, "{}", r["totals"]);
    let orders = requests_named(&r, "create-order");
    assert!(orders > 0, "the flash-buy journey ordered nothing");
}

#[test]
fn the_drill_template_finds_a_capacity() {
    let shop = start_background(ShopConfig {
        capacity: 16,
        service_us: 4000,
        ..Default::default()
    })
    .expect("start the shop");
    let r = scaffold_and_run("drill", &shop.url(), &["--time-scale", "1/5"]);
    let steps = r["capacity"]["steps"].as_array().expect("capacity.steps");
    assert!(!steps.is_empty(), "{}", r["capacity"]);
    assert!(steps[0]["offered_rate"].as_f64().unwrap() > 0.0);
}

#[test]
fn the_calendar_template_runs_its_moments_against_the_shop() {
    let shop = start_background(ShopConfig::default()).expect("start the shop");
    let r = scaffold_and_run("calendar", &shop.url(), &["--time-scale", "1/4"]);
    // The calendar writes its instants at +08:00: the report shows its times there.
    assert_eq!(r["scenario"]["zone"], "+08:00", "{}", r["scenario"]);
    let phases = phase_names(&r);
    for want in [
        "base",
        "presale.peak",
        "sale.rise",
        "sale.peak",
        "sale.decay",
    ] {
        assert!(phases.contains(&want), "{want} missing from {phases:?}");
    }
    assert_eq!(r["totals"]["errors"], 0, "{}", r["totals"]);
    let count = |name: &str| requests_named(&r, name);
    assert!(
        count("pay-deposit") > 0,
        "the pre-sale journey paid nothing"
    );
    assert!(
        count("create-order") > 0,
        "the sale journey ordered nothing"
    );
}

#[test]
fn the_replay_template_sends_every_line_of_its_sample_log() {
    let shop = start_background(ShopConfig::default()).expect("start the shop");
    let log = flashcrowd::commands::new::sample_access_log();
    let lines = log.lines().count() as u64;
    assert_eq!(
        lines, 1135,
        "10/s for 10 s, 80/s for 5 s, then 70·(29−s)/15 + 10 for 15 s"
    );
    let r = scaffold_and_run("replay", &shop.url(), &["--time-scale", "1/2"]);
    // Every line is a GET under /api/ (the filter keeps them all): one request each.
    assert_eq!(r["totals"]["requests"], lines, "{}", r["totals"]);
    assert_eq!(r["totals"]["errors"], 0, "{}", r["totals"]);
    let names: Vec<&str> = r["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"GET /api/items/{id}"), "{names:?}");
}

#[test]
fn new_refuses_to_overwrite_and_refuses_a_bad_name() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(new(dir.path(), &["a"]).status.code(), Some(0));
    let again = new(dir.path(), &["a"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(new(dir.path(), &["a", "--force"]).status.code(), Some(0));
    let bad = new(dir.path(), &["my sale!"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a scenario name"));
    let unknown = new(dir.path(), &["b", "--template", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
}
