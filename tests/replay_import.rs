//! `flashcrowd import` on the sample access log and HAR of examples/replay/: the scenarios it
//! writes validate and run against the embedded shop, their client shares are the input's
//! User-Agent shares to the percent, and the planted Authorization header and ?token= value
//! appear in no file written.

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::Spawned;

const PLANTED: [&str; 2] = ["planted-secret-1234", "planted-token-5678"];

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/replay")
        .join(name)
}

/// The User-Agent of every combined-log line, with its count.
fn log_user_agents(text: &str) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let ua = line.rsplit('"').nth(1).unwrap().to_string();
        *m.entry(ua).or_insert(0) += 1;
    }
    m
}

fn every_file_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            every_file_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn import_and_run(input: &Path, dir: &Path, url: &str) -> String {
    let scenario = dir.join("imported.yaml");
    let done = Spawned::start(&[
        "import",
        input.to_str().unwrap(),
        "-o",
        scenario.to_str().unwrap(),
    ])
    .wait(Duration::from_secs(30));
    assert_eq!(done.code, Some(0), "{}", done.output());
    let text = std::fs::read_to_string(&scenario).unwrap();
    let done =
        Spawned::start(&["validate", scenario.to_str().unwrap()]).wait(Duration::from_secs(30));
    assert_eq!(done.code, Some(0), "{}\n{text}", done.output());
    let out = dir.join("run");
    let done = Spawned::start(&[
        "run",
        scenario.to_str().unwrap(),
        "--target",
        url,
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        // A 30× shorter run with 30× the rate: the recorded number of sessions, in seconds.
        "--time-scale",
        "1/30",
        "--scale",
        "30",
    ])
    .wait(Duration::from_secs(90));
    assert!(
        matches!(done.code, Some(0) | Some(1)),
        "the imported scenario runs: {}",
        done.output()
    );
    let report = support::read_report(&out, &done);
    assert!(support::count(&report, "/totals/requests") > 0);
    let mut files = Vec::new();
    every_file_under(dir, &mut files);
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let s = String::from_utf8_lossy(&bytes);
        for p in PLANTED {
            assert!(
                !s.contains(p),
                "{} holds the planted secret {p}",
                f.display()
            );
        }
    }
    text
}

#[test]
fn import_writes_runnable_scenarios_with_measured_shares_and_no_secrets() {
    // The imported scenarios read their secrets from the environment at run time.
    std::env::set_var("IMPORT_AUTHORIZATION", "Bearer run-time-value");
    std::env::set_var("IMPORT_TOKEN", "run-time-token");
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    let url = shop.url();

    let dir = tempfile::tempdir().unwrap();
    let text = import_and_run(&example("access.log"), dir.path(), &url);
    let uas = log_user_agents(&std::fs::read_to_string(example("access.log")).unwrap());
    let total: u64 = uas.values().sum();
    for (ua, n) in &uas {
        let pct = (*n as f64 * 100.0 / total as f64).round() as u64;
        let at = text
            .find(&format!(
                "User-Agent: {}",
                serde_json::to_string(ua).unwrap()
            ))
            .unwrap_or_else(|| panic!("no client for {ua}\n{text}"));
        let share_line = text[..at]
            .lines()
            .rev()
            .find(|l| l.contains("share:"))
            .unwrap();
        assert!(
            share_line.contains(&format!("share: {pct}%")),
            "{ua}: {share_line} (expected {pct}%)"
        );
    }
    assert!(text.contains("${env:IMPORT_TOKEN}"), "{text}");
    assert!(
        text.contains("rate: ") && text.contains("/min, for: 1m }"),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    let text = import_and_run(&example("shop.har"), dir.path(), &url);
    assert!(text.contains("${env:IMPORT_AUTHORIZATION}"), "{text}");
    assert!(text.contains("share: 100%"), "one User-Agent: {text}");
    assert_eq!(
        text.matches("  session-").count(),
        2,
        "two HAR pages: {text}"
    );
}
