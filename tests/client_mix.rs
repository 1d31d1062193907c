//! The client mix as it came out, per phase and per second: report.json `phases[].clients` and
//! `series[].clients`, report.html's and summary.md's phase tables and report.html's client-mix
//! chart. A mix that shifts at the peak (50 % phones before, 90 % at the peak) shows the shift in
//! the requests each client sent in each phase; a plan that switches from phones to PCs counts
//! each client's requests exactly, second by second.

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use std::time::Duration;
use support::{count, Scenario};

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

/// Phones before the peak, PCs at it, every arrival planned (uniform, 100/s for 2 s a phase):
/// 200 sessions of one request each per client, exactly.
fn switch() -> String {
    MIX.replace(
        "  phone: { share: 50%, during: { peak: 90% } }\n  pc: { share: 50%, during: { peak: 10% } }",
        "  phone: { share: 100%, during: { peak: 0% } }\n  pc: { share: 0%, during: { peak: 100% } }",
    )
}

#[test]
fn each_second_reports_the_requests_of_each_client_and_they_add_up() {
    let shop = start_background(ShopConfig::default()).expect("start the shop");
    let switch = switch();
    assert_ne!(switch, MIX);
    let sc = Scenario::new(&switch);
    let r = sc.run_passing(&shop.url(), &[], Duration::from_secs(60));
    support::python::assert_valid_report(&sc.out);
    let series = r["series"].as_array().unwrap();
    let of = |p: &serde_json::Value, client: &str| p["clients"][client].as_u64().unwrap_or(0);
    for p in series {
        // Every request of the second is some client's.
        let sum: u64 = p["clients"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(sum, p["requests"].as_u64().unwrap(), "{p}");
        // Before the peak only phones arrive, at it only PCs. A second's requests are those a
        // shard recorded before it closed the second, which a loaded shard does late: a request
        // answered just after a boundary may count in the second before it. So second 0 (a
        // second away from the first PC) has no PC at all, and seconds 1 and 3 are each 90 %
        // the phase's client.
        let (t, n) = (count(p, "/t"), count(p, "/requests"));
        match t {
            0 => assert_eq!(of(p, "pc"), 0, "{p}"),
            1 => assert!(of(p, "phone") * 10 >= n * 9, "{p}"),
            3 => assert!(of(p, "pc") * 10 >= n * 9, "{p}"),
            _ => {}
        }
    }
    // The plan's 200 sessions a client, exactly, over the seconds.
    let total = |client: &str| series.iter().map(|p| of(p, client)).sum::<u64>();
    assert_eq!((total("phone"), total("pc")), (200, 200), "{series:#?}");
    assert_eq!(
        support::named(&r, "phases", "before")["clients"],
        serde_json::json!({"phone": 200})
    );
    assert_eq!(
        support::named(&r, "phases", "peak")["clients"],
        serde_json::json!({"pc": 200})
    );

    // report.html draws the mix over time; charts/clients.png is written beside it.
    let html = std::fs::read_to_string(sc.out.join("report.html")).unwrap();
    assert!(
        html.contains("Client mix over time (share of requests)"),
        "report.html's client-mix chart"
    );
    assert!(sc.out.join("charts/clients.png").is_file());

    // `flashcrowd report` re-renders report.json unchanged, the mix per second included.
    let before = std::fs::read(sc.out.join("report.json")).unwrap();
    let again = support::Spawned::start(&["report", sc.out.to_str().unwrap(), "--quiet"])
        .wait(Duration::from_secs(60));
    assert_eq!(again.code, Some(0), "{}", again.output());
    assert_eq!(before, std::fs::read(sc.out.join("report.json")).unwrap());
}
