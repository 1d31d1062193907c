//! The safety interlock: untagged traffic to a non-loopback target is refused, and only the
//! deliberately long `--i-know-this-is-untagged` overrides it.
//!
//! The refused cases aim at `0.0.0.0:PORT`, where PORT is a server of this test: the interlock
//! sees a non-loopback address, yet if it ever let a run through, the traffic would land on this
//! machine, in that server — which then shows it ("no traffic" is asserted by the server seeing
//! nothing, not by a guess). No case names an address off this machine, so even a broken
//! interlock sends nothing beyond it. The allowed cases use loopback only.

mod support;

use std::time::Duration;
use support::hostile::HostileServer;
use support::{Finished, Scenario};

/// A refusal happens before any network I/O; a second covers a cold start of a debug binary on
/// a loaded machine.
const REFUSAL_LIMIT: Duration = Duration::from_secs(1);

fn scenario(defaults_headers: &str, clients: &str, step_headers: &str, safety: &str) -> String {
    format!(
        r#"
name: interlock
target: http://127.0.0.1:9
defaults:
  timeout: 1s
  headers: {{ {defaults_headers} }}
{clients}
journeys:
  read:
    share: 100%
    steps:
      - get: /item
        headers: {{ {step_headers} }}
load:
  stages:
    - {{ rate: 5/s, for: 1s }}
  arrivals: uniform
{safety}
"#
    )
}

const TWO_CLIENTS_ONE_TAGGED: &str = r#"clients:
  app:
    share: 50%
    headers: { X-Load-Test: flashcrowd }
  web:
    share: 50%"#;

/// Runs `yaml` at `0.0.0.0:PORT` of a local server and checks the refusal: exit 2 at once, the
/// message names `tag` and the override, no report, and the server saw nothing.
fn refused(yaml: &str, extra: &[&str], tag: &str) -> Finished {
    let server = HostileServer::start(support::hostile::Fault::Healthy);
    let target = format!("http://0.0.0.0:{}", server.addr.port());
    let done = refused_at(yaml, &target, extra, tag);
    assert!(
        server.heads().is_empty(),
        "the interlock let traffic through: {:?}",
        server.heads()
    );
    done
}

fn refused_at(yaml: &str, target: &str, extra: &[&str], tag: &str) -> Finished {
    let sc = Scenario::new(yaml);
    // Spawn's own limit is generous: a slow refusal fails the assertion below with the output.
    let done = sc.run(target, extra, Duration::from_secs(20));
    assert_eq!(
        done.code,
        Some(2),
        "refused as bad input\n{}",
        done.output()
    );
    assert!(
        done.elapsed < REFUSAL_LIMIT,
        "refused at once, before any probe: took {:?}\n{}",
        done.elapsed,
        done.output()
    );
    assert!(
        done.stderr.contains(tag),
        "the message names the tag header `{tag}`\n{}",
        done.output()
    );
    if !tag.is_empty() {
        assert!(done.stderr.contains("--i-know-this-is-untagged"));
    }
    assert!(!sc.out.join("report.json").exists(), "no run, no report");
    done
}

#[test]
fn an_untagged_non_loopback_target_is_refused() {
    refused(&scenario("", "", "", ""), &[], "X-Load-Test");
}

#[test]
fn a_tag_on_only_some_clients_is_refused() {
    refused(
        &scenario("", TWO_CLIENTS_ONE_TAGGED, "", ""),
        &[],
        "X-Load-Test",
    );
}

#[test]
fn a_tag_on_a_step_is_not_enough() {
    // Steps can be added without it; the rule is "every request", checked where it is certain.
    refused(
        &scenario("", "", "X-Load-Test: flashcrowd", ""),
        &[],
        "X-Load-Test",
    );
}

#[test]
fn the_wrong_tag_header_is_refused() {
    refused(
        &scenario(
            "X-Load-Test: flashcrowd",
            "",
            "",
            "safety: { tag_header: X-Shadow-Traffic }",
        ),
        &[],
        "X-Shadow-Traffic",
    );
}

#[test]
fn an_empty_tag_value_is_refused() {
    // `X-Load-Test: ""` carries no tag a target could route on.
    refused(
        &scenario("X-Load-Test: \"\"", "", "", ""),
        &[],
        "X-Load-Test",
    );
}

#[test]
fn an_abbreviated_override_flag_is_not_the_override() {
    // clap must not accept a prefix of the long flag.
    for flag in ["--i-know", "--i-know-this", "--untagged"] {
        refused(&scenario("", "", "", ""), &[flag], "");
    }
}

#[test]
fn an_environment_variable_does_not_override() {
    let server = HostileServer::start(support::hostile::Fault::Healthy);
    let target = format!("http://0.0.0.0:{}", server.addr.port());
    let sc = Scenario::new(&scenario("", "", "", ""));
    let done = support::hostile::run_with_env(
        &[
            "run",
            sc.file.to_str().unwrap(),
            "--target",
            &target,
            "--out",
            sc.out.to_str().unwrap(),
            "--quiet",
        ],
        &[
            ("FLASHCROWD_I_KNOW_THIS_IS_UNTAGGED", "true"),
            ("FLASHCROWD_UNTAGGED_OK", "1"),
        ],
        Duration::from_secs(20),
    );
    assert_eq!(done.code, Some(2), "{}", done.output());
    assert!(done.elapsed < REFUSAL_LIMIT, "{}", done.output());
    assert!(server.heads().is_empty());
}

#[test]
fn user_info_in_a_refused_target_does_not_leak() {
    let server = HostileServer::start(support::hostile::Fault::Healthy);
    let target = format!("http://admin:hunter2secret@0.0.0.0:{}", server.addr.port());
    let done = refused_at(&scenario("", "", "", ""), &target, &[], "X-Load-Test");
    assert!(server.heads().is_empty());
    assert!(
        !done.stderr.contains("hunter2secret"),
        "the refusal prints the password\n{}",
        done.output()
    );
}

#[test]
fn loopback_needs_no_tag_and_the_override_flag_works_there() {
    // Loopback is exempt, so the override can be exercised without leaving this machine.
    let server = HostileServer::start(support::hostile::Fault::Healthy);
    let sc = Scenario::new(&scenario("", "", "", ""));
    let done = sc.run(&server.url(), &[], Duration::from_secs(30));
    assert_eq!(done.code, Some(0), "{}", done.output());
    let done = sc.run(
        &server.url(),
        &["--i-know-this-is-untagged"],
        Duration::from_secs(30),
    );
    assert_eq!(done.code, Some(0), "{}", done.output());
    // Also `localhost` by name.
    let done = sc.run(
        &format!("http://localhost:{}", server.addr.port()),
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(done.code, Some(0), "{}", done.output());
}
