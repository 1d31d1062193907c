//! What the shop received: request counts per route template and per User-Agent, tagged versus
//! untagged traffic, orders versus shadow orders, busy rejections. Counters are atomics; the one
//! map (User-Agents) sits behind a mutex and is capped, so hostile input cannot grow memory
//! without bound.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Distinct User-Agents tracked by name; the rest are counted under [`OTHER`].
pub const MAX_USER_AGENTS: usize = 1000;
/// Longest User-Agent kept; longer ones are cut (on a character boundary).
pub const MAX_USER_AGENT_LEN: usize = 200;
/// The key for User-Agents past the cap, and for requests that matched no route.
pub const OTHER: &str = "other";
/// The key for requests without a User-Agent header.
pub const NO_USER_AGENT: &str = "(none)";

/// The counted routes, by template. `/health`, `/stats` and `/stats/reset` are not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Items,
    Item,
    Cart,
    Orders,
    Grab,
    Deposit,
    Assistant,
    Live,
    /// No route matched (unknown path or method).
    Other,
}

const ROUTES: [(Route, &str); 9] = [
    (Route::Items, "GET /api/items"),
    (Route::Item, "GET /api/items/{id}"),
    (Route::Cart, "POST /api/cart"),
    (Route::Orders, "POST /api/orders"),
    (Route::Grab, "POST /api/redpacket/grab"),
    (Route::Deposit, "POST /api/presale/deposit"),
    (Route::Assistant, "GET /api/assistant"),
    (Route::Live, "GET /live/{room}"),
    (Route::Other, OTHER),
];

/// A snapshot of the counters, as `GET /stats` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopStats {
    /// Requests counted (everything but `/health`, `/stats`, `/stats/reset`).
    pub requests: u64,
    /// Per route template (`"GET /api/items/{id}"`); every route is listed, `"other"` only if
    /// some request matched no route.
    pub endpoints: IndexMap<String, u64>,
    /// Per User-Agent, most frequent first; past [`MAX_USER_AGENTS`] distinct ones, `"other"`.
    pub user_agents: IndexMap<String, u64>,
    /// Requests carrying an `X-Load-Test` header.
    pub tagged: u64,
    pub untagged: u64,
    /// Orders and presale deposits (a deposit is a pre-order) from untagged requests.
    pub orders: u64,
    /// Orders and presale deposits from tagged requests, kept in "shadow storage".
    pub shadow_orders: u64,
    /// Of `orders`, the presale deposits.
    pub deposits: u64,
    /// Of `shadow_orders`, the presale deposits.
    pub shadow_deposits: u64,
    /// Requests refused with 503 because capacity and queue were full.
    pub busy_rejections: u64,
    /// Requests answered 503 "system busy" because `/admin/fail` said so (a drill).
    #[serde(default)]
    pub drill_failures: u64,
    /// Red packets still in stock.
    pub redpackets_left: u64,
    /// Gauge: requests in service now.
    pub in_flight: u64,
    /// Gauge: requests waiting for capacity now.
    pub queued: u64,
    /// The streaming endpoints (`/api/assistant`).
    #[serde(default)]
    pub streams: super::streams::StreamStats,
}

#[derive(Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    endpoints: [AtomicU64; ROUTES.len()],
    user_agents: Mutex<HashMap<Box<str>, u64>>,
    other_agents: AtomicU64,
    tagged: AtomicU64,
    untagged: AtomicU64,
    orders: AtomicU64,
    shadow_orders: AtomicU64,
    deposits: AtomicU64,
    shadow_deposits: AtomicU64,
    busy_rejections: AtomicU64,
    drill_failures: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// Counts one received request.
    pub(crate) fn request(&self, route: Route, user_agent: Option<&[u8]>, tagged: bool) {
        bump(&self.requests);
        let i = ROUTES
            .iter()
            .position(|(r, _)| *r == route)
            .unwrap_or(ROUTES.len() - 1);
        bump(&self.endpoints[i]);
        bump(if tagged { &self.tagged } else { &self.untagged });
        let ua = match user_agent {
            None => std::borrow::Cow::Borrowed(NO_USER_AGENT),
            Some(b) => String::from_utf8_lossy(b),
        };
        let ua = truncate(&ua, MAX_USER_AGENT_LEN);
        let mut map = self.user_agents.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(ua) {
            *n += 1;
        } else if map.len() < MAX_USER_AGENTS {
            map.insert(ua.into(), 1);
        } else {
            drop(map);
            bump(&self.other_agents);
        }
    }

    pub(crate) fn busy(&self) {
        bump(&self.busy_rejections);
    }

    pub(crate) fn drill_failure(&self) {
        bump(&self.drill_failures);
    }

    pub(crate) fn order(&self, shadow: bool, deposit: bool) {
        bump(if shadow {
            &self.shadow_orders
        } else {
            &self.orders
        });
        if deposit {
            bump(if shadow {
                &self.shadow_deposits
            } else {
                &self.deposits
            });
        }
    }

    pub(crate) fn reset(&self) {
        let all = [
            &self.requests,
            &self.other_agents,
            &self.tagged,
            &self.untagged,
            &self.orders,
            &self.shadow_orders,
            &self.deposits,
            &self.shadow_deposits,
            &self.busy_rejections,
            &self.drill_failures,
        ];
        for c in all.into_iter().chain(self.endpoints.iter()) {
            c.store(0, Ordering::Relaxed);
        }
        self.user_agents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub(crate) fn snapshot(
        &self,
        redpackets_left: u64,
        in_flight: u64,
        queued: u64,
        streams: super::streams::StreamStats,
    ) -> ShopStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut endpoints = IndexMap::new();
        for (i, (route, key)) in ROUTES.iter().enumerate() {
            let n = get(&self.endpoints[i]);
            if *route != Route::Other || n > 0 {
                endpoints.insert((*key).to_string(), n);
            }
        }
        let mut agents: Vec<(String, u64)> = self
            .user_agents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        agents.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut user_agents: IndexMap<String, u64> = agents.into_iter().collect();
        let other = get(&self.other_agents);
        if other > 0 {
            *user_agents.entry(OTHER.to_string()).or_insert(0) += other;
        }
        ShopStats {
            requests: get(&self.requests),
            endpoints,
            user_agents,
            tagged: get(&self.tagged),
            untagged: get(&self.untagged),
            orders: get(&self.orders),
            shadow_orders: get(&self.shadow_orders),
            deposits: get(&self.deposits),
            shadow_deposits: get(&self.shadow_deposits),
            busy_rejections: get(&self.busy_rejections),
            drill_failures: get(&self.drill_failures),
            redpackets_left,
            in_flight,
            queued,
            streams,
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_capped() {
        let c = Counters::default();
        for i in 0..MAX_USER_AGENTS + 5 {
            c.request(Route::Items, Some(format!("agent-{i}").as_bytes()), false);
        }
        c.request(Route::Items, Some(b"agent-0"), true);
        let s = c.snapshot(0, 0, 0, Default::default());
        assert_eq!(s.user_agents.len(), MAX_USER_AGENTS + 1);
        assert_eq!(s.user_agents["other"], 5);
        assert_eq!(s.user_agents["agent-0"], 2);
        assert_eq!(s.requests, MAX_USER_AGENTS as u64 + 6);
        assert_eq!((s.tagged, s.untagged), (1, MAX_USER_AGENTS as u64 + 5));
        assert_eq!(s.endpoints["GET /api/items"], MAX_USER_AGENTS as u64 + 6);
        assert!(!s.endpoints.contains_key("other"));
    }

    #[test]
    fn long_and_missing_agents() {
        let c = Counters::default();
        let long = "é".repeat(300);
        c.request(Route::Other, Some(long.as_bytes()), false);
        c.request(Route::Other, None, false);
        let s = c.snapshot(0, 0, 0, Default::default());
        assert_eq!(s.user_agents[&"é".repeat(100)], 1);
        assert_eq!(s.user_agents[NO_USER_AGENT], 1);
        assert_eq!(s.endpoints["other"], 2);
        c.reset();
        let s = c.snapshot(0, 0, 0, Default::default());
        assert_eq!(s.requests, 0);
        assert!(s.user_agents.is_empty());
    }

    #[test]
    fn orders_and_deposits() {
        let c = Counters::default();
        c.order(false, false);
        c.order(true, false);
        c.order(true, true);
        let s = c.snapshot(0, 0, 0, Default::default());
        assert_eq!((s.orders, s.shadow_orders), (1, 2));
        assert_eq!((s.deposits, s.shadow_deposits), (0, 1));
    }
}
