//! A segment's live line shows its own share of the plan beside the whole plan's value, so a
//! pod of an Indexed Job does not look as if it fell two thirds short.

mod support;

use std::time::Duration;
use support::server::TestServer;
use support::Scenario;

#[test]
fn a_segments_live_line_shows_its_share_of_the_plan() {
    let server = TestServer::start();
    let yaml = r#"
name: segment-share
journeys:
  read:
    share: 100%
    steps: [ { get: /a } ]
load:
  stages: [ { rate: 30/s, for: 10s } ]
  arrivals: uniform
"#;
    let sc = Scenario::new(yaml);
    let done = sc.run(
        &server.url(),
        &["--segment", "2/3"],
        Duration::from_secs(30),
    );
    assert_eq!(done.code, Some(0), "{}", done.output());
    // Without a terminal, under --quiet, the live view prints a line every 10 s: the tenth
    // second's.
    let line = done
        .stderr
        .lines()
        .find(|l| l.starts_with("t=  10s/10s"))
        .unwrap_or_else(|| panic!("no live line for second 10\n{}", done.output()));
    assert!(
        line.contains(" planned=10/s of 30/s (segment 2/3) started="),
        "{line}"
    );
    // The whole plan (no --segment) shows the plan's value alone.
    let sc = Scenario::new(yaml);
    let done = sc.run(&server.url(), &[], Duration::from_secs(30));
    let line = done
        .stderr
        .lines()
        .find(|l| l.starts_with("t=  10s/10s"))
        .unwrap_or_else(|| panic!("no live line for second 10\n{}", done.output()));
    assert!(line.contains(" planned=30/s started="), "{line}");
}
