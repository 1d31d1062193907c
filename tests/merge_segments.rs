//! Beyond one machine: three processes run segments 1/3, 2/3 and 3/3 of one countdown plan from a
//! common `--start-at`, against one loopback server; `flashcrowd merge` turns their run
//! directories into the same totals as one process running the whole plan, and the server sees
//! the three generators' shared sale-start burst as one.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use support::server::TestServer;
use support::{count, read_report, Scenario, Spawned, BURST_SLACK_MS};

/// 300 users arrive uniformly over the 2 s before the sale (149.9/s plus a 1 ms rise to 0/s
/// plans 299.85 arrivals: k = 0…299, the last at 1.995 s). 40 % browse once; 60 % make a first
/// request, wait for the sale to start and send the timed one. The thresholds are written for the
/// whole run: a segment judges its share against 1/3 of `count`, the merge the whole against all.
const COUNTDOWN: &str = r#"
name: merge-countdown
target: http://127.0.0.1:9
journeys:
  browse:
    share: 40%
    steps:
      - get: /m/browse
  buy:
    share: 60%
    steps:
      - get: /m/first
      - wait: sale-start
      - get: /m/go
load:
  countdown:
    sale_start: 2s
    before: 149.9/s
    peak: 0/s
    rise: 1ms
    hold: 0s
    decay: 0s
    after: 0/s
    end: 3s
  arrivals: uniform
thresholds:
  - count > 400
  - errors < 1%
  - p99 < 1s
"#;

const OTHER: &str = r#"
name: merge-other
target: http://127.0.0.1:9
journeys:
  ping:
    share: 100%
    steps:
      - get: /o/ping
load:
  stages:
    - { rate: 10/s, for: 1s }
  arrivals: uniform
"#;

/// Per tag of a latency.hlog, read by Python's `hdrh` (an independent reader): total count.
const HLOG_COUNTS: &str = r#"
import json, sys
from urllib.parse import unquote
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
reader = HistogramLogReader(sys.argv[1], HdrHistogram(1, 3600 * 10**6, 3))
counts = {}
while True:
    h = reader.get_next_interval_histogram()
    if h is None:
        break
    name, client = (unquote(p) for p in h.get_tag().split("|"))
    key = name + "|" + client
    counts[key] = counts.get(key, 0) + h.get_total_count()
print(json.dumps(counts, ensure_ascii=False))
"#;

fn flashcrowd(args: &[&str]) -> support::Finished {
    Spawned::start(args).wait(Duration::from_secs(60))
}

fn merge(dirs: &[&Path], out: &Path) -> support::Finished {
    merge_with(dirs, out, &[])
}

fn merge_with(dirs: &[&Path], out: &Path, extra: &[&str]) -> support::Finished {
    let mut args = vec!["merge".to_string()];
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    args.extend(["--out".into(), out.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    flashcrowd(&args)
}

/// (name, client) → count, from report.json's `requests`.
fn per_request(v: &Value) -> BTreeMap<(String, String), u64> {
    v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    r["name"].as_str().unwrap().to_string(),
                    r["client"].as_str().unwrap().to_string(),
                ),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn journeys(v: &Value) -> BTreeMap<String, (u64, u64)> {
    v["journeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["name"].as_str().unwrap().to_string(),
                (
                    j["sessions"].as_u64().unwrap(),
                    j["completed"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[test]
fn three_segments_from_one_start_at_merge_into_the_whole_run() {
    let server = TestServer::start();
    let sc = Scenario::new(COUNTDOWN);
    let root = sc.dir.path();
    let seg_dir = |i: u32| root.join(format!("segment-{i}"));

    // Three generators, one instant: 3 s from now leaves time to start and probe.
    let start_at = (chrono::Utc::now() + chrono::Duration::seconds(3))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let procs: Vec<Spawned> = (1..=3)
        .map(|i| {
            let seg = format!("{i}/3");
            let out = seg_dir(i);
            Spawned::start(&[
                "run",
                sc.file.to_str().unwrap(),
                "--target",
                &server.url(),
                "--out",
                out.to_str().unwrap(),
                "--quiet",
                "--threads",
                "1",
                "--segment",
                &seg,
                "--start-at",
                &start_at,
            ])
        })
        .collect();
    let mut segments = Vec::new();
    for (i, p) in procs.into_iter().enumerate() {
        let done = p.wait(Duration::from_secs(60));
        assert_eq!(done.code, Some(0), "segment {}/3\n{}", i + 1, done.output());
        segments.push(read_report(&seg_dir(i as u32 + 1), &done));
    }
    // Each segment judged `count > 400` as its share, 400/3.
    for s in &segments {
        let limit = s["thresholds"][0]["limit"].as_f64().unwrap();
        assert!((limit - 400.0 / 3.0).abs() < 1e-6, "{limit}");
        assert!(s["run"]["planned_start"].as_str().is_some());
    }

    // The shared rendezvous burst, as the server saw it from all three processes.
    let go = server.arrivals("/m/go");
    let first = server.arrivals("/m/first");
    assert_eq!(go.len(), first.len());
    let (go_min, first_max) = (*go.iter().min().unwrap(), *first.iter().max().unwrap());
    eprintln!(
        "last first request {:+.1} ms from the first timed one",
        if first_max > go_min {
            ms(first_max - go_min)
        } else {
            -ms(go_min - first_max)
        }
    );
    let burst = go
        .iter()
        .max()
        .unwrap()
        .duration_since(*go.iter().min().unwrap());
    let per_segment: Vec<u64> = segments
        .iter()
        .map(|s| per_request(s)[&("GET /m/go".to_string(), "default".to_string())])
        .collect();
    eprintln!(
        "burst: {} timed requests from 3 processes ({per_segment:?}) reached the server over {:.1} ms; \
         start lags {:?} ms; burst spread per generator (max) {:?} ms",
        go.len(),
        ms(burst),
        segments
            .iter()
            .map(|s| s["run"]["start_lag_ms"].as_f64().unwrap())
            .collect::<Vec<_>>(),
        segments
            .iter()
            .map(|s| s["generator"]["burst_ms"]["max"].as_f64().unwrap_or(-1.0))
            .collect::<Vec<_>>(),
    );
    assert!(
        ms(burst) <= BURST_SLACK_MS,
        "the three generators' sale-start burst reached the server over {:.1} ms, want ≤ {BURST_SLACK_MS} ms",
        ms(burst)
    );

    // Merge.
    let merged_dir = root.join("merged");
    let done = merge(&[&seg_dir(1), &seg_dir(2), &seg_dir(3)], &merged_dir);
    assert_eq!(done.code, Some(0), "{}", done.output());
    let merged = read_report(&merged_dir, &done);
    assert_eq!(merged["run"]["segment"], "1/3+2/3+3/3", "{merged:#}");
    assert_eq!(merged["run"]["merged_from"]["covered"], 3);
    assert_eq!(merged["thresholds"][0]["limit"].as_f64(), Some(400.0));
    for f in [
        "report.html",
        "summary.md",
        "junit.xml",
        "latency.hlog",
        "scenario.yaml",
    ] {
        assert!(merged_dir.join(f).is_file(), "{f} missing in the merge");
    }

    // The merged interval log, read independently, holds every request of every segment.
    let hlog: BTreeMap<String, u64> = serde_json::from_str(&support::python::python(
        HLOG_COUNTS,
        &[merged_dir.join("latency.hlog").to_str().unwrap()],
    ))
    .expect("hdrh output");
    let rows: BTreeMap<String, u64> = per_request(&merged)
        .into_iter()
        .map(|((n, c), k)| (format!("{n}|{c}"), k))
        .collect();
    assert_eq!(hlog, rows, "latency.hlog (hdrh) vs report.json");

    // One process running the whole plan, against its own server.
    let whole_server = TestServer::start();
    let whole_out = root.join("whole");
    let done = flashcrowd(&[
        "run",
        sc.file.to_str().unwrap(),
        "--target",
        &whole_server.url(),
        "--out",
        whole_out.to_str().unwrap(),
        "--quiet",
        "--threads",
        "1",
    ]);
    assert_eq!(done.code, Some(0), "{}", done.output());
    let whole = read_report(&whole_out, &done);

    let sessions = count(&merged, "/totals/sessions_started");
    let requests = count(&merged, "/totals/requests");
    eprintln!(
        "merged: {sessions} sessions, {requests} requests {:?}; whole run: {} sessions, {} requests {:?}",
        per_request(&merged),
        count(&whole, "/totals/sessions_started"),
        count(&whole, "/totals/requests"),
        per_request(&whole),
    );
    assert_eq!(sessions, 300);
    assert_eq!(sessions, count(&whole, "/totals/sessions_started"));
    assert_eq!(requests, count(&whole, "/totals/requests"));
    assert_eq!(per_request(&merged), per_request(&whole));
    assert_eq!(journeys(&merged), journeys(&whole));
    assert_eq!(count(&merged, "/totals/errors"), 0);
    let seg_sum: u64 = segments.iter().map(|s| count(s, "/totals/requests")).sum();
    assert_eq!(requests, seg_sum);
    // The series adds up too, second by second aligned on the common start.
    let series_sessions: u64 = merged["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sessions_started"].as_u64().unwrap())
        .sum();
    assert_eq!(series_sessions, 300);
    // The client mix per second is summed too: every second's requests are the one client's,
    // and over the seconds they are the run's.
    let mut series_clients = 0;
    for p in merged["series"].as_array().unwrap() {
        assert_eq!(
            p["clients"]["default"].as_u64().unwrap_or(0),
            count(p, "/requests"),
            "{p}"
        );
        series_clients += count(p, "/requests");
    }
    let seg_series: u64 = segments
        .iter()
        .flat_map(|s| s["series"].as_array().unwrap().iter())
        .map(|p| p["clients"]["default"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!((series_clients, seg_series), (requests, requests));
    // The plan's live factor is carried through: no steering, so 1.0 every second (a zero
    // would draw the plan at nothing in the merged rate chart).
    for p in merged["series"].as_array().unwrap() {
        assert_eq!(p["rate_factor"].as_f64(), Some(1.0), "{p}");
        assert_eq!(p["paused"].as_u64(), Some(0), "{p}");
    }
    assert_eq!(
        server.count("/m/"),
        requests as usize,
        "the server saw what the merge counts"
    );

    // `flashcrowd report MERGED` re-renders it, unchanged.
    let before = std::fs::read(merged_dir.join("report.json")).unwrap();
    let done = flashcrowd(&["report", merged_dir.to_str().unwrap(), "--quiet"]);
    assert_eq!(done.code, Some(0), "{}", done.output());
    assert_eq!(
        before,
        std::fs::read(merged_dir.join("report.json")).unwrap()
    );

    // A missing segment: merged, and said so plainly; the whole-run threshold fails on 2/3.
    let partial = root.join("partial");
    let done = merge(&[&seg_dir(1), &seg_dir(3)], &partial);
    eprintln!("partial merge:\n{}", done.output());
    assert!(
        done.stderr.contains("covers 2 of 3 segments") && done.stderr.contains("2/3"),
        "{}",
        done.output()
    );
    let p = read_report(&partial, &done);
    assert_eq!(p["run"]["merged_from"]["missing"][0], "2/3");
    assert_eq!(p["run"]["segment"], "1/3+3/3");
    assert_eq!(p["run"]["status"], "incomplete", "{}", done.output());
    assert!(
        done.stdout.contains("INCOMPLETE") && done.stdout.contains("--allow-partial"),
        "{}",
        done.output()
    );
    assert_eq!(done.code, Some(1), "count > 400 cannot hold on two thirds");
    // Accepted as partial, it is judged on its thresholds alone: still failed.
    let done = merge_with(
        &[&seg_dir(1), &seg_dir(3)],
        &root.join("partial-ok"),
        &["--allow-partial"],
    );
    assert_eq!(done.code, Some(1), "{}", done.output());
    assert_eq!(
        read_report(&root.join("partial-ok"), &done)["run"]["status"],
        "failed"
    );

    // Overlapping segments: the same segment twice is refused.
    let copy = root.join("segment-1-copy");
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(seg_dir(1)).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
        }
    }
    let done = merge(&[&seg_dir(1), &copy, &seg_dir(2)], &root.join("bad1"));
    eprintln!("overlap:\n{}", done.stderr);
    assert_eq!(done.code, Some(2), "{}", done.output());
    assert!(
        done.stderr.contains("overlapping segments") && done.stderr.contains("segment 1/3"),
        "{}",
        done.output()
    );
    assert!(!root.join("bad1").join("report.json").exists());

    // A segment of a different scenario is refused.
    let other = Scenario::new(OTHER);
    let done = other.run(
        &server.url(),
        &["--threads", "1", "--segment", "2/3"],
        Duration::from_secs(30),
    );
    assert_eq!(done.code, Some(0), "{}", done.output());
    // One of three segments, no thresholds to fail: incomplete, exit 3; accepted, completed
    // (nothing to check, so not "passed").
    let done = merge(&[&other.out], &root.join("one-of-three"));
    assert_eq!(done.code, Some(3), "{}", done.output());
    let one = read_report(&root.join("one-of-three"), &done);
    assert_eq!(one["run"]["status"], "incomplete");
    assert_eq!(
        one["run"]["merged_from"]["missing"],
        serde_json::json!(["1/3", "3/3"])
    );
    let done = merge_with(
        &[&other.out],
        &root.join("one-accepted"),
        &["--allow-partial"],
    );
    assert_eq!(done.code, Some(0), "{}", done.output());
    assert_eq!(
        read_report(&root.join("one-accepted"), &done)["run"]["status"],
        "completed"
    );

    let done = merge(&[&seg_dir(1), &other.out], &root.join("bad2"));
    eprintln!("different scenarios:\n{}", done.stderr);
    assert_eq!(done.code, Some(2), "{}", done.output());
    assert!(
        done.stderr.contains("different scenarios")
            && done.stderr.contains("merge-countdown")
            && done.stderr.contains("merge-other"),
        "{}",
        done.output()
    );
}
