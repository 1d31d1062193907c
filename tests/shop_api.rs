//! The embedded shop's HTTP API, end to end on loopback: every endpoint's status and body, red
//! packets selling out at exactly their stock, tagged versus untagged counts and shadow orders,
//! User-Agent counts, the 503 when capacity and queue are full, `/stats/reset`, HTTP/2, and stop.

use flashcrowd::shop::{start_background, ShopConfig, ShopHandle};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn shop(config: ShopConfig) -> ShopHandle {
    start_background(config).expect("the shop starts")
}

/// Sends one request; returns the status and the body (JSON when it parses, else a string).
async fn send(
    c: &reqwest::Client,
    h: &ShopHandle,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = c.request(method, format!("{}{path}", h.url()));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = rb.send().await.expect("the shop answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

async fn get(c: &reqwest::Client, h: &ShopHandle, path: &str) -> (u16, Value) {
    send(c, h, "GET", path, None, &[]).await
}

async fn post(c: &reqwest::Client, h: &ShopHandle, path: &str, body: &str) -> (u16, Value) {
    send(c, h, "POST", path, Some(body), &[]).await
}

/// Polls `cond` until it holds; fails after `limit`.
async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn every_endpoint_answers_with_its_shape() {
    let h = shop(ShopConfig::default());
    let c = client();

    let r = c.get(format!("{}/health", h.url())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");

    let (s, v) = get(&c, &h, "/api/items?page=3").await;
    assert_eq!(s, 200);
    assert_eq!(v["page"], 3);
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 20);
    let ids: Vec<u64> = items.iter().map(|i| i["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (41..=60).collect::<Vec<_>>());
    for i in items {
        let o = i.as_object().unwrap();
        assert_eq!(o.len(), 3, "{i}");
        assert!(i["name"].is_string() && i["price"].is_u64(), "{i}");
    }
    assert_eq!(get(&c, &h, "/api/items").await.1["page"], 1);
    assert_eq!(
        get(&c, &h, "/api/items?page=500").await.1["items"][19]["id"],
        10000
    );
    let (s, v) = get(&c, &h, "/api/items?page=501").await;
    assert_eq!((s, v["items"].as_array().unwrap().len()), (200, 0));
    let (s, v) = get(&c, &h, "/api/items?page=zero").await;
    assert_eq!(s, 400);
    assert!(v["error"].is_string());

    let (s, v) = get(&c, &h, "/api/items/42").await;
    assert_eq!(s, 200);
    assert_eq!(v["id"], 42);
    assert_eq!(v["name"], "Robot vacuum #42");
    assert_eq!(v.as_object().unwrap().len(), 4);
    assert!(v["price"].is_u64() && v["stock"].is_u64());
    let price_42 = v["price"].clone();
    assert_eq!(get(&c, &h, "/api/items/42").await.1["price"], price_42);
    for bad in ["0", "10001", "abc", "-1"] {
        let (s, v) = get(&c, &h, &format!("/api/items/{bad}")).await;
        assert_eq!((s, v), (404, json!({"error": "no such item"})), "{bad}");
    }

    let (s, v) = post(&c, &h, "/api/cart", r#"{"sku":7,"qty":2}"#).await;
    assert_eq!(s, 200);
    assert_eq!(v["cart"]["sku"], 7);
    assert_eq!(v["cart"]["qty"], 2);
    let cart = v["cart"]["id"].as_str().unwrap().to_string();
    assert!(
        cart.starts_with('c') && cart[1..].parse::<u64>().is_ok(),
        "{cart}"
    );
    let (s, v) = post(&c, &h, "/api/cart", r#"{"sku":"123","qty":1}"#).await;
    assert_eq!((s, &v["cart"]["sku"]), (200, &json!(123)));
    assert_ne!(v["cart"]["id"].as_str().unwrap(), cart);
    for bad in [
        "{not json",
        "[1,2]",
        r#"{"qty":1}"#,
        r#"{"sku":true,"qty":1}"#,
        r#"{"sku":1,"qty":0}"#,
        r#"{"sku":1,"qty":"many"}"#,
    ] {
        let (s, v) = post(&c, &h, "/api/cart", bad).await;
        assert_eq!(s, 400, "{bad}");
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{bad}: {v}"
        );
    }
    let (s, v) = post(&c, &h, "/api/cart", r#"{"sku":10001,"qty":1}"#).await;
    assert_eq!((s, v), (404, json!({"error": "no such item"})));

    let order = format!(r#"{{"cart":"{cart}","user":"u00042"}}"#);
    let (s, v) = post(&c, &h, "/api/orders", &order).await;
    assert_eq!(s, 201);
    assert_eq!(v["status"], "created");
    assert_eq!(v["order"]["shadow"], false);
    assert!(v["order"]["id"].as_str().unwrap().starts_with('o'));
    let (s, v) = post(&c, &h, "/api/orders", r#"{"cart":"x1","user":"u1"}"#).await;
    assert_eq!((s, v), (400, json!({"error": "unknown cart"})));
    let (s, v) = post(&c, &h, "/api/orders", r#"{"cart":"c1"}"#).await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("user"), "{v}");
    assert_eq!(post(&c, &h, "/api/orders", "").await.0, 400);

    let (s, v) = post(&c, &h, "/api/redpacket/grab", r#"{"user":"u00042"}"#).await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "won");
    assert!((1..=8888).contains(&v["amount"].as_u64().unwrap()), "{v}");

    let (s, v) = post(&c, &h, "/api/presale/deposit", r#"{"sku":"9","user":"u7"}"#).await;
    assert_eq!(s, 201);
    assert_eq!(v["status"], "deposited");
    assert!(v["deposit"]["id"].as_str().unwrap().starts_with('d'));

    let (s, v) = get(&c, &h, "/nowhere").await;
    assert_eq!((s, v), (404, json!({"error": "no such endpoint"})));
    let (s, v) = send(&c, &h, "DELETE", "/api/orders", None, &[]).await;
    assert_eq!((s, v), (405, json!({"error": "method not allowed"})));

    // Exactly what was sent above, minus /health and /stats.
    let (s, st) = get(&c, &h, "/stats").await;
    assert_eq!(s, 200);
    assert_eq!(
        st["endpoints"],
        json!({
            "GET /api/items": 5,
            "GET /api/items/{id}": 6,
            "POST /api/cart": 9,
            "POST /api/orders": 4,
            "POST /api/redpacket/grab": 1,
            "POST /api/presale/deposit": 1,
            "GET /api/assistant": 0,
            "GET /live/{room}": 0,
            "other": 2,
        })
    );
    assert_eq!(st["requests"], 28);
    assert_eq!((&st["tagged"], &st["untagged"]), (&json!(0), &json!(28)));
    assert_eq!(
        (&st["orders"], &st["shadow_orders"]),
        (&json!(2), &json!(0))
    );
    assert_eq!(
        (&st["deposits"], &st["shadow_deposits"]),
        (&json!(1), &json!(0))
    );
    assert_eq!(st["busy_rejections"], 0);
    assert_eq!(st["redpackets_left"], 999);
    assert_eq!(st["user_agents"], json!({"(none)": 28}));
    // The in-process view agrees with the HTTP one.
    assert_eq!(serde_json::to_value(h.stats()).unwrap(), st);
}

#[tokio::test]
async fn red_packets_sell_out_at_exactly_their_stock() {
    let h = shop(ShopConfig {
        redpackets: 5,
        ..ShopConfig::default()
    });
    let c = client();
    let grabs = (0..12).map(|i| {
        let (c, h) = (&c, &h);
        async move {
            let body = format!(r#"{{"user":"u{i:05}"}}"#);
            post(c, h, "/api/redpacket/grab", &body).await
        }
    });
    let results = futures_join_all(grabs).await;
    let won: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(won.len(), 5);
    assert!(won
        .iter()
        .all(|v| v["status"] == "won" && v["amount"].is_u64()));
    let gone = results
        .iter()
        .filter(|(s, v)| *s == 410 && *v == json!({"status": "sold_out"}));
    assert_eq!(gone.count(), 7);
    assert_eq!(h.stats().redpackets_left, 0);
    let (s, _) = post(&c, &h, "/api/redpacket/grab", r#"{"user":"u1"}"#).await;
    assert_eq!(s, 410);

    // Reset restocks and zeroes the counters; it is not counted itself.
    let (s, v) = post(&c, &h, "/stats/reset", "").await;
    assert_eq!((s, v), (200, json!({"status": "reset"})));
    let st = h.stats();
    assert_eq!((st.requests, st.redpackets_left), (0, 5));
    assert!(st.endpoints.values().all(|n| *n == 0));
    assert!(st.user_agents.is_empty());
    let (s, _) = post(&c, &h, "/api/redpacket/grab", r#"{"user":"u1"}"#).await;
    assert_eq!(s, 200);
    assert_eq!(h.stats().redpackets_left, 4);
    assert_eq!(h.stats().requests, 1);
}

#[tokio::test]
async fn tagged_traffic_makes_shadow_orders_and_user_agents_are_counted() {
    let h = shop(ShopConfig::default());
    let c = client();
    let ios = ("User-Agent", "ShopApp-iOS/10.4");
    let pc = ("User-Agent", "Mozilla/5.0 (Windows NT 10.0)");
    let tag = ("X-Load-Test", "flashcrowd");
    let order = Some(r#"{"cart":"c1","user":"u00001"}"#);
    let deposit = Some(r#"{"sku":1,"user":"u00001"}"#);

    for _ in 0..3 {
        let (s, v) = send(&c, &h, "POST", "/api/orders", order, &[ios, tag]).await;
        assert_eq!((s, &v["order"]["shadow"]), (201, &json!(true)));
    }
    let (s, v) = send(&c, &h, "POST", "/api/orders", order, &[pc]).await;
    assert_eq!((s, &v["order"]["shadow"]), (201, &json!(false)));
    assert_eq!(
        send(&c, &h, "POST", "/api/presale/deposit", deposit, &[ios, tag])
            .await
            .0,
        201
    );
    assert_eq!(
        send(&c, &h, "POST", "/api/presale/deposit", deposit, &[pc])
            .await
            .0,
        201
    );
    assert_eq!(
        send(&c, &h, "GET", "/api/items/5", None, &[ios, tag])
            .await
            .0,
        200
    );
    assert_eq!(send(&c, &h, "GET", "/api/items/5", None, &[]).await.0, 200);
    // Not counted:
    assert_eq!(
        send(&c, &h, "GET", "/health", None, &[ios, tag]).await.0,
        200
    );
    assert_eq!(
        send(&c, &h, "GET", "/stats", None, &[ios, tag]).await.0,
        200
    );

    let st = h.stats();
    assert_eq!(st.requests, 8);
    assert_eq!((st.tagged, st.untagged), (5, 3));
    assert_eq!((st.orders, st.shadow_orders), (2, 4));
    assert_eq!((st.deposits, st.shadow_deposits), (1, 1));
    let agents: Vec<(&str, u64)> = st
        .user_agents
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        agents,
        [
            ("ShopApp-iOS/10.4", 5),
            ("Mozilla/5.0 (Windows NT 10.0)", 2),
            ("(none)", 1)
        ]
    );
}

#[tokio::test]
async fn a_full_shop_answers_503_and_counts_it() {
    // One request in service (it works 2 × 600 ms at full load), one in the queue: every further
    // request finds both full and is refused at once.
    let h = shop(ShopConfig {
        capacity: 1,
        queue: 1,
        service_us: 600_000,
        redpackets: 10,
    });
    let c = client();
    let order = r#"{"cart":"c1","user":"u1"}"#;
    let first = tokio::spawn({
        let (c, url) = (c.clone(), h.url());
        async move {
            c.post(format!("{url}/api/orders"))
                .body(order)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    wait_for("one order in service", Duration::from_secs(10), || {
        h.stats().in_flight == 1
    })
    .await;
    let second = tokio::spawn({
        let (c, url) = (c.clone(), h.url());
        async move {
            c.post(format!("{url}/api/orders"))
                .body(order)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    wait_for("one order queued", Duration::from_secs(10), || {
        h.stats().queued == 1
    })
    .await;

    let burst = (0..6).map(|i| {
        let (c, h) = (&c, &h);
        async move {
            let path = if i % 2 == 0 {
                "/api/cart"
            } else {
                "/api/items/3"
            };
            if i % 2 == 0 {
                post(c, h, path, r#"{"sku":1,"qty":1}"#).await
            } else {
                get(c, h, path).await
            }
        }
    });
    let results = futures_join_all(burst).await;
    for (s, v) in &results {
        assert_eq!(
            (*s, v),
            (503, &json!({"error": "system busy, please retry"}))
        );
    }
    assert_eq!(h.stats().busy_rejections, 6);
    // /health and /stats bypass the capacity model.
    assert_eq!(get(&c, &h, "/health").await.0, 200);

    assert_eq!(first.await.unwrap().as_u16(), 201);
    assert_eq!(second.await.unwrap().as_u16(), 201);
    let st = h.stats();
    assert_eq!((st.busy_rejections, st.orders, st.requests), (6, 2, 8));
    assert_eq!((st.in_flight, st.queued), (0, 0));
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_served() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let h = shop(ShopConfig::default());
    let stream = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    for sku in 1..=3u64 {
        let req = http::Request::post(format!("http://{}/api/cart", h.addr))
            .header("user-agent", "ShopApp-Android/9.1")
            .body(Full::new(bytes::Bytes::from(format!(
                r#"{{"sku":{sku},"qty":1}}"#
            ))))
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_2);
        assert_eq!(resp.status().as_u16(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["cart"]["sku"], sku);
    }
    assert_eq!(h.stats().user_agents["ShopApp-Android/9.1"], 3);
    drop(send);
    conn.abort();
}

#[test]
fn dropping_the_handle_stops_the_shop() {
    let h = shop(ShopConfig::default());
    let addr = h.addr;
    assert!(addr.ip().is_loopback());
    assert!(std::net::TcpStream::connect(addr).is_ok());
    let started = Instant::now();
    drop(h);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(std::net::TcpStream::connect(addr).is_err());
}

/// Runs futures concurrently on the current task and collects their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.unwrap()).collect()
}
