//! Live operations against loopback servers: the Prometheus endpoint parsed by an independent
//! reader (Python's prometheus_client), steering a running drill over HTTP (rate, pause,
//! resume, stop) and the timeline it leaves, and the monitor fed by a fake node_exporter.

mod support;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::endpoint::{free_addr, request};
use support::server::TestServer;
use support::{python::python, Scenario};

/// The control token the runs of this file are given (`--control-token`).
const TOKEN: &str = "liveops-test-token";

/// One HTTP/1.1 request (with the control token); (status, body), or None when nothing listens
/// (yet).
fn http(addr: SocketAddr, method: &str, path: &str) -> Option<(u16, String)> {
    request(
        addr,
        method,
        path,
        &format!("Authorization: Bearer {TOKEN}\r\n"),
    )
}

/// A run of `sc` with its endpoint on `addr` and the control token.
fn spawn_live(sc: &Scenario, target: &TestServer, addr: SocketAddr) -> support::Spawned {
    let a = addr.to_string();
    sc.spawn(
        &target.url(),
        &[
            "--threads",
            "1",
            "--metrics-listen",
            &a,
            "--control-token",
            TOKEN,
        ],
    )
}

/// Scrapes /metrics until `flashcrowd_elapsed_seconds` reaches `secs`; the exposition text.
fn scrape_after(addr: SocketAddr, secs: u64, limit: Duration) -> String {
    let began = Instant::now();
    loop {
        if let Some((200, body)) = http(addr, "GET", "/metrics") {
            let done = body
                .lines()
                .find_map(|l| l.strip_prefix("flashcrowd_elapsed_seconds "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            if done >= secs {
                return body;
            }
        }
        assert!(
            began.elapsed() < limit,
            "no scrape with {secs} completed seconds within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn post(addr: SocketAddr, path: &str) -> String {
    let (status, body) =
        http(addr, "POST", path).unwrap_or_else(|| panic!("POST {path}: no answer"));
    assert_eq!(status, 200, "POST {path}: {body}");
    body
}

/// Parses expositions with prometheus_client's OpenMetrics parser (independent of ours, and
/// strict: `# EOF`, counter `_total` suffixes, histogram bucket order); per file, every family
/// with its type and samples. The endpoint serves OpenMetrics 1.0 text, which Prometheus asks
/// for first when it scrapes.
const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for path in sys.argv[1:]:
    fams = {}
    for f in text_string_to_metric_families(open(path, encoding="utf-8").read()):
        fams[f.name] = {"type": f.type, "samples": [[s.name, s.labels, s.value] for s in f.samples]}
    out.append(fams)
print(json.dumps(out))
"#;

fn parse_expositions(texts: &[String]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let p = dir.path().join(format!("scrape{i}.txt"));
            std::fs::write(&p, t).unwrap();
            p.to_str().unwrap().to_string()
        })
        .collect();
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let out = python(PARSE, &args);
    let v: Value = serde_json::from_str(&out).unwrap();
    v.as_array().unwrap().clone()
}

fn sum_samples(fam: &Value, sample: &str) -> f64 {
    fam["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s[0] == sample)
        .map(|s| s[2].as_f64().unwrap())
        .sum()
}

fn scenario(rate: u32, secs: u32, extra: &str) -> String {
    format!(
        r#"
name: liveops
target: http://127.0.0.1:9
journeys:
  walk:
    share: 100%
    steps:
      - get: /item
        name: item
      - get: /cart
        name: cart
        expect: {{ status: 201 }}
load:
  stages:
    - {{ rate: {rate}/s, for: {secs}s, name: steady }}
  arrivals: uniform
{extra}"#
    )
}

#[test]
fn metrics_endpoint_parses_and_its_counters_grow_then_stop_ends_the_run() {
    let target = TestServer::start();
    let sc = Scenario::new(&scenario(100, 30, ""));
    let addr = free_addr();
    let run = spawn_live(&sc, &target, addr);
    let first = scrape_after(addr, 2, Duration::from_secs(20));
    let second = scrape_after(addr, 4, Duration::from_secs(20));
    post(addr, "/control/stop");
    let done = run.wait(Duration::from_secs(20));
    assert_eq!(
        done.code,
        Some(3),
        "a stop is an interruption\n{}",
        done.output()
    );

    let parsed = parse_expositions(&[first.clone(), second.clone()]);
    let (a, b) = (&parsed[0], &parsed[1]);
    for (fam, ty) in [
        ("flashcrowd_requests", "counter"),
        ("flashcrowd_errors", "counter"),
        ("flashcrowd_sessions", "counter"),
        ("flashcrowd_retried", "counter"),
        ("flashcrowd_in_flight", "gauge"),
        ("flashcrowd_planned_rate", "gauge"),
        ("flashcrowd_achieved_rate", "gauge"),
        ("flashcrowd_rate_factor", "gauge"),
        ("flashcrowd_phase", "gauge"),
        ("flashcrowd_generator_lag_p99_seconds", "gauge"),
        ("flashcrowd_latency_seconds", "histogram"),
    ] {
        assert_eq!(b[fam]["type"], ty, "{fam} in\n{second}");
    }
    // Counters grow between scrapes; 100 sessions/s, two requests each.
    let (r1, r2) = (
        sum_samples(&a["flashcrowd_requests"], "flashcrowd_requests_total"),
        sum_samples(&b["flashcrowd_requests"], "flashcrowd_requests_total"),
    );
    assert!(r1 >= 300.0 && r2 >= r1 + 300.0, "requests {r1} then {r2}");
    // Every /cart answer (200, not the expected 201) is an expect_failed error.
    let errs = &b["flashcrowd_errors"]["samples"];
    let cart_failed: f64 = errs
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s[1]["request"] == "cart" && s[1]["kind"] == "expect_failed")
        .map(|s| s[2].as_f64().unwrap())
        .sum();
    assert!(cart_failed >= 150.0, "errors by kind: {errs}");
    assert_eq!(
        sum_samples(&b["flashcrowd_planned_rate"], "flashcrowd_planned_rate"),
        100.0
    );
    // The phase gauge: `steady` is the current phase.
    let phase = &b["flashcrowd_phase"]["samples"][0];
    assert_eq!(
        (phase[1]["phase"].as_str(), phase[2].as_f64()),
        (Some("steady"), Some(1.0))
    );
    // Histogram: cumulative buckets per request name, +Inf equal to the count, and growing.
    let lat = &b["flashcrowd_latency_seconds"]["samples"];
    let pick = |name: &str, le: Option<&str>| -> f64 {
        lat.as_array()
            .unwrap()
            .iter()
            .find(|s| {
                s[0] == name && s[1]["request"] == "item" && le.is_none_or(|l| s[1]["le"] == l)
            })
            .map(|s| s[2].as_f64().unwrap())
            .unwrap_or_else(|| panic!("{name} {le:?} in {lat}"))
    };
    let count = pick("flashcrowd_latency_seconds_count", None);
    assert_eq!(
        pick("flashcrowd_latency_seconds_bucket", Some("+Inf")),
        count
    );
    assert!(count >= 300.0, "item latency count {count}");
    assert!(pick("flashcrowd_latency_seconds_bucket", Some("1.0")) <= count);
    let count_a = sum_samples(
        &a["flashcrowd_latency_seconds"],
        "flashcrowd_latency_seconds_count",
    );
    let count_b = sum_samples(
        &b["flashcrowd_latency_seconds"],
        "flashcrowd_latency_seconds_count",
    );
    assert!(count_b > count_a, "latency counts {count_a} then {count_b}");

    let report = sc.report(&done);
    assert_eq!(report["run"]["status"], "interrupted");
    let tl = report["timeline"].as_array().unwrap();
    assert!(
        tl.iter()
            .any(|e| e["event"] == "stop" && e["detail"].as_str().unwrap().contains("http")),
        "timeline: {tl:?}"
    );
    assert!(report["run"]["duration_s"].as_f64().unwrap() < 15.0);
}

#[test]
fn a_rate_change_halves_the_sessions_started_and_lands_in_the_timeline() {
    let target = TestServer::start();
    let sc = Scenario::new(&scenario(100, 8, ""));
    let addr = free_addr();
    let run = spawn_live(&sc, &target, addr);
    scrape_after(addr, 2, Duration::from_secs(20));
    post(addr, "/control/rate?factor=0.5");
    scrape_after(addr, 5, Duration::from_secs(20));
    post(addr, "/control/pause");
    scrape_after(addr, 6, Duration::from_secs(20));
    post(addr, "/control/resume");
    // A bad value is refused and changes nothing.
    let (status, _) = http(addr, "POST", "/control/rate?factor=abc").unwrap();
    assert_eq!(status, 400);
    let done = run.wait(Duration::from_secs(30));
    assert_eq!(done.code, Some(0), "the run completes\n{}", done.output());
    let report = sc.report(&done);

    let tl = report["timeline"].as_array().unwrap().clone();
    let at = |ev: &str| -> f64 {
        tl.iter()
            .find(|e| e["event"] == ev)
            .unwrap_or_else(|| panic!("no {ev} in the timeline {tl:?}"))["t"]
            .as_f64()
            .unwrap()
    };
    let (t_rate, t_pause, t_resume) = (at("rate"), at("pause"), at("resume"));
    // The terminal summary and summary.md list every one of them, as report.json has it.
    let md = std::fs::read_to_string(sc.out.join("summary.md")).unwrap();
    assert!(
        done.stdout
            .contains("timeline (live control, rules, signals)"),
        "{}",
        done.output()
    );
    for e in &tl {
        let (t, ev, detail) = (
            format!("{:.1}s", e["t"].as_f64().unwrap()),
            e["event"].as_str().unwrap(),
            e["detail"].as_str().unwrap(),
        );
        assert!(
            done.stdout.contains(&format!("{t:>7}  {ev}  {detail}")),
            "{e} not in the summary\n{}",
            done.output()
        );
        assert!(
            md.contains(&format!("| {t} | {ev} | {detail} |")),
            "{e} not in\n{md}"
        );
    }
    assert!(tl
        .iter()
        .any(|e| e["event"] == "rate" && e["detail"].as_str().unwrap().contains("factor 0.5")));
    assert!(
        t_rate >= 2.0 && t_rate < t_pause && t_pause < t_resume,
        "{tl:?}"
    );

    let series = report["series"].as_array().unwrap();
    let sec = |t: u64| {
        series
            .iter()
            .find(|p| p["t"] == t)
            .unwrap_or_else(|| panic!("second {t}"))
    };
    // A session counts in the second the generator started it in. An arrival due on a second's
    // edge may leave a fraction of a millisecond early (±1), and one the generator started late
    // (a loaded machine, a debug build: report.json says how late, `generator.lag_ms.max`) may
    // fall into the next second: a second's edge moves by the arrivals of that lateness.
    let lag_s = report["generator"]["lag_ms"]["max"].as_f64().unwrap_or(0.0) / 1000.0;
    let slack = |rate: f64| 1 + (rate * lag_s).ceil() as u64;
    let within = |n: u64, want: u64, slack: u64| n + slack >= want && n <= want + slack;
    let started = |ts: &[u64]| -> u64 {
        ts.iter()
            .map(|&t| sec(t)["sessions_started"].as_u64().unwrap())
            .sum()
    };
    // Full seconds before the change: 100 sessions each (uniform arrivals, exact but for the
    // edges), and together exactly 100 a second but for the two outer edges.
    let full: Vec<u64> = (0..t_rate.floor() as u64).collect();
    for &t in &full {
        let n = sec(t)["sessions_started"].as_u64().unwrap();
        assert!(
            within(n, 100, slack(100.0)),
            "second {t} (lag max {lag_s} s): {}",
            sec(t)
        );
        assert_eq!(sec(t)["rate_factor"], 1.0);
    }
    let n = started(&full);
    assert!(
        within(n, 100 * full.len() as u64, slack(100.0)),
        "{n} sessions in seconds {full:?} (lag max {lag_s} s)"
    );
    // Full seconds between the change and the pause: half (one thinned arrival may straddle a
    // second's edge).
    let halved: Vec<u64> = (t_rate.ceil() as u64..t_pause.floor() as u64).collect();
    assert!(!halved.is_empty(), "no full second at ×0.5: {tl:?}");
    for &t in &halved {
        let n = sec(t)["sessions_started"].as_u64().unwrap();
        assert!(
            within(n, 50, slack(50.0)),
            "second {t} started {n}, expected 50 ± {} (lag max {lag_s} s)",
            slack(50.0)
        );
        assert_eq!(sec(t)["rate_factor"], 0.5);
    }
    let n = started(&halved);
    assert!(
        within(n, 50 * halved.len() as u64, slack(50.0)),
        "{n} sessions in seconds {halved:?} at ×0.5 (lag max {lag_s} s)"
    );
    // Paused seconds start nothing and count the skipped arrivals as paused, not dropped.
    let paused: u64 = series.iter().map(|p| p["paused"].as_u64().unwrap()).sum();
    assert!(paused >= 20, "paused arrivals {paused}");
    assert_eq!(report["totals"]["sessions_dropped"], 0);
    if t_resume.floor() > t_pause.ceil() {
        let t = t_pause.ceil() as u64;
        assert_eq!(sec(t)["sessions_started"], 0, "{}", sec(t));
        assert_eq!(sec(t)["rate_factor"], 0.0);
    }
    // After the resume the factor is still 0.5: sessions start again.
    let last = series
        .iter()
        .filter(|p| p["t"].as_u64().unwrap() as f64 >= t_resume.ceil())
        .map(|p| p["sessions_started"].as_u64().unwrap())
        .sum::<u64>();
    assert!(last > 0, "nothing started after the resume");
}

/// A fake node_exporter: every scrape advances two CPUs by 1 s idle and 3 s busy each, so the
/// busy share between any two scrapes is exactly 75 %; node_load1 is the scrape's number + 0.5.
struct FakeNodeExporter {
    addr: SocketAddr,
    scrapes: Arc<AtomicU64>,
}

impl FakeNodeExporter {
    fn start() -> FakeNodeExporter {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let scrapes = Arc::new(AtomicU64::new(0));
        let n = scrapes.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { return };
                let mut buf = [0u8; 4096];
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = c.read(&mut buf);
                let k = n.fetch_add(1, Ordering::SeqCst) as f64;
                let body = format!(
                    "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n\
                     # TYPE node_cpu_seconds_total counter\n\
                     node_cpu_seconds_total{{cpu=\"0\",mode=\"idle\"}} {}\n\
                     node_cpu_seconds_total{{cpu=\"0\",mode=\"user\"}} {}\n\
                     node_cpu_seconds_total{{cpu=\"1\",mode=\"idle\"}} {}\n\
                     node_cpu_seconds_total{{cpu=\"1\",mode=\"system\"}} {}\n\
                     # TYPE node_load1 gauge\nnode_load1 {}\n\
                     # TYPE node_memory_MemTotal_bytes gauge\nnode_memory_MemTotal_bytes 8000\n\
                     # TYPE node_memory_MemAvailable_bytes gauge\nnode_memory_MemAvailable_bytes 6000\n",
                    1000.0 + k,
                    500.0 + 3.0 * k,
                    2000.0 + k,
                    100.0 + 3.0 * k,
                    k + 0.5
                );
                let _ = write!(
                    c,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FakeNodeExporter { addr, scrapes }
    }
}

fn monitor_block(node: SocketAddr, rules: &str) -> String {
    format!(
        r#"monitor:
  every: 500ms
  targets: [ {{ url: "http://{node}/metrics", name: shop-node }} ]
  series:
    cpu: busy(node_cpu_seconds_total)
    load1: node_load1
    mem_used: node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes
{rules}"#
    )
}

#[test]
fn a_fake_node_exporter_feeds_the_monitor_series_and_rules() {
    let target = TestServer::start();
    let node = FakeNodeExporter::start();
    let sc = Scenario::new(&scenario(
        20,
        4,
        &monitor_block(node.addr, "abort:\n  - cpu > 90% for 1s\n"),
    ));
    let done = sc.run(&target.url(), &["--threads", "1"], Duration::from_secs(30));
    assert_eq!(done.code, Some(0), "{}", done.output());
    let report = sc.report(&done);
    let m = &report["monitor"];
    assert_eq!(m["series"], serde_json::json!(["cpu", "load1", "mem_used"]));
    assert_eq!(m["every_s"], 0.5);
    let scrapes = m["scrapes"].as_array().unwrap();
    assert!(scrapes.len() >= 6, "{} scrapes", scrapes.len());
    assert!(node.scrapes.load(Ordering::SeqCst) as usize >= scrapes.len());
    for (k, s) in scrapes.iter().enumerate() {
        assert_eq!(s["target"], "shop-node");
        let cpu = &s["values"]["cpu"];
        if k == 0 {
            assert!(cpu.is_null(), "a rate needs two scrapes: {s}");
        } else {
            assert_eq!(cpu.as_f64(), Some(75.0), "scrape {k}: {s}");
        }
        assert_eq!(s["values"]["load1"].as_f64(), Some(k as f64 + 0.5), "{s}");
        assert_eq!(s["values"]["mem_used"].as_f64(), Some(2000.0));
    }
    // The per-second series carries the latest values once there are any.
    let series = report["series"].as_array().unwrap();
    let with_cpu: Vec<&Value> = series
        .iter()
        .filter(|p| p["monitor"]["cpu"].is_number())
        .collect();
    assert!(with_cpu.len() >= 3, "{series:?}");
    assert!(with_cpu.iter().all(|p| p["monitor"]["cpu"] == 75.0));
    assert_eq!(report["phases"][0]["monitor_mean"]["cpu"], 75.0);
    assert_eq!(
        report["run"]["status"], "completed",
        "the rule at 90 % must not fire (no thresholds: completed, not aborted)"
    );

    // The same series in an abort rule that holds: the run is aborted, and says why.
    let sc = Scenario::new(&scenario(
        20,
        20,
        &monitor_block(node.addr, "abort:\n  - cpu > 50% for 1s\n"),
    ));
    let done = sc.run(&target.url(), &["--threads", "1"], Duration::from_secs(30));
    assert_eq!(done.code, Some(3), "{}", done.output());
    let report = sc.report(&done);
    assert_eq!(report["run"]["status"], "aborted");
    assert!(
        report["run"]["reason"]
            .as_str()
            .unwrap()
            .contains("monitor:cpu > 50%"),
        "{}",
        report["run"]
    );
    assert!(report["run"]["duration_s"].as_f64().unwrap() < 10.0);
    assert!(report["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event"] == "abort"));

    // A rule naming an undeclared series is bad input, before any load.
    let sc = Scenario::new(&scenario(
        20,
        2,
        &monitor_block(node.addr, "abort:\n  - monitor:cpuu > 50% for 1s\n"),
    ));
    let done = sc.run(&target.url(), &["--threads", "1"], Duration::from_secs(30));
    assert_eq!(done.code, Some(2), "{}", done.output());
    assert!(done.stderr.contains("cpu"), "{}", done.stderr);
}

/// 40/s for the 2 s before the sale: the buyers park at `wait: sale-start` and are released
/// together at 2 s; the plan ends at 5 s.
const RELEASE: &str = r#"
name: live-burst
journeys:
  buy:
    share: 100%
    steps:
      - wait: sale-start
      - get: /order
load:
  countdown: { sale_start: 2s, before: 40/s, peak: 40/s, rise: 1s, hold: 1s, decay: 1s, after: 10/s, end: 5s }
  arrivals: uniform
"#;

/// Issue #17: the live view shows `generator.burst_ms`, the release-to-send spread: the page's
/// state (`/api/state` totals.burst, and per second) as the run goes, equal to report.json's at
/// the end, and the terminal's line.
#[test]
fn the_live_view_shows_the_burst_spread_of_a_release() {
    let target = TestServer::start();
    let sc = Scenario::new(RELEASE);
    let addr = free_addr();
    let a = addr.to_string();
    // Without --quiet and without a terminal: a line every 5 s, the last at t=5s.
    let run = support::Spawned::start(&[
        "run",
        sc.file.to_str().unwrap(),
        "--target",
        &target.url(),
        "--out",
        sc.out.to_str().unwrap(),
        "--threads",
        "1",
        "--metrics-listen",
        &a,
        "--control-token",
        TOKEN,
    ]);
    // Read the page's state until it carries the verdict (the endpoint waits for a reader to
    // see it); before the release it has no burst.
    let began = Instant::now();
    let mut before_release = None;
    let mut page = None;
    let last = loop {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "no verdict on /api/state"
        );
        if let Some((200, body)) = http(addr, "GET", "/api/state") {
            let v: Value = serde_json::from_str(&body).unwrap();
            let seconds = v["series"].as_array().map_or(0, Vec::len);
            if seconds == 1 && before_release.is_none() {
                before_release = Some(v.clone());
            }
            if page.is_none() {
                page = http(addr, "GET", "/").map(|(_, body)| body);
            }
            if !v["verdict"].is_null() {
                break v;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let done = run.wait(Duration::from_secs(60));
    assert_eq!(done.code, Some(0), "{}", done.output());
    let report = sc.report(&done);
    let b = &report["generator"]["burst_ms"];
    let released = b["count"].as_u64().unwrap();
    assert!(released >= 80, "80 buyers parked before the release: {b}");
    if let Some(s) = before_release {
        assert_eq!(s["totals"]["burst"]["count"], 0, "{}", s["totals"]);
        assert!(s["totals"]["burst"]["p99"].is_null());
    }
    // The whole run's spread on the page is report.json's, exactly (the same histogram).
    let live = &last["totals"]["burst"];
    assert_eq!(live["count"], b["count"], "page {live} vs report {b}");
    assert_eq!(live["p99"], b["p99"], "page {live} vs report {b}");
    assert_eq!(live["max"], b["max"], "page {live} vs report {b}");
    // Per second: the release's second carries it, and the seconds add up.
    let series = last["series"].as_array().unwrap();
    let per_second: u64 = series.iter().map(|r| r["burst"].as_u64().unwrap()).sum();
    assert_eq!(per_second, released);
    assert!(series[0]["burst_p99"].is_null(), "{}", series[0]);
    assert!(series.iter().any(|r| r["burst_p99"].is_number()));
    // The page has a tile for it.
    let page = page.expect("the live page");
    assert!(page.contains("id=\"burst\""), "{page}");
    // The terminal's line says it: the releases of the seconds so far, their p99.
    let line = done
        .stderr
        .lines()
        .find(|l| l.starts_with("t=   5s/5s"))
        .unwrap_or_else(|| panic!("no line at 5 s: {}", done.stderr));
    let so_far: u64 = series
        .iter()
        .filter(|r| r["t"].as_u64().unwrap() < 5)
        .map(|r| r["burst"].as_u64().unwrap())
        .sum();
    assert!(
        line.contains(&format!("ms ({so_far} released)")) && line.contains(" burst p99="),
        "{line}"
    );
    if so_far == released {
        let want = format!(" burst p99={:.1}ms", b["p99"].as_f64().unwrap());
        assert!(line.contains(&want), "`{want}` not in {line}");
    }
}

/// A short control token is refused before any load (exit 2, with the fix): every occurrence
/// of a secret is redacted from the page, so a token `x` would blank out ordinary words.
#[test]
fn a_short_control_token_is_refused_before_any_load() {
    let target = TestServer::start();
    let sc = Scenario::new(&scenario(100, 5, ""));
    let done = sc.run(
        &target.url(),
        &["--control-token", "x"],
        Duration::from_secs(20),
    );
    assert_eq!(done.code, Some(2), "{}", done.output());
    assert!(
        done.output().contains("at least 16"),
        "the error says the fix\n{}",
        done.output()
    );
    assert!(target.hits().is_empty(), "nothing was sent");
    assert!(!sc.out.join("report.json").exists(), "no run took place");
}
