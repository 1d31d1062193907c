//! Hostile input: YAML alias bombs, deep nesting, a 100 MB scenario, a CSV with 2 million rows,
//! and the inputs the fuzzers (fuzz/) found. Each must end quickly, with bounded memory, as a
//! clear error or a success — never a panic, a crash or a hang.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};
use support::hostile::{wait_with_peak_rss, wait_with_rss_cap};
use support::server::TestServer;
use support::{wait_for, Finished, Scenario, Spawned};

/// Peak RSS allowed for `validate` on any of these inputs.
const RSS_LIMIT: u64 = 1 << 30;

/// `flashcrowd validate FILE` under a time limit, with its peak RSS (0 if it ended before the
/// first 20 ms sample).
fn validate(file: &std::path::Path, limit: Duration) -> (Finished, u64) {
    let run = Spawned::start(&["validate", file.to_str().unwrap()]);
    let (done, peak) = wait_with_peak_rss(run, limit);
    assert_no_panic(&done);
    eprintln!(
        "validate {}: exit {:?} in {:.2}s, peak RSS {} MiB\n{}",
        file.display(),
        done.code,
        done.elapsed.as_secs_f64(),
        peak >> 20,
        done.stderr.chars().take(600).collect::<String>()
    );
    (done, peak)
}

fn assert_no_panic(done: &Finished) {
    assert!(
        !done.stderr.contains("panicked") && !done.stdout.contains("panicked"),
        "{}",
        done.output()
    );
    // A crash (stack overflow, abort) has no exit code.
    assert!(done.code.is_some(), "killed by a signal\n{}", done.output());
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const TAIL: &str = r#"
target: http://127.0.0.1:9
journeys:
  read:
    share: 100%
    steps:
      - get: /
load:
  stages:
    - { rate: 1/s, for: 1s }
"#;

/// Nine levels of nine aliases each: 9^9 ≈ 387 million leaves if expanded.
fn alias_bomb() -> String {
    let mut s = String::from("name: bomb\nx-bomb:\n  l0: &l0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for i in 1..9 {
        let refs = vec![format!("*l{}", i - 1); 9].join(",");
        s.push_str(&format!("  l{i}: &l{i} [{refs}]\n"));
    }
    s.push_str(TAIL);
    s
}

#[test]
fn a_yaml_alias_bomb_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "bomb.yaml", &alias_bomb());
    let (done, peak) = validate(&f, Duration::from_secs(20));
    assert_eq!(done.code, Some(2), "{}", done.output());
    assert!(done.elapsed < Duration::from_secs(10), "{}", done.output());
    assert!(peak < RSS_LIMIT, "peak RSS {} MiB", peak >> 20);
}

#[test]
fn an_alias_bomb_inside_a_used_value_is_refused_quickly() {
    // The aliases land where the scenario is read (request headers), not in an unknown key.
    let mut s = String::from("name: bomb2\n");
    s.push_str("defaults:\n  headers:\n    X-A: &a0 \"lol\"\n");
    let mut text = s;
    text.push_str("x-defs:\n");
    text.push_str("  b0: &b0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for i in 1..8 {
        let refs = vec![format!("*b{}", i - 1); 10].join(",");
        text.push_str(&format!("  b{i}: &b{i} [{refs}]\n"));
    }
    text.push_str(
        r#"target: http://127.0.0.1:9
journeys:
  read:
    share: 100%
    steps:
      - post: /
        json: { bomb: *b7 }
load:
  stages:
    - { rate: 1/s, for: 1s }
"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "bomb2.yaml", &text);
    let (done, peak) = validate(&f, Duration::from_secs(20));
    assert_eq!(done.code, Some(2), "{}", done.output());
    assert!(done.elapsed < Duration::from_secs(10), "{}", done.output());
    assert!(peak < RSS_LIMIT, "peak RSS {} MiB", peak >> 20);
}

fn nested(depth: usize, flow: bool) -> String {
    let mut s = String::from("name: deep\nx-deep:\n");
    if flow {
        s.push_str("  v: ");
        s.push_str(&"[".repeat(depth));
        s.push_str(&"]".repeat(depth));
        s.push('\n');
    } else {
        for i in 0..depth {
            s.push_str(&" ".repeat(2 * (i + 1)));
            s.push_str("k:\n");
        }
        s.push_str(&" ".repeat(2 * (depth + 1)));
        s.push_str("k: 1\n");
    }
    s.push_str(TAIL);
    s
}

#[test]
fn nesting_200_deep_is_a_clear_error_or_accepted() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("flow.yaml", nested(200, true)),
        ("block.yaml", nested(200, false)),
    ] {
        let f = write(&dir, name, &text);
        let (done, _) = validate(&f, Duration::from_secs(20));
        // `x-deep` is not a scenario key: a clear error either way.
        assert_eq!(done.code, Some(2), "{}", done.output());
        assert!(done.stderr.contains("error"), "{}", done.output());
    }
}

#[test]
fn nesting_100000_deep_does_not_overflow_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("flow.yaml", nested(100_000, true)),
        ("inside.yaml", {
            // In a place the scenario reads: a JSON body.
            let mut t = String::from("name: deep-body\n");
            t.push_str(
                TAIL.replace("- get: /", "- post: /\n        json: ")
                    .as_str(),
            );
            t.replace(
                "json: \n",
                &format!("json: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
            )
        }),
    ] {
        let f = write(&dir, name, &text);
        let (done, _) = validate(&f, Duration::from_secs(30));
        assert_eq!(done.code, Some(2), "{}", done.output());
    }
}

#[test]
fn a_100_mb_scenario_is_handled_quickly_with_bounded_memory() {
    // A valid scenario whose `description` is a single 100 MB string.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("huge.yaml");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&f).unwrap());
        w.write_all(b"name: huge\ndescription: \"").unwrap();
        let line = "abcdefghij".repeat(100);
        for _ in 0..100_000 {
            w.write_all(line.as_bytes()).unwrap();
        }
        w.write_all(b"\"\n").unwrap();
        w.write_all(TAIL.as_bytes()).unwrap();
    }
    assert!(std::fs::metadata(&f).unwrap().len() >= 100_000_000);
    let (done, peak) = validate(&f, Duration::from_secs(60));
    assert!(
        done.code == Some(0) || done.code == Some(2),
        "{}",
        done.output()
    );
    assert!(done.elapsed < Duration::from_secs(45), "{}", done.output());
    assert!(peak < RSS_LIMIT, "peak RSS {} MiB", peak >> 20);
}

#[test]
fn a_100_mb_comment_is_handled_quickly_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("comment.yaml");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&f).unwrap());
        w.write_all(b"name: commented\n").unwrap();
        let line = format!("# {}\n", "comment ".repeat(124));
        for _ in 0..(100_000_000 / line.len() + 1) {
            w.write_all(line.as_bytes()).unwrap();
        }
        w.write_all(TAIL.as_bytes()).unwrap();
    }
    let (done, peak) = validate(&f, Duration::from_secs(60));
    assert_eq!(done.code, Some(0), "{}", done.output());
    assert!(done.elapsed < Duration::from_secs(45), "{}", done.output());
    assert!(peak < RSS_LIMIT, "peak RSS {} MiB", peak >> 20);
}

const CSV_SCENARIO: &str = r#"
name: big-csv
target: http://127.0.0.1:9
data:
  users: { csv: users.csv, pick: unique }
journeys:
  buy:
    share: 100%
    steps:
      - get: /u/{{ users.id }}
load:
  stages:
    - { rate: 20/s, for: 1s }
  arrivals: uniform
"#;

#[test]
fn a_csv_with_2_million_rows_validates_and_starts_in_bounded_time() {
    let sc = Scenario::new(CSV_SCENARIO);
    {
        let f = std::fs::File::create(sc.dir.path().join("users.csv")).unwrap();
        let mut w = std::io::BufWriter::new(f);
        w.write_all(b"id,name\n").unwrap();
        for i in 0..2_000_000u32 {
            writeln!(w, "{i},user-{i}").unwrap();
        }
    }
    let (done, peak) = validate(&sc.file, Duration::from_secs(30));
    assert_eq!(done.code, Some(0), "{}", done.output());
    assert!(done.elapsed < Duration::from_secs(10), "{}", done.output());
    assert!(peak < RSS_LIMIT, "peak RSS {} MiB", peak >> 20);

    let server = TestServer::start();
    let started = Instant::now();
    let run = sc.spawn(&server.url(), &[]);
    wait_for(
        "the first request of the run",
        Duration::from_secs(30),
        || server.count("/u/") > 0,
    );
    let to_first = started.elapsed();
    let (done, peak) = wait_with_peak_rss(run, Duration::from_secs(60));
    assert_no_panic(&done);
    eprintln!(
        "run with 2M-row CSV: first request after {:.2}s, exit {:?} after {:.2}s, peak RSS {} MiB",
        to_first.as_secs_f64(),
        done.code,
        done.elapsed.as_secs_f64(),
        peak >> 20
    );
    assert_eq!(done.code, Some(0), "{}", done.output());
    assert!(
        to_first < Duration::from_secs(15),
        "first request after {to_first:?}"
    );
    assert!(peak < RSS_LIMIT, "peak RSS {} MiB", peak >> 20);
    // pick: unique hands out the rows in order, each once.
    assert_eq!(server.count("/u/0"), 1);
    assert_eq!(server.count("/u/"), 20);
}

#[test]
fn a_missing_or_garbled_csv_is_a_clear_error() {
    let sc = Scenario::new(CSV_SCENARIO);
    let (done, _) = validate(&sc.file, Duration::from_secs(10));
    assert_eq!(done.code, Some(2), "{}", done.output());
    assert!(done.stderr.contains("users.csv"), "{}", done.output());
    std::fs::write(
        sc.dir.path().join("users.csv"),
        b"id,name\n1,\"unterminated\n\xff\xfe,2,3\n",
    )
    .unwrap();
    let (done, _) = validate(&sc.file, Duration::from_secs(10));
    assert_no_panic(&done);
}

/// Scenario texts that must be refused with exit 2, never a panic: odd corners of YAML and of
/// the scenario format, and the inputs the fuzzers found (see fuzz/README.md).
#[test]
fn odd_scenarios_are_clear_errors() {
    let cases: &[(&str, &str)] = &[
        ("empty", ""),
        ("nul bytes", "name: a\0b\n"),
        ("a bare scalar", "42"),
        ("a list at the top", "- a\n- b\n"),
        ("a tag", "name: !!binary aGVsbG8=\n"),
        ("a merge key loop", "a: &a { <<: *a }\n"),
        ("an unknown alias", "name: *nope\n"),
        ("a key too long", &format!("{}: 1\n", "k".repeat(100_000))),
        (
            "a huge duration",
            &TAIL.replace("for: 1s", "for: 99999999999999999999h"),
        ),
        ("a negative rate", &TAIL.replace("1/s", "-1/s")),
        ("a NaN rate", &TAIL.replace("1/s", ".nan/s")),
        (
            "a template left open",
            &TAIL.replace("get: /", "get: /{{ users.id"),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (what, text)) in cases.iter().enumerate() {
        let text = if text.contains("journeys") && !text.contains("name:") {
            format!("name: odd\n{text}")
        } else {
            text.to_string()
        };
        let f = write(&dir, &format!("odd{i}.yaml"), &text);
        let (done, _) = validate(&f, Duration::from_secs(20));
        assert_eq!(done.code, Some(2), "{what}\n{}", done.output());
    }
}

/// A rate far past what any generator can send — a typo (`6000000000/s`) or a forgotten
/// `--scale` — must be refused by validation or run bounded: the run ends near its planned
/// second, with bounded memory, counting what it could not send as dropped or lagging.
#[test]
fn an_absurd_rate_is_refused_or_runs_bounded() {
    let yaml = format!("name: absurd{}", TAIL.replace("1/s", "1e12/s"));
    let sc = Scenario::new(&yaml);
    let (v, _) = validate(&sc.file, Duration::from_secs(20));
    if v.code == Some(2) {
        return; // refused as bad input: fine
    }
    let server = TestServer::start();
    let run = sc.spawn(&server.url(), &[]);
    let (done, peak, killed) = wait_with_rss_cap(run, Duration::from_secs(30), RSS_LIMIT);
    eprintln!(
        "absurd rate: exit {:?} after {:.1}s, peak RSS {} MiB, killed {killed:?}, requests seen {}",
        done.code,
        done.elapsed.as_secs_f64(),
        peak >> 20,
        server.count("/")
    );
    assert!(
        killed.is_none(),
        "the run was killed: {killed:?}; peak RSS {} MiB, {} requests reached the target\n{}",
        peak >> 20,
        server.count("/"),
        done.output()
    );
    assert_no_panic(&done);
    assert!(done.elapsed < Duration::from_secs(20), "{}", done.output());
    sc.report(&done);
}
