//! `run --otlp URL`: the run's metrics reach an OpenTelemetry collector once a second as
//! OTLP/HTTP JSON, cumulative, and the last export agrees with report.json exactly (requests by
//! name and client, errors by kind, the latency histogram's count). The collector here is a
//! purpose-built OTLP/HTTP receiver on 127.0.0.1; a collector that is down costs a warning, not
//! the run; the collector's credentials never reach the report or the output. Every export is
//! also read with OpenTelemetry's own protobuf definitions (Python's `opentelemetry-proto`,
//! strict JSON mapping), so the encoding is the collector's, not ours.

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{count, Scenario};

/// One POST the receiver took: its path, headers (lower-case names) and JSON body.
struct Export {
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

/// A minimal OTLP/HTTP receiver: answers every POST with 200 and keeps it.
fn receiver() -> (String, Arc<Mutex<Vec<Export>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let keep = keep.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut headers = Vec::new();
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (k, v) = h.split_once(':').unwrap();
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                    let len: usize = headers
                        .iter()
                        .find(|(k, _)| k == "content-length")
                        .map(|(_, v)| v.parse().unwrap())
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    let body: Value = serde_json::from_slice(&body).expect("an OTLP JSON body");
                    keep.lock().unwrap().push(Export {
                        path,
                        headers,
                        body,
                    });
                    w.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}")
                        .unwrap();
                }
            });
        }
    });
    (url, got)
}

/// Parses each OTLP JSON file with opentelemetry-proto's ExportMetricsServiceRequest (unknown
/// fields refused) and prints its `flashcrowd.requests` total, one line per file.
const OTLP_PROTO: &str = r#"
import sys
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
for path in sys.argv[1:]:
    req = json_format.Parse(open(path, encoding="utf-8").read(), ExportMetricsServiceRequest())
    metrics = req.resource_metrics[0].scope_metrics[0].metrics
    m = next(m for m in metrics if m.name == "flashcrowd.requests")
    assert m.sum.aggregation_temporality == 2 and m.sum.is_monotonic
    h = next(m for m in metrics if m.name == "flashcrowd.request.duration")
    for p in h.histogram.data_points:
        assert sum(p.bucket_counts) == p.count, p
        assert len(p.bucket_counts) == len(p.explicit_bounds) + 1
    print(sum(p.as_int for p in m.sum.data_points))
"#;

const SCENARIO: &str = r#"
name: otlp-out
target: http://127.0.0.1:9
clients:
  app: { share: 50% }
  web: { share: 50% }
journeys:
  look:
    share: 100%
    steps:
      - get: /api/items/1
        name: item
      - get: /no-such-page
        name: missing
load:
  stages:
    - { rate: 40/s, for: 3s }
  arrivals: uniform
"#;

/// The data points of metric `name` in one export.
fn points<'a>(export: &'a Value, name: &str) -> Vec<&'a Value> {
    let metrics = export["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array()
        .unwrap();
    let m = metrics
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {export}"));
    let data = m
        .get("sum")
        .or_else(|| m.get("histogram"))
        .or_else(|| m.get("gauge"))
        .unwrap();
    data["dataPoints"].as_array().unwrap().iter().collect()
}

fn attr<'a>(point: &'a Value, key: &str) -> &'a str {
    point["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == key)
        .and_then(|a| a["value"]["stringValue"].as_str())
        .unwrap_or("")
}

fn int(v: &Value) -> u64 {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn the_last_export_agrees_with_the_report() {
    let shop = start_background(ShopConfig::default()).expect("start the shop");
    let (url, got) = receiver();
    let sc = Scenario::new(SCENARIO);
    let done = sc.run(
        &shop.url(),
        &[
            "--otlp",
            &url,
            "--otlp-header",
            "Authorization=Bearer otlp-secret-7",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(done.code, Some(0), "{}", done.output());
    let report = sc.report(&done);
    let exports = got.lock().unwrap();
    // One export a second: three seconds of plan and the tail.
    assert!(exports.len() >= 3, "{} exports", exports.len());
    for e in exports.iter() {
        assert_eq!(e.path, "/v1/metrics");
        assert!(e
            .headers
            .iter()
            .any(|(k, v)| k == "authorization" && v == "Bearer otlp-secret-7"));
        assert!(e
            .headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "application/json"));
    }
    let last = &exports.last().unwrap().body;
    // OpenTelemetry's own definitions read every export, strictly (an unknown or mistyped field
    // is an error), and count the same requests.
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = exports
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let f = dir.path().join(format!("export-{i}.json"));
            std::fs::write(&f, e.body.to_string()).unwrap();
            f.display().to_string()
        })
        .collect();
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let read = support::python::python(OTLP_PROTO, &args);
    let totals: Vec<u64> = read.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(totals.len(), exports.len());
    assert!(
        totals.windows(2).all(|w| w[0] <= w[1]),
        "cumulative: {totals:?}"
    );
    let resource = &last["resourceMetrics"][0]["resource"];
    assert!(resource.to_string().contains("\"service.name\""));
    assert!(resource.to_string().contains("otlp-out"));

    // Requests by name and client: the report's rows, exactly.
    let rows = report["requests"].as_array().unwrap();
    let sent = points(last, "flashcrowd.requests");
    assert_eq!(sent.len(), rows.len(), "{last}");
    for row in rows {
        let p = sent
            .iter()
            .find(|p| attr(p, "request") == row["name"] && attr(p, "client") == row["client"])
            .unwrap_or_else(|| panic!("no point for {row}"));
        assert_eq!(int(&p["asInt"]), row["count"].as_u64().unwrap(), "{row}");
    }
    let total: u64 = sent.iter().map(|p| int(&p["asInt"])).sum();
    assert_eq!(total, count(&report, "/totals/requests"));
    assert_eq!(
        *totals.last().unwrap(),
        total,
        "the protobuf reading of the last export"
    );
    assert_eq!(total, 240, "40/s for 3 s, two requests each");

    // Errors: every `missing` request is a 404, counted as an error of kind http_status.
    let errors = points(last, "flashcrowd.errors");
    let errs: u64 = errors.iter().map(|p| int(&p["asInt"])).sum();
    assert_eq!(errs, count(&report, "/totals/errors"));
    assert_eq!(errs, 120);
    assert!(errors.iter().all(|p| attr(p, "request") == "missing"));

    // The histogram counts every request, and its buckets add up to the count.
    let hists = points(last, "flashcrowd.request.duration");
    let mut n = 0;
    for h in &hists {
        let buckets: u64 = h["bucketCounts"].as_array().unwrap().iter().map(int).sum();
        assert_eq!(buckets, int(&h["count"]), "{h}");
        assert_eq!(
            h["bucketCounts"].as_array().unwrap().len(),
            h["explicitBounds"].as_array().unwrap().len() + 1
        );
        n += int(&h["count"]);
    }
    assert_eq!(n, total);
    let sessions = points(last, "flashcrowd.sessions");
    let started = sessions
        .iter()
        .find(|p| attr(p, "outcome") == "started")
        .unwrap();
    assert_eq!(int(&started["asInt"]), 120);

    // The collector's credential is sent, never written.
    assert!(!done.stdout.contains("otlp-secret-7") && !done.stderr.contains("otlp-secret-7"));
    for f in std::fs::read_dir(&sc.out).unwrap() {
        let path = f.unwrap().path();
        if path.is_file() {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            assert!(
                !text.contains("otlp-secret-7"),
                "{} holds the header",
                path.display()
            );
        }
    }
}

#[test]
fn a_collector_that_is_down_costs_a_warning_not_the_run() {
    let shop = start_background(ShopConfig::default()).expect("start the shop");
    // A port nothing listens on: bind one, then close it.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let sc = Scenario::new(SCENARIO);
    let done = sc.run(&shop.url(), &["--otlp", &dead], Duration::from_secs(60));
    // The 404s make the run exceed --max-errors' default, which only warns without --strict.
    assert_eq!(done.code, Some(0), "{}", done.output());
    assert!(
        done.stderr.contains("otlp: the collector at"),
        "{}",
        done.output()
    );
    assert_eq!(count(&sc.report(&done), "/totals/requests"), 240);
}

#[test]
fn a_url_that_is_not_one_is_refused_before_the_run() {
    let sc = Scenario::new(SCENARIO);
    let done = sc.run(
        "http://127.0.0.1:9",
        &["--otlp", "127.0.0.1:4318"],
        Duration::from_secs(30),
    );
    assert_eq!(done.code, Some(2), "{}", done.output());
    assert!(done.stderr.contains("--otlp:"), "{}", done.output());
}
