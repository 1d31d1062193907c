//! A target with nothing listening is found out by the probe before any load: exit code 3 and a
//! message that names the target.

mod support;

use std::time::Duration;
use support::Scenario;

const SCENARIO: &str = r#"
name: nobody-home
target: http://127.0.0.1:9
journeys:
  read:
    share: 100%
    steps:
      - get: /api/items/1
load:
  stages:
    - { rate: 100/s, for: 30s }
  arrivals: uniform
"#;

#[test]
fn an_unreachable_target_exits_3_before_any_load_naming_the_target() {
    // A port that was free a moment ago and has nothing listening now.
    let port = {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let target = format!("http://127.0.0.1:{port}");
    let sc = Scenario::new(SCENARIO);
    let done = sc.run(&target, &[], Duration::from_secs(30));
    assert_eq!(done.code, Some(3), "{}", done.output());
    // The plan lasts 30 s; a refusal at the probe takes well under a third of that.
    assert!(done.elapsed < Duration::from_secs(10), "{}", done.output());
    let said = format!("{}{}", done.stderr, done.stdout);
    assert!(
        said.contains(&format!("127.0.0.1:{port}")),
        "the message should name the target\n{}",
        done.output()
    );
    assert!(
        !said.contains("panicked"),
        "a clear error, not a panic\n{}",
        done.output()
    );
}
