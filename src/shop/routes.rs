//! The shop's HTTP API: the router, one handler per endpoint, request-body parsing with JSON
//! errors (a bad request never panics; it gets a 4xx with `{"error": "..."}`), and the catalogue
//! of 10,000 items derived from their ids (nothing stored).

use super::capacity::Capacity;
use super::stats::{Counters, Route};
use super::ShopConfig;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// SKU ids run 1..=ITEMS.
pub const ITEMS: u64 = 10_000;
/// Items per catalogue page.
pub const PAGE_SIZE: u64 = 20;
/// The header that marks test traffic.
pub const TAG_HEADER: &str = "x-load-test";

/// One shop's state: config, capacity, counters, id sequences, red-packet stock.
pub(crate) struct Shop {
    pub(crate) config: ShopConfig,
    pub(crate) capacity: Capacity,
    pub(crate) counters: Counters,
    pub(crate) streams: super::streams::StreamCounters,
    next_cart: AtomicU64,
    next_order: AtomicU64,
    next_deposit: AtomicU64,
    redpackets_left: AtomicU64,
    redpackets_won: AtomicU64,
    /// The drill switches (`/admin/fail`, `/admin/slow`, `/admin/recover`).
    pub(crate) drill: super::admin::Drill,
}

impl Shop {
    pub(crate) fn new(config: ShopConfig) -> std::io::Result<Shop> {
        Ok(Shop {
            capacity: Capacity::new(config.capacity, config.queue)?,
            counters: Counters::default(),
            streams: Default::default(),
            next_cart: AtomicU64::new(1),
            next_order: AtomicU64::new(1),
            next_deposit: AtomicU64::new(1),
            redpackets_left: AtomicU64::new(config.redpackets),
            redpackets_won: AtomicU64::new(0),
            drill: Default::default(),
            config,
        })
    }

    pub(crate) fn stats(&self) -> super::ShopStats {
        self.counters.snapshot(
            self.redpackets_left.load(Ordering::Relaxed),
            self.capacity.in_flight() as u64,
            self.capacity.queued() as u64,
            self.streams.snapshot(),
        )
    }

    pub(crate) fn reset(&self) {
        self.counters.reset();
        self.streams.reset();
        self.redpackets_left
            .store(self.config.redpackets, Ordering::Relaxed);
    }

    /// Counts the request; returns whether it is tagged test traffic.
    pub(crate) fn receive(&self, route: Route, headers: &HeaderMap) -> bool {
        let tagged = headers.contains_key(TAG_HEADER);
        let ua = headers
            .get(axum::http::header::USER_AGENT)
            .map(|v| v.as_bytes());
        self.counters.request(route, ua, tagged);
        tagged
    }

    /// Passes the capacity model: waits for a permit and works for the service time of `base`.
    /// `Err` is the 503 to answer when capacity and queue are full.
    async fn serve_for(&self, base: Duration) -> Result<(), Reject> {
        if self.drill.failing() {
            self.counters.drill_failure();
            return Err(Reject(
                StatusCode::SERVICE_UNAVAILABLE,
                "system busy".into(),
            ));
        }
        let slow = self.drill.slowdown();
        if !slow.is_zero() {
            tokio::time::sleep(slow).await;
        }
        match self.capacity.enter().await {
            Some(slot) => {
                self.capacity.work(&slot, base).await;
                Ok(())
            }
            None => {
                self.counters.busy();
                Err(Reject(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "system busy, please retry".into(),
                ))
            }
        }
    }

    fn full(&self) -> Duration {
        Duration::from_micros(self.config.service_us)
    }

    fn read(&self) -> Duration {
        Duration::from_micros(self.config.service_us) / 10
    }
}

type S = State<Arc<Shop>>;
type Body = Result<Bytes, BytesRejection>;

pub(crate) fn router(shop: Arc<Shop>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/stats", get(stats))
        .route("/stats/reset", post(reset))
        .route("/api/items", get(items))
        .route("/api/items/{id}", get(item))
        .route("/api/cart", post(cart))
        .route("/api/orders", post(orders))
        .route("/api/redpacket/grab", post(grab))
        .route("/api/presale/deposit", post(deposit))
        .route("/api/assistant", get(super::streams::assistant))
        .route("/live/{room}", get(super::streams::live))
        .route("/admin/fail", post(super::admin::fail))
        .route("/admin/slow", post(super::admin::slow))
        .route("/admin/recover", post(super::admin::recover))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shop)
}

pub(crate) fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({ "error": msg }))).into_response()
}

/// A refused request: the status and the message of its `{"error": ...}` body.
struct Reject(StatusCode, String);

impl Reject {
    fn bad(msg: impl Into<String>) -> Reject {
        Reject(StatusCode::BAD_REQUEST, msg.into())
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        error(self.0, &self.1)
    }
}

async fn stats(State(shop): S) -> Response {
    Json(shop.stats()).into_response()
}

async fn reset(State(shop): S) -> Response {
    shop.reset();
    Json(json!({ "status": "reset" })).into_response()
}

async fn not_found(State(shop): S, headers: HeaderMap) -> Response {
    shop.receive(Route::Other, &headers);
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

async fn method_not_allowed(State(shop): S, headers: HeaderMap) -> Response {
    shop.receive(Route::Other, &headers);
    error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

const KINDS: [&str; 16] = [
    "Phone",
    "Earbuds",
    "Down jacket",
    "Rice cooker",
    "Sneakers",
    "Face cream",
    "Tea set",
    "Backpack",
    "Smart watch",
    "Baby formula",
    "Robot vacuum",
    "Silk scarf",
    "Keyboard",
    "Air fryer",
    "Lipstick",
    "Power bank",
];

/// A cheap, fixed scramble of an id, so prices and stock look varied but never change.
fn mix(id: u64) -> u64 {
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 32)
}

fn item_name(id: u64) -> String {
    format!("{} #{id}", KINDS[(id % KINDS.len() as u64) as usize])
}

/// Price in cents: 9.90 to 2,999.90, ending in .90.
fn item_price(id: u64) -> u64 {
    990 + (mix(id) % 2990) * 100
}

fn item_stock(id: u64) -> u64 {
    mix(id ^ 0x5bd1e995) % 1000
}

fn item_summary(id: u64) -> Value {
    json!({ "id": id, "name": item_name(id), "price": item_price(id) })
}

async fn items(State(shop): S, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    shop.receive(Route::Items, &headers);
    let mut page = 1u64;
    for pair in q.as_deref().unwrap_or("").split('&') {
        if let Some(v) = pair.strip_prefix("page=") {
            match v.parse::<u64>() {
                Ok(p) if p >= 1 => page = p,
                _ => return error(StatusCode::BAD_REQUEST, "page must be a positive integer"),
            }
        }
    }
    if let Err(busy) = shop.serve_for(shop.read()).await {
        return busy.into_response();
    }
    let first = (page - 1).saturating_mul(PAGE_SIZE) + 1;
    let list: Vec<Value> = (first..first.saturating_add(PAGE_SIZE))
        .filter(|id| *id <= ITEMS)
        .map(item_summary)
        .collect();
    Json(json!({ "page": page, "items": list })).into_response()
}

async fn item(State(shop): S, headers: HeaderMap, Path(id): Path<String>) -> Response {
    shop.receive(Route::Item, &headers);
    let id = match id.parse::<u64>() {
        Ok(id) if (1..=ITEMS).contains(&id) => id,
        _ => return error(StatusCode::NOT_FOUND, "no such item"),
    };
    if let Err(busy) = shop.serve_for(shop.read()).await {
        return busy.into_response();
    }
    let mut v = item_summary(id);
    v["stock"] = json!(item_stock(id));
    Json(v).into_response()
}

/// A JSON object body, or the 4xx that says why not.
fn object(body: Body) -> Result<Map<String, Value>, Reject> {
    let bytes = body.map_err(|e| Reject(e.status(), e.body_text()))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Reject::bad("body must be a JSON object")),
        Err(e) => Err(Reject::bad(format!("body is not valid JSON: {e}"))),
    }
}

fn missing(field: &str) -> Reject {
    Reject::bad(format!("missing field \"{field}\""))
}

/// A SKU id: an integer or a string of digits; out of range is 404 "no such item".
fn sku(m: &Map<String, Value>) -> Result<u64, Reject> {
    let id = match m.get("sku") {
        None | Some(Value::Null) => return Err(missing("sku")),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match id {
        Some(id) if (1..=ITEMS).contains(&id) => Ok(id),
        Some(_) => Err(Reject(StatusCode::NOT_FOUND, "no such item".into())),
        None => Err(Reject::bad(
            "\"sku\" must be an integer id (or a string of digits)",
        )),
    }
}

fn text<'a>(m: &'a Map<String, Value>, field: &str) -> Result<&'a str, Reject> {
    match m.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(Reject::bad(format!(
            "\"{field}\" must be a non-empty string"
        ))),
    }
}

async fn cart(State(shop): S, headers: HeaderMap, body: Body) -> Response {
    shop.receive(Route::Cart, &headers);
    let parsed = object(body).and_then(|m| {
        let sku = sku(&m)?;
        let qty = match m.get("qty") {
            None | Some(Value::Null) => Some(1),
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
            Some(_) => None,
        };
        match qty {
            Some(q @ 1..=99) => Ok((sku, q)),
            _ => Err(Reject::bad("\"qty\" must be an integer from 1 to 99")),
        }
    });
    let (sku, qty) = match parsed {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    if let Err(busy) = shop.serve_for(shop.full()).await {
        return busy.into_response();
    }
    let id = shop.next_cart.fetch_add(1, Ordering::Relaxed);
    Json(json!({ "cart": { "id": format!("c{id}"), "sku": sku, "qty": qty } })).into_response()
}

async fn orders(State(shop): S, headers: HeaderMap, body: Body) -> Response {
    let tagged = shop.receive(Route::Orders, &headers);
    let parsed = object(body).and_then(|m| {
        let cart = match m.get("cart") {
            None | Some(Value::Null) => return Err(missing("cart")),
            Some(Value::String(s)) if s.starts_with('c') => s.clone(),
            Some(_) => return Err(Reject::bad("unknown cart")),
        };
        text(&m, "user")?;
        Ok(cart)
    });
    if let Err(r) = parsed {
        return r.into_response();
    }
    if let Err(busy) = shop.serve_for(shop.full()).await {
        return busy.into_response();
    }
    let id = shop.next_order.fetch_add(1, Ordering::Relaxed);
    shop.counters.order(tagged, false);
    let body = json!({
        "status": "created",
        "order": { "id": format!("o{id}"), "shadow": tagged },
    });
    (StatusCode::CREATED, Json(body)).into_response()
}

async fn grab(State(shop): S, headers: HeaderMap, body: Body) -> Response {
    shop.receive(Route::Grab, &headers);
    if let Err(r) = object(body).and_then(|m| text(&m, "user").map(|_| ())) {
        return r.into_response();
    }
    if let Err(busy) = shop.serve_for(shop.full()).await {
        return busy.into_response();
    }
    let took = shop
        .redpackets_left
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    if took.is_err() {
        return (StatusCode::GONE, Json(json!({ "status": "sold_out" }))).into_response();
    }
    let k = shop.redpackets_won.fetch_add(1, Ordering::Relaxed);
    // 0.01 to 88.88 yuan, most of them small.
    let r = mix(k ^ 0x11_11) % 10_000;
    let amount = 1 + (r * r) / 11_251;
    (
        StatusCode::OK,
        Json(json!({ "status": "won", "amount": amount })),
    )
        .into_response()
}

async fn deposit(State(shop): S, headers: HeaderMap, body: Body) -> Response {
    let tagged = shop.receive(Route::Deposit, &headers);
    let parsed = object(body).and_then(|m| {
        let sku = sku(&m)?;
        text(&m, "user")?;
        Ok(sku)
    });
    if let Err(r) = parsed {
        return r.into_response();
    }
    if let Err(busy) = shop.serve_for(shop.full()).await {
        return busy.into_response();
    }
    let id = shop.next_deposit.fetch_add(1, Ordering::Relaxed);
    shop.counters.order(tagged, true);
    let body = json!({ "status": "deposited", "deposit": { "id": format!("d{id}") } });
    (StatusCode::CREATED, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_fixed_and_in_range() {
        for id in [1, 2, 42, 9_999, ITEMS] {
            assert_eq!(item_price(id), item_price(id));
            assert!((990..=299_990).contains(&item_price(id)));
            assert_eq!(item_price(id) % 100, 90);
            assert!(item_stock(id) < 1000);
        }
        assert_eq!(item_name(42), "Robot vacuum #42");
    }

    #[test]
    fn redpacket_amounts_are_in_range() {
        for k in 0..10_000u64 {
            let r = mix(k ^ 0x11_11) % 10_000;
            let amount = 1 + (r * r) / 11_251;
            assert!((1..=8_888).contains(&amount), "{amount}");
        }
    }
}
