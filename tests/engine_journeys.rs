//! Journeys against the embedded shop: a captured value feeds a later template, failed
//! expectations are counted by kind, and an expected "sold out" is not an error.

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use serde_json::Value;
use std::time::Duration;
use support::{count, named, Scenario};

const LIMIT: Duration = Duration::from_secs(40);

/// Cart then order: the order carries the cart id captured from the cart's answer. The shop
/// refuses an order whose cart id does not start with "c" (400), so an order only counts at the
/// shop if the capture reached the template.
const CART_THEN_ORDER: &str = r#"
name: capture-flow
target: http://127.0.0.1:9
journeys:
  buy:
    share: 100%
    steps:
      - post: /api/cart
        name: cart
        json: { sku: 1, qty: 1 }
        capture: { cart_id: $.cart.id }
      - post: /api/orders
        name: order
        json: { cart: "{{ cart_id }}", user: "u{{ user() }}" }
        expect: { status: [201], json: { $.status: created } }
load:
  stages:
    - { rate: 50/s, for: 2s }
  arrivals: uniform
"#;

/// Three journeys, each ending in one kind of failure.
const FAILURES: &str = r#"
name: failure-kinds
target: http://127.0.0.1:9
journeys:
  wrong-status:
    share: 34%
    steps:
      - post: /api/orders
        name: wrong-status
        json: { cart: c1, user: u1 }
        expect: { status: [200] }
  wrong-json:
    share: 33%
    steps:
      - post: /api/orders
        name: wrong-json
        json: { cart: c1, user: u1 }
        expect: { status: [201], json: { $.status: shipped } }
  missing:
    share: 33%
    steps:
      - get: /api/items/99999
        name: missing
load:
  stages:
    - { rate: 60/s, for: 1s }
  arrivals: uniform
"#;

const GRAB: &str = r#"
name: red-packets
target: http://127.0.0.1:9
journeys:
  grab:
    share: 100%
    steps:
      - post: /api/redpacket/grab
        name: grab
        json: { user: "u{{ user() }}" }
        expect: { status: [200, 410] }
load:
  stages:
    - { rate: 30/s, for: 1s }
  arrivals: uniform
"#;

/// The entry's `errors` map, zero counts left out, as (kind, n) sorted by kind.
fn errors(entry: &Value) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = entry["errors"]
        .as_object()
        .unwrap_or_else(|| panic!("no errors map: {entry}"))
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .filter(|(_, n)| *n > 0)
        .collect();
    v.sort();
    v
}

/// The entry's `status` map as (code, n) sorted by code.
fn statuses(entry: &Value) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = entry["status"]
        .as_object()
        .unwrap_or_else(|| panic!("no status map: {entry}"))
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .filter(|(_, n)| *n > 0)
        .collect();
    v.sort();
    v
}

#[test]
fn a_captured_cart_id_feeds_the_order_template() {
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    let sc = Scenario::new(CART_THEN_ORDER);
    let report = sc.run_passing(&shop.url(), &[], LIMIT);
    assert_eq!(count(&report, "/totals/errors"), 0, "{report:#}");
    let journey = named(&report, "journeys", "buy");
    assert_eq!(count(journey, "/sessions"), 100, "{journey}");
    assert_eq!(count(journey, "/completed"), 100, "{journey}");
    let stats = shop.stats();
    assert_eq!(stats.endpoints["POST /api/cart"], 100);
    assert_eq!(stats.endpoints["POST /api/orders"], 100);
    assert_eq!(
        stats.orders + stats.shadow_orders,
        100,
        "every completed session placed an order: {stats:?}"
    );
    assert_eq!(
        statuses(named(&report, "requests", "order")),
        [("201".to_string(), 100)]
    );
}

#[test]
fn failed_expectations_are_counted_by_kind() {
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    let sc = Scenario::new(FAILURES);
    let done = sc.run(&shop.url(), &[], LIMIT);
    // No thresholds: errors alone do not fail the run.
    assert_eq!(done.code, Some(0), "{}", done.output());
    let report = sc.report(&done);
    let mut total = 0;
    for (name, kind, status) in [
        ("wrong-status", "expect_failed", "201"),
        ("wrong-json", "expect_failed", "201"),
        ("missing", "http_4xx", "404"),
    ] {
        let entry = named(&report, "requests", name);
        let n = count(entry, "/count");
        assert!(n > 0, "no session took {name}: {report:#}");
        assert_eq!(errors(entry), [(kind.to_string(), n)], "{name}: {entry}");
        assert_eq!(
            statuses(entry),
            [(status.to_string(), n)],
            "{name}: {entry}"
        );
        let journey = named(&report, "journeys", name);
        assert_eq!(count(journey, "/errors"), n, "{journey}");
        assert_eq!(count(journey, "/completed"), 0, "{journey}");
        total += n;
    }
    assert_eq!(total, 60);
    assert_eq!(count(&report, "/totals/requests"), 60);
    assert_eq!(count(&report, "/totals/errors"), 60);
}

#[test]
fn an_expected_sold_out_is_not_an_error() {
    let shop = start_background(ShopConfig {
        redpackets: 5,
        ..ShopConfig::default()
    })
    .expect("the shop starts");
    let sc = Scenario::new(GRAB);
    let report = sc.run_passing(&shop.url(), &[], LIMIT);
    let grab = named(&report, "requests", "grab");
    assert_eq!(
        statuses(grab),
        [("200".to_string(), 5), ("410".to_string(), 25)],
        "{grab}"
    );
    assert_eq!(errors(grab), [], "{grab}");
    assert_eq!(count(&report, "/totals/errors"), 0, "{report:#}");
    assert_eq!(count(named(&report, "journeys", "grab"), "/completed"), 30);
    assert_eq!(shop.stats().redpackets_left, 0);
}
