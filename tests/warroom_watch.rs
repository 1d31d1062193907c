//! `flashcrowd watch` over three real `--segment` processes from one `--start-at`, each with its
//! endpoint on loopback: the watcher's merged totals equal `flashcrowd merge` over the three run
//! directories exactly (request count, and p99/p50/max as the same HdrHistogram values), and a
//! segment killed mid-run is shown as missing within 3 s.

mod support;

use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::endpoint::{free_addr, request};
use support::server::TestServer;
use support::{read_report, Scenario, Spawned};

fn scenario(rate: u32, secs: u32) -> String {
    format!(
        r#"
name: watched
journeys:
  walk:
    share: 100%
    steps:
      - get: /w/item
        name: item
      - get: /w/cart
        name: cart
load:
  stages:
    - {{ rate: {rate}/s, for: {secs}s, name: steady }}
  arrivals: poisson
"#
    )
}

/// 30/s for the 2 s before the sale: 60 buyers park at `wait: sale-start` (20 per segment),
/// released together at 2 s.
const RELEASE: &str = r#"
name: watched-release
journeys:
  buy:
    share: 100%
    steps:
      - wait: sale-start
      - get: /w/order
        name: order
load:
  countdown: { sale_start: 2s, before: 30/s, peak: 30/s, rise: 1s, hold: 1s, decay: 1s, after: 10/s, end: 5s }
  arrivals: uniform
"#;

/// Starts segments 1/3..3/3 from one instant, endpoints on free loopback ports; waits until
/// every endpoint answers.
fn segments(sc: &Scenario, target: &TestServer) -> (Vec<Spawned>, Vec<SocketAddr>) {
    let start_at = (chrono::Utc::now() + chrono::Duration::seconds(4))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let addrs: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let procs = (1..=3)
        .map(|i| {
            let out = sc.dir.path().join(format!("segment-{i}"));
            let seg = format!("{i}/3");
            let listen = addrs[i - 1].to_string();
            Spawned::start(&[
                "run",
                sc.file.to_str().unwrap(),
                "--target",
                &target.url(),
                "--out",
                out.to_str().unwrap(),
                "--quiet",
                "--threads",
                "1",
                "--segment",
                &seg,
                "--start-at",
                &start_at,
                "--metrics-listen",
                &listen,
            ])
        })
        .collect();
    let began = Instant::now();
    for a in &addrs {
        while request(*a, "GET", "/api/state", "").is_none() {
            assert!(
                began.elapsed() < Duration::from_secs(30),
                "segment endpoint {a} never answered"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    (procs, addrs)
}

fn watch(addrs: &[SocketAddr], listen: SocketAddr, give_up: &str) -> Spawned {
    let urls: Vec<String> = addrs.iter().map(|a| format!("http://{a}")).collect();
    let listen = listen.to_string();
    let mut args = vec![
        "watch",
        "--json",
        "--quiet",
        "--listen",
        &listen,
        "--give-up",
        give_up,
    ];
    args.extend(urls.iter().map(String::as_str));
    Spawned::start(&args)
}

fn state(addr: SocketAddr) -> Option<Value> {
    let (status, body) = request(addr, "GET", "/api/state", "")?;
    (status == 200).then(|| serde_json::from_str(&body).unwrap())
}

#[test]
fn the_watcher_merges_three_segments_exactly_as_merge_does() {
    let target = TestServer::start();
    let sc = Scenario::new(&scenario(90, 6));
    let (procs, addrs) = segments(&sc, &target);
    let w = watch(&addrs, free_addr(), "5s");
    let mut dirs = Vec::new();
    for (i, p) in procs.into_iter().enumerate() {
        let done = p.wait(Duration::from_secs(60));
        assert_eq!(done.code, Some(0), "segment {}/3\n{}", i + 1, done.output());
        let dir = sc.dir.path().join(format!("segment-{}", i + 1));
        read_report(&dir, &done);
        dirs.push(dir);
    }
    let watched = w.wait(Duration::from_secs(60));
    assert_eq!(watched.code, Some(0), "{}", watched.output());
    let v: Value = serde_json::from_str(&watched.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", watched.output()));
    assert_eq!(v["complete"], true, "{v}");

    let merged = sc.dir.path().join("merged");
    let mut args = vec!["merge".to_string()];
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    args.extend(["--out".into(), merged.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let m = Spawned::start(&args).wait(Duration::from_secs(60));
    assert_eq!(m.code, Some(0), "{}", m.output());
    let report = read_report(&merged, &m);

    let requests = report["totals"]["requests"].as_u64().unwrap();
    assert!(requests > 800, "{requests} requests in the merged run");
    assert_eq!(v["totals"]["requests"].as_u64(), Some(requests), "{v}");
    assert_eq!(v["totals"]["errors"], report["totals"]["errors"], "{v}");
    for q in ["p50", "p99", "max"] {
        assert_eq!(
            v["totals"]["latency_ms"][q], report["latency_ms"][q],
            "{q}: watch {} vs merge {}",
            v["totals"]["latency_ms"], report["latency_ms"]
        );
    }
    // Every segment's seconds were counted, each segment finished.
    for s in v["segments"].as_array().unwrap() {
        assert_eq!(s["done"], true, "{s}");
        assert_eq!(s["missing"], false, "{s}");
        assert!(s["seconds"].as_u64().unwrap() >= 6, "{s}");
    }
}

#[test]
fn a_segment_killed_mid_run_is_shown_missing_within_three_seconds() {
    let target = TestServer::start();
    let sc = Scenario::new(&scenario(30, 40));
    let (procs, addrs) = segments(&sc, &target);
    let listen = free_addr();
    let w = watch(&addrs, listen, "2s");
    // Wait for merged seconds, then kill segment 2/3.
    let began = Instant::now();
    loop {
        if let Some(st) = state(listen) {
            if st["series"].as_array().unwrap().len() >= 3 {
                break;
            }
        }
        assert!(
            began.elapsed() < Duration::from_secs(40),
            "no merged seconds"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    procs[1].signal(libc::SIGKILL);
    let killed = Instant::now();
    let missing = loop {
        let st = state(listen).expect("the watcher answers");
        let segs = st["segments"].as_array().unwrap().clone();
        if segs[1]["missing"] == true {
            break segs;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "segment 2/3 not shown missing: {segs:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = killed.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "shown missing after {took:?}"
    );
    assert_eq!(missing[1]["url"], format!("http://{}", addrs[1]));
    assert_eq!(missing[0]["missing"], false, "{missing:?}");
    assert_eq!(missing[2]["missing"], false, "{missing:?}");
    // The page lists it as missing too (the watcher's page shows the segments).
    let (_, page) = request(listen, "GET", "/", "").unwrap();
    assert!(page.contains("MISSING"), "the page has no missing marker");
    // The others are stopped early; the watch ends incomplete (exit 3) and says which is gone.
    for (i, p) in procs.into_iter().enumerate() {
        if i != 1 {
            p.signal(libc::SIGINT);
        }
        let _ = p.wait(Duration::from_secs(60));
    }
    let watched = w.wait(Duration::from_secs(60));
    assert_eq!(watched.code, Some(3), "{}", watched.output());
    let v: Value = serde_json::from_str(&watched.stdout).unwrap();
    assert_eq!(v["complete"], false);
    assert_eq!(v["segments"][1]["missing"], true, "{v}");
    assert!(
        watched.stderr.contains("MISSING"),
        "the terminal names the missing segment: {}",
        watched.stderr
    );
    eprintln!(
        "segment 2/3 shown missing {:.0} ms after the kill",
        took.as_secs_f64() * 1000.0
    );
}

/// The burst spread of a release (issue #17's `generator.burst_ms`) over three segments: the
/// watcher merges each second's burst histograms, so its whole-run spread equals
/// `flashcrowd merge`'s exactly (count, p50, p99, max: the same HdrHistogram values).
#[test]
fn the_watcher_merges_the_burst_spread_exactly_as_merge_does() {
    let target = TestServer::start();
    let sc = Scenario::new(RELEASE);
    let (procs, addrs) = segments(&sc, &target);
    let w = watch(&addrs, free_addr(), "5s");
    let mut dirs = Vec::new();
    for (i, p) in procs.into_iter().enumerate() {
        let done = p.wait(Duration::from_secs(60));
        assert_eq!(done.code, Some(0), "segment {}/3\n{}", i + 1, done.output());
        let dir = sc.dir.path().join(format!("segment-{}", i + 1));
        read_report(&dir, &done);
        dirs.push(dir);
    }
    let watched = w.wait(Duration::from_secs(60));
    assert_eq!(watched.code, Some(0), "{}", watched.output());
    let v: Value = serde_json::from_str(&watched.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", watched.output()));
    assert_eq!(v["complete"], true, "{v}");
    let merged = sc.dir.path().join("merged");
    let mut args = vec!["merge".to_string()];
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    args.extend(["--out".into(), merged.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let m = Spawned::start(&args).wait(Duration::from_secs(60));
    assert_eq!(m.code, Some(0), "{}", m.output());
    let report = read_report(&merged, &m);
    let b = &report["generator"]["burst_ms"];
    assert!(
        b["count"].as_u64().unwrap() >= 60,
        "60 buyers parked before the release: {b}"
    );
    assert_eq!(v["totals"]["burst_ms"], *b, "watch {v} vs merge {b}");
}
