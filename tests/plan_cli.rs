//! `flashcrowd plan` end to end: the printed phases and totals are the numbers the arithmetic
//! tests in src/plan pin, and bad input exits 2 without a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The design's countdown scenario (DESIGN.md, "Scenario format v1"), less the clients' `think`
/// lines, which do not change the plan.
const COUNTDOWN: &str = r#"
name: double11-countdown
description: Browsing before the sale, the 00:00 flash crowd, and the decay after it.
target: http://127.0.0.1:8080
defaults:
  timeout: 2s
  headers: { X-Load-Test: "flashcrowd" }
clients:
  mobile-app:
    share: 80%
    http: h2
    connection: per-user
    during: { rise: 92%, peak: 92% }
  pc-web:
    share: 20%
    during: { rise: 8%, peak: 8% }
    http: h1
data:
  users: { csv: data/users.csv, pick: unique }
  skus:  { csv: data/skus.csv,  pick: random }
journeys:
  browse:
    share: 70%
    steps:
      - get: /api/items?page={{ random(1, 50) }}
      - get: /api/items/{{ skus.id }}
        expect: { status: 200 }
  flash-buy:
    share: 30%
    clients: [mobile-app]
    steps:
      - post: /api/cart
        json: { sku: "{{ skus.id }}", qty: 1 }
        capture: { cart_id: $.cart.id }
      - wait: sale-start
      - post: /api/orders
        name: create-order
        json: { cart: "{{ cart_id }}", user: "{{ users.id }}" }
        expect: { status: [200, 201], json: { $.status: created } }
load:
  countdown:
    sale_start: 2m
    before: 300/s
    peak: 6000/s
    rise: 26s
    hold: 1m
    decay: 3m
    after: 1000/s
    end: 8m
  max_users: 50000
  arrivals: poisson
  seed: 11
"#;

const USERS: &str = r#"
name: closed-mix
journeys:
  browse:
    share: 100%
    steps: [ { get: /api/items } ]
load: { users: [ { users: 50, for: 10s }, { to: 500, over: 30s }, { hold: 2m } ] }
"#;

fn write_scenario(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/users.csv"), "id\nu1\nu2\n").unwrap();
    std::fs::write(dir.join("data/skus.csv"), "id\ns1\ns2\n").unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn flashcrowd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flashcrowd"))
        .args(args)
        .output()
        .expect("run flashcrowd")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn countdown_plan_prints_the_pinned_phases_and_totals() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_scenario(dir.path(), "double11-countdown.yaml", COUNTDOWN);
    let out = flashcrowd(&["plan", file.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // before 300·120, rise (300+6000)/2·26, peak 6000·60,
    // decay 1000·180 + 5000·36·(1 − e^−5) = 358787.17, after 1000·94; 2 requests per session.
    let table = "\
phase   start    end     planned rate  sessions   requests
before     0s     2m            300/s    36,000     72,000
rise       2m  2m26s   300/s → 6000/s    81,900    163,800
peak    2m26s  3m26s           6000/s   360,000    720,000
decay   3m26s  6m26s  6000/s → 1034/s   358,787    717,574
after   6m26s     8m           1000/s    94,000    188,000
total      0s     8m                    930,687  1,861,374
";
    assert!(text.contains(table), "{text}");
    assert!(text.contains("model     open: sessions arrive at planned instants (poisson, seed 11)"));
    assert!(text.contains("peak      6000/s at 2m26s (26s after the sale starts at 2m)"));
    assert!(text.contains("requests  2 per session"));
    assert!(text.contains("cap       50,000 sessions in flight"));
    // The chart: its top label, the axis with the four later phase starts marked, the end time.
    assert!(text.contains("6000/s ┤"), "{text}");
    let axis = text.lines().find(|l| l.contains('└')).unwrap();
    assert_eq!(axis.matches('┬').count(), 4, "{axis}");
    assert!(text
        .lines()
        .any(|l| l.trim_start().starts_with("0s") && l.ends_with("8m")));
}

#[test]
fn scale_and_time_scale_shrink_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_scenario(dir.path(), "c.yaml", COUNTDOWN);
    let out = flashcrowd(&[
        "plan",
        file.to_str().unwrap(),
        "--scale",
        "1/100",
        "--time-scale",
        "1/2",
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("scaled    rates and users × 1/100, durations × 1/2"));
    // before: 3/s for 1 m = 180 sessions; everything × 1/200 in all: 4,653 sessions.
    assert!(
        text.contains("before     0s     1m             3/s       180       360\n"),
        "{text}"
    );
    assert!(
        text.contains("total      0s     4m                     4,653     9,307\n"),
        "{text}"
    );
    assert!(text.contains("peak      60/s at 1m13s"), "{text}");
    assert!(text.contains("cap       500 sessions"), "{text}");
}

#[test]
fn closed_plan_prints_users_per_phase() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_scenario(dir.path(), "u.yaml", USERS);
    let out = flashcrowd(&["plan", file.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    let table = "\
phase    start    end     users
stage-1     0s    10s        50
stage-2    10s    40s  50 → 500
stage-3    40s  2m40s       500
total       0s  2m40s
";
    assert!(text.contains(table), "{text}");
    assert!(text.contains("model     closed"));
    assert!(text.contains("peak      500 users at 40s"), "{text}");
    assert!(text.contains("requests  depend on response times"));
}

#[test]
fn png_chart_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_scenario(dir.path(), "c.yaml", COUNTDOWN);
    let png = dir.path().join("plan.png");
    let out = flashcrowd(&[
        "plan",
        file.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // IHDR: width 1200 and height 560, big-endian, at bytes 16..24.
    assert_eq!(&bytes[16..24], &[0, 0, 4, 176, 0, 0, 2, 48]);
    assert!(bytes.len() > 10_000, "{} bytes", bytes.len());
}

#[test]
fn bad_input_exits_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_scenario(dir.path(), "c.yaml", COUNTDOWN);
    let f = file.to_str().unwrap();

    let out = flashcrowd(&["plan", f, "--scale", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--scale"));

    let missing = dir.path().join("missing.yaml");
    let out = flashcrowd(&["plan", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));

    let short = write_scenario(
        dir.path(),
        "short.yaml",
        &COUNTDOWN.replace("end: 8m", "end: 5m"),
    );
    let out = flashcrowd(&["plan", short.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    // The validator catches it, at the line of `end`, with the fix.
    assert!(err.contains("comes before the countdown is over"), "{err}");
    assert!(
        err.contains("short.yaml:49:10") && err.contains("set end to at least 6m26s"),
        "{err}"
    );

    let png = dir.path().join("no/such/dir/plan.png");
    let out = flashcrowd(&["plan", f, "--png", png.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--png"));
}

#[test]
fn calendar_plan_lists_the_moments_with_their_instants_and_draws_them() {
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/double11-calendar.yaml");
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("night.png");
    let out = flashcrowd(&[
        "plan",
        file.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The base at 300/s for the 5 minutes before the pre-sale, its rise (300+3000)/2·30, its
    // peak 3000·120; the sale's rise (300+6000)/2·26 and peak 6000·60; the base comes back.
    for row in [
        "base                 0s        5m            300/s      90,000     180,000",
        "presale.rise         5m     5m30s   300/s → 3000/s      49,500      99,000",
        "presale.peak      5m30s     7m30s           3000/s     360,000     720,000",
        "base             17m30s      4h5m            300/s   4,095,000   8,190,000",
        "sale.rise          4h5m   4h5m26s   300/s → 6000/s      81,900     163,800",
        "sale.peak       4h5m26s   4h6m26s           6000/s     360,000     720,000",
        // The sale's decay runs on under the balance payments: their spikes add up.
        "balance.rise      4h35m  4h35m10s   349/s → 2547/s",
    ] {
        assert!(text.contains(row), "missing `{row}` in:\n{text}");
    }
    let moments = "\
moment      at                    instant    peak   peak at   over at
presale     5m  2026-11-10T20:00:00+08:00  3000/s     5m30s    17m30s
sale      4h5m  2026-11-11T00:00:00+08:00  6000/s   4h5m26s  4h36m26s
balance  4h35m  2026-11-11T00:30:00+08:00  2500/s  4h35m10s     5h10s
";
    assert!(text.contains(moments), "{text}");
    assert!(text.contains("peak      6000/s at 4h5m26s (the top of `sale`, 26s after its instant)"));
    // The terminal chart marks each moment (and the base's return) on its axis and names them.
    let axis = text.lines().find(|l| l.contains('└')).unwrap();
    assert_eq!(axis.matches('┬').count(), 5, "{axis}");
    assert!(
        text.lines()
            .any(|l| l.contains("sale") && l.contains("balance") && !l.contains('│')),
        "{text}"
    );
    let bytes = std::fs::read(&png).expect("the PNG is written");
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
}

/// The countdown at `max_users: 5000`: before the sale, 300/s × 2 m = 36,000 arrivals, 80 % of
/// them mobile and 30 % of those take `flash-buy`, which parks at `wait: sale-start`: 8,640
/// parked sessions for a cap of 5,000. The cap is full at 5,000 / (300 × 0.24) = 69.4 s; every
/// arrival from then to 2 m is dropped: 300 × 50.6 s = 15,167.
#[test]
fn a_wait_that_parks_more_than_max_users_is_warned_by_plan_and_validate() {
    let dir = tempfile::tempdir().unwrap();
    let text = COUNTDOWN.replace("max_users: 50000", "max_users: 5000");
    let file = write_scenario(dir.path(), "crowded.yaml", &text);
    let line = text
        .lines()
        .position(|l| l.contains("- wait: sale-start"))
        .unwrap()
        + 1;
    let expected = format!(
        "warning: {}:{line}: `wait: sale-start` parks the 8,640 sessions the plan sends to it before \
         it releases at 2m, but max_users caps sessions in flight at 5,000: waiting sessions count \
         against the cap, so from about 1m9s until the release every arrival is dropped (about \
         15,167 of them) while the target sits idle. Raise max_users above 8,640",
        file.display()
    );
    let out = flashcrowd(&["plan", file.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(stdout(&out).contains(&expected), "{}", stdout(&out));
    let out = flashcrowd(&["validate", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a warning is not an error\n{err}");
    assert!(err.contains(&expected), "{err}");

    // The same scenario with room for every parked buyer warns about nothing.
    let file = write_scenario(dir.path(), "roomy.yaml", COUNTDOWN);
    let out = flashcrowd(&["plan", file.to_str().unwrap()]);
    assert!(!stdout(&out).contains("warning"), "{}", stdout(&out));
    let out = flashcrowd(&["validate", file.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).is_empty());
}
