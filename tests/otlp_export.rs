//! `run --otlp URL`: the run's metrics reach an OpenTelemetry collector once a second over
//! OTLP/HTTP, cumulative, and the last export agrees with report.json exactly (requests by name
//! and client, errors by kind, the latency histogram's count). The collector here is a
//! purpose-built OTLP/HTTP receiver on 127.0.0.1 that keeps each body as it came; OpenTelemetry's
//! own definitions (Python's `opentelemetry-proto`) decode every one of them: the protobuf
//! (`application/x-protobuf`, the default) with `ExportMetricsServiceRequest.FromString`, the
//! JSON (`--otlp-protocol http/json`) with protobuf's strict JSON mapping. So the encoding is
//! the collector's, not ours. A collector that is down costs a warning, not the run; the
//! collector's credentials never reach the report or the output.

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{count, Scenario};

/// One POST the receiver took: its path, headers (lower-case names) and body, as sent.
struct Export {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Export {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
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

/// Reads each export with opentelemetry-proto's ExportMetricsServiceRequest: a `.pb` file with
/// `FromString` (the protobuf), a `.json` file with json_format.Parse (strict: an unknown or
/// mistyped field is an error). Checks what the definitions say of it, and prints the message
/// as protobuf's JSON mapping, one line per file, for the test to compare with report.json.
/// A protobuf body must also be exactly what protobuf itself writes for the message it holds
/// (re-encoded from that JSON, so an unknown field number would not survive): every field was
/// read, none was lost.
const OTLP_PROTO: &str = r#"
import json, sys
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
for path in sys.argv[1:]:
    if path.endswith(".pb"):
        data = open(path, "rb").read()
        req = ExportMetricsServiceRequest.FromString(data)
        again = json_format.ParseDict(json_format.MessageToDict(req), ExportMetricsServiceRequest())
        assert again.SerializeToString(deterministic=True) == data, path
    else:
        req = json_format.Parse(open(path, encoding="utf-8").read(), ExportMetricsServiceRequest())
    metrics = req.resource_metrics[0].scope_metrics[0].metrics
    m = next(m for m in metrics if m.name == "flashcrowd.requests")
    assert m.WhichOneof("data") == "sum"
    assert m.sum.aggregation_temporality == 2 and m.sum.is_monotonic
    h = next(m for m in metrics if m.name == "flashcrowd.request.duration")
    assert h.WhichOneof("data") == "histogram" and h.histogram.aggregation_temporality == 2
    for p in h.histogram.data_points:
        assert sum(p.bucket_counts) == p.count, p
        assert len(p.bucket_counts) == len(p.explicit_bounds) + 1
        assert p.HasField("sum") and p.HasField("min") and p.HasField("max")
        assert p.start_time_unix_nano < p.time_unix_nano
    g = next(m for m in metrics if m.name == "flashcrowd.in_flight")
    assert g.WhichOneof("data") == "gauge" and g.gauge.data_points[0].WhichOneof("value") == "as_double"
    print(json.dumps(json_format.MessageToDict(req)))
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

/// A 64-bit integer of protobuf's JSON mapping (a string).
fn int(v: &Value) -> u64 {
    v.as_str()
        .unwrap_or_else(|| panic!("not a 64-bit integer: {v}"))
        .parse()
        .unwrap()
}

/// Runs the scenario against the shop with `--otlp` to a receiver and `extra` flags; checks
/// every export with OpenTelemetry's definitions and the last against report.json. `ext` is
/// the file extension the reader takes the bodies as (`pb`, `json`), `content_type` what each
/// POST must say.
fn exports_agree_with_the_report(extra: &[&str], ext: &str, content_type: &str) {
    let shop = start_background(ShopConfig::default()).expect("start the shop");
    let (url, got) = receiver();
    let sc = Scenario::new(SCENARIO);
    let mut args = vec![
        "--otlp",
        &url,
        "--otlp-header",
        "Authorization=Bearer otlp-secret-7",
    ];
    args.extend_from_slice(extra);
    let done = sc.run(&shop.url(), &args, Duration::from_secs(60));
    assert_eq!(done.code, Some(0), "{}", done.output());
    let report = sc.report(&done);
    let exports = got.lock().unwrap();
    // One export a second: three seconds of plan and the tail.
    assert!(exports.len() >= 3, "{} exports", exports.len());
    for e in exports.iter() {
        assert_eq!(e.path, "/v1/metrics");
        assert_eq!(e.header("authorization"), Some("Bearer otlp-secret-7"));
        assert_eq!(e.header("content-type"), Some(content_type));
    }
    // OpenTelemetry's own definitions read every export and give it back as protobuf's JSON.
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = exports
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let f = dir.path().join(format!("export-{i}.{ext}"));
            std::fs::write(&f, &e.body).unwrap();
            f.display().to_string()
        })
        .collect();
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let read: Vec<Value> = support::python::python(OTLP_PROTO, &args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(read.len(), exports.len());
    let totals: Vec<u64> = read
        .iter()
        .map(|e| {
            points(e, "flashcrowd.requests")
                .iter()
                .map(|p| int(&p["asInt"]))
                .sum()
        })
        .collect();
    assert!(
        totals.windows(2).all(|w| w[0] <= w[1]),
        "cumulative: {totals:?}"
    );
    let last = read.last().unwrap();
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
    assert_eq!(total, 240, "40/s for 3 s, two requests each");

    // Errors: every `missing` request is a 404, counted as an error of kind http_4xx.
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
    let outcome = |o: &str| {
        int(&sessions
            .iter()
            .find(|p| attr(p, "outcome") == o)
            .unwrap_or_else(|| panic!("no {o} point: {sessions:?}"))["asInt"])
    };
    assert_eq!(outcome("started"), 120);
    assert_eq!(
        outcome("started"),
        count(&report, "/totals/sessions_started")
    );
    assert_eq!(outcome("dropped"), 0, "a zero is sent, not left out");

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
fn protobuf_exports_agree_with_the_report() {
    exports_agree_with_the_report(&[], "pb", "application/x-protobuf");
}

#[test]
fn json_exports_agree_with_the_report() {
    exports_agree_with_the_report(
        &["--otlp-protocol", "http/json"],
        "json",
        "application/json",
    );
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
    // gRPC is refused with the way out (OTLP/HTTP's port), before any load.
    let done = sc.run(
        "http://127.0.0.1:9",
        &["--otlp", "http://127.0.0.1:4318", "--otlp-protocol", "grpc"],
        Duration::from_secs(30),
    );
    assert_eq!(done.code, Some(2), "{}", done.output());
    assert!(
        done.stderr.contains("--otlp-protocol") && done.stderr.contains("4318"),
        "{}",
        done.output()
    );
}

/// OpenTelemetry's own variable turns the export on without `--otlp`, as the SDKs read it (a
/// base URL gets `/v1/metrics`); a collector's flags without any collector are refused.
#[test]
fn otel_exporter_otlp_endpoint_turns_the_export_on() {
    let shop = start_background(ShopConfig::default()).expect("start the shop");
    let (url, got) = receiver();
    let sc = Scenario::new(SCENARIO);
    let out = sc.out.to_str().unwrap().to_string();
    let file = sc.file.to_str().unwrap().to_string();
    let shop_url = shop.url();
    let args = [
        "run", &file, "--target", &shop_url, "--out", &out, "--quiet",
    ];
    let done = support::Spawned::start_with_env(
        &args,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", url.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ],
    )
    .wait(Duration::from_secs(60));
    assert_eq!(done.code, Some(0), "{}", done.output());
    let exports = got.lock().unwrap();
    assert!(exports.len() >= 3, "{} exports", exports.len());
    for e in exports.iter() {
        assert_eq!(e.path, "/v1/metrics");
        assert_eq!(e.header("content-type"), Some("application/json"));
    }
    drop(exports);
    let done = sc.run(
        "http://127.0.0.1:9",
        &["--otlp-header", "Authorization=Bearer x"],
        Duration::from_secs(30),
    );
    assert_eq!(done.code, Some(2), "{}", done.output());
    assert!(
        done.stderr.contains("need a collector"),
        "{}",
        done.output()
    );
}
