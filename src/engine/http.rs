//! The HTTP hot path: hyper's `client::conn` (http1 and http2) over a TCP or TLS stream that the
//! caller owns, one request at a time, with the three clock reads that measurement needs (send,
//! head, end) and the body streamed, counted and kept only when asked.

use super::compile::{Program, Target};
use crate::metrics::ErrorKind;
use crate::scenario::model::HttpVersion;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub type ReqBody = Full<Bytes>;

/// One open connection.
pub enum Conn {
    H1(http1::SendRequest<ReqBody>),
    H2(http2::SendRequest<ReqBody>),
    /// The lean HTTP/1.1 path (plain text).
    Lean(Box<super::h1::H1Conn>),
}

impl Conn {
    pub fn is_h2(&self) -> bool {
        matches!(self, Conn::H2(_))
    }

    /// Can another request be sent on it?
    pub fn is_open(&self) -> bool {
        match self {
            Conn::H1(s) => !s.is_closed(),
            Conn::H2(s) => !s.is_closed(),
            Conn::Lean(c) => c.is_open(),
        }
    }

    /// A handle for another concurrent request (h2 only).
    pub fn clone_h2(&self) -> Option<Conn> {
        match self {
            Conn::H2(s) => Some(Conn::H2(s.clone())),
            Conn::H1(_) | Conn::Lean(_) => None,
        }
    }
}

fn classify_io(e: &std::io::Error, connecting: bool) -> ErrorKind {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::TimedOut => ErrorKind::Timeout,
        K::ConnectionRefused | K::AddrNotAvailable | K::AddrInUse => ErrorKind::Connect,
        _ if connecting => ErrorKind::Connect,
        _ => ErrorKind::Reset,
    }
}

/// Maps a hyper error onto the taxonomy.
pub fn classify(e: &hyper::Error) -> ErrorKind {
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
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
        src = s.source();
    }
    ErrorKind::Reset
}

async fn handshake<I>(io: I, h2: bool) -> Result<Conn, ErrorKind>
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
        Ok(Conn::H2(s))
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

/// How to open a TCP connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dial {
    /// Local address to connect from (`--source-ips`).
    pub source: Option<std::net::IpAddr>,
    /// SO_LINGER 0: close with an RST, leaving no TIME_WAIT.
    pub linger0: bool,
}

/// Opens a TCP connection (TCP_NODELAY on).
pub async fn dial(addr: std::net::SocketAddr, d: Dial) -> std::io::Result<TcpStream> {
    let sock = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if let Some(ip) = d.source {
        // Let connect() pick the port, so each source address has its own full port range.
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let one: libc::c_int = 1;
            // SAFETY: setsockopt on a valid socket with a pointer to a local c_int.
            unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_BIND_ADDRESS_NO_PORT,
                    &one as *const libc::c_int as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        sock.bind(std::net::SocketAddr::new(ip, 0))?;
    }
    if d.linger0 {
        // SO_LINGER with a zero timeout: close() sends an RST at once and never blocks.
        use std::os::fd::AsRawFd;
        let l = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt on a valid socket with a pointer to a local linger struct.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &l as *const libc::linger as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }
    let s = sock.connect(addr).await?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// Opens a connection to the target (TLS with ALPN when https). `lean` asks for the lean
/// HTTP/1.1 path (plain-text targets only).
pub async fn connect(
    prog: &Program,
    version: HttpVersion,
    lean: bool,
    d: Dial,
) -> Result<Conn, ErrorKind> {
    let t: &Target = &prog.target;
    let tcp = dial(t.addr, d).await.map_err(|e| classify_io(&e, true))?;
    if lean {
        return Ok(Conn::Lean(Box::new(super::h1::H1Conn::new(tcp))));
    }
    let want_h2 = version == HttpVersion::H2;
    if !t.https {
        // Plain HTTP/2 is prior-knowledge h2c.
        return handshake(tcp, want_h2).await;
    }
    let cfg = if want_h2 { &prog.tls_h2 } else { &prog.tls };
    let cfg = cfg.clone().ok_or(ErrorKind::Tls)?;
    let name =
        rustls::pki_types::ServerName::try_from(t.host.clone()).map_err(|_| ErrorKind::Tls)?;
    let tls = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::Other => ErrorKind::Tls,
            _ => classify_io(&e, true),
        })?;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    handshake(tls, h2).await
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

/// What came back.
pub struct Reply {
    pub status: u16,
    /// When the response head arrived.
    pub head_at: Instant,
    /// Body bytes received.
    pub bytes_in: u64,
    /// The body, when asked to keep it.
    pub body: Option<Vec<u8>>,
}

/// A failed exchange: the kind, and when the head arrived if it did.
pub struct Failed {
    pub kind: ErrorKind,
    pub head_at: Option<Instant>,
    pub status: Option<u16>,
    pub bytes_in: u64,
}

/// Sends one request and reads the whole response body. A body over `max_body` is cut: the
/// exchange fails with `ErrorKind::Body` (and the connection must not be reused).
pub async fn exchange(
    conn: &mut Conn,
    req: http::Request<ReqBody>,
    keep_body: bool,
    max_body: u64,
) -> Result<Reply, Failed> {
    let fail = |kind| Failed {
        kind,
        head_at: None,
        status: None,
        bytes_in: 0,
    };
    let resp = match conn {
        Conn::H1(s) => {
            s.ready().await.map_err(|e| fail(classify(&e)))?;
            let req = if req.uri().scheme().is_some() {
                h2_to_h1(req)
            } else {
                req
            };
            s.send_request(req).await
        }
        Conn::H2(s) => {
            s.ready().await.map_err(|e| fail(classify(&e)))?;
            s.send_request(req).await
        }
        Conn::Lean(_) => return Err(fail(ErrorKind::Protocol)),
    }
    .map_err(|e| fail(classify(&e)))?;
    let head_at = Instant::now();
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut bytes_in = 0u64;
    let mut kept: Option<Vec<u8>> = if keep_body { Some(Vec::new()) } else { None };
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
                        });
                    }
                    if let Some(k) = kept.as_mut() {
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
                });
            }
        }
    }
    Ok(Reply {
        status,
        head_at,
        bytes_in,
        body: kept,
    })
}
