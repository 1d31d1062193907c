//! Scheduled actions under load (`actions:` and `recovery:`): a failover drill against the
//! embedded shop's `/admin/fail` switch, its recovery time and impact as the shop counted them,
//! the gate on recovery, `when` actions, a killed drill's actions rebuilt from its journal, and
//! the refusals before any load (`run` without `--allow-run`, an untagged action URL off
//! loopback).

mod support;

use flashcrowd::shop::{start_background, ShopConfig, ShopHandle};
use std::time::{Duration, Instant};
use support::server::TestServer;
use support::Scenario;

fn shop() -> ShopHandle {
    start_background(ShopConfig::default()).expect("the shop starts")
}

/// 100 sessions/s of one item read for `secs`, and a failover at 2 s that makes the shop answer
/// 503 for 3 s. A second counts as recovered when under half of its requests failed: the shop
/// flips back at the action's instant + 3 s, a few ms into second 5 (up to 0.5 s late on a
/// loaded machine still leaves second 5 good, so recovery_s is 5 − t, within 0.5 s of 3 s).
fn failover(shop: &ShopHandle, secs: u32) -> String {
    format!(
        r#"
name: failover-drill
defaults: {{ headers: {{ X-Load-Test: flashcrowd }} }}
journeys:
  browse:
    share: 100%
    steps: [ {{ get: /api/items/1 }} ]
load: {{ stages: [ {{ rate: 100/s, for: {secs}s }} ] }}
actions:
  - name: db-failover
    at: 2s
    http: {{ post: "{}/admin/fail?for=3s", expect: {{ status: 200 }} }}
recovery:
  slo: [ "errors < 50%" ]
  stable: 2s
"#,
        shop.url()
    )
}

/// The failover of [`failover`] as report.json `actions[]` has it: fired on time, succeeded,
/// recovered in 3 ± 0.5 s, its impact every 503 the shop sent. Its `recovery_s`.
fn assert_failover(a: &serde_json::Value, failed_by_shop: u64) -> f64 {
    assert_eq!(a["name"], "db-failover", "{a}");
    assert_eq!(a["ok"], true, "{a}");
    assert_eq!(a["result"], "status 200", "{a}");
    assert_eq!(a["planned_t"], 2.0, "{a}");
    // Fired by a timer thread: on time within 0.4 s on a loaded 2-core machine (debug build).
    let t = a["t"].as_f64().unwrap();
    assert!((2.0..2.4).contains(&t), "the action began at {t}s");
    let recovery = a["recovery_s"].as_f64().expect("it recovered");
    assert!(
        (recovery - 3.0).abs() <= 0.5,
        "recovery_s {recovery}, want 3 ± 0.5\n{a}"
    );
    // Every 503 the shop sent is in the impact, no more, no less.
    assert!(
        failed_by_shop > 100,
        "the shop failed {failed_by_shop} requests"
    );
    assert_eq!(a["impact"]["failed"].as_u64(), Some(failed_by_shop), "{a}");
    recovery
}

/// The options of the failover runs: one shard, and a gate on the recovery.
const GATED: [&str; 4] = [
    "--threads",
    "1",
    "--threshold",
    "action:db-failover recovery < 10s",
];

#[test]
fn a_failover_at_2s_recovers_in_3s_and_its_impact_is_what_the_shop_counted() {
    let shop = shop();
    let sc = Scenario::new(&failover(&shop, 9));
    let done = sc.run(&shop.url(), &GATED, Duration::from_secs(60));
    assert_eq!(
        done.code,
        Some(0),
        "recovery < 10s passes\n{}",
        done.output()
    );
    let report = sc.report(&done);
    let failed_by_shop = shop.stats().drill_failures;

    let a = &report["actions"][0];
    let recovery = assert_failover(a, failed_by_shop);
    assert_eq!(
        report["totals"]["errors"].as_u64(),
        Some(failed_by_shop),
        "no other errors"
    );
    assert!(a["impact"]["error_rate"].as_f64().unwrap() > 0.4, "{a}");

    // The action is a typed event of the timeline, and the gate saw its recovery.
    let tl = report["timeline"].as_array().unwrap();
    let ev = tl
        .iter()
        .find(|e| e["event"] == "action")
        .unwrap_or_else(|| panic!("no action in the timeline {tl:?}"));
    assert_eq!(ev["name"], "db-failover");
    assert_eq!(ev["action"], "http");
    assert_eq!(
        ev["did"].as_str().unwrap(),
        format!("POST {}/admin/fail?for=3s", shop.url())
    );
    let th = &report["thresholds"][0];
    assert_eq!(th["passed"], true, "{th}");
    assert!((th["observed"].as_f64().unwrap() - recovery * 1000.0).abs() < 1e-6);

    // The exporters show it: a row in summary.md and report.html, a marker on the charts.
    let md = std::fs::read_to_string(sc.out.join("summary.md")).unwrap();
    assert!(md.contains("db-failover"), "{md}");
    let html = std::fs::read_to_string(sc.out.join("report.html")).unwrap();
    assert!(html.contains("<h2>Actions</h2>"), "no actions table");
    for chart in ["rate", "latency", "errors"] {
        let fig = figure(&html, chart);
        assert!(
            fig.contains("db-failover"),
            "the {chart} chart has no db-failover marker"
        );
    }
}

/// The failover drill killed with `kill -9` once its journal holds second 8 (the action at 2 s,
/// the shop failing until 5 s, recovery confirmed by the end of second 6): `flashcrowd report`
/// rebuilds `actions[]` from the journal — the action as it fired, its recovery and its impact
/// judged on the journaled seconds, exactly the shop's count of failures — and gates on it.
#[test]
fn a_killed_drill_rebuilt_from_its_journal_keeps_its_actions_and_their_recovery() {
    let shop = shop();
    let sc = Scenario::new(&failover(&shop, 30));
    let run = sc.spawn(&shop.url(), &GATED);
    let journal = sc.out.join("journal.jsonl");
    support::wait_for("second 8 in the journal", Duration::from_secs(40), || {
        std::fs::read_to_string(&journal).is_ok_and(|j| j.contains(r#""k":"second","t":8,"#))
    });
    run.signal(libc::SIGKILL);
    let done = run.wait(Duration::from_secs(30));
    assert_eq!(done.code, None, "killed by a signal\n{}", done.output());
    assert!(
        !sc.out.join("report.json").exists(),
        "a killed run wrote no report"
    );
    let failed_by_shop = shop.stats().drill_failures;

    let rebuilt = support::Spawned::start(&["report", sc.out.to_str().unwrap()])
        .wait(Duration::from_secs(60));
    assert_eq!(rebuilt.code, Some(3), "incomplete\n{}", rebuilt.output());
    let report = support::read_report(&sc.out, &rebuilt);
    assert_eq!(report["run"]["status"], "incomplete");
    let actions = report["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{actions:#?}");
    let recovery = assert_failover(&actions[0], failed_by_shop);
    // The gate on the action's recovery is judged on the rebuilt action.
    let th = &report["thresholds"][0];
    assert_eq!(th["expr"], "action:db-failover recovery < 10s", "{th}");
    assert_eq!(th["passed"], true, "{th}");
    assert!(
        (th["observed"].as_f64().unwrap() - recovery * 1000.0).abs() < 1e-6,
        "{th}"
    );
    // And the exporters show it as for a finished run.
    let html = std::fs::read_to_string(sc.out.join("report.html")).unwrap();
    assert!(html.contains("<h2>Actions</h2>"), "no actions table");
    assert!(figure(&html, "rate").contains("db-failover"), "no marker");
}

/// The `<figure id="chart-NAME">…</figure>` of report.html.
fn figure<'a>(html: &'a str, name: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"chart-{name}\""))
        .unwrap_or_else(|| panic!("no {name} chart"));
    let end = html[start..].find("</figure>").unwrap() + start;
    &html[start..end]
}

#[test]
fn a_recovery_gate_tighter_than_the_recovery_fails_the_run() {
    let shop = shop();
    let sc = Scenario::new(&failover(&shop, 8));
    let done = sc.run(
        &shop.url(),
        &[
            "--threads",
            "1",
            "--threshold",
            "action:db-failover recovery < 1s",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(done.code, Some(1), "recovery < 1s fails\n{}", done.output());
    let report = sc.report(&done);
    assert_eq!(report["run"]["status"], "failed");
    let th = &report["thresholds"][0];
    assert_eq!(th["passed"], false, "{th}");
    assert!(th["observed"].as_f64().unwrap() > 2000.0, "{th}");
}

#[test]
fn a_when_action_fires_once_and_is_in_the_timeline() {
    let target = TestServer::start();
    let sc = Scenario::new(&format!(
        r#"
name: when-once
journeys:
  j:
    share: 100%
    steps: [ {{ get: /load }} ]
load: {{ stages: [ {{ rate: 20/s, for: 6s }} ] }}
actions:
  - name: degrade-on
    when: count > 0 for 2s
    http: {{ post: "{}/hook/degrade?on=1" }}
"#,
        target.url()
    ));
    let report = sc.run_passing(&target.url(), &["--threads", "1"], Duration::from_secs(60));
    // The rule holds every second from the second on; the action fires once.
    assert_eq!(target.count("/hook/"), 1, "the hook was called once");
    let fired: Vec<_> = report["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "action")
        .collect();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["name"], "degrade-on");
    assert_eq!(fired[0]["trigger"], "when count > 0 for 2s");
    assert_eq!(
        fired[0]["planned_t"], 2.0,
        "the rule held at the end of second 2"
    );
    assert_eq!(report["actions"].as_array().unwrap().len(), 1);
}

/// A drill whose first action fails (the shop refuses `/admin/slow` without `ms`: 400) and whose
/// second halves the rate through live control; `abort` says whether the failure stops the run.
fn failing_drill(abort: bool) -> String {
    format!(
        r#"
name: failing-action
defaults: {{ headers: {{ X-Load-Test: flashcrowd }} }}
journeys:
  browse:
    share: 100%
    steps: [ {{ get: /api/items/1 }} ]
load: {{ stages: [ {{ rate: 40/s, for: 4s }} ] }}
actions:
  - name: bad-switch
    at: 1s
    http: {{ post: "/admin/slow" }}
    abort_on_failure: {abort}
  - name: halve
    at: 2s
    steer: {{ rate: 0.5 }}
"#
    )
}

#[test]
fn a_failed_action_is_recorded_and_the_run_goes_on_unless_abort_on_failure() {
    let shop = shop();
    let sc = Scenario::new(&failing_drill(false));
    let report = sc.run_passing(&shop.url(), &["--threads", "1"], Duration::from_secs(60));
    assert_eq!(report["run"]["status"], "completed");
    let bad = &report["actions"][0];
    assert_eq!(bad["name"], "bad-switch");
    assert_eq!(bad["ok"], false, "{bad}");
    assert_eq!(bad["result"], "status 400", "{bad}");
    // A relative URL goes to the run's target.
    assert_eq!(
        bad["did"],
        format!("POST {}/admin/slow", shop.url()),
        "{bad}"
    );
    let halve = &report["actions"][1];
    assert_eq!(halve["name"], "halve");
    assert_eq!(halve["action"], "steer");
    assert_eq!(halve["ok"], true, "{halve}");
    // The steer lands in the timeline as a control event from the action, and halves the plan.
    let tl = report["timeline"].as_array().unwrap();
    let rate = tl
        .iter()
        .find(|e| e["event"] == "rate")
        .unwrap_or_else(|| panic!("no rate event in {tl:?}"));
    assert_eq!(rate["source"], "action halve", "{rate}");
    assert_eq!(rate["factor"], 0.5, "{rate}");
    let factor_at = |t: u64| {
        report["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["t"] == t)
            .map(|p| p["rate_factor"].as_f64().unwrap())
    };
    assert_eq!(factor_at(0), Some(1.0));
    assert_eq!(factor_at(3), Some(0.5));
    // Every action is in summary.md's actions table.
    let md = std::fs::read_to_string(sc.out.join("summary.md")).unwrap();
    assert!(md.contains("| bad-switch (http) | at 1s |"), "{md}");
    assert!(md.contains("status 400"), "{md}");
    assert!(md.contains("| halve (steer) | at 2s |"), "{md}");

    let sc = Scenario::new(&failing_drill(true));
    let done = sc.run(&shop.url(), &["--threads", "1"], Duration::from_secs(60));
    assert_eq!(done.code, Some(3), "aborted\n{}", done.output());
    let report = sc.report(&done);
    assert_eq!(report["run"]["status"], "aborted");
    let reason = report["run"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("`bad-switch` failed (status 400)") && reason.contains("abort_on_failure"),
        "{reason}"
    );
    assert!(report["run"]["duration_s"].as_f64().unwrap() < 3.5);
}

#[test]
fn run_actions_are_refused_without_allow_run_and_logged_redacted_with_it() {
    let target = TestServer::start();
    let sc = Scenario::new(
        r#"
name: run-action
defaults: { headers: { Authorization: "Bearer ${env:FC_ACTION_SECRET}" } }
journeys:
  j:
    share: 100%
    steps: [ { get: /load } ]
load: { stages: [ { rate: 10/s, for: 3s } ] }
actions:
  - name: kill-one
    at: 1s
    run: ["sh", "-c", "echo killed token=${env:FC_ACTION_SECRET} > \"$0\"; echo done", "MARKER"]
"#,
    );
    let marker = sc.dir.path().join("killed");
    let text = std::fs::read_to_string(&sc.file)
        .unwrap()
        .replace("MARKER", marker.to_str().unwrap());
    std::fs::write(&sc.file, text).unwrap();
    let secret = "s3cr3t-action-token";
    let url = target.url();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            sc.file.to_str().unwrap(),
            "--target",
            &url,
            "--out",
            sc.out.to_str().unwrap(),
            "--quiet",
        ];
        args.extend_from_slice(extra);
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_flashcrowd"))
            .args(&args)
            .env("FC_ACTION_SECRET", secret)
            .output()
            .expect("run flashcrowd");
        (
            child.status.code(),
            String::from_utf8_lossy(&child.stderr).into_owned(),
        )
    };

    let t0 = Instant::now();
    let (code, stderr) = run(&[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--allow-run"), "{stderr}");
    assert!(stderr.contains("actions[0] (kill-one)"), "{stderr}");
    assert!(
        !stderr.contains(secret),
        "the refusal is redacted: {stderr}"
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(target.count("/"), 0, "no load before the refusal");
    assert!(!marker.exists(), "nothing was executed");

    let (code, stderr) = run(&["--allow-run"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(marker.exists(), "the program ran");
    let log = std::fs::read_to_string(sc.out.join("actions/kill-one.log")).unwrap();
    assert!(log.contains("done"), "{log}");
    assert!(!log.contains(secret), "the log is redacted: {log}");
    assert!(log.contains("[redacted]"), "{log}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sc.out.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["actions"][0]["result"], "exit 0");
    assert!(!report.to_string().contains(secret));
}

#[test]
fn an_untagged_action_url_off_loopback_is_refused_like_a_target() {
    let local = TestServer::start();
    let port = local.addr.port();
    let sc = Scenario::new(&format!(
        r#"
name: untagged-action
journeys:
  j:
    share: 100%
    steps: [ {{ get: /load }} ]
load: {{ stages: [ {{ rate: 10/s, for: 2s }} ] }}
actions:
  - name: failover
    at: 1s
    http: {{ post: "http://0.0.0.0:{port}/admin/failover" }}
"#
    ));
    let done = sc.run(&local.url(), &[], Duration::from_secs(30));
    assert_eq!(done.code, Some(2), "{}", done.output());
    assert!(
        done.stderr
            .contains("refusing to send untagged traffic to the action URL http://0.0.0.0"),
        "{}",
        done.output()
    );
    assert!(
        done.stderr.contains("X-Load-Test: flashcrowd"),
        "{}",
        done.output()
    );
    assert_eq!(local.count("/"), 0, "nothing was sent");
}

#[test]
fn the_shop_fails_slows_and_recovers_on_command() {
    let shop = shop();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        let get = || c.get(format!("{}/api/items/7", shop.url())).send();
        let post = |p: &str| c.post(format!("{}{p}", shop.url())).send();
        assert_eq!(get().await.unwrap().status(), 200);
        assert_eq!(post("/admin/fail?for=5s").await.unwrap().status(), 200);
        let r = get().await.unwrap();
        assert_eq!(r.status(), 503);
        assert!(r.text().await.unwrap().contains("system busy"));
        assert_eq!(shop.stats().drill_failures, 1);
        assert_eq!(post("/admin/recover").await.unwrap().status(), 200);
        assert_eq!(get().await.unwrap().status(), 200);
        // A failure window ends by itself.
        assert_eq!(post("/admin/fail?for=300ms").await.unwrap().status(), 200);
        assert_eq!(get().await.unwrap().status(), 503);
        let t = Instant::now();
        while get().await.unwrap().status() == 503 {
            assert!(t.elapsed() < Duration::from_secs(5), "still failing");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            t.elapsed() >= Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
        // Slow: every request takes that much longer, until recovered.
        assert_eq!(post("/admin/slow?ms=300").await.unwrap().status(), 200);
        let t = Instant::now();
        assert_eq!(get().await.unwrap().status(), 200);
        assert!(t.elapsed() >= Duration::from_millis(300));
        post("/admin/recover").await.unwrap();
        let t = Instant::now();
        get().await.unwrap();
        assert!(t.elapsed() < Duration::from_millis(300));
        // Bad values are refused.
        assert_eq!(post("/admin/fail?for=soon").await.unwrap().status(), 400);
        assert_eq!(post("/admin/slow").await.unwrap().status(), 400);
    });
}

#[test]
fn the_night_drill_schedules_its_actions_at_its_moments() {
    use flashcrowd::plan::{Plan, PlanOptions};
    use flashcrowd::run::actions::{compile, Permissions, Trigger};
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/double11-night.yaml");
    let loaded = flashcrowd::scenario::load(&file, &[]).expect("the drill validates");
    let compiled = |time_scale: f64| {
        let plan = Plan::compile(
            &loaded.scenario.load,
            &PlanOptions {
                time_scale,
                ..PlanOptions::for_scenario(&loaded)
            },
        )
        .unwrap();
        let perms = Permissions {
            allow_run: false,
            untagged_ok: false,
        };
        compile(&loaded.scenario, &plan, "http://127.0.0.1:8080", &perms).unwrap()
    };
    let at = |actions: &[flashcrowd::run::actions::Action], name: &str| {
        let a = actions.iter().find(|a| a.name == name).unwrap();
        match &a.trigger {
            Trigger::At { t, .. } => Some(*t),
            Trigger::When { .. } => None,
        }
    };
    let actions = compiled(1.0);
    assert_eq!(actions.len(), 3);
    // The sale is at 40 s, the balance payments at 1m45s.
    assert_eq!(at(&actions, "db-failover"), Some(70.0));
    assert_eq!(at(&actions, "payments-slow"), Some(107.0));
    assert_eq!(at(&actions, "degrade-on"), None, "a rule, not an instant");
    assert_eq!(
        actions[0].what.describe(),
        "POST http://127.0.0.1:8080/admin/fail?for=6s",
        "a /path goes to the run's target"
    );
    // --time-scale moves the moments and the offsets alike.
    let half = compiled(0.5);
    assert_eq!(at(&half, "db-failover"), Some(35.0));
    assert_eq!(at(&half, "payments-slow"), Some(53.5));
}
