//! The shop's streaming endpoints: `GET /api/assistant`, an AI shopping assistant that answers
//! with Server-Sent Events, one token at a time, after a "thinking" delay that grows with the
//! number of answers being streamed at once; and `GET /live/{room}`, a live-stream room over
//! WebSocket that welcomes each member and broadcasts every like and comment to all of them.
//!
//! `GET /api/assistant?q=TEXT&tokens=N&think_ms=T&every_ms=E&break_after=K`: after
//! `T × (1 + (streams/32)²)` ms (T default 200; `streams` counts the answers in flight, this one
//! included) come N events (default 32) `event: token` with `data: {"i":I,"token":"…"}`, E ms
//! apart (default 20), then `event: done` with `data: {"tokens":N}` and the end of the response.
//! With `break_after=K` the answer breaks off after K tokens: the connection is cut without
//! ending the chunked body (a stream break, for drills).

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Answers in flight at which the thinking time has doubled.
const THINKING_CAPACITY: f64 = 32.0;

/// What the streaming endpoints counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamStats {
    /// Assistant answers started.
    pub assistant_answers: u64,
    /// Token events written (the `done` events not included).
    pub assistant_tokens: u64,
    /// Answers broken off on purpose (`break_after`).
    pub assistant_breaks: u64,
    /// Gauge: answers being streamed now.
    pub assistant_in_flight: u64,
    /// The live rooms (`/live/{room}`).
    pub live: LiveStats,
}

#[derive(Default)]
pub(crate) struct StreamCounters {
    answers: AtomicU64,
    tokens: AtomicU64,
    breaks: AtomicU64,
    in_flight: AtomicU64,
    pub(crate) live: Rooms,
}

impl StreamCounters {
    pub(crate) fn snapshot(&self) -> StreamStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StreamStats {
            assistant_answers: get(&self.answers),
            assistant_tokens: get(&self.tokens),
            assistant_breaks: get(&self.breaks),
            assistant_in_flight: get(&self.in_flight),
            live: self.live.snapshot(),
        }
    }

    pub(crate) fn reset(&self) {
        for c in [&self.answers, &self.tokens, &self.breaks] {
            c.store(0, Ordering::Relaxed);
        }
        self.live.reset();
    }
}

/// The assistant's parameters, from the query string.
struct Ask {
    tokens: u64,
    think: Duration,
    every: Duration,
    break_after: Option<u64>,
}

fn parse_ask(q: Option<&str>) -> Result<Ask, String> {
    let mut a = Ask {
        tokens: 32,
        think: Duration::from_millis(200),
        every: Duration::from_millis(20),
        break_after: None,
    };
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let n = || {
            v.parse::<u64>()
                .map_err(|_| format!("`{k}` must be a whole number, got `{v}`"))
        };
        match k {
            "tokens" => a.tokens = n()?.min(100_000),
            "think_ms" => a.think = Duration::from_millis(n()?.min(600_000)),
            "every_ms" => a.every = Duration::from_millis(n()?.min(60_000)),
            "break_after" => a.break_after = Some(n()?),
            _ => {}
        }
    }
    Ok(a)
}

/// A response body fed by the task that writes the answer; an `Err` cuts the connection.
///
/// hyper keeps the frames a body hands it in its write buffer while the body has more ready, and
/// a body error drops the connection with that buffer unwritten. So a cut is held back for one
/// poll: the body first answers "not ready" (and wakes itself), hyper flushes every event given
/// before the cut, and the next poll returns the error. Without it the events just before a break
/// were lost whenever they and the break were ready together (every one of them with
/// `every_ms=0`, one now and then on a loaded machine at 20 ms).
struct Feed {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    cut: Option<std::io::Error>,
}

impl hyper::body::Body for Feed {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        if let Some(e) = self.cut.take() {
            return Poll::Ready(Some(Err(e)));
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Err(e))) => {
                self.cut = Some(e);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            other => other.map(|o| o.map(|r| r.map(hyper::body::Frame::data))),
        }
    }
}

/// Decrements the in-flight gauge when the answer ends, however it ends.
struct InFlight(Arc<super::routes::Shop>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.streams.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(crate) async fn assistant(
    State(shop): State<Arc<super::routes::Shop>>,
    headers: axum::http::HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    shop.receive(super::stats::Route::Assistant, &headers);
    let ask = match parse_ask(q.as_deref()) {
        Ok(a) => a,
        Err(e) => return super::routes::error(StatusCode::BAD_REQUEST, &e),
    };
    let c = &shop.streams;
    c.answers.fetch_add(1, Ordering::Relaxed);
    let streams = c.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    let guard = InFlight(shop.clone());
    let load = streams as f64 / THINKING_CAPACITY;
    let think = ask.think.mul_f64(1.0 + load * load);
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let _guard = guard;
        let start = tokio::time::Instant::now() + think;
        for i in 0..ask.tokens {
            tokio::time::sleep_until(start + ask.every * i as u32).await;
            if ask.break_after == Some(i) {
                shop.streams.breaks.fetch_add(1, Ordering::Relaxed);
                let _ = tx
                    .send(Err(std::io::Error::other("answer broken off")))
                    .await;
                return;
            }
            let ev = format!(
                "event: token\ndata: {{\"i\":{i},\"token\":\"{}\"}}\n\n",
                WORDS[i as usize % WORDS.len()]
            );
            if tx.send(Ok(Bytes::from(ev))).await.is_err() {
                return;
            }
            shop.streams.tokens.fetch_add(1, Ordering::Relaxed);
        }
        let done = format!("event: done\ndata: {{\"tokens\":{}}}\n\n", ask.tokens);
        let _ = tx.send(Ok(Bytes::from(done))).await;
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::new(Feed { rx, cut: None }),
    )
        .into_response()
}

const WORDS: &[&str] = &[
    "This",
    " jacket",
    " is",
    " 30%",
    " off",
    " until",
    " midnight",
    ";",
    " sizes",
    " S",
    " to",
    " XL",
    " are",
    " in",
    " stock",
    ".",
];

// ------------------------------------------------------------------ live rooms (WebSocket)

/// Messages a room buffers for a member that falls behind; past it the member misses some
/// (never counted as delivered).
const ROOM_BUFFER: usize = 4096;

/// The live rooms: one broadcast channel per room, created on first join.
#[derive(Default)]
pub(crate) struct Rooms {
    rooms: std::sync::Mutex<
        std::collections::HashMap<String, tokio::sync::broadcast::Sender<Arc<str>>>,
    >,
    joined: AtomicU64,
    members: AtomicU64,
    welcomes: AtomicU64,
    messages_in: AtomicU64,
    delivered: AtomicU64,
}

/// What the live rooms counted (inside [`StreamStats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveStats {
    /// WebSocket upgrades accepted.
    pub joined: u64,
    /// Gauge: members connected now.
    pub members: u64,
    /// Welcome messages written.
    pub welcomes: u64,
    /// Likes and comments received from members (each broadcast to the room).
    pub messages_in: u64,
    /// Broadcast messages written to members' sockets (a like in a room of 10 is 10).
    pub delivered: u64,
}

impl Rooms {
    pub(crate) fn snapshot(&self) -> LiveStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LiveStats {
            joined: get(&self.joined),
            members: get(&self.members),
            welcomes: get(&self.welcomes),
            messages_in: get(&self.messages_in),
            delivered: get(&self.delivered),
        }
    }

    pub(crate) fn reset(&self) {
        for c in [
            &self.joined,
            &self.welcomes,
            &self.messages_in,
            &self.delivered,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    fn join(&self, room: &str) -> tokio::sync::broadcast::Sender<Arc<str>> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms
            .entry(room.to_string())
            .or_insert_with(|| tokio::sync::broadcast::channel(ROOM_BUFFER).0)
            .clone()
    }
}

/// `GET /live/{room}`: a WebSocket member of the room. It is welcomed with
/// `{"type":"welcome","room":R,"members":N}`; every text message it sends whose JSON `type` is
/// `like` or `comment` is broadcast to every member (itself included) as
/// `{"type":T,"room":R,"text":…}`.
pub(crate) async fn live(
    State(shop): State<Arc<super::routes::Shop>>,
    headers: axum::http::HeaderMap,
    axum::extract::Path(room): axum::extract::Path<String>,
    ws: Result<
        axum::extract::WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
) -> Response {
    shop.receive(super::stats::Route::Live, &headers);
    let Ok(ws) = ws else {
        return super::routes::error(
            StatusCode::BAD_REQUEST,
            "this is a WebSocket endpoint: send an upgrade",
        );
    };
    ws.on_upgrade(move |socket| member(shop, room, socket))
}

async fn member(
    shop: Arc<super::routes::Shop>,
    room: String,
    mut socket: axum::extract::ws::WebSocket,
) {
    use axum::extract::ws::Message;
    let live = &shop.streams.live;
    live.joined.fetch_add(1, Ordering::Relaxed);
    let members = live.members.fetch_add(1, Ordering::Relaxed) + 1;
    let tx = live.join(&room);
    let mut rx = tx.subscribe();
    let room_json = serde_json::to_string(&room).unwrap_or_else(|_| "\"\"".into());
    let welcome = format!("{{\"type\":\"welcome\",\"room\":{room_json},\"members\":{members}}}");
    if socket.send(Message::text(welcome)).await.is_ok() {
        live.welcomes.fetch_add(1, Ordering::Relaxed);
        loop {
            tokio::select! {
                m = socket.recv() => match m {
                    Some(Ok(Message::Text(t))) => {
                        let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                        let kind = v["type"].as_str().unwrap_or("");
                        if kind == "like" || kind == "comment" {
                            live.messages_in.fetch_add(1, Ordering::Relaxed);
                            let text = serde_json::to_string(v["text"].as_str().unwrap_or("")).unwrap_or_default();
                            let out: Arc<str> = format!("{{\"type\":\"{kind}\",\"room\":{room_json},\"text\":{text}}}").into();
                            let _ = tx.send(out);
                        }
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                b = rx.recv() => match b {
                    Ok(text) => {
                        if socket.send(Message::text(text.as_ref())).await.is_err() {
                            break;
                        }
                        live.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
            }
        }
    }
    // Answer a close (tungstenite queues the reply; flushing sends it) and leave the room.
    let _ = socket.send(Message::Close(None)).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.recv()).await;
    live.members.fetch_sub(1, Ordering::Relaxed);
}
