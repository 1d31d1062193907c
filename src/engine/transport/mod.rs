//! The transport seam: how a prepared request reaches the target and its answer comes back.
//!
//! A `Conn` is one open connection of one transport; `connect` opens one for a client and
//! `Conn::exchange` sends one request on it and reads the whole answer, returning a `Reply` or a
//! `Failed` with its error kind. Each transport is one file: `lean.rs` (plain-text HTTP/1.1
//! straight from a serialized request), `hyper_conn.rs` (hyper's HTTP/1.1 and HTTP/2, TLS
//! included). Opening sockets and TLS sessions, and naming what went wrong while doing it, is
//! `dial.rs`; a client's emulated network sits between the socket and the transport
//! (`network.rs`). Stream steps read what follows the open: `sse.rs` an event stream over a
//! hyper connection, `ws.rs` a WebSocket after its upgrade. `sniff.rs` looks at
//! what a target that gave the probe no HTTP answer speaks instead. The set is an enum, not a trait object: the hot path pays one `match`, no virtual
//! call and no boxing of futures.
//!
//! What a transport does not do: render templates (`session::prepare`), check expectations or
//! capture values (`checks.rs`), record samples, or decide to retry (`Session::exchange`).

pub mod dial;
pub mod head;
pub mod hyper_conn;
pub mod lean;
pub mod network;
pub mod sniff;
pub mod sse;
pub mod ws;

use super::compile::Program;
use crate::metrics::ErrorKind;
use crate::scenario::model::HttpVersion;
use bytes::Bytes;
use http_body_util::Full;
use std::time::Instant;

pub use dial::Dial;

pub type ReqBody = Full<Bytes>;

/// One open connection.
pub enum Conn {
    H1(::hyper::client::conn::http1::SendRequest<ReqBody>),
    /// An HTTP/2 connection, and what every handle to it shares: whether the server has said
    /// it takes no new streams on it (GOAWAY), so a pool stops handing it out, and the streams
    /// open on it against the server's limit (see `hyper_conn::H2Shared`).
    H2(
        ::hyper::client::conn::http2::SendRequest<ReqBody>,
        std::sync::Arc<hyper_conn::H2Shared>,
    ),
    /// The lean HTTP/1.1 path (plain text).
    Lean(Box<lean::H1Conn>),
}

/// A request ready to go: serialized bytes for the lean path, or a request for hyper.
pub enum Outgoing<'a> {
    Wire(&'a [u8]),
    Hyper(Box<::http::Request<ReqBody>>),
}

impl<'a> Outgoing<'a> {
    /// The same request again, for a resend on a fresh connection.
    pub fn again(&self) -> Outgoing<'a> {
        match self {
            Outgoing::Wire(b) => Outgoing::Wire(b),
            Outgoing::Hyper(r) => {
                let mut c = ::http::Request::new(r.body().clone());
                *c.method_mut() = r.method().clone();
                *c.uri_mut() = r.uri().clone();
                *c.version_mut() = r.version();
                *c.headers_mut() = r.headers().clone();
                Outgoing::Hyper(Box::new(c))
            }
        }
    }
}

/// What came back.
pub struct Reply {
    pub status: u16,
    /// When the response head arrived.
    pub head_at: Instant,
    /// Body bytes received.
    pub bytes_in: u64,
    /// When the last byte arrived, when the transport knows it without reading the clock again
    /// (the lean path: a body that came in the same read as its head); None: now.
    pub ended_at: Option<Instant>,
}

/// A failed exchange: the kind, and what had arrived before it failed.
pub struct Failed {
    pub kind: ErrorKind,
    /// When the response head arrived, if it did.
    pub head_at: Option<Instant>,
    pub status: Option<u16>,
    pub bytes_in: u64,
    /// The server certainly did not process the request (HTTP/2: a stream above a GOAWAY's last
    /// stream id, refused with REFUSED_STREAM, or a request that waited for a stream within the
    /// server's limit until the connection went away), so it may be sent again whatever its
    /// method.
    pub unprocessed: bool,
}

impl Failed {
    /// A failure before any byte of a response.
    pub fn early(kind: ErrorKind) -> Failed {
        Failed {
            kind,
            head_at: None,
            status: None,
            bytes_in: 0,
            unprocessed: false,
        }
    }

    /// The connection closed (or was reset) before any byte of the response: the server may or
    /// may not have acted on the request, so only an idempotent one may be sent again.
    pub fn closed_before_response(&self) -> bool {
        self.kind == ErrorKind::Reset && self.head_at.is_none() && self.bytes_in == 0
    }
}

impl Conn {
    pub fn is_h2(&self) -> bool {
        matches!(self, Conn::H2(..))
    }

    /// Can another request be sent on it? (An HTTP/2 connection the server sent GOAWAY on
    /// cannot, though its earlier streams may still be finishing.)
    pub fn is_open(&self) -> bool {
        match self {
            Conn::H1(s) => !s.is_closed(),
            Conn::H2(s, shared) => !s.is_closed() && !shared.is_away(),
            Conn::Lean(c) => c.is_open(),
        }
    }

    /// Is it still usable right now? Like `is_open`, and for a kept-alive lean connection it
    /// also looks, without waiting, for a close (or stray bytes) the server sent while it was
    /// idle: such a connection is dropped before use instead of failing the next request.
    /// hyper watches its own idle connections (`is_closed`).
    pub fn still_open(&mut self) -> bool {
        match self {
            Conn::Lean(c) => c.still_open(),
            c => c.is_open(),
        }
    }

    /// Marks an HTTP/2 connection as going away: no new streams go on it.
    pub fn going_away(&self) {
        if let Conn::H2(_, shared) = self {
            shared.go_away();
        }
    }

    /// A handle for another concurrent request (h2 only).
    pub fn clone_h2(&self) -> Option<Conn> {
        match self {
            Conn::H2(s, shared) => Some(Conn::H2(s.clone(), shared.clone())),
            Conn::H1(_) | Conn::Lean(_) => None,
        }
    }

    /// Sends one request and reads the whole response. The body is counted, and appended to
    /// `keep` when given; over `max_body` the exchange fails with `body`. On a failure the
    /// connection must not be reused. `written`: bytes of a lean request already written (by
    /// a release, see `shard::PreSend`); 0 otherwise.
    pub async fn exchange(
        &mut self,
        out: Outgoing<'_>,
        head_request: bool,
        keep: Option<&mut Vec<u8>>,
        max_body: u64,
        written: usize,
    ) -> Result<Reply, Failed> {
        match (self, out) {
            (Conn::Lean(c), Outgoing::Wire(bytes)) => {
                c.exchange(bytes, head_request, keep, max_body, written)
                    .await
            }
            // Boxed for the same reason as `connect`: hyper's exchange state is large, and the
            // lean path's future should not carry it.
            (c, Outgoing::Hyper(req)) => {
                Box::pin(hyper_conn::exchange(c, *req, keep, max_body)).await
            }
            (_, Outgoing::Wire(_)) => Err(Failed::early(ErrorKind::Protocol)),
        }
    }
}

/// Opens a connection to the target for a client's transport: TCP, the emulated network when
/// the client has one, then TLS with ALPN when https, then the HTTP handshake. `lean` asks for
/// the lean HTTP/1.1 path (plain text, no emulated network).
///
/// The opening (TLS and HTTP/2 handshakes included) runs boxed: its state is kilobytes, and
/// inline it would be part of every session's future, which the request path moves and every
/// parked user keeps, where one allocation per connection opened costs nothing.
pub async fn connect(
    prog: &Program,
    version: HttpVersion,
    lean: bool,
    d: Dial,
) -> Result<Conn, ErrorKind> {
    Box::pin(open(prog, version, lean, d)).await
}

async fn open(
    prog: &Program,
    version: HttpVersion,
    lean: bool,
    d: Dial,
) -> Result<Conn, ErrorKind> {
    let t = &prog.target;
    let tcp = dial::tcp(d.to.unwrap_or(t.addr), d).await?;
    match d.network {
        None if lean => Ok(Conn::Lean(Box::new(lean::H1Conn::new(tcp)))),
        None => over(prog, version, tcp).await,
        Some((profile, seed)) => {
            over(prog, version, network::shape(tcp, profile, seed).await).await
        }
    }
}

/// TLS when https, then hyper's HTTP/1.1 or HTTP/2 handshake, over an open stream.
async fn over<I>(prog: &Program, version: HttpVersion, io: I) -> Result<Conn, ErrorKind>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let t = &prog.target;
    let want_h2 = version == HttpVersion::H2;
    if !t.https {
        // Plain HTTP/2 is prior-knowledge h2c.
        return hyper_conn::handshake(io, want_h2).await;
    }
    let cfg = if want_h2 { &prog.tls_h2 } else { &prog.tls };
    let tls = dial::tls(cfg.as_ref(), &t.host, io).await?;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    hyper_conn::handshake(tls, h2).await
}
