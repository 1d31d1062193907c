//! The hyper transport: hyper's `client::conn` (http1 and http2) over a TCP or TLS stream that
//! the caller owns, one request at a time, with the clock read that measurement needs at the
//! head, and the body streamed, counted and kept only when asked. Used for TLS, HTTP/2 and
//! HTTP/1.1 over TLS; plain-text HTTP/1.1 goes the lean way (`lean.rs`).

use super::{dial::classify_io, Conn, Failed, Reply, ReqBody};
use crate::metrics::ErrorKind;
use http_body_util::BodyExt;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};

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
/// connection, whatever its method.
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
        tokio::spawn(async move {
            let _ = c.await;
        });
        Ok(Conn::H2(s, Default::default()))
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
        if f.unprocessed || f.kind != ErrorKind::StreamReset {
            // GOAWAY, or the connection broke: no new streams on it.
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
    })
}
