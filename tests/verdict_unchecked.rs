//! A run that checked nothing is never called PASSED: without thresholds it is `completed` and
//! says so; past the error budget (`--max-errors`, default 5 %) it warns loudly and names the
//! journeys whose every session failed; `--strict` or CI=true turns that into exit 1.

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use std::time::Duration;
use support::{Scenario, Spawned};

const LIMIT: Duration = Duration::from_secs(60);

/// 20 sessions/s for 2 s, uniform: exactly 40 sessions. `lost` asks for a page the shop does
/// not have (every request a 404); `browse` is fine.
fn scenario(lost_share: u32) -> Scenario {
    let browse = 100 - lost_share;
    let mut journeys = format!(
        "  lost:\n    share: {lost_share}%\n    steps:\n      - get: /no/such/page\n        name: missing\n"
    );
    if browse > 0 {
        journeys += &format!(
            "  browse:\n    share: {browse}%\n    steps:\n      - get: /api/items?page=1\n        name: list\n"
        );
    }
    Scenario::new(&format!(
        "name: unchecked\ndefaults:\n  timeout: 2s\n  headers: {{ X-Load-Test: \"flashcrowd\" }}\njourneys:\n{journeys}load:\n  stages: [ {{ rate: 20/s, for: 2s }} ]\n  arrivals: uniform\n  seed: 1\n"
    ))
}

#[test]
fn a_run_with_every_request_failing_and_no_thresholds_is_not_a_pass() {
    let shop = start_background(ShopConfig::default()).expect("start the shop");
    let sc = scenario(100);
    let done = sc.run(&shop.url(), &[], LIMIT);
    let out = done.output();
    assert_eq!(done.code, Some(0), "not strict: exit 0\n{out}");
    assert!(!out.contains("PASSED"), "{out}");
    assert!(
        out.contains("COMPLETED (no thresholds: nothing was checked)"),
        "{out}"
    );
    assert!(
        out.contains(
            "WARNING: 100.00% of requests failed (40 of 40), above the 5% this run allows"
        ),
        "{out}"
    );
    assert!(
        out.contains("WARNING: journey `lost`: every one of its 40 sessions failed"),
        "{out}"
    );
    let r = sc.report(&done);
    assert_eq!(r["run"]["status"], "completed");
    assert_eq!(r["run"]["max_error_rate"], 0.05);
    let md = std::fs::read_to_string(sc.out.join("summary.md")).unwrap();
    assert!(
        md.contains("completed (no thresholds: nothing was checked)"),
        "{md}"
    );
    assert!(!md.contains("✅"), "{md}");
    let html = std::fs::read_to_string(sc.out.join("report.html")).unwrap();
    assert!(html.contains("COMPLETED · NOTHING CHECKED"), "report.html");
}

#[test]
fn strict_or_ci_fails_a_run_past_its_error_budget() {
    let shop = start_background(ShopConfig::default()).expect("start the shop");
    let sc = scenario(100);
    let done = sc.run(&shop.url(), &["--strict"], LIMIT);
    assert_eq!(done.code, Some(1), "{}", done.output());
    let r = sc.report(&done);
    assert_eq!(r["run"]["status"], "failed");
    let reason = r["run"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("100.0% of requests failed, above the 5.0% allowed"),
        "{reason}"
    );

    let sc = scenario(100);
    let done = Spawned::start_with_env(
        &[
            "run",
            sc.file.to_str().unwrap(),
            "--target",
            &shop.url(),
            "--out",
            sc.out.to_str().unwrap(),
            "--quiet",
        ],
        &[("CI", "true")],
    )
    .wait(LIMIT);
    assert_eq!(done.code, Some(1), "CI=true is strict\n{}", done.output());
}

#[test]
fn the_error_budget_is_overridable_and_a_passing_run_with_thresholds_says_passed() {
    let shop = start_background(ShopConfig::default()).expect("start the shop");
    // A quarter of the sessions (picked at random by share) fail: above 5 %, well under 60 %.
    let sc = scenario(25);
    let done = sc.run(&shop.url(), &["--strict", "--max-errors", "60%"], LIMIT);
    let out = done.output();
    assert_eq!(done.code, Some(0), "{out}");
    assert!(!out.contains("of requests failed"), "{out}");
    assert!(out.contains("COMPLETED"), "{out}");

    let sc = scenario(0);
    let done = sc.run(&shop.url(), &["--threshold", "errors < 1%"], LIMIT);
    let out = done.output();
    assert_eq!(done.code, Some(0), "{out}");
    assert!(out.contains("unchecked  PASSED"), "{out}");
    assert_eq!(sc.report(&done)["run"]["status"], "passed");

    let bad = sc.run(&shop.url(), &["--max-errors", "5"], LIMIT);
    assert_eq!(
        bad.code,
        Some(2),
        "a bare number is not a percentage\n{}",
        bad.output()
    );
}
