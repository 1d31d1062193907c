//! Signals and disks: SIGTERM stops a run gracefully and a second signal stops it hard, both
//! leaving a parseable report; reports are replaced atomically (a reader never sees a truncated
//! report.json, no temporary file is left); an unwritable run directory is a clear error and the
//! results go to a fallback directory that the message names.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::hostile::{leftover_tmp_files, run_with_env};
use support::server::{Freeze, TestServer};
use support::{count, read_report, wait_for, Scenario};

const LONG: &str = r#"
name: long-run
target: http://127.0.0.1:9
journeys:
  read:
    share: 100%
    steps:
      - get: /api/items/7
load:
  stages:
    - { rate: 50/s, for: 60s }
  arrivals: uniform
"#;

const SHORT: &str = r#"
name: short-run
target: http://127.0.0.1:9
journeys:
  read:
    share: 100%
    steps:
      - get: /api/items/7
load:
  stages:
    - { rate: 20/s, for: 1s }
  arrivals: uniform
"#;

#[test]
fn sigterm_stops_gracefully_with_an_interrupted_report() {
    let server = TestServer::start();
    let sc = Scenario::new(LONG);
    let run = sc.spawn(&server.url(), &[]);
    wait_for("load to arrive", Duration::from_secs(30), || {
        server.count("/api/") >= 20
    });
    run.signal(libc::SIGTERM);
    let signalled = Instant::now();
    let done = run.wait(Duration::from_secs(60));
    let took = signalled.elapsed();
    assert_eq!(done.code, Some(3), "{}", done.output());
    assert!(took < Duration::from_secs(8), "stopped after {took:?}");
    assert!(!done.stderr.contains("panicked"), "{}", done.output());
    let report = sc.report(&done);
    assert_eq!(report["run"]["status"], "interrupted");
    assert!(count(&report, "/totals/requests") >= 20);
    assert!(leftover_tmp_files(&sc.out).is_empty());
}

#[test]
fn a_second_sigterm_stops_at_once_and_the_report_is_still_whole() {
    // The target freezes for 60 s: requests pile up in flight, so the first SIGTERM waits for
    // them (the grace period) and the second must not.
    let server = TestServer::freezing(Freeze {
        prefix: "/api/",
        period: Duration::from_secs(120),
        from: Duration::from_millis(500),
        len: Duration::from_secs(60),
    });
    let sc = Scenario::new(&LONG.replace(
        "name: long-run",
        "name: long-run\ndefaults: { timeout: 60s }",
    ));
    let run = sc.spawn(&server.url(), &[]);
    wait_for("load to arrive", Duration::from_secs(30), || {
        server.count("/api/") >= 40
    });
    run.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    run.signal(libc::SIGTERM);
    let signalled = Instant::now();
    let done = run.wait(Duration::from_secs(60));
    assert_eq!(done.code, Some(3), "{}", done.output());
    assert!(
        signalled.elapsed() < Duration::from_secs(4),
        "the second signal stops at once: {:?}",
        signalled.elapsed()
    );
    let report = sc.report(&done);
    assert_eq!(report["run"]["status"], "interrupted");
    assert!(leftover_tmp_files(&sc.out).is_empty());
}

#[test]
fn report_json_is_replaced_atomically_and_never_seen_truncated() {
    // Runs write again and again into the same directory while a reader keeps reading it:
    // every read is either "not there yet" or whole JSON.
    let server = TestServer::start();
    let sc = Scenario::new(SHORT);
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let path = sc.out.join("report.json");
    let reader = {
        let (stop, reads, path) = (stop.clone(), reads.clone(), path.clone());
        std::thread::spawn(move || {
            let mut bad = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                if let Ok(text) = std::fs::read(&path) {
                    reads.fetch_add(1, Ordering::SeqCst);
                    if serde_json::from_slice::<serde_json::Value>(&text).is_err() {
                        bad.push(text.len());
                    }
                }
            }
            bad
        })
    };
    for _ in 0..3 {
        let done = sc.run(&server.url(), &[], Duration::from_secs(30));
        assert_eq!(done.code, Some(0), "{}", done.output());
        read_report(&sc.out, &done);
    }
    stop.store(true, Ordering::SeqCst);
    let bad = reader.join().unwrap();
    assert!(
        reads.load(Ordering::SeqCst) > 0,
        "the reader read the report"
    );
    assert!(bad.is_empty(), "truncated reads of lengths {bad:?}");
    assert!(
        leftover_tmp_files(&sc.out).is_empty(),
        "{:?}",
        leftover_tmp_files(&sc.out)
    );
}

#[test]
fn an_unwritable_out_dir_falls_back_and_names_both_paths() {
    let server = TestServer::start();
    let sc = Scenario::new(SHORT);
    // A regular file where a directory should be: even root cannot create a directory in it.
    let blocker = sc.dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"a file").unwrap();
    let out = blocker.join("run");
    let tmp = tempfile::tempdir().unwrap();
    let done = run_with_env(
        &[
            "run",
            sc.file.to_str().unwrap(),
            "--target",
            &server.url(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
        &[("TMPDIR", tmp.path().to_str().unwrap())],
        Duration::from_secs(30),
    );
    // The run passed; the disk trouble does not change what it earned.
    assert_eq!(done.code, Some(0), "{}", done.output());
    assert!(
        done.stderr.contains(out.to_str().unwrap()),
        "names the unwritable path\n{}",
        done.output()
    );
    let fallbacks: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("flashcrowd-short-run-")
        })
        .collect();
    assert_eq!(fallbacks.len(), 1, "{fallbacks:?}\n{}", done.output());
    let fb = &fallbacks[0];
    assert!(
        done.stderr.contains(fb.to_str().unwrap()),
        "names the fallback\n{}",
        done.output()
    );
    let report = read_report(fb, &done);
    assert_eq!(count(&report, "/totals/requests"), 20);
    assert!(fb.join("scenario.yaml").exists());
    // The summary points at where the report really is.
    assert!(
        done.stdout.contains(fb.to_str().unwrap()),
        "{}",
        done.output()
    );
}

#[test]
fn when_nothing_can_be_written_no_load_is_sent_and_the_error_names_both() {
    let server = TestServer::start();
    let sc = Scenario::new(SHORT);
    let blocker = sc.dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"a file").unwrap();
    let out = blocker.join("run");
    let bad_tmp = blocker.join("tmp");
    let done = run_with_env(
        &[
            "run",
            sc.file.to_str().unwrap(),
            "--target",
            &server.url(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
        &[("TMPDIR", bad_tmp.to_str().unwrap())],
        Duration::from_secs(30),
    );
    assert_eq!(done.code, Some(2), "{}", done.output());
    assert!(
        done.stderr.contains(out.to_str().unwrap()),
        "{}",
        done.output()
    );
    assert!(
        done.stderr.contains(bad_tmp.to_str().unwrap()),
        "{}",
        done.output()
    );
    assert!(!done.stderr.contains("panicked"), "{}", done.output());
    // The run directory is found before any load: with nowhere to write, nothing is sent.
    assert_eq!(server.count("/api/items"), 0, "{}", done.output());
}
