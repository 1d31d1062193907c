//! WebSocket steps end to end on 127.0.0.1: users in the shop's live rooms send a like every
//! second for their hold; the messages sent equal the plan exactly and the messages received
//! equal what the shop wrote to their sockets (its own counters: welcomes + broadcasts
//! delivered), with no error. A server that closes with 1011 mid-stream is a `ws_closed` error
//! per session, with close code 1011 counted exactly.
//!
//! The test runs 200 users in 10 rooms for 5 s (a debug build on a loaded 2-core machine);
//! bench/ws-rooms.sh runs the 1,000 users for 10 s of the issue with a release binary.

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use std::time::Duration;
use support::{count, named, Scenario, ServerThread};

const LIMIT: Duration = Duration::from_secs(90);

#[test]
fn live_room_messages_sent_match_the_plan_and_received_match_the_shop() {
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    let sc = Scenario::new(
        r#"
name: live-room
defaults: { timeout: 10s }
journeys:
  watch:
    share: 100%
    steps:
      - ws: /live/{{ random(1, 10) }}
        name: room
        send: '{"type":"like"}'
        every: 1s
        hold: 5s
        expect: { first: { $.type: welcome } }
load:
  stages: [ { rate: 200/s, for: 1s }, { rate: 0/s, for: 6s } ]
  arrivals: uniform
"#,
    );
    let report = sc.run_passing(&shop.url(), &["--threads", "1"], LIMIT);
    let room = named(&report, "requests", "room");
    assert_eq!(count(room, "/count"), 200, "{room:#}");
    assert_eq!(room["errors"], serde_json::json!({}), "{room:#}");
    let st = &room["stream"];
    // On open and at 1, 2, 3, 4 s: five likes per user.
    assert_eq!(count(st, "/sent"), 200 * 5, "{st:#}");
    let live = shop.stats().streams.live;
    assert_eq!(live.messages_in, 200 * 5, "{live:?}");
    assert_eq!(live.welcomes, 200, "{live:?}");
    assert_eq!(
        count(st, "/received"),
        live.welcomes + live.delivered,
        "received vs the shop's {live:?}"
    );
    assert!(live.delivered >= 200 * 5, "{live:?}");
}

/// A WebSocket server that welcomes each client, then closes with 1011 after `after`.
fn closing_server(after: Duration) -> (String, ServerThread) {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind loopback");
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = ServerThread::start("ws-1011", move |mut stop| async move {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::protocol::frame::{coding::CloseCode, CloseFrame};
        use tokio_tungstenite::tungstenite::Message;
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let (tcp, _) = tokio::select! {
                _ = &mut stop => break,
                r = listener.accept() => match r { Ok(s) => s, Err(_) => continue },
            };
            conns.spawn(async move {
                // The engine's reachability probe is a plain GET: answered 200, not upgraded.
                let mut tcp = tcp;
                let mut buf = [0u8; 4096];
                let n = loop {
                    let n = tcp.peek(&mut buf).await.unwrap_or(0);
                    if n == 0 || n == buf.len() || buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break n;
                    }
                    tcp.readable().await.ok();
                    tokio::task::yield_now().await;
                };
                let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                if !head.contains("upgrade: websocket") {
                    use tokio::io::AsyncWriteExt;
                    let _ = tcp
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                    return;
                }
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let _ = ws.send(Message::text(r#"{"type":"welcome"}"#)).await;
                tokio::time::sleep(after).await;
                let _ = ws
                    .send(Message::Close(Some(CloseFrame {
                        code: CloseCode::Error,
                        reason: "internal error".into(),
                    })))
                    .await;
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    use futures_util::StreamExt;
                    while let Some(Ok(_)) = ws.next().await {}
                })
                .await;
            });
        }
        conns.abort_all();
    });
    (url, server)
}

#[test]
fn a_server_closing_with_1011_mid_stream_is_ws_closed_with_its_code_counted_exactly() {
    let (url, _server) = closing_server(Duration::from_millis(300));
    let sc = Scenario::new(
        r#"
name: closing
defaults: { timeout: 10s }
journeys:
  watch:
    share: 100%
    steps:
      - ws: /anything
        name: room
        send: '{"type":"like"}'
        every: 100ms
        hold: 5s
load:
  stages: [ { rate: 10/s, for: 1s }, { rate: 0/s, for: 1s } ]
  arrivals: uniform
"#,
    );
    let done = sc.run(&url, &["--threads", "1"], LIMIT);
    let report = sc.report(&done);
    let room = named(&report, "requests", "room");
    assert_eq!(count(room, "/count"), 10, "{room:#}");
    assert_eq!(count(room, "/errors/ws_closed"), 10, "{room:#}");
    assert_eq!(
        room["errors"].as_object().map(|m| m.len()),
        Some(1),
        "{room:#}"
    );
    assert_eq!(
        room["stream"]["close_codes"],
        serde_json::json!({"1011": 10}),
        "{room:#}"
    );
    assert_eq!(
        count(&room["stream"], "/received"),
        10,
        "one welcome each: {room:#}"
    );
}
