//! The hyper transport: hyper's `client::conn` (http1 and http2) over a TCP or TLS stream that
//! the caller owns, one request at a time, with the clock read that measurement needs at the
//! head, and the body streamed, counted and kept only when asked. Used for TLS, HTTP/2 and
//! HTTP/1.1 over TLS; plain-text HTTP/1.1 goes the lean way (`lean.rs`).
//!
//! An HTTP/2 connection carries at most as many of this generator's streams at once as the
//! server allows (its `SETTINGS_MAX_CONCURRENT_STREAMS`, as h2 knows it at the moment): a request
//! past that waits for one of them to end (`H2Shared::slot`) before it is handed to hyper. hyper
//! would otherwise park it inside its connection task, and a GOAWAY then drops it with a
//! "dispatch task is gone" error that does not say whether the server saw it (hyperium/hyper#2500;
//! see `H2Shared`), so a POST caught there could be neither resent nor trusted lost.

use super::{dial::classify_io, Conn, Failed, Reply, ReqBody};
use crate::metrics::ErrorKind;
use http_body_util::BodyExt;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};

/// What the handles of one HTTP/2 connection share: whether it is going away, and this
/// generator's streams open on it against the server's concurrency limit.
///
/// Why the limit is kept here and not left to hyper: when the server's
/// `SETTINGS_MAX_CONCURRENT_STREAMS` is reached, h2 gives a new request its stream id and queues
/// it as "pending open", and hyper 1.x's client task keeps the request's callback while it waits
/// (`ClientTask::fut_ctx`). A GOAWAY ends that task (h2 reports the GOAWAY as a connection
/// error to `poll_ready`), the callback is dropped, and the caller gets a user error,
/// `DispatchGone` ("dispatch task is gone"), instead of the GOAWAY (hyperium/hyper#2500). That
/// error cannot be read as "not processed": h2 still holds the stream, and once a slot frees
/// it writes the stream's HEADERS (with END_STREAM for a request without a body) and then
/// RST_STREAM(CANCEL); after a graceful shutdown's first GOAWAY (last stream id 2^31−1, as
/// hyper's and h2's servers send) the server may process it. And a stream that h2 opened just
/// before the GOAWAY, while the task had not yet run, ends the same way. So a parked request
/// that meets a GOAWAY can be resent only if idempotent, and a POST would be counted `reset`.
/// Keeping this generator's streams within the limit means h2 never parks one.
///
/// Two narrow windows remain, where our count and h2's differ: a server whose limit is below
/// hyper's initial assumption (100), before its SETTINGS arrive on a new connection (it refuses
/// the streams past its limit with REFUSED_STREAM; they are resent on the same connection,
/// which by then knows the limit, see `send`), and a stream this generator gave up (a timeout,
/// a cut body) that h2 counts until its RST_STREAM is written.
pub struct H2Shared {
    away: AtomicBool,
    /// Streams of this generator open on the connection (held by `StreamSlot`s).
    streams: AtomicUsize,
    freed: tokio::sync::Notify,
    /// The server's current stream limit as h2 knows it (hyper's `current_max_send_streams`).
    limit: Box<dyn Fn() -> usize + Send + Sync>,
}

impl H2Shared {
    fn new(limit: Box<dyn Fn() -> usize + Send + Sync>) -> Arc<H2Shared> {
        Arc::new(H2Shared {
            away: AtomicBool::new(false),
            streams: AtomicUsize::new(0),
            freed: tokio::sync::Notify::new(),
            limit,
        })
    }

    pub fn is_away(&self) -> bool {
        self.away.load(Ordering::Relaxed)
    }

    /// No new streams go on it.
    pub fn go_away(&self) {
        self.away.store(true, Ordering::Relaxed);
        // Requests waiting for a stream learn at once that they must go elsewhere.
        self.freed.notify_waiters();
    }

    /// Waits until another stream fits within the server's limit and takes it; None when the
    /// connection went away first (the request was never handed to hyper).
    async fn slot(self: &Arc<Self>) -> Option<StreamSlot> {
        loop {
            let freed = self.freed.notified();
            if self.is_away() {
                return None;
            }
            // A limit of 0 (a server about to go away) is taken as 1: the request then fails
            // or succeeds on this connection rather than waiting for a stream that never frees.
            let limit = (self.limit)().max(1);
            let n = self.streams.load(Ordering::Relaxed);
            if n < limit
                && self
                    .streams
                    .compare_exchange(n, n + 1, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                return Some(StreamSlot(self.clone()));
            }
            freed.await;
        }
    }

    /// Streams this generator has open on the connection.
    #[cfg(test)]
    fn open_streams(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }
}

/// One stream of an HTTP/2 connection within the server's limit, held for the whole exchange.
struct StreamSlot(Arc<H2Shared>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
        self.0.freed.notify_one();
    }
}

/// Maps a hyper error onto the taxonomy.
pub fn classify(e: &hyper::Error) -> ErrorKind {
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        // hyper says `invalid HTTP version parsed` when the answer does not begin `HTTP/1.x`.
        if e.to_string().contains("invalid HTTP version") {
            return ErrorKind::NotHttp;
        }
        return ErrorKind::Protocol;
    }
    if e.is_timeout() {
        return ErrorKind::Timeout;
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return classify_io(io, false);
        }
        if let Some(h2) = s.downcast_ref::<h2::Error>() {
            // A stream the server reset on its own (RST_STREAM) is not the connection dying.
            if h2.is_reset() && h2.is_remote() {
                return ErrorKind::StreamReset;
            }
            if let Some(io) = h2.get_io() {
                return classify_io(io, false);
            }
        }
        src = s.source();
    }
    ErrorKind::Reset
}

/// Was the request certainly not processed? hyper says so (`is_canceled`: its connection closed
/// before the request was even started), or the server did, per RFC 9113: a GOAWAY whose last
/// stream id is below the stream (h2 fails such streams, and any opened after it, with the
/// GOAWAY's error), or RST_STREAM with REFUSED_STREAM. Such a request may be sent again on a new
/// connection, whatever its method. hyper's "dispatch task is gone" is not among them: on an
/// HTTP/2 connection it means a request parked at the stream limit met a GOAWAY, and h2 may
/// still have sent it (see `H2Shared`).
pub fn unprocessed(e: &hyper::Error) -> bool {
    if e.is_canceled() {
        return true;
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(h2) = s.downcast_ref::<h2::Error>() {
            return h2.is_remote()
                && (h2.is_go_away() || h2.reason() == Some(h2::Reason::REFUSED_STREAM));
        }
        src = s.source();
    }
    false
}

/// A failure before any byte of the response, from a hyper error.
fn early(e: &hyper::Error) -> Failed {
    Failed {
        unprocessed: unprocessed(e),
        ..Failed::early(classify(e))
    }
}

/// The HTTP/1.1 or HTTP/2 handshake on an open stream; the connection task runs beside it.
pub async fn handshake<I>(io: I, h2: bool) -> Result<Conn, ErrorKind>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    if h2 {
        let (s, c) = http2::Builder::new(TokioExecutor::new())
            .handshake(io)
            .await
            .map_err(|e| classify(&e))?;
        // The connection task runs it; the stream limit is read from it while it runs (the
        // last value read stays once it has ended).
        let task = Arc::new(std::sync::Mutex::new(Some(Box::pin(c))));
        let last = Arc::new(AtomicUsize::new(usize::MAX));
        let (reader, last_read) = (task.clone(), last.clone());
        tokio::spawn(async move {
            std::future::poll_fn(|cx| {
                let mut slot = task.lock().unwrap_or_else(|e| e.into_inner());
                let Some(c) = slot.as_mut() else {
                    return std::task::Poll::Ready(());
                };
                let done = c.as_mut().poll(cx).is_ready();
                last.store(c.current_max_send_streams(), Ordering::Relaxed);
                if done {
                    *slot = None;
                    return std::task::Poll::Ready(());
                }
                std::task::Poll::Pending
            })
            .await
        });
        let limit = move || match reader.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(c) => c.current_max_send_streams(),
            None => last_read.load(Ordering::Relaxed),
        };
        Ok(Conn::H2(s, H2Shared::new(Box::new(limit))))
    } else {
        let (s, c) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|e| classify(&e))?;
        tokio::spawn(async move {
            let _ = c.await;
        });
        Ok(Conn::H1(s))
    }
}

/// A request built for HTTP/2 (absolute URI, no `Host`) that goes out on an HTTP/1.1 connection,
/// because TLS negotiated no `h2`: origin-form target and a `Host` header, as HTTP/1.1 requires.
fn h2_to_h1(mut req: http::Request<ReqBody>) -> http::Request<ReqBody> {
    let parts = req.uri().clone().into_parts();
    if let Some(a) = &parts.authority {
        if !req.headers().contains_key(http::header::HOST) {
            if let Ok(v) = http::HeaderValue::from_str(a.as_str()) {
                req.headers_mut().insert(http::header::HOST, v);
            }
        }
    }
    if let Some(pq) = parts.path_and_query {
        *req.uri_mut() = http::Uri::from(pq);
    }
    req
}

/// Sends one request and returns the response with its body unread (event streams read it as
/// it comes).
pub async fn send(
    conn: &mut Conn,
    req: http::Request<ReqBody>,
) -> Result<http::Response<hyper::body::Incoming>, Failed> {
    let r = match conn {
        Conn::H1(s) => {
            s.ready().await.map_err(|e| early(&e))?;
            let req = if req.uri().scheme().is_some() {
                h2_to_h1(req)
            } else {
                req
            };
            s.send_request(req).await
        }
        Conn::H2(s, _) => {
            s.ready().await.map_err(|e| early(&e))?;
            s.send_request(req).await
        }
        Conn::Lean(_) => return Err(Failed::early(ErrorKind::Protocol)),
    };
    r.map_err(|e| {
        let f = early(&e);
        // GOAWAY, or the connection broke: no new streams on it. A stream the server reset
        // (RST_STREAM, REFUSED_STREAM included) leaves the connection as it was: a server that
        // refuses the streams a new connection opened past its limit before its SETTINGS
        // arrived (the client assumes 100 until then) takes the resent ones within its limit
        // on the same connection; a new connection would repeat the race.
        if f.kind != ErrorKind::StreamReset {
            conn.going_away();
        }
        f
    })
}

/// Sends one request and reads the whole response body. A body over `max_body` is cut: the
/// exchange fails with `ErrorKind::Body` (and the connection must not be reused).
pub async fn exchange(
    conn: &mut Conn,
    req: http::Request<ReqBody>,
    mut keep: Option<&mut Vec<u8>>,
    max_body: u64,
) -> Result<Reply, Failed> {
    // HTTP/2: a stream within the server's limit, held until the body has been read.
    let _slot = match conn {
        Conn::H2(_, shared) => match shared.clone().slot().await {
            Some(s) => Some(s),
            // It went away while this request waited: never sent, so it may go elsewhere.
            None => {
                return Err(Failed {
                    unprocessed: true,
                    ..Failed::early(ErrorKind::Reset)
                })
            }
        },
        _ => None,
    };
    let resp = send(conn, req).await?;
    let head_at = Instant::now();
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut bytes_in = 0u64;
    loop {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Some(d) = frame.data_ref() {
                    bytes_in += d.len() as u64;
                    if bytes_in > max_body {
                        return Err(Failed {
                            kind: ErrorKind::Body,
                            head_at: Some(head_at),
                            status: Some(status),
                            bytes_in,
                            unprocessed: false,
                        });
                    }
                    if let Some(k) = keep.as_deref_mut() {
                        k.extend_from_slice(d);
                    }
                }
            }
            Some(Err(e)) => {
                let kind = match classify(&e) {
                    ErrorKind::Protocol | ErrorKind::Reset => ErrorKind::Body,
                    k => k,
                };
                return Err(Failed {
                    kind,
                    head_at: Some(head_at),
                    status: Some(status),
                    bytes_in,
                    unprocessed: false,
                });
            }
        }
    }
    Ok(Reply {
        status,
        head_at,
        bytes_in,
        ended_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn shared(limit: Arc<AtomicUsize>) -> Arc<H2Shared> {
        H2Shared::new(Box::new(move || limit.load(Ordering::Relaxed)))
    }

    /// A request past the server's stream limit waits in the generator, not inside hyper, and
    /// takes the stream the first one to end gives back.
    #[tokio::test(flavor = "current_thread")]
    async fn streams_past_the_limit_wait_for_one_to_end() {
        let limit = Arc::new(AtomicUsize::new(2));
        let sh = shared(limit.clone());
        let a = sh.slot().await.expect("a first stream");
        let _b = sh.slot().await.expect("a second stream");
        assert_eq!(sh.open_streams(), 2);
        let third = tokio::spawn({
            let sh = sh.clone();
            async move { sh.slot().await.map(|_s| ()) }
        });
        tokio::task::yield_now().await;
        assert!(!third.is_finished(), "a third stream waits at a limit of 2");
        assert_eq!(sh.open_streams(), 2);
        drop(a);
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), third)
            .await
            .expect("the third gets the freed stream")
            .unwrap();
        assert!(got.is_some());
        // The limit is read at each request: the server raising it lets more through at once.
        limit.store(4, Ordering::Relaxed);
        let _c = sh.slot().await.expect("within the new limit");
        let _d = sh.slot().await.expect("within the new limit");
        assert_eq!(sh.open_streams(), 3);
    }

    /// A request waiting for a stream when the connection goes away is let go at once, never
    /// sent on it.
    #[tokio::test(flavor = "current_thread")]
    async fn a_waiting_request_is_let_go_when_the_connection_goes_away() {
        let sh = shared(Arc::new(AtomicUsize::new(1)));
        let _a = sh.slot().await.expect("the one stream");
        let waiting = tokio::spawn({
            let sh = sh.clone();
            async move { sh.slot().await.is_none() }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        sh.go_away();
        let gone = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("let go at the GOAWAY")
            .unwrap();
        assert!(gone, "no stream on a connection going away");
        assert!(sh.slot().await.is_none());
    }
}
