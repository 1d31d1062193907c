//! The documentation and the example scenarios stay true: every scenario in `scenarios/` and
//! every whole scenario shown in docs/scenario.md validates, and every invalid example shown there
//! fails with the message it quotes.

use flashcrowd::scenario::{self, model::Load, Loaded};
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scenario_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn load(name: &str) -> Loaded {
    scenario::load(&root().join("scenarios").join(name), &[])
        .unwrap_or_else(|d| panic!("{name} does not validate:\n{d}"))
}

/// The ```yaml blocks of docs/scenario.md.
fn doc_blocks() -> Vec<String> {
    let doc = std::fs::read_to_string(root().join("docs/scenario.md")).unwrap();
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in doc.lines() {
        match (&mut cur, line.trim_end()) {
            (None, "```yaml") => cur = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                cur = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(
        cur.is_none(),
        "an unclosed ```yaml block in docs/scenario.md"
    );
    blocks
}

fn load_doc_block(text: &str) -> Result<Loaded, scenario::Diagnostics> {
    let env = |n: &str| match n {
        "FLASHCROWD_DOC_TARGET" => Some("http://127.0.0.1:8080".to_string()),
        "FLASHCROWD_DOC_TOKEN" => Some("doc-token".to_string()),
        _ => None,
    };
    scenario::load_str_in(
        "docs/scenario.md",
        text,
        &root().join("scenarios"),
        &[],
        &env,
    )
}

#[test]
fn every_scenario_in_scenarios_validates() {
    let files = scenario_files();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "capacity-step-drill.yaml",
        "ci-smoke-gate.yaml",
        "double11-countdown.yaml",
        "mobile-pc-mix.yaml",
        "redpacket-rendezvous.yaml",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} is missing");
    }
    for f in files {
        if let Err(d) = scenario::load(&f, &[]) {
            panic!("{} does not validate:\n{d}", f.display());
        }
    }
}

#[test]
fn validate_command_accepts_every_example_scenario() {
    let out = Command::new(env!("CARGO_BIN_EXE_flashcrowd"))
        .arg("validate")
        .args(scenario_files())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).matches("ok: ").count(),
        scenario_files().len()
    );
}

#[test]
fn every_whole_scenario_in_the_docs_validates() {
    let whole: Vec<String> = doc_blocks()
        .into_iter()
        .filter(|b| b.lines().any(|l| l.starts_with("name:")) && !b.starts_with("# invalid:"))
        .collect();
    assert!(whole.len() >= 2, "the docs show whole scenarios");
    for b in whole {
        if let Err(d) = load_doc_block(&b) {
            panic!("a docs example does not validate:\n{b}\n{d}");
        }
    }
}

#[test]
fn every_invalid_example_in_the_docs_fails_with_its_message() {
    let bad: Vec<String> = doc_blocks()
        .into_iter()
        .filter(|b| b.starts_with("# invalid:"))
        .collect();
    assert!(bad.len() >= 5, "the docs show invalid examples");
    for b in bad {
        let first = b.lines().next().unwrap();
        let expected = first.trim_start_matches("# invalid:").trim();
        match load_doc_block(&b) {
            Ok(_) => panic!("an invalid docs example validates:\n{b}"),
            Err(d) => {
                let text = d.to_string();
                assert!(text.contains(expected), "expected `{expected}` in:\n{text}");
            }
        }
    }
}

#[test]
fn env_example_substitutes_and_records_secrets() {
    let block = doc_blocks()
        .into_iter()
        .find(|b| b.contains("${env:FLASHCROWD_DOC_TOKEN}"))
        .expect("the docs show ${env:...}");
    let l = load_doc_block(&block).unwrap();
    assert_eq!(l.scenario.target.as_deref(), Some("http://127.0.0.1:8080"));
    assert_eq!(
        l.scenario.defaults.headers["Authorization"],
        "Bearer doc-token"
    );
    assert!(l.secrets.contains(&"doc-token".to_string()));
    assert!(l.source.contains("${env:FLASHCROWD_DOC_TOKEN}"));
}

#[test]
fn examples_target_the_embedded_shop_and_tag_their_traffic() {
    for f in scenario_files() {
        let l = scenario::load(&f, &[]).unwrap();
        let s = &l.scenario;
        assert_eq!(
            s.target.as_deref(),
            Some("http://127.0.0.1:8080"),
            "{}",
            f.display()
        );
        assert_eq!(
            s.defaults.headers.get("X-Load-Test").map(String::as_str),
            Some("flashcrowd"),
            "{}",
            f.display()
        );
        assert!(
            l.source.starts_with("# "),
            "{} starts with a comment for new users",
            f.display()
        );
    }
}

#[test]
fn double11_keeps_the_designs_countdown() {
    let l = load("double11-countdown.yaml");
    let c = l
        .scenario
        .load
        .countdown
        .as_ref()
        .expect("a countdown load");
    let secs = |d: flashcrowd::scenario::units::Dur| d.0.as_secs_f64();
    assert_eq!((c.before.0, c.peak.0, c.after.0), (300.0, 6000.0, 1000.0));
    assert_eq!(
        (secs(c.rise), secs(c.hold), secs(c.decay)),
        (26.0, 60.0, 180.0)
    );
    assert_eq!(
        scenario::phase_names(&l.scenario.load),
        ["before", "rise", "peak", "decay", "after"]
    );
    let buy = &l.scenario.journeys["flash-buy"];
    assert_eq!(buy.steps[1].wait.as_deref(), Some("sale-start"));
    assert_eq!(
        scenario::request_name(&buy.steps[2]).as_deref(),
        Some("create-order")
    );
    assert_eq!(
        buy.steps[2]
            .expect
            .as_ref()
            .unwrap()
            .status
            .as_ref()
            .unwrap()
            .codes(),
        [200, 201]
    );
}

#[test]
fn mobile_pc_mix_is_closed_with_a_phase_dependent_mix() {
    let l = load("mobile-pc-mix.yaml");
    assert!(l.scenario.load.users.is_some());
    let phases = scenario::phase_names(&l.scenario.load);
    let shifts: Vec<&String> = l
        .scenario
        .clients
        .values()
        .flat_map(|c| c.during.keys())
        .collect();
    assert!(!shifts.is_empty());
    assert!(shifts.iter().all(|p| phases.contains(p)));
}

#[test]
fn redpacket_gathers_by_count_and_expects_sold_out() {
    let l = load("redpacket-rendezvous.yaml");
    let steps = &l.scenario.journeys["grab"].steps;
    let r = steps
        .iter()
        .find_map(|s| s.rendezvous.as_ref())
        .expect("a rendezvous");
    assert!(r.users > 1);
    let grab = steps
        .iter()
        .find(|s| s.post.as_deref() == Some("/api/redpacket/grab"))
        .unwrap();
    assert_eq!(
        grab.expect
            .as_ref()
            .unwrap()
            .status
            .as_ref()
            .unwrap()
            .codes(),
        [200, 410]
    );
}

#[test]
fn ci_smoke_gate_is_short_and_gated() {
    let l = load("ci-smoke-gate.yaml");
    let Load {
        stages: Some(stages),
        ..
    } = &l.scenario.load
    else {
        panic!("a stages load")
    };
    let total: f64 = stages
        .iter()
        .map(|s| {
            [s.for_, s.over, s.hold]
                .iter()
                .flatten()
                .map(|d| d.0.as_secs_f64())
                .sum::<f64>()
        })
        .sum();
    assert!(total < 30.0, "{total}s");
    assert!(l.scenario.thresholds.len() >= 3);
    for t in &l.scenario.thresholds {
        scenario::check_threshold(&l, t).unwrap();
    }
}

#[test]
fn capacity_drill_has_stop_rules() {
    let l = load("capacity-step-drill.yaml");
    let d = l.scenario.load.steps.as_ref().expect("a steps load");
    assert!(!d.stop_when.is_empty());
    assert_eq!(scenario::phase_names(&l.scenario.load).len(), 10);
}
