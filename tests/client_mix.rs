//! The client mix as it came out, per phase: report.json `phases[].clients`, report.html's and
//! summary.md's phase tables. A mix that shifts at the peak (50 % phones before, 90 % at the peak)
//! shows the shift in the requests each client sent in each phase.

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use std::time::Duration;
use support::Scenario;

const MIX: &str = r#"
name: client-mix
target: http://127.0.0.1:9
clients:
  phone: { share: 50%, during: { peak: 90% } }
  pc: { share: 50%, during: { peak: 10% } }
journeys:
  look:
    share: 100%
    steps:
      - get: /api/items/1
load:
  stages:
    - { rate: 100/s, for: 2s, name: before }
    - { rate: 100/s, for: 2s, name: peak }
  arrivals: uniform
  seed: 7
"#;

#[test]
fn each_phase_reports_the_requests_of_each_client() {
    let shop = start_background(ShopConfig::default()).expect("start the shop");
    let sc = Scenario::new(MIX);
    let r = sc.run_passing(&shop.url(), &[], Duration::from_secs(60));
    support::python::assert_valid_report(&sc.out);
    let share = |phase: &str, client: &str| {
        let p = support::named(&r, "phases", phase);
        let n = p["clients"][client].as_u64().unwrap_or(0) as f64;
        let total: u64 = p["clients"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        // The mix accounts for every request of the phase.
        assert_eq!(total, p["requests"].as_u64().unwrap(), "{p}");
        n / total as f64
    };
    // 200 sessions a phase, clients picked by share: within 10 points of the plan (binomial
    // standard deviation 3.5 points at 50 %, 2.1 at 90 %).
    let before = share("before", "phone");
    let peak = share("peak", "phone");
    assert!(
        (0.40..=0.60).contains(&before),
        "phones before the peak: {before}"
    );
    assert!((0.80..=1.0).contains(&peak), "phones at the peak: {peak}");

    let html = std::fs::read_to_string(sc.out.join("report.html")).unwrap();
    assert!(
        html.contains("client mix (share of requests)"),
        "report.html phase table"
    );
    let pct = |v: f64| format!("phone {:.0}%", v * 100.0);
    assert!(html.contains(&pct(peak)), "report.html shows {}", pct(peak));
    let md = std::fs::read_to_string(sc.out.join("summary.md")).unwrap();
    assert!(
        md.contains("| phase | requests | p99 | client mix |"),
        "{md}"
    );
    assert!(md.contains(&pct(before)), "{md}");
}
