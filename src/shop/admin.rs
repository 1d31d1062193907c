//! The shop's drill switches, for rehearsing contingency plans under load (scenario `actions:`):
//!
//! - `POST /admin/fail?for=10s`: every API request answers 503 `{"error":"system busy"}` for that
//!   long (a failover in progress); counted in `/stats` as `drill_failures`;
//! - `POST /admin/slow?ms=200`: every API request takes that much longer (a degraded backend);
//! - `POST /admin/recover`: both off at once.
//!
//! Each answers 200 with the state in force: `{"failing_for_ms":N,"slow_ms":N}`.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The switches.
#[derive(Default)]
pub(crate) struct Drill {
    failing_until: Mutex<Option<Instant>>,
    slow_ms: AtomicU64,
}

/// The longest a switch may be set for (a typo must not break the shop for a day).
const MAX: Duration = Duration::from_secs(3600);

impl Drill {
    /// Is the shop failing now?
    pub(crate) fn failing(&self) -> bool {
        let mut f = self.failing_until.lock().unwrap_or_else(|e| e.into_inner());
        match *f {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                *f = None;
                false
            }
            None => false,
        }
    }

    /// The extra time each request takes now.
    pub(crate) fn slowdown(&self) -> Duration {
        Duration::from_millis(self.slow_ms.load(Ordering::Relaxed))
    }

    fn state(&self) -> Response {
        let left = self
            .failing_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|u| u.saturating_duration_since(Instant::now()).as_millis() as u64)
            .unwrap_or(0);
        Json(json!({ "failing_for_ms": left, "slow_ms": self.slow_ms.load(Ordering::Relaxed) }))
            .into_response()
    }
}

fn param<'a>(q: &'a Option<String>, key: &str) -> Option<&'a str> {
    q.as_deref()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn bad(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": msg }))).into_response()
}

type S = State<Arc<super::routes::Shop>>;

pub(crate) async fn fail(State(shop): S, RawQuery(q): RawQuery) -> Response {
    let Some(v) = param(&q, "for") else {
        return bad("give the length: /admin/fail?for=10s".into());
    };
    let d = match crate::scenario::units::parse_duration(v) {
        Ok(d) if d <= MAX => d,
        Ok(_) => return bad(format!("`for={v}` is longer than an hour")),
        Err(e) => return bad(format!("`for={v}`: {e}")),
    };
    *shop
        .drill
        .failing_until
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + d);
    shop.drill.state()
}

pub(crate) async fn slow(State(shop): S, RawQuery(q): RawQuery) -> Response {
    let Some(v) = param(&q, "ms") else {
        return bad("give the extra time: /admin/slow?ms=200".into());
    };
    match v.parse::<u64>() {
        Ok(ms) if ms <= MAX.as_millis() as u64 => shop.drill.slow_ms.store(ms, Ordering::Relaxed),
        _ => {
            return bad(format!(
                "`ms={v}` is not a whole number of milliseconds up to 3600000"
            ))
        }
    }
    shop.drill.state()
}

pub(crate) async fn recover(State(shop): S) -> Response {
    *shop
        .drill
        .failing_until
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = None;
    shop.drill.slow_ms.store(0, Ordering::Relaxed);
    shop.drill.state()
}
