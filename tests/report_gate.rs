//! The run directory as CI and people read it, against the embedded shop: a failing threshold
//! exits 1 with a line naming observed vs limit and shows as a JUnit failure; passing ones exit
//! 0; latency.hlog read by an independent HdrHistogram reader (Python's `hdrh`) agrees with
//! report.json tag by tag; report.html references nothing outside itself; `flashcrowd report`
//! re-renders the same files, and a run cut short is a failing testcase.

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use support::python::{assert_valid_report, python};
use support::{Scenario, Spawned};

const LIMIT: Duration = Duration::from_secs(60);

/// Chinese names, two clients, a request that always fails (404): 50 arrivals/s for 2 s.
const MIXED: &str = r#"
name: 双11 冒烟
defaults:
  timeout: 2s
  headers: { X-Load-Test: "flashcrowd" }
clients:
  mobile-app: { share: 80% }
  pc web: { share: 20% }
journeys:
  浏览:
    share: 60%
    steps:
      - get: /api/items?page=1
        name: 商品列表
      - get: /api/items/7
  抢购:
    share: 40%
    steps:
      - post: /api/cart
        json: { sku: "7", qty: 1 }
        name: 加购
      - get: /no-such-page
        name: 下单
load:
  stages:
    - { rate: 50/s, for: 1s, name: 预热 }
    - { rate: 50/s, for: 1s, name: 高峰 }
  arrivals: uniform
thresholds:
  - p99 < 10s
  - 下单 errors < 1%
"#;

const CLEAN: &str = r#"
name: clean-gate
defaults:
  timeout: 2s
journeys:
  browse:
    share: 100%
    steps:
      - get: /api/items/7
        name: item-detail
load:
  stages:
    - { rate: 50/s, for: 2s }
  arrivals: uniform
thresholds:
  - p99 < 10s
  - errors < 1%
"#;

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|e| panic!("cannot read {name} in {}: {e}", dir.display()))
}

fn report_json(dir: &Path) -> Value {
    serde_json::from_str(&read(dir, "report.json")).expect("report.json parses")
}

const JUNIT: &str = r#"
import json, sys
from junitparser import JUnitXml, Failure
xml = JUnitXml.fromfile(sys.argv[1])
cases = []
for suite in xml:
    for case in suite:
        failures = [r for r in case.result if isinstance(r, Failure)]
        cases.append({"suite": suite.name, "name": case.name,
                      "failure": failures[0].message if failures else None})
print(json.dumps(cases, ensure_ascii=False))
"#;

/// (testcase name, failure message) from junit.xml, read by junitparser.
fn junit_cases(dir: &Path) -> Vec<(String, Option<String>)> {
    let out = python(JUNIT, &[dir.join("junit.xml").to_str().unwrap()]);
    let v: Value = serde_json::from_str(&out).expect("junitparser output");
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["failure"].as_str().map(str::to_string),
            )
        })
        .collect()
}

const HLOG: &str = r#"
import json, math, sys
from urllib.parse import unquote
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
reader = HistogramLogReader(sys.argv[1], HdrHistogram(1, 3600 * 10**6, 3))
totals, intervals = {}, 0
while True:
    h = reader.get_next_interval_histogram()
    if h is None:
        break
    intervals += 1
    tag = h.get_tag()
    acc = totals.setdefault(tag, HdrHistogram(1, 3600 * 10**6, 3))
    acc.add(h)
def nearest_rank(h, q):
    # The smallest value with at least ceil(q * n) values at or below it (HdrHistogram's Java
    # and Rust definition; hdrh's own get_value_at_percentile rounds the rank instead).
    target = max(1, math.ceil(q * h.get_total_count() - 1e-9))
    for it in h.get_recorded_iterator():
        if it.total_count_to_this_value >= target:
            return h.get_highest_equivalent_value(it.value_iterated_to)
out = {}
for tag, h in totals.items():
    name, client = (unquote(p) for p in tag.split("|"))
    out[name + "\t" + client] = {"count": h.get_total_count(),
                                 "max_us": h.get_max_value(),
                                 "p99_us": nearest_rank(h, 0.99),
                                 "hdrh_p99_us": h.get_value_at_percentile(99.0)}
print(json.dumps({"intervals": intervals, "tags": out}, ensure_ascii=False))
"#;

/// The run directory of the mixed scenario, run once: exit 1 on `下单 errors < 1%`.
fn assert_failing_gate(sc: &Scenario, done: &support::Finished) {
    assert_eq!(
        done.code,
        Some(1),
        "a failed threshold exits 1\n{}",
        done.output()
    );
    let line = done
        .stdout
        .lines()
        .find(|l| l.contains("✗ 下单 errors < 1%"))
        .unwrap_or_else(|| panic!("no failing-threshold line\n{}", done.output()));
    assert!(
        line.contains("observed 100%") && line.contains("limit 1%"),
        "the line names observed vs limit: {line}"
    );
    assert!(done.stdout.contains("✓ p99 < 10s"), "{}", done.output());
    assert_valid_report(&sc.out);
}

#[test]
fn failing_threshold_exits_1_names_observed_vs_limit_and_fails_in_junit() {
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    let sc = Scenario::new(MIXED);
    let done = sc.run(&shop.url(), &["--threshold", "count > 0"], LIMIT);
    assert_failing_gate(&sc, &done);
    let dir = &sc.out;

    // junit.xml, read by junitparser: one testcase per threshold, the failing one a failure.
    let cases = junit_cases(dir);
    let names: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, vec!["p99 < 10s", "下单 errors < 1%", "count > 0"]);
    assert_eq!(cases[0].1, None);
    assert_eq!(cases[2].1, None);
    let msg = cases[1]
        .1
        .as_deref()
        .expect("the failing threshold is a <failure>");
    assert_eq!(msg, "observed 100%, limit 1%");

    // summary.md: the gate's table for a pull request.
    let md = read(dir, "summary.md");
    assert!(md.contains("❌ failed"), "{md}");
    assert!(
        md.contains("| ✗ | `下单 errors < 1%` | 100% | 1% |"),
        "{md}"
    );
    assert!(
        md.contains("| 下单 | pc web |") || md.contains("| 下单 | mobile-app |"),
        "{md}"
    );

    // Every exporter wrote its files.
    for f in ["report.html", "latency.hlog", "scenario.yaml"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    for c in ["rate", "latency", "spectrum", "errors"] {
        let png = std::fs::read(dir.join("charts").join(format!("{c}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{c}.png");
    }
}

#[test]
fn passing_thresholds_exit_0_and_junit_has_no_failure() {
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    let sc = Scenario::new(CLEAN);
    let done = sc.run(&shop.url(), &[], LIMIT);
    assert_eq!(done.code, Some(0), "{}", done.output());
    assert!(
        done.stdout
            .contains("✓ errors < 1%   observed 0%, limit 1%"),
        "{}",
        done.output()
    );
    assert_valid_report(&sc.out);
    let cases = junit_cases(&sc.out);
    assert_eq!(cases.len(), 2);
    assert!(cases.iter().all(|c| c.1.is_none()), "{cases:?}");
    assert!(read(&sc.out, "summary.md").contains("✅ passed"));
}

#[test]
fn hlog_read_by_hdrh_agrees_with_report_json_per_tag_and_html_is_self_contained() {
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    let sc = Scenario::new(MIXED);
    let done = sc.run(&shop.url(), &[], LIMIT);
    assert_failing_gate(&sc, &done);
    let dir = &sc.out;
    let report = report_json(dir);

    let out = python(HLOG, &[dir.join("latency.hlog").to_str().unwrap()]);
    let hlog: Value = serde_json::from_str(&out).expect("hdrh output");
    let tags = hlog["tags"].as_object().unwrap();
    let rows = report["requests"].as_array().unwrap();
    assert_eq!(
        tags.len(),
        rows.len(),
        "one tag per request name × client\n{out}"
    );
    assert!(hlog["intervals"].as_u64().unwrap() >= rows.len() as u64);
    let mut total = 0;
    for row in rows {
        let key = format!(
            "{}\t{}",
            row["name"].as_str().unwrap(),
            row["client"].as_str().unwrap()
        );
        let t = tags
            .get(&key)
            .unwrap_or_else(|| panic!("no tag for {key:?} in latency.hlog\n{out}"));
        assert_eq!(t["count"], row["count"], "count of {key}");
        let p99_us = (row["latency_ms"]["p99"].as_f64().unwrap() * 1000.0).round() as u64;
        assert_eq!(t["p99_us"].as_u64().unwrap(), p99_us, "p99 of {key}");
        // hdrh's own percentile rounds the rank: never above the nearest-rank value.
        assert!(t["hdrh_p99_us"].as_u64().unwrap() <= p99_us, "{key}: {t}");
        let max_us = (row["latency_ms"]["max"].as_f64().unwrap() * 1000.0).round() as u64;
        assert_eq!(t["max_us"].as_u64().unwrap(), max_us, "max of {key}");
        total += row["count"].as_u64().unwrap();
    }
    assert_eq!(total, report["totals"]["requests"].as_u64().unwrap());
    assert_eq!(total, 200, "50/s for 2 s, two requests per session");

    // report.html: no script, stylesheet, font or image from anywhere; the charts inline.
    let html = read(dir, "report.html");
    let lower = html.to_ascii_lowercase();
    for bad in [
        "<script", "<link", "<img", "<iframe", "@import", "url(", "src=", "href=",
    ] {
        assert!(!lower.contains(bad), "report.html contains `{bad}`");
    }
    // Rate, latency, spectrum, errors, and (two clients sent requests) the client mix.
    let figures: Vec<&str> = html
        .split("<figure id=\"chart-")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .collect();
    assert_eq!(
        figures,
        ["rate", "latency", "spectrum", "errors", "clients"],
        "the inline SVG charts"
    );
    assert_eq!(
        html.matches("<svg").count(),
        6,
        "the five charts and the CJK title"
    );
    // The title and the charts' CJK labels are outlines of the embedded font, named for
    // screen readers: they read the same on a machine without CJK fonts.
    assert!(
        html.contains("aria-label=\"双11 冒烟\""),
        "the title as outlines"
    );
    assert!(
        html.contains("aria-label=\"预热\""),
        "a phase label as outlines"
    );
    for id in [
        "chart-rate",
        "chart-latency",
        "chart-spectrum",
        "chart-errors",
    ] {
        assert!(html.contains(id), "{id}");
    }
    assert!(html.contains("下单") && html.contains("双11 冒烟") && html.contains("抢购"));
    assert!(html.contains("<meta charset=\"utf-8\">"));
}

#[test]
fn report_rerenders_the_same_files_and_a_cut_short_run_fails_in_junit() {
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    let sc = Scenario::new(CLEAN);
    let done = sc.run(&shop.url(), &[], LIMIT);
    assert_eq!(done.code, Some(0), "{}", done.output());
    let dir = sc.out.clone();
    let files = ["report.json", "report.html", "summary.md", "junit.xml"];
    let before: Vec<String> = files.iter().map(|f| read(&dir, f)).collect();
    std::fs::remove_file(dir.join("report.html")).unwrap();
    std::fs::remove_dir_all(dir.join("charts")).unwrap();

    let again = Spawned::start(&["report", dir.to_str().unwrap()]).wait(LIMIT);
    assert_eq!(again.code, Some(0), "{}", again.output());
    assert!(again.stdout.contains("✓ errors < 1%"), "{}", again.output());
    for (f, b) in files.iter().zip(&before) {
        assert_eq!(&read(&dir, f), b, "{f} re-rendered identically");
    }
    assert!(dir.join("charts/spectrum.png").is_file());

    // The same run, as if interrupted: exit 3 and a failing "run completed" testcase.
    let mut v = report_json(&dir);
    v["run"]["status"] = "interrupted".into();
    v["run"]["reason"] = "interrupted by a signal".into();
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_vec_pretty(&v).unwrap(),
    )
    .unwrap();
    let cut = Spawned::start(&["report", dir.to_str().unwrap()]).wait(LIMIT);
    assert_eq!(cut.code, Some(3), "{}", cut.output());
    let cases = junit_cases(&dir);
    let last = cases.last().unwrap();
    assert_eq!(last.0, "run completed");
    assert!(
        last.1
            .as_deref()
            .unwrap()
            .contains("interrupted by a signal"),
        "{cases:?}"
    );
    assert_valid_report(&dir);
}

#[test]
fn report_of_a_directory_without_a_report_is_bad_input() {
    let empty = tempfile::tempdir().unwrap();
    let done = Spawned::start(&["report", empty.path().to_str().unwrap()]).wait(LIMIT);
    assert_eq!(done.code, Some(2), "{}", done.output());
    assert!(done.stderr.contains("report.json"), "{}", done.output());
}

/// `--scale 1/20` shrinks absolute limits with the load, and every text that shows the limit says
/// both values: 50/s × 1/20 for 2 s is exactly 5 requests, judged against `count >= 100` × 1/20.
#[test]
fn scaled_thresholds_show_the_written_and_the_scaled_limit() {
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    let sc = Scenario::new(CLEAN);
    let done = sc.run(
        &shop.url(),
        &[
            "--scale",
            "1/20",
            "--threshold",
            "count >= 100",
            "--threshold",
            "rate > 40/s",
        ],
        LIMIT,
    );
    assert_eq!(done.code, Some(0), "{}", done.output());
    assert!(
        done.stdout
            .contains("✓ count >= 100   observed 5, limit 5 = 100 × 1/20 (--scale 1/20)"),
        "{}",
        done.output()
    );
    assert!(
        done.stdout.contains("✓ rate > 40/s   observed 2.4"),
        "{}",
        done.output()
    );
    assert!(
        done.stdout
            .contains("/s, limit 2/s = 40/s × 1/20 (--scale 1/20)"),
        "{}",
        done.output()
    );
    assert_valid_report(&sc.out);
    let r = report_json(&sc.out);
    let count = &r["thresholds"][2];
    assert_eq!(count["limit"], 5.0);
    assert_eq!(count["scaled_from"], "100 × 1/20 (--scale 1/20)");
    // Latency and error limits are not scaled, and say nothing of it.
    assert!(r["thresholds"][0].get("scaled_from").is_none());
    let md = read(&sc.out, "summary.md");
    assert!(
        md.contains("| ✓ | `count >= 100` | 5 | 5 = 100 × 1/20 (--scale 1/20) |"),
        "{md}"
    );
}
