//! A connection-counting HTTP server for the HTTP-layer tests: plain or TLS, HTTP/1.1 or HTTP/2
//! (chosen by ALPN over TLS; by the client's connection preface in plain text, so prior-knowledge
//! h2c is recognised). It records every accepted TCP connection, whether its TLS handshake
//! succeeded and what ALPN chose, which protocol was served on it, and the path of every request
//! it carried. Every request is answered `200 ok` at once.
//!
//! It runs on its own thread with a current-thread tokio runtime and stops when dropped.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// The protocol a connection was served with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// Not decided: the TLS handshake failed or the client sent nothing.
    None,
    H1,
    H2,
}

/// One accepted TCP connection as the server saw it.
#[derive(Debug, Clone)]
pub struct ConnRec {
    /// A TLS handshake completed on it.
    pub tls_ok: bool,
    /// A TLS handshake was attempted and failed.
    pub tls_failed: bool,
    /// The protocol ALPN chose, if any.
    pub alpn: Option<String>,
    pub proto: Proto,
    /// The path of each request, in order.
    pub paths: Vec<String>,
    /// Requests that named no host: an HTTP/1.1 request without a `Host` header (RFC 9112
    /// requires one, even with an absolute-form target), an HTTP/2 one without `:authority`.
    pub hostless: usize,
}

impl ConnRec {
    fn new() -> ConnRec {
        ConnRec {
            tls_ok: false,
            tls_failed: false,
            alpn: None,
            proto: Proto::None,
            paths: Vec::new(),
            hostless: 0,
        }
    }

    /// Did every request on it go to a path under `prefix` (and was there at least one)?
    pub fn only_under(&self, prefix: &str) -> bool {
        !self.paths.is_empty() && self.paths.iter().all(|p| p.starts_with(prefix))
    }
}

type Conns = Arc<Mutex<Vec<ConnRec>>>;

pub struct CountingServer {
    pub addr: SocketAddr,
    tls: bool,
    conns: Conns,
    _server: super::ServerThread,
}

impl CountingServer {
    /// A plain-text server (HTTP/1.1, or HTTP/2 with prior knowledge).
    pub fn plain() -> CountingServer {
        Self::start(None)
    }

    /// A TLS server with `config` (its ALPN list decides which protocols it offers).
    pub fn tls(config: Arc<rustls::ServerConfig>) -> CountingServer {
        Self::start(Some(tokio_rustls::TlsAcceptor::from(config)))
    }

    fn start(acceptor: Option<tokio_rustls::TlsAcceptor>) -> CountingServer {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind loopback");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let conns: Conns = Arc::new(Mutex::new(Vec::new()));
        let tls = acceptor.is_some();
        let served = conns.clone();
        let server = super::ServerThread::start("counting-server", move |stop_rx| {
            serve(listener, acceptor, served, stop_rx)
        });
        CountingServer {
            addr,
            tls,
            conns,
            _server: server,
        }
    }

    /// `https://localhost:PORT` for a TLS server (the certificate names localhost), else
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    /// Every connection accepted so far.
    pub fn connections(&self) -> Vec<ConnRec> {
        self.conns.lock().unwrap().clone()
    }

    /// The connections that carried requests under `prefix` only (the engine's, not the probe's).
    pub fn connections_under(&self, prefix: &str) -> Vec<ConnRec> {
        self.connections()
            .into_iter()
            .filter(|c| c.only_under(prefix))
            .collect()
    }

    /// A one-line account of every connection, for assertion messages.
    pub fn describe(&self) -> String {
        let conns = self.connections();
        let mut s = format!("{} connections:", conns.len());
        for (i, c) in conns.iter().enumerate() {
            s.push_str(&format!(
                "\n  #{i}: {:?} tls_ok={} tls_failed={} alpn={:?} requests={} hostless={} first={:?}",
                c.proto,
                c.tls_ok,
                c.tls_failed,
                c.alpn,
                c.paths.len(),
                c.hostless,
                c.paths.first()
            ));
        }
        s
    }
}

async fn serve(
    listener: std::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    conns: Conns,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut stop => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(_) => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        let id = {
            let mut c = conns.lock().unwrap();
            c.push(ConnRec::new());
            c.len() - 1
        };
        let conns = conns.clone();
        let acceptor = acceptor.clone();
        tasks.spawn(async move {
            match acceptor {
                None => {
                    let h2 = sends_h2_preface(&stream).await;
                    serve_conn(stream, h2, id, conns).await;
                }
                Some(acceptor) => match acceptor.accept(stream).await {
                    Err(_) => conns.lock().unwrap()[id].tls_failed = true,
                    Ok(tls) => {
                        let alpn = tls
                            .get_ref()
                            .1
                            .alpn_protocol()
                            .map(|p| String::from_utf8_lossy(p).into_owned());
                        let h2 = alpn.as_deref() == Some("h2");
                        {
                            let mut c = conns.lock().unwrap();
                            c[id].tls_ok = true;
                            c[id].alpn = alpn;
                        }
                        serve_conn(tls, h2, id, conns).await;
                    }
                },
            }
        });
    }
    tasks.abort_all();
}

/// Does the client open with the HTTP/2 connection preface? Peeks, so nothing is consumed.
pub async fn sends_h2_preface(stream: &TcpStream) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut buf = [0u8; 24];
    for _ in 0..1000 {
        let n = match stream.peek(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        if buf[..n] != PREFACE[..n] {
            return false;
        }
        if n == PREFACE.len() {
            return true;
        }
        // A partial preface: wait for the rest.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    false
}

async fn serve_conn<I>(io: I, h2: bool, id: usize, conns: Conns)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    conns.lock().unwrap()[id].proto = if h2 { Proto::H2 } else { Proto::H1 };
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let conns = conns.clone();
        async move {
            let named = if h2 {
                req.uri().authority().is_some()
            } else {
                req.headers().contains_key(hyper::header::HOST)
            };
            let mut c = conns.lock().unwrap();
            c[id].paths.push(req.uri().path().to_string());
            if !named {
                c[id].hostless += 1;
            }
            drop(c);
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        }
    });
    let io = TokioIo::new(io);
    if h2 {
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(io, svc)
            .await;
    } else {
        let _ = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(io, svc)
            .await;
    }
}
