//! The client mix reaches the target: an 80/20 mobile/PC split shows in the shop's per-User-Agent
//! counts within ±3 points, and the report's per-client numbers agree with what the shop saw.

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use std::time::Duration;
use support::{count, named, Scenario};

const MIX: &str = r#"
name: client-mix
target: http://127.0.0.1:9
clients:
  mobile:
    share: 80%
    headers: { User-Agent: "M" }
  pc:
    share: 20%
    headers: { User-Agent: "P" }
journeys:
  browse:
    share: 100%
    steps:
      - get: /api/items?page=2
load:
  stages:
    - { rate: 300/s, for: 5s }
  arrivals: uniform
"#;

#[test]
fn an_80_20_client_mix_shows_in_the_targets_user_agent_counts() {
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    let sc = Scenario::new(MIX);
    let report = sc.run_passing(&shop.url(), &[], Duration::from_secs(45));
    let stats = shop.stats();
    let ua = |k: &str| stats.user_agents.get(k).copied().unwrap_or(0);
    let (m, p) = (ua("M"), ua("P"));
    assert_eq!(
        m + p,
        1500,
        "300/s for 5 s is 1,500 sessions of one request each: {:?}",
        stats.user_agents
    );
    let mobile = m as f64 / (m + p) as f64;
    eprintln!("User-Agent M {m}, P {p}: {:.2} % mobile", mobile * 100.0);
    assert!(
        (0.77..=0.83).contains(&mobile),
        "mobile share {:.1} % (M {m}, P {p}), want 80 % ± 3",
        mobile * 100.0
    );
    // The report says the same as the target.
    assert_eq!(count(named(&report, "clients", "mobile"), "/requests"), m);
    assert_eq!(count(named(&report, "clients", "pc"), "/requests"), p);
    assert_eq!(count(named(&report, "clients", "mobile"), "/sessions"), m);
    assert_eq!(count(named(&report, "clients", "pc"), "/sessions"), p);
}
