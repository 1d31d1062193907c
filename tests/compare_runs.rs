//! `flashcrowd compare` on real runs against the embedded shop: two runs of one scenario against
//! one target compare as "same"; a shop (20 ms service time) slowed by 20 % (service time × 1.2, latency dominated by
//! service time) compares as "worse" on latency with a positive change, and `--fail-on` turns
//! that into exit 1. Bad input exits 2.

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use support::{Scenario, Spawned};

const LIMIT: Duration = Duration::from_secs(60);

/// 100 orders/s for 5 s; the shop has room (256 in service), so latency ≈ its service time.
const SCENARIO: &str = r#"
name: compare-me
defaults:
  timeout: 2s
  headers: { X-Load-Test: "flashcrowd" }
journeys:
  buy:
    share: 100%
    steps:
      - post: /api/orders
        name: create-order
        json: { cart: "c1", user: "u1" }
load:
  stages:
    - { rate: 100/s, for: 5s }
  arrivals: uniform
"#;

fn shop(service_us: u64) -> flashcrowd::shop::ShopHandle {
    start_background(ShopConfig {
        capacity: 256,
        queue: 1024,
        service_us,
        ..Default::default()
    })
    .expect("start the shop")
}

fn run(url: &str) -> Scenario {
    let s = Scenario::new(SCENARIO);
    s.run_passing(url, &[], LIMIT);
    s
}

fn compare(base: &Path, new: &Path, extra: &[&str]) -> (Option<i32>, Value, String) {
    let mut args = vec!["compare", base.to_str().unwrap(), new.to_str().unwrap()];
    args.extend_from_slice(extra);
    let done = Spawned::start(&args).wait(LIMIT);
    eprintln!("{}", done.stdout);
    let json = std::fs::read_to_string(new.join("compare/compare.json")).unwrap_or_default();
    (
        done.code,
        serde_json::from_str(&json).unwrap_or(Value::Null),
        done.output(),
    )
}

#[test]
fn same_target_is_same_and_a_slower_target_is_worse() {
    let fast = shop(20_000);
    let a = run(&fast.url());
    let b = run(&fast.url());
    drop(fast);
    let slow = shop(24_000);
    let c = run(&slow.url());
    drop(slow);

    // Same scenario, same target: no row worse; a --fail-on does not fire.
    let (code, j, out) = compare(
        &a.out,
        &b.out,
        &["--fail-on", "p99 > +10%", "--fail-on", "errors > +0.1pp"],
    );
    assert_eq!(code, Some(0), "{out}");
    let rows = j["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        assert_ne!(r["verdict"], "worse", "{r}");
    }
    assert_eq!(j["confidence"], 0.95);
    for f in ["compare.md", "compare.html", "compare.json"] {
        assert!(b.out.join("compare").join(f).exists(), "{f}");
    }
    let html = std::fs::read_to_string(b.out.join("compare/compare.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("src=\"http") && !html.contains("<script"));

    // 20 % slower: worse on latency, with a positive change whose interval excludes zero.
    let (code, j, out) = compare(&a.out, &c.out, &["--fail-on", "create-order p50 > +10%"]);
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(j["verdict"], "worse", "{out}");
    let all = &j["rows"][0];
    assert_eq!(all["request"], "(all)");
    assert_eq!(all["verdict"], "worse");
    for m in all["metrics"].as_array().unwrap() {
        if m["metric"] == "p50" {
            let d = m["change"].as_f64().unwrap();
            assert!(d > 0.10 && d < 0.35, "{m}");
            assert!(m["ci_low"].as_f64().unwrap() > 0.0, "{m}");
            assert_eq!(m["verdict"], "worse", "{m}");
        }
        if m["metric"] == "p90" || m["metric"] == "p99" {
            assert!(m["change"].as_f64().unwrap() > 0.0, "the right sign: {m}");
            assert_ne!(m["verdict"], "better", "{m}");
        }
        if m["metric"] == "rate" {
            assert_eq!(m["verdict"], "same", "an open model keeps its rate: {m}");
        }
    }
    assert!(j["fail_on"][0]["holds"].as_bool().unwrap());

    // And the other way round it is better.
    let (code, j, out) = compare(&c.out, &a.out, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(j["rows"][0]["verdict"], "better", "{out}");
}

#[test]
fn bad_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let done = Spawned::start(&[
        "compare",
        missing.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ])
    .wait(LIMIT);
    assert_eq!(done.code, Some(2), "{}", done.output());
    let done = Spawned::start(&[
        "compare",
        dir.path().to_str().unwrap(),
        dir.path().to_str().unwrap(),
        "--fail-on",
        "p99 > 10",
    ])
    .wait(LIMIT);
    assert_eq!(done.code, Some(2), "{}", done.output());
    assert!(done.stderr.contains("--fail-on"), "{}", done.output());
}
