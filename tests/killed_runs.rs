//! Nothing lost when the generator itself dies: a run killed with `kill -9` at a random instant
//! leaves a journal from which `flashcrowd report` rebuilds a run directory that validates,
//! says `incomplete`, and counts what the server saw up to the last complete second; the rebuild
//! of a run that finished matches its own report exactly; `flashcrowd merge` (and the Kubernetes
//! example's merge step) take a killed segment and say so.

mod support;

use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use support::server::TestServer;
use support::{count, num, read_report, wait_for, Scenario, Spawned};

/// 100 requests/s at exact instants for 20 s: longer than any kill comes.
const STEADY: &str = r#"
name: killed-steady
target: http://127.0.0.1:9
journeys:
  read:
    share: 100%
    steps:
      - get: /api/items/7
load:
  stages:
    - { rate: 100/s, for: 20s }
  arrivals: uniform
thresholds:
  - p99 < 2s
  - count > 10
"#;

const RATE: f64 = 100.0;

fn flashcrowd(args: &[&str]) -> support::Finished {
    Spawned::start(args).wait(Duration::from_secs(120))
}

/// `flashcrowd report DIR`; the rebuilt report.json (validated against the schema).
fn rebuild(dir: &Path) -> Value {
    let done = flashcrowd(&["report", dir.to_str().unwrap()]);
    assert_eq!(
        done.code,
        Some(3),
        "an incomplete run exits 3\n{}",
        done.output()
    );
    assert!(
        done.stderr.contains("rebuilding it from journal.jsonl"),
        "{}",
        done.output()
    );
    read_report(dir, &done)
}

/// Waits until the server's count of `/api/` requests stops growing (requests the dead
/// generator had already sent may still be read by it).
fn settled_count(server: &TestServer) -> usize {
    let mut last = server.count("/api/");
    let mut still_since = Instant::now();
    wait_for(
        "the server's count to settle",
        Duration::from_secs(10),
        || {
            let now = server.count("/api/");
            if now != last {
                last = now;
                still_since = Instant::now();
            }
            still_since.elapsed() >= Duration::from_millis(300)
        },
    );
    last
}

/// Status `incomplete`, the last complete second named, and (`killed`) seconds missing.
fn assert_incomplete(v: &Value, killed: bool) {
    assert_eq!(v["run"]["status"], "incomplete", "{:#}", v["run"]);
    let inc = &v["run"]["incomplete"];
    let last = count(v, "/run/incomplete/last_complete_second");
    assert_eq!(num(v, "/run/incomplete/recorded_s"), last as f64 + 1.0);
    assert_eq!(num(v, "/run/duration_s"), last as f64 + 1.0);
    let missing = num(v, "/run/incomplete/missing_s");
    assert_eq!(missing > 0.0, killed, "{inc:#}");
    let planned = num(v, "/run/planned_duration_s");
    assert_eq!(missing, (planned - (last as f64 + 1.0)).max(0.0), "{inc:#}");
    let reason = v["run"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("seconds 0-{last} were recorded")),
        "the reason names the last complete second: {reason}"
    );
    let series = v["series"].as_array().unwrap();
    assert_eq!(series.last().map(|p| p["t"].as_u64()), Some(Some(last)));
}

/// The loop of the issue: 20 rounds (two at a time, each against its own server), each a run
/// killed at a random instant 2–8 s after its first request reached the server, then rebuilt.
/// Every rebuilt report validates against the schema, says `incomplete`, and its request count
/// falls short of the server's by at most one second's worth (100 requests: the second in
/// progress at the kill) plus 50 requests (half a second: how late a machine loaded by a CPU
/// hog may complete and journal the second before it; 117 was the most seen so, 101 unloaded).
#[test]
fn kill_9_at_a_random_instant_loses_at_most_the_last_second() {
    let seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let kills: Vec<Duration> = (0..20)
        .map(|_| Duration::from_millis(rng.gen_range(2000..=8000)))
        .collect();
    let lost: Vec<Vec<i64>> = std::thread::scope(|s| {
        let workers: Vec<_> = kills
            .chunks(kills.len() / 2)
            .enumerate()
            .map(|(w, chunk)| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .enumerate()
                        .map(|(i, k)| kill_and_rebuild(&format!("round {w}.{i} (seed {seed})"), *k))
                        .collect()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    eprintln!("requests lost per round (seed {seed}, kills {kills:?}): {lost:?}");
}

/// One round: the requests the rebuilt report lacks against the server's count.
fn kill_and_rebuild(round: &str, kill_at: Duration) -> i64 {
    let allowed = (RATE * 1.5) as i64;
    let server = TestServer::start();
    let sc = Scenario::new(STEADY);
    let run = sc.spawn(&server.url(), &[]);
    wait_for("the first request", Duration::from_secs(30), || {
        server.count("/api/") > 0
    });
    std::thread::sleep(kill_at);
    run.signal(libc::SIGKILL);
    let done = run.wait(Duration::from_secs(30));
    assert_eq!(done.code, None, "killed by a signal\n{}", done.output());
    let seen = settled_count(&server) as i64;
    assert!(
        !sc.out.join("report.json").exists(),
        "a killed run wrote no report"
    );
    let v = rebuild(&sc.out);
    assert_incomplete(&v, true);
    let recorded = count(&v, "/totals/requests") as i64;
    let what = format!(
        "{round}: killed {kill_at:?} after the first request; the server counted {seen}, the \
         rebuilt report {recorded} (last complete second {})",
        v["run"]["incomplete"]["last_complete_second"]
    );
    assert!(recorded <= seen, "{what}: more than the server saw");
    assert!(
        seen - recorded <= allowed,
        "{what}: lost more than {allowed}"
    );
    // The report holds the seconds it names: the plan sends 100 requests in each (up to a
    // quarter second's worth may cross a second's boundary in flight on a loaded machine).
    let recorded_s = num(&v, "/run/incomplete/recorded_s");
    let planned = (RATE * recorded_s) as i64;
    assert!(
        (recorded - planned).abs() <= (RATE / 4.0) as i64,
        "{what}: the plan sends {planned} requests in the recorded seconds"
    );
    assert_eq!(count(&v, "/totals/errors"), 0, "{what}");
    // Every file of the run directory is there again, state.json included.
    for f in [
        "state.json",
        "scenario.yaml",
        "report.html",
        "summary.md",
        "junit.xml",
    ] {
        assert!(sc.out.join(f).is_file(), "{what}: {f} was not rebuilt");
    }
    // Judged on what was recorded: both thresholds hold over the recorded seconds.
    for t in v["thresholds"].as_array().unwrap() {
        assert_eq!(t["passed"], true, "{what}: {t:#}");
    }
    seen - recorded
}

/// A run that finished, rebuilt from its journal alone, has the same counts and the same
/// percentiles (the journal holds every second's histograms; their sum is the run's).
#[test]
fn a_finished_run_rebuilt_from_its_journal_matches_its_own_report() {
    let server = TestServer::start();
    let sc = Scenario::new(&STEADY.replace("for: 20s", "for: 3s"));
    let done = sc.run(&server.url(), &[], Duration::from_secs(60));
    assert_eq!(done.code, Some(0), "{}", done.output());
    let original = sc.report(&done);
    for f in ["report.json", "state.json", "report.html", "summary.md"] {
        std::fs::remove_file(sc.out.join(f)).unwrap();
    }
    let v = rebuild(&sc.out);
    assert_incomplete(&v, false);
    // Every second, the tail after the plan's end included, is in the journal.
    for p in [
        "/totals/requests",
        "/totals/errors",
        "/totals/sessions_started",
        "/latency_ms/p50",
        "/latency_ms/p99",
        "/latency_ms/max",
        "/service_time_ms/p99",
        "/ttfb_ms/p99",
        "/generator/lag_ms/p99",
        "/requests/0/count",
        "/journeys/0/completed",
    ] {
        assert_eq!(v.pointer(p), original.pointer(p), "{p}");
    }
    assert_eq!(v["series"].as_array().unwrap().len(), {
        original["series"].as_array().unwrap().len()
    });
    // The client mix per second comes back from the journal as the run reported it.
    let mix = |r: &Value| -> Vec<Value> {
        r["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["clients"].clone())
            .collect()
    };
    assert_eq!(mix(&v), mix(&original));
    assert!(
        mix(&v).iter().any(|c| c["default"].as_u64() > Some(0)),
        "{:?}",
        mix(&v)
    );
    // Re-rendering the rebuilt directory is an ordinary report now.
    let again = flashcrowd(&["report", sc.out.to_str().unwrap()]);
    assert_eq!(again.code, Some(3), "{}", again.output());
    assert!(!again.stderr.contains("rebuilding"), "{}", again.output());
}

/// Two segments of one plan: the first finishes, the second is killed. `flashcrowd merge` reads
/// the killed one through its journal (no `flashcrowd report` first); the merged run is
/// `incomplete` and says which segment. The Kubernetes example's merge step does the same for a
/// pod killed mid-run, and names a segment that left nothing as missing.
#[test]
fn merge_takes_a_killed_segment_and_says_so() {
    let server = TestServer::start();
    let scenario = STEADY.replace("for: 20s", "for: 6s");
    let base = tempfile::tempdir().unwrap();
    let sc = Scenario::new(&scenario);
    let seg = |i: usize| base.path().join(format!("run/segment-{i}"));
    let at = (chrono::Utc::now() + chrono::Duration::seconds(3)).to_rfc3339();
    let start = |i: usize| {
        Spawned::start(&[
            "run",
            sc.file.to_str().unwrap(),
            "--target",
            &server.url(),
            "--out",
            seg(i).to_str().unwrap(),
            "--quiet",
            "--segment",
            &format!("{}/2", i + 1),
            "--start-at",
            &at,
        ])
    };
    let first = start(0);
    let second = start(1);
    wait_for("load from both", Duration::from_secs(30), || {
        server.count("/api/") >= 200
    });
    second.signal(libc::SIGKILL);
    let killed = second.wait(Duration::from_secs(30));
    assert_eq!(killed.code, None, "{}", killed.output());
    let done = first.wait(Duration::from_secs(60));
    assert_eq!(done.code, Some(0), "{}", done.output());
    assert!(!seg(1).join("report.json").exists());

    let out = base.path().join("merged");
    let m = flashcrowd(&[
        "merge",
        seg(0).to_str().unwrap(),
        seg(1).to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(m.code, Some(3), "{}", m.output());
    let v = read_report(&out, &m);
    assert_eq!(v["run"]["status"], "incomplete");
    let reason = v["run"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("segment 2/2: the generator stopped without writing its report"),
        "{reason}"
    );
    let shards = v["run"]["merged_from"]["shards"].as_array().unwrap();
    assert_eq!(shards[1]["status"], "incomplete");
    assert_eq!(count(&v, "/run/merged_from/covered"), 2);
    let first_requests = count(&read_report(&seg(0), &done), "/totals/requests");
    let merged = count(&v, "/totals/requests");
    assert!(
        merged > first_requests,
        "the merge holds what segment 2 recorded too: {merged}"
    );
    // The merge read the killed segment without changing it.
    assert!(!seg(1).join("report.json").exists());

    // The Kubernetes merge step: rebuilds the killed segment, merges, exits 3 (incomplete).
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes/merge.sh");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_flashcrowd"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run_dir = base.path().join("run");
    let merge_run = || {
        std::process::Command::new("sh")
            .arg(&script)
            .arg(&run_dir)
            .arg("2")
            .env("PATH", &path)
            .output()
            .expect("run merge.sh")
    };
    let status = merge_run();
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert_eq!(status.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("segment 2/2 was killed mid-run; rebuilding it from its journal"),
        "{stderr}"
    );
    let merged_dir = run_dir.join("merged");
    let v = read_report(&merged_dir, &done);
    assert_eq!(v["run"]["status"], "incomplete");
    assert_eq!(count(&v, "/totals/requests"), merged);
    let second = read_report(&seg(1), &done);
    assert_eq!(
        second["run"]["status"], "incomplete",
        "the segment was rebuilt in place"
    );
    assert_eq!(
        merged,
        first_requests + count(&second, "/totals/requests"),
        "the merge adds the finished segment and what the killed one recorded"
    );
    // A segment that left nothing (no report, no journal) is named as missing, not rebuilt.
    std::fs::remove_dir_all(seg(1)).unwrap();
    let partial = merge_run();
    let stderr = String::from_utf8_lossy(&partial.stderr);
    assert_eq!(partial.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("report.json is missing (segment 2/2)"),
        "{stderr}"
    );
    let v = read_report(&merged_dir, &done);
    assert_eq!(v["run"]["status"], "incomplete");
    assert_eq!(
        v["run"]["merged_from"]["missing"],
        serde_json::json!(["2/2"])
    );
}
