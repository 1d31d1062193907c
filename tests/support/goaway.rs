//! A purpose-built HTTP/2 server (prior-knowledge h2c) on 127.0.0.1 that behaves like a server
//! with a request limit per connection (nginx's `keepalive_requests`): the `every`-th stream of
//! a connection starts its graceful shutdown (GOAWAY; the streams it took are finished), and
//! streams that arrive past the limit are refused unprocessed (RST_STREAM `REFUSED_STREAM`,
//! what a GOAWAY whose last stream id is the limit's stream means for them). Each answer waits
//! `delay` first, so streams are in flight when the GOAWAY goes out. It also resets streams on
//! request:
//!
//! - a path under `/rst/` is answered with RST_STREAM `INTERNAL_ERROR`;
//! - a path under `/refuse-once/` is refused with RST_STREAM `REFUSED_STREAM` the first time it
//!   is seen, and answered the second time.
//!
//! The engine's probe (HTTP/1.1) is answered over HTTP/1.1 and not counted. Every HTTP/2 stream
//! is recorded (method, path, connection number, answered or reset).

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Stream {
    pub method: String,
    pub path: String,
    pub conn: usize,
    pub answered: bool,
}

#[derive(Default)]
struct State {
    streams: Mutex<Vec<Stream>>,
    refused: Mutex<HashSet<String>>,
    conns: AtomicUsize,
    goaways: AtomicUsize,
    past_limit: AtomicUsize,
    /// Streams being served now, on all connections, and the most seen at once on any one.
    most_in_flight: AtomicUsize,
}

pub struct GoawayServer {
    pub addr: SocketAddr,
    state: Arc<State>,
    _server: super::ServerThread,
}

impl GoawayServer {
    /// GOAWAY after every `every` streams of a connection; each answer after `delay`.
    pub fn start(every: usize, delay: Duration) -> GoawayServer {
        GoawayServer::start_limited(every, delay, None)
    }

    /// The same, advertising SETTINGS_MAX_CONCURRENT_STREAMS `max_streams` when given (hyper's
    /// default is 200).
    pub fn start_limited(every: usize, delay: Duration, max_streams: Option<u32>) -> GoawayServer {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind loopback");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let st = state.clone();
        let server = super::ServerThread::start("goaway-server", move |mut stop| async move {
            let l = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            let mut tasks = tokio::task::JoinSet::new();
            loop {
                let (s, _) = tokio::select! {
                    _ = &mut stop => break,
                    r = l.accept() => match r { Ok(x) => x, Err(_) => continue },
                };
                let _ = s.set_nodelay(true);
                let st = st.clone();
                tasks.spawn(async move {
                    if super::counting::sends_h2_preface(&s).await {
                        let id = st.conns.fetch_add(1, Ordering::SeqCst);
                        serve_h2(s, id, st, every, delay, max_streams).await;
                    } else {
                        serve_probe(s).await;
                    }
                });
            }
            tasks.abort_all();
        });
        GoawayServer {
            addr,
            state,
            _server: server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every HTTP/2 stream received.
    pub fn streams(&self) -> Vec<Stream> {
        self.state.streams.lock().unwrap().clone()
    }

    /// HTTP/2 connections accepted.
    pub fn connections(&self) -> usize {
        self.state.conns.load(Ordering::SeqCst)
    }

    /// Streams refused because they came past a connection's limit.
    pub fn refused_past_limit(&self) -> usize {
        self.state.past_limit.load(Ordering::SeqCst)
    }

    /// Graceful shutdowns started.
    pub fn goaways(&self) -> usize {
        self.state.goaways.load(Ordering::SeqCst)
    }

    /// The most streams any one connection had open at the same time (counted from the
    /// service being called to its answer or reset).
    pub fn most_in_flight(&self) -> usize {
        self.state.most_in_flight.load(Ordering::SeqCst)
    }
}

/// Counts a stream as open on its connection until dropped.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn new(open: &Arc<AtomicUsize>, st: &State) -> Open {
        let now = open.fetch_add(1, Ordering::SeqCst) + 1;
        st.most_in_flight.fetch_max(now, Ordering::SeqCst);
        Open(open.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve_probe(s: tokio::net::TcpStream) {
    let svc = hyper::service::service_fn(|_req: Request<Incoming>| async {
        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .serve_connection(TokioIo::new(s), svc)
        .await;
}

async fn serve_h2(
    s: tokio::net::TcpStream,
    id: usize,
    st: Arc<State>,
    every: usize,
    delay: Duration,
    max_streams: Option<u32>,
) {
    let taken = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let shut = Arc::new(tokio::sync::Notify::new());
    let (t2, s2, st2, o2) = (taken.clone(), shut.clone(), st.clone(), open.clone());
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (taken, shut, st, open) = (t2.clone(), s2.clone(), st2.clone(), o2.clone());
        async move {
            let _open = Open::new(&open, &st);
            let nth = taken.fetch_add(1, Ordering::SeqCst) + 1;
            if nth == every {
                shut.notify_one();
            }
            let path = req.uri().path().to_string();
            // Past the limit the connection is going away: streams are refused unprocessed,
            // as a server whose GOAWAY names the limit's stream as the last one.
            let reset = if nth > every {
                st.past_limit.fetch_add(1, Ordering::SeqCst);
                Some(h2::Reason::REFUSED_STREAM)
            } else if path.starts_with("/rst/") {
                Some(h2::Reason::INTERNAL_ERROR)
            } else if path.starts_with("/refuse-once/")
                && st.refused.lock().unwrap().insert(path.clone())
            {
                Some(h2::Reason::REFUSED_STREAM)
            } else {
                None
            };
            st.streams.lock().unwrap().push(Stream {
                method: req.method().to_string(),
                path,
                conn: id,
                answered: reset.is_none(),
            });
            // A service error becomes RST_STREAM with the h2 reason inside it.
            if let Some(reason) = reset {
                return Err(h2::Error::from(reason));
            }
            tokio::time::sleep(delay).await;
            Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
        }
    });
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    if let Some(n) = max_streams {
        builder.max_concurrent_streams(n);
    }
    let conn = builder.serve_connection(TokioIo::new(s), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = shut.notified() => {}
    }
    st.goaways.fetch_add(1, Ordering::SeqCst);
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
